/**
 * Failover (issue 12 part B), pure parts: the quorum rule with hysteresis, what the quorum counts, the sorry
 * server's place in a complete plan, the hook path rule and the slow-start ramp as a function of time.
 */
import { describe, expect, test } from "bun:test";
import { DesiredState, evaluateQuorum, type BackendRecord, type ServiceRecord } from "../../../src/core/desired-state.ts";
import { SORRY_ID, hookProblem, nextQuorumState, quorumCounts, quorumRule, sorryDestination, type QuorumCounts } from "../../../src/core/failover.ts";
import { startingHealth, type BackendHealth } from "../../../src/core/health.ts";

/** The health of a backend that has not been checked yet. */
const UNKNOWN_HEALTH = startingHealth({ type: "tcp" });
import { fieldsOf } from "../../../src/core/fields.ts";
import { webService } from "./_records.ts";
import { normalizeBackend, normalizeService } from "../../../src/core/normalize.ts";
import { planOperations, type ObservedTable } from "../../../src/core/reconcile.ts";
import { destinationKeyId, serviceKeyId } from "../../../src/core/keys.ts";
import type { DestinationConfig, ServiceConfig } from "../../../src/ipvs/types.ts";

/** The kernel as observed: one service with `dests`. */
function observedTable(table: readonly { service: ServiceConfig; destinations: readonly DestinationConfig[] }[]): ObservedTable {
  return new Map(table.map((t) => [serviceKeyId(t.service.key), { config: t.service, dests: new Map(t.destinations.map((d) => [destinationKeyId(d), d])) }]));
}
import { SlowStart, TICK_MS } from "../../../src/core/slow-start.ts";
import { initialWeightState } from "../../../src/health/weight.ts";

const c = (healthy: number, pending = 0): QuorumCounts => ({ healthy, pending });

describe("quorum with hysteresis", () => {
  // [state before, counts, quorum, hysteresis, state after]
  const cases: [boolean, QuorumCounts, number, number, boolean][] = [
    // quorum 3, hysteresis 1: down below 2, up again at 4
    [true, c(3), 3, 1, true],
    [true, c(2), 3, 1, true], // 2 >= 3 - 1: stays up
    [true, c(1), 3, 1, false], // 1 < 2: down
    [false, c(2), 3, 1, false],
    [false, c(3), 3, 1, false], // back at quorum is not enough
    [false, c(4), 3, 1, true], // quorum + hysteresis: up
    // pending (unchecked) backends keep a service up, never bring it up
    [true, c(1, 1), 3, 1, true],
    [false, c(3, 5), 3, 1, false],
    // quorum 2, no hysteresis
    [true, c(1), 2, 0, false],
    [false, c(2), 2, 0, true],
  ];
  test.each(cases)("up=%p %o quorum %d hysteresis %d -> up=%p", (up, counts, quorum, hysteresis, after) => {
    expect(nextQuorumState(up, counts, { quorum, hysteresis })).toBe(after);
  });

  test("no quorum, no sorry server and no hook: no state; a sorry server or a hook alone means quorum 1", () => {
    const none = { quorum: 0, hysteresis: 0, sorryServer: null, quorumUp: "", quorumDown: "" };
    expect(nextQuorumState(false, c(0), null)).toBe(true);
    expect(quorumRule(none)).toBeNull();
    expect(quorumRule({ ...none, sorryServer: { host: "10.9.0.1", port: 80, method: "nat" } })).toEqual({ quorum: 1, hysteresis: 0 });
    expect(quorumRule({ ...none, quorumDown: "/etc/gorb/hooks/page" })).toEqual({ quorum: 1, hysteresis: 0 });
    expect(quorumRule({ ...none, quorumUp: "/etc/gorb/hooks/page" })).toEqual({ quorum: 1, hysteresis: 0 });
    expect(quorumRule({ ...none, quorum: 3, hysteresis: 1 })).toEqual({ quorum: 3, hysteresis: 1 });
  });

  test("the count: up (or pulse none) with configured weight > 0 is healthy; unchecked is pending", () => {
    expect(
      quorumCounts([
        { state: "up", pulseNone: false, configuredWeight: 100 },
        { state: "up", pulseNone: false, configuredWeight: 0 }, // drained by the operator: not counted
        { state: "unknown", pulseNone: true, configuredWeight: 1 },
        { state: "unknown", pulseNone: false, configuredWeight: 5 },
        { state: "down", pulseNone: false, configuredWeight: 100 },
      ]),
    ).toEqual({ healthy: 2, pending: 1 });
  });

  test("hook paths: only under the hook directory, no way out with ..", () => {
    expect(hookProblem("", "/etc/gorb/hooks")).toBeNull();
    expect(hookProblem("/etc/gorb/hooks/page.sh", "/etc/gorb/hooks")).toBeNull();
    expect(hookProblem("/etc/gorb/hooks/../../../bin/sh", "/etc/gorb/hooks")).toStartWith("must be a program under the hook directory");
    expect(hookProblem("/etc/gorb/hooksx/a", "/etc/gorb/hooks")).toStartWith("must be a program under the hook directory");
    expect(hookProblem("page.sh", "/etc/gorb/hooks")).toStartWith("must be an absolute path");
  });
});

