/**
 * The event bus: ids, the ring buffer a follower resumes from, `resync` when that is not possible, and
 * followers that misbehave.
 */
import { describe, expect, test } from "bun:test";
import { EVENT_TYPES, EventBus, type GorbEvent } from "../../../src/core/events.ts";

const fixed = () => new Date("2026-01-02T03:04:05.000Z");

function publishServices(bus: EventBus, names: readonly string[]): GorbEvent[] {
  return names.map((service) => bus.publish("service.changed", { service }));
}

const ids = (events: readonly GorbEvent[]) => events.map((e) => e.id);

describe("publish", () => {
  test("ids are 1, 2, 3, ... in publication order; each event has its time, type and data", () => {
    const bus = new EventBus({ now: fixed });
    expect(bus.lastId).toBe(0);
    const a = bus.publish("service.created", { service: "web", source: "api" });
    const b = bus.publish("backend.health", { service: "web", backend: "b1", from: "unknown", to: "up", message: "" });
    expect(a).toEqual({ id: 1, time: "2026-01-02T03:04:05.000Z", type: "service.created", data: { service: "web", source: "api" } });
    expect([b.id, b.type]).toEqual([2, "backend.health"]);
    expect(bus.lastId).toBe(2);
  });

  test("the events of one run of synchronous code share one clock reading; the next run reads it again", async () => {
    let readings = 0;
    const bus = new EventBus({ now: () => new Date(Date.UTC(2026, 0, 2, 3, 4, 5, readings++)) });
    const first = publishServices(bus, ["a", "b", "c"]);
    expect(first.map((e) => e.time)).toEqual(Array(3).fill("2026-01-02T03:04:05.000Z"));
    await new Promise((resolve) => setImmediate(resolve));
    expect(publishServices(bus, ["d"]).map((e) => e.time)).toEqual(["2026-01-02T03:04:05.001Z"]);
    expect(readings).toBe(2);
  });

  test("an event's time is its clock reading as toISOString writes it, within a second, across seconds and years", async () => {
    const times = [
      Date.UTC(2026, 0, 2, 3, 4, 5, 7),
      Date.UTC(2026, 0, 2, 3, 4, 5, 42),
      Date.UTC(2026, 0, 2, 3, 4, 5, 999),
      Date.UTC(2026, 0, 2, 3, 4, 6, 100),
      Date.UTC(1969, 11, 31, 23, 59, 59, 1),
      Date.UTC(12026, 0, 1, 0, 0, 0, 5),
      Date.UTC(12026, 0, 1, 0, 0, 0, 6),
    ];
    let next = 0;
    const bus = new EventBus({ now: () => new Date(times[next++] as number) });
    const seen: string[] = [];
    for (let i = 0; i < times.length; i++) {
      seen.push(bus.publish("service.changed", { service: `s${i}` }).time);
      await Promise.resolve(); // a new run of synchronous code: a new reading
    }
    expect(seen).toEqual(times.map((t) => new Date(t).toISOString()));
  });

  test("every follower gets every event once, in order", () => {
    const bus = new EventBus();
    const seen: number[][] = [[], []];
    bus.subscribe((e) => seen[0]?.push(e.id));
    bus.subscribe((e) => seen[1]?.push(e.id));
    publishServices(bus, ["a", "b", "c"]);
    expect(seen).toEqual([
      [1, 2, 3],
      [1, 2, 3],
    ]);
  });

  test("a listener that publishes does not reorder what the others see", () => {
    const bus = new EventBus();
    const first: number[] = [];
    const second: number[] = [];
    bus.subscribe((e) => {
      first.push(e.id);
      if (e.type === "service.created") bus.publish("service.changed", { service: e.data.service });
    });
    bus.subscribe((e) => second.push(e.id));
    bus.publish("service.created", { service: "web", source: "api" });
    expect(first).toEqual([1, 2]);
    expect(second).toEqual([1, 2]);
  });

  test("a listener that unsubscribes another stops it before the current event reaches it", () => {
    const bus = new EventBus();
    const late: number[] = [];
    let other: { unsubscribe(): void } | null = null;
    bus.subscribe(() => other?.unsubscribe());
    other = bus.subscribe((e) => late.push(e.id));
    bus.publish("service.deleted", { service: "web" });
    expect(late).toEqual([]);
    expect(bus.followers).toBe(1);
  });

  test("the same function subscribed twice is two followers, unsubscribed separately", () => {
    const bus = new EventBus();
    const seen: number[] = [];
    const listener = (e: GorbEvent) => seen.push(e.id);
    const one = bus.subscribe(listener);
    bus.subscribe(listener);
    bus.publish("service.deleted", { service: "a" });
    one.unsubscribe();
    bus.publish("service.deleted", { service: "b" });
    expect(seen).toEqual([1, 1, 2]);
    expect(bus.followers).toBe(1);
  });
});

