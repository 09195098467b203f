/**
 * What the page says about a service beyond its backends (src/ui/service-notes.ts: the card's `.why` lines and
 * whether it counts as degraded) and about a node that could not apply some services (src/ui/fleet.ts: the Fleet
 * panel), each from the API's real answers (GET /service?detail=true, GET /service/:service, GET /cluster), so
 * the UI's types cannot drift from the views they mirror.
 */
import { describe, expect, test } from "bun:test";
import { createApp } from "../../../src/api/app.ts";
import type { ClusterApi, ClusterMember } from "../../../src/api/cluster.ts";
import { type FleetView, convergedText, drainLines, failedLines, splitLines } from "../../../src/ui/fleet.ts";
import { isDegraded, serviceNotes } from "../../../src/ui/service-notes.ts";
import { type ServiceView, Store } from "../../../src/ui/store.ts";
import { makeGorb } from "../core/fakes.ts";

const KERNEL = "not in the kernel: IPVS does not have this service, so it serves nothing; each reconcile tries to add it";

async function getJson(app: ReturnType<typeof createApp>, path: string): Promise<unknown> {
  const reply = await app.handle(new Request(`http://127.0.0.1:4672${path}`));
  expect(reply.status).toBe(200);
  return reply.json();
}

describe("a service's card", () => {
  test("says when the kernel does not have the service, and counts it as degraded though no backend is down", async () => {
    const s = makeGorb();
    const app = createApp({ gorb: s.gorb, logger: s.logger });
    await s.gorb.createService("web", { host: "10.0.0.1", port: 80 });
    await s.gorb.createBackend("web", "b1", { host: "10.1.0.1" });
    await s.gorb.idle();
    const store = new Store();
    const read = async () => {
      store.setAll((await getJson(app, "/service?detail=true")) as ServiceView[]);
      return store.service("web") as ServiceView;
    };
    expect([serviceNotes(await read()), isDegraded(await read())]).toEqual([[], false]);

    // Lost, and the reconcile cannot put it back: the kernel refuses its add.
    await s.driver.flush();
    s.driver.failNext("add-service", "ENOMEM");
    await s.gorb.reconcile();
    expect([serviceNotes(await read()), isDegraded(await read())]).toEqual([[KERNEL], true]);
    // GET /service/:service (what the page reads after a service event) says it too.
    store.putService("web", (await getJson(app, "/service/web")) as Omit<ServiceView, "id" | "backend_details">);
    expect(serviceNotes(store.service("web") as ServiceView)).toEqual([KERNEL]);

    await s.gorb.reconcile();
    expect([serviceNotes(await read()), isDegraded(await read())]).toEqual([[], false]);
    await s.gorb.close();
  });

  test("the failover lines: the sorry server serving, or below quorum without one; a down backend is degraded", async () => {
    const s = makeGorb();
    const app = createApp({ gorb: s.gorb, logger: s.logger });
    await s.gorb.createService("shop", { host: "10.0.0.2", port: 80, sorry_server: { host: "10.9.0.1", port: 8080 } });
    await s.gorb.createBackend("shop", "a", { host: "10.2.0.1", pulse: { type: "tcp", interval: "1s" } });
    await s.gorb.createService("web", { host: "10.0.0.3", port: 80, quorum: 2 });
    await s.gorb.createBackend("web", "q1", { host: "10.3.0.1", pulse: { type: "tcp", interval: "1s" } });
    await s.gorb.createBackend("web", "q2", { host: "10.3.0.2", pulse: { type: "tcp", interval: "1s" } });
    s.health.report("shop", "a", "down");
    s.health.report("web", "q1", "up");
    s.health.report("web", "q2", "down");
    await s.gorb.idle();
    const views = (await getJson(app, "/service?detail=true")) as ServiceView[];
    expect(views.map((v) => [v.id, serviceNotes(v), isDegraded(v)])).toEqual([
      ["shop", ["sorry server 10.9.0.1:8080 serves in place of the backends (0 healthy)"], true],
      ["web", ["below quorum (1 healthy, quorum 2)"], true],
    ]);
    await s.gorb.close();
  });
});

