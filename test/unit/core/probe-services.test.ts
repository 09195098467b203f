/**
 * Checks through the VIP, core side: the per-backend firewall-mark services gorb keeps for them are written through
 * the reconciler, never shown as services, follow the backends, come back after a reconcile, and stale ones (an
 * earlier run's) are removed; the probe target carries the VIP, the mark and the backend to route the source by.
 * The rig's forwarding test sends real probes through real IPVS.
 */
import { describe, expect, test } from "bun:test";
import { ValidationError } from "../../../src/core/errors.ts";
import { wantedProbeServices } from "../../../src/core/probe-services.ts";
import { probeTarget } from "../../../src/health/options.ts";
import { observedTable } from "../../../src/core/reconcile.ts";
import { MemoryIpvsDriver } from "../../../src/ipvs/memory-driver.ts";
import { makeGorb } from "./fakes.ts";
import { MemoryStateStore } from "./memory-store.ts";

const via = { type: "tcp", interval: "1s", args: { via: "vip" } };

function probeServices(table: ReturnType<ReturnType<typeof makeGorb>["driver"]["peek"]>) {
  return table.filter((e) => "fwmark" in e.service.key);
}

describe("checks through the VIP", () => {
  test("each dr/tunnel backend checked through the VIP gets its own fwmark service; the probe goes to the VIP with its mark", async () => {
    const { gorb, driver, health } = makeGorb();
    await gorb.createService("web", { host: "10.0.0.1", port: 80 });
    await gorb.createBackend("web", "b1", { host: "10.1.0.1", method: "dr", pulse: via });
    await gorb.createBackend("web", "b2", { host: "10.1.0.2", method: "tunnel", tunnel_type: "gue", tunnel_port: 5555, pulse: via });
    await gorb.createBackend("web", "b3", { host: "10.1.0.3", method: "dr" });
    await gorb.idle();
    const probes = probeServices(driver.peek());
    expect(probes.map((p) => [p.service.key, p.destinations.map((d) => [d.address, d.forward, d.weight, d.tunnel?.type ?? null])])).toEqual([
      [{ family: "inet", fwmark: 0x3000 }, [["10.1.0.1", "dr", 1, null]]],
      [{ family: "inet", fwmark: 0x3001 }, [["10.1.0.2", "tunnel", 1, "gue"]]],
    ]);
    const targets = [...health.targets.values()].map((t) => t.backend);
    expect(targets).toEqual([
      { host: "10.0.0.1", port: 80, mark: 0x3000, sourceFor: "10.1.0.1" },
      { host: "10.0.0.1", port: 80, mark: 0x3001, sourceFor: "10.1.0.2" },
      { host: "10.1.0.3", port: 80 },
    ]);
    // Never a user service: not listed, not counted.
    expect(gorb.listServices()).toEqual(["web"]);
  });

  test("the probe goes to the service's port, as a client does, not to a port a saved dr backend names (args.port still overrides it)", async () => {
    const { gorb, health } = makeGorb();
    // IPVS forwards a dr or tunnel packet unchanged, port included: the backend's own port is never used on that path.
    // gorb refuses such a port now (normalize.ts checkForwardedPort); a state saved before that still restores.
    const key = { family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 } as const;
    const backend = (id: string, host: string, pulse: unknown) => ({
      service: "web",
      id,
      source: "api",
      fields: { host, port: 8080, method: "dr", pulse },
      address: { address: host, family: "inet" },
    }) as const;
    await gorb.restore({
      services: [{ id: "web", source: "api", fields: { host: "10.0.0.1", port: 80 }, key, vip: false }],
      backends: [backend("b1", "10.1.0.1", via), backend("b2", "10.1.0.2", { ...via, args: { via: "vip", port: 8443 } })],
    });
    await gorb.idle();
    const probes = [...health.targets.values()].map((t) => probeTarget(t.backend, t.options));
    expect(probes).toEqual([
      { host: "10.0.0.1", port: 80, mark: 0x3000, sourceFor: "10.1.0.1" },
      { host: "10.0.0.1", port: 8443, mark: 0x3001, sourceFor: "10.1.0.2" },
    ]);
  });

  test("a drained backend's probe service keeps weight 1; deleting the backend or the service deletes its probe service", async () => {
    const { gorb, driver } = makeGorb();
    await gorb.createService("web", { host: "10.0.0.1", port: 80 });
    await gorb.createBackend("web", "b1", { host: "10.1.0.1", method: "dr", weight: 0, pulse: via });
    await gorb.createBackend("web", "b2", { host: "10.1.0.2", method: "dr", pulse: via });
    await gorb.idle();
    expect(probeServices(driver.peek()).map((p) => p.destinations[0]?.weight)).toEqual([1, 1]);
    await gorb.deleteBackend("web", "b1");
    await gorb.idle();
    expect(probeServices(driver.peek()).map((p) => p.destinations[0]?.address)).toEqual(["10.1.0.2"]);
    await gorb.deleteService("web");
    await gorb.idle();
    expect(driver.peek()).toEqual([]);
  });

  test("a probe service deleted behind gorb's back comes back at the next reconcile, unreported; a stale one is removed", async () => {
    const { gorb, driver } = makeGorb();
    await gorb.createService("web", { host: "10.0.0.1", port: 80 });
    await gorb.createBackend("web", "b1", { host: "10.1.0.1", method: "dr", pulse: via });
    await gorb.idle();
    await driver.deleteService({ family: "inet", fwmark: 0x3000 });
    await driver.addService({ key: { family: "inet", fwmark: 0x30ff }, scheduler: "rr", flags: { persistent: false, hashed: false, onePacket: false, sched1: false, sched2: false, sched3: false }, timeout: 0, netmask: 32, pe: null } as never);
    const report = await gorb.reconcile();
    expect(report.repairs).toEqual([]);
    expect(probeServices(driver.peek()).map((p) => p.service.key)).toEqual([{ family: "inet", fwmark: 0x3000 }]);
  });

  test("a PATCH of the method or tunnel changes the probe service's destination in place", async () => {
    const { gorb, driver } = makeGorb();
    await gorb.createService("web", { host: "10.0.0.1", port: 80 });
    await gorb.createBackend("web", "b1", { host: "10.1.0.1", method: "dr", pulse: via });
    await gorb.idle();
    await gorb.updateBackend("web", "b1", { method: "tunnel", tunnel_type: "gre" });
    await gorb.idle();
    const [probe] = probeServices(driver.peek());
    expect([probe?.service.key, probe?.destinations[0]?.forward, probe?.destinations[0]?.tunnel?.type]).toEqual([{ family: "inet", fwmark: 0x3000 }, "tunnel", "gre"]);
  });

  test("a restarted gorb keeps its probe services as they are (same marks, no write); a state without them removes them", async () => {
    const driver = new MemoryIpvsDriver();
    const store = new MemoryStateStore();
    const first = makeGorb({ driver, store });
    await first.gorb.createService("web", { host: "10.0.0.1", port: 80 });
    await first.gorb.createBackend("web", "b1", { host: "10.1.0.1", method: "dr", pulse: via });
    await first.gorb.createBackend("web", "b2", { host: "10.1.0.2", method: "dr", pulse: via });
    await first.gorb.idle();
    const table = driver.peek();
    await first.gorb.close();
    driver.clearWrites();

    const again = makeGorb({ driver, store });
    const report = await again.gorb.restore(store.load());
    await again.gorb.idle();
    expect(report.repairs).toEqual([]);
    expect(driver.writes()).toEqual([]);
    expect(driver.peek()).toEqual(table);
    expect([...again.health.targets.values()].map((t) => t.backend.mark)).toEqual([0x3000, 0x3001]);
    await again.gorb.close();

    // Started without the saved state: the probe services are an earlier run's, removed at the first reconcile.
    const bare = makeGorb({ driver });
    await bare.gorb.restore({ services: [], backends: [] });
    await bare.gorb.reconcile();
    expect(probeServices(driver.peek())).toEqual([]);
  });

  test("switching a backend back to direct checks frees its mark and deletes its probe service", async () => {
    const { gorb, driver, health } = makeGorb();
    await gorb.createService("web", { host: "10.0.0.1", port: 80 });
    await gorb.createBackend("web", "b1", { host: "10.1.0.1", method: "dr", pulse: via });
    await gorb.idle();
    await gorb.updateBackend("web", "b1", { pulse: { type: "tcp", interval: "1s" } });
    await gorb.idle();
    expect(probeServices(driver.peek())).toEqual([]);
    expect([...health.targets.values()][0]?.backend).toEqual({ host: "10.1.0.1", port: 80 });
  });

  test("validation: via vip only for dr/tunnel backends of an address service, never with args.host; user fwmarks stay out of the range", async () => {
    const { gorb } = makeGorb();
    await gorb.createService("web", { host: "10.0.0.1", port: 80 });
    await gorb.createService("fw", { fwmark: 7 });
    const refused = async (p: Promise<unknown>) => {
      const e = await p.catch((x: unknown) => x);
      expect(e).toBeInstanceOf(ValidationError);
      return (e as ValidationError).message;
    };
    expect(await refused(gorb.createBackend("web", "n", { host: "10.1.0.1", method: "nat", pulse: via }))).toBe(
      'pulse.args.via: "vip" is for dr and tunnel backends, this one is nat',
    );
    expect(await refused(gorb.createBackend("fw", "d", { host: "10.1.0.1", method: "dr", pulse: via }))).toStartWith("pulse.args.via: ");
    expect(await refused(gorb.createBackend("web", "h", { host: "10.1.0.1", method: "dr", pulse: { args: { via: "vip", host: "10.9.9.9" } } }))).toStartWith(
      "pulse.args.host: ",
    );
    expect(await refused(gorb.createBackend("web", "v", { host: "10.1.0.1", method: "dr", pulse: { args: { via: "tunnel" } } }))).toBe(
      'pulse.args.via: must be one of direct, vip, got "tunnel"',
    );
    expect(await refused(gorb.createBackend("web", "six", { host: "2001:db8::1", method: "tunnel", pulse: via }))).toStartWith("pulse.args.via: ");
    // A type that cannot probe through the VIP refuses "vip" rather than drop it and check directly.
    const args = { via: "VIP", send: "x", name: "example.org", command: "/etc/gorb/checks/x" };
    for (const type of ["udp", "dns", "exec", "none"]) {
      expect(await refused(gorb.createBackend("web", type, { host: "10.1.0.1", method: "dr", pulse: { type, args } }))).toBe(
        `pulse.args.via: "vip" is for tcp, http, https, tls checks, not ${type}`,
      );
    }
    expect(await refused(gorb.createService("mine", { fwmark: 0x3010 }))).toStartWith("fwmark: 12304 (0x3010) is in the range");
    const { gorb: wide } = makeGorb({ probeMarks: { first: 100, last: 200 } });
    await wide.createService("mine", { fwmark: 0x3010 });
    expect(await refused(wide.createService("low", { fwmark: 150 }))).toStartWith("fwmark: 150");
  });

  test("wantedProbeServices: one complete service per route, and every other service of the range absent", () => {
    const dest = { family: "inet", address: "10.1.0.1", port: 80, forward: "dr", weight: 0, upperThreshold: 5, lowerThreshold: 1, tunnel: null } as const;
    const observed = observedTable([
      { service: { key: { family: "inet", fwmark: 0x3001 }, scheduler: "rr", flags: {} as never, timeout: 0, netmask: 32, pe: null, stats: {} as never }, destinations: [] },
      { service: { key: { family: "inet", fwmark: 7 }, scheduler: "rr", flags: {} as never, timeout: 0, netmask: 32, pe: null, stats: {} as never }, destinations: [] },
    ] as never);
    const wanted = wantedProbeServices([{ mark: 0x3000, service: { family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 }, dest }], observed, { first: 0x3000, last: 0x30ff });
    expect(wanted.map((w) => [w.config?.key ?? w.key, w.backends.map((b) => [b.dest?.weight, b.dest?.upperThreshold])])).toEqual([
      [{ family: "inet", fwmark: 0x3000 }, [[1, 0]]],
      [{ family: "inet", fwmark: 0x3001 }, []],
    ]);
  });
});
