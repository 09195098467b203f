/**
 * The daemon's quorum hook runner (src/daemon/hooks.ts) with real processes: a program under the hook directory
 * runs with the environment it is given and nothing else; one outside it (also through a symlink) does not run;
 * a non-zero exit and a hook that outlives its timeout are logged, and the runner never waits for a hook.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { quorumHookRunner } from "../../../src/daemon/hooks.ts";
import type { Logger } from "../../../src/log.ts";
import { dead, gone, pidIn } from "../_process.ts";

const root = mkdtempSync(join(tmpdir(), "gorb-hooks-"));
const dir = join(root, "hooks");
const outside = join(root, "elsewhere");
for (const d of [dir, outside]) Bun.spawnSync(["mkdir", "-p", d]);

function script(path: string, body: string): string {
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

/** A logger whose lines can be awaited. */
function waitingLogger() {
  const lines: string[] = [];
  const waiters: { match: string; resolve: (line: string) => void }[] = [];
  const push = (line: string) => {
    lines.push(line);
    for (const w of [...waiters]) if (line.includes(w.match)) w.resolve(line);
  };
  const log: Logger = {
    debug: (m) => push(`debug ${m}`),
    info: (m) => push(`info ${m}`),
    warn: (m) => push(`warn ${m}`),
    error: (m) => push(`error ${m}`),
  };
  const line = (match: string) =>
    new Promise<string>((resolve) => {
      const found = lines.find((l) => l.includes(match));
      if (found !== undefined) resolve(found);
      else waiters.push({ match, resolve });
    });
  return { log, lines, line };
}

