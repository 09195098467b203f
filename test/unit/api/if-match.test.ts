/**
 * Two clients on the same object: GET answers the ETag of a service's or backend's options, and PATCH or DELETE
 * with If-Match goes through only while the object still has it (412 PRECONDITION_FAILED otherwise, nothing
 * changed), so one client cannot overwrite another's newer change unseen. Without If-Match nothing changes: the
 * last write wins, as before.
 */
import { describe, expect, test } from "bun:test";
import { createApp } from "../../../src/api/app.ts";
import { makeGorb } from "../core/fakes.ts";

async function setup() {
  const stack = makeGorb({ drainPollMs: 60_000 });
  const app = createApp({ gorb: stack.gorb, logger: stack.logger, events: stack.gorb.events });
  await stack.gorb.createService("web", { host: "10.0.0.1", port: 80 });
  await stack.gorb.createBackend("web", "b1", { host: "10.1.0.1", pulse: { type: "http", args: { path: "/a" } } });
  const call = async (method: string, path: string, options: { body?: unknown; ifMatch?: string } = {}) => {
    const init: RequestInit = { method, headers: options.ifMatch === undefined ? {} : { "If-Match": options.ifMatch } };
    if (options.body !== undefined) init.body = JSON.stringify(options.body);
    const reply = await app.handle(new Request(`http://gorb.test${path}`, init));
    const text = await reply.text();
    return { status: reply.status, etag: reply.headers.get("etag"), body: text === "" ? null : (JSON.parse(text) as Record<string, unknown>) };
  };
  const etag = async (path: string) => {
    const tag = (await call("GET", path)).etag;
    if (tag === null) throw new Error(`GET ${path} answered no ETag`);
    return tag;
  };
  return { ...stack, call, etag };
}

function destWeights(driver: ReturnType<typeof makeGorb>["driver"]): Record<string, number> {
  return Object.fromEntries(driver.peek().flatMap((s) => s.destinations.map((d) => [d.address, d.weight])));
}

