/**
 * Restore when the kernel refuses a service's add: the service stays desired (and saved), but gorb exposes
 * nothing for it (no VIP put back, no discovery registration) until the kernel has it; the others are restored
 * fully. The reconcile whose repair adds it puts its VIP on the interface and registers it. A restored fwmark
 * service withdraws a registration left under its id.
 */
import { describe, expect, test } from "bun:test";
import { MemoryIpvsDriver } from "../../../src/ipvs/memory-driver.ts";
import { MemoryVipManager } from "../../helpers/memory-vip.ts";
import { makeGorb, type RecordingDiscovery } from "./fakes.ts";
import { MemoryStateStore } from "./memory-store.ts";

/**
 * Saved: "web" on 10.0.0.1:80, then "api" on `apiHost`:80, each with a backend (web's checked with `pulse`) and
 * its VIP added by gorb.
 */
async function saved(apiHost: string, pulse: { type: string }) {
  const store = new MemoryStateStore();
  const first = makeGorb({ store });
  await first.gorb.createService("web", { host: "10.0.0.1", port: 80 });
  await first.gorb.createBackend("web", "b1", { host: "10.1.0.1", pulse });
  await first.gorb.createService("api", { host: apiHost, port: apiHost === "10.0.0.1" ? 443 : 80 });
  await first.gorb.createBackend("api", "b1", { host: "10.1.0.2", pulse: { type: "none" } });
  await first.gorb.close();
  return store;
}

/**
 * The host rebooted (empty IPVS table, empty VIP interface); at restore the kernel refuses the first service
 * add of the batch ("web", the first saved).
 */
async function restoreRefusingWeb(apiHost: string, pulse = { type: "none" }) {
  const store = await saved(apiHost, pulse);
  const driver = new MemoryIpvsDriver();
  const vip = new MemoryVipManager();
  const stack = makeGorb({ driver, vip, store });
  driver.failNext("add-service", "ENOMEM");
  const report = await stack.gorb.restore(store.load());
  return { ...stack, report };
}

const kernelAddresses = (driver: MemoryIpvsDriver) => driver.peek().map((s) => ("address" in s.service.key ? s.service.key.address : ""));
const exposed = (discovery: RecordingDiscovery) => discovery.calls.flatMap((c) => (c[0] === "expose" ? [c[1].id] : []));

describe("restore when the kernel refuses a service", () => {
  test("no VIP and no registration for it, the others restored fully; the reconcile that adds it exposes it", async () => {
    const { gorb, driver, vip, discovery, report } = await restoreRefusingWeb("10.0.0.2");
    expect(report.repairs.filter((r) => r.status === "failed").map((r) => [r.service, r.backend])).toEqual([
      ["web", null],
      ["web", "b1"],
    ]);
    expect(kernelAddresses(driver)).toEqual(["10.0.0.2"]);
    expect(vip.addresses()).toEqual(["10.0.0.2"]);
    expect(exposed(discovery)).toEqual(["api"]);
    // A registration left from before the restart (they outlive one) is withdrawn.
    expect(discovery.calls).toContainEqual(["remove", "web"]);
    // Still desired (and saved): the kernel's refusal is a failed repair, not a reason to forget it.
    expect(gorb.listServices()).toEqual(["api", "web"]);
    // GET says why it has no counters: the kernel does not have it (not "could not read the kernel").
    expect(await gorb.getService("web")).toMatchObject({ stats: null, in_kernel: false });
    expect((await gorb.listServicesDetail()).map((s) => [s.id, s.in_kernel])).toEqual([
      ["api", true],
      ["web", false],
    ]);

    const again = await gorb.reconcile();
    expect(again.repairs.map((r) => [r.service, r.backend, r.status])).toEqual([
      ["web", null, "done"],
      ["web", "b1", "done"],
    ]);
    expect(kernelAddresses(driver).sort()).toEqual(["10.0.0.1", "10.0.0.2"]);
    expect(vip.addresses()).toEqual(["10.0.0.1", "10.0.0.2"]);
    expect(exposed(discovery)).toEqual(["api", "web"]);
    expect((await gorb.getService("web")).in_kernel).toBe(true);
    // Once exposed, a later reconcile registers nothing again.
    await gorb.reconcile();
    expect(exposed(discovery)).toEqual(["api", "web"]);
  });

  test("a refused service's VIP is put back when another service on that address is in the kernel", async () => {
    const { vip, discovery } = await restoreRefusingWeb("10.0.0.1");
    expect(vip.addresses()).toEqual(["10.0.0.1"]);
    expect(exposed(discovery)).toEqual(["api"]);
  });

  test("a refused service deleted before the kernel took it is never registered", async () => {
    const { gorb, discovery } = await restoreRefusingWeb("10.0.0.2");
    await gorb.deleteService("web");
    await gorb.reconcile();
    expect(exposed(discovery)).toEqual(["api"]);
  });
});

