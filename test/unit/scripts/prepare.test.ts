/**
 * scripts/prepare.mjs, the `pretest` / `presandbox` step of the two-command start, run with node as npm runs it.
 * The real dpkg-query answers; apt-get and npm are stand-ins on PATH that record their arguments (a test must not
 * install packages on the host or re-install node_modules). A missing package is one that cannot exist.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pkg from "../../../package.json" with { type: "json" };

const ROOT = join(import.meta.dir, "..", "..", "..");
const SCRIPT = join(ROOT, "scripts", "prepare.mjs");
const NO_SUCH = "gorb-test-no-such-package";

let dir: string;
let bin: string;
let calls: string;

/** A stand-in command that appends "name args... @cwd" to the calls file and exits 0. */
function fakeCommand(name: string): void {
  const path = join(bin, name);
  writeFileSync(path, `#!/bin/sh\necho "${name} $* @$(pwd)" >> "${calls}"\n`);
  chmodSync(path, 0o755);
}

function recorded(): string[] {
  return existsSync(calls) ? readFileSync(calls, "utf8").trim().split("\n").filter((l) => l !== "") : [];
}

function prepare(script: string, args: string[], env: Record<string, string> = {}): { code: number; stdout: string; stderr: string } {
  rmSync(calls, { force: true });
  const proc = Bun.spawnSync(["node", script, ...args], {
    env: { PATH: `${bin}:/usr/bin:/bin:/usr/sbin:/sbin`, HOME: dir, ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  return { code: proc.exitCode ?? -1, stdout: proc.stdout.toString(), stderr: proc.stderr.toString() };
}

function packagesFile(text: string): string {
  const path = join(dir, `packages-${Math.random().toString(36).slice(2)}`);
  writeFileSync(path, text);
  return path;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "gorb-prepare-"));
  bin = join(dir, "bin");
  mkdirSync(bin);
  calls = join(dir, "calls");
  fakeCommand("apt-get");
  fakeCommand("npm");
  fakeCommand("sudo");
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("scripts/prepare.mjs", () => {
  test("npm runs it before `npm test` and `npm run sandbox`", () => {
    expect(pkg.scripts.pretest).toBe("node scripts/prepare.mjs test");
    expect(pkg.scripts.presandbox).toBe("node scripts/prepare.mjs sandbox");
  });

  test("with everything installed it runs neither apt-get nor npm and prints nothing", () => {
    // This host has every package of .ci/debian-packages (.ci/rig-deps.sh) and node_modules.
    for (const purpose of ["test", "sandbox"]) {
      expect(prepare(SCRIPT, [purpose])).toEqual({ code: 0, stdout: "", stderr: "" });
      expect(recorded()).toEqual([]);
    }
  });

  test("not root: one line naming the exact command, exit 1, nothing run", () => {
    const list = packagesFile(`# comment\nbusybox-static sandbox test\n${NO_SUCH}  sandbox test  why\n`);
    const run = prepare(SCRIPT, ["test"], { GORB_PREPARE_PACKAGES: list, GORB_PREPARE_ROOT: "0" });
    expect(run).toEqual({
      code: 1,
      stdout: "",
      stderr: `npm test: Debian packages ${NO_SUCH} are missing; run: sudo apt-get update && sudo apt-get install -y --no-install-recommends ${NO_SUCH}\n`,
    });
    expect(recorded()).toEqual([]);
  });

  test("each command asks only for its own packages", () => {
    const list = packagesFile(`${NO_SUCH}-a test\n${NO_SUCH}-b sandbox test\n`);
    const run = prepare(SCRIPT, ["sandbox"], { GORB_PREPARE_PACKAGES: list, GORB_PREPARE_ROOT: "0" });
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      `npm run sandbox: Debian packages ${NO_SUCH}-b are missing; run: sudo apt-get update && sudo apt-get install -y --no-install-recommends ${NO_SUCH}-b\n`,
    );
  });

  test("root: apt-get update, then apt-get install of the missing packages only", () => {
    const list = packagesFile(`busybox-static sandbox test\n${NO_SUCH} test\n`);
    const run = prepare(SCRIPT, ["test"], { GORB_PREPARE_PACKAGES: list, GORB_PREPARE_ROOT: "1" });
    expect(run.code).toBe(0);
    expect(recorded()).toEqual([`apt-get update -q @${ROOT}`, `apt-get install -q -y --no-install-recommends ${NO_SUCH} @${ROOT}`]);
  });

  test("no cached kernel and no apt lists: apt-get update as root, the command otherwise", () => {
    const env = { GORB_RIG_CACHE: join(dir, "no-cache"), GORB_PREPARE_APT_LISTS: join(dir, "no-lists") };
    expect(prepare(SCRIPT, ["sandbox"], { ...env, GORB_PREPARE_ROOT: "1" }).code).toBe(0);
    expect(recorded()).toEqual([`apt-get update -q @${ROOT}`]);
    expect(prepare(SCRIPT, ["sandbox"], { ...env, GORB_PREPARE_ROOT: "0" }).stderr).toBe(
      "npm run sandbox: apt has no package lists (needed to fetch the rig's kernel); run: sudo apt-get update\n",
    );
  });

  test("without node_modules it runs npm ci in the project first", () => {
    const project = join(dir, "project");
    mkdirSync(join(project, "scripts"), { recursive: true });
    mkdirSync(join(project, ".ci"), { recursive: true });
    copyFileSync(SCRIPT, join(project, "scripts", "prepare.mjs"));
    copyFileSync(join(ROOT, ".ci", "debian-packages"), join(project, ".ci", "debian-packages"));
    const run = prepare(join(project, "scripts", "prepare.mjs"), ["test"], { GORB_RIG_CACHE: join(ROOT, ".rig-cache") });
    expect(run.code).toBe(0);
    expect(recorded()).toEqual([`npm ci --no-audit --no-fund @${project}`]);
  });

  test("an unknown command is a usage error", () => {
    expect(prepare(SCRIPT, ["build"])).toEqual({ code: 1, stdout: "", stderr: "usage: node scripts/prepare.mjs test|sandbox\n" });
  });
});
