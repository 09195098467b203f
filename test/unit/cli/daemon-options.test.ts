/**
 * `gorb serve` flags -> DaemonOptions: parsing, defaults, and errors that name the flag.
 */
import { describe, expect, test } from "bun:test";
import {
  DaemonOptionError,
  formatListen,
  isLoopbackListen,
  parseDaemonOptions,
  parseInterval,
  parseListen,
  parseSize,
} from "../../../src/config/daemon-options.ts";

describe("isLoopbackListen (the API's DNS-rebinding rule applies to loopback-only daemons)", () => {
  test("loopback addresses and localhost are; every address, another address and a name are not", () => {
    for (const text of ["127.0.0.1:4672", "127.1.2.3:4672", "[::1]:4672", "localhost:4672", "LOCALHOST:1"]) expect(isLoopbackListen(parseListen(text))).toBe(true);
    for (const text of [":4672", "0.0.0.0:4672", "[::]:4672", "10.0.0.1:4672", "lb1.example:4672"]) expect(isLoopbackListen(parseListen(text))).toBe(false);
  });
});

describe("parseListen", () => {
  test("accepts :PORT, HOST:PORT, [IPV6]:PORT and port 0", () => {
    expect(parseListen(":4672")).toEqual({ host: null, port: 4672 });
    expect(parseListen("127.0.0.1:4672")).toEqual({ host: "127.0.0.1", port: 4672 });
    expect(parseListen("[::1]:4672")).toEqual({ host: "::1", port: 4672 });
    expect(parseListen("localhost:0")).toEqual({ host: "localhost", port: 0 });
  });

  test("refuses what it cannot bind, naming --listen", () => {
    const cases: [string, string][] = [
      ["4672", 'missing port in "4672"'],
      ["::1:4672", "an IPv6 address needs brackets"],
      ["[::1]4672", "expected [IPV6]:PORT"],
      ["[nope]:80", '"nope" is not an IPv6 address'],
      ["1.2.3.4:70000", "port must be 0-65535"],
      ["1.2.3.4:", "port must be 0-65535"],
      ["bad host:80", '"bad host" is not an address or host name'],
      ["http://127.0.0.1:80", '"http://127.0.0.1:80" is a URL: the listen address is HOST:PORT without a scheme, e.g. "127.0.0.1:80" (HTTPS comes from --tls-cert and --tls-key)'],
      ["https://[::1]:8443/", '"https://[::1]:8443/" is a URL: the listen address is HOST:PORT without a scheme, e.g. "[::1]:8443" (HTTPS comes from --tls-cert and --tls-key)'],
    ];
    for (const [text, problem] of cases) {
      expect(() => parseListen(text)).toThrow(`--listen: ${problem}`);
    }
  });

  test("an IPv4 address in a short, octal or hex form is refused: the resolver would bind what gorb does not see", () => {
    // Bun binds "127.1" to 127.0.0.1 (loopback, which gorb took for a DNS name: no rebinding rule, a false warning),
    // "010.0.0.1" to 8.0.0.1 and "0" to every address.
    for (const host of ["127.1", "0", "010.0.0.1", "127.000.000.001", "0x7f000001", "2130706433", "0.0", "1.2.3.4.5"]) {
      expect(() => parseListen(`${host}:4672`)).toThrow(
        `--listen: ${JSON.stringify(host)} is not an IPv4 address written in full (four decimal numbers, e.g. 127.0.0.1) in ${JSON.stringify(`${host}:4672`)}`,
      );
    }
    // Names with digits are names; a full address is an address.
    expect(parseListen("1.example:80")).toEqual({ host: "1.example", port: 80 });
    expect(parseListen("lb-01:80")).toEqual({ host: "lb-01", port: 80 });
    expect(parseListen("10.0.0.1:80")).toEqual({ host: "10.0.0.1", port: 80 });
  });

  test("formatListen round-trips", () => {
    for (const text of [":4672", "127.0.0.1:1", "[::1]:4672", "gorb.example:80"]) expect(formatListen(parseListen(text))).toBe(text);
  });
});

describe("parseSize", () => {
  test("bytes and 1024-based units", () => {
    expect(parseSize("body-limit", "65536")).toBe(65536);
    expect(parseSize("body-limit", "64k")).toBe(65536);
    expect(parseSize("body-limit", "1MiB")).toBe(1048576);
    expect(() => parseSize("body-limit", "1.5m")).toThrow("--body-limit: expected a size");
    expect(() => parseSize("body-limit", "10")).toThrow("--body-limit: must be between 1k and 1g");
  });
});