describe("a refused service that a change puts in the kernel", () => {
  test("a PATCH whose write adds it gets its VIP and registration when it answers, without a reconcile", async () => {
    const { gorb, vip, discovery } = await restoreRefusingWeb("10.0.0.2");
    await gorb.updateService("web", { method: "wlc" });
    expect((await gorb.getService("web")).in_kernel).toBe(true);
    expect(vip.addresses()).toEqual(["10.0.0.1", "10.0.0.2"]);
    expect(exposed(discovery)).toEqual(["api", "web"]);
    // Exposed once: the next reconcile finds nothing held.
    await gorb.reconcile();
    expect(exposed(discovery)).toEqual(["api", "web"]);
  });

  test("a new backend's write adds it too, and exposes it before the request answers", async () => {
    const { gorb, vip, discovery } = await restoreRefusingWeb("10.0.0.2");
    await gorb.createBackend("web", "b2", { host: "10.1.0.3", pulse: { type: "none" } });
    expect(vip.addresses()).toEqual(["10.0.0.1", "10.0.0.2"]);
    expect(exposed(discovery)).toEqual(["api", "web"]);
  });

  test("a health change whose write adds it exposes it once the change is applied", async () => {
    const { gorb, vip, discovery, health } = await restoreRefusingWeb("10.0.0.2", { type: "tcp" });
    health.report("web", "b1", "down");
    await gorb.idle();
    expect((await gorb.getService("web")).in_kernel).toBe(true);
    expect(vip.addresses()).toEqual(["10.0.0.1", "10.0.0.2"]);
    expect(exposed(discovery)).toEqual(["api", "web"]);
  });

  test("a change the kernel refuses again exposes nothing", async () => {
    const { gorb, driver, vip, discovery } = await restoreRefusingWeb("10.0.0.2");
    driver.failNext("add-service", "ENOENT", 2); // the change's write, then its rollback's
    await expect(gorb.updateService("web", { method: "wlc" })).rejects.toMatchObject({ status: 400, field: "method" });
    await gorb.idle();
    expect((await gorb.getService("web")).in_kernel).toBe(false);
    expect(vip.addresses()).toEqual(["10.0.0.2"]);
    expect(exposed(discovery)).toEqual(["api"]);
  });

  test("a failed change whose rollback adds it (as it was) exposes it: exposure follows the kernel", async () => {
    const { gorb, driver, vip, discovery } = await restoreRefusingWeb("10.0.0.2");
    driver.failNext("add-service", "ENOENT");
    await expect(gorb.updateService("web", { method: "wlc" })).rejects.toMatchObject({ status: 400, field: "method" });
    await gorb.idle();
    expect(await gorb.getService("web")).toMatchObject({ in_kernel: true, options: { method: "wrr" } });
    expect(vip.addresses()).toEqual(["10.0.0.1", "10.0.0.2"]);
    expect(exposed(discovery)).toEqual(["api", "web"]);
  });
});

describe("restore of a fwmark service", () => {
  test("withdraws a registration left under its id from when it had a VIP, and registers nothing for it", async () => {
    // Saved while gorb was stopped as a fwmark service (re-created so from an address service: through the shared
    // store, say); the registry may still hold that address service's registration, which outlived the restart.
    const store = new MemoryStateStore();
    const before = makeGorb({ store });
    await before.gorb.createService("dns", { fwmark: 7 });
    await before.gorb.createService("web", { host: "10.0.0.1", port: 80 });
    await before.gorb.close();
    const { gorb, discovery } = makeGorb({ store });
    await gorb.restore(store.load());
    expect(discovery.calls).toContainEqual(["remove", "dns"]);
    expect(exposed(discovery)).toEqual(["web"]);
    expect(discovery.calls).not.toContainEqual(["remove", "web"]);
  });
});
