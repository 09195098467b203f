/**
 * The kernel writes of a bulk change (an apply's 1,000 services) are planned one target at a time, with turns of the
 * event loop in between, and come out as planning them all at once does.
 */
import { describe, expect, test } from "bun:test";
import { DesiredState, type BackendRecord, type ServiceRecord } from "../../../src/core/desired-state.ts";
import { EventBus } from "../../../src/core/events.ts";
import { fieldsOf } from "../../../src/core/fields.ts";
import { KernelWriter } from "../../../src/core/kernel-writer.ts";
import { normalizeBackend, normalizeService } from "../../../src/core/normalize.ts";
import { planOperations } from "../../../src/core/reconcile.ts";
import { Transactions } from "../../../src/core/transactions.ts";
import { mergeTargets, wantedFor, type Target } from "../../../src/core/tx.ts";
import { VipLedger } from "../../../src/core/vip-ledger.ts";
import { startingHealth } from "../../../src/core/health.ts";
import { MemoryIpvsDriver } from "../../../src/ipvs/memory-driver.ts";
import { silentLogger } from "../../../src/log.ts";
import { Pacer } from "../../../src/pacer.ts";
import { initialWeightState } from "../../../src/health/weight.ts";
import { MemoryVipManager } from "../../helpers/memory-vip.ts";
import { turnsDuring } from "../../helpers/turns.ts";

/** `services` services of `backends` backends each in the desired state; the targets that name all of them. */
function state(services: number, backends: number): { desired: DesiredState; targets: Target[] } {
  const desired = new DesiredState();
  const targets: Target[] = [];
  for (let s = 0; s < services; s++) {
    const host = `10.0.${s >> 8}.${s & 255}`;
    const spec = normalizeService({ host, port: 80 });
    const key = { family: "inet", protocol: "tcp", address: host, port: 80 } as const;
    const service: ServiceRecord = {
      id: `s${s}`,
      source: "file",
      fields: fieldsOf({}),
      spec,
      config: { key, scheduler: "wrr", flags: { persistent: false, onePacket: false, sched1: false, sched2: false, sched3: false }, timeout: 0, netmask: 32, pe: null },
      backends: new Map(),
      byDest: new Map(),
      keep: new Set(),
      panic: false,
    };
    desired.addService(service);
    // Every fourth service is named whole; the others by their backends, one target each (as an apply's changes).
    if (s % 4 === 0) targets.push({ service: service.id, key, backends: null });
    for (let b = 0; b < backends; b++) {
      const address = `10.1.${s & 255}.${b + 1}`;
      const bspec = normalizeBackend({ host: address, port: 8000, weight: b + 1, pulse: { type: "none" } }, spec);
      const backend: BackendRecord = {
        id: `b${b}`,
        source: "file",
        watchId: `s${s}/b${b}#1`,
        fields: fieldsOf({}),
        spec: bspec,
        address: { address, family: "inet" },
        health: startingHealth(bspec.pulse),
        weight: initialWeightState(bspec.weight),
        drain: null,
      };
      desired.addBackend(service, backend);
      if (s % 4 !== 0) targets.push({ service: service.id, key, backends: [{ id: backend.id, key: { family: "inet", address, port: 8000 } }] });
    }
  }
  return { desired, targets };
}

function transactions(desired: DesiredState): Transactions {
  const writer = new KernelWriter(new MemoryIpvsDriver({ isRoutable: () => true }));
  const vips = new VipLedger(new MemoryVipManager(), silentLogger);
  return new Transactions({ desired, writer, store: null, vips, events: new EventBus(), log: silentLogger });
}

describe("Transactions.plan", () => {
  test("plans target by target, turning the event loop when the pacer says so, as planOperations plans them all", async () => {
    const { desired, targets } = state(40, 3);
    const merged = mergeTargets(targets);
    const tx = transactions(desired);
    // A clock that moves 1 ms at each reading: a 5 ms slice is used up every few targets.
    let clock = 0;
    const pacer = new Pacer(5, () => clock++);
    let planned: Awaited<ReturnType<Transactions["plan"]>> = [];
    const turns = await turnsDuring(async () => {
      planned = await tx.plan(merged, pacer);
    });
    expect(turns).toBeGreaterThan(3);
    const view = new KernelWriter(new MemoryIpvsDriver({ isRoutable: () => true })).view;
    const all = planOperations(wantedFor(desired, merged, view), view);
    expect(planned).toEqual(all);
    expect(planned).toHaveLength(40 * 4);
  });
});
