import { describe, expect, test } from "bun:test";
import { createApp, type AppOptions } from "../../../src/api/app.ts";
import { BackendBody, ServiceBody } from "../../../src/contract/schemas.ts";
import { BACKEND_FIELDS, SERVICE_FIELDS } from "../../../src/core/normalize.ts";
import { makeGorb, type TestStack } from "../core/fakes.ts";

interface Reply {
  readonly status: number;
  readonly text: string;
  readonly contentType: string | null;
  readonly headers: Headers;
}

type Stack = TestStack & {
  readonly app: ReturnType<typeof createApp>;
  /** Send a request; a string/object body is sent as raw bytes with no Content-Type, like GORB clients do. */
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Reply>;
};

function setup(options: Partial<Omit<AppOptions, "gorb" | "logger">> = {}): Stack {
  const stack = makeGorb();
  const app = createApp({ gorb: stack.gorb, logger: stack.logger, ...options });
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const init: RequestInit = { method, headers };
    if (body !== undefined) init.body = new TextEncoder().encode(typeof body === "string" ? body : JSON.stringify(body));
    const response = await app.handle(new Request(`http://gorb.test${path}`, init));
    return {
      status: response.status,
      text: await response.text(),
      contentType: response.headers.get("content-type"),
      headers: response.headers,
    };
  };
  return { ...stack, app, call };
}

/** The parsed JSON body of a reply. */
function json(reply: Reply): unknown {
  return JSON.parse(reply.text) as unknown;
}

/** Expects an error reply with `status` and exactly `message`. */
/** An error answer; a 400 also names its field as data, the one its message starts with. */
function expectError(reply: Reply, status: number, message: string): void {
  const field = status === 400 ? { field: message.slice(0, message.indexOf(": ")) } : {};
  expect({ status: reply.status, body: json(reply), type: reply.contentType }).toEqual({
    status,
    body: { error: message, code: expect.any(String), ...field },
    type: "application/json",
  });
}

/** A success of PUT/PATCH/DELETE: 200, empty body, no Content-Type (as the original). */
function expectEmptyOk(reply: Reply): void {
  expect([reply.status, reply.text, reply.contentType]).toEqual([200, "", null]);
}

// The seed README's bodies, verbatim apart from its placeholders ("tcp|udp", "rr|wrr|...", "nat|tunnel",
// "none|tcp|http"), each of which is tried with every choice it lists.
const README_SERVICE = (protocol: string, method: string) => `{
    "host": "10.0.0.1",
    "port": 12345,
    "protocol": "${protocol}",
    "method": "${method}",
    "persistent": true
}`;
const README_BACKEND = (method: string, type: string, port = 12346) => `{
    "host": "10.1.0.1",
    "port": ${port},
    "method": "${method}",
    "pulse": {
        "type": "${type}",
        "args": {
            "method": "GET",
            "path": "/health",
            "expect": 200
        },
        "interval": "5s"
    },
    "weight": 100
}`;

