/**
 * WatchLiveness, the etcd store's judge of its watch, with a scripted source and the clock as an argument: a
 * watch silent for three measured progress intervals is dead (and the measure doubles, so a longer interval after
 * an etcd restart does not relist again and again); without a measure, silence alone is no evidence. A watch that
 * says nothing while etcd's revision is ahead is asked about once; changes found and still not delivered `lagMs`
 * after the read was sent make it stale, its endpoint avoided; a message meanwhile, a read that finds nothing, or
 * a read that fails, does not. A batch being applied is never silence. (test/unit/store/watch-liveness.test.ts
 * and silent-watch.test.ts run the same against a real etcd.)
 */
import { describe, expect, test } from "bun:test";
import { WatchLiveness, type WatchLivenessSource } from "../../../src/store/watch-liveness.ts";

interface Scripted extends WatchLivenessSource {
  etcdRevision: number;
  appliedRevision: number;
  readonly asked: number[];
  answer: () => Promise<{ revision: number; latest: number | null }>;
}

function source(lagMs = 3000): Scripted {
  const s: Scripted = {
    lagMs,
    etcdRevision: 10,
    appliedRevision: 10,
    asked: [],
    answer: () => Promise.resolve({ revision: 10, latest: null }),
    revision: () => s.etcdRevision,
    applied: () => s.appliedRevision,
    changedSince: (from) => {
      s.asked.push(from);
      return s.answer();
    },
  };
  return s;
}

describe("silence", () => {
  test("three measured progress intervals without a message: dead, no endpoint to avoid; the measure then doubles", () => {
    const live = new WatchLiveness(source(), "/gorb");
    live.started("http://a:2379", 0);
    live.message(false, 2000); // a progress notification 2 s after the start: the interval measured
    live.applied(2000);
    expect(live.check(8000)).toBeNull(); // 6 s: three intervals, not more
    expect(live.check(8001)).toEqual({ reason: "the etcd watch sent nothing for 6.0 s, not even the progress notification etcd sends every 2.0 s", avoid: null });
    expect(live.check(14_000)).toBeNull(); // now taken as 4 s
    expect(live.check(14_001)?.reason).toContain("every 4.0 s");
  });

  test("no interval measured (events only, or one notification): silence alone is no evidence", () => {
    const live = new WatchLiveness(source(), "/gorb");
    live.started("http://a:2379", 0);
    live.message(true, 1000);
    live.applied(1000);
    live.message(false, 2000); // the first notification after events measures nothing
    live.applied(2000);
    expect(live.check(1_000_000)).toBeNull();
  });

  test("a batch being applied is not silence; once applied, the silence counts from then", () => {
    const live = new WatchLiveness(source(), "/gorb");
    live.started("http://a:2379", 0);
    live.message(false, 1000);
    live.applied(1000);
    live.message(true, 2000);
    expect(live.check(60_000)).toBeNull();
    live.applied(60_000);
    expect(live.check(63_000)).toBeNull();
    expect(live.check(63_001)?.reason).toContain("sent nothing for 3.0 s");
  });

  test("an ended watch is not judged", () => {
    const live = new WatchLiveness(source(), "/gorb");
    live.started("http://a:2379", 0);
    live.message(false, 1000);
    live.applied(1000);
    live.ended();
    expect(live.check(60_000)).toBeNull();
  });
});

describe("lag", () => {
  test("etcd ahead and the watch silent for lagMs: one read; changes found and still not delivered lagMs after it: stale, its endpoint avoided", async () => {
    const src = source();
    const live = new WatchLiveness(src, "/gorb");
    live.started("http://a:2379", 0);
    src.etcdRevision = 15;
    expect(live.check(2999)).toBeNull();
    expect(src.asked).toEqual([]);
    const found = Promise.resolve({ revision: 15, latest: 14 });
    src.answer = () => found;
    expect(live.check(3000)).toBeNull();
    expect(src.asked).toEqual([10]);
    await found;
    expect(live.check(6000)).toBeNull(); // lagMs after the read was sent, not more
    expect(src.asked).toEqual([10]);
    expect(live.check(6001)).toEqual({
      reason: "the etcd watch on http://a:2379 sent nothing for 6.0 s, while etcd has changes under /gorb/ after revision 10 (up to 14)",
      avoid: "http://a:2379",
    });
  });

  test("a message after the read, or a new watch, clears what it found", async () => {
    for (const speak of [(l: WatchLiveness) => l.message(true, 4000), (l: WatchLiveness) => l.started("http://b:2379", 4000)]) {
      const src = source();
      const live = new WatchLiveness(src, "/gorb");
      live.started("http://a:2379", 0);
      src.etcdRevision = 15;
      const found = Promise.resolve({ revision: 15, latest: 14 });
      src.answer = () => found;
      live.check(3000);
      await found;
      speak(live);
      live.applied(4000);
      expect(live.check(6001)).toBeNull();
    }
  });

  test("a read that finds nothing under the prefix: no more reads until etcd moves past it; a rewind below it asks again", async () => {
    const src = source();
    const live = new WatchLiveness(src, "/gorb");
    live.started("http://a:2379", 0);
    src.etcdRevision = 15;
    const quiet = Promise.resolve({ revision: 15, latest: null });
    src.answer = () => quiet;
    live.check(3000);
    await quiet;
    expect(live.check(10_000)).toBeNull();
    expect(src.asked).toEqual([10]);
    live.rewound(12);
    live.check(10_001);
    expect(src.asked).toEqual([10, 10]);
  });

  test("a read that fails is no evidence: the next check reads again", async () => {
    const src = source();
    const live = new WatchLiveness(src, "/gorb");
    live.started("http://a:2379", 0);
    src.etcdRevision = 15;
    const failed = Promise.reject(new Error("connection refused"));
    src.answer = () => failed;
    live.check(3000);
    await failed.catch(() => undefined);
    expect(live.check(9000)).toBeNull();
    expect(src.asked).toEqual([10, 10]);
  });
});
