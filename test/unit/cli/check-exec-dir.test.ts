/**
 * `gorb serve --check-exec-dir`: the directories exec health checks may run programs from. Absolute paths only,
 * repeatable (or comma-separated), also `check_exec_dir` in the configuration file; a directory that is missing
 * or that others may write to is refused at start. A recorder stands in for the daemon; the directories are real.
 */
import { afterAll, afterEach, describe, expect, spyOn, test } from "bun:test";
import * as fs from "node:fs";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DaemonRunner, setDaemonRunner } from "../../../src/cli/commands/serve.ts";
import { DaemonOptionError, type DaemonOptions, parseDaemonOptions } from "../../../src/config/daemon-options.ts";
import { ExecDirError, checkExecDirs } from "../../../src/daemon/exec-dirs.ts";
import { runGorb } from "./_harness.ts";

const root = mkdtempSync(join(tmpdir(), "gorb-exec-dirs-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function dir(name: string, mode: number): string {
  const path = join(root, name);
  mkdirSync(path, { recursive: true });
  chmodSync(path, mode);
  return path;
}

let previous: DaemonRunner | null = null;
afterEach(() => {
  if (previous !== null) setDaemonRunner(previous);
  previous = null;
});

function record(): DaemonOptions[] {
  const seen: DaemonOptions[] = [];
  previous = setDaemonRunner(async (options) => {
    seen.push(options);
  });
  return seen;
}

describe("--check-exec-dir", () => {
  test("parsing: absolute paths, comma-separated, trailing slashes dropped, duplicates once; none given: the default (null)", () => {
    expect(parseDaemonOptions({}).checkExecDirs).toBeNull();
    expect(parseDaemonOptions({ checkExecDir: "/etc/gorb/checks/, /opt/checks,/opt/checks" }).checkExecDirs).toEqual(["/etc/gorb/checks", "/opt/checks"]);
    expect(parseDaemonOptions({ checkExecDir: "/" }).checkExecDirs).toEqual(["/"]);
    for (const [value, problem] of [
      ["checks", 'must be an absolute directory path without "..", got "checks"'],
      ["/etc/gorb/../../tmp", 'must be an absolute directory path without "..", got "/etc/gorb/../../tmp"'],
      [" , ", "expected one or more absolute directory paths"],
    ] as const) {
      let error: unknown = null;
      try {
        parseDaemonOptions({ checkExecDir: value });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(DaemonOptionError);
      expect([(error as DaemonOptionError).flag, (error as DaemonOptionError).message]).toEqual(["check-exec-dir", `--check-exec-dir: ${problem}`]);
    }
  });

  test("the flag repeated (and --flag=value) gives every directory to the daemon", async () => {
    const seen = record();
    const a = dir("a", 0o755);
    const b = dir("b", 0o700);
    expect(await runGorb(["serve", "--check-exec-dir", a, `--check-exec-dir=${b}`])).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(seen.map((o) => o.checkExecDirs)).toEqual([[a, b]]);
  });

  test("the configuration file's check_exec_dir (a list), and the flag replacing it", async () => {
    const seen = record();
    const a = dir("from-file-a", 0o755);
    const b = dir("from-file-b", 0o755);
    const c = dir("from-flag", 0o755);
    const config = join(root, "gorb.yaml");
    writeFileSync(config, `check_exec_dir: [${a}, ${b}]\n`);
    expect((await runGorb(["serve", "--config", config])).code).toBe(0);
    expect((await runGorb(["serve", "--config", config, "--check-exec-dir", c])).code).toBe(0);
    expect(seen.map((o) => o.checkExecDirs)).toEqual([[a, b], [c]]);
  });

  test("a directory others may write to, one under such a parent, a missing one or a file is refused at start", async () => {
    const seen = record();
    const open = dir("open", 0o777);
    const under = dir("open-parent/checks", 0o755);
    chmodSync(join(root, "open-parent"), 0o777);
    const missing = join(root, "missing");
    const file = join(root, "file");
    writeFileSync(file, "");
    const refused = async (args: string[]) => {
      const run = await runGorb(["serve", ...args]);
      return [run.code, run.stderr];
    };
    expect(await refused(["--check-exec-dir", open])).toEqual([
      2,
      `error: gorb serve: --check-exec-dir: ${open}: others may write to it (mode 0777); run: chmod o-w ${open}\n`,
    ]);
    expect(await refused(["--check-exec-dir", under])).toEqual([
      2,
      `error: gorb serve: --check-exec-dir: ${under}: its parent ${join(root, "open-parent")} may be written to by others (mode 0777); run: chmod o-w ${join(root, "open-parent")}\n`,
    ]);
    expect(await refused(["--check-exec-dir", missing])).toEqual([2, `error: gorb serve: --check-exec-dir: ${missing}: no such directory\n`]);
    expect(await refused(["--check-exec-dir", file])).toEqual([2, `error: gorb serve: --check-exec-dir: ${file}: is not a directory\n`]);
    expect(await refused(["--check-exec-dir", "relative/dir"])).toEqual([
      2,
      expect.stringContaining('--check-exec-dir: must be an absolute directory path without "..", got "relative/dir"'),
    ]);
    expect(seen).toEqual([]);
  });

  test("a directory whose lookup fails with a thrown null is refused as unreadable, not with a TypeError from reading its code", () => {
    const stat = spyOn(fs, "statSync").mockImplementation(() => {
      throw null;
    });
    try {
      expect(() => checkExecDirs([root])).toThrow(new ExecDirError(root, "cannot read it (null)"));
    } finally {
      stat.mockRestore();
    }
  });
});