describe("the seed README's requests", () => {
  test.each(["tcp", "udp"].flatMap((p) => ["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "sh", "dh", "sed", "nq"].map((m) => [p, m])))(
    "PUT /service/<service> protocol %s method %s",
    async (protocol, method) => {
      const { call, driver } = setup();
      expectEmptyOk(await call("PUT", "/service/nginx-80-tcp", README_SERVICE(protocol, method)));
      const service = driver.peek()[0]?.service;
      expect(service?.key as unknown).toEqual({ family: "inet", protocol, address: "10.0.0.1", port: 12345 });
      expect([service?.scheduler, service?.flags.persistent, service?.timeout]).toEqual([method, true, 300]);
    },
  );

  test.each([
    ["nat", "none"],
    ["nat", "tcp"],
    ["nat", "http"],
    ["tunnel", "none"],
    ["tunnel", "tcp"],
    ["tunnel", "http"],
  ])("PUT /service/<service>/<backend> method %s pulse %s (numeric args: the original panicked)", async (method, type) => {
    const { call, driver, health } = setup();
    expectEmptyOk(await call("PUT", "/service/web", README_SERVICE("tcp", "wrr")));
    // A tunnel keeps the packet's port: its backend is on the service's port (next test).
    const port = method === "nat" ? 12346 : 12345;
    expectEmptyOk(await call("PUT", "/service/web/web-1", README_BACKEND(method, type, port)));
    expect(driver.peek()[0]?.destinations[0]).toMatchObject({
      address: "10.1.0.1",
      port,
      weight: 100,
      forward: method === "nat" ? "nat" : "tunnel",
    });
    const target = health.target("web", "web-1");
    expect([target.options.type as string, target.options.intervalMs]).toEqual([type, 5000]);
    const info = json(await call("GET", "/service/web/web-1")) as { options: { pulse: unknown } };
    // http reads these args; tcp and none read none of them, so they are dropped rather than kept and echoed.
    const args = type === "http" ? { method: "GET", path: "/health", expect: 200 } : {};
    expect(info.options.pulse).toEqual({ type, interval: "5s", args });
  });

  test("its tunnel backend on port 12346 of a service on 12345 is a 400 naming port (IPVS keeps a tunnelled packet's port)", async () => {
    const { call, driver, health } = setup();
    expectEmptyOk(await call("PUT", "/service/web", README_SERVICE("tcp", "wrr")));
    expectError(
      await call("PUT", "/service/web/web-1", README_BACKEND("tunnel", "http")),
      400,
      "port: must be the service's port 12345 for a tunnel backend, got 12346: IPVS forwards tunnel packets without changing " +
        "their port (only nat does); leave port out, and set pulse.args.port to check another port",
    );
    expect(driver.peek()[0]?.destinations).toEqual([]);
    expect(health.targets.size).toBe(0);
  });

  test("pulse args as digit strings (what sky-uk/feed sends) work too", async () => {
    const { call, health } = setup();
    await call("PUT", "/service/web", { host: "10.0.0.1", port: 80 });
    const body = { host: "10.1.0.1", pulse: { type: "http", args: { port: "54321", expect: "404", path: "/h" }, interval: "5s" } };
    expectEmptyOk(await call("PUT", "/service/web/b1", body));
    const options = health.target("web", "b1").options;
    expect([options.port, options.http?.path]).toEqual([54321, "/h"]);
  });

  test("the README's placeholders themselves are 400s that say what is accepted", async () => {
    const { call } = setup();
    expectError(
      await call("PUT", "/service/web", README_SERVICE("tcp|udp", "wrr")),
      400,
      'protocol: must be one of tcp, udp, sctp, got "tcp|udp"',
    );
  });

  test("DELETE, GET as the README lists them", async () => {
    const { call } = setup();
    await call("PUT", "/service/web", README_SERVICE("tcp", "wrr"));
    await call("PUT", "/service/web/web-1", README_BACKEND("nat", "tcp"));
    expect((await call("GET", "/service/web")).status).toBe(200);
    expect((await call("GET", "/service/web/web-1")).status).toBe(200);
    expectEmptyOk(await call("DELETE", "/service/web/web-1"));
    expectEmptyOk(await call("DELETE", "/service/web"));
    expect((await call("GET", "/service/web")).status).toBe(404);
  });
});

describe("services", () => {
  test("GET /service lists ids, sorted, tab-indented JSON; [] when empty", async () => {
    const { call } = setup();
    const empty = await call("GET", "/service");
    expect([empty.status, empty.text, empty.contentType]).toEqual([200, "[]", "application/json"]);
    await call("PUT", "/service/web", { host: "10.0.0.1", port: 80 });
    await call("PUT", "/service/api", { host: "10.0.0.1", port: 81 });
    expect((await call("GET", "/service")).text).toBe('[\n\t"api",\n\t"web"\n]');
  });

  test("GET /service/:service: GORB options with defaults, health, backends [], stats", async () => {
    const { call } = setup();
    await call("PUT", "/service/web", { Port: 80 });
    const reply = await call("GET", "/service/web");
    expect(reply.contentType).toBe("application/json");
    expect(reply.text.startsWith('{\n\t"options": {\n\t\t"host": "",')).toBe(true);
    expect(json(reply)).toMatchObject({
      options: { host: "", port: 80, protocol: "tcp", method: "wrr", flags: "", persistent: false, address: "192.0.2.1" },
      health: 1,
      backends: [],
      stats: { conns: 0 },
    });
  });

  test("GET /service?detail=true returns everything in one call", async () => {
    const { call } = setup();
    await call("PUT", "/service/web", { host: "10.0.0.1", port: 80 });
    await call("PUT", "/service/web/b1", { host: "10.1.0.1" });
    const detail = json(await call("GET", "/service?detail=true")) as { id: string; backend_details: { id: string }[] }[];
    expect(detail.map((d) => [d.id, d.backend_details.map((b) => b.id)])).toEqual([["web", ["b1"]]]);
    expect(json(await call("GET", "/service?detail=false"))).toEqual(["web"]);
    expectError(await call("GET", "/service?detail=maybe"), 400, 'detail: must be true or false, got "maybe"');
  });

  test("PATCH /service/:service updates in place; identity changes are 400", async () => {
    const { call, driver } = setup();
    await call("PUT", "/service/web", { host: "10.0.0.1", port: 80 });
    expectEmptyOk(await call("PATCH", "/service/web", { method: "rr", flags: "sh-port" }));
    expect(driver.peek()[0]?.service.scheduler).toBe("rr");
    expectError(
      await call("PATCH", "/service/web", { host: "10.0.0.2" }),
      400,
      'host: cannot move service "web" from tcp 10.0.0.1:80 to tcp 10.0.0.2:80; delete it and create it again',
    );
    expectError(await call("PATCH", "/service/nope", {}), 404, 'service "nope" not found');
  });

  test("flags are shown under the scheduler's own names, as IPVS holds them: mh-port on sh is sh-port", async () => {
    const { call, driver } = setup();
    const flagsOf = async () => ((json(await call("GET", "/service/web")) as { options: { flags: string } }).options.flags);
    expectEmptyOk(await call("PUT", "/service/web", { host: "10.0.0.1", port: 80, method: "sh", flags: "mh-port", hash_fallback: false }));
    expect(await flagsOf()).toBe("sh-port");
    expect(driver.peek()[0]?.service.flags).toMatchObject({ sched1: false, sched2: true, sched3: false });
    expectEmptyOk(await call("PATCH", "/service/web", { method: "mh" }));
    expect(await flagsOf()).toBe("mh-port");
    expectEmptyOk(await call("PATCH", "/service/web", { method: "wrr" }));
    expect(await flagsOf()).toBe("flag-2");
    expect(driver.peek()[0]?.service.flags).toMatchObject({ sched1: false, sched2: true, sched3: false });
  });

  test("an identity change names the field that changed, not the first one sent (the same host is no move)", async () => {
    const { call, driver } = setup();
    await call("PUT", "/service/web", { host: "10.0.0.1", port: 80 });
    await call("PUT", "/service/web/b1", { host: "10.1.0.1" });
    const before = driver.peek();
    expectError(
      await call("PATCH", "/service/web", { host: "10.0.0.1", port: 81 }),
      400,
      'port: cannot move service "web" from tcp 10.0.0.1:80 to tcp 10.0.0.1:81; delete it and create it again',
    );
    expectError(
      await call("PATCH", "/service/web", { host: "10.0.0.1", port: 80, protocol: "udp" }),
      400,
      'protocol: cannot move service "web" from tcp 10.0.0.1:80 to udp 10.0.0.1:80; delete it and create it again',
    );
    expectError(
      await call("PATCH", "/service/web/b1", { host: "10.1.0.1", port: 81 }),
      400,
      'port: cannot move backend "b1" from 10.1.0.1:80 to 10.1.0.1:81; delete it and create it again',
    );
    expect(driver.peek()).toEqual(before);
  });

  test("PATCH names the same field and problem as PUT, nested and enum fields too, and changes nothing", async () => {
    const { call, driver } = setup();
    await call("PUT", "/service/web", { host: "10.0.0.1", port: 80 });
    await call("PUT", "/service/web/b1", { host: "10.1.0.1" });
    const before = driver.peek();
    const cases: [string, Record<string, unknown>, string][] = [
      ["/service/web/b1", { pulse: { interval: 5 } }, "pulse.interval: must be a string, got 5"],
      ["/service/web/b1", { pulse: { args: [] } }, "pulse.args: must be an object, got an array"],
      ["/service/web/b1", { pulse: { type: "bad" } }, 'pulse.type: must be one of tcp, http, https, udp, dns, tls, exec, none, got "bad"'],
      ["/service/web/b1", { pulse: "x" }, 'pulse: must be an object such as {"type":"tcp","interval":"5s"}, got "x"'],
      ["/service/web/b1", { method: "bad" }, 'method: must be one of nat, dr, tunnel, ipip, local, got "bad"'],
      ["/service/web/b1", { tunnel_type: "x" }, 'tunnel_type: must be one of ipip, gue, gre, got "x"'],
      ["/service/web", { method: "bad" }, 'method: must be one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos, got "bad"'],
      ["/service/web", { sorry_server: { host: 1 } }, "sorry_server.host: must be a string, got 1"],
      ["/service/web", { sorry_server: "x" }, 'sorry_server: must be an object such as {"host":"10.0.0.9","port":80}, got "x"'],
    ];
    for (const [path, body, message] of cases) {
      expectError(await call("PATCH", path, body), 400, message);
      const put = path === "/service/web" ? { host: "10.0.0.2", port: 81, ...body } : { host: "10.1.0.2", ...body };
      expectError(await call("PUT", `${path}2`, put), 400, message);
    }
    expect(driver.peek()).toEqual(before);
  });

  test("409 for an existing service; 409 for one the kernel already has", async () => {
    const { call, driver } = setup();
    await call("PUT", "/service/web", { host: "10.0.0.1", port: 80 });
    expectError(await call("PUT", "/service/web", { host: "10.0.0.2", port: 80 }), 409, 'service "web" already exists');
    await driver.addService({
      key: { family: "inet", protocol: "udp", address: "10.0.0.5", port: 53 },
      scheduler: "rr",
      flags: { persistent: false, onePacket: false, sched1: false, sched2: false, sched3: false },
      timeout: 0,
      netmask: 32,
      pe: null,
    });
    expectError(
      await call("PUT", "/service/dns", { host: "10.0.0.5", port: 53, protocol: "udp" }),
      409,
      "service udp 10.0.0.5:53 already exists in the kernel (not managed by gorb)",
    );
  });

  test("PUT of an existing service or backend with a bad body is a 400 naming the field, not a 409, and changes nothing", async () => {
    const { call, driver } = setup();
    await call("PUT", "/service/web", { host: "10.0.0.1", port: 80 });
    await call("PUT", "/service/web/b1", { host: "10.1.0.1" });
    const before = driver.peek();
    const cases: [string, Record<string, unknown>, string][] = [
      ["/service/web", { host: "10.0.0.1", port: 80, sorry_server: { host: "fd00::9" } }, 'sorry_server.host: must be an inet address like the service, got "fd00::9"'],
      ["/service/web/b1", { host: "10.1.0.1", pulse: { interval: "abc" } }, 'pulse.interval: invalid interval "abc", use e.g. 500ms, 5s, 1m, 2h'],
      ["/service/web/b1", { host: "10.1.0.1", slow_start: "xx" }, 'slow_start: invalid interval "xx", use e.g. 500ms, 5s, 1m, 2h'],
      [
        "/service/web/b1",
        { host: "10.1.0.1", pulse: { type: "http", args: { expect: "x" } } },
        'pulse.args.expect: invalid status "x", use e.g. 200, "200,204", "200-299" or "2xx"',
      ],
    ];
    for (const [path, body, message] of cases) expectError(await call("PUT", path, body), 400, message);
    expect(driver.peek()).toEqual(before);
    // A good body for an existing one is still the conflict.
    expectError(await call("PUT", "/service/web/b1", { host: "10.1.0.2" }), 409, 'backend "b1" of service "web" already exists');
  });

  test("a sorry_server.host of the wrong family is quoted as sent, an IPv4-mapped IPv6 address too", async () => {
    const { call, driver } = setup();
    await call("PUT", "/service/web", { host: "10.0.0.1", port: 80 });
    await call("PUT", "/service/web6", { host: "2001:db8::1", port: 80 });
    const before = driver.peek();
    const mapped = 'sorry_server.host: must be an inet address like the service, got "::ffff:10.0.0.9"';
    const v4 = 'sorry_server.host: must be an inet6 address like the service, got "10.0.0.9"';
    expectError(await call("PUT", "/service/web2", { host: "10.0.0.2", port: 80, sorry_server: { host: "::ffff:10.0.0.9" } }), 400, mapped);
    expectError(await call("PATCH", "/service/web", { sorry_server: { host: "::ffff:10.0.0.9" } }), 400, mapped);
    expectError(await call("PATCH", "/service/web6", { sorry_server: { host: "10.0.0.9" } }), 400, v4);
    expect(driver.peek()).toEqual(before);
  });

  test("rollback through the API: a kernel failure is a 500, nothing is recorded and the VIP is removed", async () => {
    const { call, driver, vip } = setup();
    driver.failNext("add-service", "EPERM");
    const reply = await call("PUT", "/service/web", { host: "10.0.0.1", port: 80 });
    expect(reply.status).toBe(500);
    const body = json(reply) as { error: string; code: string; errno: string };
    expect([body.code, body.errno]).toEqual(["KERNEL", "EPERM"]);
    expect(body.error).toContain("CAP_NET_ADMIN");
    expect(json(await call("GET", "/service"))).toEqual([]);
    expect(vip.addresses()).toEqual([]);
  });
});

describe("backends", () => {
  test("the CLI's `gorb backend add web b1 --host 10.1.0.1`: port defaults to the service's", async () => {
    const { call, driver } = setup();
    await call("PUT", "/service/web", { host: "10.0.0.1", port: 8080 });
    expectEmptyOk(await call("PUT", "/service/web/b1", { host: "10.1.0.1" }));
    expect(driver.peek()[0]?.destinations[0]).toMatchObject({ address: "10.1.0.1", port: 8080, weight: 100 });
  });

  test("GET /service/:service/:backend: configured weight in options, effective weight, metrics with int status", async () => {
    const { call, gorb, health } = setup();
    await call("PUT", "/service/web", { host: "10.0.0.1", port: 80 });
    await call("PUT", "/service/web/b1", { host: "10.1.0.1", weight: 7 });
    health.report("web", "b1", "down");
    await gorb.idle();
    expect(json(await call("GET", "/service/web/b1"))).toMatchObject({
      options: { host: "10.1.0.1", port: 80, weight: 7, method: "nat", vsid: "web" },
      metrics: { status: 1, state: "down", health: 0.99, uptime: 0 },
      effective_weight: 0,
      active_conns: 0,
    });
    expect((json(await call("GET", "/service/web")) as { health: number }).health).toBe(0.99);
  });

  test("PATCH without weight does not drain; PATCH {weight: 0} does", async () => {
    const { call, driver } = setup();
    await call("PUT", "/service/web", { host: "10.0.0.1", port: 80 });
    await call("PUT", "/service/web/b1", { host: "10.1.0.1", weight: 5 });
    expectEmptyOk(await call("PATCH", "/service/web/b1", {}));
    expectEmptyOk(await call("PATCH", "/service/web/b1", ""));
    expect(driver.peek()[0]?.destinations[0]?.weight).toBe(5);
    expectEmptyOk(await call("PATCH", "/service/web/b1", { weight: 0 }));
    expect(driver.peek()[0]?.destinations[0]?.weight).toBe(0);
    expectError(
      await call("PATCH", "/service/web/b1", { port: 81 }),
      400,
      'port: cannot move backend "b1" from 10.1.0.1:80 to 10.1.0.1:81; delete it and create it again',
    );
  });

  test("404s name the object; backends are looked up within their service", async () => {
    const { call } = setup();
    await call("PUT", "/service/web", { host: "10.0.0.1", port: 80 });
    await call("PUT", "/service/web/b1", { host: "10.1.0.1" });
    await call("PUT", "/service/api", { host: "10.0.0.1", port: 81 });
    expectError(await call("GET", "/service/api/b1"), 404, 'backend "b1" of service "api" not found');
    expectError(await call("DELETE", "/service/nope/b1"), 404, 'service "nope" not found');
    expectError(await call("PUT", "/service/nope/b1", { host: "10.1.0.1" }), 404, 'service "nope" not found');
  });
});

describe("request bodies", () => {
  test("JSON is read whatever the Content-Type says (or without one)", async () => {
    const { call } = setup();
    for (const [i, type] of ["application/json", "text/plain", "application/x-www-form-urlencoded", "application/octet-stream"].entries()) {
      expectEmptyOk(await call("PUT", `/service/s${i}`, { host: "10.0.0.1", port: 80 + i }, { "Content-Type": type }));
    }
    expect(json(await call("GET", "/service"))).toEqual(["s0", "s1", "s2", "s3"]);
  });

  test("keys match case-insensitively, unknown keys are ignored", async () => {
    const { call, driver } = setup();
    expectEmptyOk(await call("PUT", "/service/web", { HOST: "10.0.0.1", Port: 80, Method: "RR", comment: "hi" }));
    expectEmptyOk(await call("PUT", "/service/web/b1", { Host: "10.1.0.1", WEIGHT: 3, Pulse: { Type: "none" } }));
    expect(driver.peek()[0]?.service.scheduler).toBe("rr");
    expect(driver.peek()[0]?.destinations[0]?.weight).toBe(3);
  });

  test.each([
    ['{"port": 80', "body: malformed JSON: JSON Parse error: Expected '}'"],
    ["not json", "body: malformed JSON: JSON Parse error: Unexpected identifier \"not\""],
    ["[1,2]", "body: must be a JSON object, got array"],
    ['"text"', "body: must be a JSON object, got string"],
    ["42", "body: must be a JSON object, got number"],
    ["", "port: is required (1-65535), or give a fwmark"],
    ['{"port": 70000}', "port: must be 1-65535, got 70000"],
    ['{"port": 1e400}', "port: must be an integer 1-65535, got Infinity"],
    ['{"port": 123456789012345678901234567890}', "port: must be 1-65535, got 1.2345678901234568e+29"],
    ['{"port": "80"}', 'port: must be an integer 1-65535, got "80"'],
    ['{"port": [80]}', "port: must be an integer 1-65535, got an array"],
    ['{"port": {"n": 80}}', "port: must be an integer 1-65535, got an object"],
    ['{"port": true}', "port: must be an integer 1-65535, got true"],
    ['{"port": 80, "host": "nowhere.invalid.example"}', 'host: cannot resolve "nowhere.invalid.example": getaddrinfo ENOTFOUND nowhere.invalid.example'],
    ['{"port": 80, "method": "fancy"}', 'method: must be one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos, got "fancy"'],
  ])("PUT /service/web %s -> 400 %s", async (body, message) => {
    const { call } = setup();
    expectError(await call("PUT", "/service/web", body), 400, message);
  });

  test.each([
    ['{"host": "10.1.0.1", "weight": -1}', "weight: must be 0-2147483647, got -1"],
    ['{"host": "10.1.0.1", "weight": 1e10}', "weight: must be 0-2147483647, got 10000000000"],
    ['{"host": "10.1.0.1", "pulse": {"type": "http", "args": {"expect": "abc"}}}', "pulse.args.expect"],
    ['{"host": "10.1.0.1", "pulse": {"interval": "1.5s"}}', "pulse.interval"],
    ['{"weight": 5}', "host: is required (an IP address or a DNS name)"],
  ])("PUT /service/web/b1 %s -> 400 naming %s", async (body, start) => {
    const { call } = setup();
    await call("PUT", "/service/web", { host: "10.0.0.1", port: 80 });
    const reply = await call("PUT", "/service/web/b1", body);
    expect(reply.status).toBe(400);
    expect((json(reply) as { error: string }).error.startsWith(start)).toBe(true);
  });

  test("a body over the limit is a 413, with or without a Content-Length; 1 MB by default is refused", async () => {
    const { call } = setup({ bodyLimitBytes: 1024 });
    const big = JSON.stringify({ host: "10.0.0.1", port: 80, pad: "x".repeat(2000) });
    expectError(await call("PUT", "/service/web", big), 413, "body: larger than the limit of 1024 bytes");
    const streamed = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 10; i++) controller.enqueue(new TextEncoder().encode(" ".repeat(200)));
        controller.close();
      },
    });
    const { app } = setup({ bodyLimitBytes: 1024 });
    const reply = await app.handle(new Request("http://gorb.test/service/web", { method: "PUT", body: streamed }));
    expect(reply.status).toBe(413);
    const defaults = setup();
    const mega = JSON.stringify({ host: "10.0.0.1", port: 80, pad: "x".repeat(1024 * 1024) });
    expectError(await defaults.call("PUT", "/service/web", mega), 413, "body: larger than the limit of 65536 bytes");
    expect(json(await defaults.call("GET", "/service"))).toEqual([]);
  });

  test("a body longer than its Content-Length says is a 413 all the same", async () => {
    const { app, gorb } = setup({ bodyLimitBytes: 1024 });
    const big = JSON.stringify({ host: "10.0.0.1", port: 80, pad: "x".repeat(2000) });
    const request = new Request("http://gorb.test/service/web", { method: "PUT", body: big, headers: { "content-length": "40" } });
    const reply = await app.handle(request);
    expect(reply.status).toBe(413);
    expect(gorb.listServices()).toEqual([]);
  });

  test("a body that is not UTF-8 is a 400", async () => {
    const { app } = setup();
    const reply = await app.handle(
      new Request("http://gorb.test/service/web", { method: "PUT", body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]) }),
    );
    expect([reply.status, (await reply.json()) as unknown]).toEqual([400, { error: "body: is not valid UTF-8", code: "VALIDATION", field: "body" }]);
  });

  test("a __proto__ key does not pollute anything", async () => {
    const { call } = setup();
    expectEmptyOk(await call("PUT", "/service/web", '{"__proto__": {"port": 1, "polluted": true}, "host": "10.0.0.1", "port": 80}'));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((json(await call("GET", "/service/web")) as { options: { port: number } }).options.port).toBe(80);
  });
});

