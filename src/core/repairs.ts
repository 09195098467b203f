/**
 * Repairs: what a reconcile (periodic, on demand, or restore's) does with the operations the reconciler planned.
 * They run as one kernel batch; each one is logged, reported and published ("reconcile.repair"), and counted
 * for /metrics; with the caller's Pacer (a restore's, a reconcile's), in slices. gorb's own probe services (checks
 * through the VIP) are repaired the same way but only logged at debug: they are not services, so they are never
 * reported or published.
 */
import type { Logger } from "../log.ts";
import type { Pacer } from "../pacer.ts";
import type { EventBus } from "./events.ts";
import type { KernelWriter, OperationResult } from "./kernel-writer.ts";
import { PROBE_SERVICE_ID } from "./probe-services.ts";
import type { Operation } from "./reconcile.ts";
import type { Transactions } from "./transactions.ts";
import { IpvsError } from "../ipvs/errors.ts";
import { serviceKeyId } from "./keys.ts";

/** One repair of a reconcile, as reported. */
export interface RepairReport {
  readonly service: string;
  readonly backend: string | null;
  readonly reason: string;
  readonly status: "done" | "failed";
  readonly error?: string;
}

/** What reconcile() did. */
export interface ReconcileReport {
  /** Every difference found, repaired or not; [] when the kernel matched. */
  readonly repairs: readonly RepairReport[];
}

/** Totals of every reconcile (restore included) since start, for /metrics. */
export interface ReconcileCounters {
  readonly runs: number;
  readonly repairs: number;
  readonly failures: number;
}

const q = JSON.stringify;

/**
 * The errors of a write planned from a table that changed before it was sent: the service is gone (ESRCH) or
 * there again (EEXIST), the destination gone (ENOENT). The kernel dumps the services and then their destinations,
 * and a service deleted in between (ipvsadm -C) dumps none, without an error: the plan adds them to a service
 * that is no longer there.
 */
const RACED = new Set(["ESRCH", "EEXIST", "ENOENT"]);

function raced(error: Error | null): boolean {
  return error instanceof IpvsError && RACED.has(error.code);
}

/**
 * The results that failed as if the table changed since it was read. A destination of a service whose add the
 * kernel refused in the same batch (ENOMEM, a missing scheduler module: not an error of RACED) fails with ESRCH
 * because of that refusal, not a change of the table: reading it again would only try the refused add once more.
 */
function racedResults(results: readonly OperationResult[]): Set<OperationResult> {
  const refused = new Set<string>();
  for (const r of results) if (r.error !== null && !raced(r.error) && r.operation.op.op === "add-service") refused.add(serviceKeyId(r.operation.op.service.key));
  const out = new Set<OperationResult>();
  for (const r of results) {
    if (!raced(r.error)) continue;
    const op = r.operation.op;
    if (op.op !== "add-service" && op.op !== "update-service" && op.op !== "delete-service" && refused.has(serviceKeyId(op.service))) continue;
    out.add(r);
  }
  return out;
}

/** What Repairs.run did: the repairs reported, and whether some were left for a fresh read of the table. */
export interface RepairRun {
  readonly reports: RepairReport[];
  /** True when `readAgain` was asked and some repair failed as if the table changed since it was read. */
  readonly raced: boolean;
}

/** Runs repairs and keeps their totals. */
export class Repairs {
  #counters: ReconcileCounters = { runs: 0, repairs: 0, failures: 0 };

  constructor(
    private readonly deps: {
      readonly writer: KernelWriter;
      readonly transactions: () => Transactions;
      readonly events: EventBus;
      readonly log: Logger;
    },
  ) {}

  /** Totals since start. */
  get counters(): ReconcileCounters {
    return this.#counters;
  }

  /**
   * Run repairs in one batch (three when a sorry server comes or goes, in the order Transactions.runSorrySafe
   * keeps: a refused sorry server leaves its backends serving); log, count and publish each one. With `readAgain`,
   * a repair that failed as if the table changed since it was read (see RACED) is neither reported nor counted:
   * the caller reads the table again and plans once more (`raced`), and the second run's failures count. With a
   * `pacer`, every pass over the results (recording them in gorb's view, the events, the reports) takes a turn of the
   * event loop whenever it says so: a restore into an empty kernel repairs every service and backend.
   */
  async run(operations: readonly Operation[], options: { readonly readAgain?: boolean; readonly pacer?: Pacer } = {}): Promise<RepairRun> {
    const { writer, log } = this.deps;
    const pacer = options.pacer ?? null;
    let { results } = await this.deps.transactions().runSorrySafe(operations, (ops) => writer.run(ops, pacer));
    const racedOnes = racedResults(results);
    const left = options.readAgain === true ? results.filter((r) => r.operation.service !== PROBE_SERVICE_ID && racedOnes.has(r)).length : 0;
    if (left > 0) {
      log.info(`reconcile: the IPVS table changed while it was read (${left} repair${left === 1 ? "" : "s"} no longer applied); reading it again`);
      results = results.filter((r) => !racedOnes.has(r));
    }
    const services = results.filter((r) => r.operation.service !== PROBE_SERVICE_ID);
    await this.deps.transactions().weightEventsPaced(services, pacer);
    for (const r of results) {
      if (r.operation.service !== PROBE_SERVICE_ID) continue;
      if (r.error === null) log.debug(`reconcile: probe service: ${r.operation.reason}; repaired`);
      else log.error(`reconcile: probe service: ${r.operation.reason}; cannot repair: ${r.error.message}`);
    }
    const reports: RepairReport[] = [];
    for (const r of services) {
      if (pacer?.due() === true) await pacer.turn();
      reports.push(this.#report(r));
    }
    const failed = reports.filter((r) => r.status === "failed").length;
    this.#counters = {
      runs: this.#counters.runs + (left > 0 ? 0 : 1),
      repairs: this.#counters.repairs + reports.length - failed,
      failures: this.#counters.failures + failed,
    };
    return { reports, raced: left > 0 };
  }

  /** The report of one repair of a service, logged and published. */
  #report(r: OperationResult): RepairReport {
    const { service, backend, reason } = r.operation;
    const where = backend === null ? `service ${q(service)}` : `backend ${q(backend)} of service ${q(service)}`;
    const report: RepairReport =
      r.error === null ? { service, backend, reason, status: "done" } : { service, backend, reason, status: "failed", error: r.error.message };
    if (r.error === null) this.deps.log.warn(`reconcile: ${where}: ${reason}; repaired`);
    else this.deps.log.error(`reconcile: ${where}: ${reason}; cannot repair: ${r.error.message}`);
    this.deps.events.publish("reconcile.repair", report);
    return report;
  }

  /** VIP addresses a reconcile put back (or could not) count as repairs (and failures) too. */
  countVips(vips: { readonly restored: number; readonly failed: number }): void {
    if (vips.restored + vips.failed === 0) return;
    this.#counters = {
      ...this.#counters,
      repairs: this.#counters.repairs + vips.restored,
      failures: this.#counters.failures + vips.failed,
    };
  }
}
