/**
 * `gorb status --cluster` shows the services a node could not apply (GET /cluster's `failed` in a node's record):
 * an operator reading it must not take the node for one that serves the latest change. While etcd does not answer,
 * it shows the node's store DEGRADED and why the nodes are not known.
 */
import { afterEach, expect, test } from "bun:test";
import { runGorb } from "./_harness.ts";

let server: ReturnType<typeof Bun.serve> | null = null;
afterEach(() => {
  server?.stop(true);
  server = null;
});

function fleet(answer: unknown): string {
  server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => Response.json(answer) });
  return `http://127.0.0.1:${server.port}`;
}

const node = { address: "x:4672", version: "1", startedAt: "2024-01-01T00:00:00Z", appliedRevision: 9, changeRevision: 9, store: "ok", backends: {} };
const store = { state: "ok", appliedRevision: 9, changeRevision: 9, lastError: null, relists: 0, failed: [] };

test("a node's failed services are listed with the revision they failed since; none, no such section", async () => {
  const url = fleet({
    node: "a",
    store,
    revision: 9,
    nodes: [
      { ...node, node: "a", converged: true },
      { ...node, node: "b", converged: false, failed: [{ service: "web", revision: 7 }] },
    ],
    health_splits: [],
  });
  const run = await runGorb(["status", "--cluster"], { GORB_SERVER: url });
  expect(run.code).toBe(0);
  const section = run.stdout.slice(run.stdout.indexOf("services a node could not apply"));
  expect(section.split("\n").map((l) => l.trim().split(/\s+/).join(" "))).toEqual([
    "services a node could not apply (its kernel refused them; tried again with the next change and each relist):",
    "NODE SERVICE SINCE REVISION",
    "b web 7",
    "",
  ]);

  server?.stop(true);
  const healthy = await runGorb(["status", "--cluster"], {
    GORB_SERVER: fleet({ node: "a", store, revision: 9, nodes: [{ ...node, node: "a", converged: true }], health_splits: [] }),
  });
  expect(healthy.stdout).not.toContain("could not apply");
});

test("the backends being drained are listed with each node's connections left; none, no such section", async () => {
  const deadline = "2026-12-05T20:00:00.000Z";
  const url = fleet({
    node: "a",
    store,
    revision: 9,
    nodes: [
      { ...node, node: "a", converged: true, drains: { "web/b1": { deadline, active: 0, inactive: 0 } } },
      { ...node, node: "b", converged: true, drains: { "web/b1": { deadline, active: 3, inactive: 1 } } },
      { ...node, node: "c", converged: true },
    ],
    health_splits: [],
  });
  const run = await runGorb(["status", "--cluster"], { GORB_SERVER: url });
  expect(run.code).toBe(0);
  const section = run.stdout.slice(run.stdout.indexOf("backends being drained"));
  // Node c says nothing of the drain (not seen yet, or an older gorb): it has no row, and the drain waits for it.
  expect(section.split("\n").map((l) => l.trim().split(/\s+/).join(" "))).toEqual([
    "backends being drained, by node (the drain ends once every node has none left, or at its deadline):",
    "BACKEND NODE ACTIVE INACTIVE DEADLINE",
    `web/b1 a 0 0 ${deadline}`,
    `web/b1 b 3 1 ${deadline}`,
    "",
  ]);
  server?.stop(true);
  const none = await runGorb(["status", "--cluster"], { GORB_SERVER: fleet({ node: "a", store, revision: 9, nodes: [{ ...node, node: "a", converged: true }], health_splits: [] }) });
  expect(none.stdout).not.toContain("being drained");
});

test("while etcd does not answer, the node's store is shown DEGRADED with why, and why the nodes are not known", async () => {
  const url = fleet({
    node: "a",
    store: { ...store, state: "degraded", lastError: "cannot reach etcd" },
    revision: 9,
    nodes: [],
    nodes_error: "cannot read the nodes' records from etcd: cannot reach etcd",
    health_splits: [],
  });
  const run = await runGorb(["status", "--cluster"], { GORB_SERVER: url });
  expect(run.code).toBe(0);
  expect(run.stdout).toBe(
    "asked node a: store DEGRADED: cannot reach etcd, latest change of the services at revision 9\n\n" +
      "the nodes are not known: cannot read the nodes' records from etcd: cannot reach etcd\n",
  );
});
