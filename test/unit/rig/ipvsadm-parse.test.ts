// The kernel suite's independent view of IPVS: the ipvsadm output parser, on real output captured in the rig
// (fixtures/README.md says how each fixture was made).
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  IpvsadmParseError,
  parseCounter,
  parseEndpoint,
  parseIpvsadmList,
  parseTunnelInfo,
  serviceByKey,
} from "../../kernel/helpers/ipvsadm.ts";

const fixture = (name: string): string => readFileSync(join(import.meta.dir, "fixtures", `ipvsadm-${name}.txt`), "utf8");

const ALL_KEYS = [
  "TCP 10.0.0.1:80",
  "TCP 10.0.0.2:21",
  "TCP 10.0.0.2:443",
  "TCP 10.0.0.2:8000",
  "TCP 10.0.0.2:8001",
  "UDP 10.0.0.1:53",
  "UDP 10.0.0.2:123",
  "UDP 10.0.0.2:5060",
  "SCTP 10.0.0.2:9000",
  "TCP [2001:db8::1]:80",
  "FWM 7",
  "FWM 8 IPv6",
];

describe("ipvsadm -Ln (default view)", () => {
  const listing = parseIpvsadmList(fixture("list"));

  test("reads the banner and every service in order", () => {
    expect(listing.view).toBe("default");
    expect(listing.version).toBe("1.2.1");
    expect(listing.tableSize).toBe(4096);
    expect(listing.services.map((s) => s.key)).toEqual(ALL_KEYS);
  });

  test("a NAT service with weighted destinations and connection counts", () => {
    const svc = serviceByKey(listing, "TCP 10.0.0.1:80");
    expect(svc).toMatchObject({ protocol: "TCP", family: "inet", address: "10.0.0.1", port: 80, fwmark: null, scheduler: "wrr" });
    expect(svc.schedFlags).toEqual([]);
    expect(svc.persistence).toBeNull();
    expect(svc.pe).toBeNull();
    expect(svc.onePacket).toBe(false);
    expect(svc.destinations).toEqual([
      { family: "inet", address: "10.77.1.2", port: 80, forward: "Masq", weight: 1, activeConns: 0, inactiveConns: 10 },
      { family: "inet", address: "10.77.2.2", port: 80, forward: "Masq", weight: 3, activeConns: 0, inactiveConns: 30 },
    ]);
  });

  test("scheduler flags, tunnel forwarding and a service without destinations", () => {
    const sh = serviceByKey(listing, "TCP 10.0.0.2:443");
    expect(sh.scheduler).toBe("sh");
    expect(sh.schedFlags).toEqual(["sh-fallback", "sh-port"]);
    expect(sh.flagsText).toBe("(sh-fallback,sh-port)");
    expect(sh.destinations.map((d) => [d.address, d.port, d.forward, d.weight])).toEqual([
      ["10.88.3.2", 443, "Tunnel", 5],
      ["10.88.4.2", 443, "Tunnel", 1],
      ["10.88.5.2", 443, "Tunnel", 1],
      ["10.88.6.2", 443, "Tunnel", 1],
    ]);
    expect(serviceByKey(listing, "TCP 10.0.0.2:8000").destinations).toEqual([]);
  });

  test("persistence with the default timeout, an IPv4 mask, pe and one-packet scheduling", () => {
    expect(serviceByKey(listing, "TCP 10.0.0.2:8001").persistence).toEqual({ timeout: 360, mask: null });
    const dns = serviceByKey(listing, "UDP 10.0.0.1:53");
    expect(dns.persistence).toEqual({ timeout: 300, mask: "255.255.255.0" });
    expect(dns.destinations[0]).toMatchObject({ address: "10.77.1.2", port: 53, forward: "Route", weight: 2 });
    expect(serviceByKey(listing, "UDP 10.0.0.2:123")).toMatchObject({ scheduler: "dh", onePacket: true, persistence: null });
    expect(serviceByKey(listing, "UDP 10.0.0.2:5060")).toMatchObject({ scheduler: "rr", pe: "sip", onePacket: true, persistence: { timeout: 30, mask: null } });
    expect(serviceByKey(listing, "SCTP 10.0.0.2:9000")).toMatchObject({ protocol: "SCTP", scheduler: "nq" });
  });

  test("IPv6 service with flags, persistence and a prefix-length mask", () => {
    const v6 = serviceByKey(listing, "TCP [2001:db8::1]:80");
    expect(v6).toMatchObject({ family: "inet6", address: "2001:db8::1", port: 80, scheduler: "mh", schedFlags: ["mh-fallback", "mh-port"] });
    expect(v6.persistence).toEqual({ timeout: 120, mask: "64" });
    expect(v6.destinations).toEqual([{ family: "inet6", address: "2001:db8:1::2", port: 80, forward: "Masq", weight: 0, activeConns: 0, inactiveConns: 0 }]);
  });

  test("firewall-mark services, IPv4 and IPv6", () => {
    const fwm7 = serviceByKey(listing, "FWM 7");
    expect(fwm7).toMatchObject({ protocol: "FWM", family: "inet", fwmark: 7, address: null, port: null, scheduler: "lc" });
    expect(fwm7.destinations[0]).toMatchObject({ address: "10.77.1.2", port: 0, forward: "Route" });
    const fwm8 = serviceByKey(listing, "FWM 8 IPv6");
    expect(fwm8).toMatchObject({ family: "inet6", fwmark: 8, scheduler: "wlc", persistence: { timeout: 60, mask: null } });
    expect(fwm8.destinations[0]).toMatchObject({ family: "inet6", address: "2001:db8:1::10", port: 0 });
  });

  test("a single-service listing has no banner", () => {
    const one = parseIpvsadmList(fixture("single-service"));
    expect(one.version).toBeNull();
    expect(one.tableSize).toBeNull();
    expect(one.services.map((s) => s.key)).toEqual(["TCP 10.0.0.1:80"]);
    expect(one.services[0]?.destinations.map((d) => d.inactiveConns)).toEqual([10, 30]);
  });
});

