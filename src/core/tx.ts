/**
 * One change in progress (a request, or one change of an apply): how to undo its edits of the desired state,
 * what to do once it is committed (health watches, discovery, events, log lines), the stored rows it touched,
 * and the part of the kernel it concerns (targets), so the reconciler writes, and on failure rolls back, only
 * that part.
 */
import { destinationKeyId, serviceKeyId } from "./keys.ts";
import type { DestinationConfig, DestinationKey, ServiceKey } from "../ipvs/types.ts";
import { desiredDestination, backendDestId, type DesiredState } from "./desired-state.ts";
import type { ObservedTable, Operation, WantedBackend, WantedService } from "./reconcile.ts";

/** The part of the kernel a change concerns: one service key, whole (backends null) or some destinations. */
export interface Target {
  readonly service: string;
  readonly key: ServiceKey;
  readonly backends: readonly { readonly id: string; readonly key: DestinationKey }[] | null;
}

/**
 * What a kernel write removed, by service key id: the destinations of the services it deleted and those it deleted
 * as no backend's, as the kernel had them, so that an undo can put back the ones gorb leaves serving (someone
 * else's, found at start-up: ServiceRecord.keep).
 */
export type RemovedServices = Map<string, { readonly key: ServiceKey; readonly dests: Map<string, DestinationConfig> }>;

/** Note in `removed` what `operations` remove, as `view` has it before they run. */
export function noteRemoved(removed: RemovedServices, operations: readonly Operation[], view: ObservedTable): void {
  for (const { op, backend } of operations) {
    if (op.op === "delete-service") {
      const id = serviceKeyId(op.key);
      const found = view.get(id);
      if (found === undefined) continue;
      const entry = removed.get(id) ?? { key: op.key, dests: new Map<string, DestinationConfig>() };
      for (const [destId, dest] of found.dests) if (!entry.dests.has(destId)) entry.dests.set(destId, dest);
      removed.set(id, entry);
    } else if (op.op === "delete-destination" && backend === null) {
      const id = serviceKeyId(op.service);
      const destId = destinationKeyId(op.destination);
      const dest = view.get(id)?.dests.get(destId);
      if (dest === undefined) continue;
      const entry = removed.get(id) ?? { key: op.service, dests: new Map<string, DestinationConfig>() };
      if (!entry.dests.has(destId)) entry.dests.set(destId, dest);
      removed.set(id, entry);
    }
  }
}

/** Services a kernel write created (its add-service ops that worked), by service key id. */
export type CreatedServices = Map<string, ServiceKey>;

/** Note in `created` the services `results` show created; only those whose key `among` has, when given. */
export function noteCreated(created: CreatedServices, results: readonly { readonly operation: Operation; readonly error: Error | null }[], among?: ReadonlySet<string>): void {
  for (const { operation, error } of results) {
    const op = operation.op;
    if (error !== null || op.op !== "add-service") continue;
    const id = serviceKeyId(op.service.key);
    if (among === undefined || among.has(id)) created.set(id, op.service.key);
  }
}

/** See the module comment. */
export class Tx {
  /**
   * True for the changes of a bulk run (an apply): their per-object log lines go to debug, as the run logs one
   * summary line (the event stream still carries every change).
   */
  readonly bulk: boolean;
  readonly #undo: (() => void)[] = [];
  readonly #release: (() => Promise<void>)[] = [];
  #after: (() => void | Promise<void>)[] = [];
  readonly touched: (readonly [string, string?])[] = [];
  readonly targets: Target[] = [];
  /** What its kernel write removed, as the kernel had it (see RemovedServices). */
  readonly removed: RemovedServices = new Map();
  /** The services its kernel write created (see CreatedServices). */
  readonly created: CreatedServices = new Map();

  constructor(bulk = false) {
    this.bulk = bulk;
  }

  /** Remember how to undo an edit of the desired state. */
  undo(step: () => void): void {
    this.#undo.push(step);
  }

  /** Something to release when the change is rolled back (a VIP claimed for it). */
  onRollback(step: () => Promise<void>): void {
    this.#release.push(step);
  }

  /** Something to do once the change is committed. */
  after(step: () => void | Promise<void>): void {
    this.#after.push(step);
  }

  touch(service: string, backend?: string): void {
    this.touched.push(backend === undefined ? [service] : [service, backend]);
  }

  target(target: Target): void {
    this.targets.push(target);
  }

