/**
 * Anycast with BGP, for real (issue 9): BIRD 2 and gorb in network namespaces of the rig guest.
 *
 *   bgpcl (client 172.31.9.2) ── bgprt (router: BIRD, ECMP: merge paths + kernel multipath, L4 hash)
 *                                  ├── bgpn1 (gorb + BIRD, own IPVS table, VIP on lo) ── bgpb1 (backend)
 *                                  └── bgpn2 (gorb + BIRD, own IPVS table, VIP on lo) ── bgpb2 (backend)
 *
 * The router's kernel routing table (`ip -n bgprt route`) and real HTTP connections from the client are the
 * judges. The measured times (backend failure -> route withdrawn at the router, -> every new connection served
 * by node 2) are printed. Node 1's gorb runs with --bgp-keep-on-exit: its restart must not withdraw its VIPs,
 * which BIRD's own records judge (when node 1's BIRD took each route, the withdrawals sent and received).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BirdControl } from "../../src/bgp/bird-control.ts";
import { assertInGuest } from "./helpers/guest.ts";
import { pollUntil } from "./helpers/daemon.ts";
import { CommandError, IP, inNetns, run, sh } from "./helpers/sh.ts";

const ROOT = "/tmp/gorb-bgp";
const MAIN = join(import.meta.dir, "..", "..", "src", "main.ts");
const VIP = "203.0.113.10";
const VIP6 = "2001:db8::10";
const NAMESPACES = ["bgpcl", "bgprt", "bgpn1", "bgpn2", "bgpb1", "bgpb2"];
/** Check interval 1 s, fall 1 (the default): a failed backend is down after one interval. */
const CHECK_INTERVAL_MS = 1000;
const FALL = 1;
/** The emulated guest is about 10x slower than a host: the margin on top of interval x fall. */
const MARGIN_MS = 20_000;
const HOLD_DOWN = "2s";
const HOLD_DOWN_MS = 2000;
const CONVERGE_MS = 90_000;

type Proc = ReturnType<typeof Bun.spawn>;
const procs: Proc[] = [];

function spawnIn(ns: string, argv: string[], log: string): Proc {
  const proc = Bun.spawn([IP, "netns", "exec", ns, ...argv], { stdin: "ignore", stdout: Bun.file(log), stderr: Bun.file(`${log}.err`) });
  proc.unref();
  procs.push(proc);
  return proc;
}

function sysctl(ns: string, key: string, value: string): void {
  inNetns(ns, ["/bin/busybox", "sh", "-c", `echo ${value} > /proc/sys/${key.replaceAll(".", "/")}`]);
}

/** A veth pair between two namespaces with IPv4 /24 and IPv6 /64 addresses on both ends. */
function link(a: string, aAddr: string, aAddr6: string, b: string, bAddr: string, bAddr6: string): void {
  const va = `v${a}${b}`.slice(0, 15);
  const vb = `v${b}${a}`.slice(0, 15);
  run([IP, "link", "add", va, "netns", a, "type", "veth", "peer", "name", vb, "netns", b]);
  for (const [ns, dev, addr, addr6] of [[a, va, aAddr, aAddr6], [b, vb, bAddr, bAddr6]] as const) {
    run([IP, "-n", ns, "addr", "add", `${addr}/24`, "dev", dev]);
    run([IP, "-n", ns, "addr", "add", `${addr6}/64`, "dev", dev, "nodad"]);
    run([IP, "-n", ns, "link", "set", dev, "up"]);
  }
}

/** The router's next hops for a prefix (sorted), from its kernel table. */
function nextHops(prefix: string, v6 = false): string[] {
  const out = run([IP, "-n", "bgprt", ...(v6 ? ["-6"] : []), "route", "show", prefix]);
  return [...out.matchAll(/via (\S+)/g)].map((m) => m[1] ?? "").sort();
}

/**
 * The client: `n` HTTP connections in a row (each a new TCP connection, so a new source port) from the client
 * namespace to the VIP, printing each answer's body (the backend's name) or FAIL. Bun runs it there: the static
 * busybox's wget crashes in the guest.
 */
