/**
 * The driver's read of the whole table (snapshot: one service dump, then every service's destination dump as one
 * series) through the one-pass decoder, against a stand-in kernel that answers with the bytes IPVS sends
 * (test/helpers/ipvs-dump-kernel.ts; the host has no IPVS, test/kernel/ipvs-driver.test.ts reads the real one):
 * every field comes back, for IPv4, IPv6 and fwmark services, tunnels, counters past 2^32, and dumps that span
 * several datagrams.
 */
import { describe, expect, test } from "bun:test";
import { KernelIpvsDriver } from "../../../src/ipvs/kernel-driver.ts";
import { NO_FLAGS, ZERO_STATS, type Destination, type Service, type ServiceWithDestinations } from "../../../src/ipvs/types.ts";
import { IpvsDumpKernel } from "../../helpers/ipvs-dump-kernel.ts";

const FAMILY = 0x24;

function dest(address: string, i: number, extra: Partial<Destination> = {}): Destination {
  return {
    family: address.includes(":") ? "inet6" : "inet",
    address,
    port: 8000 + i,
    forward: "nat",
    weight: i,
    upperThreshold: 0,
    lowerThreshold: 0,
    tunnel: null,
    activeConns: i * 2,
    inactiveConns: i * 3,
    persistentConns: i,
    stats: { ...ZERO_STATS, conns: i, inBytes: 2 ** 40 + i, outBytes: 5 * 2 ** 33, cps: 7, inBps: 123_456_789, outBps: i },
    ...extra,
  };
}

function service(key: Service["key"], extra: Partial<Service> = {}): Service {
  return { key, scheduler: "wrr", flags: NO_FLAGS, timeout: 0, netmask: key.family === "inet" ? 32 : 128, pe: null, stats: { ...ZERO_STATS, conns: 2 ** 35, cps: 3 }, ...extra };
}

describe("the table read through the one-pass decoder", () => {
  test("snapshot() returns every service and destination with every field", async () => {
    const many = Array.from({ length: 300 }, (_, i) => dest(`10.77.${i >> 7}.${(i & 0x7f) + 1}`, i)); // ~100 KB: several datagrams
    const table: ServiceWithDestinations[] = [
      { service: service({ family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 }), destinations: many },
      {
        service: service({ family: "inet6", protocol: "udp", address: "2001:db8::1", port: 53 }, { scheduler: "sh", flags: { ...NO_FLAGS, persistent: true, sched1: true }, timeout: 300, netmask: 64, pe: "sip" }),
        destinations: [dest("2001:db8::10", 1), dest("2001:db8::11", 2, { forward: "dr", upperThreshold: 50, lowerThreshold: 10 })],
      },
      {
        service: service({ family: "inet", fwmark: 7 }, { scheduler: "mh" }),
        destinations: [
          dest("10.4.0.1", 1, { forward: "tunnel", tunnel: { type: "gue", port: 5555, checksum: "nocsum" } }),
          dest("10.4.0.2", 2, { forward: "tunnel", tunnel: { type: "gre", port: 0, checksum: "nocsum" } }),
          dest("10.4.0.3", 3, { forward: "tunnel", tunnel: { type: "ipip", port: 0, checksum: "nocsum" } }),
        ],
      },
      { service: service({ family: "inet6", fwmark: 9 }), destinations: [] },
    ];
    const kernel = new IpvsDumpKernel(FAMILY, { services: table });
    const driver = new KernelIpvsDriver({ familyId: FAMILY, openSocket: () => kernel, resolveFamily: () => FAMILY });
    const read = await driver.snapshot();
    expect(read).toEqual(table);
    // 1 service dump + 4 destination dumps; the 300 destinations of the first take several datagrams.
    expect(kernel.received).toBeGreaterThan(1 + 4 + 1);
    // The single-service read decodes the same way.
    expect(await driver.listServices()).toEqual(table.map((e) => e.service));
    driver.close();
  });

  test("each snapshot asks for the services the kernel lists then, re-using the requests of the ones seen before", async () => {
    const a = { family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 } as const;
    const b = { family: "inet", protocol: "tcp", address: "10.0.0.2", port: 80 } as const;
    const c = { family: "inet", protocol: "udp", address: "10.0.0.1", port: 80 } as const;
    const before: ServiceWithDestinations[] = [
      { service: service(a), destinations: [dest("10.1.0.1", 1)] },
      { service: service(b), destinations: [dest("10.1.0.2", 2)] },
    ];
    // b is gone, c is new (a's key with another protocol), and a has other destinations now.
    const after: ServiceWithDestinations[] = [
      { service: service(c), destinations: [dest("10.1.0.3", 3)] },
      { service: service(a), destinations: [dest("10.1.0.4", 4), dest("10.1.0.5", 5)] },
    ];
    let kernel = new IpvsDumpKernel(FAMILY, { services: before });
    const socket = { send: (bytes: Uint8Array) => kernel.send(bytes), receive: () => kernel.receive(), close: () => undefined };
    const driver = new KernelIpvsDriver({ familyId: FAMILY, openSocket: () => socket, resolveFamily: () => FAMILY });
    expect(await driver.snapshot()).toEqual(before);
    expect(await driver.snapshot()).toEqual(before);
    kernel = new IpvsDumpKernel(FAMILY, { services: after });
    expect(await driver.snapshot()).toEqual(after);
    driver.close();
  });
});
