/**
 * A change whose commit fails is undone in the kernel too. When it had deleted a service of gorb's (a DELETE, an
 * apply dropping or moving a file-owned service), the undo created the service again with gorb's backends only:
 * a destination someone else had added to it (left serving, as --unknown-destinations report does) was gone,
 * although the change failed; so was one the change deleted as no backend of a new service on that key. Found by
 * the fleet random test (seeds 40283 and 50912: applies refused by etcd). The undo now puts back such destinations
 * as they were.
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

/**
 * web (10.0.0.1:80) with b1, created by `create` on a first gorb; then, while gorb is down, a destination added by
 * hand; a second gorb on the same kernel and store finds it at start-up: reported, left serving.
 */
async function webWithHand(create: (gorb: ReturnType<typeof makeGorb>["gorb"]) => Promise<unknown>) {
  const store = new MemoryStateStore();
  const first = makeGorb({ store });
  const { driver } = first;
  await create(first.gorb);
  await first.gorb.close();
  await driver.addDestination(WEB, { ...HAND });
  const again = makeGorb({ store, driver });
  const report = await again.gorb.restore(store.load(), { unknownDestinations: "report" });
  expect(report.unknown).toEqual(['10.1.0.90:80 in service "web"']);
  return { gorb: again.gorb, driver, store, before: table(driver) };
}

const applied = (gorb: ReturnType<typeof makeGorb>["gorb"]) =>
  gorb.apply(readServices({ web: { host: "10.0.0.1", port: 80, backends: { b1: { host: "10.1.0.1", port: 80, pulse: { type: "none" } } } } }));

function settled(work: Promise<unknown>): Promise<unknown> {
  return work.then(
    () => null,
    (error: unknown) => error,
  );
}

test("a DELETE whose commit fails puts back the destination someone else added to the service", async () => {
  const { gorb, driver, store, before } = await webWithHand(async (g) => {
    await g.createService("web", { host: "10.0.0.1", port: 80 });
    await g.createBackend("web", "b1", { host: "10.1.0.1", port: 80, pulse: { type: "none" } });
  });
  expect(before).toEqual(["10.0.0.1:80 10.1.0.1:80/100/nat/0", "10.0.0.1:80 10.1.0.90:80/7/tunnel/40"]);

  store.failNext("No space left on device");
  expect(await settled(gorb.deleteService("web"))).toBeInstanceOf(Error);
  expect(table(driver)).toEqual(before);
  expect(await gorb.reconcile()).toEqual({ repairs: [] });
});

test("an apply that drops a file-owned service, its commit failing, puts back the destination someone else added", async () => {
  const { gorb, driver, store, before } = await webWithHand(applied);
  store.failNext("No space left on device");
  expect(await settled(gorb.apply(readServices({})))).toBeInstanceOf(Error);
  expect(table(driver)).toEqual(before);

  // The same set again, the disk repaired: web goes, with what was in it.
  await gorb.apply(readServices({}));
  expect(table(driver)).toEqual([]);
});

test("an apply that puts a new service on a dropped service's key, its commit failing, puts back the destination someone else added", async () => {
  // The kernel's service stays for the new one, which has no use for a destination it does not know: the apply
  // deletes that destination alone, and the undo put web back without it.
  const { gorb, driver, store, before } = await webWithHand(applied);
  store.failNext("No space left on device");
  const www = readServices({ www: { host: "10.0.0.1", port: 80, backends: { b2: { host: "10.1.0.2", port: 80, pulse: { type: "none" } } } } });
  expect(await settled(gorb.apply(www))).toBeInstanceOf(Error);
  expect(table(driver)).toEqual(before);
  expect((await gorb.listServices()).sort()).toEqual(["web"]);
});
