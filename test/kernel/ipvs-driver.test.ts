// The driver conformance suite against the real kernel through gorb's KernelIpvsDriver. After every write,
// gorb's own view (a netlink dump) is compared with ipvsadm's listings, parsed independently.
import { expect } from "bun:test";
import { describeIpvsDriver } from "../conformance/ipvs-driver-contract.ts";
import { canonicalAddress, prefixToMask } from "../../src/ipvs/address.ts";
import type { IpvsDriver } from "../../src/ipvs/driver.ts";
import { KernelIpvsDriver } from "../../src/ipvs/kernel-driver.ts";
import { isFwmarkKey, type ServiceWithDestinations } from "../../src/ipvs/types.ts";
import { assertInGuest } from "./helpers/guest.ts";
import { type IpvsadmListing, parseIpvsadmList } from "./helpers/ipvsadm.ts";
import { IPVSADM, ip, runAsync } from "./helpers/sh.ts";

const FORWARD = { Masq: "nat", Route: "dr", Tunnel: "tunnel", Local: "local" } as const;

/** What both gorb and ipvsadm can express about a service, for comparison. */
interface Comparable {
  key: string;
  scheduler: string;
  schedBits: number[];
  persistence: { timeout: number; mask: string | null } | null;
  pe: string | null;
  onePacket: boolean;
  destinations: { address: string; port: number; forward: string; weight: number; upper: number; lower: number; tunnel: { type: string; port: number | null } | null }[];
}

/** gorb's snapshot in the shape both sides can express, sorted. */
function fromGorb(snap: ServiceWithDestinations[]): Comparable[] {
  return snap
    .map(({ service: s, destinations }) => {
      const key = isFwmarkKey(s.key)
        ? `FWM ${s.key.fwmark}${s.key.family === "inet6" ? " IPv6" : ""}`
        : `${s.key.protocol.toUpperCase()} ${s.key.family === "inet6" ? `[${s.key.address}]` : s.key.address}:${s.key.port}`;
      // ipvsadm 1.31 names only the two flags sh and mh define and does not print flag-3 for them at all,
      // so for those schedulers its listing cannot show SCHED3; the contract itself checks gorb's read-back.
      const showsFlag3 = s.scheduler !== "sh" && s.scheduler !== "mh";
      const bits = [s.flags.sched1 ? 1 : 0, s.flags.sched2 ? 2 : 0, s.flags.sched3 && showsFlag3 ? 3 : 0].filter((b) => b > 0);
      const fullMask = s.key.family === "inet" ? s.netmask === 32 : s.netmask === 128;
      const mask = fullMask ? null : s.key.family === "inet" ? dotted(prefixToMask(s.netmask)) : String(s.netmask);
      return {
        key,
        scheduler: s.scheduler,
        schedBits: bits,
        persistence: s.flags.persistent ? { timeout: s.timeout, mask } : null,
        pe: s.pe,
        onePacket: s.flags.onePacket,
        destinations: destinations
          .map((d) => ({
            address: d.address,
            port: d.port,
            forward: d.forward,
            weight: d.weight,
            upper: d.upperThreshold,
            lower: d.lowerThreshold,
            tunnel: d.forward === "tunnel" && d.tunnel ? { type: d.tunnel.type, port: d.tunnel.type === "gue" ? d.tunnel.port : null } : null,
          }))
          .sort((a, b) => `${a.address}:${a.port}`.localeCompare(`${b.address}:${b.port}`)),
      };
    })
    .sort((a, b) => a.key.localeCompare(b.key));
}

function dotted(mask: number): string {
  return [24, 16, 8, 0].map((s) => (mask >>> s) & 0xff).join(".");
}

function schedBits(flags: readonly string[] | undefined): number[] {
  const bits = new Set<number>();
  for (const f of flags ?? []) {
    if (/fallback|^flag-1$/.test(f)) bits.add(1);
    else if (/port|^flag-2$/.test(f)) bits.add(2);
    else if (f === "flag-3") bits.add(3);
    else throw new Error(`unknown scheduler flag printed by ipvsadm: ${f}`);
  }
  return [...bits].sort();
}

/** ipvsadm's view: the default listing plus --thresholds and --tun-info for the destination columns. */
function fromIpvsadm(main: IpvsadmListing, thresholds: IpvsadmListing, tun: IpvsadmListing): Comparable[] {
  const find = (l: IpvsadmListing, key: string) => l.services.find((s) => s.key === key);
  return main.services
    .map((s) => ({
      key: s.key,
      scheduler: s.scheduler ?? "",
      schedBits: schedBits(s.schedFlags),
      persistence: s.persistence ? { timeout: s.persistence.timeout, mask: s.persistence.mask } : null,
      pe: s.pe ?? null,
      onePacket: s.onePacket ?? false,
      destinations: s.destinations
        .map((d) => {
          const th = find(thresholds, s.key)?.destinations.find((x) => x.address === d.address && x.port === d.port);
          const tu = find(tun, s.key)?.destinations.find((x) => x.address === d.address && x.port === d.port);
          const forward = d.forward ? FORWARD[d.forward] : "?";
          return {
            address: canonicalAddress(d.address),
            port: d.port,
            forward,
            weight: d.weight ?? -1,
            upper: th?.upperThreshold ?? -1,
            lower: th?.lowerThreshold ?? -1,
            tunnel: forward === "tunnel" && tu?.tunnel ? { type: tu.tunnel.type, port: tu.tunnel.port } : null,
          };
        })
        .sort((a, b) => `${a.address}:${a.port}`.localeCompare(`${b.address}:${b.port}`)),
    }))
    .sort((a, b) => a.key.localeCompare(b.key));
}

async function compareWithIpvsadm(driver: IpvsDriver): Promise<void> {
  // The three listings are read side by side: spawning ipvsadm is most of this suite's time in the emulated guest.
  const [main, thresholds, tun, snap] = await Promise.all([
    runAsync([IPVSADM, "-Ln"]),
    runAsync([IPVSADM, "-Ln", "--thresholds"]),
    runAsync([IPVSADM, "-Ln", "--tun-info"]),
    driver.snapshot(),
  ]);
  const gorb = fromGorb(snap);
  const theirs = fromIpvsadm(parseIpvsadmList(main), parseIpvsadmList(thresholds), parseIpvsadmList(tun));
  expect(gorb).toEqual(theirs);
}

describeIpvsDriver("KernelIpvsDriver on a real IPVS kernel, checked against ipvsadm", async () => {
  assertInGuest();
  // The kernel refuses NAT/DR destinations it cannot route: route the contract's destination range.
  ip("route", "replace", "10.77.0.0/16", "dev", "lo");
  const driver = new KernelIpvsDriver();
  return { driver, afterWrite: compareWithIpvsadm };
});

// The same contract with the daemon's driver: every dump (each read, and each comparison with ipvsadm after a
// write) read by the dump thread on the connection's socket and decoded in this thread.
describeIpvsDriver("KernelIpvsDriver reading on its dump thread (as gorb serve), checked against ipvsadm", async () => {
  assertInGuest();
  ip("route", "replace", "10.77.0.0/16", "dev", "lo");
  const driver = new KernelIpvsDriver({ dumpThread: true });
  return { driver, afterWrite: compareWithIpvsadm };
});
