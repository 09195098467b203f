// Host-side pieces of the qemu rig that can be checked without booting anything: the cpio writer, ldd and
// modules.dep parsing, module selection, and the qemu command line.
import { describe, expect, test } from "bun:test";
import { CpioWriter } from "../../rig/cpio.ts";
import { parseLdd } from "../../rig/initramfs.ts";
import { parseModulesDep, selectModules } from "../../rig/kernel.ts";
import { qemuArgs, tail } from "../../rig/qemu.ts";

interface CpioEntry {
  name: string;
  mode: number;
  nlink: number;
  rdevMajor: number;
  rdevMinor: number;
  data: string;
}

/** A minimal newc reader, written from the format description, to check the writer independently. */
function readNewc(bytes: Uint8Array): CpioEntry[] {
  const text = new TextDecoder("latin1");
  const entries: CpioEntry[] = [];
  let off = 0;
  for (;;) {
    const header = text.decode(bytes.subarray(off, off + 110));
    expect(header.slice(0, 6)).toBe("070701");
    expect(off % 4).toBe(0);
    const field = (i: number): number => parseInt(header.slice(6 + i * 8, 14 + i * 8), 16);
    const nameSize = field(11);
    const fileSize = field(6);
    const name = text.decode(bytes.subarray(off + 110, off + 110 + nameSize - 1));
    expect(bytes[off + 110 + nameSize - 1]).toBe(0);
    const dataStart = (off + 110 + nameSize + 3) & ~3;
    const data = text.decode(bytes.subarray(dataStart, dataStart + fileSize));
    off = (dataStart + fileSize + 3) & ~3;
    if (name === "TRAILER!!!") break;
    entries.push({ name, mode: field(1), nlink: field(4), rdevMajor: field(9), rdevMinor: field(10), data });
  }
  expect(off).toBe(bytes.length);
  return entries;
}

describe("CpioWriter (newc)", () => {
  test("writes parents before children, with padding, types and a trailer", () => {
    const cpio = new CpioWriter();
    cpio.file("/usr/bin/tool", "abcde", 0o755);
    cpio.symlink("bin/sh", "/bin/busybox");
    cpio.charDevice("dev/console", 5, 1);
    cpio.dir("tmp", 0o1777);
    const entries = readNewc(cpio.finish());
    expect(entries.map((e) => e.name)).toEqual(["usr", "usr/bin", "usr/bin/tool", "bin", "bin/sh", "dev", "dev/console", "tmp"]);
    const byName = new Map(entries.map((e) => [e.name, e]));
    expect(byName.get("usr/bin/tool")).toMatchObject({ mode: 0o100755, data: "abcde", nlink: 1 });
    expect(byName.get("usr")).toMatchObject({ mode: 0o040755, nlink: 2 });
    expect(byName.get("bin/sh")).toMatchObject({ mode: 0o120777, data: "/bin/busybox" });
    expect(byName.get("dev/console")).toMatchObject({ mode: 0o020600, rdevMajor: 5, rdevMinor: 1 });
    expect(byName.get("tmp")?.mode).toBe(0o041777);
  });

  test("rejects duplicates and paths that escape the root", () => {
    const cpio = new CpioWriter();
    cpio.file("a/b", "x");
    expect(() => cpio.file("a/b", "y")).toThrow("a/b added twice");
    expect(() => cpio.file("../etc/passwd", "x")).toThrow("bad archive path");
    expect(() => cpio.file("/", "x")).toThrow("bad archive path");
    expect(cpio.has("a")).toBe(true);
    expect(cpio.has("/a/b")).toBe(true);
    expect(cpio.has("a/c")).toBe(false);
  });
});

describe("parseLdd", () => {
  test("keeps resolved libraries and the loader, drops the vdso", () => {
    const out = [
      "\tlinux-vdso.so.1 (0x00007ffd)",
      "\tlibnl-genl-3.so.200 => /lib/x86_64-linux-gnu/libnl-genl-3.so.200 (0x00007fa9)",
      "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007fa9)",
      "\t/lib64/ld-linux-x86-64.so.2 (0x00007fa9)",
    ].join("\n");
    expect(parseLdd("ipvsadm", out)).toEqual([
      "/lib/x86_64-linux-gnu/libnl-genl-3.so.200",
      "/lib/x86_64-linux-gnu/libc.so.6",
      "/lib64/ld-linux-x86-64.so.2",
    ]);
    expect(parseLdd("busybox", "\tnot a dynamic executable\n")).toEqual([]);
  });

  test("a missing library is an error naming it", () => {
    expect(() => parseLdd("ipvsadm", "\tlibpopt.so.0 => not found\n")).toThrow("ldd ipvsadm: libpopt.so.0 => not found");
  });
});

