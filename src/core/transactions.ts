/**
 * Running changes (Tx, ./tx.ts) to the end: the kernel write of a change (one batch, planned by the reconciler
 * for the targets it concerns), its rollback, the commit of a group of changes to the state store, and the
 * refusal (503) of every change while the store cannot write.
 *
 *   write     plan the change's targets against gorb's view of the kernel and run them as one batch (three when
 *             a sorry server comes or goes: runSorrySafe); when an operation fails, undo the change's edits, write
 *             its targets back, and throw the first error
 *   commit    one store transaction for the rows a group of changes touched; a failure marks the store down
 *             and throws 503 (the caller undoes the group); a shared store's refusal of some of the group's rows
 *             (another node changed them first, or more than one transaction takes) runs the group again in
 *             halves, so only the requests it is about get it
 *   check     while the store is down, a probe write decides: it still fails (503, nothing touched) or the
 *             store is back (the refusal clears itself)
 */
import { describeDestination, describeService } from "../ipvs/address.ts";
import { ChangeTracker } from "./changes.ts";
import { evaluateQuorum, type DesiredState, type QuorumChange } from "./desired-state.ts";
import { SORRY_ID } from "./failover.ts";
import { ConflictError, StoreOutcomeUnknownError, StoreTooLargeError, UnavailableError, fromIpvsError, errorMessage } from "./errors.ts";
import type { EventBus } from "./events.ts";
import type { KernelWriter, OperationResult } from "./kernel-writer.ts";
import type { Logger } from "../log.ts";
import { Pacer } from "../pacer.ts";
import { OperationPlan, planOperations, type Operation, type WantedService } from "./reconcile.ts";
import type { Creating, StagedCommit, StateChanges, StateStore } from "./state.ts";
import { Tx, mergeTargets, noteCreated, noteRemoved, wantedFor, type CreatedServices, type RemovedServices, type Target } from "./tx.ts";
import { serviceKeyId } from "./keys.ts";
import type { VipLedger } from "./vip-ledger.ts";
import { DEFAULT_WEIGHT_POLICY, type WeightPolicy } from "../health/weight.ts";
import { announcePanic, reevaluatePanic } from "./health-weights.ts";

/** One queued request: its section (edits + write) and how to answer it. */
export interface Request {
  readonly section: (tx: Tx) => Promise<unknown>;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

const q = JSON.stringify;

/** A commit started by Transactions.stage: commit or abort it, exactly one of the two, once. */
export interface PendingCommit {
  /** Make the rows durable; rejects with commit()'s 503 (nothing saved) when they cannot be. */
  commit(): Promise<void>;
  /** Drop the rows: nothing of them is saved. */
  abort(): Promise<void>;
}

/**
 * `operations` split in three, each in order, for Transactions.runSorrySafe:
 *   first  the add (or change) of a sorry server (SORRY_ID), with what must precede it: service deletes (they free
 *          keys) and its own service's write; empty when no service enters sorry mode
 *   last   the deletes of a sorry server or of a destination that is no backend of gorb's (backend null: a sorry
 *          server the change unset or moved)
 *   rest   everything else (the backends' writes)
 */
function sorryPhases(operations: readonly Operation[]): { first: readonly Operation[]; rest: readonly Operation[]; last: readonly Operation[] } {
  const isSorryAdd = (o: Operation) => o.backend === SORRY_ID && (o.op.op === "add-destination" || o.op.op === "update-destination");
  const isLast = (o: Operation) => o.op.op === "delete-destination" && (o.backend === SORRY_ID || o.backend === null);
  // An apply of 10,000 backends has neither: one pass over it, and it stays one batch.
  let entering: Set<string> | null = null;
  let anyLast = false;
  for (const o of operations) {
    if (isSorryAdd(o)) (entering ??= new Set()).add(o.service);
    else if (!anyLast && isLast(o)) anyLast = true;
  }
  if (entering === null && !anyLast) return { first: [], rest: operations, last: [] };
  const inFirst = (o: Operation) =>
    entering !== null &&
    (isSorryAdd(o) || o.op.op === "delete-service" || (entering.has(o.service) && (o.op.op === "add-service" || o.op.op === "update-service")));
  const first: Operation[] = [];
  const rest: Operation[] = [];
  const last: Operation[] = [];
  for (const o of operations) (inFirst(o) ? first : isLast(o) ? last : rest).push(o);
  return { first, rest, last };
}

/** Rows gathered for a commit in one go; more (an apply's) are gathered with turns of the event loop between. */
const PACED_ROWS = 500;

/** No services removed (a writeBack that puts back nothing of someone else's). */
const NONE_REMOVED: RemovedServices = new Map();
/** No services created (a writeBack that takes out nothing its targets' plan does not). */
const NONE_CREATED: CreatedServices = new Map();

/** The rows the changes `txs` touched. */
function tracked(txs: readonly Tx[]): ChangeTracker {
  const tracker = new ChangeTracker();
  for (const tx of txs) for (const [service, backend] of tx.touched) tracker.touch(service, backend);
  return tracker;
}

/** tracked() with a turn of the event loop every few milliseconds (an apply's 66,000 changes). */
async function trackedPaced(txs: readonly Tx[]): Promise<ChangeTracker> {
  const tracker = new ChangeTracker();
  const pacer = new Pacer();
  for (const tx of txs) {
    if (pacer.due()) await pacer.turn();
    for (const [service, backend] of tx.touched) tracker.touch(service, backend);
  }
  return tracker;
}

/** See the module comment. */
export class Transactions {
  readonly #desired: DesiredState;
  readonly #writer: KernelWriter;
  readonly #store: StateStore | null;
  readonly #vips: VipLedger;
  readonly #events: EventBus;
  readonly #log: Logger;
  readonly #onQuorum: (change: QuorumChange) => void;
  readonly #policy: WeightPolicy;
  readonly #exposeEntered: () => Promise<void> | undefined;
  /** Set when a commit failed; cleared by a probe write that works. */
  #storeDown = false;

