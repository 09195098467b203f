/**
 * Saved rows read back from disk (src/core/state.ts): a key outside the contract's ranges and lists is a
 * SavedStateError naming the row and the field, with the range or the list the contract defines.
 */
import { describe, expect, test } from "bun:test";
import type { DrainState } from "../../../src/core/drain.ts";
import {
  SavedStateError,
  decodeCreating,
  decodeSavedBackend,
  decodeSavedService,
  encodeSavedBackend,
  type SavedBackend,
} from "../../../src/core/state.ts";

function problem(key: unknown): string {
  try {
    decodeSavedService("web", { source: "api", fields: {}, key, vip: false });
  } catch (error) {
    expect(error).toBeInstanceOf(SavedStateError);
    return (error as Error).message;
  }
  throw new Error("read back");
}

describe("a saved service's key", () => {
  test("reads back within the contract's ranges", () => {
    const key = { family: "inet", protocol: "udp", address: "10.0.0.1", port: 65535 } as const;
    expect(decodeSavedService("web", { source: "api", fields: {}, key, vip: true }).key).toEqual(key);
    expect(decodeCreating({ family: "inet6", fwmark: 4294967295 }, 1)).toEqual({ key: { family: "inet6", fwmark: 4294967295 }, vip: true });
  });

  test("outside them, it names the field and what it must be", () => {
    const address = { family: "inet", protocol: "tcp", address: "10.0.0.1" };
    expect(problem({ ...address, port: 65536 })).toBe('service "web": port must be 1-65535, got 65536');
    expect(problem({ ...address, port: 0 })).toBe('service "web": port must be 1-65535, got 0');
    expect(problem({ ...address, port: 80, protocol: "icmp" })).toBe('service "web": protocol must be tcp, udp or sctp, got "icmp"');
    expect(problem({ ...address, port: 80, family: "unix" })).toBe('service "web": family must be "inet" or "inet6", got "unix"');
    expect(problem({ family: "inet", fwmark: 0 })).toBe('service "web": fwmark must be 1-4294967295, got 0');
    expect(problem({ family: "inet", fwmark: 4294967296 })).toBe('service "web": fwmark must be 1-4294967295, got 4294967296');
  });
});

describe("a saved backend's drain", () => {
  const T0 = Date.parse("2026-12-02T12:00:00Z");
  const draining: DrainState = { started: T0, deadline: T0 + 60_000, then: "remove", phase: "draining", node: null };
  const backend = (drain: DrainState | null): SavedBackend => ({
    service: "web",
    id: "b1",
    source: "api",
    fields: {},
    address: { address: "10.1.0.1", family: "inet" },
    drain,
  });
  const row = (drain: DrainState | null): Record<string, unknown> => JSON.parse(JSON.stringify(encodeSavedBackend(backend(drain))));
  const problem = (drain: unknown): string => {
    try {
      decodeSavedBackend("web", "b1", { ...row(draining), drain });
    } catch (error) {
      expect(error).toBeInstanceOf(SavedStateError);
      return (error as Error).message;
    }
    throw new Error("read back");
  };

  test("reads back as written; none is none", () => {
    const held: DrainState = { ...draining, then: "keep", phase: "drained", node: "lb1" };
    expect(decodeSavedBackend("web", "b1", row(held)).drain).toEqual(held);
    expect(decodeSavedBackend("web", "b1", row(null)).drain).toBeUndefined();
  });

  test("a malformed one names the row and the field", () => {
    const drain = row(draining).drain as Record<string, unknown>;
    const what = 'backend "b1" of service "web"';
    expect(problem([])).toBe(`${what}: drain must be an object`);
    expect(problem({ ...drain, deadline: "soon" })).toBe(`${what}: drain.deadline must be a number`);
    expect(problem({ ...drain, then: "x" })).toBe(`${what}: drain.then must be remove or keep, got "x"`);
    expect(problem({ ...drain, phase: "x" })).toBe(`${what}: drain.phase must be draining or drained, got "x"`);
  });
});