describe("ids and routes", () => {
  test("unicode ids (percent-encoded) work", async () => {
    const { call } = setup();
    expectEmptyOk(await call("PUT", `/service/${encodeURIComponent("wéb-服务")}`, { host: "10.0.0.1", port: 80 }));
    expectEmptyOk(await call("PUT", `/service/${encodeURIComponent("wéb-服务")}/${encodeURIComponent("бэк")}`, { host: "10.1.0.1" }));
    expect(json(await call("GET", "/service"))).toEqual(["wéb-服务"]);
    expect((json(await call("GET", `/service/${encodeURIComponent("wéb-服务")}`)) as { backends: string[] }).backends).toEqual(["бэк"]);
  });

  test("an id with an encoded '/' is a 400; an unencoded one is just another route (404)", async () => {
    const { call } = setup();
    expectError(await call("PUT", "/service/a%2Fb", { port: 80 }), 400, 'service: id must not contain "/", got "a/b"');
    expectError(await call("PUT", "/service/a/b/c", { port: 80 }), 404, "no route for PUT /service/a/b/c");
  });

  test("an empty id (a trailing slash, an empty variable) is a 400 naming it, and changes nothing", async () => {
    const { call, driver } = setup();
    expectEmptyOk(await call("PUT", "/service/web", { host: "10.0.0.1", port: 80 }));
    expectEmptyOk(await call("PUT", "/service/web/b1", { host: "10.1.0.1" }));
    const before = driver.peek();
    expectError(await call("DELETE", "/service/web/"), 400, "backend: id must not be empty");
    expectError(await call("PATCH", "/service/web/", { method: "rr" }), 400, "backend: id must not be empty");
    expectError(await call("PUT", "/service/web/", { host: "10.1.0.2" }), 400, "backend: id must not be empty");
    expectError(await call("DELETE", "/service/web//drain"), 400, "backend: id must not be empty");
    expectError(await call("DELETE", "/service/"), 400, "service: id must not be empty");
    expectError(await call("PUT", "/service//b1", { host: "10.1.0.2" }), 400, "service: id must not be empty");
    // A slash after a backend's id is no route either: not the backend.
    expectError(await call("DELETE", "/service/web/b1/"), 404, "no route for DELETE /service/web/b1/");
    expect(driver.peek()).toEqual(before);
    expect(json(await call("GET", "/service/web"))).toMatchObject({ options: { method: "wrr" }, backends: ["b1"] });
  });

  test("a short Host (lb1, port 80) routes the path as written: /gorb/service/web is no route, not /service/web", async () => {
    const { app, call, driver } = setup();
    expectEmptyOk(await call("PUT", "/service/web", { host: "10.0.0.1", port: 80 }));
    const before = driver.peek();
    const send = async (url: string, method = "GET") => {
      const reply = await app.handle(new Request(url, { method }));
      return { status: reply.status, body: (await reply.json()) as unknown };
    };
    expect(await send("http://lb1/gorb/service/web", "DELETE")).toEqual({
      status: 404,
      body: { error: "no route for DELETE /gorb/service/web", code: "NOT_FOUND" },
    });
    expect(await send("http://x/v1/service/web", "DELETE")).toEqual({ status: 404, body: { error: "no route for DELETE /v1/service/web", code: "NOT_FOUND" } });
    expect(driver.peek()).toEqual(before);
    expect(await send("http://lb1/service")).toEqual({ status: 200, body: ["web"] });
    expect((await send("http://x/service/web")).status).toBe(200);
  });

  test("over HTTPS (the daemon's --tls-cert) the path is found after https://", async () => {
    const { app, call } = setup({ https: true });
    expectEmptyOk(await call("PUT", "/service/web", { host: "10.0.0.1", port: 80 }));
    const reply = await app.handle(new Request("https://lb1/service"));
    expect([reply.status, await reply.json()]).toEqual([200, ["web"]]);
    const prefixed = await app.handle(new Request("https://lb1.example/gorb/service/web", { method: "DELETE" }));
    expect(prefixed.status).toBe(404);
  });

  test("a query parameter the route does not read is a 400 naming it, and changes nothing", async () => {
    const { call, driver } = setup();
    expectError(
      await call("PUT", "/service/web?dry_run=true", { host: "10.0.0.1", port: 80 }),
      400,
      "dry_run: unknown query parameter; PUT /service/:service takes none",
    );
    expect(driver.peek()).toEqual([]);
    expectEmptyOk(await call("PUT", "/service/web", { host: "10.0.0.1", port: 80 }));
    const before = driver.peek();
    expectError(await call("DELETE", "/service/web?dry_run=true"), 400, "dry_run: unknown query parameter; DELETE /service/:service takes none");
    expectError(await call("PATCH", "/service/web?force=1", { method: "rr" }), 400, "force: unknown query parameter; PATCH /service/:service takes none");
    expectError(await call("GET", "/service?details=true"), 400, "details: unknown query parameter; GET /service takes only detail");
    expectError(await call("POST", "/apply?dryrun=true", { services: {} }), 400, "dryrun: unknown query parameter; POST /apply takes only dry_run");
    expect(driver.peek()).toEqual(before);
    // The ones a route reads still work; a route this gorb does not have stays a 404 whatever the query.
    expect((await call("GET", "/service?detail=true")).status).toBe(200);
    expect((await call("GET", "/cluster?x=1")).status).toBe(404);
  });

  test("a query parameter without a name (?=, ?&=1, ?=&=) is a 400 naming the query, not the field \"\", and changes nothing", async () => {
    const { call, driver } = setup();
    expectEmptyOk(await call("PUT", "/service/web", { host: "10.0.0.1", port: 80 }));
    const before = driver.peek();
    const problem = 'query: has a parameter without a name ("=..."); write each one as name=value';
    expectError(await call("DELETE", "/service/web?="), 400, problem);
    expectError(await call("PATCH", "/service/web?&=1", { method: "rr" }), 400, problem);
    expectError(await call("POST", "/apply?=&=", { services: {} }), 400, problem);
    expectError(await call("GET", "/service?detail=true&="), 400, problem);
    expect(driver.peek()).toEqual(before);
  });

  test("bad percent-encoding is a 400", async () => {
    const { call } = setup();
    expectError(await call("GET", "/service/%E0%A4%A"), 400, "service: id is not valid percent-encoded UTF-8");
  });

  test("unknown routes and wrong methods are 404 (as gorilla/mux answered for the original)", async () => {
    const { call } = setup();
    expectError(await call("GET", "/nope"), 404, "no route for GET /nope");
    expectError(await call("POST", "/service/web"), 404, "no route for POST /service/web");
  });

  test("GET /openapi.json is generated from the routes: every route, its body and response schemas from the contract", async () => {
    const { call, app } = setup({ version: "1.2.3" });
    interface Operation {
      requestBody?: { content: Record<string, { schema: { properties?: Record<string, unknown>; $ref?: string } }> };
      responses: Record<string, { content?: Record<string, { schema: unknown }> }>;
      parameters?: { name: string; in: string }[];
    }
    const doc = json(await call("GET", "/openapi.json")) as {
      info: { version: string; title: string };
      paths: Record<string, Record<string, Operation>>;
      components: { schemas: Record<string, { properties: Record<string, unknown> }> };
    };
    expect([doc.info.title, doc.info.version]).toEqual(["gorb", "1.2.3"]);
    // Every route the app has is in the document (the document's own route is hidden from it).
    const routes = app.routes
      .filter((r) => r.path !== "/openapi.json")
      .map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:(\w+)/g, "{$1}")}`)
      .sort();
    const documented = Object.entries(doc.paths)
      .flatMap(([path, ops]) => Object.keys(ops).map((method) => `${method} ${path}`))
      .sort();
    expect(documented).toEqual(routes);
    expect(routes).toContain("put /service/{service}/{backend}");
    // Bodies: the contract's schemas, field for field.
    const body = (path: string, method: string) =>
      Object.keys(doc.paths[path]?.[method]?.requestBody?.content["application/json"]?.schema.properties ?? {}).sort();
    expect(body("/service/{service}", "put")).toEqual([...SERVICE_FIELDS].sort());
    expect(body("/service/{service}", "patch")).toEqual([...SERVICE_FIELDS].sort());
    expect(body("/service/{service}/{backend}", "put")).toEqual([...BACKEND_FIELDS].sort());
    expect(body("/service/{service}/{backend}", "patch")).toEqual([...BACKEND_FIELDS].sort());
    expect(doc.paths["/apply"]?.post?.requestBody?.content["application/json"]?.schema.$ref).toBe("#/components/schemas/ApplyBody");
    expect(Object.keys(doc.components.schemas.ServiceBody?.properties ?? {}).sort()).toEqual([...SERVICE_FIELDS].sort());
    // Responses: every operation documents 200 and the error body.
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        expect([path, method, "200" in op.responses, "400" in op.responses]).toEqual([path, method, true, true]);
      }
    }
    const info = doc.paths["/service/{service}"]?.get?.responses["200"]?.content?.["application/json"]?.schema as {
      properties: Record<string, unknown>;
    };
    expect(Object.keys(info.properties).sort()).toEqual(["backends", "health", "healthy", "in_kernel", "options", "panic", "quorum_up", "sorry", "stats"]);
    // The event stream's resume position, read by the route itself, is documented too.
    expect(doc.paths["/events"]?.get?.parameters?.map((p) => `${p.in} ${p.name}`)).toEqual(["header Last-Event-ID", "query last_event_id"]);
    // And the event types it sends, from the one list of them.
    const stream = JSON.stringify(doc.paths["/events"]?.get?.responses["200"]);
    for (const type of ["service.created", "backend.health", "backend.drain", "bgp.withdrawn", "resync"]) expect(stream).toContain(type);
  });

  test("GET /openapi.json over a real socket", async () => {
    const { app } = setup();
    app.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const reply = await fetch(`http://127.0.0.1:${app.server?.port}/openapi.json`);
      expect(reply.status).toBe(200);
      expect(((await reply.json()) as { openapi: string }).openapi).toStartWith("3.");
    } finally {
      await app.stop();
    }
  });

  test("the TypeBox body schemas list exactly the fields the normaliser reads", () => {
    expect(Object.keys(ServiceBody.properties).sort()).toEqual([...SERVICE_FIELDS].sort());
    expect(Object.keys(BackendBody.properties).sort()).toEqual([...BACKEND_FIELDS].sort());
  });
});