  constructor(parts: {
    desired: DesiredState;
    writer: KernelWriter;
    store: StateStore | null;
    vips: VipLedger;
    events: EventBus;
    log: Logger;
    /** A service's quorum state changed (published and hooked once the change is committed). */
    onQuorum?: (change: QuorumChange) => void;
    /** The weight policy that drains the down backends of a service an edit takes out of panic mode. */
    policy?: WeightPolicy;
    /** Expose the held services that writes put in the kernel (Exposure.exposeEntered, ./exposure.ts). */
    exposeEntered?: () => Promise<void> | undefined;
  }) {
    this.#onQuorum = parts.onQuorum ?? (() => undefined);
    this.#exposeEntered = parts.exposeEntered ?? (() => undefined);
    this.#policy = parts.policy ?? DEFAULT_WEIGHT_POLICY;
    this.#desired = parts.desired;
    this.#writer = parts.writer;
    this.#store = parts.store;
    this.#vips = parts.vips;
    this.#events = parts.events;
    this.#log = parts.log;
  }

  /**
   * Run a group of requests: each one's section (edits and its own kernel batch, so a failed request never
   * disturbs the others), then one commit for all; a failed commit undoes every request of the group.
   */
  async runGroup(requests: readonly Request[]): Promise<void> {
    try {
      await this.checkStore();
    } catch (error) {
      for (const r of requests) r.reject(error);
      return;
    }
    await this.#runRequests(requests);
  }

  /**
   * runGroup once the store writes. A commit a shared store refuses for what some of the requests hold (another
   * node changed their rows first, or the group is more than one transaction takes) says nothing of the others:
   * the group is undone and run again in two halves, in order, each with its own commit, so only the requests the
   * refusal is about get it (as when each had come alone).
   */
  async #runRequests(requests: readonly Request[]): Promise<void> {
    const done: { request: Request; tx: Tx; result: unknown }[] = [];
    for (const request of requests) {
      const tx = new Tx();
      try {
        done.push({ request, tx, result: await request.section(tx) });
      } catch (error) {
        request.reject(error);
      }
    }
    try {
      await this.commit(done.map((d) => d.tx));
    } catch (error) {
      for (const d of [...done].reverse()) await this.rollback(d.tx);
      if (done.length > 1 && (error instanceof ConflictError || error instanceof StoreTooLargeError)) {
        const half = Math.ceil(done.length / 2);
        await this.#runRequests(done.slice(0, half).map((d) => d.request));
        await this.#runRequests(done.slice(half).map((d) => d.request));
        return;
      }
      for (const d of done) d.request.reject(error);
      return;
    }
    for (const d of done) {
      await this.effects(d.tx);
      d.request.resolve(d.result);
    }
  }

