/**
 * Real GORB clients' requests, replayed as they send them (method, path, headers, body bytes), and the parts of the
 * answers they parse. Read from their public source, not copied:
 * - sky-uk/feed `gorb/gorb.go` (Go, net/http): GET /service as liveness; GET, PUT, PATCH (weight 0 to drain),
 *   DELETE /service/<svc>/node-<svc>-<ip> with json.Marshal of its own structs, no Content-Type; it reads only
 *   status codes (200, and 404 for "backend not there yet").
 * - kobolog/gorb `gorb-docker-link/main.go` (Go): GET /service/<vs> (200 = exists), PUT /service/<vs> with the
 *   marshalled core.ServiceOptions (409 counts as success), PUT /service/<vs>/<rs> with core.BackendOptions (every
 *   key, zero values included: "weight":0, "method":"", "pulse":null), DELETE /service/<vs>/<rs>.
 * - a Python orchestrator (requests, Content-Type: application/json): PUT /service/0 and /service/0/0, then
 *   GET /service/0 to iterate `backends`, GET each backend to read `options.host`, DELETE the one it finds.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { raw } from "./_raw.ts";
import { createApp } from "../../../src/api/app.ts";
import { makeGorb } from "../core/fakes.ts";

interface Reply {
  readonly status: number;
  readonly text: string;
}

function setup() {
  const stack = makeGorb();
  const app = createApp({ gorb: stack.gorb, logger: stack.logger });
  /** A request as a Go net/http client sends it: the body as bytes, no Content-Type. */
  const call = async (method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<Reply> => {
    const init: RequestInit = { method, headers: { "User-Agent": "Go-http-client/1.1", "Accept-Encoding": "gzip", ...headers } };
    if (body !== undefined) init.body = new TextEncoder().encode(body);
    const response = await app.handle(new Request(`http://127.0.0.1:4672${path}`, init));
    return { status: response.status, text: await response.text() };
  };
  return { ...stack, app, call };
}

// sky-uk/feed's BackendConfig as encoding/json writes it (key order of its struct), for each pulse type it offers.
const FEED_BACKEND = (type: "http" | "tcp" | "none", weight: number) =>
  JSON.stringify({
    host: "10.10.0.1",
    port: 80,
    method: "dr",
    weight,
    pulse: {
      type,
      args: type === "http" ? { method: "GET", path: "/", expect: "404" } : { method: "", path: "", expect: "" },
      interval: "1s",
    },
  });
const FEED_ID = "/service/http-proxy/node-http-proxy-10.10.0.1";

describe("sky-uk/feed (gorb/gorb.go)", () => {
  test.each(["http", "tcp", "none"] as const)("pulse %s: liveness, 404 probe, add, drain by PATCH weight 0, delete", async (type) => {
    const { call, driver, health } = setup();
    // Health(): GET /service, 200 only.
    expect((await call("GET", "/service")).status).toBe(200);
    // The operator created the service (feed never does).
    expect((await call("PUT", "/service/http-proxy", '{"host":"10.0.0.1","port":80}')).status).toBe(200);
    // Update(): GET the backend, add it only when that is exactly 404.
    expect((await call("GET", FEED_ID)).status).toBe(404);
    expect(await call("PUT", FEED_ID, FEED_BACKEND(type, 1000))).toEqual({ status: 200, text: "" });
    expect(driver.peek()[0]?.destinations[0]).toMatchObject({ address: "10.10.0.1", port: 80, weight: 1000, forward: "dr" });
    expect(health.target("http-proxy", "node-http-proxy-10.10.0.1").options.type as string).toBe(type);
    // A later Update() sees it is there (not 404) and sends nothing more.
    expect((await call("GET", FEED_ID)).status).toBe(200);
    // Stop(): the same body with weight 0, PATCHed, then DELETE.
    expect(await call("PATCH", FEED_ID, FEED_BACKEND(type, 0))).toEqual({ status: 200, text: "" });
    expect(driver.peek()[0]?.destinations[0]?.weight).toBe(0);
    expect(await call("DELETE", FEED_ID)).toEqual({ status: 200, text: "" });
    expect(driver.peek()[0]?.destinations).toEqual([]);
  });

  test("its probe of a backend of a service that does not exist yet is a 404 too (it then tries the PUT)", async () => {
    const { call } = setup();
    expect((await call("GET", FEED_ID)).status).toBe(404);
  });
});

