/**
 * GET /events against a real gorb API listening on loopback (Bun's server, real sockets): the wire format,
 * resuming with Last-Event-ID / ?last_event_id=, resync, the keepalive comment, the bearer check, and the
 * subscription going away when the client does (or stops reading).
 *
 * The events are published on the bus by the test: that is what core does on each change; here the stream
 * is under test, not core.
 */
import { afterEach, describe, expect, spyOn, test } from "bun:test";
import { createApp, type AppOptions } from "../../../src/api/app.ts";
import { eventStream } from "../../../src/api/events.ts";
import { EventBus } from "../../../src/core/events.ts";
import { makeGorb } from "../core/fakes.ts";

const TIME = "2026-01-02T03:04:05.000Z";
const stops: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

interface Served {
  readonly url: string;
  readonly bus: EventBus;
}

function serve(options: Partial<Omit<AppOptions, "gorb" | "logger">> & { idleTimeout?: number } = {}): Served {
  const bus = options.events ?? new EventBus({ run: "r1", now: () => new Date(TIME) });
  const stack = makeGorb();
  const { idleTimeout, ...appOptions } = options;
  const app = createApp({ gorb: stack.gorb, logger: stack.logger, events: bus, ...appOptions });
  app.listen({ hostname: "127.0.0.1", port: 0, ...(idleTimeout !== undefined ? { idleTimeout } : {}) });
  stops.push(async () => {
    await app.stop(true);
  });
  return { url: `http://127.0.0.1:${app.server?.port ?? 0}`, bus };
}

/** An open event stream read as text. */
interface Follower {
  readonly response: Response;
  /** Everything received so far. */
  text: string;
  /** Resolves when the received text satisfies `done` (rejects when the stream ends first). */
  until(done: (text: string) => boolean): Promise<string>;
  close(): void;
}

async function follow(url: string, headers: Record<string, string> = {}): Promise<Follower> {
  const controller = new AbortController();
  const response = await fetch(url, { headers, signal: controller.signal });
  const reader = response.body?.getReader();
  const decoder = new TextDecoder();
  const follower: Follower = {
    response,
    text: "",
    async until(done) {
      while (!done(follower.text)) {
        if (reader === undefined) throw new Error("no body");
        const chunk = await reader.read();
        if (chunk.done) throw new Error(`the stream ended; received:\n${follower.text}`);
        follower.text += decoder.decode(chunk.value, { stream: true });
      }
      return follower.text;
    },
    close: () => controller.abort(),
  };
  stops.push(() => follower.close());
  return follower;
}

/** The events in a received text, as [id, event, data] (comments left out). */
function frames(text: string): [string, string, unknown][] {
  return text
    .split("\n\n")
    .filter((block) => block !== "" && !block.startsWith(":"))
    .map((block) => {
      const fields = Object.fromEntries(block.split("\n").map((line) => [line.slice(0, line.indexOf(": ")), line.slice(line.indexOf(": ") + 2)]));
      return [fields.id ?? "", fields.event ?? "", JSON.parse(fields.data ?? "null") as unknown];
    });
}

const count = (n: number) => (text: string) => frames(text).length >= n;

/** Wait until `check` holds, re-checking as the event loop turns (the follower count has no event of its own). */
async function eventually(check: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !check(); i++) await Bun.sleep(1);
  expect(check()).toBe(true);
}

