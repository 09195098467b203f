/**
 * The compiled executable's own libnl copies (ffi/libnl-copies.ts) are loaded from memfds, else only from a directory
 * no other user can touch: a TMPDIR another user owns (sudo -E), a world-writable or a symlinked directory is never
 * written to or loaded from. Each case runs in a fresh bun whose mount namespace hides the system libnl, so the
 * copies are what gets loaded; the copies are real libnl files read before any mount of the case.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findSystemLibrary } from "../../../ffi/library-path.ts";

const COPIES = JSON.stringify(new URL("../../../ffi/libnl-copies.ts", import.meta.url).pathname);
const NOBODY = 65534;
const LIBS = ["libnl-3.so.200", "libnl-genl-3.so.200"];

let root: string;
/** Root-owned, 0700: where the real library files are copied from, as the executable's embedded copies. */
let originals: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "gorb-copies-"));
  originals = join(root, "originals");
  mkdirSync(originals, { mode: 0o700 });
  for (const name of LIBS) copyFileSync(findSystemLibrary(name) ?? "", join(originals, name));
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Outcome {
  readonly source?: string;
  /** The mapped libnl files, as /proc/self/maps names them. */
  readonly files?: readonly string[];
  readonly failures?: readonly { readonly source: string; readonly reason: string }[];
}

/**
 * loadLibnl in a fresh bun with the system libnl hidden and `env` as its environment; `setup` (shell commands) runs
 * in its mount namespace after the copies are read.
 */
function load(env: Record<string, string>, options: { memfd: boolean }, setup = "true"): Outcome {
  const hide = LIBS.map((l) => `mount --bind /dev/null "$(readlink -f /usr/lib/x86_64-linux-gnu/${l})"`).join(" && ");
  const script = `
    const { readFileSync } = await import("node:fs");
    const libs = { libnl3: readFileSync(${JSON.stringify(join(originals, LIBS[0] ?? ""))}), libnlGenl3: readFileSync(${JSON.stringify(join(originals, LIBS[1] ?? ""))}) };
    // Imported before the setup's mounts: the project may itself live under a directory a case mounts over (/tmp).
    const { loadLibnl } = await import(${COPIES});
    const setup = Bun.spawnSync(["sh", "-c", ${JSON.stringify(setup)}], { stderr: "inherit" });
    if (setup.exitCode !== 0) throw new Error("setup failed");
    try {
      const source = await loadLibnl(async () => libs, process.env, ${JSON.stringify(options)});
      const maps = (await Bun.file("/proc/self/maps").text()).split("\\n").filter((l) => l.includes("libnl-"));
      const files = [...new Set(maps.map((l) => l.slice(l.indexOf("/"))))];
      console.log(JSON.stringify({ source, files }));
    } catch (e) {
      console.log(JSON.stringify({ failures: e.failures }));
    }`;
  const r = Bun.spawnSync(["unshare", "-m", "sh", "-c", `${hide} && exec "$0" -e "$1"`, process.execPath, script], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  expect(r.stderr.toString()).toBe("");
  return JSON.parse(r.stdout.toString()) as Outcome;
}

/** A fresh directory under the test's root with `mode`, owned by `uid`. */
function dirOf(name: string, mode: number, uid = 0): string {
  const dir = join(root, name);
  mkdirSync(dir);
  chmodSync(dir, mode);
  chownSync(dir, uid, uid);
  return dir;
}

test("a TMPDIR another user owns (sudo -E) is not touched: the copies are loaded from memfds", () => {
  const theirs = dirOf("nobody-tmp", 0o755, NOBODY);
  const outcome = load({ TMPDIR: theirs, GORB_LIBNL_DIR: theirs }, { memfd: true });
  expect(outcome).toEqual({ source: "embedded:memfd", files: ["/memfd:libnl-3.so.200 (deleted)", "/memfd:libnl-genl-3.so.200 (deleted)"] });
  expect(readdirSync(theirs)).toEqual([]);
});

test("without memfds: a directory another user owns, a world-writable one, a symlink, or one under another user's are skipped for a safe one", () => {
  const safe = dirOf("safe", 0o700);
  const theirs = dirOf("theirs", 0o755, NOBODY);
  const cases: Record<string, string> = {
    "another user's": theirs,
    "world-writable": dirOf("world", 0o777),
    "a symlink to a safe directory": join(root, "link"),
    "under another user's": dirOf("theirs/mine", 0o700),
  };
  symlinkSync(safe, join(root, "link"));
  const sources = Object.fromEntries(Object.entries(cases).map(([what, dir]) => [what, load({ GORB_LIBNL_DIR: dir, TMPDIR: safe }, { memfd: false }).source]));
  expect(sources).toEqual(Object.fromEntries(Object.keys(cases).map((what) => [what, `embedded:${safe}`])));
  // A TMPDIR owned by another user with no GORB_LIBNL_DIR: the next safe place, /tmp (root's, sticky).
  expect(load({ TMPDIR: theirs }, { memfd: false }).source).toBe("embedded:/tmp");
  for (const dir of [safe, theirs, join(theirs, "mine"), join(root, "world")]) expect([dir, readdirSync(dir)]).toEqual([dir, dir === theirs ? ["mine"] : []]);
});

test("without memfds and with every directory unsafe, nothing is loaded and the error says why for each place", () => {
  const open = ["/tmp", "/var/tmp", "/run"].map((d) => `mount -t tmpfs -o mode=0777 tmpfs ${d}`).join(" && ");
  const { failures } = load({}, { memfd: false }, open);
  expect(failures?.map((f) => f.source)).toEqual(["system", "embedded:/tmp", "embedded:/var/tmp", "embedded:/run/gorb"]);
  expect(failures?.slice(1).map((f) => f.reason)).toEqual([
    "not used: /tmp is writable by others (mode 777)",
    "not used: /var/tmp is writable by others (mode 777)",
    "not used: /run is writable by others (mode 777)",
  ]);
});

test("without memfds, a safe directory on a noexec mount is skipped for the next one", () => {
  const outcome = load({}, { memfd: false }, "mount -t tmpfs -o noexec,mode=1777 tmpfs /tmp");
  expect(outcome.source).toBe("embedded:/var/tmp");
});