// gorb-docker-link's bodies: util.MustMarshal(core.ServiceOptions{Port, Protocol}) and core.BackendOptions{Host, Port}
// (plus Pulse{Type: "none"} for UDP): json.Marshal writes every field, the unset ones as zero values.
const LINK_SERVICE = (port: number, protocol: string) =>
  `{"host":"","port":${port},"protocol":"${protocol}","method":"","persistent":false,"flags":""}`;
const LINK_BACKEND = (host: string, port: number, udp: boolean) =>
  `{"host":"${host}","port":${port},"weight":0,"method":"","pulse":${udp ? '{"type":"none","interval":"","args":null}' : "null"}}`;

describe("kobolog/gorb gorb-docker-link (gorb-docker-link/main.go)", () => {
  test.each([
    ["tcp", false],
    ["udp", true],
  ] as const)("a container's %s port: probe the service, create it, add the backend, remove it on kill", async (protocol, udp) => {
    const { call, driver, health } = setup();
    const vs = `/service/library-nginx-latest-80-${protocol}`;
    const rs = `${vs}/web-1-32768-${protocol}`;
    expect((await call("GET", vs)).status).toBe(404);
    expect(await call("PUT", vs, LINK_SERVICE(80, protocol))).toEqual({ status: 200, text: "" });
    // A second container of the same image: the service exists, 409 is taken as success.
    expect((await call("PUT", vs, LINK_SERVICE(80, protocol))).status).toBe(409);
    expect(await call("PUT", rs, LINK_BACKEND("192.0.2.1", 32768, udp))).toEqual({ status: 200, text: "" });
    const service = driver.peek()[0];
    expect(service?.service.key as unknown).toEqual({ family: "inet", protocol, address: "192.0.2.1", port: 80 });
    expect(service?.service.scheduler).toBe("wrr");
    // Its "weight":0 is the zero value of an unset field; the original made it 100, gorb creates the backend drained
    // (README, Backend fields: "0 creates the backend drained (allowed, unlike the original)").
    expect(service?.destinations[0]).toMatchObject({ address: "192.0.2.1", port: 32768, forward: "nat", weight: 0 });
    expect(health.target(vs.slice("/service/".length), "web-1-32768-" + protocol).options.type as string).toBe(udp ? "none" : "tcp");
    // Its roundtrip() decodes any other answer as JSON to report it: errors are JSON.
    const missing = await call("DELETE", `${vs}/nope`);
    expect([missing.status, typeof (JSON.parse(missing.text) as { error: unknown }).error]).toEqual([404, "string"]);
    expect(await call("DELETE", rs)).toEqual({ status: 200, text: "" });
  });

  test("the older body without flags (before scheduler flags existed) works the same", async () => {
    const { call } = setup();
    const reply = await call("PUT", "/service/nginx-80-tcp", '{"host":"","port":80,"protocol":"tcp","method":"","persistent":false}');
    expect(reply).toEqual({ status: 200, text: "" });
  });
});

describe("a libnetwork fork's GorbClient (Go; bodies validated by gorb/core before sending, Accept: application/json)", () => {
  test("a persistent rr service and a tunnel backend whose pulse is all zero values; DELETE both", async () => {
    const { call, driver, health } = setup();
    const accept = { Accept: "application/json" };
    // core.ServiceOptions after Validate(nil), with the exported DelIfAddr field some versions marshalled untagged.
    const service = '{"host":"10.0.0.1","port":80,"protocol":"tcp","method":"rr","persistent":true,"DelIfAddr":false}';
    expect(await call("PUT", "/service/web", service, accept)).toEqual({ status: 200, text: "" });
    // core.BackendOptions after Validate(): weight 100, pulse set to an empty pulse.Options (not validated itself).
    const backend = '{"host":"10.1.0.1","port":80,"weight":100,"method":"tunnel","pulse":{"type":"","interval":"","args":null}}';
    expect(await call("PUT", "/service/web/c1", backend, accept)).toEqual({ status: 200, text: "" });
    expect(driver.peek()[0]?.destinations[0]).toMatchObject({ address: "10.1.0.1", port: 80, weight: 100, forward: "tunnel" });
    const pulse = health.target("web", "c1").options;
    expect([pulse.type as string, pulse.intervalMs]).toEqual(["tcp", 60_000]);
    expect((await call("DELETE", "/service/web/c1")).status).toBe(200);
    expect((await call("DELETE", "/service/web")).status).toBe(200);
    expect(driver.peek()).toEqual([]);
  });
});

