/**
 * Hostile and careless requests against a real gorb API listening on loopback (Bun's server, real sockets, raw
 * request lines where a client would tidy the URL): what the guard lets through and how errors are worded.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { raw } from "./_raw.ts";
import { createApp, type AppOptions } from "../../../src/api/app.ts";
import { type ClusterApi, clusterRoutes } from "../../../src/api/cluster.ts";
import { makeGorb } from "../core/fakes.ts";
import { MemoryIpvsDriver } from "../../../src/ipvs/memory-driver.ts";
import type { ApplyResult } from "../../../src/ipvs/driver.ts";
import type { IpvsOp } from "../../../src/ipvs/types.ts";

const stops: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

function serve(options: Partial<Omit<AppOptions, "gorb" | "logger">> = {}, driver?: MemoryIpvsDriver, idleTimeout?: number) {
  const stack = makeGorb(driver === undefined ? {} : { driver });
  const app = createApp({ gorb: stack.gorb, logger: stack.logger, ...options, ...(idleTimeout === undefined ? {} : { idleTimeoutS: idleTimeout }) });
  app.listen({ hostname: "127.0.0.1", port: 0, ...(idleTimeout === undefined ? {} : { idleTimeout }) });
  stops.push(async () => {
    await app.stop(true);
  });
  const port = app.server?.port ?? 0;
  return { ...stack, port, url: `http://127.0.0.1:${port}` };
}


describe("error wording", () => {
  test("a pulse arg of 1e400 (Infinity once parsed) is a 400 that says a finite number is wanted", async () => {
    const { url } = serve();
    const put = (path: string, body: string) => fetch(`${url}${path}`, { method: "PUT", body });
    expect((await put("/service/web", '{"host":"10.0.0.1","port":80}')).status).toBe(200);
    const reply = await put("/service/web/b1", '{"host":"10.1.0.1","pulse":{"type":"http","args":{"expect":1e400}}}');
    expect([reply.status, await reply.json()]).toEqual([
      400,
      { error: "pulse.args.expect: must be a finite number, got Infinity", code: "VALIDATION", field: "pulse.args.expect" },
    ]);
  });
});

describe("a short Host header", () => {
  test("Host: lb1 (port 80): a path that is no route is a 404, not the route of its tail, and deletes nothing", async () => {
    const { port, url, gorb } = serve();
    const request = (line: string) => raw(port, `${line} HTTP/1.1\r\nHost: lb1\r\nConnection: close\r\n\r\n`);
    expect((await fetch(`${url}/service/web`, { method: "PUT", body: '{"host":"10.0.0.1","port":80}' })).status).toBe(200);
    const reply = await request("DELETE /gorb/service/web");
    expect([reply.status, JSON.parse(reply.body)]).toEqual([404, { error: "no route for DELETE /gorb/service/web", code: "NOT_FOUND" }]);
    expect(gorb.listServices()).toEqual(["web"]);
    expect((await request("GET /service/web")).status).toBe(200);
  });
});

/** A fleet of one node that has applied revision 7 and never gets further. */
const FLEET: ClusterApi = {
  node: "lb1",
  committedRevision: () => 7,
  status: () => ({ state: "ok", appliedRevision: 7, changeRevision: 7, lastError: null, relists: 0, failed: [] }),
  waitApplied: (revision) => Promise.resolve(revision <= 7),
  members: () => Promise.resolve([]),
};

