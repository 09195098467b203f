import { describe, expect, test } from "bun:test";
import { Pacer } from "../../src/pacer.ts";

/** A clock that advances only when an item "works" (by `cost(i)` ms), counting how often it is read. */
function fakeClock() {
  let t = 0;
  let reads = 0;
  return {
    now: () => {
      reads++;
      return t;
    },
    work: (ms: number) => {
      t += ms;
    },
    reads: () => reads,
  };
}

/** Runs `items` through a pacer, each costing `cost(i)` ms; the work done between two turns, and the clock reads. */
async function slices(items: number, cost: (i: number) => number, sliceMs = 10) {
  const clock = fakeClock();
  const pacer = new Pacer(sliceMs, clock.now);
  const between: number[] = [];
  let since = 0;
  for (let i = 0; i < items; i++) {
    if (pacer.due()) {
      between.push(since);
      since = 0;
      await pacer.turn();
    }
    clock.work(cost(i));
    since += cost(i);
  }
  return { between, reads: clock.reads() };
}

describe("Pacer", () => {
  test("turns once a slice of work is used up, reading the clock far less often than once per item", async () => {
    // Costs in 1/1024 ms, so the sums are exact: 10,000 items of ~0.01 ms, about 1,000 per slice.
    const cost = 10 / 1024;
    const { between, reads } = await slices(10_000, () => cost);
    expect(between.length).toBeGreaterThanOrEqual(9);
    expect(between.length).toBeLessThanOrEqual(10);
    for (const ms of between) {
      expect(ms).toBeGreaterThanOrEqual(10);
      expect(ms).toBeLessThanOrEqual(10 + 64 * cost); // at most one stride past the slice
    }
    expect(reads).toBeLessThan(400); // 248: the stride cap, 64 items, with a few shorter strides near each turn
  });

  test("items slower than the ones before overshoot the slice by at most one stride of them", async () => {
    // Cheap items first (the stride grows to its cap), then items of 1 ms each.
    const { between } = await slices(2_000, (i) => (i < 500 ? 1 / 1024 : 1));
    expect(between.length).toBeGreaterThan(0);
    for (const ms of between) expect(ms).toBeLessThanOrEqual(10 + 64);
    // Once the stride has adapted to the slow items, the slices are back to about 10 ms.
    for (const ms of between.slice(3)) expect(ms).toBeLessThanOrEqual(11);
  });

  test("an item longer than the slice turns before the next item", async () => {
    const { between } = await slices(5, () => 25);
    expect(between).toEqual([25, 25, 25, 25]);
  });

  test("a turn lets the event loop run a macrotask that was queued during the slice", async () => {
    const clock = fakeClock();
    const pacer = new Pacer(10, clock.now);
    let ran = false;
    setImmediate(() => {
      ran = true;
    });
    clock.work(20);
    expect(pacer.due()).toBe(true);
    expect(ran).toBe(false);
    await pacer.turn();
    expect(ran).toBe(true);
    expect(pacer.due()).toBe(false); // a new slice
  });
});