describe("a PATCH with a pulse as the original's clients write it (the whole body, as sky-uk/feed does)", () => {
  test("core.BackendOptions' zero-valued pulse {type: \"\", interval: \"\", args: null} is the default pulse, as in a PUT", async () => {
    const { call, health } = setup();
    expect((await call("PUT", "/service/web", '{"host":"10.0.0.1","port":80}')).status).toBe(200);
    const http = '{"type":"http","interval":"5s","args":{"path":"/health"}}';
    expect((await call("PUT", "/service/web/b1", `{"host":"10.1.0.1","port":80,"pulse":${http}}`)).status).toBe(200);
    const zero = '{"host":"10.1.0.1","port":80,"weight":50,"method":"nat","pulse":{"type":"","interval":"","args":null}}';
    expect(await call("PATCH", "/service/web/b1", zero)).toEqual({ status: 200, text: "" });
    const pulse = health.target("web", "b1").options;
    expect([pulse.type as string, pulse.intervalMs, pulse.args]).toEqual(["tcp", 60_000, null]);
  });

  test("the original's options, as GET shows them (\"args\": null), PATCHed back with a new weight", async () => {
    const { call, driver } = setup();
    expect((await call("PUT", "/service/web", '{"host":"10.0.0.1","port":80}')).status).toBe(200);
    expect((await call("PUT", "/service/web/b1", '{"host":"10.1.0.1","port":80,"pulse":{"type":"none"}}')).status).toBe(200);
    const shown = (JSON.parse((await call("GET", "/service/web/b1")).text) as { options: Record<string, unknown> }).options;
    const { host, port, method, pulse, vsid } = shown;
    expect(pulse).toEqual({ type: "none", interval: "1m", args: null });
    const body = JSON.stringify({ host, port, weight: 7, method, pulse, vsid });
    expect(await call("PATCH", "/service/web/b1", body)).toEqual({ status: 200, text: "" });
    expect(driver.peek()[0]?.destinations[0]?.weight).toBe(7);
  });
});

describe("nomadic-router's gorb package (Go; Consul services to IPVS)", () => {
  test("GET (with an empty body) to probe, PUT when not 200; backend ids are Consul service ids", async () => {
    const { call, driver } = setup();
    expect((await call("GET", "/service/redis", "")).status).toBe(404);
    const service = '{"host":"10.0.0.1","port":20000,"protocol":"tcp","method":"rr","persistent":true}';
    expect((await call("PUT", "/service/redis", service)).status).toBe(200);
    expect((await call("GET", "/service/redis", "")).status).toBe(200);
    const id = "/service/redis/_nomad-task-0b2d-cache-redis-db:6379";
    expect((await call("GET", id, "")).status).toBe(404);
    expect((await call("PUT", id, '{"host":"10.1.0.7","port":6379,"weight":50,"method":"nat"}')).status).toBe(200);
    expect((await call("GET", id, "")).status).toBe(200);
    expect(driver.peek()[0]?.destinations[0]).toMatchObject({ address: "10.1.0.7", port: 6379, weight: 50 });
  });
});

describe("gorb-docker-link before its id mangling (image and container name as sent by Docker)", () => {
  test("PUT /service/nginx:latest and /service/nginx:latest/web-1 (path.Join dropped the name's leading slash)", async () => {
    const { call } = setup();
    expect((await call("GET", "/service/nginx:latest")).status).toBe(404);
    expect((await call("PUT", "/service/nginx:latest", '{"host":"","port":80,"protocol":"tcp","method":"","persistent":false}')).status).toBe(200);
    expect((await call("PUT", "/service/nginx:latest/web-1", '{"host":"192.0.2.1","port":32768,"weight":0,"method":"","pulse":null}')).status).toBe(200);
    expect((await call("DELETE", "/service/nginx:latest/web-1")).status).toBe(200);
  });
});

