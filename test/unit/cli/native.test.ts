/**
 * Run from source, gorb never touches the embedded libnl: the compiled-only module is not imported and
 * nothing is loaded until a kernel command needs it.
 */
import { expect, test } from "bun:test";
import { isCompiled, prepareLibnl } from "../../../src/cli/native.ts";

const root = new URL("../../..", import.meta.url).pathname;

test("from source: not compiled, prepareLibnl is a no-op", async () => {
  expect(isCompiled()).toBe(false);
  expect(await prepareLibnl({ GORB_LIBNL_DIR: "/nonexistent" })).toBeNull();
});

test("client commands and --help do not load libnl (fresh process)", () => {
  // A fresh process: other test files in this run do load libnl (--direct), which would hide the answer.
  const script = `
    import { runCli } from "./src/cli/run.ts";
    import { libnlLoaded } from "./ffi/libnl.ts";
    const io = { stdout() {}, stderr() {}, isTTY: false };
    for (const args of [["--help"], ["service", "ls", "--server", "http://127.0.0.1:1"], ["completion", "bash"], ["backend", "add", "--help"]]) {
      await runCli(args, { io, env: {} });
    }
    // The REST contract's IPVS names and limits (src/ipvs/types.ts, constants.ts: constants only) are the
    // CLI's too; the driver, the codec and the transport must not load.
    const pure = ["/src/ipvs/types.ts", "/src/ipvs/constants.ts"];
    const modules = Object.keys(require.cache ?? {})
      .filter((m) => m.includes("/src/ipvs/") || m.includes("/src/transport/") || m.includes("/src/netlink/") || m.includes("/src/core/gorb") || m.includes("elysia"))
      .filter((m) => !pure.some((p) => m.endsWith(p)));
    console.log(JSON.stringify({ loaded: libnlLoaded(), modules }));
  `;
  const proc = Bun.spawnSync([process.execPath, "-e", script], { cwd: root, stderr: "pipe" });
  expect(proc.stderr.toString()).toBe("");
  expect(JSON.parse(proc.stdout.toString())).toEqual({ loaded: false, modules: [] });
});
