/**
 * The effects of failover (./failover.ts, ./slow-start.ts) that need I/O, kept out of the Gorb facade:
 *   - at restore, a service whose sorry server the kernel serves starts down (it was in sorry mode), and so does
 *     one without a sorry server whose backends the kernel serves at a weight above 0 are too few for its quorum
 *     (the others were drained by failed checks: it was down), so its first failed checks run no second
 *     quorum_down hook;
 *   - a quorum change is logged, published as `service.quorum` and runs the service's hook (through the runner
 *     the daemon gives, which never blocks);
 *   - slow-start ramps move on one timer about once a second (TICK_MS) while any is in progress; each step is a
 *     job on Gorb's lock that writes the backends whose cap changed as one reconciler batch.
 */
import type { MonitorClock } from "../health/clock.ts";
import { isFwmarkKey } from "../ipvs/types.ts";
import type { Logger } from "../log.ts";
import type { Pacer } from "../pacer.ts";
import { evaluateQuorum, type DesiredState, type QuorumChange, type ServiceRecord } from "./desired-state.ts";
import { overrideWeight } from "./drain.ts";
import { serviceKeyId } from "./keys.ts";
import type { EventBus } from "./events.ts";
import { hookEnvironment, quorumRule, sorryKeyId, type QuorumHookRunner } from "./failover.ts";
import type { KernelWriter } from "./kernel-writer.ts";
import { planOperations } from "./reconcile.ts";
import { SlowStart, TICK_MS } from "./slow-start.ts";
import type { Transactions } from "./transactions.ts";
import type { ScheduleJob } from "./work-queue.ts";

const q = JSON.stringify;

/** What the runner works with; `schedule` queues a job on Gorb's lock. */
export interface FailoverParts {
  readonly clock: MonitorClock;
  readonly hooks: QuorumHookRunner | null;
  readonly log: Logger;
  readonly events: EventBus;
  readonly desired: DesiredState;
  readonly writer: KernelWriter;
  readonly transactions: () => Transactions;
  readonly schedule: ScheduleJob;
}

/** See the module comment. */
export class FailoverRunner {
  readonly slowStart = new SlowStart();
  readonly #p: FailoverParts;
  #timer: unknown = null;
  #stopped = false;

  constructor(parts: FailoverParts) {
    this.#p = parts;
  }

  /** The clock's now (for ramps started by edits). */
  now(): number {
    return this.#p.clock.now();
  }

  /**
   * At restore: a service whose sorry server the kernel serves (weight > 0) was in sorry mode and stays there
   * until its backends prove themselves again; every service is then evaluated, with a turn of the event loop
   * whenever `pacer` says so. The changes, to publish once the kernel matches.
   */
  async restoreStates(pacer: Pacer): Promise<QuorumChange[]> {
    const { desired, writer } = this.#p;
    const changes: QuorumChange[] = [];
    for (const record of desired.services()) {
      if (pacer.due()) await pacer.turn();
      const id = sorryKeyId(record.spec, record.config.key.family);
      const dest = id === null ? undefined : writer.view.get(serviceKeyId(record.config.key))?.dests.get(id);
      if (dest !== undefined && dest.weight > 0) record.quorumUp = false;
      else if (record.spec.sorryServer === null && drainedBelowQuorum(record)) record.quorumUp = false;
      const change = evaluateQuorum(record);
      if (change !== null) changes.push(change);
    }
    return changes;
  }

  /** A service's quorum state changed: log it, publish service.quorum and run its hook. */
  quorumChanged(change: QuorumChange): void {
    const { service } = change;
    const { log } = this.#p;
    const text = `${change.healthy} healthy backend(s), quorum ${change.quorum}, hysteresis ${change.hysteresis}`;
    if (change.up) log.info(`service ${q(service.id)} is up again (${text})`);
    else log.warn(`service ${q(service.id)} is down (${text})` + (change.sorry ? "; its sorry server serves" : ""));
    this.#p.events.publish("service.quorum", {
      service: service.id,
      up: change.up,
      healthy: change.healthy,
      quorum: change.quorum,
      hysteresis: change.hysteresis,
      sorry: change.sorry,
    });
    const program = change.up ? service.spec.quorumUp : service.spec.quorumDown;
    if (program === "") return;
    const hooks = this.#p.hooks;
    if (hooks === null) {
      log.info(`service ${q(service.id)}: no hook runner; not running ${program}`);
      return;
    }
    const key = service.config.key;
    const fwmark = isFwmarkKey(key);
    hooks(
      program,
      hookEnvironment({
        ...change,
        service: service.id,
        address: fwmark ? "" : key.address,
        port: fwmark ? 0 : key.port,
        protocol: fwmark ? "" : key.protocol,
        fwmark: fwmark ? key.fwmark : 0,
      }),
    );
  }

  /** Arm the slow-start timer while a ramp is in progress (called after every job). */
  arm(): void {
    if (this.#timer !== null || this.#stopped || this.slowStart.size === 0) return;
    this.#timer = this.#p.clock.setTimer(() => {
      this.#timer = null;
      this.#p.schedule(() => this.#step(), "slow start");
    }, TICK_MS);
  }

  /** Stop the timer for good (shutdown). */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) this.#p.clock.clearTimer(this.#timer);
    this.#timer = null;
  }

  /** One slow-start step: every ramp moves to now; the backends whose cap changed are written as one batch. */
  async #step(): Promise<void> {
    if (this.#stopped) return;
    const { desired, writer } = this.#p;
    const touched = this.slowStart.tick(this.#p.clock.now(), (s, b) => desired.service(s.id) === s && s.backends.get(b.id) === b);
    if (touched.size === 0) return;
    const wanted = [...touched].map(([service, ramps]) => desired.wanted(service, ramps.keys()));
    const results = await writer.run(planOperations(wanted, writer.view));
    this.#p.transactions().weightEvents(results);
    for (const r of results) {
      if (r.error === null) continue;
      this.#p.log.error(`slow start: cannot write ${r.operation.reason}: ${r.error.message}; the next step tries again`);
      // The kernel keeps the step's previous weight: so does the desired state, and the ramp goes on from there.
      const service = desired.service(r.operation.service);
      const backend = service?.backends.get(r.operation.backend ?? "");
      const before = service === undefined ? undefined : touched.get(service)?.get(r.operation.backend ?? "");
      if (service !== undefined && backend !== undefined && before !== undefined) this.slowStart.undo(service, backend, before);
    }
  }
}

/**
 * At restore, for a service with a quorum rule and no sorry server: its backends that count (configured weight
 * above 0, neither in maintenance nor drained) and that the kernel serves at a weight above 0 (restored from it;
 * pulse none: always) are fewer than quorum - hysteresis. The others were drained by failed checks before the
 * restart, so the service was down.
 */
function drainedBelowQuorum(record: ServiceRecord): boolean {
  const rule = quorumRule(record.spec);
  if (rule === null) return false;
  let serving = 0;
  for (const b of record.backends.values()) {
    if (overrideWeight(b.spec, b.drain, b.spec.weight) <= 0) continue;
    if (b.spec.pulse.type === "none" || b.weight.effective > 0) serving++;
  }
  return serving < rule.quorum - rule.hysteresis;
}
