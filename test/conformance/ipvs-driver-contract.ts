/**
 * The IpvsDriver contract: one suite that every driver must pass. It runs on the host against MemoryIpvsDriver
 * (test/unit/ipvs/memory-driver.test.ts) and inside the qemu guest against KernelIpvsDriver on a real Linux 6.1
 * kernel, so it asserts only what the real kernel does (plus the pre-send checks of src/ipvs/validate.ts, which
 * both drivers run). Nothing here depends on listing order: the kernel dumps services in hash order and
 * destinations newest first.
 *
 * Addresses: services use the VIPs 10.0.0.1 and 2001:db8::1; destinations live in 10.77.0.0/16 and
 * 2001:db8:77::/48, which the rig routes in the guest (the kernel refuses NAT/DR destinations it cannot route).
 * Kernel modules the guest needs: ip_vs, every ip_vs_<scheduler> listed in SCHEDULERS_UNDER_TEST, ip_vs_pe_sip
 * (with nf_conntrack_sip), nf_defrag_ipv6 for IPv6 services.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { describeDestination, describeService } from "../../src/ipvs/address.ts";
import type { ApplyResult, IpvsDriver } from "../../src/ipvs/driver.ts";
import { ERRNO, IpvsError, type ErrnoName } from "../../src/ipvs/errors.ts";
import type {
  Destination,
  DestinationConfig,
  DestinationKey,
  IpvsInfo,
  IpvsOp,
  Service,
  ServiceConfig,
  ServiceFlags,
  ServiceKey,
  ServiceWithDestinations,
  Stats,
  Timeouts,
  TunnelConfig,
} from "../../src/ipvs/types.ts";
import { NO_FLAGS, SCHEDULERS, isFwmarkKey } from "../../src/ipvs/types.ts";

/** A driver to run the contract against, with optional hooks. */
export interface DriverUnderTest {
  readonly driver: IpvsDriver;
  /** Called after every successful write (the kernel run compares gorb's view with `ipvsadm -Ln` here). */
  readonly afterWrite?: (driver: IpvsDriver) => Promise<void>;
  /** Called once after the last test; the driver is closed here when there is no teardown. */
  readonly teardown?: () => Promise<void>;
}

/** The schedulers a Debian 12 (Linux 6.1) kernel ships as modules: every known one but "twos" (Linux 6.2+). */
export const SCHEDULERS_UNDER_TEST = SCHEDULERS.filter((s) => s !== "twos");

// ---- fixtures ------------------------------------------------------------------------------------------------

const VIP4 = "10.0.0.1";
const VIP6 = "2001:db8::1";
const rs4 = (n: number) => `10.77.1.${n}`;
const rs6 = (n: number) => `2001:db8:77:1::${n}`;

const tcp4 = (port = 80): ServiceKey => ({ family: "inet", protocol: "tcp", address: VIP4, port });
const udp4 = (port = 53): ServiceKey => ({ family: "inet", protocol: "udp", address: VIP4, port });
const tcp6 = (port = 80): ServiceKey => ({ family: "inet6", protocol: "tcp", address: VIP6, port });
const udp6 = (port = 53): ServiceKey => ({ family: "inet6", protocol: "udp", address: VIP6, port });
const fwmark = (mark: number, family: "inet" | "inet6" = "inet"): ServiceKey => ({ family, fwmark: mark });

function svc(key: ServiceKey, over: Partial<Omit<ServiceConfig, "key">> = {}): ServiceConfig {
  return {
    key,
    scheduler: "wlc",
    flags: NO_FLAGS,
    timeout: 0,
    netmask: key.family === "inet" ? 32 : 128,
    pe: null,
    ...over,
  };
}

function flags(over: Partial<ServiceFlags>): ServiceFlags {
  return { ...NO_FLAGS, ...over };
}

function dest(address: string, port: number, over: Partial<Omit<DestinationConfig, "address" | "port">> = {}): DestinationConfig {
  return {
    family: address.includes(":") ? "inet6" : "inet",
    address,
    port,
    forward: "nat",
    weight: 1,
    upperThreshold: 0,
    lowerThreshold: 0,
    tunnel: null,
    ...over,
  };
}

function keyOf(d: DestinationKey): DestinationKey {
  return { family: d.family, address: d.address, port: d.port };
}

const PLAIN_IPIP: TunnelConfig = { type: "ipip", port: 0, checksum: "nocsum" };

// ---- comparison helpers ------------------------------------------------------------------------------------------

function serviceSortKey(key: ServiceKey): string {
  return isFwmarkKey(key) ? `${key.family} fwmark ${key.fwmark}` : `${key.family} ${key.protocol} ${key.address} ${key.port}`;
}

function destinationSortKey(key: DestinationKey): string {
  return `${key.family} ${key.address} ${key.port}`;
}

/** The configuration part of a read-back service. */
function configOf(s: Service): ServiceConfig {
  return { key: s.key, scheduler: s.scheduler, flags: s.flags, timeout: s.timeout, netmask: s.netmask, pe: s.pe };
}

/** The configuration part of a read-back destination. */
function destConfigOf(d: Destination): DestinationConfig {
  return {
    family: d.family,
    address: d.address,
    port: d.port,
    forward: d.forward,
    weight: d.weight,
    upperThreshold: d.upperThreshold,
    lowerThreshold: d.lowerThreshold,
    tunnel: d.tunnel,
  };
}

function sortServices(list: readonly ServiceConfig[]): ServiceConfig[] {
  return [...list].sort((a, b) => serviceSortKey(a.key).localeCompare(serviceSortKey(b.key)));
}

function sortDestinations(list: readonly DestinationConfig[]): DestinationConfig[] {
  return [...list].sort((a, b) => destinationSortKey(a).localeCompare(destinationSortKey(b)));
}

/** What a destination reads back as: tunnel options only on tunnel destinations, plain IPIP when none were given. */
function expectedDest(d: DestinationConfig): DestinationConfig {
  if (d.forward !== "tunnel") return { ...d, tunnel: null };
  return { ...d, tunnel: d.tunnel ?? PLAIN_IPIP };
}

async function expectDestinations(driver: IpvsDriver, key: ServiceKey, want: readonly DestinationConfig[]): Promise<void> {
  const got = (await driver.listDestinations(key)).map(destConfigOf);
  expect(sortDestinations(got)).toEqual(sortDestinations(want.map(expectedDest)));
}

