// Consul cannot be installed here: the "agent" below is a stand-in HTTP server on loopback that records every
// request and answers as the agent's HTTP API does.
import { afterEach, describe, expect, test } from "bun:test";
import { ConsulDiscovery } from "../../../src/discovery/consul.ts";
import { NoDiscovery } from "../../../src/discovery/none.ts";
import { RecordingLogger } from "../core/fakes.ts";

interface Seen {
  readonly method: string;
  readonly path: string;
  readonly search: string;
  readonly contentType: string | null;
  readonly token: string | null;
  readonly body: string;
}

/** A fake Consul agent on a loopback port; `status` decides the reply code. */
function fakeConsul(port = 0, status: () => number = () => 200) {
  const seen: Seen[] = [];
  const server = Bun.serve({
    port,
    hostname: "127.0.0.1",
    async fetch(request) {
      const url = new URL(request.url);
      seen.push({
        method: request.method,
        path: url.pathname,
        search: url.search,
        contentType: request.headers.get("content-type"),
        token: request.headers.get("x-consul-token"),
        body: await request.text(),
      });
      const code = status();
      return new Response(code === 200 ? "" : "agent unhappy", { status: code });
    },
  });
  return { server, seen, url: `http://127.0.0.1:${server.port}` };
}

const servers: { stop(force?: boolean): unknown }[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.stop(true);
});

const WEB = { id: "web", address: "10.0.0.1", port: 80, protocol: "tcp" };

