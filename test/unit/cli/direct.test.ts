/**
 * --direct against an in-memory IPVS table (MemoryIpvsDriver installed as the driver factory): names map to
 * kernel keys, flags to ServiceConfig / DestinationConfig, driver errors to exit codes.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { type DirectDriverFactory, parseBackendName, parseServiceName, setDirectDriverFactory } from "../../../src/cli/direct.ts";
import { EXIT } from "../../../src/cli/errors.ts";
import { MemoryIpvsDriver } from "../../../src/ipvs/memory-driver.ts";
import { runGorb } from "./_harness.ts";

let driver: MemoryIpvsDriver;
let previous: DirectDriverFactory;

beforeEach(() => {
  driver = new MemoryIpvsDriver();
  // Each command closes its driver; MemoryIpvsDriver.close() keeps the table, so one driver serves them all.
  const shared = driver;
  previous = setDirectDriverFactory(async () => shared);
});

afterEach(() => {
  setDirectDriverFactory(previous);
});

async function ok(args: string[]): Promise<string> {
  const run = await runGorb([...args, "--direct"]);
  expect({ code: run.code, stderr: run.code === 0 ? "" : run.stderr }).toEqual({ code: 0, stderr: "" });
  return run.stdout;
}

describe("names", () => {
  test("services: protocol:address:port, bare address:port (tcp), fwmark:N[/family]", () => {
    expect(parseServiceName("tcp:10.0.0.1:80")).toEqual({ family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 });
    expect(parseServiceName("UDP:[2001:DB8::1]:53")).toEqual({ family: "inet6", protocol: "udp", address: "2001:db8::1", port: 53 });
    expect(parseServiceName("10.0.0.1:443")).toEqual({ family: "inet", protocol: "tcp", address: "10.0.0.1", port: 443 });
    expect(parseServiceName("fwmark:7")).toEqual({ family: "inet", fwmark: 7 });
    expect(parseServiceName("fwmark:7/inet6")).toEqual({ family: "inet6", fwmark: 7 });
    expect(parseServiceName("fwmark:7", "inet6")).toEqual({ family: "inet6", fwmark: 7 });
    for (const bad of ["web", "tcp:web.example:80", "tcp:10.0.0.1", "tcp:10.0.0.1:0", "tcp:10.0.0.1:70000", "fwmark:0", "icmp:10.0.0.1:1"]) {
      expect(() => parseServiceName(bad)).toThrow(`service ${JSON.stringify(bad)}`);
    }
  });

  test("backends: address[:port], the port defaulting to the service's", () => {
    const svc = parseServiceName("tcp:10.0.0.1:80");
    expect(parseBackendName("10.1.0.1:8080", svc)).toEqual({ family: "inet", address: "10.1.0.1", port: 8080 });
    expect(parseBackendName("10.1.0.1", svc)).toEqual({ family: "inet", address: "10.1.0.1", port: 80 });
    expect(parseBackendName("[2001:db8::2]:81", svc)).toEqual({ family: "inet6", address: "2001:db8::2", port: 81 });
    expect(parseBackendName("2001:db8::2", svc)).toEqual({ family: "inet6", address: "2001:db8::2", port: 80 });
    expect(parseBackendName("10.1.0.1", parseServiceName("fwmark:3"))).toEqual({ family: "inet", address: "10.1.0.1", port: 0 });
    expect(() => parseBackendName("b1.example:80", svc)).toThrow("is not an IP address");
  });
});

describe("gorb service --direct", () => {
  test("add writes the ServiceConfig the flags describe", async () => {
    await ok(["service", "add", "udp:10.0.0.53:53", "--method", "SH", "--flags", "sh-port", "--persistence-timeout", "60", "--netmask", "24", "--one-packet"]);
    await ok(["service", "add", "fwmark:9", "--family", "inet6"]);
    expect(await driver.listServices()).toEqual([
      expect.objectContaining({
        key: { family: "inet", protocol: "udp", address: "10.0.0.53", port: 53 },
        scheduler: "sh",
        // sh gets sh-fallback from gorb (hash_fallback defaults to true)
        flags: { persistent: true, onePacket: true, sched1: true, sched2: true, sched3: false },
        timeout: 60,
        netmask: 24,
        pe: null,
      }),
      expect.objectContaining({ key: { family: "inet6", fwmark: 9 }, scheduler: "wrr", timeout: 0, netmask: 128 }),
    ]);
  });

  test("set changes only what is given; rm deletes", async () => {
    await ok(["service", "add", "tcp:10.0.0.1:80", "--persistent"]);
    await ok(["service", "set", "tcp:10.0.0.1:80", "--method", "lc"]);
    const svc = await driver.getService(parseServiceName("tcp:10.0.0.1:80"));
    expect([svc.scheduler, svc.flags.persistent, svc.timeout]).toEqual(["lc", true, 300]);
    await ok(["service", "rm", "tcp:10.0.0.1:80"]);
    expect(await driver.listServices()).toEqual([]);
  });

  test("ls and show print kernel names; --json uses the same names", async () => {
    await ok(["service", "add", "tcp:10.0.0.1:80", "--method", "rr"]);
    await ok(["backend", "add", "tcp:10.0.0.1:80", "10.1.0.1:8080", "--weight", "5"]);
    expect(await ok(["service", "ls"])).toBe("SERVICE          SCHEDULER  PERSIST  CONNS\ntcp:10.0.0.1:80  rr               -      0\n");
    const shown = await ok(["service", "show", "tcp:10.0.0.1:80"]);
    expect(shown).toContain("service      tcp:10.0.0.1:80\n");
    expect(shown).toMatch(/└ 10\.1\.0\.1:8080 +10\.1\.0\.1:8080 +nat +- +5 +- +- /);
    const json = JSON.parse(await ok(["service", "show", "tcp:10.0.0.1:80", "--json"])) as {
      service: string;
      scheduler: string;
      backends: { backend: string; weight: number }[];
    };
    expect([json.service, json.scheduler, json.backends.map((b) => [b.backend, b.weight])]).toEqual([
      "tcp:10.0.0.1:80",
      "rr",
      [["10.1.0.1:8080", 5]],
    ]);
    const list = JSON.parse(await ok(["service", "ls", "--json"])) as { service: string }[];
    expect(list.map((s) => s.service)).toEqual(["tcp:10.0.0.1:80"]);
  });
});

describe("gorb backend --direct", () => {
  beforeEach(async () => {
    await ok(["service", "add", "tcp:10.0.0.1:80"]);
  });

  test("add, set, show, rm", async () => {
    await ok(["backend", "add", "tcp:10.0.0.1:80", "10.1.0.1", "--forward", "tunnel", "--tunnel-type", "gue", "--tunnel-port", "6080", "--upper-threshold", "9"]);
    const [dest] = await driver.listDestinations(parseServiceName("tcp:10.0.0.1:80"));
    expect(dest).toEqual(
      expect.objectContaining({
        address: "10.1.0.1",
        port: 80,
        forward: "tunnel",
        weight: 100,
        upperThreshold: 9,
        tunnel: { type: "gue", port: 6080, checksum: "nocsum" },
      }),
    );
    await ok(["backend", "set", "tcp:10.0.0.1:80", "10.1.0.1:80", "--weight", "0"]);
    const json = JSON.parse(await ok(["backend", "show", "tcp:10.0.0.1:80", "10.1.0.1", "--json"])) as Record<string, unknown>;
    expect([json.backend, json.weight, json.forward, json.tunnel_type, json.tunnel_port, json.upper_threshold]).toEqual([
      "10.1.0.1:80",
      0,
      "tunnel",
      "gue",
      6080,
      9,
    ]);
    await ok(["backend", "rm", "tcp:10.0.0.1:80", "10.1.0.1"]);
    expect(await driver.listDestinations(parseServiceName("tcp:10.0.0.1:80"))).toEqual([]);
  });

  test("enum flags take any case, as without --direct: --forward DR, --family INET6", async () => {
    await ok(["backend", "add", "tcp:10.0.0.1:80", "10.1.0.2", "--forward", "DR"]);
    expect((await driver.listDestinations(parseServiceName("tcp:10.0.0.1:80")))[0]?.forward).toBe("dr");
    await ok(["service", "add", "fwmark:9", "--family", "INET6"]);
    expect((await driver.listServices()).map((s) => s.key.family)).toContain("inet6");
  });

  test("status --direct shows live weights and connections per destination", async () => {
    await ok(["backend", "add", "tcp:10.0.0.1:80", "10.1.0.1:8080", "--weight", "3"]);
    const rows = (await ok(["status"])).trimEnd().split("\n").map((l) => l.split(/\s{2,}/));
    expect(rows[1]).toEqual(["tcp:10.0.0.1:80", "-", "wrr", "-", "1 backend", "0/0", "0", "0", "0"]);
    expect(rows[2]).toEqual(["└ 10.1.0.1:8080", "10.1.0.1:8080", "nat", "-", "3", "-", "-", "0/0", "0", "0", "0"]);
    const json = JSON.parse(await ok(["status", "tcp:10.0.0.1:80", "--json"])) as { service: string; backends: { weight: number }[] }[];
    expect(json.map((s) => [s.service, s.backends.map((b) => b.weight)])).toEqual([["tcp:10.0.0.1:80", [3]]]);
  });
});

describe("gorb __ids --direct (the completion scripts, with --direct on the line)", () => {
  test("the kernel's services as --direct names them, then a service's destinations", async () => {
    await ok(["service", "add", "tcp:10.0.0.1:80"]);
    await ok(["service", "add", "fwmark:7"]);
    await ok(["backend", "add", "tcp:10.0.0.1:80", "10.1.0.1:8080"]);
    await ok(["backend", "add", "tcp:10.0.0.1:80", "10.1.0.2"]);
    expect((await ok(["__ids"])).split("\n").filter((l) => l !== "").sort()).toEqual(["fwmark:7", "tcp:10.0.0.1:80"]);
    expect((await ok(["__ids", "tcp:10.0.0.1:80"])).split("\n").filter((l) => l !== "").sort()).toEqual(["10.1.0.1:8080", "10.1.0.2:80"]);
    expect((await runGorb(["__ids", "tcp:10.9.9.9:80", "--direct"])).code).toBe(EXIT.NOT_FOUND);
  });
});

describe("status --direct --watch", () => {
  test("a service the kernel does not have, or a name that is none, ends the watch at once as without --watch", async () => {
    for (const name of ["tcp:10.0.0.9:80", "web"]) {
      const once = await runGorb(["status", name, "--direct"]);
      expect(once.code).toBe(name === "web" ? EXIT.USAGE : EXIT.NOT_FOUND);
      expect(await runGorb(["status", "--direct", "--watch", name])).toEqual(once);
    }
  });
});

describe("driver errors -> exit codes", () => {
  test("ESRCH -> 4, EEXIST -> 5, unknown scheduler / ERANGE -> 6, other errno -> 7", async () => {
    const missing = await runGorb(["service", "show", "tcp:10.9.9.9:80", "--direct"]);
    expect([missing.code, missing.stderr]).toEqual([EXIT.NOT_FOUND, expect.stringMatching(/^error: .*10\.9\.9\.9.*\n$/)]);
    await ok(["service", "add", "tcp:10.0.0.1:80"]);
    expect((await runGorb(["service", "add", "tcp:10.0.0.1:80", "--direct"])).code).toBe(EXIT.CONFLICT);
    // A scheduler gorb knows that this kernel lacks (twos is Linux 6.2's; the driver here is 6.1's): the kernel's ENOENT.
    expect((await runGorb(["service", "add", "tcp:10.0.0.2:80", "--method", "twos", "--direct"])).code).toBe(EXIT.REJECTED);
    const nodest = await runGorb(["backend", "show", "tcp:10.0.0.1:80", "10.1.0.7", "--direct"]);
    expect([nodest.code, nodest.stderr]).toEqual([
      EXIT.NOT_FOUND,
      "error: backend 10.1.0.7:80 of service tcp:10.0.0.1:80 not found in the kernel\n",
    ]);
    driver.failNext("add-destination", "EPERM");
    const eperm = await runGorb(["backend", "add", "tcp:10.0.0.1:80", "10.1.0.1", "--direct"]);
    expect([eperm.code, eperm.stderr]).toEqual([EXIT.SERVER, expect.stringMatching(/--direct needs root\n$/)]);
  });
});

describe("--direct checks with the daemon's rules (core's normaliser and resolver)", () => {
  test("a bad VIP and tunnel options without a tunnel are refused (exit 6) before the kernel, a bad scheduler as a usage error (exit 2)", async () => {
    const vip = await runGorb(["service", "add", "tcp:0.0.0.0:80", "--direct"]);
    expect([vip.code, vip.stderr]).toEqual([
      EXIT.REJECTED,
      "error: host: 0.0.0.0 is an unspecified address; a VIP must be one host's unicast address\n",
    ]);
    const sched = await runGorb(["service", "add", "tcp:10.0.0.1:80", "--method", "fancy", "--direct"]);
    expect(sched.code).toBe(EXIT.USAGE);
    expect(sched.stderr).toStartWith('error: --method: expected one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos, got "fancy"\n');
    await ok(["service", "add", "tcp:10.0.0.1:80"]);
    const tunnel = await runGorb(["backend", "add", "tcp:10.0.0.1:80", "10.1.0.1", "--tunnel-checksum", "csum", "--direct"]);
    expect([tunnel.code, tunnel.stderr]).toEqual([EXIT.REJECTED, 'error: tunnel_checksum: needs method "tunnel", not "nat"\n']);
    expect(await driver.listServices()).toHaveLength(1);
    expect(await driver.listDestinations(parseServiceName("tcp:10.0.0.1:80"))).toEqual([]);
  });

  test("backend add of a dr destination on another port is refused before the kernel (exit 6); on the service's port it is added", async () => {
    await ok(["service", "add", "tcp:10.0.0.1:80"]);
    const refused = await runGorb(["backend", "add", "tcp:10.0.0.1:80", "10.1.0.1:8080", "--forward", "dr", "--direct"]);
    expect([refused.code, refused.stderr]).toEqual([EXIT.REJECTED, expect.stringContaining("port: must be the service's port 80 for a dr backend, got 8080: IPVS forwards dr packets without changing their port")]);
    expect((await driver.listDestinations({ family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 })).length).toBe(0);
    await ok(["backend", "add", "tcp:10.0.0.1:80", "10.1.0.1", "--forward", "dr"]);
    expect((await driver.listDestinations({ family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 })).map((d) => [d.port, d.forward])).toEqual([[80, "dr"]]);
  });

  test("--maintenance and --no-maintenance are refused (exit 2): the kernel keeps no weight for maintenance off to give back", async () => {
    await ok(["service", "add", "tcp:10.0.0.1:80"]);
    const refused = (run: { code: number; stderr: string }) =>
      expect([run.code, run.stderr]).toEqual([EXIT.USAGE, expect.stringContaining("--maintenance is not used with --direct: maintenance keeps the configured weight")]);
    refused(await runGorb(["backend", "add", "tcp:10.0.0.1:80", "10.1.0.1", "--weight", "7", "--maintenance", "--direct"]));
    expect(await driver.listDestinations({ family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 })).toEqual([]);
    await ok(["backend", "add", "tcp:10.0.0.1:80", "10.1.0.1", "--weight", "7"]);
    refused(await runGorb(["backend", "set", "tcp:10.0.0.1:80", "10.1.0.1", "--maintenance", "--direct"]));
    refused(await runGorb(["backend", "set", "tcp:10.0.0.1:80", "10.1.0.1", "--no-maintenance", "--direct"]));
    expect((await driver.listDestinations({ family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 })).map((d) => d.weight)).toEqual([7]);
  });

  test("backend set's daemon-only flags are usage errors before the driver opens, as add's: not IPVS unavailable, not not-found", async () => {
    let opened = 0;
    setDirectDriverFactory(async () => {
      opened++;
      throw Object.assign(new Error("IPVS is not available in this kernel"), { name: "IpvsUnavailableError" });
    });
    for (const flags of [["--maintenance"], ["--no-maintenance"], ["--slow-start", "3s"], ["--port", "81"]]) {
      const run = await runGorb(["backend", "set", "tcp:10.0.0.1:80", "10.1.0.1", ...flags, "--direct"]);
      expect([flags[0], run.code, run.stderr]).toEqual([flags[0], EXIT.USAGE, expect.stringContaining("is not used with --direct")]);
    }
    expect(opened).toBe(0);
  });

  test("daemon-only service flags (panic mode, BGP) are refused, not dropped: the kernel has no place for them", async () => {
    for (const [flag, value] of [["--panic-threshold", "50"], ["--announce-min-healthy", "2"]] as const) {
      for (const command of ["add", "set"]) {
        const run = await runGorb(["service", command, "tcp:10.0.0.1:80", flag, value, "--direct"]);
        expect([run.code, run.stderr]).toEqual([EXIT.USAGE, expect.stringContaining(`error: ${flag} is not used with --direct:`)]);
      }
    }
    expect(await driver.listServices()).toEqual([]);
  });

  test("a loopback VIP is refused, naming what allows one (the daemon's --vip-interface lo, not a flag of this command)", async () => {
    const run = await runGorb(["service", "add", "tcp:127.0.0.1:80", "--direct"]);
    expect(run.stderr).toContain("127.0.0.1 is a loopback address; it is a VIP only when gorb serve has --vip-interface lo");
    expect(run.code).not.toBe(0);
    expect(await driver.listServices()).toEqual([]);
  });

  test("set keeps what the kernel has and turns persistence off with its options", async () => {
    await ok(["service", "add", "tcp:10.0.0.1:80", "--method", "sh", "--flags", "sh-port", "--persistence-timeout", "60", "--netmask", "24"]);
    await ok(["service", "set", "tcp:10.0.0.1:80", "--no-persistent"]);
    const svc = await driver.getService(parseServiceName("tcp:10.0.0.1:80"));
    expect([svc.scheduler, svc.flags.sched2, svc.flags.persistent, svc.timeout, svc.netmask]).toEqual(["sh", true, false, 0, 32]);
  });
});