function up(): BackendHealth {
  return { ...UNKNOWN_HEALTH, state: "up", health: 1, samples: 1, samplesOk: 1, consecutiveOk: 1 };
}

function record(body: Record<string, unknown>, backends: [string, string, BackendHealth][]): ServiceRecord {
  const { desired, service } = webService(body);
  for (const [id, host, health] of backends) {
    const bspec = normalizeBackend({ host, pulse: { type: "http" } }, service.spec);
    const b: BackendRecord = { id, source: "api", watchId: `web/${id}#1`, fields: fieldsOf({}), spec: bspec, address: { address: host, family: "inet" }, health, weight: initialWeightState(bspec.weight), drain: null };
    desired.addBackend(service, b);
  }
  return service;
}

describe("the sorry server in the reconciler's plan", () => {
  const sorry = { host: "10.9.0.1", port: 8080, method: "nat" };

  test("entering sorry mode: the sorry server is added first, then the backends drain to 0", () => {
    const service = record({ sorry_server: sorry }, [["b1", "10.1.0.1", { ...UNKNOWN_HEALTH, state: "down" }]]);
    const desired = new DesiredState();
    desired.addService(service);
    expect(evaluateQuorum(service)).toMatchObject({ up: false, sorry: true, healthy: 0, quorum: 1 });
    const observed = observedTable([
      { service: service.config, destinations: [{ family: "inet", address: "10.1.0.1", port: 80, forward: "nat", weight: 100, upperThreshold: 0, lowerThreshold: 0, tunnel: null }] },
    ]);
    const plan = planOperations([desired.wanted(service)], observed);
    expect(plan.map((o) => [o.op.op, o.backend, "destination" in o.op && "weight" in o.op.destination ? o.op.destination.weight : null])).toEqual([
      ["add-destination", SORRY_ID, 1],
      ["update-destination", "b1", 0],
    ]);
  });

  test("leaving sorry mode: the backends get their weight back first, then the sorry server is deleted", () => {
    const service = record({ sorry_server: sorry }, [["b1", "10.1.0.1", up()]]);
    service.quorumUp = false;
    const desired = new DesiredState();
    desired.addService(service);
    expect(evaluateQuorum(service)).toMatchObject({ up: true, sorry: false, healthy: 1 });
    const observed = observedTable([
      {
        service: service.config,
        destinations: [
          { family: "inet", address: "10.9.0.1", port: 8080, forward: "nat", weight: 1, upperThreshold: 0, lowerThreshold: 0, tunnel: null },
          { family: "inet", address: "10.1.0.1", port: 80, forward: "nat", weight: 0, upperThreshold: 0, lowerThreshold: 0, tunnel: null },
        ],
      },
    ]);
    const plan = planOperations([desired.wanted(service)], observed);
    expect(plan.map((o) => [o.op.op, o.backend, o.reason])).toEqual([
      ["update-destination", "b1", "10.1.0.1:80: weight 0 in IPVS, want 100"],
      ["delete-destination", SORRY_ID, "10.9.0.1:8080 is not wanted"],
    ]);
  });

  test("a sorry server's method tunnel is an IPIP tunnel, as ipip is (and as a backend's tunnel is by default)", () => {
    const tunnels = ["tunnel", "ipip"].map((method) => sorryDestination(normalizeService(fieldsOf({ host: "10.0.0.1", port: 80, sorry_server: { host: "10.9.0.1", method } })), "inet"));
    expect(tunnels[0]).toEqual(tunnels[1] ?? null);
    expect(tunnels[0]).toMatchObject({ forward: "tunnel", port: 80, tunnel: { type: "ipip", port: 0, checksum: "nocsum" } });
  });

  test("in sorry mode a matching kernel is not written (a reconcile keeps it)", () => {
    const service = record({ sorry_server: { ...sorry, method: "ipip" } }, []);
    const desired = new DesiredState();
    desired.addService(service);
    evaluateQuorum(service);
    const observed = observedTable([
      {
        service: service.config,
        destinations: [{ family: "inet", address: "10.9.0.1", port: 8080, forward: "tunnel", weight: 1, upperThreshold: 0, lowerThreshold: 0, tunnel: { type: "ipip", port: 0, checksum: "nocsum" } }],
      },
    ]);
    expect(planOperations([desired.wanted(service)], observed)).toEqual([]);
  });
});