describe("ConsulDiscovery", () => {
  test("register: PUT /v1/agent/service/register with ID, Name, Address, Port and Tags", async () => {
    const consul = fakeConsul();
    servers.push(consul.server);
    const discovery = new ConsulDiscovery({ url: consul.url, instance: "lb1" });
    discovery.expose(WEB);
    await discovery.whenIdle();
    expect(consul.seen).toHaveLength(1);
    const call = consul.seen[0];
    expect([call?.method, call?.path, call?.contentType]).toEqual(["PUT", "/v1/agent/service/register", "application/json"]);
    expect(JSON.parse(call?.body ?? "")).toStrictEqual({
      ID: "lb1-web",
      Name: "web",
      Address: "10.0.0.1",
      Port: 80,
      Tags: ["gorb", "tcp"],
    });
  });

  test("deregister: PUT /v1/agent/service/deregister/<ID> with an empty body, the ID escaped", async () => {
    const consul = fakeConsul();
    servers.push(consul.server);
    const discovery = new ConsulDiscovery({ url: consul.url, instance: "lb1" });
    discovery.remove("wéb svc");
    await discovery.whenIdle();
    expect(consul.seen.map((s) => [s.method, s.path, s.body])).toEqual([
      ["PUT", "/v1/agent/service/deregister/lb1-w%C3%A9b%20svc", ""],
    ]);
  });

  test("a query string on the Consul URL and a token are sent with every call", async () => {
    const consul = fakeConsul();
    servers.push(consul.server);
    const discovery = new ConsulDiscovery({ url: `${consul.url}/?dc=east`, instance: "lb1", token: "s3cret" });
    discovery.expose(WEB);
    await discovery.whenIdle();
    expect([consul.seen[0]?.search, consul.seen[0]?.token]).toEqual(["?dc=east", "s3cret"]);
  });

  test("a path on the Consul URL (a proxy's) is kept: the calls go under it", async () => {
    const consul = fakeConsul();
    servers.push(consul.server);
    const discovery = new ConsulDiscovery({ url: `${consul.url}/consul/?dc=east`, instance: "lb1" });
    discovery.expose(WEB);
    discovery.remove("old");
    await discovery.whenIdle();
    // Sent concurrently: compared in sorted order.
    expect(consul.seen.map((s) => `${s.path}${s.search}`).sort()).toEqual([
      "/consul/v1/agent/service/deregister/lb1-old?dc=east",
      "/consul/v1/agent/service/register?dc=east",
    ]);
  });

  test("Consul down at first, then up: the registration arrives later, and the failure is logged", async () => {
    // Find a free port, then leave nothing listening on it.
    const probe = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("") });
    const port = probe.port;
    probe.stop(true);
    const logger = new RecordingLogger();
    const discovery = new ConsulDiscovery({
      url: `http://127.0.0.1:${port}`,
      instance: "lb1",
      retryInitialMs: 20,
      retryMaxMs: 40,
      logger,
    });
    discovery.expose(WEB);
    // Wait until the first attempt has failed (the logger records it), then bring Consul up.
    while (!logger.lines.some((l) => l.includes("could not register lb1-web (attempt 1)"))) await Bun.sleep(5);
    expect(discovery.pendingCount()).toBe(1);
    const consul = fakeConsul(port);
    servers.push(consul.server);
    await discovery.whenIdle();
    expect(consul.seen.map((s) => [s.method, s.path])).toEqual([["PUT", "/v1/agent/service/register"]]);
    expect(JSON.parse(consul.seen[0]?.body ?? "").ID).toBe("lb1-web");
  });

  test("a non-200 answer is retried too", async () => {
    let calls = 0;
    const consul = fakeConsul(0, () => (++calls <= 2 ? 500 : 200));
    servers.push(consul.server);
    const logger = new RecordingLogger();
    const discovery = new ConsulDiscovery({ url: consul.url, instance: "lb1", retryInitialMs: 5, logger });
    discovery.expose(WEB);
    await discovery.whenIdle();
    expect(consul.seen.filter((s) => s.path === "/v1/agent/service/register").length).toBeGreaterThanOrEqual(2);
    expect(logger.lines.some((l) => l.includes("HTTP 500: agent unhappy"))).toBe(true);
  });

  test("a deregister the agent answers 404 (Unknown service ID) is done, not retried", async () => {
    // Consul's agent answers 404 to a deregister of an ID it does not have: here the service is deleted
    // before its registration was sent (Consul was down, or the queue was long).
    const consul = fakeConsul(0, () => 404);
    servers.push(consul.server);
    const logger = new RecordingLogger();
    const discovery = new ConsulDiscovery({ url: consul.url, instance: "lb1", retryInitialMs: 5, logger });
    discovery.remove("web");
    await discovery.whenIdle();
    expect(consul.seen.map((s) => `${s.method} ${s.path}`)).toEqual(["PUT /v1/agent/service/deregister/lb1-web"]);
    expect(logger.lines.filter((l) => l.includes("could not"))).toEqual([]);
  });

  test("a register the agent answers 404 is still a failure, retried", async () => {
    let calls = 0;
    const consul = fakeConsul(0, () => (++calls === 1 ? 404 : 200));
    servers.push(consul.server);
    const logger = new RecordingLogger();
    const discovery = new ConsulDiscovery({ url: consul.url, instance: "lb1", retryInitialMs: 5, logger });
    discovery.expose(WEB);
    await discovery.whenIdle();
    expect(consul.seen.map((s) => s.path)).toEqual(["/v1/agent/service/register", "/v1/agent/service/register"]);
    expect(logger.lines.some((l) => l.includes("could not register lb1-web (attempt 1): HTTP 404"))).toBe(true);
  });

  test("the latest operation per service wins: a remove replaces a pending register", async () => {
    const consul = fakeConsul();
    servers.push(consul.server);
    const discovery = new ConsulDiscovery({ url: consul.url, instance: "lb1" });
    discovery.expose(WEB);
    discovery.remove("web");
    await discovery.whenIdle();
    // The first register may already be in flight; the last call is always the deregister.
    expect(consul.seen.at(-1)?.path).toBe("/v1/agent/service/deregister/lb1-web");
  });

  test("close keeps the services' registrations (IPVS keeps serving through a restart), withdraws the API's (nothing serves it), and stops retrying", async () => {
    const consul = fakeConsul();
    servers.push(consul.server);
    const discovery = new ConsulDiscovery({ url: consul.url, instance: "lb1" });
    discovery.expose(WEB);
    discovery.expose({ ...WEB, id: "dns", port: 53, protocol: "udp" });
    discovery.exposeSelf({ address: "192.0.2.1", port: 4672 });
    await discovery.whenIdle();
    await discovery.close();
    expect(consul.seen.filter((s) => s.path.includes("deregister")).map((s) => s.path)).toEqual(["/v1/agent/service/deregister/gorb%3Alb1"]);
    discovery.expose(WEB); // ignored after close
    expect(discovery.pendingCount()).toBe(0);
  });

  test("with deregisterOnClose, close withdraws everything registered", async () => {
    const consul = fakeConsul();
    servers.push(consul.server);
    const discovery = new ConsulDiscovery({ url: consul.url, instance: "lb1", deregisterOnClose: true });
    discovery.expose(WEB);
    discovery.expose({ ...WEB, id: "dns", port: 53, protocol: "udp" });
    discovery.exposeSelf({ address: "192.0.2.1", port: 4672 });
    await discovery.whenIdle();
    await discovery.close();
    const deregistered = consul.seen.filter((s) => s.path.includes("deregister")).map((s) => s.path).sort();
    expect(deregistered).toEqual([
      "/v1/agent/service/deregister/gorb%3Alb1",
      "/v1/agent/service/deregister/lb1-dns",
      "/v1/agent/service/deregister/lb1-web",
    ]);
  });

  test("a restart re-registers without a gap: the new instance only registers, never deregisters first", async () => {
    const consul = fakeConsul();
    servers.push(consul.server);
    const before = new ConsulDiscovery({ url: consul.url, instance: "lb1" });
    before.expose(WEB);
    await before.whenIdle();
    await before.close();
    const after = new ConsulDiscovery({ url: consul.url, instance: "lb1" });
    after.expose(WEB);
    await after.whenIdle();
    expect(consul.seen.map((s) => `${s.method} ${s.path}`)).toEqual([
      "PUT /v1/agent/service/register",
      "PUT /v1/agent/service/register",
    ]);
  });

  test("calls for different services go out in parallel", async () => {
    // The stand-in answers nothing until it holds three requests at once: serial calls would never get there.
    const waiting: (() => void)[] = [];
    const seen: string[] = [];
    const agent = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      async fetch(request) {
        seen.push(JSON.parse(await request.text()).ID);
        await new Promise<void>((resolve) => {
          waiting.push(resolve);
          if (waiting.length === 3) for (const release of waiting.splice(0)) release();
        });
        return new Response("");
      },
    });
    servers.push(agent);
    const discovery = new ConsulDiscovery({ url: `http://127.0.0.1:${agent.port}`, instance: "lb1", timeoutMs: 60_000 });
    for (const id of ["a", "b", "c"]) discovery.expose({ ...WEB, id });
    await discovery.whenIdle();
    expect(seen.sort()).toEqual(["lb1-a", "lb1-b", "lb1-c"]);
  });

  test("no more than `concurrency` calls are in flight at once", async () => {
    let open = 0;
    let most = 0;
    const agent = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      async fetch(request) {
        open++;
        most = Math.max(most, open);
        await request.text();
        await Bun.sleep(1);
        open--;
        return new Response("");
      },
    });
    servers.push(agent);
    const discovery = new ConsulDiscovery({ url: `http://127.0.0.1:${agent.port}`, instance: "lb1", concurrency: 2 });
    for (let i = 0; i < 10; i++) discovery.expose({ ...WEB, id: `s${i}` });
    await discovery.whenIdle();
    expect(most).toBe(2);
  });

  test("the daemon's own registration has a reserved ID that a service named gorb cannot overwrite", async () => {
    const consul = fakeConsul();
    servers.push(consul.server);
    const discovery = new ConsulDiscovery({ url: consul.url, instance: "lb1", token: "acl-token" });
    discovery.exposeSelf({ address: "192.0.2.1", port: 4672 });
    discovery.expose({ ...WEB, id: "gorb" });
    await discovery.whenIdle();
    const bodies = consul.seen.map((s) => JSON.parse(s.body));
    expect(bodies).toContainEqual({ ID: "gorb:lb1", Name: "gorb", Address: "192.0.2.1", Port: 4672, Tags: ["gorb-api"] });
    expect(bodies).toContainEqual({ ID: "lb1-gorb", Name: "gorb", Address: "10.0.0.1", Port: 80, Tags: ["gorb", "tcp"] });
    expect(consul.seen.map((s) => s.token)).toEqual(["acl-token", "acl-token"]);
    expect(() => new ConsulDiscovery({ url: consul.url, instance: "a:b" })).toThrow("must be a host name");
  });

  test("prune withdraws only this instance's registrations of services gorb no longer has", async () => {
    const seen: string[] = [];
    const agentServices = {
      "lb1-web": { ID: "lb1-web", Service: "web", Tags: ["gorb", "tcp"] },
      "lb1-gone": { ID: "lb1-gone", Service: "gone", Tags: ["gorb", "tcp"] },
      "lb2-gone": { ID: "lb2-gone", Service: "gone", Tags: ["gorb", "tcp"] },
      "lb1-other": { ID: "lb1-other", Service: "other", Tags: ["not-gorb"] },
      "gorb:lb1": { ID: "gorb:lb1", Service: "gorb", Tags: ["gorb-api"] },
    };
    const agent = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch(request) {
        const url = new URL(request.url);
        seen.push(`${request.method} ${url.pathname} ${request.headers.get("x-consul-token")}`);
        return url.pathname === "/v1/agent/services" ? Response.json(agentServices) : new Response("");
      },
    });
    servers.push(agent);
    const discovery = new ConsulDiscovery({ url: `http://127.0.0.1:${agent.port}`, instance: "lb1", token: "t" });
    await discovery.prune(["web"]);
    await discovery.whenIdle();
    expect(seen).toEqual(["GET /v1/agent/services t", "PUT /v1/agent/service/deregister/lb1-gone t"]);
  });

  test("prune skips entries of the agent's answer that are not services (null, numbers) and withdraws the rest", async () => {
    const seen: string[] = [];
    const agent = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch(request) {
        const url = new URL(request.url);
        seen.push(`${request.method} ${url.pathname}`);
        const listed = { a: null, b: 3, c: "x", "lb1-gone": { ID: "lb1-gone", Service: "gone", Tags: ["gorb", "tcp"] } };
        return url.pathname === "/v1/agent/services" ? Response.json(listed) : new Response("");
      },
    });
    servers.push(agent);
    const discovery = new ConsulDiscovery({ url: `http://127.0.0.1:${agent.port}`, instance: "lb1" });
    // The daemon does not wait for prune (`void consul.prune(...)`): a rejection there stopped the process.
    await discovery.prune([]);
    await discovery.whenIdle();
    expect(seen).toEqual(["GET /v1/agent/services", "PUT /v1/agent/service/deregister/lb1-gone"]);
  });

  test("prune never withdraws a service created (and registered) while the agent's list was on its way", async () => {
    const agent = rememberingConsul();
    let answer = () => {};
    const listAsked = Promise.withResolvers<void>();
    const slowList = (input: string, init: RequestInit) => {
      if (new URL(input).pathname !== "/v1/agent/services") return fetch(input, init);
      listAsked.resolve();
      // The agent answers the list only after the new service's registration reached it.
      return new Promise<Response>((resolve) => {
        answer = () => resolve(fetch(input, init));
      });
    };
    const discovery = new ConsulDiscovery({ url: agent.url, instance: "lb1", resyncIntervalMs: 0, fetch: slowList });
    const pruned = discovery.prune([]); // gorb had no service at start
    await listAsked.promise;
    discovery.expose(WEB); // created through the API meanwhile
    await discovery.whenIdle();
    expect(agent.ids()).toEqual(["lb1-web"]);
    answer();
    await pruned;
    await discovery.whenIdle();
    expect(agent.ids()).toEqual(["lb1-web"]);
    await discovery.close();
  });

  test("a redirect is not followed: the ACL token never reaches another host, and the call failed", async () => {
    const elsewhere = fakeConsul();
    servers.push(elsewhere.server);
    const redirector = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: (request) => new Response(null, { status: 307, headers: { location: `${elsewhere.url}${new URL(request.url).pathname}` } }),
    });
    servers.push(redirector);
    const logger = new RecordingLogger();
    const discovery = new ConsulDiscovery({ url: `http://127.0.0.1:${redirector.port}`, instance: "lb1", token: "acl-token", logger });
    await discovery.prune([]);
    discovery.expose(WEB);
    while (!logger.lines.some((l) => l.includes("could not register lb1-web"))) await Bun.sleep(5);
    await discovery.close();
    expect(elsewhere.seen).toEqual([]);
    expect(logger.lines.filter((l) => l.startsWith("warn")).map((l) => l.replace(/; retrying in \d+ ms$/, ""))).toEqual([
      "warn consul: could not list the agent's services to withdraw stale ones: HTTP 307",
      "warn consul: could not register lb1-web (attempt 1): HTTP 307",
    ]);
  });

  test("the per-call timeout counts as a failure", async () => {
    const hang = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Promise<Response>(() => {}) });
    servers.push(hang);
    const logger = new RecordingLogger();
    const discovery = new ConsulDiscovery({ url: `http://127.0.0.1:${hang.port}`, instance: "lb1", timeoutMs: 20, logger });
    discovery.expose(WEB);
    while (!logger.lines.some((l) => l.includes("could not register lb1-web"))) await Bun.sleep(5);
    expect(logger.lines.find((l) => l.includes("could not register lb1-web"))).toMatch(/timed out|timeout|abort/i);
    expect(discovery.pendingCount()).toBe(1);
    await discovery.close();
  });

  test("a URL without a scheme is refused at construction", () => {
    expect(() => new ConsulDiscovery({ url: "consul:8500", instance: "x" })).toThrow(
      'consul: "consul:8500" must be an http:// or https:// URL',
    );
    expect(() => new ConsulDiscovery({ url: "10.0.0.1:8500", instance: "x" })).toThrow("is not a URL");
  });
});

