/**
 * Health updates into the kernel: the monitor's update after every check is queued, and one job on Gorb's lock
 * handles every update queued meanwhile as one batch: ./health-weights.ts turns them into desired effective
 * weights (panic threshold), the quorum of each touched service is evaluated, and the reconciler writes what
 * differs as one kernel batch. A check that changes nothing (isQuietUpdate) costs nothing beyond the check.
 * Transitions are logged and published (`backend.health`, `service.panic`); a backend coming back up starts its
 * slow-start ramp. A check that cannot run (a check error: a missing exec program, no file descriptors left) changes
 * nothing, so the backend keeps its weight whatever it serves: the first of a run of them is logged as a warning,
 * and the next real result says the checks run again.
 */
import type { HealthUpdate } from "../health/target-state.ts";
import type { WeightPolicy } from "../health/weight.ts";
import { describeDestination } from "../ipvs/address.ts";
import { evaluateQuorum, type QuorumChange, type ServiceRecord } from "./desired-state.ts";
import { SORRY_ID } from "./failover.ts";
import type { FailoverParts, FailoverRunner } from "./failover-runner.ts";
import { announcePanic, applyHealthUpdates, isQuietUpdate } from "./health-weights.ts";
import type { OperationResult } from "./kernel-writer.ts";
import { planOperations } from "./reconcile.ts";
import { serviceKeyId } from "./keys.ts";

const q = JSON.stringify;

/** What the runner works with: the failover runner's parts, and `closed`, which tells whether Gorb shut down. */
export interface HealthRunnerParts extends Pick<FailoverParts, "desired" | "writer" | "events" | "log" | "transactions" | "schedule"> {
  readonly policy: WeightPolicy;
  readonly failover: FailoverRunner;
  readonly closed: () => boolean;
}

/** See the module comment. */
export class HealthRunner {
  readonly #p: HealthRunnerParts;
  readonly #pending: HealthUpdate[] = [];
  /** Ids of the updates in #pending: a later update of one of them is never quiet. */
  readonly #pendingIds = new Set<string>();
  #queued = false;
  /** Ids whose last check was a check error, logged once (see the module comment). */
  readonly #erring = new Set<string>();

  constructor(parts: HealthRunnerParts) {
    this.#p = parts;
  }