describe("slow start", () => {
  test("the cap grows linearly with time to the configured weight, then the ramp ends", () => {
    const service = record({}, []);
    const spec = normalizeBackend({ host: "10.1.0.1", weight: 100, slow_start: "10s" }, service.spec);
    const backend: BackendRecord = { id: "b1", source: "api", watchId: "w", fields: fieldsOf({}), spec, address: { address: "10.1.0.1", family: "inet" }, health: up(), weight: initialWeightState(100), drain: null };
    service.backends.set("b1", backend);
    const ramps = new SlowStart();
    expect(ramps.start(service, backend, 5_000)).toBe(true);
    const caps: (number | null)[] = [backend.ramp?.cap ?? null];
    for (let t = 5_000 + TICK_MS; t <= 16_000; t += TICK_MS) {
      ramps.tick(t, () => true);
      caps.push(backend.ramp?.cap ?? null);
    }
    expect(caps).toEqual([1, 10, 20, 30, 40, 50, 60, 70, 80, 90, null, null]);
    expect(ramps.size).toBe(0);
  });

  test("a tick reports only the backends whose cap changed; a deleted backend is dropped; off without slow_start", () => {
    const service = record({}, []);
    const mk = (id: string, weight: number, slow: string | undefined): BackendRecord => {
      const spec = normalizeBackend({ host: "10.1.0.1", weight, ...(slow === undefined ? {} : { slow_start: slow }) }, service.spec);
      return { id, source: "api", watchId: id, fields: fieldsOf({}), spec, address: { address: "10.1.0.1", family: "inet" }, health: up(), weight: initialWeightState(weight), drain: null };
    };
    const ramps = new SlowStart();
    const slow = mk("slow", 3, "1m");
    const gone = mk("gone", 100, "1m");
    expect(ramps.start(service, mk("off", 100, undefined), 0)).toBe(false);
    expect(ramps.start(service, mk("zero", 0, "1m"), 0)).toBe(false);
    ramps.start(service, slow, 0);
    ramps.start(service, gone, 0);
    const touched = ramps.tick(1_000, (_s, b) => b !== gone);
    expect([...(touched.get(service)?.keys() ?? [])]).toEqual([]); // 3 × 1/60 floors to the same cap 1
    expect(ramps.size).toBe(1);
    expect(ramps.tick(20_000, () => true).size).toBe(0); // 3 × 20/60 = 1: no write
    expect([...(ramps.tick(40_000, () => true).get(service) ?? [])]).toEqual([["slow", { startMs: 0, cap: 1 }]]); // 3 × 40/60 = 2
    expect(slow.ramp?.cap).toBe(2);
  });

  test("slow_start is checked with the pulse duration grammar; a 400 names the field", () => {
    const service = normalizeService({ port: 80 });
    expect(normalizeBackend({ host: "10.1.0.1", slow_start: "30s" }, service).slowStartMs).toBe(30_000);
    expect(normalizeBackend({ host: "10.1.0.1" }, service).slowStartMs).toBe(0);
    expect(() => normalizeBackend({ host: "10.1.0.1", slow_start: "30" }, service)).toThrow("slow_start: invalid interval");
    expect(() => normalizeBackend({ host: "10.1.0.1", slow_start: 30 }, service)).toThrow("slow_start: must be a string");
  });
});
