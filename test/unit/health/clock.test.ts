import { expect, test } from "bun:test";
import { systemClock } from "../../../src/health/clock.ts";

test("systemClock fires zero-delay and delayed timers, and clears both kinds", async () => {
  const fired: string[] = [];
  systemClock.setTimer(() => fired.push("immediate"), 0);
  systemClock.setTimer(() => fired.push("timeout"), 1);
  systemClock.clearTimer(systemClock.setTimer(() => fired.push("cleared immediate"), 0));
  systemClock.clearTimer(systemClock.setTimer(() => fired.push("cleared timeout"), 1));
  // A later timer of the same clock: when it fires, every earlier one has had its turn.
  await new Promise<void>((resolve) => systemClock.setTimer(resolve, 5));
  expect(fired.sort()).toEqual(["immediate", "timeout"]);
});

test("systemClock.now is monotonic", () => {
  const a = systemClock.now();
  const b = systemClock.now();
  expect(b).toBeGreaterThanOrEqual(a);
});