describe("followers", () => {
  test("count subscriptions; unsubscribe is idempotent", () => {
    const bus = new EventBus();
    expect(bus.followers).toBe(0);
    const a = bus.subscribe(() => {});
    const b = bus.subscribe(() => {});
    expect(bus.followers).toBe(2);
    a.unsubscribe();
    a.unsubscribe();
    expect(bus.followers).toBe(1);
    b.unsubscribe();
    expect(bus.followers).toBe(0);
  });

  test("a listener that throws is dropped; the others still get this and later events", () => {
    const bus = new EventBus();
    const good: number[] = [];
    let calls = 0;
    bus.subscribe(() => {
      calls++;
      throw new Error("socket closed");
    });
    bus.subscribe((e) => good.push(e.id));
    publishServices(bus, ["a", "b"]);
    expect(calls).toBe(1);
    expect(good).toEqual([1, 2]);
    expect(bus.followers).toBe(1);
  });
});

describe("subscribe after an id (resume)", () => {
  test("without an id the backlog is empty and only later events arrive", () => {
    const bus = new EventBus();
    publishServices(bus, ["a", "b"]);
    const seen: number[] = [];
    const sub = bus.subscribe((e) => seen.push(e.id));
    publishServices(bus, ["c"]);
    expect(sub.backlog).toEqual([]);
    expect(seen).toEqual([3]);
  });

  test("the backlog is every kept event after the id, then live events follow without a gap or repeat", () => {
    const bus = new EventBus({ capacity: 8 });
    const published = publishServices(bus, ["a", "b", "c", "d", "e"]);
    const seen: number[] = [];
    const sub = bus.subscribe((e) => seen.push(e.id), 2);
    expect(sub.backlog).toEqual(published.slice(2));
    publishServices(bus, ["f"]);
    expect(seen).toEqual([6]);
  });

  test("the id of the newest event: an empty backlog; 0 on a bus with events: all of them", () => {
    const bus = new EventBus({ capacity: 8 });
    publishServices(bus, ["a", "b", "c"]);
    expect(bus.subscribe(() => {}, 3).backlog).toEqual([]);
    expect(ids(bus.subscribe(() => {}, 0).backlog)).toEqual([1, 2, 3]);
  });

  test("the position form {run, id} of this bus works as the bare id does", () => {
    const bus = new EventBus({ run: "r1" });
    publishServices(bus, ["a", "b", "c"]);
    expect(ids(bus.subscribe(() => {}, { run: "r1", id: 1 }).backlog)).toEqual([2, 3]);
  });

  test("events that left the ring buffer: one resync event carrying the current last id", () => {
    const bus = new EventBus({ capacity: 4, now: fixed });
    publishServices(bus, ["a", "b", "c", "d", "e", "f", "g"]);
    // Kept: 4..7. After 3 the follower needs 4.. (all kept); after 2 it would need 3, which is gone.
    expect(ids(bus.subscribe(() => {}, 3).backlog)).toEqual([4, 5, 6, 7]);
    const missed = bus.subscribe(() => {}, 2).backlog;
    expect(missed).toEqual([
      { id: 7, time: "2026-01-02T03:04:05.000Z", type: "resync", data: { reason: "events were missed" } },
    ]);
  });

  test("the resync event is not stored: it never shows up in another follower's backlog or live", () => {
    const bus = new EventBus({ capacity: 2 });
    publishServices(bus, ["a", "b", "c", "d"]);
    const live: GorbEvent[] = [];
    bus.subscribe((e) => live.push(e));
    expect(bus.subscribe(() => {}, 0).backlog.map((e) => e.type)).toEqual(["resync"]);
    expect(bus.lastId).toBe(4);
    expect(ids(bus.subscribe(() => {}, 2).backlog)).toEqual([3, 4]);
    expect(live).toEqual([]);
  });

  test("an id ahead of the bus, or a position of another run: resync", () => {
    const bus = new EventBus({ run: "now" });
    publishServices(bus, ["a", "b"]);
    const cases: [number | { run: string; id: number }, string][] = [
      [3, "the event id is ahead of this run of gorb (its last event is 2)"],
      [1000, "the event id is ahead of this run of gorb (its last event is 2)"],
      [{ run: "now", id: 9 }, "the event id is ahead of this run of gorb (its last event is 2)"],
      [{ run: "before", id: 1 }, "the event id is from another run of gorb"],
      [{ run: "before", id: 2 }, "the event id is from another run of gorb"],
      [-1, "the event id is not one gorb gives"],
      [1.5, "the event id is not one gorb gives"],
    ];
    for (const [after, reason] of cases) {
      const backlog = bus.subscribe(() => {}, after).backlog;
      expect(backlog).toHaveLength(1);
      expect(backlog[0]?.type).toBe("resync");
      expect(backlog[0]?.id).toBe(2);
      expect(backlog[0]?.data).toEqual({ reason });
    }
  });

  test("a bus before its first event, asked for an id of another run: resync with id 0", () => {
    const bus = new EventBus();
    expect(bus.subscribe(() => {}, 5).backlog).toMatchObject([{ id: 0, type: "resync" }]);
  });

  test("two buses get different runs unless told", () => {
    expect(new EventBus().run).not.toBe(new EventBus().run);
    expect(new EventBus({ run: "x" }).run).toBe("x");
  });

  test("a follower subscribed by a listener while an event is delivered gets the queued events once", () => {
    const bus = new EventBus();
    const late: number[] = [];
    let backlog: readonly GorbEvent[] = [];
    bus.subscribe((e) => {
      if (e.id === 1) {
        bus.publish("service.changed", { service: "queued" }); // id 2, delivered after id 1
        backlog = bus.subscribe((x) => late.push(x.id), 0).backlog;
      }
    });
    bus.publish("service.changed", { service: "first" });
    publishServices(bus, ["third"]);
    expect(ids(backlog)).toEqual([1, 2]);
    expect(late).toEqual([3]);
  });
});

