/**
 * Checks through the VIP, the health side: the HealthChecks core hands to Edits and restore, wrapping the real ones.
 * A backend whose pulse says `"via": "vip"` (validated: a dr or tunnel backend of an address service, same family)
 * gets a mark of gorb's range for as long as it is checked that way; its probe goes to the service's address and
 * port (or args.port; never the backend's own port) with that mark, from the director's address on the route to the backend (a DR backend
 * holds the VIP itself: a probe from the VIP would be answered locally on the backend). Marks are handed out lowest
 * first, so a restart in the same order gets the same marks; the probe services follow (./probe-services.ts), written
 * by the reconciler whenever the set changes (`onChange`) and at every reconcile.
 */
import type { HealthBrief } from "../health/target-state.ts";
import type { ProbeTarget, PulseOptions } from "../health/options.ts";
import { isFwmarkKey } from "../ipvs/types.ts";
import { type DesiredState, desiredDestination } from "./desired-state.ts";
import type { HealthChecks, HealthView } from "./health.ts";
import type { MarkRange } from "./mark-range.ts";
import type { ProbeRoute } from "./probe-services.ts";

/** See the module comment. */
export class ProbeChecks implements HealthChecks {
  readonly #inner: HealthChecks;
  readonly #desired: DesiredState;
  readonly #range: MarkRange;
  readonly #onChange: () => void;
  readonly #onExhausted: (watchId: string) => void;
  readonly #marks = new Map<string, number>();
  readonly #used = new Set<number>();

  constructor(inner: HealthChecks, desired: DesiredState, range: MarkRange, onChange: () => void, onExhausted: (watchId: string) => void) {
    this.#inner = inner;
    this.#desired = desired;
    this.#range = range;
    this.#onChange = onChange;
    this.#onExhausted = onExhausted;
  }

  get range(): MarkRange {
    return this.#range;
  }

  add(id: string, backend: ProbeTarget, options: PulseOptions): void {
    const [target, opts] = this.#route(id, backend, options);
    this.#inner.add(id, target, opts);
  }

  update(id: string, backend: ProbeTarget, options: PulseOptions): void {
    const [target, opts] = this.#route(id, backend, options);
    this.#inner.update(id, target, opts);
  }

  remove(id: string): unknown {
    this.#release(id);
    return this.#inner.remove(id);
  }

  snapshot(id: string): HealthView | undefined {
    return this.#inner.snapshot(id);
  }

  brief(id: string): HealthBrief | undefined {
    return this.#inner.brief(id);
  }

  stop(): void {
    this.#inner.stop();
  }

  /** Every backend checked through the VIP, as the probe services need it (its destination as wanted now). */
  *routes(): Generator<ProbeRoute> {
    for (const [watchId, mark] of this.#marks) {
      const w = this.#desired.watched(watchId);
      if (w === undefined) continue;
      yield { mark, service: w.service.config.key, dest: desiredDestination(w.service, w.backend) };
    }
  }

  #route(id: string, backend: ProbeTarget, options: PulseOptions): [ProbeTarget, PulseOptions] {
    const w = options.via === "vip" ? this.#desired.watched(id) : undefined;
    const key = w?.service.config.key;
    if (w === undefined || key === undefined || isFwmarkKey(key)) {
      this.#release(id);
      return [backend, options];
    }
    let mark = this.#marks.get(id);
    if (mark === undefined) {
      mark = this.#allocate();
      if (mark === undefined) {
        this.#onExhausted(id);
        return [backend, options];
      }
      this.#marks.set(id, mark);
      this.#used.add(mark);
      this.#onChange();
    } else {
      this.#onChange(); // the destination may have changed (method, tunnel)
    }
    // The mark is part of what is probed: two backends of one service never share a probe. The port is the
    // service's, as a client's: IPVS forwards a dr or tunnel packet unchanged, so a port the backend names is never
    // used on that path (args.port still overrides it).
    return [
      { host: key.address, port: key.port, mark, sourceFor: backend.host },
      { ...options, probeKey: JSON.stringify([options.probeKey, mark]) },
    ];
  }

  #allocate(): number | undefined {
    for (let m = this.#range.first; m <= this.#range.last; m++) if (!this.#used.has(m)) return m;
    return undefined;
  }

  #release(id: string): void {
    const mark = this.#marks.get(id);
    if (mark === undefined) return;
    this.#marks.delete(id);
    this.#used.delete(mark);
    this.#onChange();
  }
}