describe("GET /events", () => {
  test("each event is id, event and data (payload + time), in order; the stream starts with a comment", async () => {
    const { url, bus } = serve();
    const follower = await follow(`${url}/events`);
    expect(follower.response.status).toBe(200);
    expect(follower.response.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(follower.response.headers.get("cache-control")).toBe("no-store");
    expect(follower.response.headers.get("x-content-type-options")).toBe("nosniff");
    await follower.until((text) => text.startsWith(": gorb events\n\n"));
    expect(bus.followers).toBe(1);
    bus.publish("service.created", { service: "web", source: "api" });
    bus.publish("backend.weight", { service: "web", backend: "b1", from: 100, to: 0, configured: 100 });
    await follower.until(count(2));
    expect(follower.text).toBe(
      ": gorb events\n\n" +
        `id: 1@r1\nevent: service.created\ndata: {"service":"web","source":"api","time":"${TIME}"}\n\n` +
        `id: 2@r1\nevent: backend.weight\ndata: {"service":"web","backend":"b1","from":100,"to":0,"configured":100,"time":"${TIME}"}\n\n`,
    );
  });

  test("Last-Event-ID: the kept events after it first, then live ones, without a gap", async () => {
    const { url, bus } = serve();
    for (const service of ["a", "b", "c"]) bus.publish("service.changed", { service });
    const follower = await follow(`${url}/events`, { "Last-Event-ID": "1@r1" });
    await follower.until(count(2));
    bus.publish("service.deleted", { service: "a" });
    await follower.until(count(3));
    expect(frames(follower.text).map(([id, type]) => `${id} ${type}`)).toEqual([
      "2@r1 service.changed",
      "3@r1 service.changed",
      "4@r1 service.deleted",
    ]);
  });

  test("?last_event_id= resumes too (a bare number is an id of this run); the header wins over it", async () => {
    const { url, bus } = serve();
    for (const service of ["a", "b", "c"]) bus.publish("service.changed", { service });
    const byQuery = await follow(`${url}/events?last_event_id=2`);
    await byQuery.until(count(1));
    expect(frames(byQuery.text).map(([id]) => id)).toEqual(["3@r1"]);
    const both = await follow(`${url}/events?last_event_id=0`, { "last-event-id": "1@r1" });
    await both.until(count(2));
    expect(frames(both.text).map(([id]) => id)).toEqual(["2@r1", "3@r1"]);
  });

  test("an id from another run of gorb, or one whose events are gone: a resync event first", async () => {
    const { url, bus } = serve({ events: new EventBus({ run: "now", capacity: 2, now: () => new Date(TIME) }) });
    for (const service of ["a", "b", "c", "d"]) bus.publish("service.changed", { service });
    const otherRun = await follow(`${url}/events`, { "Last-Event-ID": "2@before" });
    const missed = await follow(`${url}/events`, { "Last-Event-ID": "1@now" });
    for (const follower of [otherRun, missed]) await follower.until(count(1));
    expect(frames(otherRun.text)).toEqual([["4@now", "resync", { reason: "the event id is from another run of gorb", time: TIME }]]);
    expect(frames(missed.text)).toEqual([["4@now", "resync", { reason: "events were missed", time: TIME }]]);
    // Resuming from the resync event's id continues with the next event.
    bus.publish("service.deleted", { service: "a" });
    await missed.until(count(2));
    expect(frames(missed.text)[1]?.[0]).toBe("5@now");
  });

  test("a malformed id: 400 naming the header or the query field, and no follower", async () => {
    const { url, bus } = serve();
    const header = await fetch(`${url}/events`, { headers: { "Last-Event-ID": "yesterday" } });
    const query = await fetch(`${url}/events?last_event_id=1@r1@r2`);
    expect([header.status, await header.json()]).toEqual([
      400,
      { error: 'last-event-id: must be an event id such as 42@r1 (the id of the last event seen), got "yesterday"', code: "VALIDATION", field: "last-event-id" },
    ]);
    expect([query.status, ((await query.json()) as { error: string }).error]).toEqual([
      400,
      'last_event_id: must be an event id such as 42@r1 (the id of the last event seen), got "1@r1@r2"',
    ]);
    expect(bus.followers).toBe(0);
  });

  test("a keepalive comment at the configured interval keeps a quiet stream alive", async () => {
    const { url } = serve({ eventHeartbeatMs: 5 });
    const follower = await follow(`${url}/events`);
    await follower.until((text) => text.split(": keepalive\n\n").length > 3);
    expect(frames(follower.text)).toEqual([]);
  });

  test("the server's idle timeout is turned off for the stream", () => {
    // Bun cuts a connection idle for idleTimeout seconds (10 by default, checked every 4 s: with idleTimeout 1
    // a silent stream was cut after 4.0 s), which is less than the 15 s heartbeat. Watching that happen takes
    // seconds, so this stand-in for Bun's server records what the route asks of it.
    const calls: number[] = [];
    const request = new Request("http://gorb.test/events");
    const response = eventStream(request, { timeout: (r, seconds) => void (r === request && calls.push(seconds)) }, { bus: new EventBus() });
    expect(calls).toEqual([0]);
    void response.body?.cancel();
  });

  test("behind the bearer token like every route: 401 without it, and nobody follows", async () => {
    const { url, bus } = serve({ token: "s3cret" });
    const without = await fetch(`${url}/events`);
    expect(without.status).toBe(401);
    expect(without.headers.get("www-authenticate")).toBe('Bearer realm="gorb"');
    expect(((await without.json()) as { error: string }).error).toBe("authorization: a bearer token is required");
    const wrong = await fetch(`${url}/events`, { headers: { authorization: "Bearer nope" } });
    expect(wrong.status).toBe(401);
    await wrong.body?.cancel();
    expect(bus.followers).toBe(0);
    const follower = await follow(`${url}/events`, { authorization: "Bearer s3cret" });
    expect(follower.response.status).toBe(200);
    await follower.until((text) => text.startsWith(": gorb events"));
    expect(bus.followers).toBe(1);
  });

  test("the subscription ends when the client disconnects", async () => {
    const { url, bus } = serve();
    const a = await follow(`${url}/events`);
    const b = await follow(`${url}/events`);
    await Promise.all([a, b].map((f) => f.until((text) => text.startsWith(": gorb events"))));
    expect(bus.followers).toBe(2);
    a.close();
    await eventually(() => bus.followers === 1);
    b.close();
    await eventually(() => bus.followers === 0);
    // Publishing to nobody is fine.
    bus.publish("service.deleted", { service: "web" });
  });

  test("streams are capped at a quarter of --max-connections: one more is 503, and a slot frees when a follower leaves", async () => {
    const { url, bus } = serve({ maxRequests: 8 });
    const a = await follow(`${url}/events`);
    const b = await follow(`${url}/events`);
    await Promise.all([a, b].map((f) => f.until((text) => text.startsWith(": gorb events"))));
    const refused = await fetch(`${url}/events`);
    expect(refused.status).toBe(503);
    expect(await refused.json()).toMatchObject({ code: "UNAVAILABLE" });
    // Other requests still get through while the streams are open.
    expect((await fetch(`${url}/service`)).status).toBe(200);
    expect(bus.followers).toBe(2);
    a.close();
    await eventually(() => bus.followers === 1);
    const c = await follow(`${url}/events`);
    expect(c.response.status).toBe(200);
    await c.until((text) => text.startsWith(": gorb events"));
  });

  test("a refused Last-Event-ID does not take a stream slot: after as many 400s as there are slots, a stream still opens", async () => {
    const { url, bus } = serve({ maxRequests: 8 });
    for (let i = 0; i < 3; i++) {
      const refused = await fetch(`${url}/events`, { headers: { "Last-Event-ID": "yesterday" } });
      expect(refused.status).toBe(400);
      await refused.text();
    }
    const a = await follow(`${url}/events`);
    expect(a.response.status).toBe(200);
    const b = await follow(`${url}/events?last_event_id=x`);
    expect(b.response.status).toBe(400);
    const c = await follow(`${url}/events`);
    expect(c.response.status).toBe(200);
    await Promise.all([a, c].map((f) => f.until((text) => text.startsWith(": gorb events"))));
    expect(bus.followers).toBe(2);
  });

  test("HEAD is answered at once with the stream's headers, follows nothing and takes no slot", async () => {
    const { url, bus } = serve({ maxRequests: 8 });
    // A stream's end never comes, and Bun answers a HEAD once its body has ended: HEAD was never answered, and held
    // a follower and a stream slot until the client gave up.
    for (let i = 0; i < 3; i++) {
      const head = await fetch(`${url}/events`, { method: "HEAD" });
      expect([head.status, head.headers.get("content-type"), bus.followers]).toEqual([200, "text/event-stream; charset=utf-8", 0]);
    }
    expect((await fetch(`${url}/events`, { method: "HEAD", headers: { "Last-Event-ID": "yesterday" } })).status).toBe(400);
    const a = await follow(`${url}/events`);
    const b = await follow(`${url}/events`);
    await Promise.all([a, b].map((f) => f.until((text) => text.startsWith(": gorb events"))));
    expect(bus.followers).toBe(2);
  });

  test("closing the bus (the daemon stops) ends every stream, so the server's graceful stop completes", async () => {
    const bus = new EventBus();
    const stack = makeGorb();
    const app = createApp({ gorb: stack.gorb, logger: stack.logger, events: bus });
    app.listen({ hostname: "127.0.0.1", port: 0 });
    const follower = await follow(`http://127.0.0.1:${app.server?.port ?? 0}/events`);
    await follower.until((text) => text.startsWith(": gorb events"));
    bus.close();
    // The stream ends cleanly (until() rejects when it ends), then stop() no longer waits for it.
    await expect(follower.until(() => false)).rejects.toThrow("the stream ended");
    await app.stop();
    expect(bus.followers).toBe(0);
  });

  test("without a bus the route is not there", async () => {
    const stack = makeGorb();
    const app = createApp({ gorb: stack.gorb, logger: stack.logger });
    const response = await app.handle(new Request("http://gorb.test/events"));
    expect([response.status, await response.json()]).toEqual([404, { error: "no route for GET /events", code: "NOT_FOUND" }]);
  });
});

test("a follower that stops reading is dropped once too much waits for it", async () => {
  const bus = new EventBus({ run: "r1" });
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (request, srv) => eventStream(request, srv, { bus, maxQueuedBytes: 64 * 1024 }),
  });
  stops.push(() => server.stop(true));
  const follower = await follow(`http://127.0.0.1:${server.port}/events`);
  await follower.until((text) => text.startsWith(": gorb events"));
  // From here on the client reads nothing: the socket buffers fill, then the stream's queue.
  const message = "x".repeat(4096);
  for (let i = 0; i < 20_000 && bus.followers > 0; i++) {
    bus.publish("backend.health", { service: "web", backend: "b1", from: "up", to: "down", message });
    if (i % 64 === 0) await Bun.sleep(0);
  }
  expect(bus.followers).toBe(0);
});