describe("query parameters", () => {
  test.each([
    ["wait=-1", "wait: must be a revision (a whole number), got \"-1\"", "wait"],
    ["wait=5&timeout_ms=70000", "timeout_ms: must be 0-60000, got \"70000\"", "timeout_ms"],
    ["wait=5&timeout_ms=-5", "timeout_ms: must be 0-60000, got \"-5\"", "timeout_ms"],
    ["wait=5&timeout_ms=60001", "timeout_ms: must be 0-60000, got \"60001\"", "timeout_ms"],
    // What Number() reads but a revision is not written as.
    ["wait=0x10", 'wait: must be a revision (a whole number), got "0x10"', "wait"],
    ["wait=1e1", 'wait: must be a revision (a whole number), got "1e1"', "wait"],
    ["wait=7.0", 'wait: must be a revision (a whole number), got "7.0"', "wait"],
    ["wait=%207", 'wait: must be a revision (a whole number), got " 7"', "wait"],
    ["wait=99999999999999999999", 'wait: must be a revision (a whole number), got "99999999999999999999"', "wait"],
    ["wait=", 'wait: must be a revision (a whole number), got ""', "wait"],
    ["wait=5&timeout_ms=0x10", 'timeout_ms: must be 0-60000, got "0x10"', "timeout_ms"],
  ])("GET /cluster/revision?%s is a 400 naming the parameter", async (query, error, field) => {
    const { url } = serve({ cluster: FLEET });
    const reply = await fetch(`${url}/cluster/revision?${query}`);
    expect([reply.status, await reply.json()]).toEqual([400, { error, code: "VALIDATION", field }]);
    expect(await (await fetch(`${url}/cluster/revision?wait=7&timeout_ms=0`)).json()).toEqual({ node: "lb1", applied: 7, reached: true, failed: [] });
  });
});

describe("GET /cluster/revision without a cluster", () => {
  test("is a 404 whatever the query (a bad wait too), as without one; with a cluster a bad wait stays a 400", async () => {
    const { url } = serve();
    const absent = {
      error: "no route for GET /cluster/revision: this gorb does not share its state (gorb serve --store etcd://...)",
      code: "NOT_FOUND",
    };
    for (const query of ["", "?wait=7", "?wait=abc", "?wait=5&timeout_ms=70000", "?timeout_ms=x"]) {
      const reply = await fetch(`${url}/cluster/revision${query}`);
      expect([query, reply.status, await reply.json()]).toEqual([query, 404, absent]);
    }
    const fleet = serve({ cluster: FLEET });
    const bad = await fetch(`${fleet.url}/cluster/revision?wait=abc`);
    expect([bad.status, await bad.json()]).toEqual([400, { error: 'wait: must be a revision (a whole number), got "abc"', code: "VALIDATION", field: "wait" }]);
  });
});

describe("repeated query parameters", () => {
  test("a parameter given twice is a 400 naming it, and nothing changes (?dry_run=true&dry_run=false did apply)", async () => {
    const { url, gorb } = serve({ cluster: FLEET });
    const body = JSON.stringify({ services: { web: { host: "10.0.0.1", port: 80 } } });
    const twice = await fetch(`${url}/apply?dry_run=true&dry_run=false`, { method: "POST", body });
    expect([twice.status, await twice.json()]).toEqual([400, { error: "dry_run: given more than once; give it once", code: "VALIDATION", field: "dry_run" }]);
    expect(gorb.listServices()).toEqual([]);
    const wait = await fetch(`${url}/cluster/revision?wait=1&timeout_ms=0&wait=9`);
    expect([wait.status, await wait.json()]).toMatchObject([400, { field: "wait" }]);
    // Once each: as before.
    expect((await fetch(`${url}/apply?dry_run=true`, { method: "POST", body })).status).toBe(200);
    expect(gorb.listServices()).toEqual([]);
    expect((await fetch(`${url}/service?detail=true`)).status).toBe(200);
  });
});

describe("ids", () => {
  test("an apply cannot create a service or backend whose id no URL can name (a lone UTF-16 surrogate)", async () => {
    const { url, gorb } = serve();
    const apply = (body: string) => fetch(`${url}/apply`, { method: "POST", body });
    const service = await apply('{"services":{"\\ud800":{"host":"10.0.0.1","port":80}}}');
    expect([service.status, await service.json()]).toMatchObject([400, { code: "VALIDATION", path: ["services", "\ud800"] }]);
    const backend = await apply('{"services":{"web":{"host":"10.0.0.1","port":80,"backends":{"b\\udfff":{"host":"10.1.0.1"}}}}}');
    expect([backend.status, await backend.json()]).toMatchObject([400, { code: "VALIDATION", path: ["services", "web", "backends", "b\udfff"] }]);
    expect(gorb.listServices()).toEqual([]);
    // A surrogate pair is one character, and a URL names it.
    expect((await apply('{"services":{"web\\ud83d\\ude00":{"host":"10.0.0.1","port":80}}}')).status).toBe(200);
    expect((await fetch(`${url}/service/${encodeURIComponent("web\u{1f600}")}`)).status).toBe(200);
  });
});

