/**
 * A change whose commit fails is undone in the kernel too. When it had deleted a service of gorb's (a DELETE, an
 * apply dropping or moving a file-owned service), the undo created the service again with gorb's backends only:
 * a destination someone else had added to it (left serving, as --unknown-destinations report does) was gone,
 * although the change failed. Found by the fleet random test (seed 40283: an apply refused by etcd). The undo now
 * puts such destinations back as they were.
 */
import { expect, test } from "bun:test";
import { readServices } from "../../../src/config/services.ts";
import { makeGorb } from "./fakes.ts";
import { MemoryStateStore } from "./memory-store.ts";

const WEB = { family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 } as const;
const HAND = { family: "inet", address: "10.1.0.90", port: 80, weight: 7, forward: "tunnel", upperThreshold: 40, lowerThreshold: 0, tunnel: null } as const;

function table(driver: ReturnType<typeof makeGorb>["driver"]): string[] {
  return driver.peek().flatMap((s) => s.destinations.map((d) => `${"address" in s.service.key ? `${s.service.key.address}:${s.service.key.port}` : "fwmark"} ${d.address}:${d.port}/${d.weight}/${d.forward}/${d.upperThreshold}`)).sort();
}

/** A restart that finds the destination added by hand while gorb was down: reported, left serving. */
async function restartedWithHand(store: MemoryStateStore, driver: ReturnType<typeof makeGorb>["driver"]) {
  await driver.addDestination(WEB, { ...HAND });
  const again = makeGorb({ store, driver });
  const report = await again.gorb.restore(store.load(), { unknownDestinations: "report" });
  expect(report.unknown).toEqual(['10.1.0.90:80 in service "web"']);
  return again.gorb;
}

test("a DELETE whose commit fails puts back the destination someone else added to the service", async () => {
  const store = new MemoryStateStore();
  const first = makeGorb({ store });
  const { driver } = first;
  await first.gorb.createService("web", { host: "10.0.0.1", port: 80 });
  await first.gorb.createBackend("web", "b1", { host: "10.1.0.1", port: 80, pulse: { type: "none" } });
  await first.gorb.close();
  const gorb = await restartedWithHand(store, driver);
  const before = table(driver);
  expect(before).toEqual(["10.0.0.1:80 10.1.0.1:80/100/nat/0", "10.0.0.1:80 10.1.0.90:80/7/tunnel/40"]);

  store.failNext("No space left on device");
  const refused = await gorb.deleteService("web").then(
    () => null,
    (error: unknown) => error,
  );
  expect(refused).toBeInstanceOf(Error);
  expect(table(driver)).toEqual(before);
  expect(await gorb.reconcile()).toEqual({ repairs: [] });
});

test("an apply that drops a file-owned service, its commit failing, puts back the destination someone else added", async () => {
  const store = new MemoryStateStore();
  const first = makeGorb({ store });
  const { driver } = first;
  await first.gorb.apply(readServices({ web: { host: "10.0.0.1", port: 80, backends: { b1: { host: "10.1.0.1", port: 80, pulse: { type: "none" } } } } }));
  await first.gorb.close();
  const gorb = await restartedWithHand(store, driver);
  const before = table(driver);

  store.failNext("No space left on device");
  const dropped = await gorb.apply(readServices({})).then(
    () => null,
    (error: unknown) => error,
  );
  expect(dropped).toBeInstanceOf(Error);
  expect(table(driver)).toEqual(before);

  // The same set again, the disk repaired: web goes, with what was in it.
  await gorb.apply(readServices({}));
  expect(table(driver)).toEqual([]);
});

test("an apply that puts a new service on a dropped service's key, its commit failing, puts back the destination someone else added", async () => {
  // The kernel's service stays for the new one, which has no use for a destination it does not know: the apply
  // deletes that destination alone, and the undo put web back without it.
  const store = new MemoryStateStore();
  const first = makeGorb({ store });
  const { driver } = first;
  await first.gorb.apply(readServices({ web: { host: "10.0.0.1", port: 80, backends: { b1: { host: "10.1.0.1", port: 80, pulse: { type: "none" } } } } }));
  await first.gorb.close();
  const gorb = await restartedWithHand(store, driver);
  const before = table(driver);

  store.failNext("No space left on device");
  const refused = await gorb.apply(readServices({ www: { host: "10.0.0.1", port: 80, backends: { b2: { host: "10.1.0.2", port: 80, pulse: { type: "none" } } } } })).then(
    () => null,
    (error: unknown) => error,
  );
  expect(refused).toBeInstanceOf(Error);
  expect(table(driver)).toEqual(before);
  expect((await gorb.listServices()).sort()).toEqual(["web"]);
});