describe("kernel module selection", () => {
  const dep = parseModulesDep(
    [
      "kernel/net/netfilter/ipvs/ip_vs.ko: kernel/net/netfilter/nf_conntrack.ko kernel/lib/libcrc32c.ko",
      "kernel/net/netfilter/ipvs/ip_vs_rr.ko: kernel/net/netfilter/ipvs/ip_vs.ko kernel/net/netfilter/nf_conntrack.ko kernel/lib/libcrc32c.ko",
      "kernel/net/netfilter/ipvs/sub/deeper.ko:",
      "kernel/net/netfilter/nf_conntrack.ko: kernel/lib/libcrc32c.ko",
      "kernel/lib/libcrc32c.ko:",
      "kernel/drivers/net/veth.ko:",
      "kernel/sound/unrelated.ko:",
    ].join("\n"),
  );

  test("a directory selects its modules (not subdirectories) and dependencies are added", () => {
    expect(selectModules(dep, [{ path: "net/netfilter/ipvs/", required: true }])).toEqual([
      "kernel/lib/libcrc32c.ko",
      "kernel/net/netfilter/ipvs/ip_vs.ko",
      "kernel/net/netfilter/ipvs/ip_vs_rr.ko",
      "kernel/net/netfilter/nf_conntrack.ko",
    ]);
  });

  test("missing required modules fail by name; missing optional ones are skipped", () => {
    expect(() =>
      selectModules(dep, [
        { path: "drivers/net/veth.ko", required: true },
        { path: "drivers/net/virtio_net.ko", required: true },
        { path: "net/ipv4/fou.ko", required: false },
      ]),
    ).toThrow("kernel lacks required module(s): drivers/net/virtio_net.ko");
    expect(selectModules(dep, [{ path: "drivers/net/veth.ko", required: true }, { path: "net/ipv4/fou.ko", required: false }])).toEqual([
      "kernel/drivers/net/veth.ko",
    ]);
  });
});

describe("qemu command line", () => {
  const base = { vmlinuz: "/k/vmlinuz", initrd: "/k/initrd", memoryMb: 2048, cpus: 2 };

  test("software emulation with a CPU that has AVX2, serial console, no reboot, no network by default", () => {
    const args = qemuArgs({ ...base, hostForwards: [] });
    const after = (flag: string): string | undefined => args[args.indexOf(flag) + 1];
    expect(after("-accel")).toBe("tcg");
    expect(after("-cpu")).toBe("max");
    expect(after("-m")).toBe("2048");
    expect(after("-kernel")).toBe("/k/vmlinuz");
    expect(after("-initrd")).toBe("/k/initrd");
    expect(after("-append")).toContain("console=ttyS0");
    expect(args).toContain("-no-reboot");
    expect(args).toContain("-nodefaults");
    expect(args).not.toContain("-netdev");
  });

  test("host forwards bind the host side to loopback", () => {
    const args = qemuArgs({ ...base, hostForwards: [{ host: 18080, guest: 8080 }, { host: 18081, guest: 9000 }] });
    expect(args[args.indexOf("-netdev") + 1]).toBe("user,id=n0,hostfwd=tcp:127.0.0.1:18080-:8080,hostfwd=tcp:127.0.0.1:18081-:9000");
    expect(args[args.indexOf("-device") + 1]).toBe("virtio-net-pci,netdev=n0,romfile=");
  });

  test("tail quotes the last lines of a transcript", () => {
    const transcript = Array.from({ length: 100 }, (_, i) => `line ${i}`).join("\n");
    const shown = tail(transcript, 60);
    expect(shown).toContain("last 60 of 100 console lines");
    expect(shown).toContain("line 40\n");
    expect(shown).not.toContain("line 39\n");
    expect(tail("only\n")).toContain("console (1 lines)");
  });
});
