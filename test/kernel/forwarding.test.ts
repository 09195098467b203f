// Real client traffic through gorb for every forwarding method, with the topology a direct-return load balancer has:
//
//   client ns "fcl" ──(dcl)── director (root ns: gorb + IPVS, VIPs on lo)
//        │                        │ dfb<i>: 10.89.<i>.1/24 (the backends' segment; tunnels go over it too)
//        │                     backend ns "fb<i>" (10.89.<i>.2; VIPs on lo; tunl0/gre0/sit0 up, fou port 5555 gue)
//        │                        │ eth1: default route
//   router ns "frt" ──────────────┘
//
// The client reaches the VIPs through the director; the backends' default route is the router, which routes back to
// the client. So for DR and tunnels the replies never cross the director: the director's packet counter towards the
// client (dcl tx_packets) stays flat while 60 connections are served. Local forwarding, whose replies do come from
// the director, is the positive control of that counter.
//
// Then: checks through the VIP (a DR backend that loses its VIP is drained; without them the loss is silent), and at
// the end (module unload is global) the ip_vs module reload.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Daemon, startDaemon } from "./helpers/daemon.ts";
import { assertInGuest } from "./helpers/guest.ts";
import { listIpvs, serviceByKey } from "./helpers/ipvsadm.ts";
import { IP, inNetns, ip, ipvsadm, run } from "./helpers/sh.ts";
import { KernelIpvsDriver } from "../../src/ipvs/kernel-driver.ts";

const BACKENDS = [1, 2, 3] as const;
const REQUESTS = 60;
const GUE_PORT = 5555;
const API_PORT = 4681;
const CLIENT = join(import.meta.dir, "helpers", "ns-client.ts");
const WWW = "/tmp/gorb-fwd-www";

/** Every VIP the backends hold on lo. */
const VIPS = {
  dr: "10.88.100.1",
  ipip: "10.88.100.2",
  gue: "10.88.100.3",
  gre: "10.88.100.4",
  six: "fd88:100::5",
  local: "10.88.100.6",
  probe: "10.88.100.7",
  silent: "10.88.100.8",
  csum: "10.88.100.12",
  remcsum: "10.88.100.13",
  grecsum: "10.88.100.14",
  drport: "10.88.100.15",
} as const;

const servers: ReturnType<typeof Bun.spawn>[] = [];

function sysctl(ns: string | null, name: string, value: string): void {
  const argv = ["/sbin/sysctl", "-q", "-w", `${name}=${value}`];
  if (ns === null) run(argv);
  else inNetns(ns, argv);
}

