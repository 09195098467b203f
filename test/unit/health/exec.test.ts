/** The exec checker with real scripts: pass, fail, hang (killed on cancel), environment, allowed directories. */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execChecker } from "../../../src/health/checkers/exec.ts";
import { type ExecProbe, parsePulseOptions } from "../../../src/health/options.ts";
import { dead, gone, pidIn } from "../_process.ts";

const live = () => new AbortController().signal;
const dir = mkdtempSync(join(tmpdir(), "gorb-exec-"));
const other = mkdtempSync(join(tmpdir(), "gorb-exec-other-"));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(other, { recursive: true, force: true });
});

function script(name: string, body: string, where = dir): string {
  const path = join(where, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}
function probe(args: Record<string, unknown>): ExecProbe {
  const o = parsePulseOptions({ type: "exec", args });
  if (o.type !== "exec") throw new Error("not exec");
  return o.exec;
}
const target = { host: "10.1.2.3", port: 8080 };

/** A process of the same parent as `sibling` other than it (the script's foreground child), once it exists. */
async function childOf(sibling: number): Promise<number> {
  const parent = Number(readFileSync(`/proc/${sibling}/stat`, "utf8").split(") ")[1]?.split(" ")[1]);
  for (;;) {
    const children = readFileSync(`/proc/${parent}/task/${parent}/children`, "utf8").trim().split(/\s+/).map(Number);
    const other = children.find((c) => c !== sibling && c > 0);
    if (other !== undefined) return other;
    await Bun.sleep(5);
  }
}

describe("exec checker", () => {
  test("exit 0 passes; the environment describes the backend and nothing else of gorb's", async () => {
    const out = join(dir, "env.out");
    const path = script("env.sh", `env | sort > ${out}; [ "$GORB_HOST" = 10.1.2.3 ] && [ "$GORB_PORT" = 8080 ]`);
    const r = await execChecker(probe({ command: path }), 2_000, [dir]).check(target, live());
    expect(r).toMatchObject({ ok: true, kind: "pass", code: "exit 0", message: `exec ${path} for 10.1.2.3:8080: exit 0` });
    const env = readFileSync(out, "utf8");
    expect(env).toContain("GORB_TIMEOUT_MS=2000");
    expect(env).not.toContain("HOME=");
  });

  test("the program runs in /, not in gorb's working directory", async () => {
    const out = join(dir, "pwd.out");
    const path = script("pwd.sh", `pwd > ${out}`);
    expect(process.cwd()).not.toBe("/");
    expect(await execChecker(probe({ command: path }), 1_000, [dir]).check(target, live())).toMatchObject({ ok: true });
    expect(readFileSync(out, "utf8")).toBe("/\n");
  });

  test("another exit status fails with it; arguments are passed without a shell", async () => {
    const path = script("args.sh", `[ "$1" = 'a b' ] && exit 3; exit 4`);
    const r = await execChecker(probe({ command: [path, "a b"] }), 1_000, [dir]).check(target, live());
    expect(r).toMatchObject({ ok: false, kind: "fail", code: "exit 3" });
    // As a string, the command is split on spaces: "$1" is "a".
    expect((await execChecker(probe({ command: `${path} a b` }), 1_000, [dir]).check(target, live())).code).toBe("exit 4");
  });

  test("output is discarded, never reported", async () => {
    const path = script("talk.sh", "echo SECRET123; echo SECRET123 >&2; exit 1");
    const r = await execChecker(probe({ command: path }), 1_000, [dir]).check(target, live());
    expect(JSON.stringify(r)).not.toContain("SECRET123");
  });

  test("a hanging script is killed when the check is cancelled (the monitor's timeout)", async () => {
    const pidFile = join(dir, "hang.pid");
    const path = script("hang.sh", `echo $$ > ${pidFile}; exec sleep 30`);
    const ctl = new AbortController();
    const pending = execChecker(probe({ command: path }), 1_000, [dir]).check(target, ctl.signal);
    while (!existsSync(pidFile) || readFileSync(pidFile, "utf8").trim() === "") await Bun.sleep(5);
    const pid = Number(readFileSync(pidFile, "utf8"));
    ctl.abort(new Error("timed out after 1s"));
    const r = await pending;
    expect(r).toMatchObject({ ok: false, kind: "timeout" });
    // The process is gone (reaped): signal 0 fails with ESRCH.
    for (;;) {
      try {
        process.kill(pid, 0);
        await Bun.sleep(5);
      } catch (err) {
        expect((err as NodeJS.ErrnoException).code).toBe("ESRCH");
        break;
      }
    }
  });

  test("the program's own children die with it: at the timeout, and when it exits leaving one behind", async () => {
    const pidFile = join(dir, "tree.pid");
    // A script that runs sleep in the background and in the foreground (no exec): killing the shell alone left both.
    const hang = script("tree.sh", `sleep 30 & echo $! > ${pidFile}; sleep 30`);
    const ctl = new AbortController();
    const pending = execChecker(probe({ command: hang }), 1_000, [dir]).check(target, ctl.signal);
    const background = await pidIn(pidFile);
    const foreground = await childOf(background);
    ctl.abort(new Error("timed out after 1s"));
    expect(await pending).toMatchObject({ ok: false, kind: "timeout" });
    expect(await dead(background)).toBe(true);
    expect(await dead(foreground)).toBe(true);

    const leftFile = join(dir, "left.pid");
    const leaves = script("leaves.sh", `sleep 30 & echo $! > ${leftFile}; exit 0`);
    expect(await execChecker(probe({ command: leaves }), 1_000, [dir]).check(target, live())).toMatchObject({ ok: true });
    expect(await dead(await pidIn(leftFile))).toBe(true);
  });

  test("what the program put in a session of its own (setsid) dies too: at the timeout, and when it exits", async () => {
    // Each `setsid sleep 1000` leads a session and group of its own: killing the program's group missed it, and
    // once the script had exited it was init's child, out of reach; one more left running per check.
    const escapes = (pidFile: string, then: string) => script(`setsid-${then.split(" ")[0]}.sh`, `setsid sh -c 'echo $$ > ${pidFile}; exec sleep 1000' & ${then}`);
    const hungFile = join(dir, "setsid-hung.pid");
    const ctl = new AbortController();
    const pending = execChecker(probe({ command: escapes(hungFile, "sleep 30") }), 1_000, [dir]).check(target, ctl.signal);
    const hung = await pidIn(hungFile);
    ctl.abort(new Error("timed out after 1s"));
    expect(await pending).toMatchObject({ ok: false, kind: "timeout" });
    expect(await gone(hung)).toBe(true);

    const leftFile = join(dir, "setsid-left.pid");
    const leaves = escapes(leftFile, `while [ ! -s ${leftFile} ]; do :; done; exit 0`);
    expect(await execChecker(probe({ command: leaves }), 1_000, [dir]).check(target, live())).toMatchObject({ ok: true });
    expect(await gone(await pidIn(leftFile))).toBe(true);
  });

  test("a process gorb started itself (in its own session, as a test's etcd) is no program's orphan: checks that end leave it running", async () => {
    const own = Bun.spawn(["sleep", "1000"], { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
    try {
      const leaves = script("own-child.sh", "exit 0");
      for (let i = 0; i < 2; i++) expect(await execChecker(probe({ command: leaves }), 1_000, [dir]).check(target, live())).toMatchObject({ ok: true });
      // The sweeps ran as the checks ended (before their answers): had one taken it for an orphan, it would be stopped,
      // or dying with SIGKILL pending, or dead.
      const status = readFileSync(`/proc/${own.pid}/status`, "utf8");
      const field = (name: string) => BigInt(`0x${/^(\w+):\s*(\S+)/m.exec(status.split("\n").find((l) => l.startsWith(`${name}:`)) ?? "")?.[2] ?? "0"}`);
      const pending = field("SigPnd") | field("ShdPnd");
      expect([status.split("\n").find((l) => l.startsWith("State:"))?.split(/\s+/)[1], pending & ((1n << 8n) | (1n << 18n)), own.exitCode, own.signalCode]).toEqual(["S", 0n, null, null]);
    } finally {
      own.kill("SIGKILL");
      await own.exited;
    }
  });

  test("a program outside the allowed directories is a check error, and never runs", async () => {
    const marker = join(other, "ran");
    const path = script("outside.sh", `touch ${marker}`, other);
    const r = await execChecker(probe({ command: path }), 1_000, [dir]).check(target, live());
    expect(r).toMatchObject({ ok: false, kind: "local-error", code: "EPERM" });
    expect(existsSync(marker)).toBe(false);
  });

  test("a program that cannot be started is a check error", async () => {
    const r = await execChecker(probe({ command: join(dir, "missing") }), 1_000, [dir]).check(target, live());
    expect(r).toMatchObject({ ok: false, kind: "local-error" });
  });

  test("a shell only when asked, and only with / allowed", async () => {
    const denied = await execChecker(probe({ command: "exit 0", shell: true }), 1_000, [dir]).check(target, live());
    expect(denied).toMatchObject({ kind: "local-error", code: "EPERM" });
    const r = await execChecker(probe({ command: 'test "$GORB_PORT" -eq 8080 && exit 0; exit 1', shell: true }), 1_000, ["/"]).check(target, live());
    expect(r).toMatchObject({ ok: true, code: "exit 0", message: "exec shell command for 10.1.2.3:8080: exit 0" });
  });

  test("a shell command whose program is missing or not executable (the shell exits 127 or 126) is a check error, as without a shell", async () => {
    const check = (command: string) => execChecker(probe({ command, shell: true }), 1_000, ["/"]).check(target, live());
    expect(await check(join(dir, "missing.sh"))).toMatchObject({ ok: false, kind: "local-error", code: "exit 127" });
    const notExecutable = script("not-executable.sh", "exit 0");
    chmodSync(notExecutable, 0o644);
    expect(await check(`${notExecutable} --fast`)).toMatchObject({ ok: false, kind: "local-error", code: "exit 126" });
    // Any other status is the check's verdict, as is what the command itself makes of a missing program.
    expect(await check("exit 2")).toMatchObject({ ok: false, kind: "fail", code: "exit 2" });
    expect(await check(`${join(dir, "missing.sh")} || exit 1`)).toMatchObject({ ok: false, kind: "fail", code: "exit 1" });
  });

  test("options: an absolute program is required; a shell takes a string", () => {
    expect(() => parsePulseOptions({ type: "exec" })).toThrow("pulse.args.command: an exec pulse needs a command");
    expect(() => parsePulseOptions({ type: "exec", args: { command: "check.sh" } })).toThrow("pulse.args.command: the program must be an absolute path");
    expect(() => parsePulseOptions({ type: "exec", args: { command: ["/a/../b"] } })).toThrow('without ".."');
    expect(() => parsePulseOptions({ type: "exec", args: { command: ["/bin/true"], shell: true } })).toThrow("pulse.args.shell:");
    expect(probe({ command: "/usr/lib/check  --fast" }).argv).toEqual(["/usr/lib/check", "--fast"]);
  });
});