describe("the Fleet panel", () => {
  const member = { address: "10.0.0.1:4672", version: "1", startedAt: "2026-01-01T00:00:00Z", appliedRevision: 9, changeRevision: 9, store: "ok", backends: {} };

  function fleet(members: readonly ClusterMember[]): ClusterApi {
    return {
      node: "lb1",
      committedRevision: () => 9,
      status: () => ({ state: "ok", appliedRevision: 9, changeRevision: 9, lastError: null, relists: 0, failed: [] }),
      waitApplied: () => Promise.resolve(true),
      members: () => Promise.resolve(members),
    };
  }

  test("a node that could not apply services is not converged, and each such service is listed with the revision it failed since", async () => {
    const s = makeGorb();
    const members: ClusterMember[] = [
      { ...member, node: "lb1" },
      { ...member, node: "lb2", failed: [{ service: "web", revision: 7 }] },
      { ...member, node: "lb3", failed: [{ service: "api", revision: 5 }, { service: "\u202Ebew", revision: 8 }] },
      { ...member, node: "lb4", appliedRevision: 8 },
    ];
    const app = createApp({ gorb: s.gorb, logger: s.logger, cluster: fleet(members) });
    const view = (await getJson(app, "/cluster")) as FleetView;
    expect(view.nodes.map((n) => [n.node, convergedText(n)])).toEqual([
      ["lb1", "yes"],
      ["lb2", "no: 1 service not applied"],
      ["lb3", "no: 2 services not applied"],
      ["lb4", "no"],
    ]);
    // An id is shown as the page shows ids in a sentence (isolatedId, src/contract/ids.ts): between FSI and PDI,
    // its bidirectional controls as marks.
    expect(failedLines(view)).toEqual([
      "lb2: \u2068web\u2069, not applied since revision 7",
      "lb3: \u2068api\u2069, not applied since revision 5",
      "lb3: \u2068⟨U+202E⟩bew\u2069, not applied since revision 8",
    ]);
    await s.gorb.close();
  });

  test("a backend being drained: one line with each node's connections left to it", async () => {
    const s = makeGorb();
    const deadline = "2026-12-05T20:00:00.000Z";
    const members: ClusterMember[] = [
      { ...member, node: "lb1", drains: { "web/b1": { deadline, active: 0, inactive: 0 }, "שירות/9": { deadline, active: 0, inactive: 0 } } },
      { ...member, node: "lb2", drains: { "web/b1": { deadline, active: 3, inactive: 1 }, "api/\u202Ex": { deadline, active: 1, inactive: 0 } } },
      { ...member, node: "lb3" },
    ];
    const app = createApp({ gorb: s.gorb, logger: s.logger, cluster: fleet(members) });
    const view = (await getJson(app, "/cluster")) as FleetView;
    // Each id isolated on its own: an RTL service id does not pass for the backend.
    expect(drainLines(view)).toEqual([
      `\u2068api\u2069/\u2068⟨U+202E⟩x\u2069: lb2 1 active, 0 inactive (until ${deadline})`,
      `\u2068web\u2069/\u2068b1\u2069: lb1 0 active, 0 inactive; lb2 3 active, 1 inactive (until ${deadline})`,
      `\u2068שירות\u2069/\u20689\u2069: lb1 0 active, 0 inactive (until ${deadline})`,
    ]);
    await s.gorb.close();
  });

  test("a backend whose health differs between nodes: one line with the nodes where it is up and those where it is down", async () => {
    const s = makeGorb();
    const members: ClusterMember[] = [
      { ...member, node: "lb1", backends: { "web/b1": "up", "שירות/9": "down", "api/\u202Ex": "up", "web/b2": "up" } },
      { ...member, node: "lb2", backends: { "web/b1": "down", "שירות/9": "up", "api/\u202Ex": "down", "web/b2": "up" } },
      { ...member, node: "lb3", backends: { "web/b1": "down" } },
    ];
    const app = createApp({ gorb: s.gorb, logger: s.logger, cluster: fleet(members) });
    const view = (await getJson(app, "/cluster")) as FleetView;
    // Each id isolated on its own, its bidirectional controls as marks: "שירות/9" is not drawn 9/שירות.
    expect(splitLines(view)).toEqual([
      "\u2068web\u2069/\u2068b1\u2069: up on lb1; down on lb2, lb3",
      "\u2068שירות\u2069/\u20689\u2069: up on lb2; down on lb1",
      "\u2068api\u2069/\u2068⟨U+202E⟩x\u2069: up on lb1; down on lb2",
    ]);
    await s.gorb.close();
  });

  test("no node with failed services or drains, no health that differs (or an older gorb without the fields): no such lines", async () => {
    const s = makeGorb();
    const app = createApp({ gorb: s.gorb, logger: s.logger, cluster: fleet([{ ...member, node: "lb1" }]) });
    const view = (await getJson(app, "/cluster")) as FleetView;
    expect([failedLines(view), drainLines(view), splitLines(view), view.nodes.map(convergedText)]).toEqual([[], [], [], ["yes"]]);
    await s.gorb.close();
  });
});
