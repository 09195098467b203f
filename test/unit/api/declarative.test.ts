/** POST /apply (and its dry run) and POST /reconcile over the REST API. */
import { describe, expect, test } from "bun:test";
import { createApp } from "../../../src/api/app.ts";
import { makeGorb } from "../core/fakes.ts";

function setup(options: { bodyLimitBytes?: number; applyLimitBytes?: number } = {}) {
  const stack = makeGorb();
  const app = createApp({ gorb: stack.gorb, logger: stack.logger, ...options });
  const call = async (method: string, path: string, body?: unknown) => {
    const init: RequestInit = { method };
    if (body !== undefined) init.body = typeof body === "string" ? body : JSON.stringify(body);
    const response = await app.handle(new Request(`http://gorb.test${path}`, init));
    const text = await response.text();
    return { status: response.status, body: text === "" ? null : (JSON.parse(text) as unknown) };
  };
  return { ...stack, call };
}

const SET = {
  services: {
    web: { host: "10.0.0.1", port: 80, backends: { b1: { host: "10.1.0.1", weight: 5 } } },
  },
};

describe("POST /apply", () => {
  test("?dry_run=true answers the plan and changes nothing; without it the changes are made", async () => {
    const { call, driver, gorb } = setup();
    const plan = await call("POST", "/apply?dry_run=true", SET);
    expect(plan).toEqual({
      status: 200,
      body: {
        dry_run: true,
        ok: true,
        changes: [
          { action: "create", service: "web", backend: null, details: ["tcp 10.0.0.1:80, wrr, 1 backend"], status: "planned" },
          { action: "create", service: "web", backend: "b1", details: ["10.1.0.1:80, nat, weight 5"], status: "planned" },
        ],
      },
    });
    expect(driver.peek()).toEqual([]);
    const done = await call("POST", "/apply", SET);
    expect(done.status).toBe(200);
    expect((done.body as { changes: { status: string }[] }).changes.map((c) => c.status)).toEqual(["done", "done"]);
    expect(gorb.listServices()).toEqual(["web"]);
    expect((await call("POST", "/apply", SET)).body).toEqual({ dry_run: false, ok: true, changes: [] });
  });

  test("a body with no set ({} or services: null) is a 400 and deletes none of the file-owned services", async () => {
    const { call, driver, gorb } = setup();
    expect((await call("POST", "/apply", SET)).status).toBe(200);
    const before = driver.peek();
    for (const body of [{}, { services: null }]) {
      expect(await call("POST", "/apply", body)).toEqual({
        status: 400,
        body: { error: 'services: required: the set to apply; an empty set is {"services": {}}', code: "VALIDATION", field: "services" },
      });
    }
    expect(gorb.listServices()).toEqual(["web"]);
    expect(driver.peek()).toEqual(before);
  });

  test("a bad set is a 400 naming the path, in its message and as data, and nothing changes", async () => {
    const { call, driver } = setup();
    const cases: [unknown, string, Record<string, unknown>][] = [
      [
        { services: { web: { host: "10.0.0.1", port: 80, backends: { b1: { host: "10.1.0.1", port: 70000 } } } } },
        "services.web.backends.b1.port: must be 1-65535, got 70000",
        { field: "services.web.backends.b1.port", path: ["services", "web", "backends", "b1", "port"] },
      ],
      [
        { services: { web: { port: 80, hots: "x" } } },
        "services.web.hots: unknown field; known: host, port, protocol, method, flags, persistent, persistence_timeout, persistence_netmask, fwmark, family, pe, one_packet, panic_threshold, announce_min_healthy, hash_fallback, sorry_server, quorum, hysteresis, quorum_up, quorum_down, backends",
        { field: "services.web.hots", path: ["services", "web", "hots"] },
      ],
      [
        { services: { "api.v2": { host: "nowhere.example", port: 80 } } },
        'services["api.v2"].host: cannot resolve "nowhere.example": getaddrinfo ENOTFOUND nowhere.example',
        { field: 'services["api.v2"].host', path: ["services", "api.v2", "host"] },
      ],
      [
        { services: { web: { port: 80, backends: { b1: { host: "10.1.0.1", pulse: { type: "http", args: { pth: "/health" } } } } } } },
        "services.web.backends.b1.pulse.args.pth: unknown arg; type http reads: host, port, timeout, rise, fall, backoff, method, path, expect, hostHeader, vhost, via",
        { field: "services.web.backends.b1.pulse.args.pth", path: ["services", "web", "backends", "b1", "pulse", "args", "pth"] },
      ],
      [{ servics: {} }, 'servics: unknown field; the body is {"services": {...}}', { field: "servics", path: ["servics"] }],
      // A key that is no plain name is quoted, as in the set's own paths: never a 400 naming the field "".
      [{ "": 1, services: {} }, '[""]: unknown field; the body is {"services": {...}}', { field: '[""]', path: [""] }],
      [{}, 'services: required: the set to apply; an empty set is {"services": {}}', { field: "services" }],
      [{ services: null }, 'services: required: the set to apply; an empty set is {"services": {}}', { field: "services" }],
      [[], 'body: must be a JSON object {"services": {...}}', { field: "body" }],
      ["", 'body: must be a JSON object {"services": {...}}', { field: "body" }],
    ];
    for (const [body, message, about] of cases) {
      expect(await call("POST", "/apply", body)).toEqual({ status: 400, body: { error: message, code: "VALIDATION", ...about } });
    }
    expect(await call("POST", "/apply?dry_run=maybe", SET)).toEqual({
      status: 400,
      body: { error: 'dry_run: must be true or false, got "maybe"', code: "VALIDATION", field: "dry_run" },
    });
    expect(driver.peek()).toEqual([]);
  });

  test("a conflict is a 409 naming the path, in its message and as data; a body over the apply limit is a 413", async () => {
    const { call, gorb } = setup({ bodyLimitBytes: 1024, applyLimitBytes: 2048 });
    await gorb.createService("manual", { host: "10.0.0.1", port: 80 });
    expect(await call("POST", "/apply", SET)).toEqual({
      status: 409,
      body: {
        error: 'services.web: tcp 10.0.0.1:80 is already used by service "manual" (created over the API)',
        code: "CONFLICT",
        field: "services.web",
        path: ["services", "web"],
      },
    });
    const big = { services: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`s${i}`, { host: "10.0.0.1", port: 1000 + i }])) };
    expect((await call("POST", "/apply", big)).status).toBe(413);
  });

  test("the apply limit is at least the body limit, and by default far above it", async () => {
    const { call } = setup({ bodyLimitBytes: 1024 });
    const many = { services: Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`s${i}`, { host: "10.0.0.1", port: 1000 + i }])) };
    expect(JSON.stringify(many).length).toBeGreaterThan(1024);
    expect((await call("POST", "/apply?dry_run=true", many)).status).toBe(200);
  });
});

describe("POST /reconcile", () => {
  test("repairs drift now and answers what it did", async () => {
    const { call, gorb, driver } = setup();
    await gorb.createService("web", { host: "10.0.0.1", port: 80 });
    expect(await call("POST", "/reconcile")).toEqual({ status: 200, body: { repairs: [] } });
    await driver.flush();
    expect(await call("POST", "/reconcile")).toEqual({
      status: 200,
      body: { repairs: [{ service: "web", backend: null, reason: "tcp 10.0.0.1:80 is missing from IPVS", status: "done" }] },
    });
    expect(driver.peek()).toHaveLength(1);
  });
});