  /** A check that could not run: logged when it starts a run of them (see the module comment). */
  readonly onCheckError = (id: string, message: string): void => {
    if (this.#erring.has(id) || this.#p.closed()) return;
    const { desired } = this.#p;
    const entry = desired.watched(id);
    if (entry === undefined) return;
    // Backends removed while their checks erred leave the set here (a run of errors starting is rare).
    for (const other of this.#erring) if (desired.watched(other) === undefined) this.#erring.delete(other);
    this.#erring.add(id);
    this.#p.log.warn(
      `backend ${q(entry.backend.id)} of service ${q(entry.service.id)}: ${message}; its health check cannot run, so its health and weight ` +
        `do not follow the backend until it can`,
    );
  };

  /** A health update: queue it; one drain handles every update queued meanwhile, as one batch. */
  readonly onUpdate = (update: HealthUpdate): void => {
    const { desired, writer, policy } = this.#p;
    if (this.#erring.size > 0 && this.#erring.delete(update.id)) {
      const entry = desired.watched(update.id);
      if (entry !== undefined) this.#p.log.info(`backend ${q(entry.backend.id)} of service ${q(entry.service.id)}: its health check runs again`);
    }
    if (!this.#pendingIds.has(update.id) && isQuietUpdate(desired, writer.view, update, policy)) return;
    this.#pendingIds.add(update.id);
    this.#pending.push(update);
    if (this.#queued) return;
    this.#queued = true;
    this.#p.schedule(() => this.#drain(), "health update");
  };

  /**
   * Entering sorry mode holds every backend at 0, which is safe only once the sorry server serves: a batch goes on
   * past a failed operation, so its add runs first, alone. A service whose sorry server the kernel refuses stays up
   * (its backends keep their weights) and is evaluated again at its backends' next check, quiet or not. The
   * services refused.
   */
  async #addSorryServers(changes: readonly QuorumChange[]): Promise<Set<ServiceRecord>> {
    const refused = new Set<ServiceRecord>();
    const entering = changes.filter((c) => c.sorry);
    if (entering.length === 0) return refused;
    const { desired, writer, log } = this.#p;
    const wanted = entering.map((c) => {
      const all = desired.wanted(c.service);
      // A service the kernel lacks is put back whole (./tx.ts, wantedFor).
      if (!writer.view.has(serviceKeyId(c.service.config.key))) return all;
      return { ...all, backends: all.backends.filter((b) => b.id === SORRY_ID), complete: false };
    });
    for (const r of await writer.run(planOperations(wanted, writer.view))) {
      if (r.error === null) continue;
      const service = entering.find((c) => c.service.id === r.operation.service)?.service;
      if (service === undefined || refused.has(service)) continue;
      refused.add(service);
      service.quorumUp = true;
      service.sorryRetry = true;
      const op = r.operation.op;
      const where = "destination" in op ? ` (${describeDestination(op.destination)})` : "";
      log.error(`cannot add the sorry server of service ${q(service.id)}${where}: ${r.error.message}; the service stays up with its backends until a check tries again`);
    }
    return refused;
  }

  /**
   * Leaving sorry mode gives the backends their weights back before the sorry server goes, which is safe only once
   * the kernel took them: a batch goes on past a failed operation, so the sorry server is deleted afterwards, alone,
   * for the services whose writes all worked. A service with a write the kernel refused stays down (the sorry
   * server keeps serving, its backends go back to 0) and is evaluated again at its backends' next check, quiet or
   * not. The services refused.
   */
  async #removeSorryServers(leaving: ReadonlySet<ServiceRecord>, results: readonly OperationResult[]): Promise<Set<ServiceRecord>> {
    const refused = new Set<ServiceRecord>();
    if (leaving.size === 0) return refused;
    const { desired, writer, log } = this.#p;
    for (const r of results) {
      const service = desired.service(r.operation.service);
      if (r.error === null || service === undefined || !leaving.has(service) || refused.has(service)) continue;
      refused.add(service);
      service.quorumUp = false;
      service.sorryRetry = true;
      log.error(`service ${q(service.id)} keeps its sorry server: the kernel refused ${r.operation.reason} (${r.error.message}); its backends' next check tries again`);
    }
    const wanted = [...leaving].map((service) => {
      const all = desired.wanted(service);
      // Refused: written whole again (the weights that were taken go back to 0); else only the sorry server's delete.
      return refused.has(service) ? all : { ...all, backends: all.backends.filter((b) => b.id === SORRY_ID), complete: false };
    });
    const written = await writer.run(planOperations(wanted, writer.view));
    // The weights written back to 0 are changes too: published after the ones they undo.
    this.#p.transactions().weightEvents(written);
    for (const r of written) {
      if (r.error !== null) log.error(`service ${q(r.operation.service)}: cannot write ${r.operation.reason}: ${r.error.message}`);
    }
    return refused;
  }

  async #drain(): Promise<void> {
    this.#queued = false;
    const updates = this.#pending.splice(0);
    this.#pendingIds.clear();
    if (this.#p.closed()) return;
    const { desired, writer, policy, events, log, failover } = this.#p;
    const step = applyHealthUpdates(desired, updates, policy);
    for (const t of step.transitions) {
      // A first "up" (a new backend passing its first check) is routine: debug, so a bulk load logs nothing per
      // backend; going down is a warning, coming back up is news.
      const how = t.to.state === "down" ? "warn" : t.from.state === "unknown" ? "debug" : "info";
      log[how](`backend ${q(t.backend.id)} of service ${q(t.service.id)} is ${t.to.state}` + (t.to.message === "" ? "" : `: ${t.to.message}`));
      events.publish("backend.health", { service: t.service.id, backend: t.backend.id, from: t.from.state, to: t.to.state, message: t.to.message });
    }
    for (const p of step.panics) announcePanic(p, log, events);
    const now = failover.now();
    // A backend back up ramps up from a drained weight; one panic mode kept at its weight while down serves on as it was.
    for (const t of step.transitions) if (t.from.state === "down" && t.to.state === "up" && !t.wasServing) failover.slowStart.start(t.service, t.backend, now);
    const quorumChanges: QuorumChange[] = [];
    for (const service of step.touched.keys()) {
      if (service.sorryRetry === true) service.sorryRetry = false;
      const change = evaluateQuorum(service);
      if (change !== null) quorumChanges.push(change);
    }
    const refused = await this.#addSorryServers(quorumChanges);
    const flipped = new Set(quorumChanges.map((c) => c.service).filter((service) => !refused.has(service)));
    // Leaving sorry mode: the sorry server stays until the backends' weights are written (#removeSorryServers).
    const leaving = new Set(quorumChanges.filter((c) => c.up && c.service.spec.sorryServer !== null).map((c) => c.service));
    // A flipped service is written whole: the sorry server and every weight change together.
    const wanted = [...step.touched].map(([service, ids]) => {
      // A service the kernel lacks (lost behind gorb's back, a reconcile refused) is put back whole, not with the
      // backends of this update alone (./tx.ts, wantedFor).
      if (!flipped.has(service)) return writer.view.has(serviceKeyId(service.config.key)) ? desired.wanted(service, ids) : desired.wanted(service);
      const all = desired.wanted(service);
      return leaving.has(service) ? { ...all, backends: all.backends.filter((b) => b.id !== SORRY_ID), complete: false } : all;
    });
    const results = await writer.run(planOperations(wanted, writer.view));
    this.#p.transactions().weightEvents(results);
    for (const service of await this.#removeSorryServers(leaving, results)) refused.add(service);
    for (const change of quorumChanges) if (!refused.has(change.service)) failover.quorumChanged(change);
    for (const r of results) {
      if (r.error === null) continue;
      const op = r.operation.op;
      const weight = "destination" in op && "weight" in op.destination ? op.destination.weight : "?";
      log.error(`cannot set the weight of backend ${q(r.operation.backend ?? "")} of service ${q(r.operation.service)} to ${weight}: ${String(r.error)}`);
    }
  }
}