const CLIENT = `const n = Number(process.argv[2]);
for (let i = 0; i < n; i++) {
  try {
    const res = await fetch("http://${VIP}/", { headers: { Connection: "close" }, signal: AbortSignal.timeout(3000), keepalive: false });
    console.log((await res.text()).trim());
  } catch {
    console.log("FAIL");
  }
}
`;

/** Prints GET /bgp of the gorb of the namespace it runs in. */
const BGP_STATUS = `console.log(await (await fetch("http://127.0.0.1:4672/bgp", { signal: AbortSignal.timeout(10000) })).text());`;

interface BgpVip {
  vip: string;
  healthy: boolean;
  state: string;
  confirmed: boolean;
}

/** GET /bgp's VIPs of the gorb of node `node`; undefined while it does not answer (starting). */
function bgpVips(node: 1 | 2): BgpVip[] | undefined {
  try {
    return (JSON.parse(inNetns(`bgpn${node}`, [process.execPath, "-e", BGP_STATUS])) as { vips: BgpVip[] }).vips;
  } catch (error) {
    if (error instanceof CommandError) return undefined;
    throw error;
  }
}

/** What BIRD, whose files are in `dir` (its control socket is there), answers `command` (the guest has no birdc). */
async function birdc(dir: string, command: string): Promise<string> {
  const control = await BirdControl.connect(join(dir, "bird.ctl"));
  try {
    return (await control.command(command)).lines.map((l) => l.text).join("\n");
  } finally {
    control.close();
  }
}

/** "prefix protocol time" of each route `show route ...` lists: the time is when BIRD took that route. */
function routeTimes(out: string): string[] {
  return [...out.matchAll(/^(\S+\/\d+)\s+\S+\s+\[(\S+) ([^\]\s]+)/gm)].map((m) => `${m[1]} ${m[2]} ${m[3]}`).sort();
}

/** The "received" column of a BGP protocol's Import or Export withdraws, per channel (ipv4, ipv6). */
async function withdrawals(dir: string, protocol: string, direction: "Import" | "Export"): Promise<string[]> {
  const out = await birdc(dir, `show protocols all ${protocol}`);
  return [...out.matchAll(new RegExp(`${direction} withdraws:\\s+(\\d+)`, "g"))].map((m) => m[1] ?? "");
}

/**
 * What any withdrawal of node 1's VIPs changes, however short: when node 1's BIRD took each route of gorb's
 * include file (a route taken out and put back is a new one), how many withdrawals node 1's BIRD sent to its BGP
 * session and how many the router received from it. (The router's own route times are no judge: BIRD showed one
 * a millisecond apart with nothing received in between.)
 */
async function node1Routes(): Promise<{ routes: string[]; sent: string[]; received: string[] }> {
  return {
    routes: routeTimes(`${await birdc(`${ROOT}/n1`, "show route protocol gorb_vips")}\n${await birdc(`${ROOT}/n1`, "show route protocol gorb_vips6")}`),
    sent: await withdrawals(`${ROOT}/n1`, "rtr", "Export"),
    received: await withdrawals(`${ROOT}/rt`, "n1", "Import"),
  };
}

/** `n` HTTP connections from the client to the VIP; each answer's body (the backend's name) or "FAIL". */
function connections(n: number): string[] {
  const out = inNetns("bgpcl", [process.execPath, `${ROOT}/client.ts`, String(n)]);
  return out.split("\n").map((l) => l.trim()).filter((l) => l !== "");
}

/** What the namespaces look like, for failure messages. */
function diagnose(): string {
  const script = [
    `echo "== node1 ipvsadm"; ${IP} netns exec bgpn1 /usr/sbin/ipvsadm -Ln 2>&1`,
    `echo "== node1 addr"; ${IP} -n bgpn1 addr 2>&1; ${IP} -n bgpn1 route 2>&1`,
    `echo "== forward"; for ns in bgprt bgpn1 bgpn2; do ${IP} netns exec $ns /bin/busybox cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/conf/all/rp_filter; done`,
    `echo "== router"; ${IP} -n bgprt route 2>&1; ${IP} -n bgprt neigh 2>&1`,
  ].join("; ");
  return sh(`${script}; true`);
}

function count(list: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of list) counts[item] = (counts[item] ?? 0) + 1;
  return counts;
}

