/**
 * The gradual-restore weight policy, as a pure state transition (no timers, no I/O). The core feeds it every
 * HealthUpdate of a backend and applies the resulting effective weight to IPVS when it changes.
 *
 * Rules, in order:
 * 1. A `none` pulse never changes the weight: effective = configured.
 * 2. Down: effective = 0 at once, and the backend is "recovering" from then on. This also applies to a backend
 *    that fails again while recovering (the original kept its partial weight then: bug §9.2.2).
 * 3. Unknown (no result yet, or the probe was just changed): a recovering backend keeps its current weight
 *    (never above the configured one); any other backend gets the configured weight.
 * 4. Up and not recovering: effective = configured.
 * 5. Up and recovering: effective = configured × f, rounded down but at least 1, where
 *      f = max(health, consecutiveOk / recoverySteps)
 *    and recovery ends (effective = configured) as soon as f reaches 1.
 *    - The health term is the original's rule (stashed weight × health), so a new backend whose first check
 *      failed climbs 50, 66, 75, 80, ... exactly as before; it is computed as configured × samplesOk / samples
 *      in integers, so there are no float surprises such as 100 × 0.29 = 28.999....
 *    - The streak term bounds recovery: after `recoverySteps` consecutive passes (default 10) the backend is
 *      back at full weight even if older failures still sit in the 100-result window. The original needed
 *      100 passes after the last failure (100 minutes at the default interval). recoverySteps = 100 gives the
 *      original's timing back.
 *    - "At least 1" fixes small weights: the original truncated weight 1 × 0.99 to 0 and left such a backend
 *      without traffic until health was exactly 1.
 * 6. A configured weight of 0 (drained) stays 0 in every case.
 */
import type { HealthStatus } from "./target-state.ts";
import type { PulseType } from "./options.ts";

/** WeightState is what the policy remembers per backend between updates. */
export interface WeightState {
  /** The weight IPVS should have now. */
  readonly effective: number;
  /** True from a Down until the weight is fully restored. */
  readonly recovering: boolean;
}

/** WeightInput is one step's input: configuration plus the health facts of the latest update. */
export interface WeightInput {
  /** The weight the user configured (PATCH changes it; the policy never does). */
  readonly configured: number;
  readonly pulseType: PulseType;
  readonly status: HealthStatus;
  /** Passed results in the health window. */
  readonly samplesOk: number;
  /** Results in the health window. */
  readonly samples: number;
  /** Consecutive passed results up to now. */
  readonly consecutiveOk: number;
}

/** WeightPolicy tunes the recovery ramp. */
export interface WeightPolicy {
  /** Consecutive passes after which a recovering backend is back at full weight; default 10. */
  readonly recoverySteps: number;
}

/** DEFAULT_WEIGHT_POLICY: full weight after at most 10 consecutive passes. */
export const DEFAULT_WEIGHT_POLICY: WeightPolicy = { recoverySteps: 10 };

/** initialWeightState is the state of a backend just added: configured weight, not recovering. */
export function initialWeightState(configured: number): WeightState {
  return { effective: Math.max(0, configured), recovering: false };
}

/** nextWeight computes the new weight state from the previous one and the latest health facts. */
export function nextWeight(previous: WeightState, input: WeightInput, policy: WeightPolicy = DEFAULT_WEIGHT_POLICY): WeightState {
  const configured = Math.max(0, Math.trunc(input.configured));
  if (input.pulseType === "none") return { effective: configured, recovering: false };
  if (input.status === "down") return { effective: 0, recovering: true };
  if (input.status === "unknown") {
    return previous.recovering ? { effective: Math.min(previous.effective, configured), recovering: true } : { effective: configured, recovering: false };
  }
  if (!previous.recovering || configured === 0) return { effective: configured, recovering: false };

  const steps = Math.max(1, Math.trunc(policy.recoverySteps));
  const streak = Math.max(0, input.consecutiveOk);
  const fullByHealth = input.samples > 0 && input.samplesOk >= input.samples;
  if (fullByHealth || streak >= steps) return { effective: configured, recovering: false };

  // f = max(ok/samples, streak/steps); floor(configured × f) without floats, on each term separately.
  const byHealth = input.samples > 0 ? Math.floor((configured * input.samplesOk) / input.samples) : 0;
  const byStreak = Math.floor((configured * streak) / steps);
  const effective = Math.max(1, byHealth, byStreak);
  return effective >= configured ? { effective: configured, recovering: false } : { effective, recovering: true };
}