async function expectServices(driver: IpvsDriver, want: readonly ServiceConfig[]): Promise<void> {
  const got = (await driver.listServices()).map(configOf);
  expect(sortServices(got)).toEqual(sortServices(want));
}

const STAT_FIELDS: readonly (keyof Stats)[] = [
  "conns",
  "inPkts",
  "outPkts",
  "inBytes",
  "outBytes",
  "cps",
  "inPps",
  "outPps",
  "inBps",
  "outBps",
];

function expectStats(stats: Stats): void {
  for (const field of STAT_FIELDS) {
    expect(typeof stats[field]).toBe("number");
    expect(stats[field]).toBeGreaterThanOrEqual(0);
  }
}

/** Awaits `promise`, expects it to reject with an IpvsError of `code`, and a message containing every `mention`. */
async function expectIpvsError(promise: Promise<unknown>, code: ErrnoName, ...mentions: string[]): Promise<IpvsError> {
  let caught: unknown = null;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(IpvsError);
  const error = caught as IpvsError;
  expect(error.code).toBe(code);
  expect(error.errno).toBe(ERRNO[code]);
  for (const mention of mentions) expect(error.message).toContain(mention);
  return error;
}

function codes(results: ApplyResult): (string | null)[] {
  return results.map((r) => (r === null ? null : r.code));
}

function canonicalSnapshot(snapshot: readonly ServiceWithDestinations[]): { service: ServiceConfig; destinations: DestinationConfig[] }[] {
  return snapshot
    .map((s) => ({ service: configOf(s.service), destinations: sortDestinations(s.destinations.map(destConfigOf)) }))
    .sort((a, b) => serviceSortKey(a.service.key).localeCompare(serviceSortKey(b.service.key)));
}

// ---- a driver that reports every successful write --------------------------------------------------------------

/** Wraps the driver under test so that every successful write is followed by `afterWrite`. */
class ObservedDriver implements IpvsDriver {
  constructor(
    private readonly inner: IpvsDriver,
    private readonly afterWrite: (driver: IpvsDriver) => Promise<void>,
  ) {}

  private async write<T>(run: () => Promise<T>): Promise<T> {
    const result = await run();
    await this.afterWrite(this.inner);
    return result;
  }

  info(): Promise<IpvsInfo> {
    return this.inner.info();
  }
  getTimeouts(): Promise<Timeouts> {
    return this.inner.getTimeouts();
  }
  setTimeouts(timeouts: Partial<Timeouts>): Promise<void> {
    return this.write(() => this.inner.setTimeouts(timeouts));
  }
  flush(): Promise<void> {
    return this.write(() => this.inner.flush());
  }
  zero(key?: ServiceKey): Promise<void> {
    return this.write(() => this.inner.zero(key));
  }
  addService(service: ServiceConfig): Promise<void> {
    return this.write(() => this.inner.addService(service));
  }
  updateService(service: ServiceConfig): Promise<void> {
    return this.write(() => this.inner.updateService(service));
  }
  deleteService(key: ServiceKey): Promise<void> {
    return this.write(() => this.inner.deleteService(key));
  }
  getService(key: ServiceKey): Promise<Service> {
    return this.inner.getService(key);
  }
  listServices(): Promise<Service[]> {
    return this.inner.listServices();
  }
  addDestination(service: ServiceKey, destination: DestinationConfig): Promise<void> {
    return this.write(() => this.inner.addDestination(service, destination));
  }
  updateDestination(service: ServiceKey, destination: DestinationConfig): Promise<void> {
    return this.write(() => this.inner.updateDestination(service, destination));
  }
  deleteDestination(service: ServiceKey, destination: DestinationKey): Promise<void> {
    return this.write(() => this.inner.deleteDestination(service, destination));
  }
  listDestinations(service: ServiceKey): Promise<Destination[]> {
    return this.inner.listDestinations(service);
  }
  snapshot(): Promise<ServiceWithDestinations[]> {
    return this.inner.snapshot();
  }
  async apply(ops: readonly IpvsOp[]): Promise<ApplyResult> {
    const results = await this.inner.apply(ops);
    if (results.some((r) => r === null)) await this.afterWrite(this.inner);
    return results;
  }
  close(): void {
    this.inner.close();
  }
}

// ---- the suite ---------------------------------------------------------------------------------------------------

/**
 * Registers the IpvsDriver contract tests for the driver that `setup` returns. `setup` runs once; every test
 * starts from a flushed table.
 */
