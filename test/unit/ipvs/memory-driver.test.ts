import { describe, expect, test } from "bun:test";
import type { IpvsDriver } from "../../../src/ipvs/driver.ts";
import { ERRNO, IpvsError } from "../../../src/ipvs/errors.ts";
import { LINUX_6_1_SCHEDULERS, MemoryIpvsDriver, defaultIsRoutable } from "../../../src/ipvs/memory-driver.ts";
import { ipvsErrorFor } from "../../../src/ipvs/messages.ts";
import type { DestinationConfig, ServiceConfig, ServiceKey } from "../../../src/ipvs/types.ts";
import { NO_FLAGS, SCHEDULERS } from "../../../src/ipvs/types.ts";
import { describeIpvsDriver } from "../../conformance/ipvs-driver-contract.ts";

// The contract, with afterWrite checking after every write that the driver's own views agree.
let writesSeen = 0;
describeIpvsDriver("MemoryIpvsDriver", async () => ({
  driver: new MemoryIpvsDriver(),
  afterWrite: async (driver: IpvsDriver) => {
    writesSeen++;
    const snapshot = await driver.snapshot();
    const services = await driver.listServices();
    expect(snapshot.map((s) => s.service)).toEqual(services);
  },
}));

describe("contract hooks", () => {
  test("afterWrite ran for the contract's writes", () => {
    // Registered after the contract suite, so bun runs it after those tests.
    expect(writesSeen).toBeGreaterThan(100);
  });
});

const tcp = (port = 80): ServiceKey => ({ family: "inet", protocol: "tcp", address: "10.0.0.1", port });
const svc = (key: ServiceKey, over: Partial<ServiceConfig> = {}): ServiceConfig => ({
  key,
  scheduler: "wlc",
  flags: NO_FLAGS,
  timeout: 0,
  netmask: key.family === "inet" ? 32 : 128,
  pe: null,
  ...over,
});
const dest = (address: string, port: number, over: Partial<DestinationConfig> = {}): DestinationConfig => ({
  family: address.includes(":") ? "inet6" : "inet",
  address,
  port,
  forward: "nat",
  weight: 1,
  upperThreshold: 0,
  lowerThreshold: 0,
  tunnel: null,
  ...over,
});

async function rejection(promise: Promise<unknown>): Promise<IpvsError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof IpvsError) return error;
    throw error;
  }
  throw new Error("expected the promise to reject");
}

describe("MemoryIpvsDriver: kernel 6.1 specifics", () => {
  test("twos is unknown by default (Linux 6.2+), known when configured", async () => {
    expect(LINUX_6_1_SCHEDULERS).not.toContain("twos");
    const error = await rejection(new MemoryIpvsDriver().addService(svc(tcp(), { scheduler: "twos" })));
    expect(error.code).toBe("ENOENT");
    expect(error.message).toBe('unknown scheduler "twos" (no ip_vs_twos module) for service tcp 10.0.0.1:80');

    const newer = new MemoryIpvsDriver({ schedulers: SCHEDULERS });
    await newer.addService(svc(tcp(), { scheduler: "twos" }));
    expect((await newer.getService(tcp())).scheduler).toBe("twos");
  });

  test('scheduler "none" is accepted, as by the kernel', async () => {
    const driver = new MemoryIpvsDriver();
    await driver.addService(svc(tcp(), { scheduler: "none" }));
    expect((await driver.getService(tcp())).scheduler).toBe("none");
  });

  test("defaults: IPVS 1.2.1, 4096 connections, timeouts 900/120/300", async () => {
    const driver = new MemoryIpvsDriver();
    expect(await driver.info()).toEqual({ version: "1.2.1", versionCode: 0x010201, connTableSize: 4096 });
    expect(await driver.getTimeouts()).toEqual({ tcp: 900, tcpFin: 120, udp: 300 });
  });
});

