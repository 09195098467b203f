import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { checkerFor } from "../../../src/health/checkers/for-options.ts";
import { httpChecker } from "../../../src/health/checkers/http.ts";
import { noneChecker } from "../../../src/health/checkers/none.ts";
import { tcpChecker } from "../../../src/health/checkers/tcp.ts";
import { udpChecker } from "../../../src/health/checkers/udp.ts";
import { type HttpProbe, parsePulseOptions } from "../../../src/health/options.ts";
import { TEST_CERT, TEST_KEY } from "./_tls-fixture.ts";

const live = () => new AbortController().signal;

/** A port nothing listens on: bind one, note it, close it. */
async function closedPort(hostname: string): Promise<number> {
  const l = Bun.listen({ hostname, port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

function httpProbe(type: "http" | "https", args: Record<string, unknown> = {}): HttpProbe {
  const o = parsePulseOptions({ type, args });
  if (o.http === null) throw new Error("not an http probe");
  return o.http;
}

describe("tcp checker", () => {
  let opened = 0;
  let closed = 0;
  const server4 = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open() {
        opened++;
      },
      close() {
        closed++;
      },
      data() {},
    },
  });
  const server6 = Bun.listen({ hostname: "::1", port: 0, socket: { data() {} } });
  afterAll(() => {
    server4.stop(true);
    server6.stop(true);
  });

  test("connects to a listening IPv4 port and closes the connection at once", async () => {
    const r = await tcpChecker().check({ host: "127.0.0.1", port: server4.port }, live());
    expect(r.ok).toBe(true);
    expect(r.message).toBe(`connected to 127.0.0.1:${server4.port}`);
    expect(r.durationMs).toBeGreaterThanOrEqual(0);
    while (closed < opened) await Bun.sleep(5);
    expect(closed).toBe(opened);
  });

  test("connects to IPv6 ::1 (the original always failed: no brackets)", async () => {
    const r = await tcpChecker().check({ host: "::1", port: server6.port }, live());
    expect(r.ok).toBe(true);
    expect(r.message).toBe(`connected to [::1]:${server6.port}`);
  });

  test("a closed port fails with the connect error", async () => {
    const port = await closedPort("127.0.0.1");
    const r = await tcpChecker().check({ host: "127.0.0.1", port }, live());
    expect(r.ok).toBe(false);
    expect(r.message).toContain(`connect to 127.0.0.1:${port} failed`);
    expect(r.message).toContain("ECONNREFUSED");
  });

  test("an abort while connecting ends the check, and a connection that opens later is closed", async () => {
    const before = opened;
    const ctl = new AbortController();
    const pending = tcpChecker().check({ host: "127.0.0.1", port: server4.port }, ctl.signal);
    ctl.abort(new Error("timed out after 5s"));
    const r = await pending;
    expect(r.ok).toBe(false);
    expect(r.message).toBe(`aborted: timed out after 5s while connecting to 127.0.0.1:${server4.port}`);
    while (opened === before || closed < opened) await Bun.sleep(5);
    expect(closed).toBe(opened);
  });

  test("an already aborted signal fails without connecting", async () => {
    const ctl = new AbortController();
    ctl.abort();
    const before = opened;
    const r = await tcpChecker().check({ host: "127.0.0.1", port: server4.port }, ctl.signal);
    expect(r).toEqual({ ok: false, durationMs: 0, message: `aborted before connecting to 127.0.0.1:${server4.port}` });
    expect(opened).toBe(before);
  });
});