export function describeIpvsDriver(name: string, setup: () => Promise<DriverUnderTest>): void {
  describe(`IpvsDriver contract: ${name}`, () => {
    let underTest: DriverUnderTest | null = null;
    let observed: IpvsDriver | null = null;

    /** The driver for the current test, reporting writes to afterWrite. */
    const drv = (): IpvsDriver => {
      if (observed === null) throw new Error("the driver under test was not set up");
      return observed;
    };

    beforeAll(async () => {
      underTest = await setup();
      const afterWrite = underTest.afterWrite;
      observed = afterWrite === undefined ? underTest.driver : new ObservedDriver(underTest.driver, afterWrite);
    });

    afterAll(async () => {
      if (underTest === null) return;
      await underTest.driver.flush();
      if (underTest.teardown !== undefined) await underTest.teardown();
      else underTest.driver.close();
    });

    beforeEach(async () => {
      await drv().flush();
    });

    // ---- info, timeouts, flush, zero ----------------------------------------------------------------------------

    describe("info", () => {
      test("reports a dotted version matching its version code and a positive connection table size", async () => {
        const info = await drv().info();
        expect(info.version).toMatch(/^\d+\.\d+\.\d+$/);
        const [major, minor, patch] = info.version.split(".").map(Number);
        expect(info.versionCode).toBe(((major ?? 0) << 16) | ((minor ?? 0) << 8) | (patch ?? 0));
        expect(info.versionCode).toBeGreaterThan(0);
        expect(Number.isInteger(info.connTableSize)).toBe(true);
        expect(info.connTableSize).toBeGreaterThan(0);
      });
    });

    describe("timeouts", () => {
      test("getTimeouts returns whole positive seconds for tcp, tcpfin and udp", async () => {
        const t = await drv().getTimeouts();
        for (const value of [t.tcp, t.tcpFin, t.udp]) {
          expect(Number.isInteger(value)).toBe(true);
          expect(value).toBeGreaterThan(0);
        }
      });

      test("setting one timeout changes only that one", async () => {
        const before = await drv().getTimeouts();
        try {
          await drv().setTimeouts({ tcpFin: before.tcpFin + 7 });
          expect(await drv().getTimeouts()).toEqual({ ...before, tcpFin: before.tcpFin + 7 });
          await drv().setTimeouts({ udp: before.udp + 11 });
          expect(await drv().getTimeouts()).toEqual({ ...before, tcpFin: before.tcpFin + 7, udp: before.udp + 11 });
        } finally {
          await drv().setTimeouts(before);
        }
        expect(await drv().getTimeouts()).toEqual(before);
      });

      test("a timeout of 0 or left out keeps the current value", async () => {
        const before = await drv().getTimeouts();
        await drv().setTimeouts({ tcp: 0, tcpFin: 0, udp: 0 });
        expect(await drv().getTimeouts()).toEqual(before);
        await drv().setTimeouts({});
        expect(await drv().getTimeouts()).toEqual(before);
      });

      test("a negative timeout is refused with EINVAL and changes nothing", async () => {
        const before = await drv().getTimeouts();
        await expectIpvsError(drv().setTimeouts({ tcp: -1 }), "EINVAL", "tcp");
        expect(await drv().getTimeouts()).toEqual(before);
      });
    });

    describe("flush", () => {
      test("removes every service of every kind together with its destinations", async () => {
        await drv().addService(svc(tcp4()));
        await drv().addDestination(tcp4(), dest(rs4(2), 8080));
        await drv().addService(svc(udp6()));
        await drv().addDestination(udp6(), dest(rs6(2), 53));
        await drv().addService(svc(fwmark(7)));
        await drv().addService(svc(fwmark(7, "inet6")));
        expect((await drv().listServices()).length).toBe(4);

        await drv().flush();

        expect(await drv().listServices()).toEqual([]);
        expect(await drv().snapshot()).toEqual([]);
        await expectIpvsError(drv().getService(tcp4()), "ESRCH");
        await expectIpvsError(drv().listDestinations(udp6()), "ESRCH");
      });

      test("flushing an empty table succeeds", async () => {
        await drv().flush();
        expect(await drv().listServices()).toEqual([]);
      });
    });

    describe("zero", () => {
      test("zeroing everything keeps every service and destination", async () => {
        await drv().addService(svc(tcp4()));
        await drv().addDestination(tcp4(), dest(rs4(2), 8080));
        await drv().addService(svc(fwmark(3)));
        const before = canonicalSnapshot(await drv().snapshot());
        await drv().zero();
        expect(canonicalSnapshot(await drv().snapshot())).toEqual(before);
        const service = await drv().getService(tcp4());
        expectStats(service.stats);
      });

      test("zeroing one service keeps it and its destinations", async () => {
        await drv().addService(svc(tcp6()));
        await drv().addDestination(tcp6(), dest(rs6(2), 80));
        const before = canonicalSnapshot(await drv().snapshot());
        await drv().zero(tcp6());
        expect(canonicalSnapshot(await drv().snapshot())).toEqual(before);
        for (const d of await drv().listDestinations(tcp6())) expectStats(d.stats);
      });

      test("zeroing a missing service fails with ESRCH naming it", async () => {
        await expectIpvsError(drv().zero(tcp4(8443)), "ESRCH", "no such service", describeService(tcp4(8443)));
      });
    });

    // ---- services ---------------------------------------------------------------------------------------------------

    describe("services", () => {
      const lifecycleCases: ServiceKey[] = [
        tcp4(),
        udp4(),
        { family: "inet", protocol: "sctp", address: VIP4, port: 3868 },
        tcp6(443),
        udp6(),
        { family: "inet6", protocol: "sctp", address: VIP6, port: 3868 },
        fwmark(42),
        fwmark(42, "inet6"),
      ];

      for (const key of lifecycleCases) {
        test(`add, get, list, update and delete ${describeService(key)}`, async () => {
          const created = svc(key, { scheduler: "rr" });
          await drv().addService(created);

          const got = await drv().getService(key);
          expect(configOf(got)).toEqual(created);
          expectStats(got.stats);
          await expectServices(drv(), [created]);
          expect(await drv().listDestinations(key)).toEqual([]);

          const updated = svc(key, { scheduler: "wrr" });
          await drv().updateService(updated);
          expect(configOf(await drv().getService(key))).toEqual(updated);
          await expectServices(drv(), [updated]);

          await drv().deleteService(key);
          expect(await drv().listServices()).toEqual([]);
          await expectIpvsError(drv().getService(key), "ESRCH", describeService(key));
        });
      }

      test("IPv6 addresses are read back in canonical form and found by any spelling", async () => {
        const spelled: ServiceKey = { family: "inet6", protocol: "tcp", address: "2001:DB8:0:0:0:0:0:1", port: 80 };
        await drv().addService(svc(spelled));
        const [only] = await drv().listServices();
        expect(only?.key).toEqual(tcp6());
        expect(configOf(await drv().getService(tcp6()))).toEqual(svc(tcp6()));
        expect(configOf(await drv().getService(spelled))).toEqual(svc(tcp6()));

        await drv().addDestination(spelled, dest("2001:DB8:77:1:0:0:0:2", 80));
        const [d] = await drv().listDestinations(tcp6());
        expect(d?.address).toBe(rs6(2));
        await drv().deleteDestination(tcp6(), { family: "inet6", address: "2001:db8:77:1:0::2", port: 80 });
        expect(await drv().listDestinations(tcp6())).toEqual([]);

        await drv().deleteService(spelled);
        expect(await drv().listServices()).toEqual([]);
      });

      test("services that differ only in protocol, port, family or fwmark family are distinct", async () => {
        const all = [
          svc(tcp4(80)),
          svc(udp4(80)),
          svc(tcp4(81)),
          svc(tcp6(80)),
          svc(fwmark(1)),
          svc(fwmark(1, "inet6")),
          svc(fwmark(2)),
        ];
        for (const s of all) await drv().addService(s);
        await expectServices(drv(), all);
        await drv().deleteService(udp4(80));
        await drv().deleteService(fwmark(1, "inet6"));
        await expectServices(
          drv(),
          all.filter((s) => s.key !== all[1]?.key && s.key !== all[5]?.key),
        );
      });

      for (const scheduler of SCHEDULERS_UNDER_TEST) {
        test(`scheduler ${scheduler}: add with destinations, read back, switch away`, async () => {
          const created = svc(tcp4(), { scheduler });
          await drv().addService(created);
          const dests = [dest(rs4(2), 8080, { weight: 1 }), dest(rs4(3), 8080, { weight: 3 })];
          for (const d of dests) await drv().addDestination(tcp4(), d);
          expect((await drv().getService(tcp4())).scheduler).toBe(scheduler);
          await expectDestinations(drv(), tcp4(), dests);

          await drv().updateService(svc(tcp4(), { scheduler: scheduler === "rr" ? "wlc" : "rr" }));
          expect((await drv().getService(tcp4())).scheduler).toBe(scheduler === "rr" ? "wlc" : "rr");
          await drv().updateService(created);
          expect(configOf(await drv().getService(tcp4()))).toEqual(created);
          await expectDestinations(drv(), tcp4(), dests);
        });
      }

      test("scheduler flags sched1, sched2 and sched3 on sh read back exactly", async () => {
        await drv().addService(svc(tcp4(), { scheduler: "sh", flags: flags({ sched1: true }) }));
        expect((await drv().getService(tcp4())).flags).toEqual(flags({ sched1: true }));
        for (const f of [
          flags({ sched2: true }),
          flags({ sched1: true, sched2: true }),
          flags({ sched3: true }),
          flags({ sched1: true, sched2: true, sched3: true }),
          NO_FLAGS,
        ]) {
          await drv().updateService(svc(tcp4(), { scheduler: "sh", flags: f }));
          expect((await drv().getService(tcp4())).flags).toEqual(f);
        }
      });

      test("scheduler flags mh-fallback and mh-port on mh read back exactly", async () => {
        const created = svc(udp6(), { scheduler: "mh", flags: flags({ sched1: true, sched2: true }) });
        await drv().addService(created);
        await drv().addDestination(udp6(), dest(rs6(2), 53));
        expect(configOf(await drv().getService(udp6()))).toEqual(created);
        await drv().updateService(svc(udp6(), { scheduler: "mh", flags: flags({ sched2: true }) }));
        expect((await drv().getService(udp6())).flags).toEqual(flags({ sched2: true }));
      });

      test("persistence on IPv4 with a timeout and a /24 netmask", async () => {
        const created = svc(tcp4(443), { flags: flags({ persistent: true }), timeout: 300, netmask: 24 });
        await drv().addService(created);
        expect(configOf(await drv().getService(tcp4(443)))).toEqual(created);
        const longer = svc(tcp4(443), { flags: flags({ persistent: true }), timeout: 3600, netmask: 16 });
        await drv().updateService(longer);
        expect(configOf(await drv().getService(tcp4(443)))).toEqual(longer);
      });

      test("persistence on IPv6 with a timeout and a /64 netmask", async () => {
        const created = svc(tcp6(443), { flags: flags({ persistent: true }), timeout: 600, netmask: 64 });
        await drv().addService(created);
        expect(configOf(await drv().getService(tcp6(443)))).toEqual(created);
      });

      test("a persistent service may listen on port 0 (all ports)", async () => {
        const created = svc(tcp4(0), { flags: flags({ persistent: true }), timeout: 360, netmask: 32 });
        await drv().addService(created);
        expect(configOf(await drv().getService(tcp4(0)))).toEqual(created);
        await drv().addDestination(tcp4(0), dest(rs4(2), 0, { forward: "dr" }));
        await expectDestinations(drv(), tcp4(0), [dest(rs4(2), 0, { forward: "dr" })]);
      });

      test("the kernel also takes a non-persistent service on port 0 (only ipvsadm refuses it)", async () => {
        await drv().addService(svc(udp4(0)));
        expect(configOf(await drv().getService(udp4(0)))).toEqual(svc(udp4(0)));
      });

      test("one-packet scheduling on a UDP service", async () => {
        const created = svc(udp4(), { scheduler: "rr", flags: flags({ onePacket: true }) });
        await drv().addService(created);
        expect(configOf(await drv().getService(udp4()))).toEqual(created);
        await drv().updateService(svc(udp4(), { scheduler: "rr" }));
        expect((await drv().getService(udp4())).flags).toEqual(NO_FLAGS);
      });

      test("persistence engine sip on a persistent UDP service; an update without it removes it", async () => {
        const key = udp4(5060);
        const created = svc(key, { flags: flags({ persistent: true }), timeout: 180, netmask: 32, pe: "sip" });
        await drv().addService(created);
        expect(configOf(await drv().getService(key))).toEqual(created);
        const withoutPe = svc(key, { flags: flags({ persistent: true }), timeout: 180, netmask: 32 });
        await drv().updateService(withoutPe);
        expect((await drv().getService(key)).pe).toBeNull();
        await drv().updateService(created);
        expect((await drv().getService(key)).pe).toBe("sip");
      });

      test("an update in place changes scheduler, flags and timeout and keeps the destinations", async () => {
        await drv().addService(svc(tcp4(), { scheduler: "wlc" }));
        const dests = [
          dest(rs4(2), 8080, { weight: 5 }),
          dest(rs4(3), 8080, { weight: 0, upperThreshold: 100, lowerThreshold: 10 }),
          dest(rs4(4), 8080, { forward: "dr" }),
        ];
        for (const d of dests) await drv().addDestination(tcp4(), d);
        const updated = svc(tcp4(), {
          scheduler: "sh",
          flags: flags({ persistent: true, sched1: true }),
          timeout: 900,
          netmask: 24,
        });
        await drv().updateService(updated);
        expect(configOf(await drv().getService(tcp4()))).toEqual(updated);
        await expectDestinations(drv(), tcp4(), dests);
      });
    });

    // ---- destinations -----------------------------------------------------------------------------------------------

    describe("destinations", () => {
      test("nat destination: add, list, update and delete", async () => {
        await drv().addService(svc(tcp4()));
        const a = dest(rs4(2), 8080, { weight: 10 });
        const b = dest(rs4(3), 8081, { weight: 20 });
        await drv().addDestination(tcp4(), a);
        await drv().addDestination(tcp4(), b);
        await expectDestinations(drv(), tcp4(), [a, b]);

        const a2 = { ...a, weight: 77 };
        await drv().updateDestination(tcp4(), a2);
        await expectDestinations(drv(), tcp4(), [a2, b]);

        await drv().deleteDestination(tcp4(), keyOf(a));
        await expectDestinations(drv(), tcp4(), [b]);
        await drv().deleteDestination(tcp4(), keyOf(b));
        expect(await drv().listDestinations(tcp4())).toEqual([]);
        expect(configOf(await drv().getService(tcp4()))).toEqual(svc(tcp4()));
      });

      test("dr destination", async () => {
        await drv().addService(svc(tcp4()));
        const d = dest(rs4(2), 80, { forward: "dr", weight: 3 });
        await drv().addDestination(tcp4(), d);
        await expectDestinations(drv(), tcp4(), [d]);
        await drv().updateDestination(tcp4(), { ...d, weight: 4 });
        await expectDestinations(drv(), tcp4(), [{ ...d, weight: 4 }]);
      });

      test("local destination on 127.0.0.1", async () => {
        await drv().addService(svc(tcp4()));
        const d = dest("127.0.0.1", 8080, { forward: "local" });
        await drv().addDestination(tcp4(), d);
        await expectDestinations(drv(), tcp4(), [d]);
      });

      test("IPv6 nat destinations in an IPv6 service", async () => {
        await drv().addService(svc(tcp6()));
        const a = dest(rs6(2), 8080);
        const b = dest(rs6(3), 8080, { forward: "dr", weight: 2 });
        await drv().addDestination(tcp6(), a);
        await drv().addDestination(tcp6(), b);
        await expectDestinations(drv(), tcp6(), [a, b]);
        await drv().deleteDestination(tcp6(), keyOf(b));
        await expectDestinations(drv(), tcp6(), [a]);
      });

      test("tunnel destination without options reads back as plain ipip", async () => {
        await drv().addService(svc(tcp4()));
        await drv().addDestination(tcp4(), dest(rs4(2), 80, { forward: "tunnel" }));
        const [d] = await drv().listDestinations(tcp4());
        expect(d?.forward).toBe("tunnel");
        expect(d?.tunnel).toEqual(PLAIN_IPIP);
        const explicit = dest(rs4(3), 80, { forward: "tunnel", tunnel: PLAIN_IPIP });
        await drv().addDestination(tcp4(), explicit);
        await expectDestinations(drv(), tcp4(), [dest(rs4(2), 80, { forward: "tunnel" }), explicit]);
      });

      const tunnels: [string, TunnelConfig][] = [
        ["gue with a port and csum", { type: "gue", port: 6080, checksum: "csum" }],
        ["gue with a port and remcsum", { type: "gue", port: 6081, checksum: "remcsum" }],
        ["gue with a port and no checksum", { type: "gue", port: 5555, checksum: "nocsum" }],
        ["gre with csum", { type: "gre", port: 0, checksum: "csum" }],
        ["gre without checksum", { type: "gre", port: 0, checksum: "nocsum" }],
      ];
      for (const [label, tunnel] of tunnels) {
        test(`tunnel destination: ${label}`, async () => {
          await drv().addService(svc(udp4()));
          const d = dest(rs4(2), 53, { forward: "tunnel", tunnel, weight: 2 });
          await drv().addDestination(udp4(), d);
          await expectDestinations(drv(), udp4(), [d]);
          await drv().updateDestination(udp4(), { ...d, weight: 9 });
          await expectDestinations(drv(), udp4(), [{ ...d, weight: 9 }]);
        });
      }

      test("an update is a full replace: tunnel options left out are reset", async () => {
        await drv().addService(svc(udp4()));
        const gue = dest(rs4(2), 53, { forward: "tunnel", tunnel: { type: "gue", port: 6080, checksum: "csum" } });
        await drv().addDestination(udp4(), gue);
        await drv().updateDestination(udp4(), { ...gue, tunnel: null });
        const [d] = await drv().listDestinations(udp4());
        expect(d?.tunnel).toEqual(PLAIN_IPIP);
      });

      test("an update can change the forwarding method", async () => {
        await drv().addService(svc(tcp4()));
        const d = dest(rs4(2), 80);
        await drv().addDestination(tcp4(), d);
        for (const next of [
          { ...d, forward: "dr" as const },
          { ...d, forward: "tunnel" as const, tunnel: { type: "gre" as const, port: 0, checksum: "csum" as const } },
          { ...d, forward: "nat" as const },
        ]) {
          await drv().updateDestination(tcp4(), next);
          await expectDestinations(drv(), tcp4(), [next]);
        }
      });

      test("weight 0 (quiescent) and the largest weight 2^31-1 are accepted", async () => {
        await drv().addService(svc(tcp4()));
        const idle = dest(rs4(2), 80, { weight: 0 });
        const heavy = dest(rs4(3), 80, { weight: 2147483647 });
        await drv().addDestination(tcp4(), idle);
        await drv().addDestination(tcp4(), heavy);
        await expectDestinations(drv(), tcp4(), [idle, heavy]);
        await drv().updateDestination(tcp4(), { ...heavy, weight: 0 });
        await expectDestinations(drv(), tcp4(), [idle, { ...heavy, weight: 0 }]);
      });

      test("upper and lower connection thresholds read back and can be cleared", async () => {
        await drv().addService(svc(tcp4()));
        const d = dest(rs4(2), 80, { upperThreshold: 1000, lowerThreshold: 750 });
        await drv().addDestination(tcp4(), d);
        await expectDestinations(drv(), tcp4(), [d]);
        const equal = { ...d, upperThreshold: 500, lowerThreshold: 500 };
        await drv().updateDestination(tcp4(), equal);
        await expectDestinations(drv(), tcp4(), [equal]);
        const upperOnly = { ...d, upperThreshold: 200, lowerThreshold: 0 };
        await drv().updateDestination(tcp4(), upperOnly);
        await expectDestinations(drv(), tcp4(), [upperOnly]);
        const cleared = { ...d, upperThreshold: 0, lowerThreshold: 0 };
        await drv().updateDestination(tcp4(), cleared);
        await expectDestinations(drv(), tcp4(), [cleared]);
      });

      test("an IPv4 destination behind an IPv6 service over a tunnel (mixed family)", async () => {
        await drv().addService(svc(tcp6()));
        const d = dest(rs4(2), 80, { forward: "tunnel" });
        await drv().addDestination(tcp6(), d);
        const [got] = await drv().listDestinations(tcp6());
        expect(got?.family).toBe("inet");
        expect(got?.address).toBe(rs4(2));
        await expectDestinations(drv(), tcp6(), [d]);
        const gre = { ...d, weight: 4, tunnel: { type: "gre" as const, port: 0, checksum: "nocsum" as const } };
        await drv().updateDestination(tcp6(), gre);
        await expectDestinations(drv(), tcp6(), [gre]);
        await drv().deleteDestination(tcp6(), keyOf(d));
        expect(await drv().listDestinations(tcp6())).toEqual([]);
      });

      test("a fwmark service takes destinations on port 0", async () => {
        await drv().addService(svc(fwmark(9)));
        const a = dest(rs4(2), 0);
        const b = dest(rs4(3), 0, { forward: "dr" });
        await drv().addDestination(fwmark(9), a);
        await drv().addDestination(fwmark(9), b);
        await expectDestinations(drv(), fwmark(9), [a, b]);
      });

      test("the same destination in two services is two independent destinations", async () => {
        await drv().addService(svc(tcp4(80)));
        await drv().addService(svc(tcp4(81)));
        const d = dest(rs4(2), 8080);
        await drv().addDestination(tcp4(80), d);
        await drv().addDestination(tcp4(81), { ...d, weight: 7 });
        await drv().deleteDestination(tcp4(80), keyOf(d));
        expect(await drv().listDestinations(tcp4(80))).toEqual([]);
        await expectDestinations(drv(), tcp4(81), [{ ...d, weight: 7 }]);
      });

      test("a deleted destination can be added again with a new configuration", async () => {
        await drv().addService(svc(tcp4()));
        const d = dest(rs4(2), 8080, { weight: 5 });
        await drv().addDestination(tcp4(), d);
        await drv().deleteDestination(tcp4(), keyOf(d));
        const again = { ...d, weight: 2, forward: "dr" as const };
        await drv().addDestination(tcp4(), again);
        await expectDestinations(drv(), tcp4(), [again]);
      });

      test("destination counters are non-negative numbers", async () => {
        await drv().addService(svc(tcp4()));
        await drv().addDestination(tcp4(), dest(rs4(2), 8080));
        const [d] = await drv().listDestinations(tcp4());
        expect(d).toBeDefined();
        if (d === undefined) return;
        for (const n of [d.activeConns, d.inactiveConns, d.persistentConns]) {
          expect(typeof n).toBe("number");
          expect(n).toBeGreaterThanOrEqual(0);
        }
        expectStats(d.stats);
      });
    });

    // ---- errors -----------------------------------------------------------------------------------------------------

    describe("errors", () => {
      test("adding an existing service: EEXIST, and the first one is kept", async () => {
        const first = svc(tcp4(), { scheduler: "rr" });
        await drv().addService(first);
        await expectIpvsError(
          drv().addService(svc(tcp4(), { scheduler: "wrr" })),
          "EEXIST",
          `service ${describeService(tcp4())} already exists`,
        );
        expect(configOf(await drv().getService(tcp4()))).toEqual(first);
        await drv().addService(svc(fwmark(5)));
        await expectIpvsError(drv().addService(svc(fwmark(5))), "EEXIST", describeService(fwmark(5)));
      });

      test("update, delete, get and list-destinations of a missing service: ESRCH", async () => {
        await drv().addService(svc(tcp4(80)));
        const missing = tcp4(8443);
        const named = `no such service ${describeService(missing)}`;
        await expectIpvsError(drv().updateService(svc(missing)), "ESRCH", named);
        await expectIpvsError(drv().deleteService(missing), "ESRCH", named);
        await expectIpvsError(drv().getService(missing), "ESRCH", named);
        await expectIpvsError(drv().listDestinations(missing), "ESRCH", named);
        await expectIpvsError(drv().getService(udp4(80)), "ESRCH", describeService(udp4(80)));
        await expectIpvsError(drv().getService(fwmark(80)), "ESRCH", describeService(fwmark(80)));
        await expectServices(drv(), [svc(tcp4(80))]);
      });

      test("destination writes on a missing service: ESRCH", async () => {
        const missing = udp6(5353);
        const d = dest(rs6(2), 5353);
        await expectIpvsError(drv().addDestination(missing, d), "ESRCH", describeService(missing));
        await expectIpvsError(drv().updateDestination(missing, d), "ESRCH", describeService(missing));
        await expectIpvsError(drv().deleteDestination(missing, keyOf(d)), "ESRCH", describeService(missing));
      });

      test("an unknown scheduler on add: ENOENT, and no service is created", async () => {
        await expectIpvsError(
          drv().addService(svc(tcp4(), { scheduler: "nosuchsched" })),
          "ENOENT",
          'unknown scheduler "nosuchsched"',
          "ip_vs_nosuchsched",
          describeService(tcp4()),
        );
        expect(await drv().listServices()).toEqual([]);
      });

      test("an unknown scheduler on update: ENOENT, and the service is unchanged", async () => {
        const first = svc(tcp4(), { scheduler: "lc" });
        await drv().addService(first);
        await expectIpvsError(
          drv().updateService(svc(tcp4(), { scheduler: "nosuchsched" })),
          "ENOENT",
          'unknown scheduler "nosuchsched"',
        );
        expect(configOf(await drv().getService(tcp4()))).toEqual(first);
      });

      test("an unknown persistence engine: ENOENT on add and on update", async () => {
        const key = udp4(5060);
        const bad = svc(key, { flags: flags({ persistent: true }), timeout: 60, pe: "nosuchpe" });
        await expectIpvsError(drv().addService(bad), "ENOENT", '"nosuchpe"', describeService(key));
        expect(await drv().listServices()).toEqual([]);
        await drv().addService(svc(key));
        await expectIpvsError(drv().updateService(bad), "ENOENT", '"nosuchpe"');
        expect(configOf(await drv().getService(key))).toEqual(svc(key));
      });

      test("an IPv6 netmask outside 1..128: EINVAL on add and on update", async () => {
        for (const netmask of [0, 129]) {
          await expectIpvsError(drv().addService(svc(tcp6(), { netmask })), "EINVAL", describeService(tcp6()));
        }
        expect(await drv().listServices()).toEqual([]);
        await drv().addService(svc(tcp6()));
        await expectIpvsError(drv().updateService(svc(tcp6(), { netmask: 0 })), "EINVAL", "netmask");
        expect(configOf(await drv().getService(tcp6()))).toEqual(svc(tcp6()));
      });

      test("an IPv4 netmask prefix above 32: EINVAL", async () => {
        await expectIpvsError(
          drv().addService(svc(tcp4(), { flags: flags({ persistent: true }), netmask: 33 })),
          "EINVAL",
          "netmask",
          describeService(tcp4()),
        );
        expect(await drv().listServices()).toEqual([]);
      });

      test("a port or fwmark out of range: EINVAL naming the field", async () => {
        for (const port of [65536, -1, 1.5]) {
          await expectIpvsError(drv().addService(svc(tcp4(port))), "EINVAL", "port");
        }
        for (const mark of [0, 2 ** 32, -1]) {
          await expectIpvsError(drv().addService(svc(fwmark(mark))), "EINVAL", "fwmark");
        }
        await drv().addService(svc(tcp4()));
        await expectIpvsError(drv().addDestination(tcp4(), dest(rs4(2), 70000)), "EINVAL", "port");
        await expectServices(drv(), [svc(tcp4())]);
        expect(await drv().listDestinations(tcp4())).toEqual([]);
      });

      test("adding an existing destination: EEXIST, and the first one is kept", async () => {
        await drv().addService(svc(tcp4()));
        const d = dest(rs4(2), 8080, { weight: 3 });
        await drv().addDestination(tcp4(), d);
        await expectIpvsError(
          drv().addDestination(tcp4(), { ...d, weight: 9 }),
          "EEXIST",
          `destination ${describeDestination(d)} already exists in service ${describeService(tcp4())}`,
        );
        await expectDestinations(drv(), tcp4(), [d]);
      });

      test("updating or deleting a missing destination: ENOENT naming it and its service", async () => {
        await drv().addService(svc(tcp4()));
        await drv().addDestination(tcp4(), dest(rs4(2), 8080));
        const missing = dest(rs4(9), 8080);
        const named = `no such destination ${describeDestination(missing)} in service ${describeService(tcp4())}`;
        await expectIpvsError(drv().updateDestination(tcp4(), missing), "ENOENT", named);
        await expectIpvsError(drv().deleteDestination(tcp4(), keyOf(missing)), "ENOENT", named);
        const otherPort = dest(rs4(2), 8081);
        await expectIpvsError(drv().deleteDestination(tcp4(), keyOf(otherPort)), "ENOENT", describeDestination(otherPort));
        await expectDestinations(drv(), tcp4(), [dest(rs4(2), 8080)]);
      });

      test("deleting a destination under the wrong address family: ENOENT", async () => {
        await drv().addService(svc(tcp6()));
        await drv().addDestination(tcp6(), dest(rs4(2), 80, { forward: "tunnel" }));
        await drv().addDestination(tcp6(), dest(rs6(2), 80));
        // The IPv4 destination exists; an IPv6 key with another address does not name it.
        await expectIpvsError(
          drv().deleteDestination(tcp6(), { family: "inet6", address: "::ffff:10.77.1.2", port: 80 }),
          "ENOENT",
        );
        await drv().addService(svc(tcp4()));
        await drv().addDestination(tcp4(), dest(rs4(2), 80));
        await expectIpvsError(drv().deleteDestination(tcp4(), keyOf(dest(rs6(2), 80))), "ENOENT");
        await expectDestinations(drv(), tcp6(), [dest(rs4(2), 80, { forward: "tunnel" }), dest(rs6(2), 80)]);
        await expectDestinations(drv(), tcp4(), [dest(rs4(2), 80)]);
      });

      test("a weight below 0 or above 2^31-1: ERANGE naming the weight", async () => {
        await drv().addService(svc(tcp4()));
        for (const weight of [-1, 2147483648]) {
          await expectIpvsError(
            drv().addDestination(tcp4(), dest(rs4(2), 80, { weight })),
            "ERANGE",
            "weight",
            describeDestination(dest(rs4(2), 80)),
          );
        }
        expect(await drv().listDestinations(tcp4())).toEqual([]);
        await drv().addDestination(tcp4(), dest(rs4(2), 80));
        await expectIpvsError(drv().updateDestination(tcp4(), dest(rs4(2), 80, { weight: -5 })), "ERANGE", "weight");
        await expectDestinations(drv(), tcp4(), [dest(rs4(2), 80)]);
      });

      test("a lower threshold above the upper one: ERANGE, also when the upper one is 0", async () => {
        await drv().addService(svc(tcp4()));
        for (const [upperThreshold, lowerThreshold] of [
          [10, 20],
          [0, 5],
        ] as const) {
          await expectIpvsError(
            drv().addDestination(tcp4(), dest(rs4(2), 80, { upperThreshold, lowerThreshold })),
            "ERANGE",
            "threshold",
          );
        }
        expect(await drv().listDestinations(tcp4())).toEqual([]);
        await drv().addDestination(tcp4(), dest(rs4(2), 80));
        await expectIpvsError(
          drv().updateDestination(tcp4(), dest(rs4(2), 80, { upperThreshold: 1, lowerThreshold: 2 })),
          "ERANGE",
          "threshold",
        );
        await expectDestinations(drv(), tcp4(), [dest(rs4(2), 80)]);
      });

      test("a gue tunnel without a port: EINVAL on add and on update", async () => {
        await drv().addService(svc(udp4()));
        const gue0 = dest(rs4(2), 53, { forward: "tunnel", tunnel: { type: "gue", port: 0, checksum: "nocsum" } });
        await expectIpvsError(drv().addDestination(udp4(), gue0), "EINVAL", "gue", describeDestination(gue0));
        expect(await drv().listDestinations(udp4())).toEqual([]);
        const ok = dest(rs4(2), 53, { forward: "tunnel", tunnel: { type: "gue", port: 6080, checksum: "nocsum" } });
        await drv().addDestination(udp4(), ok);
        await expectIpvsError(drv().updateDestination(udp4(), gue0), "EINVAL", "gue");
        await expectDestinations(drv(), udp4(), [ok]);
      });

      test("a destination of the other family without a tunnel: EINVAL on add and on update", async () => {
        await drv().addService(svc(tcp6()));
        for (const forward of ["nat", "dr"] as const) {
          await expectIpvsError(
            drv().addDestination(tcp6(), dest(rs4(2), 80, { forward })),
            "EINVAL",
            "tunnel",
            describeDestination(dest(rs4(2), 80)),
          );
        }
        await drv().addService(svc(tcp4()));
        await expectIpvsError(drv().addDestination(tcp4(), dest(rs6(2), 80)), "EINVAL", "tunnel");
        const tunnelled = dest(rs4(2), 80, { forward: "tunnel" });
        await drv().addDestination(tcp6(), tunnelled);
        await expectIpvsError(drv().updateDestination(tcp6(), { ...tunnelled, forward: "nat" }), "EINVAL", "tunnel");
        await expectDestinations(drv(), tcp6(), [tunnelled]);
        expect(await drv().listDestinations(tcp4())).toEqual([]);
      });

      test("a multicast destination address: EINVAL", async () => {
        await drv().addService(svc(tcp4()));
        await expectIpvsError(drv().addDestination(tcp4(), dest("224.0.0.1", 80)), "EINVAL", "224.0.0.1:80");
        expect(await drv().listDestinations(tcp4())).toEqual([]);
      });

      test("an address that does not match its family: EINVAL", async () => {
        await expectIpvsError(
          drv().addService(svc({ family: "inet", protocol: "tcp", address: VIP6, port: 80 })),
          "EINVAL",
          "address",
        );
        await drv().addService(svc(tcp4()));
        await expectIpvsError(
          drv().addDestination(tcp4(), { ...dest(rs4(2), 80), family: "inet6" }),
          "EINVAL",
          "address",
        );
        expect(await drv().listDestinations(tcp4())).toEqual([]);
      });

      test("errors carry the operation that failed", async () => {
        const error = await expectIpvsError(drv().deleteService(tcp4(1)), "ESRCH");
        expect(error.op).toBe("delete-service");
        const again = await expectIpvsError(drv().listDestinations(tcp4(1)), "ESRCH");
        expect(again.op).toBe("list-destinations");
      });
    });

    // ---- apply, snapshot --------------------------------------------------------------------------------------------

    describe("apply", () => {
      test("runs every op in order; a failure in the middle stops nothing and is reported in place", async () => {
        const a = svc(tcp4(80), { scheduler: "rr" });
        const b = svc(udp6(53));
        const da = dest(rs4(2), 8080);
        const db = dest(rs6(2), 53, { weight: 4 });
        const ops: IpvsOp[] = [
          { op: "add-service", service: a },
          { op: "add-service", service: svc(tcp4(80), { scheduler: "wrr" }) }, // EEXIST
          { op: "add-destination", service: a.key, destination: da },
          { op: "add-destination", service: b.key, destination: db }, // ESRCH: b does not exist yet
          { op: "add-service", service: b },
          { op: "add-destination", service: b.key, destination: db },
          { op: "update-destination", service: a.key, destination: dest(rs4(9), 8080) }, // ENOENT
          { op: "update-destination", service: a.key, destination: { ...da, weight: 6 } },
          { op: "delete-service", key: fwmark(1) }, // ESRCH
          { op: "add-service", service: svc(tcp4(81), { scheduler: "nosuchsched" }) }, // ENOENT
          { op: "add-service", service: svc(fwmark(1)) },
          { op: "delete-destination", service: b.key, destination: keyOf(db) },
          { op: "add-destination", service: b.key, destination: db },
        ];
        const results = await drv().apply(ops);
        expect(results.length).toBe(ops.length);
        expect(codes(results)).toEqual([
          null,
          "EEXIST",
          null,
          "ESRCH",
          null,
          null,
          "ENOENT",
          null,
          "ESRCH",
          "ENOENT",
          null,
          null,
          null,
        ]);
        for (const r of results) if (r !== null) expect(r).toBeInstanceOf(IpvsError);
        expect(results[1]?.message).toContain(describeService(a.key));
        expect(results[3]?.message).toContain(describeService(b.key));
        expect(results[6]?.message).toContain(describeDestination(dest(rs4(9), 8080)));

        expect(canonicalSnapshot(await drv().snapshot())).toEqual(
          canonicalSnapshot([
            { service: { ...a, stats: zeroStats() }, destinations: [readBack({ ...da, weight: 6 })] },
            { service: { ...b, stats: zeroStats() }, destinations: [readBack(db)] },
            { service: { ...svc(fwmark(1)), stats: zeroStats() }, destinations: [] },
          ]),
        );
      });

      test("an empty batch returns an empty result", async () => {
        expect(await drv().apply([])).toEqual([]);
        expect(await drv().listServices()).toEqual([]);
      });

      test("a batch of only failures changes nothing", async () => {
        await drv().addService(svc(tcp4()));
        const before = canonicalSnapshot(await drv().snapshot());
        const results = await drv().apply([
          { op: "delete-service", key: tcp4(1) },
          { op: "add-service", service: svc(tcp4()) },
          { op: "delete-destination", service: tcp4(), destination: keyOf(dest(rs4(2), 80)) },
        ]);
        expect(codes(results)).toEqual(["ESRCH", "EEXIST", "ENOENT"]);
        expect(canonicalSnapshot(await drv().snapshot())).toEqual(before);
      });
    });

    describe("snapshot", () => {
      test("matches listServices and listDestinations", async () => {
        await drv().addService(svc(tcp4()));
        await drv().addService(svc(tcp6(), { scheduler: "sh" }));
        await drv().addService(svc(fwmark(12)));
        await drv().addService(svc(fwmark(12, "inet6")));
        await drv().addDestination(tcp4(), dest(rs4(2), 80));
        await drv().addDestination(tcp4(), dest(rs4(3), 80, { forward: "dr", weight: 0 }));
        await drv().addDestination(tcp6(), dest(rs6(2), 80));
        await drv().addDestination(tcp6(), dest(rs4(4), 80, { forward: "tunnel" }));
        await drv().addDestination(fwmark(12), dest(rs4(5), 0));

        const snapshot = await drv().snapshot();
        expect(snapshot.length).toBe(4);
        const fromLists: ServiceWithDestinations[] = [];
        for (const service of await drv().listServices()) {
          fromLists.push({ service, destinations: await drv().listDestinations(service.key) });
        }
        expect(canonicalSnapshot(snapshot)).toEqual(canonicalSnapshot(fromLists));
        const tcp6Entry = snapshot.find((s) => !isFwmarkKey(s.service.key) && s.service.key.family === "inet6");
        expect(tcp6Entry?.destinations.length).toBe(2);
        const emptyEntry = snapshot.find((s) => isFwmarkKey(s.service.key) && s.service.key.family === "inet6");
        expect(emptyEntry?.destinations).toEqual([]);
      });

      test("service and destination stats are non-negative numbers", async () => {
        await drv().addService(svc(udp4()));
        await drv().addDestination(udp4(), dest(rs4(2), 53));
        const snapshot = await drv().snapshot();
        expect(snapshot.length).toBe(1);
        for (const entry of snapshot) {
          expectStats(entry.service.stats);
          for (const d of entry.destinations) expectStats(d.stats);
        }
        for (const s of await drv().listServices()) expectStats(s.stats);
      });
    });
  });
}

function zeroStats(): Stats {
  return { conns: 0, inPkts: 0, outPkts: 0, inBytes: 0, outBytes: 0, cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 };
}

function readBack(d: DestinationConfig): Destination {
  return { ...expectedDest(d), activeConns: 0, inactiveConns: 0, persistentConns: 0, stats: zeroStats() };
}
