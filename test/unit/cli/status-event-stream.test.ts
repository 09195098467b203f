/**
 * The CLI's event-stream reader (src/cli/event-stream.ts) against real servers on loopback: gorb's API for
 * resuming, reconnecting and resync; small Bun servers that write exact bytes for the parser and for the
 * failures a real daemon cannot be made to produce on demand (a half-open connection, a 503, a bad answer).
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { Server } from "bun";
import { createApp } from "../../../src/api/app.ts";
import { CliError } from "../../../src/cli/errors.ts";
import { type EventStreamOptions, type StreamEvent, followEvents } from "../../../src/cli/event-stream.ts";
import { EventBus } from "../../../src/core/events.ts";
import { makeGorb } from "../core/fakes.ts";
import { closedPort } from "./_harness.ts";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** What a follower saw, as lines: "open", "event <id> <type> <json data>", "error <exit> <message>". */
interface Log {
  readonly lines: string[];
  /** Resolves once a line satisfies `match` (counting from `from`). */
  until(match: (line: string) => boolean, from?: number): Promise<void>;
}

interface Following extends Log {
  /** followEvents' promise (resolves when stopped, rejects on a refusal). */
  readonly done: Promise<void>;
  stop(): Promise<void>;
}

function start(server: string, options: Partial<EventStreamOptions> = {}): Following {
  const controller = new AbortController();
  const lines: string[] = [];
  let wake = () => {};
  const push = (line: string) => {
    lines.push(line);
    wake();
  };
  const done = followEvents(
    { server, token: null, signal: controller.signal, retryMs: 5, maxRetryMs: 20, ...options },
    {
      onOpen: () => push("open"),
      onEvent: (e: StreamEvent) => push(`event ${e.id} ${e.type} ${JSON.stringify(e.data)}`),
      onError: (e: CliError) => push(`error ${e.exitCode} ${e.message}`),
    },
  );
  const ended = done.then(() => {
    throw new Error(`followEvents ended; it saw:\n${lines.join("\n")}`);
  });
  ended.catch(() => {});
  const following: Following = {
    lines,
    done,
    async until(match, from = 0) {
      while (!lines.slice(from).some(match)) await Promise.race([new Promise<void>((resolve) => (wake = resolve)), ended]);
    },
    async stop() {
      controller.abort();
      await done;
    },
  };
  cleanups.push(() => following.stop().catch(() => {}));
  return following;
}

/** gorb's API with a bus on a given (or any) loopback port. */
function gorbApi(bus: EventBus, port = 0, token?: string): { url: string; stop(): Promise<void> } {
  const stack = makeGorb();
  const app = createApp({ gorb: stack.gorb, logger: stack.logger, events: bus, ...(token ? { token } : {}) });
  app.listen({ hostname: "127.0.0.1", port });
  let running = true;
  const api = {
    url: `http://127.0.0.1:${app.server?.port ?? 0}`,
    async stop() {
      if (running) await app.stop(true);
      running = false;
    },
  };
  cleanups.push(() => api.stop());
  return api;
}

/** A server answering every request with `respond` (the request count is passed). */
function rawServer(respond: (n: number, request: Request) => Response, port = 0): Server<undefined> {
  let n = 0;
  const server = Bun.serve({ hostname: "127.0.0.1", port, fetch: (request) => respond(++n, request) });
  cleanups.push(() => server.stop(true));
  return server;
}

/** An event-stream body written as the given chunks, each flushed before the next, then left open. */
function chunked(chunks: readonly (string | Uint8Array)[]): Response {
  const encoder = new TextEncoder();
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = chunks[0];
      if (next === undefined) return new Promise<void>(() => {}); // stays open, silent
      chunks = chunks.slice(1);
      controller.enqueue(typeof next === "string" ? encoder.encode(next) : next);
      await Bun.sleep(1);
    },
  });
  return new Response(stream, { headers: { "content-type": "text/event-stream" } });
}