describe("ipvsadm -Ln --stats / --rate", () => {
  test("stats: service and destination counters, no scheduler", () => {
    const listing = parseIpvsadmList(fixture("stats"));
    expect(listing.view).toBe("stats");
    expect(listing.services.map((s) => s.key)).toEqual(ALL_KEYS);
    const svc = serviceByKey(listing, "TCP 10.0.0.1:80");
    expect(svc.scheduler).toBeUndefined();
    expect(svc.stats).toEqual({ conns: 40, inPkts: 257, outPkts: 235, inBytes: 18924, outBytes: 20980 });
    expect(svc.destinations.map((d) => d.stats)).toEqual([
      { conns: 10, inPkts: 65, outPkts: 58, inBytes: 4770, outBytes: 5206 },
      { conns: 30, inPkts: 192, outPkts: 177, inBytes: 14154, outBytes: 15774 },
    ]);
    expect(serviceByKey(listing, "FWM 8 IPv6").stats?.conns).toBe(0);
  });

  test("stats: counters above 10^8 are abbreviated without --exact and exact with it", () => {
    const rounded = serviceByKey(parseIpvsadmList(fixture("stats-large")), "TCP 10.0.0.3:80");
    const exact = serviceByKey(parseIpvsadmList(fixture("stats-large-exact")), "TCP 10.0.0.3:80");
    expect(rounded.stats).toEqual({ conns: 4, inPkts: 585, outPkts: 2641, inBytes: 31015, outBytes: 125_981_000 });
    expect(exact.stats).toEqual({ conns: 4, inPkts: 585, outPkts: 2641, inBytes: 31015, outBytes: 125_981_793 });
    expect(exact.destinations[1]?.stats?.outBytes).toBe(125_981_793);
  });

  test("single-service stats", () => {
    const listing = parseIpvsadmList(fixture("single-service-stats"));
    expect(listing.view).toBe("stats");
    expect(listing.services[0]?.stats?.conns).toBe(40);
    expect(listing.services[0]?.destinations.map((d) => d.stats?.conns)).toEqual([10, 30]);
  });

  test("rate: per-second figures", () => {
    const listing = parseIpvsadmList(fixture("rate"));
    expect(listing.view).toBe("rate");
    const svc = serviceByKey(listing, "TCP 10.0.0.1:80");
    expect(svc.rates).toEqual({ cps: 5, inPps: 32, outPps: 29, inBps: 2365, outBps: 2622 });
    expect(svc.destinations[1]?.rates).toEqual({ cps: 4, inPps: 24, outPps: 22, inBps: 1769, outBps: 1972 });
  });
});

