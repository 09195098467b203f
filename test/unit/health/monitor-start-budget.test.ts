/**
 * Starting checks yields the event loop after START_BUDGET_MS of work: an exec check's spawn costs milliseconds, and
 * 256 of them due at once (one tick's entries) held the loop, and the API, for seconds. Here each start costs 5 ms of
 * the monitor's work clock (a counter the checker moves, so the test does not depend on the machine's speed), and a
 * setImmediate loop numbers the event loop's turns: no turn starts more than START_BUDGET_MS's worth of checks.
 */
import { expect, test } from "bun:test";
import type { Checker } from "../../../src/health/checker.ts";
import { HealthMonitor } from "../../../src/health/monitor.ts";
import { parsePulseOptions } from "../../../src/health/options.ts";

/** monitor.ts's START_BUDGET_MS. */
const START_BUDGET_MS = 20;
const START_COST_MS = 5;
const CHECKS = 40;

test("checks due together start over several turns of the event loop, at most START_BUDGET_MS of starting work in each", async () => {
  let work = 0;
  let turn = 0;
  let running = true;
  const spin = () => {
    turn++;
    if (running) setImmediate(spin);
  };
  setImmediate(spin);
  const turns: number[] = [];
  const { promise: allStarted, resolve } = Promise.withResolvers<void>();
  // A check that costs START_COST_MS to start (as a spawn does) and then holds its slot until cancelled.
  const costly: Checker = {
    run(_target, _done, released) {
      work += START_COST_MS;
      turns.push(turn);
      if (turns.length === CHECKS) resolve();
      return () => released();
    },
    check: () => new Promise(() => {}),
  };
  const monitor = new HealthMonitor({ onUpdate() {}, random: () => 0, checkerFor: () => costly, workClock: () => work });
  const options = parsePulseOptions({ type: "tcp", interval: "10s", args: { timeout: "5s" } });
  for (let i = 0; i < CHECKS; i++) monitor.add(`b${i}`, { host: "10.0.0.1", port: 1000 + i }, options);
  await allStarted;
  running = false;
  monitor.stop();
  const perTurn = new Map<number, number>();
  for (const t of turns) perTurn.set(t, (perTurn.get(t) ?? 0) + 1);
  // The start that crosses the budget is the last of its turn.
  expect(Math.max(...perTurn.values())).toBe(START_BUDGET_MS / START_COST_MS);
  expect(perTurn.size).toBe(CHECKS / (START_BUDGET_MS / START_COST_MS));
});