describe("close", () => {
  test("lets every follower go (onClose once each, even when one throws); publishing still works, for nobody", () => {
    const bus = new EventBus();
    const closed: string[] = [];
    const seen: number[] = [];
    bus.subscribe((e) => seen.push(e.id), undefined, () => {
      closed.push("a");
      throw new Error("already gone");
    });
    bus.subscribe((e) => seen.push(e.id), undefined, () => closed.push("b"));
    bus.subscribe((e) => seen.push(e.id));
    bus.publish("service.deleted", { service: "x" });
    bus.close();
    expect(closed).toEqual(["a", "b"]);
    expect(bus.followers).toBe(0);
    expect(bus.publish("service.deleted", { service: "y" }).id).toBe(2);
    expect(seen).toEqual([1, 1, 1]);
  });

  test("a follower arriving after close gets its backlog and is closed right after subscribe returns", async () => {
    const bus = new EventBus();
    bus.publish("service.deleted", { service: "x" });
    bus.close();
    let closed = false;
    const sub = bus.subscribe(() => {}, 0, () => (closed = true));
    expect([ids(sub.backlog), closed, bus.followers]).toEqual([[1], false, 0]);
    await Promise.resolve();
    expect(closed).toBe(true);
  });
});

describe("capacity", () => {
  test("the ring keeps exactly the last `capacity` events, over many wraps", () => {
    const bus = new EventBus({ capacity: 5 });
    expect(bus.capacity).toBe(5);
    publishServices(bus, Array.from({ length: 23 }, (_, i) => `s${i}`));
    const backlog = bus.subscribe(() => {}, 18).backlog;
    expect(ids(backlog)).toEqual([19, 20, 21, 22, 23]);
    expect(backlog.map((e) => (e.type === "service.changed" ? e.data.service : ""))).toEqual(["s18", "s19", "s20", "s21", "s22"]);
    expect(bus.subscribe(() => {}, 17).backlog.map((e) => e.type)).toEqual(["resync"]);
  });

  test("capacity 1 keeps the newest event", () => {
    const bus = new EventBus({ capacity: 1 });
    publishServices(bus, ["a", "b"]);
    expect(ids(bus.subscribe(() => {}, 1).backlog)).toEqual([2]);
    expect(bus.subscribe(() => {}, 0).backlog.map((e) => e.type)).toEqual(["resync"]);
  });

  test("a capacity that is not a positive integer is refused", () => {
    for (const capacity of [0, -1, 2.5, Number.NaN]) {
      expect(() => new EventBus({ capacity })).toThrow(RangeError);
    }
  });
});

test("EVENT_TYPES lists each type once", () => {
  expect(new Set(EVENT_TYPES).size).toBe(EVENT_TYPES.length);
  expect(EVENT_TYPES).toContain("resync");
});