describe("http checker", () => {
  const seen: { method: string; url: string; host: string | null; agent: string | null }[] = [];
  let bodyCancelled = false;
  const routes = (req: Request): Response | Promise<Response> => {
    const url = new URL(req.url);
    seen.push({ method: req.method, url: req.url, host: req.headers.get("host"), agent: req.headers.get("user-agent") });
    switch (url.pathname) {
      case "/redirect":
        return new Response(null, { status: 302, headers: { location: "/elsewhere" } });
      case "/teapot":
        return new Response("short and stout", { status: 418 });
      case "/hang":
        return new Promise<Response>(() => {});
      case "/endless": {
        const chunk = new Uint8Array(64 * 1024);
        return new Response(
          new ReadableStream({
            pull(controller) {
              controller.enqueue(chunk);
            },
            cancel() {
              bodyCancelled = true;
            },
          }),
        );
      }
      default:
        return new Response("ok");
    }
  };
  let server: ReturnType<typeof Bun.serve>;
  let server6: ReturnType<typeof Bun.serve>;
  let tls: ReturnType<typeof Bun.serve>;
  beforeAll(() => {
    server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: routes });
    server6 = Bun.serve({ hostname: "::1", port: 0, fetch: routes });
    tls = Bun.serve({ hostname: "127.0.0.1", port: 0, tls: { cert: TEST_CERT, key: TEST_KEY }, fetch: routes });
  });
  afterAll(() => {
    server.stop(true);
    server6.stop(true);
    tls.stop(true);
  });
  const at = () => ({ host: "127.0.0.1", port: server.port as number });

  test("a 200 is Up by default; the request carries the pulse user agent", async () => {
    const r = await httpChecker(httpProbe("http", { path: "/health" })).check(at(), live());
    expect(r.ok).toBe(true);
    expect(r.message).toBe(`GET http://127.0.0.1:${server.port}/health: 200`);
    expect(seen.at(-1)?.agent).toBe("gorb-pulse");
  });

  test("an unexpected status is Down and says what was expected", async () => {
    const r = await httpChecker(httpProbe("http", { path: "/teapot", expect: "200-299,404" })).check(at(), live());
    expect(r.ok).toBe(false);
    expect(r.message).toBe(`GET http://127.0.0.1:${server.port}/teapot: 418, expected 200-299,404`);
  });

  test("expect as a number, a list and a class all match", async () => {
    for (const expectArg of [418, "200,418", "4xx", ["418"]]) {
      const r = await httpChecker(httpProbe("http", { path: "/teapot", expect: expectArg })).check(at(), live());
      expect(r.ok).toBe(true);
    }
  });

  test("a redirect is not followed: Down against 200, Up against 3xx", async () => {
    const count = seen.length;
    const down = await httpChecker(httpProbe("http", { path: "/redirect" })).check(at(), live());
    expect(down.ok).toBe(false);
    // The Location is never reported: a backend's answer can carry secrets and the API shows messages.
    expect(down.message).toBe(`GET http://127.0.0.1:${server.port}/redirect: 302, expected 200 (redirect not followed)`);
    expect(down.code).toBe("302");
    const up = await httpChecker(httpProbe("http", { path: "/redirect", expect: "3xx" })).check(at(), live());
    expect(up.ok).toBe(true);
    expect(seen.slice(count).map((s) => new URL(s.url).pathname)).toEqual(["/redirect", "/redirect"]);
  });

  test("method, query string (verbatim) and Host header reach the server", async () => {
    const probe = httpProbe("http", { method: "head", path: "/q?a=1&b=%20x", hostHeader: "health.example.org" });
    const r = await httpChecker(probe).check(at(), live());
    expect(r.ok).toBe(true);
    const last = seen.at(-1);
    expect(last?.method).toBe("HEAD");
    expect(last?.host).toBe("health.example.org");
    expect(last?.url).toEndWith("/q?a=1&b=%20x");
  });

  test("without an override the Host header is the probed host:port", async () => {
    await httpChecker(httpProbe("http")).check(at(), live());
    expect(seen.at(-1)?.host).toBe(`127.0.0.1:${server.port}`);
  });

  test("a hanging server: the abort (the monitor's timeout) ends the check", async () => {
    const ctl = new AbortController();
    const pending = httpChecker(httpProbe("http", { path: "/hang" })).check(at(), ctl.signal);
    setTimeout(() => ctl.abort(new Error("timed out after 50ms")), 50);
    const r = await pending;
    expect(r.ok).toBe(false);
    expect(r.message).toBe(`GET http://127.0.0.1:${server.port}/hang failed: aborted: timed out after 50ms`);
  });

  test("an endless body is cancelled, not read", async () => {
    const r = await httpChecker(httpProbe("http", { path: "/endless" })).check(at(), live());
    expect(r.ok).toBe(true);
    while (!bodyCancelled) await Bun.sleep(5);
    expect(bodyCancelled).toBe(true);
  });

  test("a closed port is Down with the connection error", async () => {
    const port = await closedPort("127.0.0.1");
    const r = await httpChecker(httpProbe("http")).check({ host: "127.0.0.1", port }, live());
    expect(r.ok).toBe(false);
    expect(r.message).toStartWith(`GET http://127.0.0.1:${port}/ failed: `);
  });

  test("IPv6 ::1 is bracketed in the URL", async () => {
    const r = await httpChecker(httpProbe("http")).check({ host: "::1", port: server6.port as number }, live());
    expect(r.ok).toBe(true);
    expect(r.message).toBe(`GET http://[::1]:${server6.port}/: 200`);
  });

  test("https verifies certificates by default: a self-signed one is Down", async () => {
    const r = await httpChecker(httpProbe("https")).check({ host: "127.0.0.1", port: tls.port as number }, live());
    expect(r.ok).toBe(false);
    expect(r.message).toStartWith(`GET https://127.0.0.1:${tls.port}/ failed: `);
  });

  test("https with insecure: true accepts the self-signed certificate", async () => {
    const r = await httpChecker(httpProbe("https", { insecure: true })).check({ host: "127.0.0.1", port: tls.port as number }, live());
    expect(r.ok).toBe(true);
    expect(r.message).toBe(`GET https://127.0.0.1:${tls.port}/: 200`);
  });
});

