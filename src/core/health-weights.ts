/**
 * Health → desired effective weights. A batch of health updates (those queued since the last drain) is
 * recorded on the backends and stepped through the weight policy (src/health/weight.ts); the result is the
 * desired effective weight, which the reconciler then writes. Nothing here writes IPVS.
 *
 * Panic threshold: when the share of a service's backends that are down is above its panic_threshold percent
 * (0 = off), the backends that would be drained keep their weights (their policy state is not stepped on a
 * down update, nor drained by a PATCH of the backend: ./edits.ts panicKeeps), as Envoy's panic mode does: a mass
 * failure is more likely gorb's view than the backends.
 * When the share falls back to the threshold or below, the down backends are drained.
 */
import type { HealthUpdate } from "../health/target-state.ts";
import type { WeightPolicy } from "../health/weight.ts";
import { type BackendRecord, type DesiredState, backendDestId, desiredKernelWeight, type ServiceRecord } from "./desired-state.ts";
import { panicKeeps, stepWeight } from "./edits.ts";
import { backendHealthOf, type BackendHealth } from "./health.ts";
import { serviceKeyId } from "./keys.ts";
import type { ObservedTable } from "./reconcile.ts";
import type { EventBus } from "./events.ts";
import type { Logger } from "../log.ts";

/** A health state transition of a backend. */
export interface HealthTransition {
  readonly service: ServiceRecord;
  readonly backend: BackendRecord;
  readonly from: BackendHealth;
  readonly to: BackendHealth;
  /** The backend kept a weight above 0 in its old state (panic mode keeps a down backend's): it was not drained. */
  readonly wasServing: boolean;
}

/** A service entering (active) or leaving panic mode. */
export interface PanicChange {
  readonly service: ServiceRecord;
  readonly active: boolean;
  readonly down: number;
  readonly total: number;
  readonly threshold: number;
}

/** What a batch of updates did to the desired state. */
export interface HealthStep {
  readonly transitions: readonly HealthTransition[];
  readonly panics: readonly PanicChange[];
  /** The backends whose desired weight may have changed, by service. */
  readonly touched: ReadonlyMap<ServiceRecord, ReadonlySet<string>>;
}

/** Backends of a service that count as down for the panic threshold (a "none" pulse never drains). */
function downCount(service: ServiceRecord): number {
  let down = 0;
  for (const b of service.backends.values()) if (b.health.state === "down" && b.spec.pulse.type !== "none") down++;
  return down;
}

/** True when `down` of `total` backends is above the service's threshold. */
function inPanic(threshold: number, down: number, total: number): boolean {
  return threshold > 0 && total > 0 && down * 100 > threshold * total;
}

/** The service's panic state as its backends and threshold have it now, when it is not the recorded one; else null. */
function panicChange(service: ServiceRecord): PanicChange | null {
  const threshold = service.spec.panicThreshold;
  const total = service.backends.size;
  const down = threshold > 0 ? downCount(service) : 0;
  const active = inPanic(threshold, down, total);
  return active === service.panic ? null : { service, active, down, total, threshold };
}

/**
 * Re-evaluate a service's panic state after an edit (its panic_threshold changed, backends were created or
 * deleted, a pulse became "none"): health updates are not the only thing that moves the share of down backends, and
 * the update of a backend that stays down is quiet (isQuietUpdate), so it would never end a panic. Leaving panic
 * drains the down backends whose weights it kept, as a health update does. The change, with how to undo it, or
 * null when the state stays as it was.
 */
export function reevaluatePanic(service: ServiceRecord, policy: WeightPolicy): { readonly change: PanicChange; readonly undo: () => void } | null {
  const change = panicChange(service);
  if (change === null) return null;
  const kept: [BackendRecord, BackendRecord["weight"]][] = [];
  service.panic = change.active;
  if (!change.active) {
    for (const b of service.backends.values()) {
      if (b.health.state !== "down" || b.spec.pulse.type === "none") continue;
      kept.push([b, b.weight]);
      b.weight = stepWeight(b.weight, b.spec, b.health, policy);
    }
  }
  const undo = () => {
    service.panic = !change.active;
    for (const [b, weight] of kept) b.weight = weight;
  };
  return { change, undo };
}