describe("many events for many followers", () => {
  /** The stream of `response` read until `done` holds for the text received. */
  async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, done: (text: string) => boolean): Promise<{ text: string; reads: number }> {
    const decoder = new TextDecoder();
    let text = "";
    let reads = 0;
    while (!done(text)) {
      const chunk = await reader.read();
      if (chunk.done) throw new Error(`the stream ended; received:\n${text}`);
      reads++;
      text += decoder.decode(chunk.value, { stream: true });
    }
    return { text, reads };
  }

  test("the events published in one turn reach a follower as one chunk (one stream write, not one per event)", async () => {
    const bus = new EventBus({ run: "r1", now: () => new Date(TIME) });
    const response = eventStream(new Request("http://gorb.test/events"), null, { bus });
    const reader = response.body?.getReader();
    if (reader === undefined) throw new Error("no body");
    await readUntil(reader, (text) => text === ": gorb events\n\n");
    for (let i = 0; i < 500; i++) bus.publish("backend.changed", { service: "web", backend: `b${i}` });
    const { text, reads } = await readUntil(reader, count(500));
    expect([reads, frames(text).length, frames(text)[499]?.[0]]).toEqual([1, 500, "500@r1"]);
    await reader.cancel();
    expect(bus.followers).toBe(0);
  });

  test("an event is serialized once, however many follow it", async () => {
    const bus = new EventBus({ run: "r1", now: () => new Date(TIME) });
    const readers = Array.from({ length: 50 }, () => {
      const reader = eventStream(new Request("http://gorb.test/events"), null, { bus }).body?.getReader();
      if (reader === undefined) throw new Error("no body");
      return reader;
    });
    await Promise.all(readers.map((reader) => readUntil(reader, (text) => text === ": gorb events\n\n")));
    const stringify = spyOn(JSON, "stringify");
    try {
      bus.publish("service.deleted", { service: "web" });
      const received = await Promise.all(readers.map((reader) => readUntil(reader, count(1))));
      expect(new Set(received.map((r) => r.text)).size).toBe(1);
      expect(stringify).toHaveBeenCalledTimes(1);
    } finally {
      stringify.mockRestore();
    }
    await Promise.all(readers.map((reader) => reader.cancel()));
  });

  test("a burst larger than the allowance drops the follower at once, without waiting for the end of the turn", async () => {
    const bus = new EventBus({ run: "r1" });
    const response = eventStream(new Request("http://gorb.test/events"), null, { bus, maxQueuedBytes: 64 * 1024 });
    expect(bus.followers).toBe(1);
    const message = "x".repeat(1024);
    for (let i = 0; i < 200 && bus.followers > 0; i++) bus.publish("backend.health", { service: "web", backend: "b1", from: "up", to: "down", message });
    expect(bus.followers).toBe(0);
    // The stream is errored (the connection is reset), with nothing queued for it.
    const reader = response.body?.getReader();
    if (reader === undefined) throw new Error("no body");
    await expect(reader.read()).rejects.toBeUndefined();
  });
});

