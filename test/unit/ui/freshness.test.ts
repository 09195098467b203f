/**
 * A read answered after an event is older than the event (src/ui/freshness.ts, Store.setAll's `stale`): a full
 * read or a service's read started before `service.deleted` and answered after it does not put the service back
 * (the browser suite saw a deleted service's card come back, CI 2026-12-06); a full read started before a weight
 * event keeps the event's weight but still brings the counters, which only reads give.
 */
import { describe, expect, test } from "bun:test";
import { Freshness } from "../../../src/ui/freshness.ts";
import { type BackendView, type ServiceView, Store } from "../../../src/ui/store.ts";

const stats = (conns: number) => ({ conns, cps: conns, in_pps: 0, out_pps: 0, in_bps: 0, out_bps: 0 });

function backend(id: string, weight: number, conns: number): BackendView {
  return {
    id,
    options: { host: "10.1.0.1", port: 80, weight, method: "nat" },
    metrics: { state: "up", health: 1, message: "", uptime: 0 },
    effective_weight: weight,
    stats: stats(conns),
    active_conns: conns,
    inactive_conns: 0,
  };
}

function service(id: string, conns: number, backends: BackendView[] = []): ServiceView {
  return {
    id,
    options: { host: "10.0.0.1", port: 80, protocol: "tcp", method: "wrr" },
    health: 1,
    backends: backends.map((b) => b.id),
    stats: stats(conns),
    backend_details: backends,
  };
}

describe("Freshness", () => {
  test("a key with an event after the read began is newer; one before it, or another key, is not", () => {
    const f = new Freshness();
    f.touch("old");
    const mark = f.begin();
    f.touch("web");
    expect([f.newer("web", mark), f.newer("old", mark), f.newer("db", mark)]).toEqual([true, false, false]);
    // A read begun after the event is not older than it.
    const later = f.begin();
    expect(f.newer("web", later)).toBe(false);
    f.end(mark);
    f.end(later);
  });

  test("what no read in flight can ask about is forgotten; what an older read in flight can is kept", () => {
    const f = new Freshness();
    const first = f.begin();
    f.touch("web");
    const second = f.begin();
    f.touch("db");
    f.end(second);
    // The first read is still in flight: both events are after it.
    expect([f.newer("web", first), f.newer("db", first), f.size]).toEqual([true, true, 2]);
    f.end(first);
    expect(f.size).toBe(0);
  });
});

describe("a full read answered after events", () => {
  test("a service deleted after the read began stays away", () => {
    const store = new Store();
    store.setAll([service("web", 0), service("שירות", 0)]);
    const events = new Freshness();
    const mark = events.begin();
    const answer = [service("web", 1), service("שירות", 1)]; // read before the delete
    events.touch("שירות");
    store.removeService("שירות");
    store.setAll(answer, 1, (id) => events.newer(id, mark));
    events.end(mark);
    expect(store.services.map((s) => s.id)).toEqual(["web"]);
  });

  test("a service created after the read began, which the read does not have, stays", () => {
    const store = new Store();
    const events = new Freshness();
    const mark = events.begin();
    events.touch("api");
    store.putService("api", { ...service("api", 0) });
    store.setAll([service("web", 0)], 1, (id) => events.newer(id, mark));
    expect(store.services.map((s) => s.id)).toEqual(["api", "web"]);
  });

  test("a weight event after the read began keeps its weight; the counters are the read's", () => {
    const store = new Store();
    store.setAll([service("web", 5, [backend("b1", 100, 5)])], 0);
    const events = new Freshness();
    const mark = events.begin();
    events.touch("web");
    store.patchBackend("web", "b1", { weight: 0, configured: 100 }, 1);
    store.setAll([service("web", 9, [backend("b1", 100, 9)])], 2, (id) => events.newer(id, mark));
    const web = store.service("web");
    expect([web?.stats?.conns, web?.backend_details[0]?.effective_weight, web?.backend_details[0]?.active_conns]).toEqual([9, 0, 9]);
    // The timeline did not draw the read's old weight.
    expect(store.timelines.get("web/b1")?.lines.weight).toEqual([100, 0, 0]);
  });

  test("a service the page does not have yet, with an event after the read began, is put in as read", () => {
    // The page's first read, while a backend of web ramps up (a backend.weight event a second): web was left out
    // until a read with no event during it, as long as the ramp or a flapping check lasted.
    const store = new Store();
    const events = new Freshness();
    const deletions = new Freshness();
    const mark = events.begin();
    const gone = deletions.begin();
    events.touch("web");
    events.touch(Store.key("web", "b1"));
    store.patchBackend("web", "b1", { weight: 20, configured: 100 }, 1);
    store.setAll([service("web", 3, [backend("b1", 100, 3)])], 1, (id) => events.newer(id, mark), (id) => deletions.newer(id, gone));
    expect(store.services.map((s) => [s.id, s.stats?.conns])).toEqual([["web", 3]]);
  });

  test("a service deleted after the read began, which the page no longer has, stays away though it had events", () => {
    const store = new Store();
    store.setAll([service("web", 0)]);
    const events = new Freshness();
    const deletions = new Freshness();
    const mark = events.begin();
    const gone = deletions.begin();
    events.touch("web");
    deletions.touch("web");
    store.removeService("web");
    store.setAll([service("web", 1)], 1, (id) => events.newer(id, mark), (id) => deletions.newer(id, gone));
    expect(store.services).toEqual([]);
  });

  test("without events since the read began, the read replaces everything", () => {
    const store = new Store();
    store.setAll([service("web", 0), service("db", 0)]);
    const events = new Freshness();
    const mark = events.begin();
    store.setAll([service("web", 3)], 1, (id) => events.newer(id, mark));
    expect(store.services.map((s) => [s.id, s.stats?.conns])).toEqual([["web", 3]]);
  });
});

