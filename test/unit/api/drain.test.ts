import { describe, expect, test } from "bun:test";
import { createApp } from "../../../src/api/app.ts";
import { makeGorb } from "../core/fakes.ts";

async function setup() {
  // drainPollMs is long: these tests look at the API, not at the watcher ending drains.
  const stack = makeGorb({ drainPollMs: 60_000 });
  const app = createApp({ gorb: stack.gorb, logger: stack.logger, events: stack.gorb.events, sysctls: () => ({ expire_nodest_conn: 1, conn_reuse_mode: 1 }) });
  await stack.gorb.createService("web", { host: "10.0.0.1", port: 80 });
  await stack.gorb.createBackend("web", "b1", { host: "10.1.0.1" });
  await stack.gorb.createBackend("web", "b2", { host: "10.1.0.2" });
  const call = async (method: string, path: string, body?: unknown) => {
    const init: RequestInit = { method };
    if (body !== undefined) init.body = typeof body === "string" ? body : JSON.stringify(body);
    const reply = await app.handle(new Request(`http://gorb.test${path}`, init));
    const text = await reply.text();
    return { status: reply.status, body: text === "" ? null : (JSON.parse(text) as unknown) };
  };
  return { ...stack, app, call };
}

function destWeights(driver: ReturnType<typeof makeGorb>["driver"]): Record<string, number> {
  return Object.fromEntries(driver.peek().flatMap((s) => s.destinations.map((d) => [d.address, d.weight])));
}

describe("POST and DELETE /service/:service/:backend/drain", () => {
  test("a drain answers its view, shows in GET, and is cancelled by DELETE", async () => {
    const { call, driver } = await setup();
    const started = await call("POST", "/service/web/b1/drain", { timeout: "10m", then: "keep" });
    expect(started.status).toBe(200);
    expect(started.body).toMatchObject({ state: "draining", then: "keep", seconds_left: 600, node: null });
    expect(destWeights(driver)).toEqual({ "10.1.0.1": 0, "10.1.0.2": 100 });
    const got = await call("GET", "/service/web/b1");
    expect(got.body).toMatchObject({ effective_weight: 0, options: { weight: 100, maintenance: false }, drain: { state: "draining", then: "keep" } });
    expect((await call("GET", "/service/web/b2")).body).toMatchObject({ drain: null });
    expect(await call("DELETE", "/service/web/b1/drain")).toEqual({ status: 200, body: null });
    expect(destWeights(driver)).toEqual({ "10.1.0.1": 100, "10.1.0.2": 100 });
  });

  test("an empty body (curl -X POST) takes the defaults: 5m, then remove", async () => {
    const { call } = await setup();
    expect((await call("POST", "/service/web/b1/drain")).body).toMatchObject({ then: "remove", seconds_left: 300 });
    expect((await call("POST", "/service/web/b2/drain", "")).body).toMatchObject({ then: "remove" });
  });

  test("bad input is a 400 naming the field; unknown ids are 404; nothing changes", async () => {
    const { call, driver } = await setup();
    const bad = [
      [{ timeout: "5" }, "timeout"],
      [{ timeout: 300 }, "timeout"],
      [{ timeout: "9d" }, "timeout"],
      [{ then: "delete" }, "then"],
    ] as const;
    for (const [body, field] of bad) {
      const reply = await call("POST", "/service/web/b1/drain", body);
      expect(reply.status).toBe(400);
      expect(reply.body).toMatchObject({ code: "VALIDATION" });
      expect((reply.body as { error: string }).error).toStartWith(`${field}: `);
    }
    // The API's own schema check words a timeout of another type as the README says (as core does).
    expect((await call("POST", "/service/web/b1/drain", { timeout: 300 })).body).toMatchObject({
      field: "timeout",
      error: "timeout: must be a duration such as 30s, 5m or 2h, got 300",
    });
    expect((await call("POST", "/service/web/nope/drain", {})).status).toBe(404);
    expect((await call("POST", "/service/nope/b1/drain", {})).status).toBe(404);
    expect((await call("DELETE", "/service/web/nope/drain")).status).toBe(404);
    expect(destWeights(driver)).toEqual({ "10.1.0.1": 100, "10.1.0.2": 100 });
  });

  test("maintenance by PATCH: shown in GET and /metrics, with the drain gauges and the sysctls", async () => {
    const { call, app } = await setup();
    expect((await call("PATCH", "/service/web/b1", { maintenance: true })).status).toBe(200);
    expect((await call("PATCH", "/service/web/b2", { maintenance: "on" })).body).toMatchObject({ code: "VALIDATION", error: expect.stringMatching(/^maintenance: /) });
    await call("POST", "/service/web/b2/drain", { timeout: "1m" });
    expect((await call("GET", "/service/web/b1")).body).toMatchObject({ effective_weight: 0, options: { maintenance: true } });
    const text = await (await app.handle(new Request("http://gorb.test/metrics"))).text();
    expect(text).toContain('gorb_service_backend_maintenance{service_name="web",name="b1",host="10.1.0.1",port="80"} 1');
    expect(text).toContain('gorb_service_backend_maintenance{service_name="web",name="b2",host="10.1.0.2",port="80"} 0');
    expect(text).toContain('gorb_service_backend_draining{service_name="web",name="b2",host="10.1.0.2",port="80"} 1');
    expect(text).toContain('gorb_service_backend_drain_seconds_left{service_name="web",name="b2",host="10.1.0.2",port="80"} 60');
    expect(text).toContain('gorb_ipvs_sysctl{name="expire_nodest_conn"} 1');
    expect(text).toContain('gorb_ipvs_sysctl{name="conn_reuse_mode"} 1');
  });

  test("the OpenAPI document shows both routes with the drain body and view", async () => {
    const { call } = await setup();
    const doc = (await call("GET", "/openapi.json")).body as { paths: Record<string, Record<string, unknown>>; components: { schemas: Record<string, unknown> } };
    const route = doc.paths["/service/{service}/{backend}/drain"];
    expect(route).toBeDefined();
    expect(Object.keys(route ?? {}).sort()).toEqual(["delete", "post"]);
    expect(JSON.stringify(route?.post)).toContain("timeout");
    expect(doc.components.schemas.DrainBody).toBeDefined();
    expect(JSON.stringify(doc.components.schemas.BackendBody)).toContain("maintenance");
  });
});
