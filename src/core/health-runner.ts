/**
 * Health updates into the kernel: the monitor's update after every check is queued, and one job on Gorb's lock
 * handles every update queued meanwhile as one batch: ./health-weights.ts turns them into desired effective
 * weights (panic threshold), the quorum of each touched service is evaluated, and the reconciler writes what
 * differs as one kernel batch. A check that changes nothing (isQuietUpdate) costs nothing beyond the check.
 * Transitions are logged and published (`backend.health`, `service.panic`); a backend coming back up starts its
 * slow-start ramp.
 */
import type { HealthUpdate } from "../health/target-state.ts";
import type { WeightPolicy } from "../health/weight.ts";
import { evaluateQuorum, type QuorumChange } from "./desired-state.ts";
import type { FailoverParts, FailoverRunner } from "./failover-runner.ts";
import { applyHealthUpdates, isQuietUpdate } from "./health-weights.ts";
import { planOperations } from "./reconcile.ts";

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

  constructor(parts: HealthRunnerParts) {
    this.#p = parts;
  }

  /** A health update: queue it; one drain handles every update queued meanwhile, as one batch. */
  readonly onUpdate = (update: HealthUpdate): void => {
    const { desired, writer, policy } = this.#p;
    if (!this.#pendingIds.has(update.id) && isQuietUpdate(desired, writer.view, update, policy)) return;
    this.#pendingIds.add(update.id);
    this.#pending.push(update);
    if (this.#queued) return;
    this.#queued = true;
    this.#p.schedule(() => this.#drain(), "health update");
  };

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
    for (const p of step.panics) {
      const text = `${p.down} of ${p.total} backends down, threshold ${p.threshold}%`;
      if (p.active) log.warn(`service ${q(p.service.id)} is in panic mode (${text}): keeping the weights of the down backends`);
      else log.info(`service ${q(p.service.id)} left panic mode (${text}): draining the down backends`);
      events.publish("service.panic", { service: p.service.id, down: p.down, total: p.total, threshold: p.threshold, active: p.active });
    }
    const now = failover.now();
    for (const t of step.transitions) if (t.from.state === "down" && t.to.state === "up") failover.slowStart.start(t.service, t.backend, now);
    const quorumChanges: QuorumChange[] = [];
    const wanted = [...step.touched].map(([service, ids]) => {
      const change = evaluateQuorum(service);
      if (change === null) return desired.wanted(service, ids);
      quorumChanges.push(change);
      return desired.wanted(service); // the sorry server and every weight change together
    });
    const results = await writer.run(planOperations(wanted, writer.view));
    this.#p.transactions().weightEvents(results);
    for (const change of quorumChanges) failover.quorumChanged(change);
    for (const r of results) {
      if (r.error === null) continue;
      const op = r.operation.op;
      const weight = "destination" in op && "weight" in op.destination ? op.destination.weight : "?";
      log.error(`cannot set the weight of backend ${q(r.operation.backend ?? "")} of service ${q(r.operation.service)} to ${weight}: ${String(r.error)}`);
    }
  }
}
