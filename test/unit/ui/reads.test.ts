/**
 * The page's full reads (src/ui/reads.ts): one at a time. A poll tick while a read is in flight starts nothing (a
 * slow API must not pile up reads); a read asked for (stream opened, resync) while one is in flight runs once after
 * it; a failed read does not stop the next; after close nothing starts. A failed read is reported with its error and
 * since when the reads fail, until the next good read clears it.
 */
import { expect, test } from "bun:test";
import { type ReadFailure, Reads, type ReadsOptions } from "../../../src/ui/reads.ts";

const quiet: ReadsOptions = { report: () => {}, describe: String };

/** A read function whose calls the test ends by hand. */
function controlledRead() {
  const pending: { resolve: () => void; reject: (error: unknown) => void }[] = [];
  let started = 0;
  const read = () =>
    new Promise<void>((resolve, reject) => {
      started++;
      pending.push({ resolve, reject });
    });
  /** Ends the oldest read in flight, and lets the reader go on (its next read starts, if any). */
  const finish = async (error?: unknown) => {
    const next = pending.shift();
    if (next === undefined) throw new Error("no read in flight");
    if (error === undefined) next.resolve();
    else next.reject(error);
    for (let i = 0; i < 5; i++) await Promise.resolve();
  };
  return { read, finish, started: () => started, inFlight: () => pending.length };
}

test("a tick while a read is in flight starts nothing; the next tick after it does", async () => {
  const r = controlledRead();
  const reads = new Reads(r.read, quiet);
  void reads.tick();
  void reads.tick();
  void reads.tick();
  expect(r.started()).toBe(1);
  expect(reads.busy).toBe(true);
  await r.finish();
  expect(reads.busy).toBe(false);
  void reads.tick();
  expect(r.started()).toBe(2);
  expect(r.inFlight()).toBe(1);
});

test("a slow API: many ticks, never two reads at once", async () => {
  const r = controlledRead();
  const reads = new Reads(r.read, quiet);
  let most = 0;
  for (let tick = 0; tick < 30; tick++) {
    void reads.tick();
    most = Math.max(most, r.inFlight());
    if (tick % 4 === 3) await r.finish(); // each read lasts four ticks
  }
  expect(most).toBe(1);
  expect(r.started()).toBe(8);
});

test("a read asked for while one is in flight runs once after it, however many were asked", async () => {
  const r = controlledRead();
  const reads = new Reads(r.read, quiet);
  const first = reads.request();
  const second = reads.request();
  void reads.request();
  void reads.tick();
  expect(r.started()).toBe(1);
  await r.finish();
  expect(r.started()).toBe(2); // the one asked for
  await r.finish();
  await Promise.all([first, second]);
  expect(r.started()).toBe(2);
  expect(reads.busy).toBe(false);
});

test("a failed read does not stop the next, nor the read asked for after it", async () => {
  const r = controlledRead();
  const reads = new Reads(r.read, quiet);
  const done = reads.tick();
  void reads.request();
  await r.finish(new Error("500"));
  expect(r.started()).toBe(2);
  await r.finish();
  await done;
  void reads.tick();
  expect(r.started()).toBe(3);
});

test("after close no read starts, and none is asked for again", async () => {
  const r = controlledRead();
  const reads = new Reads(r.read, quiet);
  void reads.tick();
  void reads.request();
  reads.close();
  await r.finish();
  void reads.tick();
  void reads.request();
  expect(r.started()).toBe(1);
  expect(reads.busy).toBe(false);
});

test("a failed read is reported with its error and since when; failures after it keep the first time; a good read clears it", async () => {
  const r = controlledRead();
  let clock = 1_000;
  const reports: (ReadFailure | null)[] = [];
  const reads = new Reads(r.read, { report: (f) => reports.push(f), describe: (e) => `said: ${e instanceof Error ? e.message : String(e)}`, now: () => clock });
  void reads.tick();
  await r.finish();
  expect(reports).toEqual([]); // nothing to say while reads succeed
  expect(reads.failure).toBeNull();

  clock = 2_000;
  void reads.tick();
  await r.finish(new Error("500 INTERNAL: boom"));
  expect(reads.failure).toEqual({ error: "said: 500 INTERNAL: boom", since: 2_000 });
  clock = 5_000;
  void reads.tick();
  await r.finish(new Error("gorb did not answer"));
  expect(reads.failure).toEqual({ error: "said: gorb did not answer", since: 2_000 });
  expect(reports).toEqual([
    { error: "said: 500 INTERNAL: boom", since: 2_000 },
    { error: "said: gorb did not answer", since: 2_000 },
  ]);

  void reads.tick();
  await r.finish();
  expect(reads.failure).toBeNull();
  expect(reports.at(-1)).toBeNull();
  expect(reports.length).toBe(3);

  clock = 9_000; // a new run of failures starts its own time
  void reads.tick();
  await r.finish(new Error("again"));
  expect(reads.failure).toEqual({ error: "said: again", since: 9_000 });
});

test("after close a read that ends reports nothing (the page has moved on)", async () => {
  const r = controlledRead();
  const reports: (ReadFailure | null)[] = [];
  const reads = new Reads(r.read, { report: (f) => reports.push(f), describe: String });
  void reads.tick();
  reads.close();
  await r.finish(new Error("late"));
  expect(reports).toEqual([]);
});
