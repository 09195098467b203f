/** The pure part of reconciliation: which writes make the kernel match, and the weight a restored backend starts at. */
import { describe, expect, test } from "bun:test";
import { planRepairs, restoredWeight, type WantedService } from "../../../src/core/reconcile.ts";
import { NO_FLAGS, ZERO_STATS, type Destination, type ServiceConfig, type ServiceWithDestinations } from "../../../src/ipvs/types.ts";

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

describe("planRepairs", () => {
  test("equal configs need nothing, whatever the counters (a plain tunnel without options equals ipip/0/nocsum; no pe equals \"\")", () => {
    const wanted: WantedService[] = [{ id: "web", config: CONFIG, backends: [{ id: "b1", dest: { ...TUNNEL, tunnel: null } }] }];
    expect(planRepairs(wanted, table({ ...CONFIG, pe: "" }, [TUNNEL]))).toEqual([]);
  });

  test("each difference is one write with its reason", () => {
    const wanted: WantedService[] = [{ id: "web", config: { ...CONFIG, flags: { ...NO_FLAGS, sched1: true } }, backends: [{ id: "b1", dest: { ...TUNNEL, weight: 20, tunnel: { type: "gue", port: 6080, checksum: "csum" } } }] }];
    expect(planRepairs(wanted, table(CONFIG, [TUNNEL])).map((r) => r.reason)).toEqual([
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
