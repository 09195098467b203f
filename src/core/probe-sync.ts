/**
 * The probe services of checks through the VIP (./probe-services.ts, ./probe-checks.ts), kept written: when the
 * set of backends checked through the VIP changes, one job on Gorb's lock (one for many changes queued meanwhile)
 * plans the probe services against the kernel and writes the difference as one reconciler batch.
 */
import type { Logger } from "../log.ts";
import type { KernelWriter } from "./kernel-writer.ts";
import type { ProbeChecks } from "./probe-checks.ts";
import { wantedProbeServices } from "./probe-services.ts";
import { planOperations } from "./reconcile.ts";
import type { ScheduleJob } from "./work-queue.ts";

/** See the module comment. `schedule` queues a job on Gorb's lock; `closed` tells whether Gorb shut down. */
export class ProbeSync {
  #queued = false;

  constructor(
    private readonly parts: {
      readonly probes: () => ProbeChecks;
      readonly writer: KernelWriter;
      readonly log: Logger;
      readonly schedule: ScheduleJob;
      readonly closed: () => boolean;
    },
  ) {}

  /** The set changed: write the probe services (soon, once for every change until then). */
  readonly queue = (): void => {
    if (this.#queued) return;
    this.#queued = true;
    this.parts.schedule(() => this.#sync(), "writing the probe services");
  };

  async #sync(): Promise<void> {
    this.#queued = false;
    const { writer, log } = this.parts;
    if (this.parts.closed()) return;
    const probes = this.parts.probes();
    const wanted = wantedProbeServices(probes.routes(), writer.view, probes.range);
    const results = await writer.run(planOperations(wanted, writer.view));
    for (const r of results) {
      if (r.error !== null) log.error(`probe service: ${r.operation.reason}: ${r.error.message}`);
      else log.debug(`probe service: ${r.operation.reason}; done`);
    }
  }
}