describe("If-Match on PATCH and DELETE", () => {
  test("GET answers a strong ETag of the options: a change of them changes it, a drain (not an option) does not", async () => {
    const { call, etag } = await setup();
    const service = await etag("/service/web");
    const backend = await etag("/service/web/b1");
    expect(backend).toMatch(/^"[^"]+"$/);
    expect(await etag("/service/web/b1")).toBe(backend);
    expect((await call("POST", "/service/web/b1/drain", { body: { then: "keep" } })).status).toBe(200);
    expect(await etag("/service/web/b1")).toBe(backend);
    expect((await call("PATCH", "/service/web/b1", { body: { weight: 5 } })).status).toBe(200);
    expect(await etag("/service/web/b1")).not.toBe(backend);
    expect(await etag("/service/web")).toBe(service);
    expect((await call("PATCH", "/service/web", { body: { method: "rr" } })).status).toBe(200);
    expect(await etag("/service/web")).not.toBe(service);
  });

  test("a dialog's stale PATCH (another client changed the backend since its read) is a 412 that changes nothing", async () => {
    const { call, etag, driver } = await setup();
    const seenByA = await etag("/service/web/b1");
    const seenByB = await etag("/service/web/b1");
    // B changes the check's path; A, from its older read, changes the interval and sends the whole pulse (as the web UI does).
    expect((await call("PATCH", "/service/web/b1", { ifMatch: seenByB, body: { pulse: { type: "http", args: { path: "/b" } } } })).status).toBe(200);
    const stale = await call("PATCH", "/service/web/b1", { ifMatch: seenByA, body: { weight: 3, pulse: { type: "http", interval: "10s", args: { path: "/a" } } } });
    expect(stale.status).toBe(412);
    const now = await etag("/service/web/b1");
    expect(stale.body).toEqual({ code: "PRECONDITION_FAILED", etag: now, error: expect.stringContaining('backend "b1" of service "web" changed since it was read') });
    expect((await call("GET", "/service/web/b1")).body).toMatchObject({ options: { weight: 100, pulse: { type: "http", args: { path: "/b" } } } });
    expect(destWeights(driver)).toEqual({ "10.1.0.1": 100 });
    // Read again, the same change goes through.
    expect((await call("PATCH", "/service/web/b1", { ifMatch: now, body: { weight: 3 } })).status).toBe(200);
    expect(destWeights(driver)).toEqual({ "10.1.0.1": 3 });
  });

  test("two PATCHes sent at once with the same ETag: one goes through, the other is a 412", async () => {
    const { call, etag, driver } = await setup();
    const seen = await etag("/service/web/b1");
    const answers = await Promise.all([
      call("PATCH", "/service/web/b1", { ifMatch: seen, body: { weight: 0 } }),
      call("PATCH", "/service/web/b1", { ifMatch: seen, body: { weight: 50 } }),
    ]);
    expect(answers.map((a) => a.status).sort()).toEqual([200, 412]);
    const winner = answers[0]?.status === 200 ? 0 : 50;
    expect(destWeights(driver)).toEqual({ "10.1.0.1": winner });
  });

  test("DELETE with a stale ETag is a 412 and deletes nothing; with the current one it deletes", async () => {
    const { call, etag } = await setup();
    const service = await etag("/service/web");
    const backend = await etag("/service/web/b1");
    await call("PATCH", "/service/web/b1", { body: { weight: 7 } });
    await call("PATCH", "/service/web", { body: { method: "rr" } });
    expect((await call("DELETE", "/service/web/b1", { ifMatch: backend })).status).toBe(412);
    expect((await call("DELETE", "/service/web", { ifMatch: service })).status).toBe(412);
    expect((await call("GET", "/service/web/b1")).status).toBe(200);
    expect((await call("DELETE", "/service/web/b1", { ifMatch: await etag("/service/web/b1") })).status).toBe(200);
    expect((await call("DELETE", "/service/web", { ifMatch: await etag("/service/web") })).status).toBe(200);
    expect((await call("GET", "/service/web")).status).toBe(404);
  });

  test("* asks only that the object exists; a list matches any of its tags; a weak tag never matches", async () => {
    const { call, etag } = await setup();
    expect((await call("PATCH", "/service/web/b1", { ifMatch: "*", body: { weight: 9 } })).status).toBe(200);
    expect((await call("PATCH", "/service/web/nope", { ifMatch: "*", body: { weight: 9 } })).status).toBe(404);
    const now = await etag("/service/web/b1");
    expect((await call("PATCH", "/service/web/b1", { ifMatch: `W/${now}`, body: { weight: 8 } })).status).toBe(412);
    expect((await call("PATCH", "/service/web/b1", { ifMatch: `"old", ${now}`, body: { weight: 8 } })).status).toBe(200);
  });

  test("an If-Match that is no list of entity tags is a 400 on if-match and changes nothing", async () => {
    const { call, driver } = await setup();
    for (const header of ["bogus", '"a",', '"a" "b"', ""]) {
      const reply = await call("PATCH", "/service/web/b1", { ifMatch: header, body: { weight: 1 } });
      expect(reply.status).toBe(400);
      expect(reply.body).toMatchObject({ code: "VALIDATION", field: "if-match" });
    }
    expect(destWeights(driver)).toEqual({ "10.1.0.1": 100 });
  });

  test("a 412 repeats at most the start of a long If-Match, with its length", async () => {
    const { call } = await setup();
    const header = Array.from({ length: 500 }, (_, i) => `"tag${i}"`).join(", ");
    const reply = await call("PATCH", "/service/web/b1", { ifMatch: header, body: { weight: 1 } });
    expect(reply.status).toBe(412);
    expect(String(reply.body?.error)).toContain(`If-Match: ${header.slice(0, 120)}... (${header.length} characters)`);
    expect(String(reply.body?.error).length).toBeLessThan(400);
  });
});