const ENV = { PATH: "/usr/bin:/bin", GORB_SERVICE: "web", GORB_STATE: "down", GORB_HEALTHY: "0" };

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("quorum hooks", () => {
  test("a program under the hook directory runs with exactly the environment given", async () => {
    const out = join(root, "env.txt");
    const hook = script(join(dir, "dump.sh"), `env | sort > ${out}; echo "CWD=$(pwd)" >> ${out}`);
    const { log, line } = waitingLogger();
    quorumHookRunner(dir, 10_000, log)(hook, ENV);
    expect(await line("dump.sh")).toBe(`info quorum hook ${hook} (service "web" down): done`);
    const env = readFileSync(out, "utf8").trim().split("\n").filter((l) => !l.startsWith("PWD=") && !l.startsWith("SHLVL=") && !l.startsWith("_="));
    // ... in /, not in gorb's working directory (as exec checks).
    expect(env).toEqual(["GORB_HEALTHY=0", "GORB_SERVICE=web", "GORB_STATE=down", "PATH=/usr/bin:/bin", "CWD=/"]);
  });

  test("outside the directory, also through a symlink inside it, nothing runs", async () => {
    const marker = join(root, "ran-outside");
    const evil = script(join(outside, "evil.sh"), `touch ${marker}`);
    const link = join(dir, "link.sh");
    symlinkSync(evil, link);
    const { log, lines } = waitingLogger();
    const run = quorumHookRunner(dir, 10_000, log);
    run(evil, ENV);
    run(link, ENV);
    expect(lines).toEqual([
      `error quorum hook ${evil} (service "web" down): not run: not a program under ${dir}`,
      `error quorum hook ${link} (service "web" down): not run: not a program under ${dir}`,
    ]);
    await Bun.sleep(0);
    expect(existsSync(marker)).toBe(false);
  });

  test("a failing hook and one that outlives its timeout are logged; the runner returns at once", async () => {
    const failing = script(join(dir, "fail.sh"), "exit 3");
    const slow = script(join(dir, "slow.sh"), "exec sleep 30");
    const { log, line, lines } = waitingLogger();
    const run = quorumHookRunner(dir, 200, log);
    run(failing, ENV);
    run(slow, ENV);
    expect(lines).toEqual([]); // returned before either hook ended: the runner never waits for one
    expect(await line("fail.sh")).toBe(`error quorum hook ${failing} (service "web" down): exit 3`);
    expect(await line("slow.sh")).toBe(`error quorum hook ${slow} (service "web" down): killed after 200 ms`);
  });

  test("a service's hooks run one at a time, in order; while one runs only the latest change waits", async () => {
    // A flapping service: a slow quorum_down, then up, then down again before it ends. Run at once, the first down
    // could end after the up and leave what it drives "down"; the up is superseded by the second down anyway.
    const order = join(root, "order.txt");
    const go = join(root, "go");
    const slow = script(join(dir, "slow-down.sh"), `echo "start $GORB_STATE" >> ${order}; while [ ! -e ${go} ]; do sleep 0.01; done; echo "end $GORB_STATE" >> ${order}`);
    const quick = script(join(dir, "quick.sh"), `echo "ran $GORB_SERVICE $GORB_STATE" >> ${order}`);
    const { log, line, lines } = waitingLogger();
    const run = quorumHookRunner(dir, 10_000, log);
    run(slow, { ...ENV, GORB_STATE: "down" });
    while (!existsSync(order)) await Bun.sleep(5);
    run(quick, { ...ENV, GORB_STATE: "up" });
    run(quick, { ...ENV, GORB_STATE: "down" });
    // Another service's hook does not wait for web's.
    run(quick, { ...ENV, GORB_SERVICE: "api", GORB_STATE: "up" });
    expect(await line('(service "api" up): done')).toBe(`info quorum hook ${quick} (service "api" up): done`);
    expect(lines).toContain(`warn quorum hook ${quick} (service "web" up): not run: superseded by a later change of the service`);
    writeFileSync(go, "");
    await line(`quick.sh (service "web" down): done`);
    expect(readFileSync(order, "utf8").split("\n").filter((l) => l !== "")).toEqual(["start down", "ran api up", "end down", "ran web down"]);
  });

  test("a hook killed at its timeout takes its children with it (a script's sleep or curl)", async () => {
    const pidFile = join(root, "tree.pid");
    const tree = script(join(dir, "tree.sh"), `sleep 30 & echo $! > ${pidFile}; sleep 30`);
    const { log, line } = waitingLogger();
    quorumHookRunner(dir, 1_000, log)(tree, ENV);
    const background = await pidIn(pidFile);
    expect(await line("tree.sh")).toBe(`error quorum hook ${tree} (service "web" down): killed after 1000 ms`);
    const alive = !(await dead(background));
    if (alive) process.kill(background, "SIGKILL");
    expect(alive).toBe(false);
  });
  test("what a hook leaves running when it exits dies with it: it cannot act after the service's next hook", async () => {
    // A quorum_down that sends its call in the background and exits at once: left running, the call could land
    // after the quorum_up that followed, or hang past the timeout.
    const pidFile = join(root, "left.pid");
    const order = join(root, "left-order.txt");
    const go = join(root, "left-go");
    const down = script(join(dir, "left-down.sh"), `(while [ ! -e ${go} ]; do sleep 0.01; done; echo down >> ${order}) & echo $! > ${pidFile}; exit 0`);
    const up = script(join(dir, "left-up.sh"), `echo up >> ${order}`);
    const { log, line } = waitingLogger();
    const run = quorumHookRunner(dir, 10_000, log);
    run(down, { ...ENV, GORB_STATE: "down" });
    const background = await pidIn(pidFile);
    expect(await line("left-down.sh")).toBe(`info quorum hook ${down} (service "web" down): done`);
    run(up, { ...ENV, GORB_STATE: "up" });
    await line("left-up.sh");
    const alive = !(await dead(background));
    if (alive) process.kill(background, "SIGKILL");
    writeFileSync(go, ""); // lets a survivor end
    expect(alive).toBe(false);
  });

  test("what a hook put in a session of its own (setsid) dies with it too", async () => {
    // `setsid` leaves the hook's process group: killing the group missed it, and it ran on as init's child.
    const pidFile = join(root, "setsid.pid");
    const hook = script(join(dir, "setsid.sh"), `setsid sh -c 'echo $$ > ${pidFile}; exec sleep 1000' & while [ ! -s ${pidFile} ]; do :; done; exit 0`);
    const { log, line } = waitingLogger();
    quorumHookRunner(dir, 10_000, log)(hook, ENV);
    expect(await line("setsid.sh")).toBe(`info quorum hook ${hook} (service "web" down): done`);
    const escaped = await pidIn(pidFile);
    const survived = !(await gone(escaped));
    if (survived) process.kill(escaped, "SIGKILL");
    expect(survived).toBe(false);
  });
});