describe("parsing", () => {
  test("line ends LF, CRLF and CR, also split across chunks; comments, multi-line data, fields without a space", async () => {
    const euro = new TextEncoder().encode('data: {"price":"€"}\n\n');
    const server = rawServer(() =>
      chunked([
        "\uFEFF: hello\n\n",
        "id: 1\r\nevent: one\r\ndata: {\"a\":1}\r\n\r\n",
        "id: 2\revent: two\rdata: {\"b\":2}\r",
        "\r",
        "id:3\nevent:three\ndata:first line\ndata: second line\n\n",
        "event: four\ndata\n\n",
        "id: 5\nunknown: x\ndata: plain\n",
        "\n",
        euro.slice(0, 16),
        euro.slice(16),
        "id: 7\nevent: no-data\n\n",
        "data: 8\n\n",
      ]),
    );
    const f = start(`http://127.0.0.1:${server.port}`);
    await f.until((line) => line.includes(" 8"));
    expect(f.lines).toEqual([
      "open",
      'event 1 one {"a":1}',
      'event 2 two {"b":2}',
      'event 3 three "first line\\nsecond line"',
      'event 3 four ""',
      'event 5 message "plain"',
      'event 5 message {"price":"€"}',
      // An event without data is not dispatched, but its id counts.
      "event 7 message 8",
    ]);
  });

  test("a half-received event is dropped when the connection ends; the next connection starts clean", async () => {
    const server = rawServer((n) =>
      n === 1 ? new Response("id: 1\ndata: 1\n\nid: 2\nevent: partial\ndata: 2\n", { headers: { "content-type": "text/event-stream" } }) : chunked(["data: 3\n\n"]),
    );
    const f = start(`http://127.0.0.1:${server.port}`);
    await f.until((line) => line.startsWith("event") && line.endsWith(" 3"));
    expect(f.lines).toEqual([
      "open",
      "event 1 message 1",
      "error 3 lost the event stream of " + `http://127.0.0.1:${server.port}` + " (the daemon closed the stream); reconnecting",
      "open",
      // The cut-off event's id never counted: the event after the reconnect still carries the last dispatched one.
      "event 1 message 3",
    ]);
  });

  test("a reconnect resumes after the last event received whole, not after one cut off with the connection", async () => {
    // The connection ends after "id: 2" arrived but before the blank line that completes event 2. Sending
    // Last-Event-ID: 2 made the daemon resume after event 2, which the follower never saw: it was lost.
    const resumedAfter: (string | null)[] = [];
    const server = rawServer((n, request) => {
      if (n === 1) return new Response("id: 1@r1\ndata: 1\n\nid: 2@r1\nevent: backend.health\ndata: 2\n", { headers: { "content-type": "text/event-stream" } });
      resumedAfter.push(request.headers.get("last-event-id"));
      return chunked(["id: 2@r1\ndata: 2\n\n"]);
    });
    const f = start(`http://127.0.0.1:${server.port}`);
    await f.until((line) => line === "event 2@r1 message 2");
    expect(resumedAfter).toEqual(["1@r1"]);
    expect(f.lines.filter((line) => line.startsWith("event"))).toEqual(["event 1@r1 message 1", "event 2@r1 message 2"]);
  });
});

describe("following gorb", () => {
  const TIME = "2026-01-02T03:04:05.000Z";
  const at = () => new Date(TIME);

  test("a lost connection is reopened with Last-Event-ID: the events published meanwhile arrive, in order", async () => {
    const bus = new EventBus({ run: "r1", now: at });
    const first = gorbApi(bus);
    const port = Number(new URL(first.url).port);
    const f = start(first.url);
    await f.until((line) => line === "open");
    bus.publish("service.created", { service: "web", source: "api" });
    await f.until((line) => line.startsWith("event 1@r1"));
    await first.stop(); // the daemon goes away...
    await f.until((line) => line.startsWith("error"));
    bus.publish("service.deleted", { service: "web" }); // ...something happens meanwhile...
    gorbApi(bus, port); // ...and it comes back on the same port.
    await f.until((line) => line.startsWith("event 2@r1"));
    expect(f.lines.filter((line) => !line.startsWith("error"))).toEqual([
      "open",
      `event 1@r1 service.created {"service":"web","source":"api","time":"${TIME}"}`,
      "open",
      `event 2@r1 service.deleted {"service":"web","time":"${TIME}"}`,
    ]);
    // Stopped at once, the daemon resets the connection ("connection closed").
    expect(f.lines[2]).toStartWith(`error 3 lost the event stream of ${first.url} (`);
    expect(f.lines[2]).toEndWith("); reconnecting");
  });

  test("after a restart of gorb (another run), the id it sends gets a resync", async () => {
    const before = new EventBus({ run: "before", now: at });
    const old = gorbApi(before);
    const port = Number(new URL(old.url).port);
    const f = start(old.url);
    await f.until((line) => line === "open");
    before.publish("service.created", { service: "web", source: "api" });
    await f.until((line) => line.startsWith("event 1@before"));
    await old.stop();
    await f.until((line) => line.startsWith("error"));
    const after = new EventBus({ run: "after", now: at });
    for (const service of ["a", "b", "c"]) after.publish("service.created", { service, source: "file" });
    gorbApi(after, port);
    await f.until((line) => line.includes(" resync "));
    expect(f.lines.filter((line) => line.startsWith("event")).slice(1)).toEqual([
      `event 3@after resync {"reason":"the event id is from another run of gorb","time":"${TIME}"}`,
    ]);
  });

  test("the token is sent as a bearer token; a refusal (401) is thrown, not retried", async () => {
    const bus = new EventBus();
    const api = gorbApi(bus, 0, "s3cret");
    const f = start(api.url, { token: "s3cret" });
    await f.until((line) => line === "open");
    expect(bus.followers).toBe(1);
    await f.stop();
    const refused = start(api.url);
    const error = await refused.done.then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CliError);
    expect([(error as CliError).exitCode, (error as CliError).message]).toEqual([
      6,
      "GET /events: authorization: a bearer token is required (pass --token or set GORB_TOKEN)",
    ]);
    expect(refused.lines).toEqual([]);
  });

  test("stopping ends the subscription", async () => {
    const bus = new EventBus();
    const f = start(gorbApi(bus).url);
    await f.until((line) => line === "open");
    expect(bus.followers).toBe(1);
    await f.stop();
    for (let i = 0; i < 2000 && bus.followers > 0; i++) await Bun.sleep(1);
    expect(bus.followers).toBe(0);
  });
});

