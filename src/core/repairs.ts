/**
 * Repairs: what a reconcile (periodic, on demand, or restore's) does with the operations the reconciler planned.
 * They run as one kernel batch; each one is logged, reported and published ("reconcile.repair"), and counted
 * for /metrics. gorb's own probe services (checks through the VIP) are repaired the same way but only logged at
 * debug: they are not services, so they are never reported or published.
 */
import type { Logger } from "../log.ts";
import type { EventBus } from "./events.ts";
import type { KernelWriter } from "./kernel-writer.ts";
import { PROBE_SERVICE_ID } from "./probe-services.ts";
import type { Operation } from "./reconcile.ts";
import type { Transactions } from "./transactions.ts";

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

  /** Run repairs in one batch; log, count and publish each one. */
  async run(operations: readonly Operation[]): Promise<RepairReport[]> {
    const { writer, log, events } = this.deps;
    const results = await writer.run(operations);
    this.deps.transactions().weightEvents(results.filter((r) => r.operation.service !== PROBE_SERVICE_ID));
    for (const r of results) {
      if (r.operation.service !== PROBE_SERVICE_ID) continue;
      if (r.error === null) log.debug(`reconcile: probe service: ${r.operation.reason}; repaired`);
      else log.error(`reconcile: probe service: ${r.operation.reason}; cannot repair: ${r.error.message}`);
    }
    const reports = results
      .filter((r) => r.operation.service !== PROBE_SERVICE_ID)
      .map((r): RepairReport => {
        const { service, backend, reason } = r.operation;
        const where = backend === null ? `service ${q(service)}` : `backend ${q(backend)} of service ${q(service)}`;
        const report: RepairReport =
          r.error === null ? { service, backend, reason, status: "done" } : { service, backend, reason, status: "failed", error: r.error.message };
        if (r.error === null) log.warn(`reconcile: ${where}: ${reason}; repaired`);
        else log.error(`reconcile: ${where}: ${reason}; cannot repair: ${r.error.message}`);
        events.publish("reconcile.repair", report);
        return report;
      });
    const failed = reports.filter((r) => r.status === "failed").length;
    this.#counters = {
      runs: this.#counters.runs + 1,
      repairs: this.#counters.repairs + reports.length - failed,
      failures: this.#counters.failures + failed,
    };
    return reports;
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