describe("parseInterval", () => {
  test("durations with a unit; 0 and off turn the reconcile off", () => {
    expect(parseInterval("reconcile-interval", "30s")).toBe(30_000);
    expect(parseInterval("reconcile-interval", "1500ms")).toBe(1500);
    expect(parseInterval("reconcile-interval", "2m")).toBe(120_000);
    expect(parseInterval("reconcile-interval", "0")).toBe(0);
    expect(parseInterval("reconcile-interval", "off")).toBe(0);
    expect(parseInterval("reconcile-interval", "0s")).toBe(0);
    expect(parseInterval("reconcile-interval", "0ms")).toBe(0);
  });
});

describe("parseDaemonOptions", () => {
  test("--store etcd://: endpoints, prefix, TLS and auth files; bad values name the flag", () => {
    expect(parseDaemonOptions({ store: "etcd://10.0.0.1:2379,[2001:db8::1]:2379/gorb/prod/", nodeId: "lb-1" })).toMatchObject({
      sharedStore: {
        endpoints: ["http://10.0.0.1:2379", "http://[2001:db8::1]:2379"],
        prefix: "/gorb/prod",
        caFile: null,
        user: null,
      },
      nodeId: "lb-1",
    });
    expect(parseDaemonOptions({ store: "etcds://etcd1:2379", etcdCa: "/ca.pem", etcdUser: "gorb", etcdPasswordFile: "/pw" }).sharedStore).toEqual({
      endpoints: ["https://etcd1:2379"],
      prefix: "/gorb",
      caFile: "/ca.pem",
      certFile: null,
      keyFile: null,
      user: "gorb",
      passwordFile: "/pw",
    });
    expect(() => parseDaemonOptions({ store: "consul://x:1/gorb" })).toThrow("--store: expected etcd://");
    expect(() => parseDaemonOptions({ store: "etcd://nohost/gorb" })).toThrow('--store: "nohost" is not HOST:PORT');
    expect(() => parseDaemonOptions({ store: "etcd://h:99999/gorb" })).toThrow('--store: port 99999 of "h:99999" is not 1-65535');
    expect(() => parseDaemonOptions({ store: "etcd://127.0.0.1:2379,[::1]:0/gorb" })).toThrow('--store: port 0 of "[::1]:0" is not 1-65535');
    expect(() => parseDaemonOptions({ store: "etcd://h:1/a b" })).toThrow("--store: the key prefix");
    expect(() => parseDaemonOptions({ etcdCa: "/ca.pem" })).toThrow("--etcd-ca: needs --store etcd://");
    // TLS files with plain HTTP would be ignored: the connection would be in clear.
    for (const [flags, flag] of [[{ etcdCa: "/ca.pem" }, "etcd-ca"], [{ etcdCert: "/c.pem", etcdKey: "/k.pem" }, "etcd-cert"]] as const) {
      expect(() => parseDaemonOptions({ store: "etcd://h:1/gorb", ...flags })).toThrow(`--${flag}: needs etcds://... (etcd:// is plain HTTP`);
    }
    expect(() => parseDaemonOptions({ store: "etcd://h:1", etcdUser: "u" })).toThrow("--etcd-password-file: --etcd-user and --etcd-password-file go together");
    expect(() => parseDaemonOptions({ nodeId: "a/b" })).toThrow("--node-id: must be");
  });

  test("--no-state keeps nothing on disk whatever --state-dir says", () => {
    expect(parseDaemonOptions({ state: false, stateDir: "/srv/gorb" }).stateDir).toBeNull();
  });

  test("defaults: loopback only (127.0.0.1:4672), no interface (services need a host), no flush, no consul, 64 KiB bodies", () => {
    expect(parseDaemonOptions({})).toEqual({
      listen: { host: "127.0.0.1", port: 4672 },
      interface: null,
      flush: false,
      consulUrl: null,
      verbose: false,
      vipInterface: null,
      token: null,
      tokenFile: null,
      allow: [],
      allowOrigins: [],
      maxConnections: 256,
      tls: null,
      consulToken: null,
      consulTokenFile: null,
      bodyLimitBytes: 65536,
      stateDir: "/var/lib/gorb",
      reconcileIntervalMs: 30_000,
      unknownDestinations: "report",
      maxServices: null,
      maxBackends: null,
      probeMarks: { first: 0x3000, last: 0x30ff },
      sharedStore: null,
      nodeId: null,
      configPath: null,
      configSettings: null,
      declared: null,
      ui: true,
      bgp: null,
      ipvsSysctls: true,
      hookDir: "/etc/gorb/hooks",
      checkExecDirs: null,
    });
  });

  test("every flag", () => {
    expect(
      parseDaemonOptions({
        listen: "127.0.0.1:9000",
        interface: "eth0",
        flush: true,
        consul: "http://consul:8500/?token=x",
        verbose: true,
        vipInterface: "lo",
        token: "s3cret",
        bodyLimit: "1m",
        stateDir: "/srv/gorb",
        reconcileInterval: "5m",
        allow: "10.0.0.0/8, 2001:db8::/32,192.0.2.7",
        allowOrigin: "https://OPS.example.com:443,http://127.0.0.1:8080",
        maxConnections: "64",
        tlsCert: "/etc/gorb/cert.pem",
        tlsKey: "/etc/gorb/key.pem",
        consulTokenFile: "/etc/gorb/consul-token",
      }),
    ).toEqual({
      listen: { host: "127.0.0.1", port: 9000 },
      interface: "eth0",
      flush: true,
      consulUrl: "http://consul:8500/?token=x",
      verbose: true,
      vipInterface: "lo",
      token: "s3cret",
      tokenFile: null,
      allow: [
        { bytes: Uint8Array.of(10, 0, 0, 0), prefix: 8, text: "10.0.0.0/8" },
        { bytes: expect.any(Uint8Array), prefix: 32, text: "2001:db8::/32" },
        { bytes: Uint8Array.of(192, 0, 2, 7), prefix: 32, text: "192.0.2.7/32" },
      ],
      allowOrigins: ["https://ops.example.com", "http://127.0.0.1:8080"],
      maxConnections: 64,
      tls: { certFile: "/etc/gorb/cert.pem", keyFile: "/etc/gorb/key.pem" },
      consulToken: null,
      consulTokenFile: "/etc/gorb/consul-token",
      bodyLimitBytes: 1048576,
      stateDir: "/srv/gorb",
      reconcileIntervalMs: 300_000,
      unknownDestinations: "report",
      maxServices: null,
      maxBackends: null,
      probeMarks: { first: 0x3000, last: 0x30ff },
      sharedStore: null,
      nodeId: null,
      configPath: null,
      configSettings: null,
      declared: null,
      ui: true,
      bgp: null,
      ipvsSysctls: true,
      hookDir: "/etc/gorb/hooks",
      checkExecDirs: null,
    });
  });

  test("bad values name their flag", () => {
    const cases: [Parameters<typeof parseDaemonOptions>[0], string][] = [
      // The original's traps: "localhost:8500" parsed as scheme "localhost", "10.0.0.1:8500" failed late.
      [{ consul: "localhost:8500" }, "--consul: must be an http:// or https:// URL"],
      [{ consul: "10.0.0.1:8500" }, '--consul: "10.0.0.1:8500" is not a URL; use e.g. http://127.0.0.1:8500'],
      [{ interface: "a-very-long-interface-name" }, "--interface: \"a-very-long-interface-name\" is not a network interface name"],
      [{ vipInterface: "eth0/1" }, "--vip-interface: \"eth0/1\" is not a network interface name"],
      [{ token: "two words" }, "--token: must not contain whitespace"],
      [{ reconcileInterval: "30" }, "--reconcile-interval: expected a duration such as 30s"],
      [{ reconcileInterval: "100ms" }, "--reconcile-interval: must be between 1s and 24h"],
      [{ stateDir: "" }, "--state-dir: must be a directory path"],
      [{ token: "t", tokenFile: "/etc/gorb/token" }, "--token-file: give either --token or --token-file, not both"],
      [{ consulToken: "t", consulTokenFile: "/f" }, "--consul-token-file: give either --consul-token or --consul-token-file, not both"],
      [{ allow: "10.0.0.1/8" }, '--allow: "10.0.0.1/8": has bits set after the /8 prefix; did you mean 10.0.0.0/8?'],
      [{ allow: "10.0.0.0/33" }, '--allow: "10.0.0.0/33": the prefix length must be 0-32'],
      [{ allow: "eth0" }, '--allow: "eth0": not an IPv4 or IPv6 address or network'],
      [{ allowOrigin: "https://ops.example.com/path" }, '--allow-origin: "https://ops.example.com/path" is not an origin'],
      [{ allowOrigin: "*" }, '--allow-origin: "*" is not an origin'],
      [{ maxConnections: "0" }, "--max-connections: must be a whole number from 1 to 100000"],
      [{ tlsCert: "/c.pem" }, "--tls-key: is required with --tls-cert"],
      [{ tlsKey: "/k.pem" }, "--tls-cert: is required with --tls-key"],
    ];
    for (const [flags, message] of cases) {
      let error: unknown;
      try {
        parseDaemonOptions(flags);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(DaemonOptionError);
      expect((error as Error).message).toStartWith(message);
    }
  });
});

describe("--max-services and --max-backends", () => {
  test("a whole number, or 0 / unlimited for none (the default)", () => {
    const base = parseDaemonOptions({});
    expect([base.maxServices, base.maxBackends]).toEqual([null, null]);
    const set = parseDaemonOptions({ maxServices: "1000", maxBackends: "unlimited" });
    expect([set.maxServices, set.maxBackends]).toEqual([1000, null]);
    expect(parseDaemonOptions({ maxServices: "0" }).maxServices).toBeNull();
    // 0 is 0 however it is written: "00" was a limit of 0, every create refused 409 LIMIT.
    expect([parseDaemonOptions({ maxServices: "00" }).maxServices, parseDaemonOptions({ maxBackends: "0000000000" }).maxBackends]).toEqual([null, null]);
    expect(parseDaemonOptions({ maxServices: "010" }).maxServices).toBe(10);
    expect(() => parseDaemonOptions({ maxBackends: "-5" })).toThrow('--max-backends: expected a whole number (0 or unlimited: no limit), got "-5"');
  });

  test("--probe-marks: the range of checks through the VIP, hex or decimal, inclusive", () => {
    expect(parseDaemonOptions({ probeMarks: "0x10000-0x1ffff" }).probeMarks).toEqual({ first: 0x10000, last: 0x1ffff });
    expect(parseDaemonOptions({ probeMarks: "100-100" }).probeMarks).toEqual({ first: 100, last: 100 });
    expect(() => parseDaemonOptions({ probeMarks: "0x30ff-0x3000" })).toThrow("--probe-marks: must be 1 <= FIRST <= LAST <= 0xffffffff");
    expect(() => parseDaemonOptions({ probeMarks: "0x3000" })).toThrow("--probe-marks: must be FIRST-LAST (e.g. 0x3000-0x30ff)");
    expect(() => parseDaemonOptions({ probeMarks: "0-5" })).toThrow("--probe-marks: must be 1 <= FIRST");
  });
});

describe("--bgp-*", () => {
  test("off without --bgp-bird-socket; with it: defaults /run/gorb/bird-vips.conf, gorb_vips, 3 s, withdraw on exit", () => {
    expect(parseDaemonOptions({}).bgp).toBeNull();
    expect(parseDaemonOptions({ bgpBirdSocket: "/run/bird/bird.ctl" }).bgp).toEqual({
      socket: "/run/bird/bird.ctl",
      include: "/run/gorb/bird-vips.conf",
      protocol: "gorb_vips",
      holdDownMs: 3000,
      keepOnExit: false,
    });
    expect(
      parseDaemonOptions({ bgpBirdSocket: "/b.ctl", bgpInclude: "/tmp/v.conf", bgpProtocol: "anycast", bgpHoldDown: "500ms", bgpKeepOnExit: true }).bgp,
    ).toEqual({ socket: "/b.ctl", include: "/tmp/v.conf", protocol: "anycast", holdDownMs: 500, keepOnExit: true });
    expect(parseDaemonOptions({ bgpBirdSocket: "/b.ctl", bgpHoldDown: "0" }).bgp?.holdDownMs).toBe(0);
  });

  test("bad values name the flag", () => {
    expect(() => parseDaemonOptions({ bgpInclude: "/tmp/v.conf" })).toThrow("--bgp-include: needs --bgp-bird-socket");
    expect(() => parseDaemonOptions({ bgpBirdSocket: "/b.ctl", bgpProtocol: "gorb vips" })).toThrow("--bgp-protocol: must be a BIRD protocol name");
    expect(() => parseDaemonOptions({ bgpBirdSocket: "/b.ctl", bgpHoldDown: "2h" })).toThrow("--bgp-hold-down: expected a duration from 0 to 1h");
  });

  test("--bgp-protocol refuses a word BIRD reserves, as the name or as its IPv6 protocol's (<name>6)", () => {
    for (const word of ["bgp", "static", "protocol", "filter", "table", "where", "all", "RTS_STATIC"]) {
      expect(() => parseDaemonOptions({ bgpBirdSocket: "/b.ctl", bgpProtocol: word })).toThrow(
        `--bgp-protocol: ${JSON.stringify(word)} is a word BIRD reserves (a keyword or predefined name) and refuses as a protocol name; choose another, e.g. gorb_vips`,
      );
    }
    expect(() => parseDaemonOptions({ bgpBirdSocket: "/b.ctl", bgpProtocol: "ipv" })).toThrow(
      '--bgp-protocol: "ipv" (the name of its IPv6 protocol, "ipv6") is a word BIRD reserves',
    );
    // BIRD's keywords are case-sensitive: BGP is a name.
    for (const name of ["gorb_vips", "BGP", "anycast"]) {
      expect(parseDaemonOptions({ bgpBirdSocket: "/b.ctl", bgpProtocol: name }).bgp?.protocol).toBe(name);
    }
  });
});
