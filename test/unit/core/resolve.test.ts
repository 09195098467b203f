import { describe, expect, test } from "bun:test";
import { ValidationError } from "../../../src/core/errors.ts";
import { normalizeBackend, normalizeService } from "../../../src/core/normalize.ts";
import {
  dnsResolver,
  resolveBackendAddress,
  resolveHost,
  resolveServiceKey,
  serviceFlagsOf,
  toDestinationConfig,
  toServiceConfig,
} from "../../../src/core/resolve.ts";
import { tableResolver } from "./fakes.ts";

const resolver = tableResolver({
  dual: [
    { address: "2001:db8::1", family: "inet6" },
    { address: "10.0.0.1", family: "inet" },
  ],
  six: [{ address: "2001:db8::2", family: "inet6" }],
});

async function rejection(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ValidationError) return error.message;
    throw error;
  }
  throw new Error("expected a ValidationError");
}

describe("resolveHost", () => {
  test("address literals need no lookup and come back canonical", async () => {
    expect(await resolveHost("2001:DB8:0::1", resolver, { field: "host" })).toEqual({
      address: "2001:db8::1",
      family: "inet6",
    });
    expect(await resolveHost("10.0.0.9", resolver, { field: "host" })).toEqual({ address: "10.0.0.9", family: "inet" });
  });

  test("a name with both families gives IPv4, unless IPv6 is required or preferred", async () => {
    expect((await resolveHost("dual", resolver, { field: "host" })).address).toBe("10.0.0.1");
    expect((await resolveHost("dual", resolver, { field: "host", required: "inet6" })).address).toBe("2001:db8::1");
    expect((await resolveHost("dual", resolver, { field: "host", prefer: "inet6" })).address).toBe("2001:db8::1");
    expect((await resolveHost("six", resolver, { field: "host" })).address).toBe("2001:db8::2");
  });

  test("errors name the field and say why", async () => {
    expect(await rejection(resolveHost("nowhere", resolver, { field: "host" }))).toBe(
      'host: cannot resolve "nowhere": getaddrinfo ENOTFOUND nowhere',
    );
    expect(await rejection(resolveHost("six", resolver, { field: "host", required: "inet" }))).toBe(
      'host: cannot resolve "six": it has no inet address',
    );
    expect(await rejection(resolveHost("10.0.0.1", resolver, { field: "host", required: "inet6" }))).toBe(
      'host: "10.0.0.1" is an inet address, expected inet6',
    );
    expect(await rejection(resolveHost("bad name!", resolver, { field: "host" }))).toBe(
      'host: must be an IP address or a DNS name, got "bad name!"',
    );
  });

  test("text the system resolver would read as an octal, hex or short IPv4 address is a 400, never resolved", async () => {
    // Without the check getaddrinfo reads these with inet_aton's rules: "010.0.0.1" is 8.0.0.1.
    for (const host of ["10.0.0.010", "010.000.000.005", "0x0a000001", "167772161", "10.1", "10.0.0.010.", "10.0x1"]) {
      expect(await rejection(resolveHost(host, dnsResolver(), { field: "host" }))).toBe(
        `host: "${host}" is not an IP address as gorb reads them (dotted decimal without leading zeros, or IPv6) nor a DNS name`,
      );
    }
  });

  test("the system resolver finds localhost", async () => {
    const found = await dnsResolver()("localhost");
    expect(found.some((a) => a.address === "127.0.0.1" || a.address === "::1")).toBe(true);
  });
});

describe("service configs", () => {
  test("an empty host takes the default address; none configured is a 400", async () => {
    const spec = normalizeService({ port: 80 });
    expect(await resolveServiceKey(spec, resolver, "192.0.2.1")).toEqual({
      family: "inet",
      protocol: "tcp",
      address: "192.0.2.1",
      port: 80,
    });
    expect(await rejection(resolveServiceKey(spec, resolver, null))).toBe(
      "host: is required: gorb has no default address (the -i interface has none)",
    );
  });

  test("family picks the address of a name", async () => {
    const key = await resolveServiceKey(normalizeService({ host: "dual", port: 80, family: "inet6" }), resolver, null);
    expect(key).toEqual({ family: "inet6", protocol: "tcp", address: "2001:db8::1", port: 80 });
  });

  test("flags, persistence and netmask become the IPVS config", () => {
    const spec = normalizeService({ port: 80, flags: "sh-fallback|flag-3", persistent: true, persistence_netmask: 24 });
    const config = toServiceConfig(spec, { family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 });
    expect(config).toEqual({
      key: { family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 },
      scheduler: "wrr",
      flags: { persistent: true, onePacket: false, sched1: true, sched2: false, sched3: true },
      timeout: 300,
      netmask: 24,
      pe: null,
    });
    expect(serviceFlagsOf(normalizeService({ port: 80, flags: "mh-port" })).sched2).toBe(true);
  });

  test("the netmask defaults to the full prefix of the family and is checked against it", () => {
    const spec = normalizeService({ port: 80 });
    expect(toServiceConfig(spec, { family: "inet6", protocol: "tcp", address: "::1", port: 80 }).netmask).toBe(128);
    const wide = normalizeService({ port: 80, persistent: true, persistence_netmask: 64 });
    expect(() => toServiceConfig(wide, { family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 })).toThrow(
      "persistence_netmask: must be 0-32 for an inet service, got 64",
    );
  });
});

describe("destination configs", () => {
  const service = normalizeService({ host: "10.0.0.1", port: 80 });
  const key = { family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 } as const;

  test("a nat backend of another family is refused, a tunnel one is allowed", async () => {
    const nat = normalizeBackend({ host: "2001:db8::5" }, service);
    expect(await rejection(resolveBackendAddress(nat, key, resolver))).toBe(
      'host: "2001:db8::5" is an inet6 address, expected inet',
    );
    const tunnel = normalizeBackend({ host: "2001:db8::5", method: "ipip" }, service);
    const address = await resolveBackendAddress(tunnel, key, resolver);
    expect(toDestinationConfig(tunnel, address, key, 50)).toEqual({
      family: "inet6",
      address: "2001:db8::5",
      port: 80,
      forward: "tunnel",
      weight: 50,
      upperThreshold: 0,
      lowerThreshold: 0,
      tunnel: { type: "ipip", port: 0, checksum: "nocsum" },
    });
  });
});