describe("NoDiscovery", () => {
  test("does nothing and closes at once", async () => {
    const none = new NoDiscovery();
    none.expose();
    none.remove();
    expect(await none.close()).toBeUndefined();
  });
});

/** A stand-in agent that keeps what is registered (register, deregister, list), and can forget it all. */
function rememberingConsul() {
  const services = new Map<string, unknown>();
  let registers = 0;
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(request) {
      const url = new URL(request.url);
      if (request.method === "GET" && url.pathname === "/v1/agent/services") return Response.json(Object.fromEntries(services));
      if (request.method === "PUT" && url.pathname === "/v1/agent/service/register") {
        const body = (await request.json()) as { ID: string; Name: string; Tags: string[] };
        services.set(body.ID, { ID: body.ID, Service: body.Name, Tags: body.Tags });
        registers++;
        return new Response("");
      }
      const id = url.pathname.replace("/v1/agent/service/deregister/", "");
      if (request.method === "PUT" && id !== url.pathname) {
        return services.delete(decodeURIComponent(id)) ? new Response("") : new Response("Unknown service ID", { status: 404 });
      }
      return new Response("no such route", { status: 404 });
    },
  });
  servers.push(server);
  return {
    url: `http://127.0.0.1:${server.port}`,
    ids: () => [...services.keys()].sort(),
    registers: () => registers,
    /** The agent restarted without its data directory. */
    forget: () => services.clear(),
  };
}