describe("GET /cluster/revision?wait= and the server's idle timeout", () => {
  test("a wait longer than the idle timeout (10 s) lifts it for this request, so the answer is not cut off", async () => {
    // Bun closes a connection silent for idleTimeout seconds, also while its handler awaits: a wait of
    // timeout_ms=30000 on a node that never got there was answered with a reset connection after ~10 s instead
    // of {"reached": false}. Watching that takes seconds, so this stand-in for Bun's server records what the
    // route asks of it (as the /events test does).
    const calls: number[] = [];
    const request = new Request("http://127.0.0.1:4672/cluster/revision?wait=9&timeout_ms=30000");
    const server = { timeout: (r: Request, seconds: number) => void (r === request && calls.push(seconds)) };
    const fleet: ClusterApi = { ...FLEET, waitApplied: () => Promise.resolve(false) };
    const reply = await clusterRoutes(fleet, 10).revision.handler({ query: { wait: "9", timeout_ms: "30000" }, request, server });
    expect(await reply.json()).toEqual({ node: "lb1", applied: 7, reached: false, failed: [] });
    // Then the server's idle timeout is back: Bun keeps a request's own for the rest of its keep-alive connection,
    // which stayed open for 40 s of silence after the answer.
    expect(calls.length).toBe(2);
    expect(calls[0]).toBeGreaterThan(30);
    expect(calls[1]).toBe(10);
    // Also when the wait fails.
    calls.length = 0;
    const failing: ClusterApi = { ...FLEET, waitApplied: () => Promise.reject(new Error("store gone")) };
    await expect(clusterRoutes(failing, 10).revision.handler({ query: { wait: "9", timeout_ms: "30000" }, request, server })).rejects.toThrow("store gone");
    expect(calls.slice(1)).toEqual([10]);
    // Without wait the answer is immediate: the timeout stays.
    calls.length = 0;
    await clusterRoutes(fleet, 10).revision.handler({ query: {}, request, server });
    expect(calls).toEqual([]);
  });
});

/** A kernel whose writes wait until the test lets them go (a slow kernel, or a long apply ahead on gorb's lock). */
class GatedDriver extends MemoryIpvsDriver {
  gate: Promise<void> = Promise.resolve();
  override async apply(ops: readonly IpvsOp[]): Promise<ApplyResult> {
    await this.gate;
    return super.apply(ops);
  }
}

describe("a write that waits longer than the server's idle timeout", () => {
  test("is answered with its outcome, not cut off while gorb goes on and makes the change; then its connection idles out again", async () => {
    // Bun closes a connection silent for idleTimeout seconds, also while its handler awaits. A PUT queued behind a
    // long apply (20 s of a 1,000 x 10 set in an emulated guest) lost its connection after 10 s, and the change was
    // made all the same. Here the idle timeout is 1 s (Bun's timer cuts such a connection after about 4 s) and the
    // kernel write takes 6 s. The connection is kept alive after the answer: the idle timeout applies to it again.
    const driver = new GatedDriver();
    const { port, gorb } = serve({}, driver, 1);
    const { promise: gate, resolve: open } = Promise.withResolvers<void>();
    driver.gate = gate;
    const opened = setTimeout(open, 6_000);
    try {
      const body = '{"host":"10.0.0.1","port":80}';
      const { promise: answered, resolve: answer } = Promise.withResolvers<string>();
      const { promise: closed, resolve: close } = Promise.withResolvers<string>();
      let text = "";
      const socket = connect(port, "127.0.0.1", () =>
        socket.write(`PUT /service/web HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: ${body.length}\r\n\r\n${body}`),
      );
      socket.on("data", (data) => {
        text += data.toString("utf8");
        if (text.includes("\r\n\r\n")) answer(text.split("\r\n")[0] ?? "");
      });
      socket.on("error", (error) => close(`error ${error.message}`));
      socket.on("close", () => {
        answer(`closed before an answer: ${JSON.stringify(text)}`);
        close("closed");
      });
      expect(await answered).toBe("HTTP/1.1 200 OK");
      expect(gorb.listServices()).toEqual(["web"]);
      expect(await closed).toBe("closed");
    } finally {
      clearTimeout(opened);
      open();
    }
  }, 30_000);
});