describe("a backend's read answered after an event about it", () => {
  test("keeps the effective weight and state the event set; the rest (counters, options) is the read's", () => {
    const store = new Store();
    store.setAll([service("web", 0, [backend("b1", 100, 0)])], 0);
    const events = new Freshness();
    const mark = events.begin();
    events.touch(Store.key("web", "b1"));
    store.patchBackend("web", "b1", { weight: 0, configured: 0, state: "down", message: "connection refused" }, 1);
    const read = { ...backend("b1", 100, 4), options: { host: "10.1.0.1", port: 80, weight: 100, method: "nat", maintenance: false } };
    // A backend.weight event came too (it carries the configured weight): that stays as well.
    store.putBackend("web", read, 2, { olderThanEvents: events.newer(Store.key("web", "b1"), mark), olderThanWeight: true });
    const b1 = store.service("web")?.backend_details[0];
    expect([b1?.effective_weight, b1?.options.weight, b1?.metrics.state, b1?.metrics.message, b1?.active_conns, b1?.options.maintenance]).toEqual([0, 0, "down", "connection refused", 4, false]);
    expect(store.timelines.get("web/b1")?.lines.weight).toEqual([100, 0, 0]);
  });

  test("a backend the page does not have yet is put in as read", () => {
    const store = new Store();
    store.setAll([service("web", 0)], 0);
    store.putBackend("web", backend("b2", 50, 0), 1, { olderThanEvents: true });
    expect(store.service("web")?.backend_details.map((b) => [b.id, b.effective_weight])).toEqual([["b2", 50]]);
  });

  test("a configured weight changed elsewhere while a health event came during the read is the read's, not the page's older one", () => {
    // A backend held at 0 (down): its configured weight changed elsewhere makes no backend.weight event, only
    // backend.changed, whose read may be answered after a health event about it.
    const store = new Store();
    store.setAll([service("web", 0, [{ ...backend("b1", 100, 0), effective_weight: 0 }])], 0);
    const events = new Freshness();
    const mark = events.begin();
    events.touch(Store.key("web", "b1"));
    store.patchBackend("web", "b1", { state: "down", message: "timeout" }, 1);
    store.putBackend("web", { ...backend("b1", 50, 0), effective_weight: 0 }, 2, { olderThanEvents: events.newer(Store.key("web", "b1"), mark) });
    expect(store.service("web")?.backend_details[0]?.options.weight).toBe(50);
  });

  test("a read older than this tab's Weight 0, answered after its weight event, neither shows the old weight nor takes Restore's offer", () => {
    const store = new Store();
    store.setAll([service("web", 0, [backend("b1", 100, 0)])], 0);
    const events = new Freshness();
    const weights = new Freshness();
    const mark = events.begin();
    const weightsMark = weights.begin();
    // Weight 0 from this tab: its event, then its answer.
    events.touch(Store.key("web", "b1"));
    weights.touch(Store.key("web", "b1"));
    store.patchBackend("web", "b1", { weight: 0, configured: 0 }, 1);
    store.weightZeroed("web", "b1", 100);
    store.putBackend("web", backend("b1", 100, 0), 2, { olderThanEvents: events.newer(Store.key("web", "b1"), mark), olderThanWeight: weights.newer(Store.key("web", "b1"), weightsMark) });
    expect([store.service("web")?.backend_details[0]?.options.weight, store.restoreOffer("web", "b1")]).toEqual([0, "100"]);
  });
});