function birdConf(node: 1 | 2): string {
  return `router id 172.31.${node}.2;
protocol device {}
include "${ROOT}/n${node}/bird-vips*.conf";
protocol bgp rtr {
  local 172.31.${node}.2 as 65001;
  neighbor 172.31.${node}.1 as 65000;
  hold time 6; connect delay time 1; connect retry time 2; error wait time 1, 2;
  graceful restart off;
  ipv4 { import none; export where proto = "gorb_vips"; next hop self; };
  ipv6 { import none; export where proto = "gorb_vips6"; next hop address fd90:${node}::2; };
}
`;
}

const ROUTER_CONF = `router id 172.31.9.1;
protocol device {}
protocol kernel k4 { merge paths on; ipv4 { import none; export all; }; }
protocol kernel k6 { merge paths on; ipv6 { import none; export all; }; }
${[1, 2]
  .map(
    (n) => `protocol bgp n${n} {
  local 172.31.${n}.1 as 65000;
  neighbor 172.31.${n}.2 as 65001;
  hold time 6; connect delay time 1; connect retry time 2; error wait time 1, 2;
  ipv4 { import all; export none; };
  ipv6 { import all; export none; };
}`,
  )
  .join("\n")}
`;

function gorbConf(node: 1 | 2): string {
  const pulse = `{ type: tcp, interval: ${CHECK_INTERVAL_MS / 1000}s, args: { fall: ${FALL} } }`;
  const v6 =
    node === 1
      ? `  web6:\n    host: "${VIP6}"\n    port: 80\n    backends:\n      b1: { host: "fd91:${node}::2", port: 80, pulse: ${pulse} }\n`
      : "";
  return `services:\n  web:\n    host: ${VIP}\n    port: 80\n    backends:\n      b1: { host: 10.91.${node}.2, port: 80, pulse: ${pulse} }\n${v6}`;
}

function startBird(ns: string, conf: string, dir: string): Proc {
  return spawnIn(ns, ["/usr/sbin/bird", "-f", "-c", conf, "-s", join(dir, "bird.ctl"), "-P", join(dir, "bird.pid")], join(dir, "bird.log"));
}

const gorbs = new Map<number, Proc>();
const birds = new Map<string, Proc>();
const httpd = new Map<number, Proc>();

function startGorb(node: 1 | 2): void {
  const dir = `${ROOT}/n${node}`;
  // A restart's logs from their start (a spawn's stdout file is not truncated).
  for (const log of ["gorb.log", "gorb.log.err"]) rmSync(join(dir, log), { force: true });
  gorbs.set(
    node,
    spawnIn(
      `bgpn${node}`,
      [
        process.execPath, MAIN, "serve", "-l", "127.0.0.1:4672", "--vip-interface", "lo", "-v",
        "--config", join(dir, "gorb.yaml"),
        "--bgp-bird-socket", join(dir, "bird.ctl"), "--bgp-include", join(dir, "bird-vips.conf"), "--bgp-hold-down", HOLD_DOWN,
        // Node 1 is restarted as in production: its services come back from its state; the file's then change nothing.
        ...(node === 1 ? ["--state-dir", join(dir, "state"), "--bgp-keep-on-exit"] : ["--no-state"]),
      ],
      join(dir, "gorb.log"),
    ),
  );
}

function startBackend(node: 1 | 2): void {
  httpd.set(node, spawnIn(`bgpb${node}`, ["/bin/busybox", "httpd", "-f", "-p", "80", "-h", `${ROOT}/www${node}`], `${ROOT}/httpd${node}.log`));
}

async function stopProc(proc: Proc | undefined, signal: "SIGTERM" | "SIGKILL" = "SIGKILL"): Promise<void> {
  if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill(signal);
  await proc.exited;
}

function logs(): string {
  return sh(`for f in ${ROOT}/n1/gorb.log ${ROOT}/n1/gorb.log.err ${ROOT}/n2/gorb.log ${ROOT}/n2/gorb.log.err; do echo "== $f"; tail -n 15 $f; done; ${IP} -n bgprt route; true`);
}

function cleanup(): void {
  for (const ns of NAMESPACES) if (run([IP, "netns", "list"]).split("\n").some((l) => l.split(" ")[0] === ns)) run([IP, "netns", "del", ns]);
}