describe("MemoryIpvsDriver: the kernel's order of checks", () => {
  test("add-service: EEXIST comes before an unknown scheduler", async () => {
    const driver = new MemoryIpvsDriver();
    await driver.addService(svc(tcp()));
    expect((await rejection(driver.addService(svc(tcp(), { scheduler: "nope" })))).code).toBe("EEXIST");
  });

  test("add-service: scheduler before persistence engine before IPv6 netmask", async () => {
    const driver = new MemoryIpvsDriver();
    const key6: ServiceKey = { family: "inet6", protocol: "udp", address: "2001:db8::1", port: 5060 };
    const both = await rejection(driver.addService(svc(key6, { scheduler: "nope", pe: "nope", netmask: 0 })));
    expect(both.message).toContain('unknown scheduler "nope"');
    const pe = await rejection(driver.addService(svc(key6, { pe: "nope", netmask: 0 })));
    expect(pe.message).toContain('unknown persistence engine "nope" (no ip_vs_pe_nope module)');
    const mask = await rejection(driver.addService(svc(key6, { netmask: 0 })));
    expect(mask.code).toBe("EINVAL");
  });

  test("add-destination: ESRCH, then mixed family, then thresholds, then GUE port, then EEXIST", async () => {
    const driver = new MemoryIpvsDriver();
    const key6: ServiceKey = { family: "inet6", protocol: "tcp", address: "2001:db8::1", port: 80 };
    const bad = dest("10.77.1.2", 80, { lowerThreshold: 2, upperThreshold: 1 });
    expect((await rejection(driver.addDestination(key6, bad))).code).toBe("ESRCH");
    await driver.addService(svc(key6));
    expect((await rejection(driver.addDestination(key6, bad))).message).toContain("needs forward");
    const tunnelled = { ...bad, forward: "tunnel" as const, tunnel: { type: "gue" as const, port: 0, checksum: "nocsum" as const } };
    expect((await rejection(driver.addDestination(key6, tunnelled))).code).toBe("ERANGE");
    const gue0 = { ...tunnelled, lowerThreshold: 0 };
    expect((await rejection(driver.addDestination(key6, gue0))).message).toContain("gue");
    const ok = { ...gue0, tunnel: { type: "gue" as const, port: 6080, checksum: "nocsum" as const } };
    await driver.addDestination(key6, ok);
    expect((await rejection(driver.addDestination(key6, { ...ok, lowerThreshold: 9 }))).code).toBe("ERANGE");
    expect((await rejection(driver.addDestination(key6, ok))).code).toBe("EEXIST");
  });
});

describe("MemoryIpvsDriver: gorb's pre-send checks (validate.ts)", () => {
  const cases: [string, DestinationConfig, string][] = [
    [
      "tunnel options on a nat destination",
      dest("10.77.1.2", 80, { tunnel: { type: "gre", port: 0, checksum: "nocsum" } }),
      'tunnel options need forward "tunnel", not "nat"',
    ],
    [
      "a tunnel port on a gre tunnel",
      dest("10.77.1.2", 80, { forward: "tunnel", tunnel: { type: "gre", port: 5, checksum: "nocsum" } }),
      "tunnel port 5 is only for gue tunnels, not gre",
    ],
    [
      "remcsum on a gre tunnel",
      dest("10.77.1.2", 80, { forward: "tunnel", tunnel: { type: "gre", port: 0, checksum: "remcsum" } }),
      'tunnel checksum "remcsum" is only for gue tunnels, not gre',
    ],
    [
      "a checksum on an ipip tunnel",
      dest("10.77.1.2", 80, { forward: "tunnel", tunnel: { type: "ipip", port: 0, checksum: "csum" } }),
      'tunnel checksum "csum" is only for gue and gre tunnels',
    ],
    ["a fractional weight", dest("10.77.1.2", 80, { weight: 1.5 }), "weight 1.5 is not an integer"],
    ["a negative threshold", dest("10.77.1.2", 80, { upperThreshold: -1 }), "upperThreshold -1 is not an integer in 0..4294967295"],
    ["an unknown forwarding method", { ...dest("10.77.1.2", 80), forward: "teleport" as never }, 'forward "teleport" is not one of nat, local, tunnel, dr, bypass'],
  ];
  for (const [label, bad, message] of cases) {
    test(`refuses ${label} with EINVAL naming the field`, async () => {
      const driver = new MemoryIpvsDriver();
      await driver.addService(svc(tcp()));
      const error = await rejection(driver.addDestination(tcp(), bad));
      expect(error.code).toBe("EINVAL");
      expect(error.message).toBe(`destination 10.77.1.2:80 in service tcp 10.0.0.1:80: ${message}`);
      expect(await driver.listDestinations(tcp())).toEqual([]);
    });
  }

  test("refuses scheduler and pe names the kernel policy would reject", async () => {
    const driver = new MemoryIpvsDriver();
    for (const scheduler of ["", "a".repeat(16), "rr x"]) {
      const error = await rejection(driver.addService(svc(tcp(), { scheduler })));
      expect(error.code).toBe("EINVAL");
      expect(error.message).toContain("scheduler");
    }
    const pe = await rejection(driver.addService(svc(tcp(), { pe: "" })));
    expect(pe.message).toContain("pe");
    expect(await driver.listServices()).toEqual([]);
  });

  test("refuses a timeout that is not whole seconds in u32", async () => {
    const driver = new MemoryIpvsDriver();
    for (const timeout of [-1, 0.5, 2 ** 32]) {
      const error = await rejection(driver.addService(svc(tcp(), { timeout })));
      expect(error.code).toBe("EINVAL");
      expect(error.message).toContain(`timeout ${timeout}`);
    }
    expect((await rejection(driver.setTimeouts({ udp: 2 ** 32 }))).message).toContain("udp");
  });
});