describe("failures", () => {
  test("a daemon not up yet: 'cannot reach', retried until it answers", async () => {
    const port = closedPort();
    const f = start(`http://127.0.0.1:${port}`);
    await f.until((line) => line.startsWith("error"));
    expect(f.lines[0]).toStartWith(`error 3 cannot reach gorb at http://127.0.0.1:${port} (connection refused)`);
    gorbApi(new EventBus(), port);
    await f.until((line) => line === "open");
  });

  test("a 5xx answer is retried", async () => {
    const server = rawServer((n) =>
      n === 1 ? Response.json({ error: "state: disk full", code: "UNAVAILABLE" }, { status: 503 }) : chunked(["data: ok\n\n"]),
    );
    const f = start(`http://127.0.0.1:${server.port}`);
    await f.until((line) => line.startsWith("event"));
    expect(f.lines).toEqual(["error 7 GET /events: state: disk full", "open", 'event  message "ok"']);
  });

  test("a connection silent for longer than idleMs is dropped and reopened", async () => {
    const server = rawServer((n) => chunked(n === 1 ? [": hello\n\n"] : ["data: again\n\n"]));
    const f = start(`http://127.0.0.1:${server.port}`, { idleMs: 50 });
    await f.until((line) => line.startsWith("event"));
    expect(f.lines).toEqual([
      "open",
      `error 3 lost the event stream of http://127.0.0.1:${server.port} (nothing received for 0.05s); reconnecting`,
      "open",
      'event  message "again"',
    ]);
  });

  test("the server's retry: replaces the client's wait", async () => {
    // The client would wait a minute; the server asks for 1 ms.
    const server = rawServer((n) =>
      n === 1 ? new Response("retry: 1\n\n", { headers: { "content-type": "text/event-stream" } }) : chunked(["data: back\n\n"]),
    );
    const f = start(`http://127.0.0.1:${server.port}`, { retryMs: 60_000, maxRetryMs: 60_000 });
    await f.until((line) => line.startsWith("event"));
  });

  test("a server's retry: is taken within the client's bounds: 0 is not a tight loop, 2^31 ms and more is not 'at once'", async () => {
    const asked = ["0", "3000000000", "99999999999999999999999", "40"];
    const server = rawServer((n) =>
      n <= asked.length ? new Response(`retry: ${asked[n - 1]}\n\n`, { headers: { "content-type": "text/event-stream" } }) : chunked(["data: back\n\n"]),
    );
    const waits: number[] = [];
    const f = start(`http://127.0.0.1:${server.port}`, {
      retryMs: 5,
      minRetryMs: 25,
      maxRetryMs: 50,
      pause: async (ms) => {
        waits.push(ms);
      },
    });
    await f.until((line) => line.startsWith("event"));
    expect(waits).toEqual([25, 50, 50, 40]);
  });

  test("no route (an older gorb) and an answer that is not an event stream are thrown", async () => {
    const older = createApp({ gorb: makeGorb().gorb, logger: makeGorb().logger });
    older.listen({ hostname: "127.0.0.1", port: 0 });
    cleanups.push(async () => {
      await older.stop(true);
    });
    const notSse = rawServer(() => Response.json([]));
    // A redirect is not followed (nor retried): the stream is gorb's own or nothing.
    let redirected = 0;
    const elsewhere = rawServer(() => (redirected++, new Response("", { headers: { "content-type": "text/event-stream" } })));
    const redirect = rawServer(() => new Response(null, { status: 302, headers: { location: `http://127.0.0.1:${elsewhere.port}/events` } }));
    for (const [url, exit, message] of [
      [`http://127.0.0.1:${older.server?.port ?? 0}`, 4, "GET /events: no route for GET /events"],
      [`http://127.0.0.1:${notSse.port}`, 7, `GET /events: the answer is not an event stream (is http://127.0.0.1:${notSse.port} a gorb daemon?)`],
      [
        `http://127.0.0.1:${redirect.port}`,
        7,
        `GET /events: answered 302, a redirect to http://127.0.0.1:${elsewhere.port}/events, which gorb never sends (is http://127.0.0.1:${redirect.port} a gorb daemon? give its own URL); not followed`,
      ],
    ] as const) {
      const error = await start(url).done.then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(CliError);
      expect([(error as CliError).exitCode, (error as CliError).message]).toEqual([exit, message]);
    }
    expect(redirected).toBe(0);
  });
});
