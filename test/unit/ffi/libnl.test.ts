import { expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findSystemLibrary, libraryDirs } from "../../../ffi/library-path.ts";

test("importing the driver, transport and ffi modules loads no native library", () => {
  // A fresh process: other test files in this run have opened libnl already.
  const script = `
    const ffi = await import(${JSON.stringify(new URL("../../../ffi/libnl.ts", import.meta.url).pathname)});
    await import(${JSON.stringify(new URL("../../../src/ipvs/kernel-driver.ts", import.meta.url).pathname)});
    await import(${JSON.stringify(new URL("../../../src/netif/interface-addresses.ts", import.meta.url).pathname)});
    const maps = await Bun.file("/proc/self/maps").text();
    console.log(JSON.stringify({ loaded: ffi.libnlLoaded(), mapped: maps.includes("libnl-") }));`;
  const r = Bun.spawnSync([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
  expect(r.stderr.toString()).toBe("");
  expect(JSON.parse(r.stdout.toString())).toEqual({ loaded: false, mapped: false });
});

test("libnl resolves the always-present generic netlink controller family (nlctrl = 0x10)", async () => {
  const { openLibnl, libnlLoaded } = await import("../../../ffi/libnl.ts");
  const nl = openLibnl();
  expect(libnlLoaded()).toBe(true);
  expect(nl.source).toBe("system");
  expect(nl.resolveGenlFamily("nlctrl")).toBe(0x10);
});

test("an unknown generic netlink family resolves to null, not an exception", async () => {
  const { openLibnl } = await import("../../../ffi/libnl.ts");
  expect(openLibnl().resolveGenlFamily("GORB_NO_SUCH_FAMILY")).toBeNull();
});

test("a libnl socket round-trips a real CTRL_CMD_GETFAMILY request through our codec", async () => {
  const { LibnlSocket } = await import("../../../src/transport/libnl-socket.ts");
  const { NetlinkConnection } = await import("../../../src/transport/connection.ts");
  const { decodeGenl } = await import("../../../src/netlink/message.ts");
  const { GENL_ID_CTRL, CTRL_CMD, CTRL_ATTR, NETLINK_GENERIC } = await import("../../../src/netlink/constants.ts");
  const conn = new NetlinkConnection(() => new LibnlSocket({ protocol: NETLINK_GENERIC, timeoutMs: 2000 }));
  const replies = await conn.request({ type: GENL_ID_CTRL, flags: 0, header: Uint8Array.of(CTRL_CMD.GETFAMILY, 1, 0, 0), attrs: (w) => w.string(CTRL_ATTR.FAMILY_NAME, "nlctrl") });
  conn.close();
  expect(replies.length).toBe(1);
  const attrs = decodeGenl(replies[0]!.payload).attrs;
  expect(attrs.u16(CTRL_ATTR.FAMILY_ID)).toBe(0x10);
  expect(attrs.string(CTRL_ATTR.FAMILY_NAME)).toBe("nlctrl");
});

test("a dump over a libnl socket lists every generic netlink family, nlctrl included", async () => {
  const { LibnlSocket } = await import("../../../src/transport/libnl-socket.ts");
  const { NetlinkConnection } = await import("../../../src/transport/connection.ts");
  const { decodeGenl } = await import("../../../src/netlink/message.ts");
  const { GENL_ID_CTRL, CTRL_CMD, CTRL_ATTR, NETLINK_GENERIC } = await import("../../../src/netlink/constants.ts");
  const conn = new NetlinkConnection(() => new LibnlSocket({ protocol: NETLINK_GENERIC, timeoutMs: 2000 }));
  const parts = await conn.dump({ type: GENL_ID_CTRL, flags: 0, header: Uint8Array.of(CTRL_CMD.GETFAMILY, 1, 0, 0) });
  conn.close();
  const names = parts.map((p) => decodeGenl(p.payload).attrs.string(CTRL_ATTR.FAMILY_NAME));
  expect(names).toContain("nlctrl");
  expect(names.length).toBeGreaterThan(1);
});

test("page-sized receive buffers take a whole dump: every family, each datagram within a page", async () => {
  const { LibnlSocket, smallMessageDatagramBytes } = await import("../../../src/transport/libnl-socket.ts");
  const { NetlinkConnection } = await import("../../../src/transport/connection.ts");
  const { decodeGenl } = await import("../../../src/netlink/message.ts");
  const { GENL_ID_CTRL, CTRL_CMD, CTRL_ATTR, NETLINK_GENERIC } = await import("../../../src/netlink/constants.ts");
  const size = smallMessageDatagramBytes();
  // One page (getconf's answer, not gorb's getpagesize binding), between 4 and 8 KiB.
  const page = Number(Bun.spawnSync(["getconf", "PAGESIZE"]).stdout.toString().trim());
  expect(page).toBeGreaterThan(0);
  expect(size).toBe(Math.min(8192, Math.max(4096, page)));
  const read = (datagramBytes?: number) => {
    const sizes: number[] = [];
    const conn = new NetlinkConnection(() => {
      const sock = new LibnlSocket({ protocol: NETLINK_GENERIC, timeoutMs: 2000, ...(datagramBytes === undefined ? {} : { datagramBytes }) });
      return {
        send: (bytes: Uint8Array) => sock.send(bytes),
        receive: () => {
          const datagrams = sock.receive();
          for (const d of datagrams) sizes.push(d.length);
          return datagrams;
        },
        close: () => sock.close(),
      };
    });
    return { conn, sizes };
  };
  const small = read(size);
  const big = read();
  // Two dumps per socket: the second runs after the kernel has seen the reader's buffer size (max_recvmsg_len).
  const dump = async (conn: InstanceType<typeof NetlinkConnection>) => {
    const names: (string | undefined)[][] = [];
    for (let i = 0; i < 2; i++) {
      const parts = await conn.dump({ type: GENL_ID_CTRL, flags: 0, header: Uint8Array.of(CTRL_CMD.GETFAMILY, 1, 0, 0) });
      names.push(parts.map((p) => decodeGenl(p.payload).attrs.string(CTRL_ATTR.FAMILY_NAME)));
    }
    conn.close();
    return names;
  };
  const names = await dump(small.conn);
  expect(names).toEqual(await dump(big.conn));
  expect(names[1]).toContain("nlctrl");
  expect(Math.max(...small.sizes)).toBeLessThanOrEqual(size);
});

test("a batch over a libnl socket reads the kernel's replies and ACKs many datagrams per system call", async () => {
  const { LibnlSocket } = await import("../../../src/transport/libnl-socket.ts");
  const { NetlinkConnection } = await import("../../../src/transport/connection.ts");
  const { decodeGenl } = await import("../../../src/netlink/message.ts");
  const { GENL_ID_CTRL, CTRL_CMD, CTRL_ATTR, NETLINK_GENERIC } = await import("../../../src/netlink/constants.ts");
  // The real socket, its receive calls and the datagrams they brought counted on the way.
  const counts = { receiveCalls: 0, datagrams: 0 };
  const conn = new NetlinkConnection(() => {
    const sock = new LibnlSocket({ protocol: NETLINK_GENERIC, timeoutMs: 2000 });
    return {
      send: (bytes: Uint8Array) => sock.send(bytes),
      receive: () => {
        const datagrams = sock.receive();
        counts.receiveCalls++;
        counts.datagrams += datagrams.length;
        return datagrams;
      },
      close: () => sock.close(),
    };
  });
  const names = ["nlctrl", "GORB_NO_SUCH_FAMILY"];
  const outcomes = await conn.batch(
    Array.from({ length: 64 }, (_, i) => ({
      type: GENL_ID_CTRL,
      flags: 0,
      header: Uint8Array.of(CTRL_CMD.GETFAMILY, 1, 0, 0),
      attrs: (w: import("../../../src/netlink/attributes.ts").ByteWriter) => w.string(CTRL_ATTR.FAMILY_NAME, names[i % 2]!),
    })),
  );
  conn.close();
  // nlctrl answers with its family (a reply, then the ACK); the unknown name fails (an error ACK).
  expect(outcomes.map((o) => (o.error === null ? "ok" : "failed"))).toEqual(Array.from({ length: 64 }, (_, i) => (i % 2 === 0 ? "ok" : "failed")));
  expect(outcomes.filter((_, i) => i % 2 === 0).map((o) => decodeGenl(o.replies[0]!.payload).attrs.u16(CTRL_ATTR.FAMILY_ID))).toEqual(
    Array.from({ length: 32 }, () => 0x10),
  );
  expect(counts.datagrams).toBe(32 * 2 + 32);
  expect(counts.receiveCalls).toBeLessThanOrEqual(Math.ceil(counts.datagrams / 16) + 1);
});

test("without libnl on the host, the error names the libraries and the Debian packages to install", () => {
  // A private mount namespace hides the system copies (bind /dev/null over them) for one process only.
  const libs = ["libnl-3.so.200", "libnl-genl-3.so.200"].map((l) => `/usr/lib/x86_64-linux-gnu/${l}`);
  const hide = libs.map((l) => `mount --bind /dev/null "$(readlink -f ${l})"`).join(" && ");
  const script = `
    const { openLibnl } = await import(${JSON.stringify(new URL("../../../ffi/libnl.ts", import.meta.url).pathname)});
    try { openLibnl(); console.log("loaded"); } catch (e) { console.log(e.name + ": " + e.message); }`;
  const r = Bun.spawnSync(["unshare", "-m", "sh", "-c", `${hide} && exec "$0" -e "$1"`, process.execPath, script], { stdout: "pipe", stderr: "pipe" });
  expect(r.stderr.toString()).toBe("");
  const out = r.stdout.toString();
  expect(out).toStartWith("LibraryLoadError: cannot load libnl-3.so.200 and libnl-genl-3.so.200");
  expect(out).toContain("install it with: apt-get install libnl-3-200 libnl-genl-3-200");
});

/** Runs `script` in a fresh bun whose mount namespace hides `hidden` system libraries (bound over by /dev/null). */
function runHiding(hidden: readonly string[], script: string, cwd?: string) {
  const hide = hidden.map((l) => `mount --bind /dev/null "$(readlink -f /usr/lib/x86_64-linux-gnu/${l})"`).join(" && ");
  return Bun.spawnSync(["unshare", "-m", "sh", "-c", `${hide === "" ? "true" : hide} && exec "$0" -e "$1"`, process.execPath, script], {
    stdout: "pipe",
    stderr: "pipe",
    ...(cwd !== undefined ? { cwd } : {}),
  });
}

const LIBNL = JSON.stringify(new URL("../../../ffi/libnl.ts", import.meta.url).pathname);
const LIBC = JSON.stringify(new URL("../../../ffi/libc.ts", import.meta.url).pathname);

test("a library planted in the working directory is never loaded, with or without a system libnl", () => {
  // A shared object whose constructor writes a marker file, under the names gorb loads, in a temp cwd.
  const dir = mkdtempSync(join(tmpdir(), "gorb-plant-"));
  try {
    writeFileSync(join(dir, "planted.c"), `#include <stdio.h>
      __attribute__((constructor)) static void planted(void) { FILE *f = fopen("${dir}/MARKER", "w"); if (f) fclose(f); }`);
    const cc = Bun.spawnSync(["cc", "-shared", "-fPIC", "-o", join(dir, "libnl-3.so.200"), join(dir, "planted.c")], { stderr: "pipe" });
    expect(cc.stderr.toString()).toBe("");
    for (const name of ["libnl-genl-3.so.200", "libc.so.6"]) copyFileSync(join(dir, "libnl-3.so.200"), join(dir, name));
    const script = `
      const { openLibnl } = await import(${LIBNL});
      const { errno } = await import(${LIBC});
      errno();
      try { console.log(openLibnl().source); } catch (e) { console.log(e.name); }`;
    const without = runHiding(["libnl-3.so.200", "libnl-genl-3.so.200"], script, dir);
    expect([without.stdout.toString().trim(), existsSync(join(dir, "MARKER"))]).toEqual(["LibraryLoadError", false]);
    const withSystem = runHiding([], script, dir);
    expect([withSystem.stdout.toString().trim(), existsSync(join(dir, "MARKER"))]).toEqual(["system", false]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the system libraries are loaded by absolute path from the ld.so cache or the system directories", () => {
  const libnl3 = findSystemLibrary("libnl-3.so.200");
  expect(libnl3).toStartWith("/");
  expect(libraryDirs("x64")).toEqual(["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"]);
  // Without a cache the directories still find it; a soname in no system place is not found, whatever the cwd holds.
  expect(findSystemLibrary("libnl-3.so.200", { cacheFile: "/nonexistent" })).toMatch(/^\/(usr\/)?lib\/x86_64-linux-gnu\/libnl-3\.so\.200$/);
  expect(findSystemLibrary("libgorb-nothing.so.1")).toBeNull();
  expect(() => findSystemLibrary("./libnl-3.so.200")).toThrow("is a path, not a soname");
});

test("system libnl-3 without libnl-genl-3: both come from the other copy, never a mix of the two", () => {
  // The "other copy" stands in for the compiled executable's embedded libnl: real copies of the libraries in a
  // private directory, passed as the place to load from the way ffi/libnl-copies.ts does.
  const dir = mkdtempSync(join(tmpdir(), "gorb-embedded-"));
  try {
    for (const name of ["libnl-3.so.200", "libnl-genl-3.so.200"]) copyFileSync(findSystemLibrary(name) ?? "", join(dir, name));
    const script = `
      const { openLibnl } = await import(${LIBNL});
      const nl = openLibnl({ source: "embedded:${dir}", libnl3: "${dir}/libnl-3.so.200", libnlGenl3: "${dir}/libnl-genl-3.so.200" });
      const family = nl.resolveGenlFamily("nlctrl");
      const maps = (await Bun.file("/proc/self/maps").text()).split("\\n").filter((l) => l.includes("libnl-"));
      const places = [...new Set(maps.map((l) => l.slice(l.indexOf("/")).replace(/\\/[^/]*$/, "")))];
      console.log(JSON.stringify({ source: nl.source, family, places }));`;
    const r = runHiding(["libnl-genl-3.so.200"], script);
    expect(r.stderr.toString()).toBe("");
    expect(JSON.parse(r.stdout.toString())).toEqual({ source: `embedded:${dir}`, family: 0x10, places: [dir] });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a place whose libnl-genl-3 fails to load after its libnl-3 did is not mixed with another place", () => {
  const dir = mkdtempSync(join(tmpdir(), "gorb-partial-"));
  try {
    copyFileSync(findSystemLibrary("libnl-3.so.200") ?? "", join(dir, "libnl-3.so.200"));
    writeFileSync(join(dir, "libnl-genl-3.so.200"), "not an ELF file");
    mkdirSync(join(dir, "good"));
    for (const name of ["libnl-3.so.200", "libnl-genl-3.so.200"]) copyFileSync(findSystemLibrary(name) ?? "", join(dir, "good", name));
    const script = `
      const { openLibnl } = await import(${LIBNL});
      const broken = { source: "broken", libnl3: "${dir}/libnl-3.so.200", libnlGenl3: "${dir}/libnl-genl-3.so.200" };
      const good = { source: "good", libnl3: "${dir}/good/libnl-3.so.200", libnlGenl3: "${dir}/good/libnl-genl-3.so.200" };
      for (const place of [broken, good]) try { openLibnl(place); console.log("loaded"); } catch (e) { console.log(e.message); }`;
    // The system copies are hidden, so "broken" is tried first; "good" must not be loaded beside its libnl-3.
    const r = runHiding(["libnl-3.so.200", "libnl-genl-3.so.200"], script);
    const lines = r.stdout.toString().trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain("not mixing with another copy of libnl-3");
    expect(lines[1]).toContain("broken: libnl-3 is already loaded from there, and copies of libnl are never mixed");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a place that failed is not remembered: files put at its paths later are never loaded", () => {
  // The compiled executable's copies go to a private directory that is deleted after the attempt; another user
  // could later put their own files at the same paths, which a remembered place would load on the next call.
  const dir = mkdtempSync(join(tmpdir(), "gorb-gone-"));
  try {
    const script = `
      const { openLibnl } = await import(${LIBNL});
      const { copyFileSync } = await import("node:fs");
      const gone = { source: "gone", libnl3: "${dir}/libnl-3.so.200", libnlGenl3: "${dir}/libnl-genl-3.so.200" };
      try { openLibnl(gone); console.log("loaded"); } catch (e) { console.log(e.failures.map((f) => f.source).join(",")); }
      for (const name of ["libnl-3.so.200", "libnl-genl-3.so.200"]) copyFileSync("${dir}/real/" + name, "${dir}/" + name);
      try { console.log(openLibnl().source); } catch (e) { console.log(e.failures.map((f) => f.source).join(",")); }`;
    mkdirSync(join(dir, "real"));
    for (const name of ["libnl-3.so.200", "libnl-genl-3.so.200"]) copyFileSync(findSystemLibrary(name) ?? "", join(dir, "real", name));
    const r = runHiding(["libnl-3.so.200", "libnl-genl-3.so.200"], script);
    expect(r.stderr.toString()).toBe("");
    expect(r.stdout.toString().trim().split("\n")).toEqual(["system,gone", "system"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
