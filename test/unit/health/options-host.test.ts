/**
 * `args.host` must be a real IP address or a DNS name. A malformed address (an IPv6 typo, an IPv4 octet above 255)
 * is refused with a 400 naming the field: accepted, it was looked up as a name, failed with ENOTFOUND at every
 * check and drained the backend for the operator's typo.
 */
import { expect, test } from "bun:test";
import { PulseOptionsError } from "../../../src/health/errors.ts";
import { parsePulseOptions } from "../../../src/health/options.ts";

function problemOf(host: string): { field: string; problem: string } | "accepted" {
  try {
    parsePulseOptions({ type: "tcp", args: { host } });
    return "accepted";
  } catch (err) {
    if (err instanceof PulseOptionsError) return { field: err.field, problem: err.problem };
    throw err;
  }
}

test("a malformed IPv6 or IPv4 literal in args.host is refused, naming the field", () => {
  for (const host of [":::", "1:2:3", "fd00::1::2", "[fe80::zz]", "10.0.0.300", "999.1.1.1", "10.0.0"]) {
    expect({ host, result: problemOf(host) }).toEqual({
      host,
      result: { field: "pulse.args.host", problem: `invalid host ${JSON.stringify(host)}, use an IP address or a DNS name` },
    });
  }
});

test("real addresses and names are still accepted", () => {
  for (const [host, kept] of [
    ["::1", "::1"],
    ["[2001:db8::7]", "2001:db8::7"],
    ["fe80::1%eth0", "fe80::1%eth0"],
    ["::ffff:10.0.0.1", "::ffff:10.0.0.1"],
    ["10.0.0.1", "10.0.0.1"],
    ["health.internal", "health.internal"],
    ["1e100.net", "1e100.net"],
    ["3com.example", "3com.example"],
  ] as const) {
    expect(parsePulseOptions({ type: "tcp", args: { host } }).host).toBe(kept);
  }
});
