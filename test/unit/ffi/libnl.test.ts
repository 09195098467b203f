import { expect, test } from "bun:test";

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