describe("a Python orchestrator (requests, Content-Type: application/json)", () => {
  test("numeric ids 0 and 0, then find the backend by options.host among GET /service/0's backends and delete it", async () => {
    const { call } = setup();
    const json = { "Content-Type": "application/json", "User-Agent": "python-requests/2.31.0", Accept: "*/*" };
    const service = JSON.stringify({ host: "10.0.2.15", port: 4444, protocol: "tcp", method: "rr", persistent: true });
    expect((await call("PUT", "/service/0", service, json)).status).toBe(200);
    for (const [id, host] of [["0", "172.17.0.2"], ["1", "172.17.0.3"]] as const) {
      const backend = JSON.stringify({ host, port: 4444, method: "nat", weight: 100 });
      expect((await call("PUT", `/service/0/${id}`, backend, json)).status).toBe(200);
    }
    const backends = (JSON.parse((await call("GET", "/service/0")).text) as { backends: string[] }).backends;
    let found: string | undefined;
    for (const id of backends) {
      const info = JSON.parse((await call("GET", `/service/0/${id}`)).text) as { options: { host: string } };
      if (info.options.host === "172.17.0.3") found = id;
    }
    expect(found).toBe("1");
    expect((await call("DELETE", `/service/0/${found ?? ""}`)).status).toBe(200);
  });
});

// ---- over a real socket, the bytes a Go client writes ----

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

function serve() {
  const stack = makeGorb();
  const app = createApp({ gorb: stack.gorb, logger: stack.logger });
  app.listen({ hostname: "127.0.0.1", port: 0 });
  stops.push(async () => {
    await app.stop(true);
  });
  return { ...stack, port: app.server?.port ?? 0 };
}


/** A request as Go's net/http writes it (Host, User-Agent, Content-Length, Accept-Encoding; no Content-Type). */
function goRequest(port: number, method: string, path: string, body?: string): string {
  const length = body === undefined ? "" : `Content-Length: ${Buffer.byteLength(body)}\r\n`;
  return `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUser-Agent: Go-http-client/1.1\r\n${length}Accept-Encoding: gzip\r\nConnection: close\r\n\r\n${body ?? ""}`;
}

describe("on the wire", () => {
  test("sky-uk/feed's add, drain and delete as Go writes them", async () => {
    const { port, driver } = serve();
    const send = (method: string, path: string, body?: string) => raw(port, goRequest(port, method, path, body));
    expect((await send("GET", "/service")).status).toBe(200);
    expect((await send("PUT", "/service/http-proxy", '{"host":"10.0.0.1","port":80}')).status).toBe(200);
    expect((await send("GET", FEED_ID)).status).toBe(404);
    expect(await send("PUT", FEED_ID, FEED_BACKEND("http", 1000))).toEqual({ status: 200, body: "" });
    expect(await send("PATCH", FEED_ID, FEED_BACKEND("http", 0))).toEqual({ status: 200, body: "" });
    expect(driver.peek()[0]?.destinations[0]?.weight).toBe(0);
    expect(await send("DELETE", FEED_ID)).toEqual({ status: 200, body: "" });
  });
});

/** Send each request on one kept-alive connection, the next once the previous answer (sized by Content-Length) is in. */
function keptAlive(port: number, requests: readonly string[]): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const statuses: number[] = [];
    let pending = Buffer.alloc(0);
    const socket = connect(port, "127.0.0.1", () => socket.write(requests[0] ?? ""));
    socket.on("error", reject);
    socket.on("data", (data: Buffer) => {
      pending = Buffer.concat([pending, data]);
      const end = pending.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = pending.subarray(0, end).toString("latin1");
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      if (pending.length < end + 4 + length) return;
      statuses.push(Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0));
      pending = pending.subarray(end + 4 + length);
      const next = requests[statuses.length];
      if (next === undefined) {
        socket.end();
        resolve(statuses);
      } else socket.write(next);
    });
  });
}

describe("on one kept-alive connection (Go's transport and requests.Session reuse theirs)", () => {
  test("feed's whole life: liveness, 404 probe, add, probe, drain, delete", async () => {
    const { port, driver } = serve();
    const go = (method: string, path: string, body?: string) => goRequest(port, method, path, body).replace("Connection: close\r\n", "");
    const statuses = await keptAlive(port, [
      go("GET", "/service"),
      go("PUT", "/service/http-proxy", '{"host":"10.0.0.1","port":80}'),
      go("GET", FEED_ID),
      go("PUT", FEED_ID, FEED_BACKEND("http", 1000)),
      go("GET", FEED_ID),
      go("PATCH", FEED_ID, FEED_BACKEND("http", 0)),
      go("DELETE", FEED_ID),
    ]);
    expect(statuses).toEqual([200, 200, 404, 200, 200, 200, 200]);
    expect(driver.peek()[0]?.destinations).toEqual([]);
  });
});
