/** The pure part of reconciliation: which writes make the kernel match, and the weight a restored backend starts at. */
import { describe, expect, test } from "bun:test";
import {
  observedTable,
  OperationPlan,
  planOperations,
  restoredWeight,
  unknownDestinations,
  type Operation,
  type WantedService,
} from "../../../src/core/reconcile.ts";
import { destinationKeyId } from "../../../src/core/keys.ts";
import {
  NO_FLAGS,
  ZERO_STATS,
  type Destination,
  type DestinationConfig,
  type ServiceConfig,
  type ServiceWithDestinations,
} from "../../../src/ipvs/types.ts";

const CONFIG: ServiceConfig = {
  key: { family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 },
  scheduler: "wrr",
  flags: NO_FLAGS,
  timeout: 0,
  netmask: 32,
  pe: null,
};
const TUNNEL: Destination = {
  family: "inet",
  address: "10.1.0.1",
  port: 80,
  forward: "tunnel",
  weight: 10,
  upperThreshold: 0,
  lowerThreshold: 0,
  tunnel: { type: "ipip", port: 0, checksum: "nocsum" },
  activeConns: 3,
  inactiveConns: 1,
  persistentConns: 0,
  stats: ZERO_STATS,
};

function table(service: ServiceConfig, dests: Destination[]): ServiceWithDestinations[] {
  return [{ service: { ...service, stats: ZERO_STATS }, destinations: dests }];
}

describe("planOperations: differences", () => {
  test("equal configs need nothing, whatever the counters (a plain tunnel without options equals ipip/0/nocsum; no pe equals \"\")", () => {
    const wanted: WantedService[] = [{ id: "web", config: CONFIG, backends: [{ id: "b1", dest: { ...TUNNEL, tunnel: null } }] }];
    expect(planOperations(wanted, observedTable(table({ ...CONFIG, pe: "" }, [TUNNEL])))).toEqual([]);
  });

  test("each difference is one write with its reason", () => {
    const wanted: WantedService[] = [{ id: "web", config: { ...CONFIG, flags: { ...NO_FLAGS, sched1: true } }, backends: [{ id: "b1", dest: { ...TUNNEL, weight: 20, tunnel: { type: "gue", port: 6080, checksum: "csum" } } }] }];
    expect(planOperations(wanted, observedTable(table(CONFIG, [TUNNEL]))).map((r) => r.reason)).toEqual([
      "tcp 10.0.0.1:80: flags none in IPVS, want sched1",
      "10.1.0.1:80: weight 10 in IPVS, want 20, tunnel ipip:0:nocsum in IPVS, want gue:6080:csum",
    ]);
  });
});

describe("restoredWeight", () => {
  test("the kernel's weight is kept (never above the configured one) until the first check", () => {
    expect(restoredWeight(100, "http", 0)).toEqual({ effective: 0, recovering: true });
    expect(restoredWeight(100, "http", 40)).toEqual({ effective: 40, recovering: true });
    expect(restoredWeight(100, "tcp", 100)).toEqual({ effective: 100, recovering: false });
    expect(restoredWeight(100, "tcp", 250)).toEqual({ effective: 100, recovering: false });
  });

  test("a destination the kernel lacks, or a 'none' pulse, gets the configured weight", () => {
    expect(restoredWeight(100, "http", null)).toEqual({ effective: 100, recovering: false });
    expect(restoredWeight(100, "none", 0)).toEqual({ effective: 100, recovering: false });
    expect(restoredWeight(0, "http", 30)).toEqual({ effective: 0, recovering: false });
  });
});

/** One row of the planner's table: desired + observed -> the operations, as "op target (reason)". */
interface Row {
  readonly name: string;
  readonly wanted: WantedService[];
  readonly observed: ServiceWithDestinations[];
  readonly ops: string[];
}

const KEY = CONFIG.key;
const B1: DestinationConfig = { family: "inet", address: "10.1.0.1", port: 80, forward: "nat", weight: 100, upperThreshold: 0, lowerThreshold: 0, tunnel: null };
const B2: DestinationConfig = { ...B1, address: "10.1.0.2" };
const FOREIGN_KEY = { family: "inet", protocol: "udp", address: "10.9.9.9", port: 53 } as const;

function dest(config: DestinationConfig): Destination {
  return { ...config, activeConns: 5, inactiveConns: 0, persistentConns: 0, stats: ZERO_STATS };
}

function line(op: Operation): string {
  const o = op.op;
  const target = "destination" in o ? `${o.destination.address}:${o.destination.port}` : "service";
  const weight = "destination" in o && "weight" in o.destination ? `=${o.destination.weight}` : "";
  return `${o.op} ${target}${weight} [${op.service}${op.backend === null ? "" : `/${op.backend}`}] (${op.reason})`;
}