/** Log and publish (service.panic) a service entering or leaving panic mode. */
export function announcePanic(p: PanicChange, log: Logger, events: EventBus): void {
  const text = `${p.down} of ${p.total} backends down, threshold ${p.threshold}%`;
  if (p.active) log.warn(`service ${JSON.stringify(p.service.id)} is in panic mode (${text}): keeping the weights of the down backends`);
  else log.info(`service ${JSON.stringify(p.service.id)} left panic mode (${text}): draining the down backends`);
  events.publish("service.panic", { service: p.service.id, down: p.down, total: p.total, threshold: p.threshold, active: p.active });
}

/** Apply a batch of updates to the desired state; see the module comment. */
export function applyHealthUpdates(desired: DesiredState, updates: readonly HealthUpdate[], policy: WeightPolicy): HealthStep {
  const transitions: HealthTransition[] = [];
  const steps: { service: ServiceRecord; backend: BackendRecord; health: BackendHealth }[] = [];
  const touched = new Map<ServiceRecord, Set<string>>();
  for (const update of updates) {
    const entry = desired.watched(update.id);
    if (entry === undefined) continue; // a backend deleted meanwhile
    const { service, backend } = entry;
    const health = backendHealthOf(update);
    if (backend.health.state !== health.state) transitions.push({ service, backend, from: backend.health, to: health, wasServing: backend.weight.effective > 0 });
    backend.health = health;
    steps.push({ service, backend, health });
    let set = touched.get(service);
    if (set === undefined) touched.set(service, (set = new Set()));
    set.add(backend.id);
  }
  const panics: PanicChange[] = [];
  for (const [service, set] of touched) {
    const change = panicChange(service);
    if (change === null) continue;
    service.panic = change.active;
    panics.push(change);
    if (change.active) continue;
    // Leaving panic: drain the backends that are down now.
    for (const b of service.backends.values()) {
      if (b.health.state === "down") {
        steps.push({ service, backend: b, health: b.health });
        set.add(b.id);
      }
    }
  }
  for (const { service, backend, health } of steps) {
    if (panicKeeps(service, backend.spec, health)) continue; // weights kept
    backend.weight = stepWeight(backend.weight, backend.spec, health, policy);
  }
  return { transitions, panics, touched };
}

/**
 * isQuietUpdate says whether recording `update` would change nothing anyone reads: no state transition, the same
 * health fraction (so the service's health is the same), and a weight step that gives the same weight state,
 * which `kernel` (the writer's view) already holds. Such an update (a pass of a backend that is up and not
 * recovering, or a failure of one that is down) is dropped before any queueing, planning, store write or event.
 * The record then keeps the counters of the last update that changed something (samples, streak, uptime, last
 * check): GET reads the live health from the monitor, and the weight policy reads them only while an up backend
 * is recovering, which is never quiet. Nor is a backend whose desired weight the kernel does not hold (the next
 * update retries the write), nor one of a service whose sorry server the kernel refused (the next update tries it
 * again: ServiceRecord.sorryRetry).
 */
export function isQuietUpdate(desired: DesiredState, kernel: ObservedTable, update: HealthUpdate, policy: WeightPolicy): boolean {
  const entry = desired.watched(update.id);
  if (entry === undefined) return false;
  const { service, backend } = entry;
  const recorded = backend.health;
  if (
    service.sorryRetry === true ||
    recorded.state !== update.status ||
    recorded.health !== update.health ||
    (backend.weight.recovering && update.status !== "down")
  ) {
    return false;
  }
  // In panic mode a down backend's weight is kept, not stepped (applyHealthUpdates).
  const health = backendHealthOf(update);
  const next = panicKeeps(service, backend.spec, health) ? backend.weight : stepWeight(backend.weight, backend.spec, health, policy);
  if (next.effective !== backend.weight.effective || next.recovering !== backend.weight.recovering) return false;
  // Compared with what the kernel must hold, not health's weight: maintenance, a drain, sorry mode or a slow-start
  // ramp hold it elsewhere, and every check of such a backend was news.
  const held = kernel.get(serviceKeyId(service.config.key))?.dests.get(backendDestId(backend));
  return held !== undefined && held.weight === desiredKernelWeight(service, backend);
}