describe("bearer token", () => {
  test("every route needs it when configured, /metrics and /openapi.json included", async () => {
    const { call } = setup({ token: "s3cret" });
    for (const [method, path] of [
      ["GET", "/service"],
      ["PUT", "/service/web"],
      ["GET", "/metrics"],
      ["GET", "/openapi.json"],
      ["GET", "/nope"],
    ] as const) {
      const reply = await call(method, path, method === "PUT" ? { port: 80 } : undefined);
      expectError(reply, 401, "authorization: a bearer token is required");
      expect(reply.headers.get("www-authenticate")).toBe('Bearer realm="gorb"');
    }
    expectError(await call("GET", "/service", undefined, { Authorization: "Bearer wrong" }), 401, "authorization: the token is not valid");
    expectError(await call("GET", "/service", undefined, { Authorization: "Basic czNjcmV0" }), 401, 'authorization: expected "Bearer <token>"');
    const ok = await call("GET", "/service", undefined, { Authorization: "bearer s3cret" });
    expect(ok.status).toBe(200);
    expect((await call("PUT", "/service/web", { host: "10.0.0.1", port: 80 }, { Authorization: "Bearer s3cret" })).status).toBe(200);
  });

  test("without a token the API is open", async () => {
    const { call } = setup();
    expect((await call("GET", "/metrics")).status).toBe(200);
  });
});

