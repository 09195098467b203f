import { describe, expect, test } from "bun:test";
import { HealthWindow } from "../../../src/health/health-window.ts";
import type { PulseType } from "../../../src/health/options.ts";
import { type WeightInput, type WeightPolicy, type WeightState, initialWeightState, nextWeight } from "../../../src/health/weight.ts";

/**
 * Plays a sequence of check outcomes (rise = fall = 1, window 100, as in the original) through the policy and
 * returns the effective weight after each one. `configured` may change per step (a PATCH).
 */
function play(outcomes: boolean[], configured: number | number[], policy?: WeightPolicy, pulseType: PulseType = "tcp"): number[] {
  const window = new HealthWindow(100);
  let streak = 0;
  const first = Array.isArray(configured) ? (configured[0] ?? 0) : configured;
  let state: WeightState = initialWeightState(first);
  return outcomes.map((ok, i) => {
    window.push(ok);
    streak = ok ? streak + 1 : 0;
    const input: WeightInput = {
      configured: Array.isArray(configured) ? (configured[i] ?? 0) : configured,
      pulseType,
      status: ok ? "up" : "down",
      samplesOk: window.samplesOk,
      samples: window.samples,
      consecutiveOk: streak,
    };
    state = nextWeight(state, input, policy);
    return state.effective;
  });
}

const times = <T>(n: number, v: T): T[] => Array.from({ length: n }, () => v);

describe("the original's ramp (recoverySteps = 100 reproduces its timing)", () => {
  const original = { recoverySteps: 100 };

  test("first check fails, then passes: 0, 50, 66, 75, 80, 83, 85, 87, 88, 90, 90, 91, 92 ...", () => {
    const w = play([false, ...times(100, true)], 100, original);
    expect(w.slice(0, 13)).toEqual([0, 50, 66, 75, 80, 83, 85, 87, 88, 90, 90, 91, 92]);
    // floor(100 k / (k+1)) for the k-th pass: 98 for k = 49..98, 99 at the 99th pass, 100 at the 100th.
    for (let k = 1; k < 100; k++) expect(w[k]).toBe(Math.floor((100 * k) / (k + 1)));
    expect(w.slice(49, 99)).toEqual(times(50, 98));
    expect(w[99]).toBe(99);
    expect(w[100]).toBe(100);
  });

  test("a long-lived backend with one failure comes back at 99 at once", () => {
    const w = play([...times(150, true), false, true, true], 100, original);
    expect(w.slice(149)).toEqual([100, 0, 99, 99]);
  });
});

describe("default policy: health ramp, bounded to 10 consecutive passes", () => {
  const table: { name: string; outcomes: boolean[]; configured: number | number[]; want: number[] }[] = [
    {
      name: "first check fails: the original's start, then full weight at the 10th pass",
      outcomes: [false, ...times(11, true)],
      configured: 100,
      want: [0, 50, 66, 75, 80, 83, 85, 87, 88, 90, 100, 100],
    },
    {
      name: "after a long outage the streak term dominates: 10, 20, ... 100",
      outcomes: [...times(100, false), ...times(11, true)],
      configured: 100,
      want: [...times(100, 0), 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 100],
    },
    {
      name: "bug fix: a failure during recovery drops to 0 again (the original kept the partial weight)",
      outcomes: [false, true, true, false, true],
      configured: 100,
      // After the second failure: health 3/5 = 60 beats the restarted streak 1/10.
      want: [0, 50, 66, 0, 60],
    },
    {
      name: "bug fix: weight 1 gets 1 at the first pass (the original kept 0 until health was exactly 1)",
      outcomes: [false, true, true],
      configured: 1,
      want: [0, 1, 1],
    },
    {
      name: "weight 3 at health 2/3 is 2, as in the original",
      outcomes: [true, false, true, true],
      configured: 3,
      want: [3, 0, 2, 2],
    },
    {
      name: "configured weight 0 stays 0 whatever happens",
      outcomes: [true, false, true, true, true],
      configured: 0,
      want: [0, 0, 0, 0, 0],
    },
    {
      name: "a healthy backend keeps its configured weight",
      outcomes: times(5, true),
      configured: 42,
      want: times(5, 42),
    },
    {
      name: "a PATCH during recovery ramps toward the new weight",
      outcomes: [false, true, true, true],
      configured: [100, 100, 40, 40],
      // 2/3 x 40 = 26, then 3/4 x 40 = 30.
      want: [0, 50, 26, 30],
    },
  ];
  for (const row of table) {
    test(row.name, () => {
      expect(play(row.outcomes, row.configured)).toEqual(row.want);
    });
  }

  test("integer arithmetic: 100 x 29/100 is 29 (floating point would give 28)", () => {
    expect(100 * 0.29).toBeLessThan(29);
    const s = nextWeight({ effective: 0, recovering: true }, { configured: 100, pulseType: "tcp", status: "up", samplesOk: 29, samples: 100, consecutiveOk: 1 });
    expect(s).toEqual({ effective: 29, recovering: true });
  });
});

describe("single steps", () => {
  const up = (over: Partial<WeightInput> = {}): WeightInput => ({
    configured: 100,
    pulseType: "tcp",
    status: "up",
    samplesOk: 1,
    samples: 2,
    consecutiveOk: 1,
    ...over,
  });

  test("none pulses never change the weight, even when reported down", () => {
    expect(nextWeight({ effective: 0, recovering: true }, up({ pulseType: "none", status: "down" }))).toEqual({ effective: 100, recovering: false });
  });

  test("down is 0 and recovering, from any state", () => {
    for (const prev of [initialWeightState(100), { effective: 60, recovering: true }]) {
      expect(nextWeight(prev, up({ status: "down" }))).toEqual({ effective: 0, recovering: true });
    }
  });

  test("unknown keeps a recovering weight (never above configured) and otherwise gives the configured one", () => {
    expect(nextWeight({ effective: 60, recovering: true }, up({ status: "unknown" }))).toEqual({ effective: 60, recovering: true });
    expect(nextWeight({ effective: 60, recovering: true }, up({ status: "unknown", configured: 40 }))).toEqual({ effective: 40, recovering: true });
    expect(nextWeight(initialWeightState(100), up({ status: "unknown", configured: 70 }))).toEqual({ effective: 70, recovering: false });
  });

  test("up but not recovering is the configured weight, whatever the health", () => {
    expect(nextWeight(initialWeightState(100), up({ samplesOk: 1, samples: 100 }))).toEqual({ effective: 100, recovering: false });
  });

  test("recoverySteps = 1 restores full weight at the first pass", () => {
    expect(nextWeight({ effective: 0, recovering: true }, up(), { recoverySteps: 1 })).toEqual({ effective: 100, recovering: false });
  });

  test("initialWeightState clamps a negative weight to 0", () => {
    expect(initialWeightState(-5)).toEqual({ effective: 0, recovering: false });
  });
});
