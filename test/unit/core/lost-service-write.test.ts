/**
 * A service the kernel lost (deleted behind gorb's back) and that a reconcile could not put back is written whole by
 * the next write that concerns it: a health change of one backend put back the service with that backend alone, and
 * gorb then counted the service as in the kernel (in_kernel, BGP) with its other backends missing from IPVS.
 * Found by test/unit/bgp/announce-random.test.ts (seed 12). When the kernel refuses part of that write, the
 * service is taken out again (test/unit/state/single-random.test.ts, seed 60569 at 80 steps).
 */
import { expect, test } from "bun:test";
import { makeGorb } from "./fakes.ts";

const WEB = { family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 } as const;

/** web with b1 (pulse none) and `more`, which the kernel lost and a reconcile could not put back. */
async function lostWeb(more: (stack: ReturnType<typeof makeGorb>) => Promise<unknown> = async () => undefined) {
  const stack = makeGorb();
  const { gorb, driver } = stack;
  await gorb.createService("web", { host: "10.0.0.1", port: 80 });
  await gorb.createBackend("web", "b1", { host: "10.1.0.1", weight: 10, pulse: { type: "none" } });
  await more(stack);
  await driver.deleteService(WEB); // behind gorb's back
  driver.failNext("add-service", "ENOMEM");
  await gorb.reconcile();
  expect((await gorb.getService("web")).in_kernel).toBe(false);
  return stack;
}

test("a health change of one backend of a service the kernel lost puts back the whole service, every backend with it", async () => {
  const { gorb, health, driver } = await lostWeb(({ gorb }) => gorb.createBackend("web", "b2", { host: "10.1.0.2", weight: 10 }));

  health.report("web", "b2", "up", { samplesOk: 100, consecutiveOk: 5 });
  await gorb.idle();
  const table = driver.peek();
  expect(table.map((s) => s.destinations.map((d) => `${d.address}:${d.port}`).sort())).toEqual([["10.1.0.1:80", "10.1.0.2:80"]]);
  expect((await gorb.getService("web")).in_kernel).toBe(true);
  expect(await gorb.reconcile()).toMatchObject({ repairs: [] });
});

test("a backend added over the API to a service the kernel lost puts back the whole service, every backend with it", async () => {
  const { gorb, driver } = await lostWeb();

  await gorb.createBackend("web", "b2", { host: "10.1.0.2", weight: 10, pulse: { type: "none" } });
  expect(driver.peek().map((s) => s.destinations.map((d) => `${d.address}:${d.port}`).sort())).toEqual([["10.1.0.1:80", "10.1.0.2:80"]]);
  expect(await gorb.reconcile()).toMatchObject({ repairs: [] });
});

test("a write that puts back a service the kernel lost, refused on one of its backends, takes the service out again: nothing changed", async () => {
  const { gorb, driver } = await lostWeb();

  // The write puts web back whole: the service, b1, b2. The kernel refuses b1's add.
  driver.failNext("add-destination", "ENOMEM");
  const refused = await gorb.createBackend("web", "b2", { host: "10.1.0.2", weight: 10, pulse: { type: "none" } }).then(
    () => null,
    (error: unknown) => error,
  );
  expect(refused).toBeInstanceOf(Error);
  expect(driver.peek()).toEqual([]);
  expect((await gorb.getService("web")).in_kernel).toBe(false);
  expect((await gorb.getService("web")).backends).toEqual(["b1"]);
  // The next reconcile puts it back whole.
  await gorb.reconcile();
  expect(driver.peek().map((s) => s.destinations.map((d) => `${d.address}:${d.port}`))).toEqual([["10.1.0.1:80"]]);
});