describe("a resume whose backlog is larger than a follower's allowance", () => {
  test("gets one resync instead of being dropped by its own backlog on every reconnect", async () => {
    // 200 kept events of ~1 KiB: more than the 64 KiB that may wait for a follower (beyond the stream's own 64 KiB).
    // Sent whole, the backlog got the follower dropped at once; it came back with the same id and was dropped
    // again, for as long as the events were kept, never seeing a live event.
    const bus = new EventBus({ run: "r1", capacity: 200, now: () => new Date(TIME) });
    const message = "x".repeat(1024);
    for (let i = 0; i < 200; i++) bus.publish("backend.health", { service: "web", backend: "b1", from: "up", to: "down", message });
    for (let attempt = 0; attempt < 2; attempt++) {
      const request = new Request("http://gorb.test/events", { headers: { "Last-Event-ID": "1@r1" } });
      const reader = eventStream(request, null, { bus, maxQueuedBytes: 64 * 1024 }).body?.getReader();
      if (reader === undefined) throw new Error("no body");
      expect(bus.followers).toBe(1);
      const decoder = new TextDecoder();
      let text = "";
      while (!text.includes("event: resync")) {
        const chunk = await reader.read();
        if (chunk.done) throw new Error(`the stream ended; received:\n${text}`);
        text += decoder.decode(chunk.value, { stream: true });
      }
      expect(frames(text).map(([id, type]) => [id, type])).toEqual([[`${bus.lastId}@r1`, "resync"]]);
      expect(bus.followers).toBe(1);
      // Live events follow.
      bus.publish("service.deleted", { service: "web" });
      while (!text.includes("event: service.deleted")) text += decoder.decode((await reader.read()).value, { stream: true });
      expect(frames(text).at(-1)?.[0]).toBe(`${bus.lastId}@r1`);
      await reader.cancel();
      expect(bus.followers).toBe(0);
    }
  });

  test("a backlog within the allowance is sent whole, as before", async () => {
    const bus = new EventBus({ run: "r1", capacity: 100, now: () => new Date(TIME) });
    for (let i = 0; i < 10; i++) bus.publish("backend.changed", { service: "web", backend: `b${i}` });
    const request = new Request("http://gorb.test/events", { headers: { "Last-Event-ID": "4@r1" } });
    const reader = eventStream(request, null, { bus, maxQueuedBytes: 64 * 1024 }).body?.getReader();
    if (reader === undefined) throw new Error("no body");
    let text = "";
    while (!text.includes("id: 10@r1")) text += new TextDecoder().decode((await reader.read()).value);
    expect(frames(text).map(([id]) => id)).toEqual(["5@r1", "6@r1", "7@r1", "8@r1", "9@r1", "10@r1"]);
    await reader.cancel();
  });
});
