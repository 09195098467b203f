/**
 * The markers of a service's line in the status table (src/render/status.ts), from hand-built views: what a
 * service's counters (dashes) cannot tell apart, a kernel that does not have it and one that could not be read,
 * the line says; with failover, both; from an older daemon (no `in_kernel`), nothing.
 */
import { expect, test } from "bun:test";
import type { ServiceStatusView } from "../../../src/core/views.ts";
import { statusText } from "../../../src/render/status.ts";

const base: ServiceStatusView = {
  id: "web",
  options: { host: "10.0.0.1", address: "10.0.0.1", port: 80, protocol: "tcp", fwmark: 0, family: "inet", method: "wrr", sorry_server: null },
  health: 1,
  stats: null,
  backend_details: [],
};

/** The state column of the service's line. */
function state(view: ServiceStatusView): string {
  return /^web +tcp 10\.0\.0\.1:80 +wrr +1\.00 +(.+?) +0\/0 /m.exec(statusText([view]))?.[1] ?? "";
}

test("a service the kernel does not have is marked NOT IN KERNEL, before its failover state", () => {
  expect(state({ ...base, in_kernel: false })).toBe("0 backends, NOT IN KERNEL");
  expect(state({ ...base, in_kernel: false, quorum_up: false })).toBe("0 backends, NOT IN KERNEL, NO QUORUM");
  const sorry = { host: "10.9.0.1", port: 8080, method: "nat" as const };
  expect(state({ ...base, options: { ...base.options, sorry_server: sorry }, in_kernel: false, quorum_up: false, sorry: true })).toBe(
    "0 backends, NOT IN KERNEL, SORRY 10.9.0.1:8080",
  );
});

test("in the kernel, or from a daemon too old to say (no in_kernel), no such mark", () => {
  expect(state({ ...base, in_kernel: true })).toBe("0 backends");
  expect(state(base)).toBe("0 backends");
  expect(state({ ...base, quorum_up: false })).toBe("0 backends, NO QUORUM");
});