  /**
   * Run what a committed change does afterwards (watches, discovery, events, log lines), then expose the services
   * that gorb held out of the kernel and that its writes added (./exposure.ts), before the change answers.
   */
  effects(tx: Tx): Promise<void> | void {
    const failed = (error: unknown) => this.#log.error(`after a change: ${errorMessage(error)}`);
    try {
      const pending = tx.commitEffects();
      if (pending !== undefined) return pending.catch(failed).then(this.#exposeEntered);
    } catch (error) {
      failed(error);
    }
    return this.#exposeEntered();
  }

  /** Refuse (503) while the store cannot write; a probe write that works clears the state. */
  async checkStore(): Promise<void> {
    const store = this.#store;
    if (store === null || (!this.#storeDown && store.available?.() !== false)) return;
    try {
      if (store.probe !== undefined) await store.probe();
      else await store.commit({ putServices: [], deleteServices: [], putBackends: [], deleteBackends: [] });
    } catch (error) {
      throw new UnavailableError(
        "state",
        `gorb cannot save its state to ${store.location} (${errorMessage(error)}); changes are refused until it can`,
        { cause: error },
      );
    }
    this.#storeDown = false;
    this.#log.info(`the state can be saved to ${store.location} again; changes are accepted`);
  }

  /**
   * Commit the rows the changes touched, in one transaction; a failure marks the store down and throws 503.
   * `wholeSet`: the changes were planned from every service (an apply; see StateChanges.wholeSet).
   */
  async commit(txs: readonly Tx[], wholeSet = false): Promise<void> {
    await this.commitTracked(txs.length > PACED_ROWS ? await trackedPaced(txs) : tracked(txs), wholeSet);
  }

  /** Commit what `tracker` marked; see commit(). */
  async commitTracked(tracker: ChangeTracker, wholeSet = false): Promise<void> {
    const store = this.#store;
    if (store === null) return;
    if (tracker.empty) return this.forgetIntents();
    try {
      await store.commit(await this.#changesOf(tracker, wholeSet));
    } catch (error) {
      throw this.#saveFailed(store, error);
    }
  }

  /**
   * Write the rows the changes touched while the caller waits for their kernel batch (StateStore.stage), so the
   * store's work and the kernel's overlap; the caller then commits or aborts it (exactly one of the two). A store
   * without staging commits when committed, as commit() does. A failure is commit()'s 503. `wholeSet`: see commit().
   */
  async stage(txs: readonly Tx[], wholeSet = false): Promise<PendingCommit> {
    const store = this.#store;
    if (store?.stage === undefined) return { commit: () => this.commit(txs, wholeSet), abort: () => Promise.resolve() };
    const tracker = txs.length > PACED_ROWS ? await trackedPaced(txs) : tracked(txs);
    if (tracker.empty) return { commit: () => Promise.resolve(), abort: () => Promise.resolve() };
    let staged: StagedCommit;
    try {
      staged = await store.stage(await this.#changesOf(tracker, wholeSet));
    } catch (error) {
      throw this.#saveFailed(store, error);
    }
    return {
      commit: async () => {
        try {
          await staged.commit();
        } catch (error) {
          throw this.#saveFailed(store, error);
        }
      },
      abort: () => staged.abort(),
    };
  }

  async #changesOf(tracker: ChangeTracker, wholeSet: boolean): Promise<StateChanges> {
    const changes = tracker.size > PACED_ROWS ? await tracker.changesPaced(this.#desired, this.#vips) : tracker.changes(this.#desired, this.#vips);
    return wholeSet ? { ...changes, wholeSet } : changes;
  }

  /** A failed save: the store is marked down (commit()'s 503), unless another node changed the rows first. */
  #saveFailed(store: StateStore, error: unknown): Error {
    // A shared store refused the change because another node changed the same rows first: the store works.
    if (error instanceof ConflictError) return error;
    // Refused for its size: this change only; the store works.
    if (error instanceof StoreTooLargeError) return error;
    this.#storeDown = true;
    this.#log.error(`cannot save the state to ${store.location}: ${errorMessage(error)}`);
    // Not answered in time: undone here, but the store may still apply it (this node then follows it).
    const outcome =
      error instanceof StoreOutcomeUnknownError
        ? "was undone here, but the store may still apply it, and then every node serves it: read it again before retrying"
        : "was undone";
    return new UnavailableError(
      "state",
      `the change could not be saved to ${store.location} (${errorMessage(error)}) and ${outcome}; ` +
        "changes are refused until the state can be saved again",
      { cause: error },
    );
  }

  /** Write a change's targets (runSorrySafe); on failure, roll the change back and throw the first error. */
  async write(tx: Tx): Promise<void> {
    this.quorum(tx);
    const operations = planOperations(wantedFor(this.#desired, mergeTargets(tx.targets), this.#writer.view), this.#writer.view);
    noteRemoved(tx.removed, operations, this.#writer.view);
    try {
      await this.intend(operations);
    } catch (error) {
      await this.rollback(tx); // nothing was written to the kernel: this undoes the edits and the VIP claims
      throw error;
    }
    const { results } = await this.runSorrySafe(operations);
    noteCreated(tx.created, results);
    const failed = results.find((r) => r.error !== null);
    if (failed !== undefined) {
      await this.rollback(tx);
      throw fromIpvsError(failed.error);
    }
    tx.after(() => this.weightEvents(results));
  }

  /**
   * Before `operations` run: record durably the services they create (StateStore.intend), so that a crash before
   * the commit does not leave them in IPVS as services gorb does not manage (the next start removes them). A
   * failure to record is the commit's 503, and nothing was written to the kernel.
   */
  async intend(operations: readonly Operation[]): Promise<void> {
    const store = this.#store;
    if (store?.intend === undefined) return;
    let entries: Creating[] | null = null;
    for (const o of operations) {
      if (o.op.op !== "add-service") continue;
      const key = o.op.service.key;
      (entries ??= []).push({ key, vip: this.#vips.holds(o.service, key) });
    }
    if (entries === null) return;
    try {
      await store.intend(entries);
    } catch (error) {
      throw this.#saveFailed(store, error);
    }
  }

  /**
   * Clear the record of services being created when no commit will (the changes failed and were rolled back, or
   * left nothing to save): every change under way is over. A failure is logged: the next commit clears it.
   */
  async forgetIntents(): Promise<void> {
    try {
      await this.#store?.intend?.([]);
    } catch (error) {
      this.#log.error(`cannot clear the record of services being created in ${this.#store?.location ?? "the state"}: ${errorMessage(error)}`);
    }
  }

  /**
   * Re-evaluate the panic and quorum states of the services a change concerns (./health-weights.ts,
   * ./failover.ts). A service whose state flips is written whole (its backends' weights and the sorry server
   * change together); the flip is undone with the change and published once it is committed.
   */
  quorum(tx: Tx): void {
    // The targets this adds (a flipped service's) are not looked at again. Most changes have one target: no set.
    const targets = tx.targets;
    const n = targets.length;
    const seen = n > 1 ? new Set<string>() : null;
    for (let i = 0; i < n; i++) {
      const t = targets[i] as Target;
      if (seen !== null) {
        if (seen.has(t.service)) continue;
        seen.add(t.service);
      }
      const record = this.#desired.service(t.service);
      if (record === undefined) continue;
      // An edit moves the share of down backends too (a new threshold, backends created or deleted): a service it
      // takes out of panic mode has its down backends drained, written whole with it.
      const panic = reevaluatePanic(record, this.#policy);
      if (panic !== null) {
        tx.undo(panic.undo);
        if (!panic.change.active) tx.target({ service: record.id, key: record.config.key, backends: null });
        tx.after(() => announcePanic(panic.change, this.#log, this.#events));
      }
      const before = record.quorumUp;
      const change = evaluateQuorum(record);
      if (change === null) continue;
      tx.undo(() => {
        record.quorumUp = before;
      });
      tx.target({ service: record.id, key: record.config.key, backends: null });
      tx.after(() => this.#onQuorum(change));
    }
  }

  /** Undo a change's edits and write its targets back to the previous desired state. */
  async rollback(tx: Tx): Promise<void> {
    tx.undoEdits();
    await this.writeBack(tx.targets, tx.removed, tx.created);
    await tx.releaseClaims();
  }

  /**
   * Write `targets` as the desired state has them now (after an undo); failures are logged. In the order of
   * runSorrySafe: a rollback that takes a sorry server out deletes it only once the backends' weights are back, and
   * one that brings it back zeroes no backend without it (the periodic reconcile writes what was not).
   */
  async writeBack(targets: Tx["targets"], removed: RemovedServices = NONE_REMOVED, created: CreatedServices = NONE_CREATED): Promise<void> {
    const { results } = await this.runSorrySafe(planOperations(wantedFor(this.#desired, mergeTargets(targets), this.#writer.view), this.#writer.view));
    const back = await this.#writer.run([...this.#putBack(removed), ...this.#uncreate(created, removed)]);
    for (const r of [...results, ...back]) {
      if (r.error !== null) this.#log.error(`cannot undo a failed change in IPVS (${r.operation.reason}): ${r.error.message}`);
    }
  }

  /**
   * The deletes of the services the failed change created on a key the kernel did not have before it (not deleted
   * and created again) that are still there: a service gorb has and the kernel had lost, which a write puts back
   * whole (tx.ts wantedFor), is taken out again when the change fails, as it was before. The undo's own plan covers
   * only the change's targets (one backend): it left the service in the kernel without the backends the kernel had
   * just refused, and gorb counted it as in the kernel.
   */
  #uncreate(created: CreatedServices, removed: RemovedServices): Operation[] {
    const ops: Operation[] = [];
    for (const [keyId, key] of created) {
      if (removed.has(keyId) || !this.#writer.view.has(keyId)) continue;
      const id = this.#desired.serviceIdByKey(key) ?? describeService(key);
      ops.push({ op: { op: "delete-service", key }, service: id, backend: null, reason: `${describeService(key)} was not in IPVS before the change that failed` });
    }
    return ops;
  }

  /** The services `operations` delete, as gorb's view of the kernel has them before they run (for writeBack). */
  removedBy(operations: readonly Operation[]): RemovedServices {
    const removed: RemovedServices = new Map();
    noteRemoved(removed, operations, this.#writer.view);
    return removed;
  }

  /**
   * The adds that put back the destinations a failed change took away (with their service, or as no backend's of a
   * service that took the key) that the service at that key after the undo leaves serving (someone else's, found at
   * start-up: ServiceRecord.keep): a failed change changes nothing. Others (a destination added by hand while gorb
   * ran, which the next reconcile removes) are not put back.
   */
  #putBack(removed: RemovedServices): Operation[] {
    const ops: Operation[] = [];
    for (const [keyId, { key, dests }] of removed) {
      const id = this.#desired.serviceIdByKey(key);
      const record = id === undefined ? undefined : this.#desired.service(id);
      const now = this.#writer.view.get(keyId);
      if (id === undefined || record === undefined || now === undefined) continue;
      for (const [destId, dest] of dests) {
        if (now.dests.has(destId) || !record.keep.has(destId)) continue;
        const reason = `${describeDestination(dest)} was in ${describeService(key)} before the change that failed`;
        ops.push({ op: { op: "add-destination", service: now.config.key, destination: dest }, service: id, backend: null, reason, foreign: true });
      }
    }
    return ops;
  }

  /**
   * The writes for the targets of a bulk change (an apply's 1,000 services) against gorb's view of the kernel,
   * worked out one target at a time (what the desired state wants for it, then its writes), with a turn of the
   * event loop whenever `pacer` says so: in one block this was about 200 ms of work in the emulated guest. Run them
   * with run().
   */
  async plan(targets: readonly Target[], pacer: Pacer): Promise<Operation[]> {
    const plan = new OperationPlan();
    for (const target of targets) {
      if (pacer.due()) await pacer.turn();
      for (const wanted of wantedFor(this.#desired, [target], this.#writer.view)) plan.add(wanted, this.#writer.view);
    }
    return plan.operations();
  }

  /**
   * Run planned writes so that no service is left with nothing serving when the kernel refuses one: a batch goes on
   * past a failed operation, so a sorry server's add in the same batch as the backends going to 0 (or its delete in
   * the same batch as their weights coming back) would leave the VIP nowhere to send new connections when the kernel
   * refuses it (or one of them). As the health path does, up to three batches, each service's later ones only when
   * its writes so far all worked: the sorry servers' adds (with what must precede them), then the rest, then the
   * sorry servers' deletes. Writes with neither (an apply's 10,000 backends) are one batch. `held`: the services
   * whose later writes were not run, each with the batch that stopped them ("first": their backends' writes did not
   * run, "rest": only their sorry server's delete did not). `run` sends one batch (the reconcile's repairs send
   * theirs without this class's logging of deletes already done).
   */
  async runSorrySafe(
    operations: readonly Operation[],
    run: (operations: readonly Operation[]) => Promise<OperationResult[]> = (ops) => this.run(ops),
  ): Promise<{ results: OperationResult[]; held: ReadonlyMap<string, "first" | "rest"> }> {
    const { first, rest, last } = sorryPhases(operations);
    const held = new Map<string, "first" | "rest">();
    const running = (ops: readonly Operation[]) => (held.size === 0 ? ops : ops.filter((o) => !held.has(o.service)));
    const results: OperationResult[] = first.length === 0 ? [] : await run(first);
    for (const r of results) if (r.error !== null) held.set(r.operation.service, "first");
    const more = await run(running(rest));
    if (first.length === 0 && last.length === 0) return { results: more, held };
    for (const r of more) {
      if (r.error !== null && !held.has(r.operation.service)) held.set(r.operation.service, "rest");
      results.push(r);
    }
    if (last.length > 0) for (const r of await run(running(last))) results.push(r);
    return { results, held };
  }

  /**
   * Run planned writes as one batch; log deletes already done. With a `pacer`, the results are recorded with turns of
   * the event loop (KernelWriter.run: an apply's 66,000 writes).
   */
  async run(operations: readonly Operation[], pacer: Pacer | null = null): Promise<OperationResult[]> {
    const results = await this.#writer.run(operations, pacer);
    for (const r of results) {
      if (!r.gone) continue;
      const op = r.operation.op;
      if (op.op === "delete-service") this.#log.warn(`service ${q(r.operation.service)} (${describeService(op.key)}) was already gone from IPVS`);
      else if (op.op === "delete-destination") {
        this.#log.warn(`backend ${q(r.operation.backend ?? "")} (${describeDestination(op.destination)}) was already gone`);
      }
    }
    return results;
  }

  /** Publish backend.weight for every effective weight the kernel now has differently. */
  weightEvents(results: readonly OperationResult[]): void {
    for (const r of results) this.#weightEvent(r);
  }

  /** weightEvents with a turn of the event loop whenever a `pacer` says so (a reconcile's 20,000 repairs). */
  async weightEventsPaced(results: readonly OperationResult[], pacer: Pacer | null): Promise<void> {
    for (const r of results) {
      if (pacer?.due() === true) await pacer.turn();
      this.#weightEvent(r);
    }
  }

  /** backend.weight for `r`, when it changed a backend's effective weight in the kernel. */
  #weightEvent(r: OperationResult): void {
    const op = r.operation.op;
    if (r.error !== null || op.op !== "update-destination" || r.operation.backend === null || r.operation.backend === SORRY_ID) return;
    const from = r.before?.weight;
    if (from === undefined || from === op.destination.weight) return;
    const backend = this.#desired.service(r.operation.service)?.backends.get(r.operation.backend);
    this.#events.publish("backend.weight", {
      service: r.operation.service,
      backend: r.operation.backend,
      from,
      to: op.destination.weight,
      configured: backend?.spec.weight ?? op.destination.weight,
    });
  }
}
