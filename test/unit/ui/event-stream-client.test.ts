/**
 * The UI's event-stream client (src/ui/events.ts) against gorb's real GET /events on a loopback port: it opens
 * the stream with the token in a header, reports "live", passes events on, reports "reconnecting" when the
 * connection is cut, and comes back with Last-Event-ID, so the events published while it was away arrive
 * (resumed, no full re-read); a 401 is reported as "unauthorized" (the page then asks for the token again).
 */
import { afterAll, afterEach, expect, test } from "bun:test";
import { createApp } from "../../../src/api/app.ts";
import { EventBus } from "../../../src/core/events.ts";
import { followEvents, type StreamStatus } from "../../../src/ui/events.ts";
import { makeGorb } from "../core/fakes.ts";

// A stand-in for the browser's sessionStorage (Bun has none); the client reads the token from it.
const storage = new Map<string, string>();
Object.assign(globalThis, {
  sessionStorage: {
    getItem: (key: string) => storage.get(key) ?? null,
    setItem: (key: string, value: string) => void storage.set(key, value),
    removeItem: (key: string) => void storage.delete(key),
  },
});

afterAll(() => {
  Reflect.deleteProperty(globalThis, "sessionStorage");
});

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
  storage.clear();
});

/** Records what the client reports; `next(check)` resolves once `check` holds (checked on every report). */
function recorder() {
  const seen = { statuses: [] as StreamStatus[], events: [] as string[], opens: [] as boolean[], authorization: [] as (string | null)[] };
  const waiters: { check: () => boolean; resolve: () => void }[] = [];
  const changed = () => {
    for (const w of waiters.splice(0)) (w.check() ? w.resolve : () => waiters.push(w))();
  };
  const next = (check: () => boolean) =>
    new Promise<void>((resolve) => {
      if (check()) resolve();
      else waiters.push({ check, resolve });
    });
  const handlers = {
    onOpen: (resumed: boolean) => (seen.opens.push(resumed), changed()),
    onEvent: (type: string, data: Record<string, unknown>) => (seen.events.push(`${type} ${String(data.service ?? "")}`), changed()),
    onStatus: (status: StreamStatus) => (seen.statuses.push(status), changed()),
  };
  return { seen, next, handlers };
}

function serve(fetch: (request: Request) => Response | Promise<Response>, port = 0) {
  const server = Bun.serve({ hostname: "127.0.0.1", port, idleTimeout: 0, fetch });
  return server;
}

test("live, events, cut: reconnecting, back with Last-Event-ID: the missed events arrive", async () => {
  storage.set("gorb.token", "s3cret");
  const bus = new EventBus();
  const { gorb, logger } = makeGorb({ events: bus });
  const app = createApp({ gorb, logger, events: bus, token: "s3cret" });
  const { seen, next, handlers } = recorder();
  const headers: (string | null)[] = [];
  const handle = (request: Request) => {
    headers.push(request.headers.get("last-event-id"));
    return app.handle(request);
  };
  let server = serve(handle);
  const port = server.port ?? 0;
  const stop = followEvents(handlers, `http://127.0.0.1:${port}/events`);
  cleanups.push(stop, () => server.stop(true));

  await next(() => seen.opens.length === 1);
  expect(seen.opens).toEqual([false]); // no position yet: the page reads the state itself
  expect(seen.statuses).toEqual(["live"]);
  await gorb.createService("web", { host: "10.0.0.1", port: 80 });
  await next(() => seen.events.includes("service.created web"));

  server.stop(true); // cut the connection
  await next(() => seen.statuses.includes("reconnecting"));
  await gorb.createService("api", { host: "10.0.0.2", port: 80 }); // published while the page is away
  server = serve(handle, port);
  await next(() => seen.opens.length === 2);
  expect(seen.opens).toEqual([false, true]); // resumed from its last id
  await next(() => seen.events.includes("service.created api"));
  expect(headers[0]).toBeNull();
  expect(headers.at(-1)).toMatch(/^\d+@/); // the id of the last event it saw, in the header
  expect(seen.statuses.at(-1)).toBe("live");
});

test("a refused token is reported as unauthorized at the first answer, and the client stops", async () => {
  storage.set("gorb.token", "wrong");
  const bus = new EventBus();
  const { gorb, logger } = makeGorb({ events: bus });
  const app = createApp({ gorb, logger, events: bus, token: "s3cret" });
  let requests = 0;
  const server = serve((request) => {
    requests++;
    return app.handle(request);
  });
  const { seen, next, handlers } = recorder();
  cleanups.push(followEvents(handlers, `http://127.0.0.1:${server.port}/events`), () => server.stop(true));
  await next(() => seen.statuses.includes("unauthorized"));
  expect(seen.opens).toEqual([]);
  expect(requests).toBe(1); // reported at the first 401, not after retries
});

test("a connection that goes silent (no event, no keepalive) is dropped and reopened, not left 'live' forever", async () => {
  // A daemon (or a network path) that vanished without closing the socket: the answer came, then nothing.
  let requests = 0;
  const server = serve(() => {
    requests++;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(": keepalive\n\n"));
      },
    });
    return new Response(body, { headers: { "Content-Type": "text/event-stream" } });
  });
  const { seen, next, handlers } = recorder();
  const details: string[] = [];
  const stop = followEvents(
    { ...handlers, onStatus: (status, detail) => (details.push(detail), handlers.onStatus(status)) },
    `http://127.0.0.1:${server.port}/events`,
    100,
  );
  cleanups.push(stop, () => server.stop(true));
  await next(() => seen.opens.length === 2);
  expect(seen.statuses.slice(0, 3)).toEqual(["live", "reconnecting", "live"]);
  expect(details[1]).toBe("nothing received for 0.1s");
  expect(requests).toBe(2);
});