describe("answer headers", () => {
  /** The two headers every answer of the API carries (state of a load balancer, behind a token). */
  const expectNoStore = (reply: Reply, what: string) =>
    expect(`${what}: ${reply.headers.get("cache-control")}, ${reply.headers.get("x-content-type-options")}`).toBe(`${what}: no-store, nosniff`);

  test("every answer is Cache-Control: no-store and nosniff: JSON, empty 200s, errors (400, 404, 409, 413), /metrics, the status text", async () => {
    const { call } = setup({ bodyLimitBytes: 64 });
    const answers: [string, Reply, number][] = [
      ["PUT a service", await call("PUT", "/service/web", { host: "10.0.0.1", port: 80 }), 200],
      ["GET /service", await call("GET", "/service"), 200],
      ["GET /service as text", await call("GET", "/service", undefined, { Accept: "text/plain" }), 200],
      ["GET a service", await call("GET", "/service/web"), 200],
      ["PATCH a service", await call("PATCH", "/service/web", { method: "rr" }), 200],
      ["a 400", await call("PUT", "/service/api", { host: "10.0.0.2", port: 70000 }), 400],
      ["a 400 body that is not JSON", await call("PUT", "/service/api", "{"), 400],
      ["a 404 object", await call("GET", "/service/nope"), 404],
      ["a 404 route", await call("GET", "/nope"), 404],
      ["a 409", await call("PUT", "/service/web", { host: "10.0.0.1", port: 80 }), 409],
      ["a 413", await call("PUT", "/service/api", { host: "10.0.0.2", port: 80, pad: "x".repeat(100) }), 413],
      ["GET /metrics", await call("GET", "/metrics"), 200],
      ["GET /openapi.json", await call("GET", "/openapi.json"), 200],
      ["DELETE a service", await call("DELETE", "/service/web"), 200],
    ];
    for (const [what, reply, status] of answers) {
      expect(`${what}: ${reply.status}`).toBe(`${what}: ${status}`);
      expectNoStore(reply, what);
    }
  });

  test("the guard's answers have them too: a 401 (a token is configured), a 403 (a browser origin not trusted)", async () => {
    const { call } = setup({ token: "s3cret" });
    const refused = await call("GET", "/service");
    expect(refused.status).toBe(401);
    expectNoStore(refused, "a 401");
    expectNoStore(await call("GET", "/metrics", undefined, { Authorization: "Bearer s3cret" }), "GET /metrics with the token");
    const origin = await call("PUT", "/service/web", { host: "10.0.0.1", port: 80 }, { Authorization: "Bearer s3cret", Origin: "http://evil.test" });
    expect(origin.status).toBe(403);
    expectNoStore(origin, "a 403");
  });

  test("the web UI's files keep their own: revalidated (no-cache, ETag), nosniff", async () => {
    const { call } = setup({ ui: true, token: "s3cret" });
    for (const path of ["/ui", "/ui/app.js", "/ui/app.css"]) {
      const reply = await call("GET", path);
      expect([path, reply.status, reply.headers.get("cache-control"), reply.headers.get("x-content-type-options")]).toEqual([path, 200, "no-cache", "nosniff"]);
    }
  });
});