describe("an agent that lost its registrations", () => {
  test("resync registers again what the agent no longer lists, and nothing it still has", async () => {
    const agent = rememberingConsul();
    const logger = new RecordingLogger();
    const discovery = new ConsulDiscovery({ url: agent.url, instance: "lb1", logger, resyncIntervalMs: 0 });
    discovery.expose(WEB);
    discovery.expose({ ...WEB, id: "api", port: 8080 });
    discovery.exposeSelf({ address: "10.0.0.254", port: 4672 });
    await discovery.whenIdle();
    expect(await discovery.resync()).toBe(0);
    expect(agent.registers()).toBe(3);
    agent.forget();
    expect(await discovery.resync()).toBe(3);
    await discovery.whenIdle();
    expect(agent.ids()).toEqual(["gorb:lb1", "lb1-api", "lb1-web"]);
    expect(logger.lines.filter((l) => l.includes("no longer has lb1-web"))).toHaveLength(1);
    // A service removed meanwhile is not brought back.
    discovery.remove("api");
    await discovery.whenIdle();
    agent.forget();
    expect(await discovery.resync()).toBe(2);
    await discovery.whenIdle();
    expect(agent.ids()).toEqual(["gorb:lb1", "lb1-web"]);
    await discovery.close();
  });

  test("by itself, every resyncIntervalMs", async () => {
    const agent = rememberingConsul();
    const discovery = new ConsulDiscovery({ url: agent.url, instance: "lb1", resyncIntervalMs: 20 });
    discovery.expose(WEB);
    await discovery.whenIdle();
    agent.forget();
    for (let i = 0; i < 500 && agent.ids().length === 0; i++) await Bun.sleep(5);
    expect(agent.ids()).toEqual(["lb1-web"]);
    await discovery.close();
  });
});
