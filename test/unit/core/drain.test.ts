import { describe, expect, test } from "bun:test";
import {
  drainDecision,
  drainRequestOf,
  drainView,
  overrideWeight,
  sameDrain,
  startDrain,
  type DrainState,
} from "../../../src/core/drain.ts";
import { drainFields } from "../../../src/core/drain-targets.ts";
import { ValidationError } from "../../../src/core/errors.ts";

const T0 = Date.parse("2026-12-02T12:00:00Z");
const draining: DrainState = { started: T0, deadline: T0 + 60_000, then: "remove", phase: "draining", node: null };
const facts = (over: Partial<Parameters<typeof drainDecision>[1]> = {}) => ({
  conns: { active: 2, inactive: 1 },
  now: T0 + 1000,
  udp: false,
  node: null,
  peers: { active: 0, inactive: 0 },
  watchedMs: 1000,
  ...over,
});

describe("the weight override", () => {
  test("maintenance or a drain holds the weight at 0; otherwise health's weight stands", () => {
    expect(overrideWeight({ maintenance: false }, null, 70)).toBe(70);
    expect(overrideWeight({ maintenance: true }, null, 70)).toBe(0);
    expect(overrideWeight({ maintenance: false }, draining, 70)).toBe(0);
    expect(overrideWeight({ maintenance: false }, { ...draining, phase: "drained" }, 100)).toBe(0);
    expect(overrideWeight({ maintenance: true }, draining, 0)).toBe(0);
  });
});

describe("drain requests", () => {
  test("defaults: 5m, then remove; durations in ms, s, m, h, d; 0s does not wait", () => {
    expect(drainRequestOf({})).toEqual({ timeoutMs: 300_000, then: "remove" });
    expect(drainRequestOf({ timeout: "30s", then: "keep" })).toEqual({ timeoutMs: 30_000, then: "keep" });
    expect(drainRequestOf({ timeout: "2h" }).timeoutMs).toBe(7_200_000);
    expect(drainRequestOf({ timeout: "1d" }).timeoutMs).toBe(86_400_000);
    expect(drainRequestOf({ timeout: "0s" }).timeoutMs).toBe(0);
    expect(drainRequestOf({ timeout: "1500ms" }).timeoutMs).toBe(1500);
  });

  test("the grammar README states: units in any case, sec and min too, spaces around but not inside", () => {
    expect(drainRequestOf({ timeout: "5M" }).timeoutMs).toBe(300_000);
    expect(drainRequestOf({ timeout: "5MS" }).timeoutMs).toBe(5);
    expect(drainRequestOf({ timeout: "2Min" }).timeoutMs).toBe(120_000);
    expect(drainRequestOf({ timeout: "30sec" }).timeoutMs).toBe(30_000);
    expect(drainRequestOf({ timeout: " 1D " }).timeoutMs).toBe(86_400_000);
    for (const bad of ["5 m", "1.5h", "+5s", "5", "", "5w", "5minutes"]) {
      expect(() => drainRequestOf({ timeout: bad })).toThrow(`timeout: must be a duration such as 30s, 5m or 2h, got ${JSON.stringify(bad)}`);
    }
  });

  test("bad input is a ValidationError naming the field", () => {
    const problem = (body: unknown) => {
      try {
        drainRequestOf(drainFields(body));
      } catch (error) {
        if (error instanceof ValidationError) return error.message;
        throw error;
      }
      return "accepted";
    };
    expect(problem({ timeout: "5" })).toStartWith("timeout: must be a duration such as 30s");
    expect(problem({ timeout: "-5s" })).toStartWith("timeout: must be a duration");
    expect(problem({ timeout: "8d" })).toBe('timeout: must be at most 7d, got "8d"');
    // Too many digits is too long a drain, not a malformed duration.
    expect(problem({ timeout: "99999999999999999999d" })).toBe('timeout: must be at most 7d, got "99999999999999999999d"');
    expect(problem({ timeout: "0000000000000000000030s" })).toBe("accepted");
    // A number (seconds meant) is worded as the README says, not "must be a string".
    expect(problem({ timeout: 5 })).toBe("timeout: must be a duration such as 30s, 5m or 2h, got 5");
    expect(problem({ timeout: true })).toBe("timeout: must be a duration such as 30s, 5m or 2h, got true");
    expect(problem({ then: "delete" })).toStartWith("then:");
    expect(problem({ Timeout: "1m", THEN: "KEEP", other: 1 })).toBe("accepted");
    expect(drainFields({ Timeout: "1m", THEN: "KEEP", other: 1 })).toEqual({ timeout: "1m", then: "keep" });
  });

  test("a drain starts now with an absolute deadline", () => {
    expect(startDrain({ timeoutMs: 60_000, then: "keep" }, T0, "lb1")).toEqual({
      started: T0,
      deadline: T0 + 60_000,
      then: "keep",
      phase: "draining",
      node: "lb1",
    });
  });
});