describe("errors and logging", () => {
  test("a kernel failure is logged; an unexpected exception is a 500 that hides the details", async () => {
    const { call, driver, logger, gorb } = setup();
    driver.failNext("add-service", "ENOMEM");
    await call("PUT", "/service/web", { host: "10.0.0.1", port: 80 });
    expect(logger.lines.some((l) => l.startsWith("error PUT /service/web: add-service service tcp 10.0.0.1:80 failed"))).toBe(true);
    // A GorbApi whose method throws a plain Error.
    const broken = createApp({
      gorb: { ...gorbApi(gorb), listServices: () => { throw new Error("secret detail"); } },
      logger,
    });
    const reply = await broken.handle(new Request("http://gorb.test/service"));
    expect([reply.status, await reply.json()]).toEqual([500, { error: "internal error (see the gorb log)", code: "INTERNAL" }]);
  });
});

/** The methods of a Gorb as a plain object (to replace one of them). */
function gorbApi(gorb: TestStack["gorb"]): AppOptions["gorb"] {
  return {
    createService: (...a) => gorb.createService(...a),
    updateService: (...a) => gorb.updateService(...a),
    deleteService: (...a) => gorb.deleteService(...a),
    getService: (...a) => gorb.getService(...a),
    listServices: () => gorb.listServices(),
    listServicesDetail: () => gorb.listServicesDetail(),
    readServicesStatus: () => gorb.readServicesStatus(),
    createBackend: (...a) => gorb.createBackend(...a),
    updateBackend: (...a) => gorb.updateBackend(...a),
    deleteBackend: (...a) => gorb.deleteBackend(...a),
    getBackend: (...a) => gorb.getBackend(...a),
    drainBackend: (...a) => gorb.drainBackend(...a),
    undrainBackend: (...a) => gorb.undrainBackend(...a),
    apply: (...a) => gorb.apply(...a),
    reconcile: () => gorb.reconcile(),
    reconcileCounters: () => gorb.reconcileCounters(),
  };
}