describe("ipvsadm -Ln --thresholds / --persistent-conn / --tun-info", () => {
  test("thresholds: upper and lower connection thresholds per destination", () => {
    const listing = parseIpvsadmList(fixture("thresholds"));
    expect(listing.view).toBe("thresholds");
    expect(listing.services.map((s) => s.key)).toEqual(ALL_KEYS);
    const svc = serviceByKey(listing, "TCP 10.0.0.1:80");
    expect(svc.scheduler).toBe("wrr");
    expect(svc.destinations).toEqual([
      { family: "inet", address: "10.77.1.2", port: 80, upperThreshold: 0, lowerThreshold: 0, activeConns: 0, inactiveConns: 10 },
      { family: "inet", address: "10.77.2.2", port: 80, upperThreshold: 100, lowerThreshold: 50, activeConns: 0, inactiveConns: 30 },
    ]);
    expect(serviceByKey(listing, "UDP 10.0.0.2:5060").pe).toBe("sip");
  });

  test("persistent-conn: weight and persistent connection templates", () => {
    const idle = parseIpvsadmList(fixture("persistent-conn"));
    expect(idle.view).toBe("persistent-conn");
    expect(serviceByKey(idle, "UDP 10.0.0.1:53").destinations[0]).toEqual({ family: "inet", address: "10.77.1.2", port: 53, weight: 2, persistentConns: 0, activeConns: 0, inactiveConns: 0 });
    const used = parseIpvsadmList(fixture("persistent-conn-used"));
    const svc = serviceByKey(used, "TCP 10.0.0.3:80");
    expect(svc.persistence).toEqual({ timeout: 60, mask: null });
    expect(svc.destinations.map((d) => [d.address, d.weight, d.persistentConns, d.inactiveConns])).toEqual([
      ["10.77.1.2", 1, 0, 0],
      ["10.77.2.2", 1, 1, 4],
    ]);
  });

  test("tun-info: tunnel type, port and checksum mode; n/a for other methods", () => {
    const listing = parseIpvsadmList(fixture("tun-info"));
    expect(listing.view).toBe("tun-info");
    expect(serviceByKey(listing, "TCP 10.0.0.2:443").destinations.map((d) => [d.address, d.forward, d.tunnel, d.weight])).toEqual([
      ["10.88.3.2", "Tunnel", { type: "ipip", port: null, checksum: null }, 5],
      ["10.88.4.2", "Tunnel", { type: "gue", port: 6080, checksum: "csum" }, 1],
      ["10.88.5.2", "Tunnel", { type: "gre", port: null, checksum: "nocsum" }, 1],
      ["10.88.6.2", "Tunnel", { type: "gue", port: 7000, checksum: "remcsum" }, 1],
    ]);
    expect(serviceByKey(listing, "TCP 10.0.0.1:80").destinations[1]).toEqual({
      family: "inet", address: "10.77.2.2", port: 80, forward: "Masq", tunnel: null, weight: 3, activeConns: 0, inactiveConns: 30,
    });
  });
});

describe("field parsers", () => {
  test("endpoints", () => {
    expect(parseEndpoint("10.0.0.1:80")).toEqual({ family: "inet", address: "10.0.0.1", port: 80 });
    expect(parseEndpoint("[::1]:0")).toEqual({ family: "inet6", address: "::1", port: 0 });
    expect(() => parseEndpoint("10.0.0.1")).toThrow("not an address:port");
  });

  test("counters with every ipvsadm suffix", () => {
    expect(parseCounter("99999999")).toBe(99_999_999);
    expect(parseCounter("125981K")).toBe(125_981_000);
    expect(parseCounter("12M")).toBe(12_000_000);
    expect(parseCounter("3G")).toBe(3_000_000_000);
    expect(parseCounter("2T")).toBe(2_000_000_000_000);
    expect(() => parseCounter("12k")).toThrow("not a counter");
  });

  test("tunnel info rejects unknown text", () => {
    expect(parseTunnelInfo("gue:5555:-c")).toEqual({ type: "gue", port: 5555, checksum: "nocsum" });
    expect(() => parseTunnelInfo("vxlan")).toThrow("unknown tunnel info");
    expect(() => parseTunnelInfo("gre:?c")).toThrow("unknown tunnel checksum mode");
  });
});

describe("malformed output is rejected with the offending line", () => {
  const header = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";

  test("unknown service flag", () => {
    expect(() => parseIpvsadmList(`${header}TCP  10.0.0.1:80 wrr sticky\n`)).toThrow(/line 3 .*unknown service flag "sticky"/);
  });

  test("unknown forwarding method", () => {
    expect(() => parseIpvsadmList(`${header}TCP  10.0.0.1:80 wrr\n  -> 10.77.1.2:80  Bridge 1 0 0\n`)).toThrow(/line 4 .*unknown forwarding method "Bridge"/);
  });

  test("wrong column count", () => {
    expect(() => parseIpvsadmList(`${header}TCP  10.0.0.1:80 wrr\n  -> 10.77.1.2:80  Masq 1 0\n`)).toThrow("expected 4 columns");
  });

  test("destination before any service", () => {
    expect(() => parseIpvsadmList(`${header}  -> 10.77.1.2:80  Masq 1 0 0\n`)).toThrow("destination line before any service line");
  });

  test("unknown headers and missing headers", () => {
    expect(() => parseIpvsadmList("Prot LocalAddress:Port Foo Bar\n  -> RemoteAddress:Port\n")).toThrow("unknown column headers");
    expect(() => parseIpvsadmList("TCP  10.0.0.1:80 wrr\n")).toThrow("data before the column headers");
    expect(() => parseIpvsadmList("")).toThrow(IpvsadmParseError);
  });

  test("serviceByKey names the services that exist", () => {
    expect(() => serviceByKey(parseIpvsadmList(fixture("single-service")), "UDP 10.0.0.1:53")).toThrow("it lists: TCP 10.0.0.1:80");
  });
});
