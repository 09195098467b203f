import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { HealthWindow } from "../../../src/health/health-window.ts";
import { type HeapItem, TimerHeap } from "../../../src/health/timer-heap.ts";

interface Item extends HeapItem {
  readonly name: number;
}

describe("TimerHeap", () => {
  test("pops in time order after any mix of inserts, moves and deletes", () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant("set" as const), item: fc.nat(20), at: fc.integer({ min: -1000, max: 1000 }) }),
      fc.record({ kind: fc.constant("delete" as const), item: fc.nat(20) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const items: Item[] = Array.from({ length: 21 }, (_, name) => ({ name, at: 0, heapIndex: -1 }));
        const heap = new TimerHeap<Item>();
        const model = new Map<number, number>();
        for (const o of ops) {
          const item = items[o.item] as Item;
          if (o.kind === "set") {
            heap.set(item, o.at);
            model.set(o.item, o.at);
          } else {
            heap.delete(item);
            model.delete(o.item);
          }
        }
        expect(heap.size).toBe(model.size);
        const popped: number[] = [];
        for (let it = heap.pop(); it !== undefined; it = heap.pop()) {
          expect(it.at).toBe(model.get(it.name) as number);
          expect(it.heapIndex).toBe(-1);
          popped.push(it.at);
        }
        expect(popped).toEqual([...model.values()].sort((a, b) => a - b));
      }),
    );
  });

  test("clear empties the heap and frees every item", () => {
    const heap = new TimerHeap<Item>();
    const a: Item = { name: 1, at: 0, heapIndex: -1 };
    heap.set(a, 5);
    heap.clear();
    expect(heap.size).toBe(0);
    expect(a.heapIndex).toBe(-1);
    expect(heap.peek()).toBeUndefined();
  });
});

describe("HealthWindow", () => {
  test("keeps the last `capacity` results", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10 }), fc.array(fc.boolean(), { maxLength: 50 }), (capacity, results) => {
        const w = new HealthWindow(capacity);
        for (const r of results) w.push(r);
        const last = results.slice(-capacity);
        expect(w.samples).toBe(last.length);
        expect(w.samplesOk).toBe(last.filter(Boolean).length);
        expect(w.health).toBe(last.length === 0 ? 0 : last.filter(Boolean).length / last.length);
      }),
    );
  });

  test("reset forgets everything; a bad capacity is refused", () => {
    const w = new HealthWindow(3);
    w.push(true);
    w.reset();
    expect([w.samples, w.samplesOk, w.health]).toEqual([0, 0, 0]);
    expect(() => new HealthWindow(0)).toThrow("window capacity must be a positive integer, got 0");
  });
});