function serve(ns: string | null, name: string, listen: string): void {
  const root = `${WWW}/${name}`;
  mkdirSync(root, { recursive: true });
  writeFileSync(`${root}/index.html`, `${name}\n`);
  const argv = ["/bin/busybox", "httpd", "-f", "-p", listen, "-h", root];
  const proc = Bun.spawn(ns === null ? argv : [IP, "netns", "exec", ns, ...argv], { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
  proc.unref();
  servers.push(proc);
}

function veth(a: string, aNs: string | null, b: string, bNs: string): void {
  ip("link", "add", a, "type", "veth", "peer", "name", b, "netns", bNs);
  if (aNs !== null) ip("link", "set", a, "netns", aNs);
}

function nsIp(ns: string | null, ...args: string[]): void {
  if (ns === null) ip(...args);
  else inNetns(ns, [IP, ...args]);
}

function buildTopology(): void {
  for (const m of ["ipip", "ip_gre", "fou", "sit"]) run(["/sbin/modprobe", m]);
  for (const ns of ["fcl", "frt", ...BACKENDS.map((i) => `fb${i}`)]) ip("netns", "add", ns);
  // client <-> director
  veth("dcl", null, "eth0", "fcl");
  nsIp(null, "addr", "add", "10.88.0.1/24", "dev", "dcl");
  nsIp(null, "addr", "add", "fd88::1/64", "dev", "dcl", "nodad");
  nsIp(null, "link", "set", "dcl", "up");
  nsIp("fcl", "addr", "add", "10.88.0.2/24", "dev", "eth0");
  nsIp("fcl", "addr", "add", "fd88::2/64", "dev", "eth0", "nodad");
  // client <-> router
  veth("rcl", "frt", "eth1", "fcl");
  nsIp("fcl", "addr", "add", "10.91.0.2/24", "dev", "eth1");
  nsIp("fcl", "addr", "add", "fd91::2/64", "dev", "eth1", "nodad");
  nsIp("frt", "addr", "add", "10.91.0.1/24", "dev", "rcl");
  nsIp("frt", "addr", "add", "fd91::1/64", "dev", "rcl", "nodad");
  for (const ns of ["fcl", "frt"]) for (const dev of ["lo", ns === "fcl" ? "eth0" : "rcl", ns === "fcl" ? "eth1" : null]) if (dev) nsIp(ns, "link", "set", dev, "up");
  nsIp("fcl", "route", "add", "10.88.100.0/24", "via", "10.88.0.1");
  nsIp("fcl", "-6", "route", "add", "fd88:100::/64", "via", "fd88::1");
  nsIp("frt", "route", "add", "10.88.0.0/24", "via", "10.91.0.2");
  nsIp("frt", "-6", "route", "add", "fd88::/64", "via", "fd91::2");
  sysctl("frt", "net.ipv4.ip_forward", "1");
  sysctl("frt", "net.ipv6.conf.all.forwarding", "1");
  for (const name of ["all", "default", "eth0", "eth1"]) sysctl("fcl", `net.ipv4.conf.${name}.rp_filter`, "0");
  for (const i of BACKENDS) {
    const ns = `fb${i}`;
    veth(`dfb${i}`, null, "eth0", ns);
    nsIp(null, "addr", "add", `10.89.${i}.1/24`, "dev", `dfb${i}`);
    nsIp(null, "link", "set", `dfb${i}`, "up");
    veth(`rfb${i}`, "frt", "eth1", ns);
    nsIp("frt", "addr", "add", `10.90.${i}.1/24`, "dev", `rfb${i}`);
    nsIp("frt", "addr", "add", `fd90:${i}::1/64`, "dev", `rfb${i}`, "nodad");
    nsIp("frt", "link", "set", `rfb${i}`, "up");
    nsIp(ns, "addr", "add", `10.89.${i}.2/24`, "dev", "eth0");
    nsIp(ns, "addr", "add", `10.90.${i}.2/24`, "dev", "eth1");
    nsIp(ns, "addr", "add", `fd90:${i}::2/64`, "dev", "eth1", "nodad");
    for (const dev of ["lo", "eth0", "eth1", "tunl0", "gre0", "sit0"]) nsIp(ns, "link", "set", dev, "up");
    nsIp(ns, "route", "add", "default", "via", `10.90.${i}.1`);
    nsIp(ns, "-6", "route", "add", "default", "via", `fd90:${i}::1`);
    // The VIPs on lo; ARP for them is left to the director (arp_ignore / arp_announce), decapsulated packets from a
    // source routed elsewhere are accepted (rp_filter off).
    for (const vip of [VIPS.dr, VIPS.ipip, VIPS.gue, VIPS.gre, VIPS.probe, VIPS.silent, VIPS.csum, VIPS.remcsum, VIPS.grecsum, VIPS.drport]) nsIp(ns, "addr", "add", `${vip}/32`, "dev", "lo");
    nsIp(ns, "addr", "add", `${VIPS.six}/128`, "dev", "lo");
    sysctl(ns, "net.ipv4.conf.all.arp_ignore", "1");
    sysctl(ns, "net.ipv4.conf.all.arp_announce", "2");
    for (const name of ["all", "default", "lo", "eth0", "eth1", "tunl0", "gre0"]) sysctl(ns, `net.ipv4.conf.${name}.rp_filter`, "0");
    nsIp(ns, "fou", "add", "port", String(GUE_PORT), "gue");
    serve(ns, ns, "80");
  }
  // Local forwarding: the director's own server (every address: the VIP appears with its service).
  serve(null, "director", "80");
}

function destroyTopology(): void {
  for (const p of servers.splice(0)) p.kill("SIGKILL");
  for (const ns of ["fcl", "frt", ...BACKENDS.map((i) => `fb${i}`)]) {
    try {
      ip("netns", "del", ns);
    } catch {
      // already gone
    }
  }
  rmSync(WWW, { recursive: true, force: true });
}

interface Counts {
  readonly counts: Record<string, number>;
  readonly failures: readonly string[];
}

/** REQUESTS connections from the client namespace. */
function fromClient(host: string, requests = REQUESTS): Counts {
  return JSON.parse(inNetns("fcl", [process.execPath, CLIENT, host, "80", String(requests)]).trim()) as Counts;
}

/** Packets the director sent towards the client. */
function directorToClient(): number {
  return Number(readFileSync("/sys/class/net/dcl/statistics/tx_packets", "utf8").trim());
}

let gorb: Daemon;

/** Loaded modules that use ip_vs (schedulers, persistence engines, helpers), from /proc/modules' "used by" lists. */
function ipvsUsers(): string[] {
  const users = new Map<string, string[]>();
  for (const line of readFileSync("/proc/modules", "utf8").split("\n")) {
    const [name, , , usedBy] = line.split(" ");
    if (name !== undefined && usedBy !== undefined) users.set(name, usedBy === "-" ? [] : usedBy.split(",").filter((u) => u !== ""));
  }
  // Dependents first: a module that uses ip_vs_foo must go before ip_vs_foo.
  const order: string[] = [];
  const visit = (name: string): void => {
    for (const user of users.get(name) ?? []) {
      if (order.includes(user)) continue;
      visit(user);
      order.push(user);
    }
  };
  visit("ip_vs");
  return order;
}

function probeCount(): number {
  return listIpvs("default").services.filter((s) => s.fwmark !== null && s.fwmark >= 0x3000 && s.fwmark <= 0x30ff).length;
}

async function put(path: string, body: unknown): Promise<void> {
  const res = await gorb.request("PUT", path, body);
  if (res.status !== 200 && res.status !== 201) throw new Error(`PUT ${path} answered ${res.status}: ${res.text}\n${gorb.tail()}`);
}

async function service(id: string, vip: string, backends: readonly { id: string; body: Record<string, unknown> }[]): Promise<void> {
  await put(`/service/${id}`, { host: vip, port: 80, method: "rr" });
  for (const b of backends) await put(`/service/${id}/${b.id}`, { port: 80, pulse: { type: "none" }, ...b.body });
}

const each = (body: Record<string, unknown>) => BACKENDS.map((i) => ({ id: `b${i}`, body: { host: `10.89.${i}.2`, ...body } }));

/** Serves REQUESTS connections through `vip`; every one answered, by every backend, none of the replies via the director. */
function expectDirectReturn(vip: string): void {
  const before = directorToClient();
  const r = fromClient(vip);
  const sent = directorToClient() - before;
  expect(r.failures).toEqual([]);
  expect(Object.keys(r.counts).sort()).toEqual(BACKENDS.map((i) => `fb${i}`));
  expect(Object.values(r.counts).reduce((a, b) => a + b, 0)).toBe(REQUESTS);
  // A connection's replies are at least SYN-ACK, data and FIN: had they crossed the director, it would have sent
  // 3 x REQUESTS packets to the client. The interface's count also has its own control traffic (neighbour
  // discovery, MLD reports for IPv6), more of it when the machine is loaded (5 once, in a CI run at load 11):
  // fewer than REQUESTS packets is far from 3 x REQUESTS and leaves room for that.
  expect(sent).toBeLessThan(REQUESTS);
}

describe("forwarding methods with real traffic", () => {
  beforeAll(async () => {
    assertInGuest();
    ipvsadm("-C");
    buildTopology();
    gorb = await startDaemon({ port: API_PORT, flags: ["--vip-interface", "lo", "--no-state", "--reconcile-interval", "3s", "-v"] });
  });

  afterAll(async () => {
    if (process.env.GORB_RIG !== "1") return;
    await gorb?.kill();
    destroyTopology();
    ipvsadm("-C");
  });

  test("dr: backends on the director's segment, VIP on their loopback; replies straight to the client", async () => {
    await service("dr", VIPS.dr, each({ method: "dr" }));
    expectDirectReturn(VIPS.dr);
  });

  test("dr keeps the packet's port: gorb refuses a dr backend on another port (400 naming port); such a destination serves the service's port", async () => {
    await put("/service/drport", { host: VIPS.drport, port: 80, method: "rr" });
    const refused = await gorb.request("PUT", "/service/drport/b1", { host: "10.89.1.2", port: 8080, method: "dr", pulse: { type: "none" } });
    expect([refused.status, (refused.json as { field?: string }).field]).toEqual([400, "port"]);
    expect(serviceByKey(listIpvs("default"), `TCP ${VIPS.drport}:80`).destinations).toEqual([]);
    expect((await gorb.request("DELETE", "/service/drport")).status).toBe(200);
    // What the refusal rests on, in the kernel: a dr destination on 8080 (ipvsadm -g would force 80; gorb's driver
    // writes what it is given) in a service gorb does not own, on a VIP put on lo here (gorb took its own away with
    // its service). Nothing listens on 8080 in fb1; port 80 answers.
    ip("addr", "add", `${VIPS.drport}/32`, "dev", "lo");
    const driver = new KernelIpvsDriver();
    const key = { family: "inet", protocol: "tcp", address: VIPS.drport, port: 80 } as const;
    const flags = { persistent: false, hashed: false, onePacket: false, sched1: false, sched2: false, sched3: false };
    try {
      await driver.addService({ key, scheduler: "rr", flags, timeout: 0, netmask: 32, pe: null });
      await driver.addDestination(key, { family: "inet", address: "10.89.1.2", port: 8080, forward: "dr", weight: 1, upperThreshold: 0, lowerThreshold: 0, tunnel: null });
      expect(serviceByKey(listIpvs("default"), `TCP ${VIPS.drport}:80`).destinations.map((d) => `${d.address}:${d.port} ${d.forward}`)).toEqual(["10.89.1.2:8080 Route"]);
      const r = fromClient(VIPS.drport, 10);
      expect([r.failures, r.counts]).toEqual([[], { fb1: 10 }]);
    } finally {
      await driver.deleteService(key).catch(() => {});
      driver.close();
      ip("addr", "del", `${VIPS.drport}/32`, "dev", "lo");
    }
  });

  test("ipip tunnel: the backends decapsulate on tunl0", async () => {
    await service("ipip", VIPS.ipip, each({ method: "tunnel", tunnel_type: "ipip" }));
    expectDirectReturn(VIPS.ipip);
  });

  test("gue tunnel: the backends decapsulate with `ip fou add port 5555 gue` and tunl0", async () => {
    await service("gue", VIPS.gue, each({ method: "tunnel", tunnel_type: "gue", tunnel_port: GUE_PORT }));
    expectDirectReturn(VIPS.gue);
  });

  test("gre tunnel: the backends decapsulate on gre0", async () => {
    await service("gre", VIPS.gre, each({ method: "tunnel", tunnel_type: "gre" }));
    expectDirectReturn(VIPS.gre);
  });

  test("an IPv6 service with IPv4 backends over an ipip tunnel (6in4): the backends decapsulate on sit0", async () => {
    await service("six", VIPS.six, each({ method: "tunnel", tunnel_type: "ipip" }));
    const listing = listIpvs("default");
    const svc = serviceByKey(listing, `TCP [${VIPS.six}]:80`);
    expect(svc.destinations.map((d) => `${d.family} ${d.address}`).sort()).toEqual(BACKENDS.map((i) => `inet 10.89.${i}.2`));
    expectDirectReturn(VIPS.six);
  });

  test("tunnel checksum flags (TUN_FLAGS) reach the kernel as sent; gue csum and remcsum carry traffic, gre csum carries none on 6.1", async () => {
    const variants = [
      { id: "gue-csum", vip: VIPS.csum, body: { tunnel_type: "gue", tunnel_port: GUE_PORT, tunnel_checksum: "csum" }, info: { type: "gue", port: GUE_PORT, checksum: "csum" } },
      { id: "gue-remcsum", vip: VIPS.remcsum, body: { tunnel_type: "gue", tunnel_port: GUE_PORT, tunnel_checksum: "remcsum" }, info: { type: "gue", port: GUE_PORT, checksum: "remcsum" } },
      { id: "gre-csum", vip: VIPS.grecsum, body: { tunnel_type: "gre", tunnel_checksum: "csum" }, info: { type: "gre", port: null, checksum: "csum" } },
    ] as const;
    for (const v of variants) await service(v.id, v.vip, each({ method: "tunnel", ...v.body }));
    const listing = listIpvs("tun-info");
    for (const v of variants) {
      expect(serviceByKey(listing, `TCP ${v.vip}:80`).destinations.map((d) => d.tunnel)).toEqual(BACKENDS.map(() => v.info));
    }
    const outcomes = variants.map((v) => {
      const r = fromClient(v.vip, 12);
      return `${v.id}: ${r.failures.length} failed, served by ${Object.keys(r.counts).sort().join(",") || "none"}`;
    });
    // The backends' GRE receive counters (ip -s -s: "RX errors: length crc frame fifo missed"), for the log.
    const greErrors = BACKENDS.map((i) => inNetns(`fb${i}`, [IP, "-s", "-s", "link", "show", "dev", "gre0"]).replace(/\s+/g, " ").trim());
    console.log(`forwarding: tunnel checksum flags: ${outcomes.join("; ")}\nforwarding: backends' gre0 after gre-csum: ${greErrors.join(" | ")}`);
    // Measured on the rig's Linux 6.1, every run: GUE with csum and remcsum carries traffic; GRE with csum is accepted
    // by IPVS, but no connection through it is ever served (the README says to keep GRE at nocsum).
    expect(outcomes).toEqual([
      "gue-csum: 0 failed, served by fb1,fb2,fb3",
      "gue-remcsum: 0 failed, served by fb1,fb2,fb3",
      "gre-csum: 12 failed, served by none",
    ]);
    // Each backend dropped them as GRE checksum errors (the "crc" column of "RX errors").
    const crc = greErrors.map((text) => Number(/RX errors: length crc frame fifo overrun \d+ (\d+)/.exec(text)?.[1] ?? "0"));
    for (const n of crc) expect(n).toBeGreaterThan(0);
  });

  test("local: the director serves itself, and its replies do cross the counter (the counter's positive control)", async () => {
    await service("local", VIPS.local, [{ id: "self", body: { host: "10.88.0.1", method: "local" } }]);
    const before = directorToClient();
    const r = fromClient(VIPS.local);
    expect(r.failures).toEqual([]);
    expect(r.counts).toEqual({ director: REQUESTS });
    expect(directorToClient() - before).toBeGreaterThanOrEqual(3 * REQUESTS);
  });

  test("twos (Linux 6.2's scheduler) on this 6.1 kernel: IPVS finds no ip_vs_twos module and answers ENOENT, a 400", async () => {
    const res = await gorb.request("PUT", "/service/twos", { host: "10.88.100.11", port: 80, method: "twos" });
    expect(res.status).toBe(400);
    expect((res.json as { error: string }).error).toContain('unknown scheduler "twos" (no ip_vs_twos module)');
    expect((await gorb.request("GET", "/service/twos")).status).toBe(404);
  });

  const state = async (service: string, backend: string): Promise<string> => {
    const res = await gorb.request("GET", `/service/${service}/${backend}`);
    return (res.json as { metrics: { state: string } }).metrics.state;
  };
  const weightOf = (vip: string, backend: number): number | undefined =>
    serviceByKey(listIpvs("default"), `TCP ${vip}:80`).destinations.find((d) => d.address === `10.89.${backend}.2`)?.weight;
  const until = async (what: string, ok: () => Promise<boolean> | boolean, ms = 60_000): Promise<number> => {
    const started = Date.now();
    while (!(await ok())) {
      if (Date.now() - started > ms) throw new Error(`${what} did not happen within ${ms} ms:\n${ipvsadm("-Ln")}\n${gorb.tail()}`);
      await Bun.sleep(100);
    }
    return Date.now() - started;
  };

  test("checks through the VIP are refused for a nat backend (400 naming pulse.args.via); a user fwmark in gorb's range is refused (400 naming fwmark)", async () => {
    await put("/service/plain", { host: "10.88.100.10", port: 80 });
    const nat = await gorb.request("PUT", "/service/plain/b1", { host: "10.89.1.2", method: "nat", pulse: { type: "tcp", args: { via: "vip" } } });
    expect(nat.status).toBe(400);
    expect((nat.json as { error: string }).error).toStartWith("pulse.args.via: ");
    const mark = await gorb.request("PUT", "/service/marked", { fwmark: 0x3005 });
    expect(mark.status).toBe(400);
    expect((mark.json as { error: string }).error).toStartWith("fwmark: ");
    expect((await gorb.request("DELETE", "/service/plain")).status).toBe(200);
  });

  test("without checks through the VIP, a DR backend that lost its VIP passes its check and silently loses clients", async () => {
    await service("silent", VIPS.silent, each({ method: "dr", pulse: { type: "tcp", interval: "1s" } }));
    await until("every backend up", async () => (await Promise.all(BACKENDS.map((i) => state("silent", `b${i}`)))).every((s) => s === "up"));
    nsIp("fb2", "addr", "del", `${VIPS.silent}/32`, "dev", "lo");
    const r = JSON.parse(inNetns("fcl", [process.execPath, CLIENT, VIPS.silent, "80", "30", "1000"]).trim()) as Counts;
    // Round robin sends every third connection to fb2, which drops them (the VIP is not its address any more).
    expect(r.failures.length).toBeGreaterThanOrEqual(5);
    expect(r.counts.fb2).toBeUndefined();
    expect(await state("silent", "b2")).toBe("up");
    expect(weightOf(VIPS.silent, 2)).toBeGreaterThan(0);
  });

  test("with checks through the VIP, a DR backend that lost its VIP is drained within interval x fall, and no client connection fails after", async () => {
    for (const i of BACKENDS) sysctl(null, `net.ipv4.conf.dfb${i}.accept_local`, "1"); // replies come from the VIP, a local address
    const pulse = { type: "tcp", interval: "1s", args: { via: "vip", fall: 2 } };
    await service("probe", VIPS.probe, each({ method: "dr", pulse }));
    await until("every backend up", async () => (await Promise.all(BACKENDS.map((i) => state("probe", `b${i}`)))).every((s) => s === "up"));
    // gorb's own firewall-mark services, one per backend: in the kernel, not in the API.
    const probes = listIpvs("default").services.filter((s) => s.fwmark !== null && s.fwmark >= 0x3000 && s.fwmark <= 0x30ff);
    expect(probes.map((p) => p.destinations.map((d) => `${d.address}:${d.forward}:${d.weight}`)).flat().sort()).toEqual(
      BACKENDS.map((i) => `10.89.${i}.2:Route:1`),
    );
    const ids = ((await gorb.request("GET", "/service")).json as string[]).sort();
    expect(ids).toEqual(["dr", "gre", "gre-csum", "gue", "gue-csum", "gue-remcsum", "ipip", "local", "probe", "silent", "six"]);

    nsIp("fb2", "addr", "del", `${VIPS.probe}/32`, "dev", "lo");
    const drainedIn = await until("b2 drained", () => weightOf(VIPS.probe, 2) === 0);
    console.log(`forwarding: a DR backend without its VIP drained ${drainedIn} ms after the VIP was removed (interval 1s, fall 2)`);
    expect(await state("probe", "b2")).toBe("down");
    const r = fromClient(VIPS.probe);
    expect(r.failures).toEqual([]);
    expect(Object.keys(r.counts).sort()).toEqual(["fb1", "fb3"]);

    nsIp("fb2", "addr", "add", `${VIPS.probe}/32`, "dev", "lo");
    await until("b2 back", () => (weightOf(VIPS.probe, 2) ?? 0) > 0);

    // Deleting a backend deletes its probe service; deleting the service deletes the rest.
    expect((await gorb.request("DELETE", "/service/probe/b3")).status).toBe(200);
    await until("b3's probe service gone", () => probeCount() === 2);
    expect((await gorb.request("DELETE", "/service/probe")).status).toBe(200);
    await until("every probe service gone", () => probeCount() === 0);
  });

  // Module unload is global: this test runs last, with no other gorb in the guest.
  test("ip_vs reloaded: gorb resolves the new family, puts its table back and keeps serving its API", async () => {
    const before = listIpvs("default").services.length;
    expect(before).toBe(10); // nine forwarding services and "silent"
    // Earlier test files in the same guest may have left ip_vs users behind: services in other network namespaces
    // (they hold scheduler and persistence-engine modules) and modules built on ip_vs (ip_vs_pe_sip, ip_vs_ftp).
    // Flush every namespace and unload every module that uses ip_vs, then ip_vs. gorb's periodic reconcile (every
    // 3 s) would put its services back between the flush and the unload (EAGAIN, in use), and on a loaded host the
    // flush took longer than that every time (CI, 2026-12-04): gorb is stopped (SIGSTOP) for the flush and the
    // unload and resumed with ip_vs gone, as after a real unload; the unload is still tried again while something
    // else holds the module for a moment.
    const unload = (): void => {
      ipvsadm("-C");
      for (const ns of ip("netns", "list").split("\n").map((l) => l.split(" ")[0] ?? "").filter((n) => n !== "")) {
        inNetns(ns, ["/usr/sbin/ipvsadm", "-C"]);
      }
      run(["/sbin/modprobe", "-r", ...ipvsUsers(), "ip_vs"]);
    };
    const unloadBy = Date.now() + 60_000;
    process.kill(gorb.pid, "SIGSTOP");
    try {
      for (;;) {
        try {
          unload();
          break;
        } catch (error) {
          if (Date.now() > unloadBy) throw new Error(`cannot unload ip_vs: ${String(error)}\n${readFileSync("/proc/modules", "utf8")}`);
        }
      }
    } finally {
      process.kill(gorb.pid, "SIGCONT");
    }
    run(["/sbin/modprobe", "ip_vs"]);
    const deadline = Date.now() + 60_000;
    while (listIpvs("default").services.length < before) {
      if (Date.now() > deadline) throw new Error(`gorb did not restore its table after the reload:\n${ipvsadm("-Ln")}\n${gorb.tail()}`);
      await Bun.sleep(250);
    }
    // The daemon's output is read by this process's event loop, which spawnSync (ipvsadm) blocks: let it catch up.
    await until("gorb's log saying the family changed", () => gorb.log().includes("ip_vs module reloaded"), 15_000);
    expectDirectReturn(VIPS.dr);
    await service("after", "10.88.100.9", [{ id: "b1", body: { host: "10.89.1.2", method: "dr" } }]);
    expect(serviceByKey(listIpvs("default"), "TCP 10.88.100.9:80").destinations.length).toBe(1);
  });
});
