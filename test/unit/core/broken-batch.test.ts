/**
 * A kernel batch that breaks off (a netlink timeout or transport failure: driver.apply throws instead of answering
 * per operation) may have been taken in part. Gorb reads the services concerned again, so undoing the failed change
 * removes what the kernel took, and nothing of it is left in IPVS as a service gorb does not manage.
 */
import { expect, test } from "bun:test";
import { ERRNO, IpvsError } from "../../../src/ipvs/errors.ts";
import { MemoryIpvsDriver } from "../../../src/ipvs/memory-driver.ts";
import type { DeclaredService } from "../../../src/core/plan.ts";
import { fieldsOf } from "../../../src/core/fields.ts";
import { BreakingDriver, makeGorb } from "./fakes.ts";

const declared = (backends: boolean): DeclaredService[] => [
  { id: "web", fields: fieldsOf({ host: "10.0.0.1", port: 80 }), backends: backends ? [{ id: "b1", fields: fieldsOf({ host: "10.1.0.1" }) }] : [] },
];

test("an apply whose batch broke off after the service was added: undone in the kernel too, and applying again works", async () => {
  const driver = new BreakingDriver();
  const s = makeGorb({ driver });
  driver.breakNextAfter(1);
  const report = await s.gorb.apply(declared(true));
  expect(report.changes.map((c) => c.status)).toEqual(["failed", "failed"]);
  expect(s.gorb.listServices()).toEqual([]);
  expect(driver.peek()).toEqual([]);
  const again = await s.gorb.apply(declared(true));
  expect(again.ok).toBe(true);
  expect(driver.peek()[0]?.destinations.map((d) => `${d.address}:${d.port} ${d.weight}`)).toEqual(["10.1.0.1:80 100"]);
});

test("a request whose batch broke off after its write was taken: undone, and the kernel matches gorb", async () => {
  const driver = new BreakingDriver();
  const s = makeGorb({ driver });
  await s.gorb.createService("web", { host: "10.0.0.1", port: 80 });
  await s.gorb.createBackend("web", "b1", { host: "10.1.0.1" });
  driver.breakNextAfter(1);
  await expect(s.gorb.updateBackend("web", "b1", { weight: 7 })).rejects.toThrow("netlink timeout");
  expect((await s.gorb.getBackend("web", "b1")).options.weight).toBe(100);
  expect(driver.peek()[0]?.destinations.map((d) => d.weight)).toEqual([100]);
  expect((await s.gorb.reconcile()).repairs).toEqual([]);
});

test("a kernel that does not answer the read after a broken batch is not asked again for each service: the rest waits for reconcile", async () => {
  // Each read of a kernel that stopped answering waits out the netlink timeout under gorb's lock: one is enough.
  class SilentAfterBreak extends BreakingDriver {
    reads = 0;
    silent = false;
    override async getService(...args: Parameters<MemoryIpvsDriver["getService"]>) {
      if (!this.silent) return super.getService(...args);
      this.reads++;
      throw new IpvsError("get-service", ERRNO.ETIMEDOUT, "IPVS did not answer within the netlink timeout");
    }
  }
  const driver = new SilentAfterBreak();
  const s = makeGorb({ driver });
  const two: DeclaredService[] = [
    { id: "web", fields: fieldsOf({ host: "10.0.0.1", port: 80 }), backends: [] },
    { id: "api", fields: fieldsOf({ host: "10.0.0.2", port: 80 }), backends: [] },
  ];
  driver.breakNextAfter(1);
  driver.silent = true;
  const report = await s.gorb.apply(two);
  expect(report.ok).toBe(false);
  expect(driver.reads).toBe(1);
});