describe("udp checker", () => {
  type Bound = { readonly port: number; close(): void };
  let echo: Bound;
  let echo6: Bound;
  let silent: Bound;
  const received: string[] = [];
  beforeAll(async () => {
    const reply = {
      data(s: { send(d: Uint8Array, port: number, addr: string): boolean }, data: Uint8Array, port: number, addr: string) {
        received.push(Buffer.from(data).toString("hex"));
        s.send(data, port, addr);
      },
    };
    echo = await Bun.udpSocket({ hostname: "127.0.0.1", socket: reply });
    echo6 = await Bun.udpSocket({ hostname: "::1", socket: reply });
    silent = await Bun.udpSocket({ hostname: "127.0.0.1", socket: { data() {} } });
  });
  afterAll(() => {
    echo.close();
    echo6.close();
    silent.close();
  });

  test("a reply is Up; the payload is what args.sendHex said", async () => {
    const r = await udpChecker({ payloadHex: "00ff10" }).check({ host: "127.0.0.1", port: echo.port }, live());
    expect(r.ok).toBe(true);
    expect(r.message).toBe(`udp 127.0.0.1:${echo.port} replied with 3 bytes`);
    expect(received.at(-1)).toBe("00ff10");
  });

  test("works over IPv6 ::1", async () => {
    const r = await udpChecker({ payloadHex: "70696e67" }).check({ host: "::1", port: echo6.port }, live());
    expect(r.ok).toBe(true);
    expect(r.message).toBe(`udp [::1]:${echo6.port} replied with 4 bytes`);
  });

  test("a closed port (ICMP port unreachable) is Down without waiting for the timeout", async () => {
    const s = await Bun.udpSocket({ hostname: "127.0.0.1" });
    const port = s.port;
    s.close();
    const r = await udpChecker({ payloadHex: "00" }).check({ host: "127.0.0.1", port }, live());
    expect(r.ok).toBe(false);
    expect(r.message).toContain(`udp 127.0.0.1:${port} failed: `);
    expect(r.message).toContain("ECONNREFUSED");
  });

  test("a silent server is Down once the monitor aborts", async () => {
    const ctl = new AbortController();
    const pending = udpChecker({ payloadHex: "00" }).check({ host: "127.0.0.1", port: silent.port }, ctl.signal);
    setTimeout(() => ctl.abort(new Error("timed out after 50ms")), 50);
    const r = await pending;
    expect(r.ok).toBe(false);
    expect(r.message).toBe(`aborted: timed out after 50ms: no reply from udp 127.0.0.1:${silent.port}`);
  });
});

describe("none checker and the factory", () => {
  test("none is always Up without I/O", async () => {
    expect(await noneChecker().check({ host: "192.0.2.1", port: 1 }, live())).toEqual({ ok: true, durationMs: 0, message: "no health check (type none)" });
  });

  test("none's run (the monitor's path) answers and releases within the call", () => {
    const seen: string[] = [];
    const run = noneChecker().run;
    expect(run).toBeDefined();
    run?.({ host: "192.0.2.1", port: 1 }, (r) => seen.push(`done ${r.ok} ${r.message}`), () => seen.push("released"));
    expect(seen).toEqual(["done true no health check (type none)", "released"]);
  });

  test("checkerFor picks the checker by type", async () => {
    const r = await checkerFor(parsePulseOptions({ type: "none" })).check({ host: "192.0.2.1", port: 1 }, live());
    expect(r.message).toBe("no health check (type none)");
    const port = await closedPort("127.0.0.1");
    const tcp = await checkerFor(parsePulseOptions({ type: "tcp" })).check({ host: "127.0.0.1", port }, live());
    expect(tcp.message).toStartWith(`connect to 127.0.0.1:${port} failed`);
    const http = await checkerFor(parsePulseOptions({ type: "http" })).check({ host: "127.0.0.1", port }, live());
    expect(http.message).toStartWith(`GET http://127.0.0.1:${port}/ failed`);
  });
});