describe("MemoryIpvsDriver: test helpers", () => {
  test("peek() is a synchronous snapshot in a fixed order: address services by family, protocol, address, port, then fwmark", async () => {
    const driver = new MemoryIpvsDriver();
    const keys: ServiceKey[] = [
      { family: "inet", fwmark: 3 },
      { family: "inet6", protocol: "tcp", address: "2001:db8::1", port: 80 },
      { family: "inet", protocol: "udp", address: "10.0.0.1", port: 53 },
      { family: "inet", protocol: "tcp", address: "10.0.0.10", port: 80 },
      { family: "inet", protocol: "tcp", address: "10.0.0.9", port: 80 },
      { family: "inet", protocol: "tcp", address: "10.0.0.9", port: 8 },
      { family: "inet", fwmark: 1 },
    ];
    for (const key of keys) await driver.addService(svc(key));
    await driver.addDestination(keys[4] as ServiceKey, dest("10.77.1.20", 80));
    await driver.addDestination(keys[4] as ServiceKey, dest("10.77.1.3", 80));
    const order = driver.peek().map((s) => s.service.key);
    expect(order).toEqual([5, 4, 3, 2, 1, 6, 0].map((i) => keys[i] as ServiceKey));
    expect(driver.peek()[1]?.destinations.map((d) => d.address)).toEqual(["10.77.1.3", "10.77.1.20"]);
    expect(await driver.snapshot()).toEqual(driver.peek());
  });

  test("writes() records successful writes only, with canonical addresses", async () => {
    const driver = new MemoryIpvsDriver();
    const key6: ServiceKey = { family: "inet6", protocol: "tcp", address: "2001:DB8::0:1", port: 80 };
    await driver.addService(svc(key6));
    await rejection(driver.addService(svc(key6)));
    await driver.apply([{ op: "delete-service", key: key6 }, { op: "delete-service", key: key6 }]);
    await driver.setTimeouts({ tcp: 60 });
    await driver.zero();
    await driver.flush();
    expect(driver.writes().map((w) => w.op)).toEqual([
      "add-service",
      "delete-service",
      "set-timeouts",
      "zero",
      "flush",
    ]);
    const [first] = driver.writes();
    expect(first?.op === "add-service" && first.service.key).toEqual({
      family: "inet6",
      protocol: "tcp",
      address: "2001:db8::1",
      port: 80,
    });
    driver.clearWrites();
    expect(driver.writes()).toEqual([]);
  });

  test("failNext() fails the next calls of one operation with the kernel driver's message, then recovers", async () => {
    const driver = new MemoryIpvsDriver();
    driver.failNext("add-service", "ENOMEM", 2);
    for (let i = 0; i < 2; i++) {
      const error = await rejection(driver.addService(svc(tcp())));
      expect(error.errno).toBe(ERRNO.ENOMEM);
      expect(error.message).toBe("add-service service tcp 10.0.0.1:80 failed: out of memory (ENOMEM)");
    }
    await driver.addService(svc(tcp()));
    driver.failNext("add-destination", ERRNO.EINVAL);
    const [result] = await driver.apply([{ op: "add-destination", service: tcp(), destination: dest("10.77.1.2", 80) }]);
    expect(result?.code).toBe("EINVAL");
    expect(await driver.listDestinations(tcp())).toEqual([]);
  });

  test("reads are copies: changing one does not change the table", async () => {
    const driver = new MemoryIpvsDriver();
    await driver.addService(svc(tcp()));
    const read = await driver.getService(tcp());
    (read.flags as { persistent: boolean }).persistent = true;
    expect((await driver.getService(tcp())).flags.persistent).toBe(false);
  });
});

describe("defaultIsRoutable", () => {
  test("refuses what no kernel routes to and accepts ordinary unicast", () => {
    for (const a of ["0.0.0.0", "0.1.2.3", "224.0.0.1", "239.255.255.255", "255.255.255.255"]) {
      expect(defaultIsRoutable("inet", a)).toBe(false);
    }
    for (const a of ["::", "ff02::1", "fe80::1", "febf::1"]) expect(defaultIsRoutable("inet6", a)).toBe(false);
    for (const a of ["10.77.1.2", "127.0.0.1", "192.0.2.1"]) expect(defaultIsRoutable("inet", a)).toBe(true);
    for (const a of ["2001:db8:77:1::2", "::1", "fec0::1"]) expect(defaultIsRoutable("inet6", a)).toBe(true);
  });
});

