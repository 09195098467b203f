// Host-side pieces added for the compiled executable and the sandbox, checked without booting: the extra initramfs
// archive, forwards to a guest address, which kernel tests need the executable, and the sandbox's command line.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SandboxUsageError, guestScript, parseSandboxArgs } from "../../../scripts/sandbox.ts";
import { COMPILED_TEST_FILE, compiledTests } from "../../rig/compiled-exe.ts";
import { buildExtraArchive, checkGuestFile } from "../../rig/initramfs.ts";
import { qemuArgs } from "../../rig/qemu.ts";

/** Names, modes and contents of a newc archive (read from the format description: 110-byte header, 4-byte padding). */
function newcEntries(bytes: Uint8Array): { name: string; mode: number; data: string }[] {
  const text = new TextDecoder("latin1");
  const out: { name: string; mode: number; data: string }[] = [];
  let off = 0;
  for (;;) {
    const header = text.decode(bytes.subarray(off, off + 110));
    expect(header.slice(0, 6)).toBe("070701");
    const field = (i: number): number => parseInt(header.slice(6 + i * 8, 14 + i * 8), 16);
    const name = text.decode(bytes.subarray(off + 110, off + 110 + field(11) - 1));
    const dataStart = (off + 110 + field(11) + 3) & ~3;
    const data = text.decode(bytes.subarray(dataStart, dataStart + field(6)));
    off = (dataStart + field(6) + 3) & ~3;
    if (name === "TRAILER!!!") return out;
    out.push({ name, mode: field(1), data });
  }
}

describe("extra guest files", () => {
  const dir = mkdtempSync(join(tmpdir(), "gorb-rig-extra-"));
  const host = join(dir, "gorb");
  writeFileSync(host, "#!fake executable\n");
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("go into their own archive at the guest path, executable by default", () => {
    const entries = newcEntries(buildExtraArchive([{ host, guest: "/usr/bin/gorb" }, { host, guest: "opt/x/data", mode: 0o600 }]));
    expect(entries.map((e) => [e.name, e.mode.toString(8)])).toEqual([
      ["usr", "40755"],
      ["usr/bin", "40755"],
      ["usr/bin/gorb", "100755"],
      ["opt", "40755"],
      ["opt/x", "40755"],
      ["opt/x/data", "100600"],
    ]);
    expect(entries[2]?.data).toBe("#!fake executable\n");
  });

  test("are refused outside usr/, opt/ and gorb/ (lib/ is a symlink the archive would replace), with .., or missing", () => {
    expect(() => checkGuestFile({ host, guest: "lib/x86_64-linux-gnu/libnl-3.so.200" }, 0)).toThrow(
      'extraFiles[0].guest must lie under usr/, opt/, gorb/ without "..", got "lib/x86_64-linux-gnu/libnl-3.so.200"',
    );
    expect(() => checkGuestFile({ host, guest: "usr/../etc/passwd" }, 1)).toThrow("extraFiles[1].guest must lie under");
    expect(() => checkGuestFile({ host: join(dir, "missing"), guest: "usr/bin/x" }, 2)).toThrow(`extraFiles[2].host "${join(dir, "missing")}" is not a file`);
    expect(() => checkGuestFile({ host, guest: "usr/bin/x", mode: 0o17777 }, 3)).toThrow("extraFiles[3].mode must be permission bits");
  });
});

describe("host forwards", () => {
  test("a forward may target a guest address other than eth0's (the sandbox's VIP)", () => {
    const args = qemuArgs({
      vmlinuz: "/k/vmlinuz",
      initrd: "/k/initrd",
      memoryMb: 2048,
      cpus: 2,
      hostForwards: [
        { host: 4672, guest: 4672 },
        { host: 8080, guest: 80, guestAddress: "10.0.0.20" },
      ],
    });
    expect(args[args.indexOf("-netdev") + 1]).toBe("user,id=n0,hostfwd=tcp:127.0.0.1:4672-:4672,hostfwd=tcp:127.0.0.1:8080-10.0.0.20:80");
  });
});

describe("kernel tests that need the executable", () => {
  test("are the compiled*.test.ts files, found in directories too", () => {
    expect(COMPILED_TEST_FILE.test("compiled-exe.test.ts")).toBe(true);
    expect(COMPILED_TEST_FILE.test("rig-smoke.test.ts")).toBe(false);
    expect(compiledTests(["test/kernel"]).map((p) => p.replace(/^.*\/test\//, "test/"))).toContain("test/kernel/compiled-exe.test.ts");
    expect(compiledTests(["test/kernel/rig-smoke.test.ts"])).toEqual([]);
  });
});

describe("sandbox command line", () => {
  test("defaults to the API on 4672 and the VIP on 8080; --check picks free ports", () => {
    expect(parseSandboxArgs([])).toEqual({ check: false, compiled: false, verbose: false, port: 4672, vipPort: 8080 });
    expect(parseSandboxArgs(["--check", "--compiled"])).toEqual({ check: true, compiled: true, verbose: false, port: 0, vipPort: 0 });
    expect(parseSandboxArgs(["--port", "14672", "--vip-port", "18080", "-v"])).toMatchObject({ port: 14672, vipPort: 18080, verbose: true });
  });

  test("bad options name the flag", () => {
    expect(() => parseSandboxArgs(["--port", "99999"])).toThrow('--port: expected a port 0-65535, got "99999"');
    expect(() => parseSandboxArgs(["--vip-port", "http"])).toThrow('--vip-port: expected a port 0-65535, got "http"');
    expect(() => parseSandboxArgs(["--frobnicate"])).toThrow(SandboxUsageError);
  });

  test("the guest starts the daemon on every address with VIPs on lo, then three backends, and stops on the control port", () => {
    const script = guestScript("/usr/bin/gorb");
    const at = (text: string): number => {
      const i = script.indexOf(text);
      if (i < 0) throw new Error(`the guest script lacks ${JSON.stringify(text)}:\n${script}`);
      return i;
    };
    expect(at("/usr/bin/gorb serve -l 0.0.0.0:4672 --vip-interface lo &")).toBeLessThan(at("netns add be1"));
    expect(script.match(/^netns add be\d$/gm)).toEqual(["netns add be1", "netns add be2", "netns add be3"]);
    expect(at("for i in 1 2 3; do")).toBeLessThan(at("busybox httpd -p 10.77.$i.2:80"));
    expect(at("GORB_SANDBOX_BACKENDS_UP")).toBeLessThan(at("/bin/busybox nc -l -p 4699 -e /tmp/control.sh"));
    expect(at("nc -l -p 4699")).toBeLessThan(at('kill -TERM "$(cat /tmp/gorb.pid)"'));
  });
});