describe("a request without a Host", () => {
  test.each([
    ["HTTP/1.1 with an empty Host", "GET /service HTTP/1.1\r\nHost: \r\nConnection: close\r\n\r\n"],
    ["HTTP/1.0 with no Host", "GET /metrics HTTP/1.0\r\n\r\n"],
    ["a write with no Host", "DELETE /service/web HTTP/1.0\r\nOrigin: http://evil.example\r\n\r\n"],
    ["a Host that is not a host", "GET /service HTTP/1.1\r\nHost: bad host\r\nConnection: close\r\n\r\n"],
  ])("%s is a 400 naming the Host header, not a 500 with Bun's stack-trace page", async (_name, request) => {
    // Bun gives such a request a relative URL ("/service"): the guard's new URL() threw, then the error handler's
    // own new URL() threw too, and Bun answered 500 with its development error page (source lines and paths). The
    // web UI is on, as gorb serve has it by default.
    const { port, logger } = serve({ token: "s3cret", ui: true });
    const reply = await raw(port, request);
    expect(reply.status).toBe(400);
    expect(JSON.parse(reply.body)).toEqual({
      error: "host: the request has no Host header, or one that is not a host; give the address gorb is reached at",
      code: "VALIDATION",
      field: "host",
    });
    expect(logger.lines.filter((line) => line.startsWith("error"))).toEqual([]);
  });
});

/** What a client that trickles a request's body saw: the answer, and when the server closed the connection. */
interface Trickled {
  readonly status: number;
  readonly headers: string;
  readonly body: string;
  /** Milliseconds from the request's headers to the server's close. */
  readonly closedAfterMs: number;
  /** Pieces of the body written before the close. */
  readonly sent: number;
}

/** Write `head`, then one piece of the body every `everyMs` ms (never the whole body), until the server closes. */
function trickle(port: number, head: string, piece: () => string, everyMs: number): Promise<Trickled> {
  return new Promise((resolve, reject) => {
    let text = "";
    let sent = 0;
    let started = 0;
    let timer: ReturnType<typeof setInterval> | undefined;
    const socket = connect(port, "127.0.0.1", () => {
      socket.write(head);
      started = performance.now();
      timer = setInterval(() => {
        if (!socket.writable) return;
        socket.write(piece());
        sent++;
      }, everyMs);
    });
    socket.on("data", (data) => {
      text += data.toString("utf8");
    });
    socket.on("error", (error) => {
      clearInterval(timer);
      reject(error);
    });
    socket.on("close", () => {
      clearInterval(timer);
      const end = text.indexOf("\r\n\r\n");
      resolve({
        status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0),
        headers: text.slice(0, end).toLowerCase(),
        body: text.slice(end + 4),
        closedAfterMs: performance.now() - started,
        sent,
      });
    });
  });
}