describe("GET /service and Accept", () => {
  test("the status table only to a client that prefers text/plain to JSON; JSON otherwise", async () => {
    const { call } = setup();
    await call("PUT", "/service/web", { host: "10.0.0.1", port: 80 });
    const type = async (accept: string) => (await call("GET", "/service", undefined, { Accept: accept })).headers.get("content-type");
    const text = "text/plain; charset=utf-8";
    expect(await type("text/plain")).toBe(text);
    expect(await type("application/json;q=0.5, text/plain")).toBe(text);
    expect(await type("text/*")).toBe(text);
    // "text/plain;q=0" says text is not acceptable: it got the table (a prefix match on "text/plain").
    expect(await type("text/plain;q=0, application/json")).not.toBe(text);
    expect(await type("text/plain;q=0")).not.toBe(text);
    expect(await type("text/plainish")).not.toBe(text);
    // A tie, a browser's list, and anything else get JSON, the default.
    expect(await type("application/json, text/plain")).not.toBe(text);
    expect(await type("text/html,application/xhtml+xml,*/*;q=0.8")).not.toBe(text);
    expect(await type("*/*")).not.toBe(text);
  });
});

describe("the web UI's files and Accept-Encoding", () => {
  test("gzip only to a client that takes it: gzip;q=0 (refused) gets the plain file", async () => {
    const { call } = setup({ ui: true });
    const encoding = async (accept: string) => (await call("GET", "/ui/app.css", undefined, { "Accept-Encoding": accept })).headers.get("content-encoding");
    // A client that says it cannot read gzip was sent gzip: /\bgzip\b/ matched "gzip;q=0".
    expect(await encoding("gzip;q=0, identity")).toBeNull();
    expect(await encoding("identity, gzip; q=0.000")).toBeNull();
    expect(await encoding("*;q=0")).toBeNull();
    expect(await encoding("br")).toBeNull();
    expect(await encoding("gzip, deflate, br")).toBe("gzip");
    expect(await encoding("GZIP;q=0.5")).toBe("gzip");
    expect(await encoding("*")).toBe("gzip");
  });

  test("the gzipped file has its own ETag: a cache holding it gets no 304 for a client that cannot read gzip", async () => {
    // Both encodings had one ETag, so a shared cache (Vary: Accept-Encoding) that revalidated its gzipped copy
    // for a client without gzip got 304 and handed that client bytes it cannot decode.
    const { call } = setup({ ui: true });
    const zipped = await call("GET", "/ui/app.js", undefined, { "Accept-Encoding": "gzip" });
    const plain = await call("GET", "/ui/app.js");
    const zippedTag = zipped.headers.get("etag") ?? "";
    const plainTag = plain.headers.get("etag") ?? "";
    expect(zippedTag).not.toBe(plainTag);
    const revalidate = (tag: string, accept?: string) =>
      call("GET", "/ui/app.js", undefined, { "If-None-Match": tag, ...(accept !== undefined ? { "Accept-Encoding": accept } : {}) });
    const refreshed = await revalidate(zippedTag);
    expect([refreshed.status, refreshed.headers.get("content-encoding"), refreshed.headers.get("etag")]).toEqual([200, null, plainTag]);
    expect((await revalidate(zippedTag, "gzip")).status).toBe(304);
    expect((await revalidate(plainTag)).status).toBe(304);
    // A list, and a weak tag, as caches send them.
    expect((await revalidate(`"other", W/${plainTag}`)).status).toBe(304);
  });
});
