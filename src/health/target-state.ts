/**
 * What the health monitor (./monitor.ts) reports of a target: the update after every check, the snapshot GET
 * shows, the brief a status table shows, and the monitor's running totals.
 */
import type { CheckResult } from "./checker.ts";
import type { ProbeTarget, PulseOptions } from "./options.ts";

/** HealthStatus is a target's state: unknown before its first result, then up or down. */
export type HealthStatus = "up" | "down" | "unknown";

/** HealthUpdate is emitted after every finished check of a target. */
export interface HealthUpdate {
  readonly id: string;
  readonly status: "up" | "down";
  readonly previousStatus: HealthStatus;
  /** Fraction of passed checks among the last `samples` (at most 100), in [0, 1]. */
  readonly health: number;
  /** Number of results in the window (at most 100). */
  readonly samples: number;
  /** Number of passed results in the window; health = samplesOk / samples, exactly. */
  readonly samplesOk: number;
  /** Whole seconds since the status last became Up; 0 when Down. */
  readonly uptimeSeconds: number;
  readonly lastCheck: CheckResult;
  readonly consecutiveOk: number;
  readonly consecutiveFail: number;
}

/** HealthSnapshot is a target's current state, for GET responses and metrics. */
export interface HealthSnapshot {
  readonly id: string;
  readonly backend: ProbeTarget;
  /** The address actually probed (backend with args.host/args.port applied). */
  readonly probe: ProbeTarget;
  readonly options: PulseOptions;
  readonly status: HealthStatus;
  readonly health: number;
  readonly samples: number;
  readonly samplesOk: number;
  readonly uptimeSeconds: number;
  /** The last check, including a check error (kind "local-error") that changed nothing. */
  readonly lastCheck: CheckResult | null;
  readonly consecutiveOk: number;
  readonly consecutiveFail: number;
  /** Checks finished since the probe was created (or its probe last changed); check errors included. */
  readonly checks: number;
  /** The current wait between check starts: the interval, or longer while backing off. */
  readonly intervalMs: number;
  /** True while a check is running. */
  readonly checking: boolean;
  /** How many targets share this target's probe (1 when it is not shared). */
  readonly sharedBy: number;
}

/** The part of a target's state a status table shows, read without the clock (see HealthMonitor.brief). */
export interface HealthBrief {
  readonly status: HealthStatus;
  readonly health: number;
  /** What the last check said, or "" before the first one. */
  readonly message: string;
}

/** MonitorStats are running totals, for benchmarks and metrics. */
export interface MonitorStats {
  /** Targets (subscribers), as added. */
  readonly targets: number;
  /** Distinct probes run for them (shared probes count once). */
  readonly probes: number;
  /** Probes holding a socket or process (running, or cancelled and not yet closed). */
  readonly inFlight: number;
  readonly queued: number;
  readonly started: number;
  readonly finished: number;
  readonly timedOut: number;
  /** Checks that could not run for a local reason (kind "local-error"). */
  readonly checkErrors: number;
}