describe("drain decisions", () => {
  test("wait while connections remain before the deadline; drained at 0 active and 0 inactive", () => {
    expect(drainDecision(draining, facts())).toBe("wait");
    expect(drainDecision(draining, facts({ conns: { active: 0, inactive: 1 } }))).toBe("wait");
    expect(drainDecision(draining, facts({ conns: { active: 1, inactive: 0 } }))).toBe("wait");
    expect(drainDecision(draining, facts({ conns: { active: 0, inactive: 0 } }))).toBe("drained");
  });

  test("the deadline ends it with connections left; unreadable counts wait for the deadline", () => {
    expect(drainDecision(draining, facts({ now: T0 + 60_000 }))).toBe("timeout");
    expect(drainDecision(draining, facts({ conns: null }))).toBe("wait");
    expect(drainDecision(draining, facts({ conns: null, now: T0 + 60_001 }))).toBe("timeout");
  });

  test("UDP has nothing to wait for; a held drain does nothing", () => {
    expect(drainDecision(draining, facts({ udp: true }))).toBe("drained");
    expect(drainDecision({ ...draining, phase: "drained" }, facts({ conns: { active: 0, inactive: 0 } }))).toBe("hold");
  });

  test("fleet: the starting node decides; another node ends it only once it watched it for its timeout and 10 s more", () => {
    const fleet = { ...draining, node: "lb1" };
    expect(drainDecision(fleet, facts({ node: "lb1", conns: { active: 0, inactive: 0 } }))).toBe("drained");
    expect(drainDecision(fleet, facts({ node: "lb2", conns: { active: 0, inactive: 0 } }))).toBe("wait");
    expect(drainDecision(fleet, facts({ node: "lb2", now: T0 + 70_000, watchedMs: 69_999 }))).toBe("wait");
    expect(drainDecision(fleet, facts({ node: "lb2", now: T0 + 70_000, watchedMs: 70_000 }))).toBe("timeout");
  });

  test("fleet: the starting node's own connections ended ends it only once every other live node says none either", () => {
    const fleet = { ...draining, node: "lb1" };
    const own = { node: "lb1", conns: { active: 0, inactive: 0 } };
    // Another node still has connections to the backend (anycast spreads them): removing it now would cut them.
    expect(drainDecision(fleet, facts({ ...own, peers: { active: 1, inactive: 0 } }))).toBe("wait");
    expect(drainDecision(fleet, facts({ ...own, peers: { active: 0, inactive: 3 } }))).toBe("wait");
    // A live node that has not said (it has not seen the drain yet, an older gorb, etcd unreadable) keeps it waiting...
    expect(drainDecision(fleet, facts({ ...own, peers: null }))).toBe("wait");
    // ...up to the deadline, as connections left do.
    expect(drainDecision(fleet, facts({ ...own, peers: null, now: T0 + 60_000 }))).toBe("timeout");
    expect(drainDecision(fleet, facts({ ...own, peers: { active: 2, inactive: 0 }, now: T0 + 60_000 }))).toBe("timeout");
    expect(drainDecision(fleet, facts({ ...own, peers: { active: 0, inactive: 0 } }))).toBe("drained");
    // UDP has nothing to wait for, on any node.
    expect(drainDecision(fleet, facts({ ...own, udp: true, peers: null }))).toBe("drained");
  });

  test("fleet: another node's wall clock does not end the drain (the deadline is the starting node's clock)", () => {
    const fleet = { ...draining, node: "lb1" };
    // lb2's clock a day ahead: the deadline looks long past, but lb2 has watched the drain for a second only.
    expect(drainDecision(fleet, facts({ node: "lb2", now: T0 + 86_400_000, watchedMs: 1000 }))).toBe("wait");
    // lb2's clock a day behind: the deadline looks a day away, but lb2 has watched it for its timeout and 10 s.
    expect(drainDecision(fleet, facts({ node: "lb2", now: T0 - 86_400_000, watchedMs: 70_000 }))).toBe("timeout");
  });
});

describe("drain rows and views", () => {
  test("two drains are the same when every field is", () => {
    expect(sameDrain(draining, { ...draining })).toBe(true);
    expect(sameDrain(draining, { ...draining, deadline: 1 })).toBe(false);
    expect(sameDrain(null, null)).toBe(true);
    expect(sameDrain(draining, null)).toBe(false);
  });

  test("the view counts down to the deadline", () => {
    expect(drainView(draining, T0 + 1500)).toEqual({
      state: "draining",
      started: "2026-12-02T12:00:00.000Z",
      deadline: "2026-12-02T12:01:00.000Z",
      then: "remove",
      seconds_left: 59,
      node: null,
    });
    expect(drainView(draining, T0 + 90_000).seconds_left).toBe(0);
    expect(drainView({ ...draining, phase: "drained" }, T0).seconds_left).toBe(0);
  });
});