const ROWS: Row[] = [
  {
    name: "a matching table needs nothing (counters and connections do not matter)",
    wanted: [{ id: "web", config: CONFIG, backends: [{ id: "b1", dest: B1 }] }],
    observed: table(CONFIG, [dest(B1)]),
    ops: [],
  },
  {
    name: "a health drain is one SET_DEST with the new weight, nothing else",
    wanted: [{ id: "web", config: CONFIG, backends: [{ id: "b1", dest: { ...B1, weight: 0 } }], complete: false }],
    observed: table(CONFIG, [dest(B1), dest(B2)]),
    ops: ["update-destination 10.1.0.1:80=0 [web/b1] (10.1.0.1:80: weight 100 in IPVS, want 0)"],
  },
  {
    name: "a partial plan (one backend) never looks at the others, even unknown ones",
    wanted: [{ id: "web", config: CONFIG, backends: [{ id: "b2", dest: B2 }], complete: false }],
    observed: table(CONFIG, [dest(B1)]),
    ops: ["add-destination 10.1.0.2:80=100 [web/b2] (10.1.0.2:80 is missing from IPVS)"],
  },
  {
    name: "a backend wanted absent is deleted; one already absent needs nothing",
    wanted: [
      {
        id: "web",
        config: CONFIG,
        backends: [
          { id: "b1", dest: null, key: B1 },
          { id: "b2", dest: null, key: B2 },
        ],
        complete: false,
      },
    ],
    observed: table(CONFIG, [dest(B1)]),
    ops: ["delete-destination 10.1.0.1:80 [web/b1] (10.1.0.1:80 is not wanted)"],
  },
  {
    name: "a service wanted absent is one delete (its destinations go with it), first in the plan",
    wanted: [
      { id: "new", config: { ...CONFIG, key: { ...KEY, port: 81 } }, backends: [] },
      { id: "web", config: null, key: KEY, backends: [] },
    ],
    observed: table(CONFIG, [dest(B1)]),
    ops: ["delete-service service [web] (tcp 10.0.0.1:80 is not wanted)", "add-service service [new] (tcp 10.0.0.1:81 is missing from IPVS)"],
  },
  {
    name: "a complete plan deletes destinations gorb does not know, except the ones it keeps",
    wanted: [{ id: "web", config: CONFIG, backends: [], keep: new Set([destinationKeyId(B2)]) }],
    observed: table(CONFIG, [dest(B1), dest(B2)]),
    ops: ["delete-destination 10.1.0.1:80 [web] (10.1.0.1:80 in tcp 10.0.0.1:80 is not one of gorb's backends)"],
  },
  {
    name: "services not listed (foreign ones) are never looked at",
    wanted: [{ id: "web", config: CONFIG, backends: [] }],
    observed: [...table(CONFIG, []), { service: { ...CONFIG, key: FOREIGN_KEY, scheduler: "rr", stats: ZERO_STATS }, destinations: [dest(B1)] }],
    ops: [],
  },
  {
    name: "rollback: the previous desired state against what the kernel has now undoes a half-done change",
    // A create of service "web" with b1 whose add-destination of b2 failed: the kernel has web + b1; the
    // previous desired state has no web at all.
    wanted: [{ id: "web", config: null, key: KEY, backends: [] }],
    observed: table(CONFIG, [dest(B1)]),
    ops: ["delete-service service [web] (tcp 10.0.0.1:80 is not wanted)"],
  },
  {
    name: "rollback of a PATCH: the old weight and thresholds are written back in place",
    wanted: [{ id: "web", config: CONFIG, backends: [{ id: "b1", dest: B1 }], complete: false }],
    observed: table(CONFIG, [dest({ ...B1, weight: 7, upperThreshold: 50 })]),
    ops: ["update-destination 10.1.0.1:80=100 [web/b1] (10.1.0.1:80: weight 7 in IPVS, want 100, upper threshold 50 in IPVS, want 0)"],
  },
];

describe("planOperations (desired + observed -> operations)", () => {
  for (const row of ROWS) {
    test(row.name, () => {
      expect(planOperations(row.wanted, observedTable(row.observed)).map(line)).toEqual(row.ops);
    });
  }

  test("OperationPlan, given the services one at a time, plans each row as planOperations does, deletes first", () => {
    for (const row of ROWS) {
      const plan = new OperationPlan();
      const observed = observedTable(row.observed);
      for (const svc of row.wanted) plan.add(svc, observed);
      expect({ row: row.name, ops: plan.operations().map(line) }).toEqual({ row: row.name, ops: row.ops });
    }
    // A service delete after another service's writes still comes first.
    const plan = new OperationPlan();
    const observed = observedTable(table(CONFIG, [dest(B1)]));
    plan.add({ id: "other", config: { ...CONFIG, key: FOREIGN_KEY }, backends: [{ id: "b2", dest: B2 }] }, observed);
    plan.add({ id: "web", config: null, key: KEY, backends: [] }, observed);
    expect(plan.operations().map((o) => `${o.op.op} ${o.service}`)).toEqual(["delete-service web", "add-service other", "add-destination other"]);
  });

  test("unknownDestinations lists what the kernel serves in gorb's services and gorb does not know", () => {
    const wanted: WantedService[] = [{ id: "web", config: CONFIG, backends: [{ id: "b1", dest: B1 }] }];
    expect(unknownDestinations(wanted, observedTable(table(CONFIG, [dest(B1), dest(B2)]))).map((u) => `${u.service} ${u.dest.address}`)).toEqual([
      "web 10.1.0.2",
    ]);
  });
});