describe("ipvsErrorFor: the kernel driver's errno to message mapping", () => {
  const key = tcp();
  const d = dest("10.77.1.2", 8080);
  test.each([
    ["add-service", "EEXIST", { service: key }, "service tcp 10.0.0.1:80 already exists"],
    ["delete-service", "ESRCH", { service: key }, "no such service tcp 10.0.0.1:80"],
    [
      "add-service",
      "ENOENT",
      { serviceConfig: svc(key, { scheduler: "foo" }) },
      'unknown scheduler "foo" (no ip_vs_foo module) for service tcp 10.0.0.1:80',
    ],
    [
      "update-service",
      "ENOENT",
      { serviceConfig: svc(key, { pe: "bar" }) },
      'unknown persistence engine "bar" (no ip_vs_pe_bar module) for service tcp 10.0.0.1:80',
    ],
    [
      "add-service",
      "ENOENT",
      { serviceConfig: svc(key, { scheduler: "twos", pe: "sip" }) },
      'unknown scheduler "twos" or persistence engine "sip" (no ip_vs_twos or ip_vs_pe_sip module) for service tcp 10.0.0.1:80',
    ],
    [
      "add-destination",
      "EEXIST",
      { service: key, destination: d },
      "destination 10.77.1.2:8080 already exists in service tcp 10.0.0.1:80",
    ],
    [
      "delete-destination",
      "ENOENT",
      { service: key, destination: { family: "inet", address: "10.1.0.1", port: 8080 } },
      "no such destination 10.1.0.1:8080 in service tcp 10.0.0.1:80",
    ],
    [
      "update-destination",
      "ERANGE",
      { service: key, destination: { ...d, lowerThreshold: 3, upperThreshold: 2 } },
      "destination 10.77.1.2:8080 in service tcp 10.0.0.1:80: lower threshold 3 is above upper threshold 2",
    ],
    [
      "add-destination",
      "EINVAL",
      { service: key, destination: dest("2001:db8:77:1::2", 80) },
      'destination [2001:db8:77:1::2]:80 in service tcp 10.0.0.1:80: an inet6 destination in an inet service needs forward "tunnel", not "nat"',
    ],
    [
      "add-destination",
      "EINVAL",
      { service: key, destination: d },
      "destination 10.77.1.2:8080 in service tcp 10.0.0.1:80: the address is not a unicast or local address the kernel can route",
    ],
    ["flush", "EPERM", {}, "flush failed: operation not permitted (IPVS needs CAP_NET_ADMIN) (EPERM)"],
  ] as const)("%s %s", (op, code, context, message) => {
    const error = ipvsErrorFor(op, ERRNO[code], context);
    expect(error).toBeInstanceOf(IpvsError);
    expect(error.code).toBe(code);
    expect(error.op).toBe(op);
    expect(error.message).toBe(message);
  });

  test("names services by their canonical address", () => {
    const spelled: ServiceKey = { family: "inet6", protocol: "udp", address: "2001:DB8:0::1", port: 53 };
    expect(ipvsErrorFor("get-service", ERRNO.ESRCH, { service: spelled }).message).toBe(
      "no such service udp [2001:db8::1]:53",
    );
  });
});

describe("IpvsError carries the attribute it is about, as data", () => {
  test.each([
    ["weight", dest("10.77.1.2", 80, { weight: -1 }), "ERANGE"],
    ["weight", dest("10.77.1.2", 80, { weight: 1.5 }), "EINVAL"],
    ["tunnelPort", dest("10.77.1.2", 80, { forward: "tunnel", tunnel: { type: "gre", port: 5, checksum: "nocsum" } }), "EINVAL"],
    ["tunnelChecksum", dest("10.77.1.2", 80, { forward: "tunnel", tunnel: { type: "ipip", port: 0, checksum: "csum" } }), "EINVAL"],
    ["upperThreshold", dest("10.77.1.2", 80, { upperThreshold: -1 }), "EINVAL"],
    ["lowerThreshold", dest("10.77.1.2", 80, { upperThreshold: 1, lowerThreshold: 2 }), "ERANGE"],
    ["port", dest("10.77.1.2", 70000), "EINVAL"],
  ] as const)("%s (%j) -> %s", async (field, bad, code) => {
    const driver = new MemoryIpvsDriver();
    await driver.addService(svc(tcp()));
    const error = await rejection(driver.addDestination(tcp(), bad));
    expect([error.code, error.field, error.kernelMessage]).toEqual([code, field, null]);
  });

  test("service attributes: netmask, scheduler, pe", async () => {
    const driver = new MemoryIpvsDriver();
    expect((await rejection(driver.addService(svc(tcp(), { netmask: 33 })))).field).toBe("netmask");
    expect((await rejection(driver.addService(svc(tcp(), { scheduler: "bad name!" })))).field).toBe("scheduler");
    expect((await rejection(driver.addService(svc(tcp(), { scheduler: "nope" })))).field).toBe("scheduler");
    expect((await rejection(driver.addService(svc(tcp(), { pe: "nope" })))).field).toBe("pe");
    expect((await rejection(driver.addService(svc({ family: "inet", fwmark: 0 })))).field).toBe("fwmark");
  });
});
