/**
 * Slow start (HAProxy's `slowstart`, nginx's `slow_start`): after a backend is created, comes back up after
 * being down, or is given a weight again after a drain to 0, its effective weight ramps up linearly with time
 * over its `slow_start` duration instead of jumping to the configured weight. Off unless the backend sets it.
 *
 *   cap(t) = max(1, floor(configured × (t − start) / duration)) while t − start < duration; no cap afterwards
 *
 * The cap bounds the weight policy's effective weight (./desired-state.ts desiredDestination takes the lower
 * of the two), so a backend that is still proving itself by passes in a row stays as low as the policy says.
 * The ramps are re-evaluated on one timer about once a second (TICK_MS); every tick is one reconciler batch for
 * the backends whose cap changed, so the kernel sees at most one write per backend per step.
 *
 * Pure except for the registry of ramps in progress; the clock is the caller's (src/health/clock.ts).
 */
import type { BackendRecord, Ramp, ServiceRecord } from "./desired-state.ts";

/** How often ramps are re-evaluated. */
export const TICK_MS = 1_000;

/** The weight cap of a ramp at `nowMs`, or null once it is over (or when there is nothing to ramp). */
function rampCap(configured: number, startMs: number, nowMs: number, durationMs: number): number | null {
  if (durationMs <= 0 || configured <= 0) return null;
  const elapsed = Math.max(0, nowMs - startMs);
  if (elapsed >= durationMs) return null;
  return Math.max(1, Math.floor((configured * elapsed) / durationMs));
}

/** The ramps in progress, by backend; see the module comment. */
export class SlowStart {
  readonly #ramping = new Map<BackendRecord, ServiceRecord>();

  /** Backends ramping now. */
  get size(): number {
    return this.#ramping.size;
  }

  /** Start (or restart) a backend's ramp at `nowMs`, when it has a slow start; true when it did. */
  start(service: ServiceRecord, backend: BackendRecord, nowMs: number): boolean {
    const cap = rampCap(backend.spec.weight, nowMs, nowMs, backend.spec.slowStartMs);
    if (cap === null) {
      this.stop(backend);
      return false;
    }
    backend.ramp = { startMs: nowMs, cap };
    this.#ramping.set(backend, service);
    return true;
  }

  /**
   * A ramping backend's weight or slow start changed: its cap follows the new spec at once (from the same start),
   * so the weight does not step when the next tick catches up; a ramp that is over by the new spec ends.
   */
  refresh(backend: BackendRecord, nowMs: number): void {
    const ramp = backend.ramp;
    if (ramp === undefined || ramp === null) return;
    const cap = rampCap(backend.spec.weight, ramp.startMs, nowMs, backend.spec.slowStartMs);
    // Left in the registry: the next tick drops a backend whose ramp is null (and an undo may bring it back).
    backend.ramp = cap === null ? null : { startMs: ramp.startMs, cap };
  }

  /** Forget a backend's ramp (it ends, or the backend is deleted). */
  stop(backend: BackendRecord): void {
    backend.ramp = null;
    this.#ramping.delete(backend);
  }

  /**
   * Move every ramp to `nowMs`: the backends whose cap changed (or ended), by service, each with its ramp before
   * the step (for undo()). `alive` says whether a backend is still in the desired state (a deleted one is dropped
   * silently).
   */
  tick(nowMs: number, alive: (service: ServiceRecord, backend: BackendRecord) => boolean): Map<ServiceRecord, Map<string, Ramp>> {
    const touched = new Map<ServiceRecord, Map<string, Ramp>>();
    for (const [backend, service] of [...this.#ramping]) {
      const before = backend.ramp;
      if (!alive(service, backend) || before === undefined || before === null) {
        this.#ramping.delete(backend);
        continue;
      }
      const cap = rampCap(backend.spec.weight, before.startMs, nowMs, backend.spec.slowStartMs);
      if (cap === before.cap) continue;
      if (cap === null) this.stop(backend);
      else backend.ramp = { startMs: before.startMs, cap };
      let map = touched.get(service);
      if (map === undefined) touched.set(service, (map = new Map()));
      map.set(backend.id, before);
    }
    return touched;
  }

  /**
   * Take a step of tick() back: the backend's ramp is `before` again (the cap the kernel still holds when the step's
   * write was refused), so the next tick writes the step again.
   */
  undo(service: ServiceRecord, backend: BackendRecord, before: Ramp): void {
    backend.ramp = before;
    this.#ramping.set(backend, service);
  }
}