describe("anycast with BGP through BIRD: two gorb nodes, one router, real traffic", () => {
  beforeAll(async () => {
    assertInGuest();
    cleanup();
    rmSync(ROOT, { recursive: true, force: true });
    for (const ns of NAMESPACES) {
      run([IP, "netns", "add", ns]);
      run([IP, "-n", ns, "link", "set", "lo", "up"]);
    }
    link("bgprt", "172.31.9.1", "fd90:9::1", "bgpcl", "172.31.9.2", "fd90:9::2");
    run([IP, "-n", "bgpcl", "route", "add", "default", "via", "172.31.9.1"]);
    for (const n of [1, 2] as const) {
      link("bgprt", `172.31.${n}.1`, `fd90:${n}::1`, `bgpn${n}`, `172.31.${n}.2`, `fd90:${n}::2`);
      link(`bgpn${n}`, `10.91.${n}.1`, `fd91:${n}::1`, `bgpb${n}`, `10.91.${n}.2`, `fd91:${n}::2`);
      run([IP, "-n", `bgpn${n}`, "route", "add", "default", "via", `172.31.${n}.1`]);
      run([IP, "-n", `bgpn${n}`, "-6", "route", "add", "default", "via", `fd90:${n}::1`]);
      run([IP, "-n", `bgpb${n}`, "route", "add", "default", "via", `10.91.${n}.1`]);
      run([IP, "-n", `bgpb${n}`, "-6", "route", "add", "default", "via", `fd91:${n}::1`]);
      sysctl(`bgpn${n}`, "net.ipv4.ip_forward", "1");
      sysctl(`bgpn${n}`, "net.ipv6.conf.all.forwarding", "1");
      sysctl(`bgpn${n}`, "net.ipv4.vs.conntrack", "1");
      mkdirSync(`${ROOT}/n${n}`, { recursive: true });
      mkdirSync(`${ROOT}/www${n}`, { recursive: true });
      writeFileSync(`${ROOT}/www${n}/index.html`, `bgpb${n}\n`);
      writeFileSync(`${ROOT}/n${n}/bird.conf`, birdConf(n));
      writeFileSync(`${ROOT}/n${n}/gorb.yaml`, gorbConf(n));
      startBackend(n);
    }
    sysctl("bgprt", "net.ipv4.ip_forward", "1");
    sysctl("bgprt", "net.ipv6.conf.all.forwarding", "1");
    sysctl("bgprt", "net.ipv4.fib_multipath_hash_policy", "1"); // L4 hash: connections spread, not only hosts
    writeFileSync(`${ROOT}/client.ts`, CLIENT);
    mkdirSync(`${ROOT}/rt`, { recursive: true });
    writeFileSync(`${ROOT}/rt/bird.conf`, ROUTER_CONF);
    birds.set("rt", startBird("bgprt", `${ROOT}/rt/bird.conf`, `${ROOT}/rt`));
    for (const n of [1, 2] as const) {
      birds.set(`n${n}`, startBird(`bgpn${n}`, `${ROOT}/n${n}/bird.conf`, `${ROOT}/n${n}`));
      startGorb(n);
    }
  });

  afterAll(async () => {
    if (process.env.GORB_RIG !== "1") return;
    for (const proc of procs) await stopProc(proc);
    cleanup();
  });

  test("both nodes healthy: the router has the VIP with two next hops; connections are served through both", async () => {
    await pollUntil("two next hops for the VIP", () => (nextHops(VIP).length === 2 ? true : undefined), {
      timeoutMs: CONVERGE_MS,
      everyMs: 200,
      describe: logs,
    });
    expect(nextHops(VIP)).toEqual(["172.31.1.2", "172.31.2.2"]);
    const served = count(connections(40));
    if ((served.FAIL ?? 0) > 0) console.log(diagnose());
    expect(served.FAIL ?? 0).toBe(0);
    expect(served.bgpb1 ?? 0).toBeGreaterThan(0);
    expect(served.bgpb2 ?? 0).toBeGreaterThan(0);
  });

  test("IPv6 VIP: node 1 announces VIP/128 with its IPv6 next hop", async () => {
    await pollUntil("the IPv6 VIP at the router", () => (nextHops(VIP6, true).length === 1 ? true : undefined), {
      timeoutMs: CONVERGE_MS,
      everyMs: 200,
      describe: logs,
    });
    expect(nextHops(VIP6, true)).toEqual(["fd90:1::2"]);
  });

  test("node 1's backends fail: its routes are withdrawn within interval x fall + margin, then every connection goes to node 2", async () => {
    const started = performance.now();
    await stopProc(httpd.get(1));
    await pollUntil("node 1's route withdrawn", () => (nextHops(VIP).join() === "172.31.2.2" ? true : undefined), {
      timeoutMs: CHECK_INTERVAL_MS * FALL + MARGIN_MS,
      everyMs: 50,
      describe: logs,
    });
    const withdrawnMs = performance.now() - started;
    console.log(`bgp: backend failure -> route withdrawn at the router: ${withdrawnMs.toFixed(0)} ms`);
    await pollUntil("every connection served by node 2", () => (connections(10).every((b) => b === "bgpb2") ? true : undefined), {
      timeoutMs: CONVERGE_MS,
      everyMs: 0,
      describe: logs,
    });
    const trafficMs = performance.now() - started;
    console.log(
      `bgp: backend failure -> traffic entirely on node 2: ${trafficMs.toFixed(0)} ms ` +
        `(check interval ${CHECK_INTERVAL_MS} ms x fall ${FALL}, hold time 6 s, guest under emulation)`,
    );
    expect(count(connections(20))).toEqual({ bgpb2: 20 });
    // The IPv6 VIP of node 1 had the same backend host: withdrawn too.
    await pollUntil("the IPv6 VIP withdrawn", () => (nextHops(VIP6, true).length === 0 ? true : undefined), { timeoutMs: CONVERGE_MS, describe: logs });
  });

  test("node 1's backends recover: re-announced after the hold-down; traffic spreads again", async () => {
    const started = performance.now();
    startBackend(1);
    await pollUntil("node 1 re-announced", () => (nextHops(VIP).length === 2 ? true : undefined), { timeoutMs: CONVERGE_MS, everyMs: 100, describe: logs });
    // Not before the hold-down: it starts when the check sees the backend up again, after the backend started.
    const announcedMs = performance.now() - started;
    console.log(`bgp: backend recovered -> re-announced at the router: ${announcedMs.toFixed(0)} ms (hold-down ${HOLD_DOWN})`);
    expect(announcedMs).toBeGreaterThanOrEqual(HOLD_DOWN_MS);
    const served = count(connections(40));
    expect(served.FAIL ?? 0).toBe(0);
    expect(served.bgpb1 ?? 0).toBeGreaterThan(0);
    expect(served.bgpb2 ?? 0).toBeGreaterThan(0);
    // The IPv6 VIP comes back too (its own BIRD protocol may reach the router a moment later).
    await pollUntil("the IPv6 VIP re-announced", () => (nextHops(VIP6, true).length > 0 ? true : undefined), { timeoutMs: CONVERGE_MS, describe: logs });
    expect(nextHops(VIP6, true)).toEqual(["fd90:1::2"]);
  });

  test("BIRD refuses the configuration (an error in bird.conf): its old routes stay, GET /bgp says why, gorb retries", async () => {
    const conf = `${ROOT}/n1/bird.conf`;
    writeFileSync(conf, `${birdConf(1)}this is not BIRD syntax\n`);
    await stopProc(httpd.get(1)); // gorb now wants node 1's VIPs withdrawn; BIRD's configure check refuses
    const refused = await pollUntil(
      "GET /bgp on node 1 reporting BIRD's refusal",
      () => {
        const status = JSON.parse(inNetns("bgpn1", [process.execPath, "-e", BGP_STATUS])) as { vips: { vip: string; wanted: boolean; error: string | null }[] };
        const vip = status.vips.find((v) => v.vip === VIP);
        return vip !== undefined && !vip.wanted && vip.error !== null ? vip : undefined;
      },
      { timeoutMs: CONVERGE_MS, everyMs: 500, describe: logs },
    );
    expect(refused.error).toContain("BIRD 8002");
    expect(nextHops(VIP)).toEqual(["172.31.1.2", "172.31.2.2"]); // BIRD kept running the old configuration
    writeFileSync(conf, birdConf(1)); // the operator fixes bird.conf: gorb's next try goes through
    await pollUntil("node 1's route withdrawn after the fix", () => (nextHops(VIP).join() === "172.31.2.2" ? true : undefined), {
      timeoutMs: CONVERGE_MS,
      everyMs: 100,
      describe: logs,
    });
    startBackend(1);
    await pollUntil("node 1 announced again", () => (nextHops(VIP).length === 2 ? true : undefined), { timeoutMs: CONVERGE_MS, everyMs: 100, describe: logs });
  });

  test("node 2's BIRD restarts: the route comes back (BIRD re-reads gorb's file)", async () => {
    await stopProc(birds.get("n2"), "SIGKILL");
    await pollUntil("node 2's route gone with its BGP session", () => (nextHops(VIP).join() === "172.31.1.2" ? true : undefined), {
      timeoutMs: CONVERGE_MS,
      everyMs: 100,
      describe: logs,
    });
    rmSync(`${ROOT}/n2/bird.ctl`, { force: true });
    birds.set("n2", startBird("bgpn2", `${ROOT}/n2/bird.conf`, `${ROOT}/n2`));
    await pollUntil("node 2's route back", () => (nextHops(VIP).length === 2 ? true : undefined), { timeoutMs: CONVERGE_MS, everyMs: 100, describe: logs });
  });

  test("gorb on node 2 stops (SIGTERM): it withdraws its VIP before exiting", async () => {
    const gorb = gorbs.get(2);
    gorb?.kill("SIGTERM");
    expect(await gorb?.exited).toBe(0);
    // Withdrawn before gorb exited; the router takes the BGP update a moment later.
    await pollUntil("node 2's route withdrawn", () => (nextHops(VIP).join() === "172.31.1.2" ? true : undefined), { timeoutMs: 10_000, everyMs: 50, describe: logs });
    expect(count(connections(10))).toEqual({ bgpb1: 10 });
  });

  test("gorb on node 1 (--bgp-keep-on-exit) stops (SIGTERM) and starts again: the router never loses node 1's routes", async () => {
    // Settled first: node 1's BIRD has both VIPs and the router took them (the IPv6 one may lag the IPv4 one).
    const announced = (vips: BgpVip[] | undefined) =>
      [VIP, VIP6].every((vip) => vips?.some((v) => v.vip === vip && v.healthy && v.state === "announced" && v.confirmed) === true);
    await pollUntil("node 1's VIPs announced", () => (announced(bgpVips(1)) ? true : undefined), { timeoutMs: CONVERGE_MS, everyMs: 200, describe: logs });
    await pollUntil("node 1's routes at the router", () => (nextHops(VIP).join() === "172.31.1.2" && nextHops(VIP6, true).join() === "fd90:1::2" ? true : undefined), {
      timeoutMs: CONVERGE_MS,
      everyMs: 100,
      describe: logs,
    });
    const before = await node1Routes();
    expect(before.routes.map((r) => r.split(" ").slice(0, 2).join(" "))).toEqual([`${VIP6}/128 gorb_vips6`, `${VIP}/32 gorb_vips`]);
    expect(before.sent).toHaveLength(2);
    expect(before.received).toHaveLength(2);

    const gorb = gorbs.get(1);
    gorb?.kill("SIGTERM");
    expect(await gorb?.exited).toBe(0);
    expect(await node1Routes()).toEqual(before); // left announced
    startGorb(1);
    // Its backends unknown until their first check, then up: the VIPs stay announced all along.
    const after = await pollUntil("node 1's restarted gorb checking its backends up", () => (announced(bgpVips(1)) ? node1Routes() : undefined), {
      timeoutMs: CONVERGE_MS,
      everyMs: 200,
      describe: () => `${JSON.stringify(bgpVips(1))}\n${sh(`cat ${ROOT}/n1/gorb.log ${ROOT}/n1/gorb.log.err ${ROOT}/n1/bird-vips.conf; true`)}\n${logs()}`,
    });
    expect(after).toEqual(before);
    expect(nextHops(VIP)).toEqual(["172.31.1.2"]);
    expect(nextHops(VIP6, true)).toEqual(["fd90:1::2"]);
  });
});
