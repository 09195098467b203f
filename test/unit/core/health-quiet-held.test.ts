/**
 * A check that changes nothing is quiet (dropped before any queueing or planning) when the kernel holds the weight
 * the backend must have there. That weight is not always health's: maintenance and drains hold a backend at 0, a
 * slow-start ramp caps it. isQuietUpdate compared the kernel with health's weight instead, so every check of an up
 * backend in maintenance (or mid-drain, or ramping) was news: a job on Gorb's lock and a plan per check, for as long
 * as the maintenance lasted, with nothing to write.
 */
import { expect, test } from "bun:test";
import { DesiredState, desiredDestination, type BackendRecord, type Ramp, type ServiceRecord } from "../../../src/core/desired-state.ts";
import { fieldsOf } from "../../../src/core/fields.ts";
import { webService } from "./_records.ts";
import { isQuietUpdate } from "../../../src/core/health-weights.ts";
import { destinationKeyId, serviceKeyId } from "../../../src/core/keys.ts";
import { normalizeBackend } from "../../../src/core/normalize.ts";
import type { ObservedTable } from "../../../src/core/reconcile.ts";
import type { HealthUpdate } from "../../../src/health/target-state.ts";
import { DEFAULT_WEIGHT_POLICY, initialWeightState } from "../../../src/health/weight.ts";

const UP = { state: "up", health: 1, uptimeSeconds: 0, lastCheckMs: 1, message: "connected", samples: 5, samplesOk: 5, consecutiveOk: 5 } as const;

/** A service with one up backend (`body` its fields, `ramp` its slow start) and the kernel holding exactly what is desired. */
function setup(body: Record<string, unknown>, ramp: Ramp | null = null): { desired: DesiredState; kernel: ObservedTable; backend: BackendRecord } {
  const { desired, service } = webService();
  const spec = service.spec;
  const bspec = normalizeBackend({ host: "10.1.0.1", ...body }, spec);
  const backend: BackendRecord = { id: "b1", source: "api", watchId: "web/b1#1", fields: fieldsOf({}), spec: bspec, address: { address: "10.1.0.1", family: "inet" }, health: UP, weight: initialWeightState(bspec.weight), drain: null, ramp };
  desired.addBackend(service, backend);
  const dest = desiredDestination(service, backend);
  const kernel: ObservedTable = new Map([[serviceKeyId(service.config.key), { config: service.config, dests: new Map([[destinationKeyId(dest), dest]]) }]]);
  return { desired, kernel, backend };
}

/** One more pass of the up backend: nothing changes. */
const pass: HealthUpdate = {
  id: "web/b1#1",
  status: "up",
  previousStatus: "up",
  health: 1,
  samples: 6,
  samplesOk: 6,
  uptimeSeconds: 5,
  lastCheck: { ok: true, durationMs: 1, message: "connected", kind: "pass" },
  consecutiveOk: 6,
  consecutiveFail: 0,
};

test("a steady pass of an up backend is quiet in maintenance too (the kernel holds its 0)", () => {
  const { desired, kernel } = setup({ maintenance: true });
  expect(isQuietUpdate(desired, kernel, pass, DEFAULT_WEIGHT_POLICY)).toBe(true);
});

test("a steady pass is quiet when the kernel holds a slow-start ramp's cap", () => {
  const { desired, kernel } = setup({}, { startMs: 0, cap: 30 });
  expect(isQuietUpdate(desired, kernel, pass, DEFAULT_WEIGHT_POLICY)).toBe(true);
});

test("a kernel that does not hold the desired weight is still news (the check writes it)", () => {
  const { desired } = setup({ maintenance: true });
  const { kernel } = setup({}); // holds 100
  expect(isQuietUpdate(desired, kernel, pass, DEFAULT_WEIGHT_POLICY)).toBe(false);
});

test("and still quiet as before for a backend with nothing holding its weight", () => {
  const { desired, kernel } = setup({});
  expect(isQuietUpdate(desired, kernel, pass, DEFAULT_WEIGHT_POLICY)).toBe(true);
});

test("in panic mode a steady failure of a down backend, whose weight panic keeps, is quiet", () => {
  const { desired, kernel, backend } = setup({});
  const service = desired.watched("web/b1#1")?.service as ServiceRecord;
  service.panic = true;
  backend.health = { ...UP, state: "down", health: 0, samples: 100, samplesOk: 0, consecutiveOk: 0 };
  const failure: HealthUpdate = { ...pass, status: "down", previousStatus: "down", health: 0, samples: 100, samplesOk: 0, consecutiveOk: 0, consecutiveFail: 150, lastCheck: { ok: false, durationMs: 1, message: "refused", kind: "fail" } };
  expect(isQuietUpdate(desired, kernel, failure, DEFAULT_WEIGHT_POLICY)).toBe(true);
  // Out of panic, the same failure drains it: news.
  service.panic = false;
  expect(isQuietUpdate(desired, kernel, failure, DEFAULT_WEIGHT_POLICY)).toBe(false);
});
