/**
 * The health seam as core sees it. Core asks a set of health checks to watch each backend with its pulse
 * options, receives an update after every check, and turns each into an effective weight through the pure
 * weight policy of src/health/weight.ts (`nextWeight`). Core never runs a check itself.
 *
 * `HealthChecks` is the smallest interface src/health/monitor.ts's HealthMonitor satisfies; because that
 * monitor takes its listener in its constructor, Gorb is given a factory:
 *   health: (onUpdate) => new HealthMonitor({ onUpdate })
 */
import type { HealthBrief, HealthSnapshot, HealthUpdate } from "../health/target-state.ts";
import type { ProbeTarget, PulseOptions } from "../health/options.ts";
import { NO_CHECK_MESSAGE } from "../health/checkers/none.ts";

/** What core reads of a target's live state (for GET: uptime grows between checks). */
export type HealthView = Pick<
  HealthSnapshot,
  "status" | "health" | "uptimeSeconds" | "lastCheck" | "samples" | "samplesOk" | "consecutiveOk"
>;

/** HealthChecks runs the checks of many targets, each under an id core chooses. */
export interface HealthChecks {
  /** Start checking a target. */
  add(id: string, backend: ProbeTarget, options: PulseOptions): void;
  /** Change a target's options; when what is probed changes, its history starts over ("unknown"). */
  update(id: string, backend: ProbeTarget, options: PulseOptions): void;
  /** Stop checking a target; no update for it arrives afterwards. */
  remove(id: string): unknown;
  /** A target's live state, or undefined for an unknown id. */
  snapshot(id: string): HealthView | undefined;
  /** What a status table shows of a target (status, health, last message), or undefined for an unknown id. */
  brief(id: string): HealthBrief | undefined;
  /** Stop every check for good. */
  stop(): void;
}

/**
 * Builds the HealthChecks Gorb uses, wired to Gorb's listeners: `onUpdate` after every check, `onCheckError` for a
 * check that could not run for a local reason (its message, "check error: ..."), which is no update.
 */
export type HealthChecksFactory = (onUpdate: (update: HealthUpdate) => void, onCheckError: (id: string, message: string) => void) => HealthChecks;

/** The health of one backend as core records it. */
export interface BackendHealth {
  /** "unknown" until the first check completes. */
  readonly state: "up" | "down" | "unknown";
  /** Fraction 0..1 of recent checks that passed (0 before the first check). */
  readonly health: number;
  /** Whole seconds the backend has been continuously up (0 when down or unknown). */
  readonly uptimeSeconds: number;
  /** Duration of the last check in ms, or null before the first one. */
  readonly lastCheckMs: number | null;
  /** What the last check said ("connection refused", "HTTP 503"), or "" before the first one. */
  readonly message: string;
  /** Results in the health window, how many passed, and the current streak of passes (weight policy input). */
  readonly samples: number;
  readonly samplesOk: number;
  readonly consecutiveOk: number;
}

/** The health of a backend that has not been checked yet. */
const UNKNOWN_HEALTH: BackendHealth = Object.freeze({
  state: "unknown",
  health: 0,
  uptimeSeconds: 0,
  lastCheckMs: null,
  message: "",
  samples: 0,
  samplesOk: 0,
  consecutiveOk: 0,
});

/**
 * The health of a backend with pulse `none` from its creation: it is never checked, so it is up at once, as the
 * monitor's one check of it reports (one pass, health 1). The monitor runs that check within `add`, before the
 * target is attached, so it sends no update: no job on the lock, no log line and no event for each of 10,000
 * backends loaded at once.
 */
const UNCHECKED_HEALTH: BackendHealth = Object.freeze({
  state: "up",
  health: 1,
  uptimeSeconds: 0,
  lastCheckMs: 0,
  message: NO_CHECK_MESSAGE,
  samples: 1,
  samplesOk: 1,
  consecutiveOk: 1,
});

/** The health a backend starts with (created, restored, or given a new probe): up for `none`, else unknown. */
export function startingHealth(pulse: Pick<PulseOptions, "type">): BackendHealth {
  return pulse.type === "none" ? UNCHECKED_HEALTH : UNKNOWN_HEALTH;
}

/** Core's record of a monitor's update or snapshot. */
export function backendHealthOf(view: HealthView): BackendHealth {
  return {
    state: view.status,
    health: view.health,
    uptimeSeconds: view.uptimeSeconds,
    lastCheckMs: view.lastCheck?.durationMs ?? null,
    message: view.lastCheck?.message ?? "",
    samples: view.samples,
    samplesOk: view.samplesOk,
    consecutiveOk: view.consecutiveOk,
  };
}