  /** Undo every edit, newest first. */
  undoEdits(): void {
    for (let i = this.#undo.length - 1; i >= 0; i--) this.#undo[i]?.();
    this.#undo.length = 0;
  }

  async releaseClaims(): Promise<void> {
    for (const step of this.#release.splice(0).reverse()) await step();
  }

  /**
   * Run the steps given to after(), once each, in order. Most steps are synchronous: only a step that returns a
   * promise is waited for, and when none does, nothing is returned to wait for (an apply runs 11,000 of these).
   */
  commitEffects(): Promise<void> | void {
    const steps = this.#after;
    this.#after = [];
    for (let i = 0; i < steps.length; i++) {
      const done = (steps[i] as () => void | Promise<void>)();
      if (done instanceof Promise) return this.#finishAsync(done, steps, i + 1);
    }
  }

  async #finishAsync(pending: Promise<void>, steps: readonly (() => void | Promise<void>)[], from: number): Promise<void> {
    await pending;
    for (let i = from; i < steps.length; i++) {
      const done = (steps[i] as () => void | Promise<void>)();
      if (done instanceof Promise) await done;
    }
  }
}

/** Targets merged per service key: a whole-service target wins; destinations are united. */
export function mergeTargets(targets: Iterable<Target>): Target[] {
  // One target with at most one destination (a request's usual change) has nothing to merge.
  if (Array.isArray(targets) && targets.length === 1) {
    const only = targets[0] as Target;
    if (only.backends === null || only.backends.length <= 1) return [only];
  }
  const merged = new MergedTargets();
  merged.add(targets);
  return merged.list();
}

/** mergeTargets a few targets at a time (an apply adds each change's between turns of the event loop). */
export class MergedTargets {
  readonly #out = new Map<string, { service: string; key: ServiceKey; backends: Map<string, { id: string; key: DestinationKey }> | null }>();

  add(targets: Iterable<Target>): void {
    for (const t of targets) {
      const id = `${t.service}\u0000${serviceKeyId(t.key)}`;
      let merged = this.#out.get(id);
      if (merged === undefined) this.#out.set(id, (merged = { service: t.service, key: t.key, backends: new Map() }));
      if (t.backends === null) merged.backends = null;
      else if (merged.backends !== null) for (const b of t.backends) merged.backends.set(`${b.id}\u0000${destinationKeyId(b.key)}`, b);
    }
  }

  /** The targets merged so far, in the order their service key was first added. */
  list(): Target[] {
    return [...this.#out.values()].map((m) => ({ service: m.service, key: m.key, backends: m.backends === null ? null : [...m.backends.values()] }));
  }
}

/**
 * What the desired state wants for each target now: the service when it still has the target's key (else
 * absent), and each destination named when the backend still has it (else absent). A service the kernel lacks
 * (`view`, gorb's view of the kernel, does not have its key: lost behind gorb's back, refused) is wanted whole:
 * the write that puts it back puts back every backend and the sorry server, not only the ones the change names.
 */
export function wantedFor(desired: DesiredState, targets: readonly Target[], view: ObservedTable): WantedService[] {
  return targets.map((t): WantedService => {
    const record = desired.service(t.service);
    if (record === undefined || serviceKeyId(record.config.key) !== serviceKeyId(t.key)) {
      // Another service may have taken the key over (an apply that renames a service, or moves one onto the
      // address another leaves): that one's own target writes it, and deleting it here would take it away. No key:
      // nothing to write.
      const holder = desired.serviceIdByKey(t.key);
      if (holder !== undefined && holder !== t.service) return { id: t.service, config: null, backends: [] };
      return { id: t.service, config: null, key: t.key, backends: [] };
    }
    if (t.backends === null || !view.has(serviceKeyId(record.config.key))) return desired.wanted(record);
    const backends: WantedBackend[] = t.backends.map((b) => {
      const backend = record.backends.get(b.id);
      if (backend !== undefined && backendDestId(backend) === destinationKeyId(b.key)) {
        return { id: b.id, dest: desiredDestination(record, backend) };
      }
      // Another backend may have taken the destination over (an apply that renames a backend).
      const owner = record.backends.get(record.byDest.get(destinationKeyId(b.key)) ?? "");
      if (owner !== undefined) return { id: owner.id, dest: desiredDestination(record, owner) };
      return { id: b.id, dest: null, key: b.key };
    });
    return { id: t.service, config: record.config, backends, complete: false };
  });
}