describe("a request body that trickles in", () => {
  // A client that sent one byte of its body every few seconds (under Bun's idle timeout) held its request, and a
  // slot of --max-connections, for as long as it liked: with as many such clients as slots, the operator's own
  // requests got 503. The whole body must now arrive within the deadline (300 ms here, 10 s by default).
  const DEADLINE_MS = 300;
  const MARGIN_MS = 2_000;
  test.each([
    ["with a Content-Length", "Content-Length: 1000\r\n\r\n{", () => " "],
    ["chunked", "Transfer-Encoding: chunked\r\n\r\n1\r\n{\r\n", () => "1\r\n \r\n"],
  ])("%s: 408 TIMEOUT once the deadline passes, the connection closed, nothing changed", async (_name, framing, piece) => {
    const { port, url, gorb } = serve({ token: "s3cret", maxRequests: 1, bodyDeadlineMs: DEADLINE_MS });
    const auth = { Authorization: "Bearer s3cret" };
    const head = `PUT /service/web HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer s3cret\r\n${framing}`;
    const reply = await trickle(port, head, piece, 50);
    expect([reply.status, JSON.parse(reply.body)]).toEqual([
      408,
      { error: "body: not received within 0.3 s of the request's headers; send the whole body at once", code: "TIMEOUT" },
    ]);
    expect(reply.headers).toContain("\r\nconnection: close");
    // Closed by the server while the client was still sending, within the deadline and a margin.
    expect(reply.sent).toBeGreaterThan(0);
    expect(reply.closedAfterMs).toBeLessThan(DEADLINE_MS + MARGIN_MS);
    expect(gorb.listServices()).toEqual([]);
    // The slot is free again: the operator's request is served, not shed with 503.
    const put = await fetch(`${url}/service/web`, { method: "PUT", headers: auth, body: '{"host":"10.0.0.1","port":80}' });
    expect(put.status).toBe(200);
  });

  test("a body declared over the limit: 413 at once, and the connection closed rather than kept while the body trickles in", async () => {
    // The 413 freed the request's slot, but the connection stayed open, reading and dropping the body, until the
    // idle timeout (about 12 s).
    const { port, gorb } = serve({ bodyDeadlineMs: DEADLINE_MS });
    const head = `PUT /service/web HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: 1000000\r\n\r\n{`;
    const reply = await trickle(port, head, () => " ", 50);
    expect([reply.status, JSON.parse(reply.body)]).toEqual([413, { error: "body: larger than the limit of 65536 bytes", code: "TOO_LARGE" }]);
    expect(reply.headers).toContain("\r\nconnection: close");
    expect(reply.closedAfterMs).toBeLessThan(MARGIN_MS);
    expect(gorb.listServices()).toEqual([]);
  });

  test("a large apply sent at normal speed, with a Content-Length or chunked, is read whole within the default deadline", async () => {
    const { url, gorb } = serve();
    const services = Object.fromEntries(
      Array.from({ length: 200 }, (_, i) => [`s${i}`, { host: `10.0.${i >> 8}.${(i & 255) + 1}`, port: 80, backends: { b1: { host: "10.1.0.1" } } }]),
    );
    // Padded to 7 MiB (the limit is 8 MiB): whitespace is valid JSON.
    const body = `${JSON.stringify({ services })}${" ".repeat(7 * 1024 * 1024)}`;
    const sent = await fetch(`${url}/apply`, { method: "POST", body });
    expect(sent.status).toBe(200);
    expect(gorb.listServices()).toHaveLength(200);
    // A stream body goes chunked, in many pieces.
    const bytes = new TextEncoder().encode(body);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let at = 0; at < bytes.length; at += 64 * 1024) controller.enqueue(bytes.subarray(at, at + 64 * 1024));
        controller.close();
      },
    });
    const chunked = await fetch(`${url}/apply?dry_run=true`, { method: "POST", body: stream });
    expect([chunked.status, (await chunked.json()) as unknown]).toMatchObject([200, {}]);
  });
});

describe("the path the router routes is the one the guard checks", () => {
  test("without the token, a path the URL parser reads as /ui (\\ as /, dot segments) is the UI page, never a service's answer", async () => {
    const { port, url, gorb } = serve({ token: "s3cret", ui: true });
    const put = await fetch(`${url}/service/web`, { method: "PUT", body: '{"host":"10.0.0.1","port":80}', headers: { authorization: "Bearer s3cret" } });
    expect(put.status).toBe(200);
    const send = (method: string, path: string) => raw(port, `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    // Bun's router read these as backend "..\..\..\ui" of service web (or nope): its 404 told, without the token,
    // whether the service exists, since the guard had seen /ui.
    for (const path of ["/service/web/..\\..\\..\\ui", "/service/nope/..\\..\\..\\ui", "/service/web\\..\\..\\ui", "/service/%2e%2e/ui"]) {
      const reply = await send("GET", path);
      expect([path, reply.status, reply.body.startsWith("<!doctype html>")]).toEqual([path, 200, true]);
    }
    // And the other way round: a path the guard reads as a service's needs the token, however it is written.
    expect((await send("GET", "/ui/..\\service\\web")).status).toBe(401);
    expect((await send("DELETE", "/ui/..\\service\\web")).status).toBe(401);
    expect(gorb.listServices()).toEqual(["web"]);
  });
});
