/**
 * Health checks that fail the right way, on the rig's real kernel (root, network namespaces, IPVS):
 *
 * - a black-holed backend for 60 s: the checker's file descriptors stay flat. The black hole is real: a veth
 *   pair in the root namespace with a static neighbour entry for 10.66.0.2 whose MAC nobody owns, so SYNs leave
 *   and nothing ever answers (no RST, no ICMP): connects hang in SYN_SENT until cancelled. (A listener that never
 *   accepts is not a black hole: the kernel completes handshakes into its backlog.)
 * - an EMFILE storm: `gorb serve` under `ulimit -n 256` while a client holds 400 idle API connections; the
 *   healthy backends' weights stay 100, 100 over 6 checks (they dropped to 0, 0 within 2 s when EMFILE read as
 *   ECONNREFUSED). The 1 s timeout is generous so that a slow emulated guest cannot time checks out.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Socket } from "bun";
import { HealthMonitor } from "../../src/health/monitor.ts";
import type { HealthUpdate } from "../../src/health/target-state.ts";
import { parsePulseOptions } from "../../src/health/options.ts";
import { assertInGuest } from "./helpers/guest.ts";
import { listIpvs, serviceByKey } from "./helpers/ipvsadm.ts";
import { type Backend, createBackends, destroyBackends } from "./helpers/netns.ts";
import { ip, ipvsadm } from "./helpers/sh.ts";

const FIRST_BACKEND = 61; // no other kernel test file uses be61-be62
const VIP = "10.0.0.161";
const HOLE = "10.66.0.2";
const API_PORT = 4690;
const MAIN = join(import.meta.dir, "..", "..", "src", "main.ts");

const fdCount = (pid: number | "self") => readdirSync(`/proc/${pid}/fd`).length;

/** Sockets of this network namespace in SYN_SENT (state 02) towards `host` (hex, little-endian IPv4). */
function synSent(host: string): number {
  const hex = host.split(".").map((o) => Number(o).toString(16).padStart(2, "0").toUpperCase()).reverse().join("");
  return readFileSync("/proc/net/tcp", "utf8").split("\n").filter((l) => {
    const f = l.trim().split(/\s+/);
    return f[3] === "02" && f[2]?.startsWith(`${hex}:`);
  }).length;
}

describe("a black-holed backend", () => {
  beforeAll(() => {
    assertInGuest();
    ip("link", "add", "bh0", "type", "veth", "peer", "name", "bh1");
    ip("addr", "add", "10.66.0.1/24", "dev", "bh0");
    ip("link", "set", "bh0", "up");
    ip("link", "set", "bh1", "up");
    ip("neigh", "add", HOLE, "lladdr", "02:00:00:00:66:02", "dev", "bh0", "nud", "permanent");
  });
  afterAll(() => {
    if (process.env.GORB_RIG === "1") ip("link", "del", "bh0");
  });

  test("60 s of tcp and http checks every 200 ms: every check times out, fds and in-flight probes stay flat", async () => {
    const updates: HealthUpdate[] = [];
    const monitor = new HealthMonitor({ onUpdate: (u) => updates.push(u) });
    const baseline = fdCount("self");
    monitor.add("tcp", { host: HOLE, port: 80 }, parsePulseOptions({ type: "tcp", interval: "200ms", args: { timeout: "150ms" } }));
    monitor.add("http", { host: HOLE, port: 8080 }, parsePulseOptions({ type: "http", interval: "200ms", args: { timeout: "150ms" } }));
    let maxFds = 0;
    let maxInFlight = 0;
    let maxSynSent = 0;
    const end = performance.now() + 60_000;
    while (performance.now() < end) {
      await Bun.sleep(100);
      maxFds = Math.max(maxFds, fdCount("self") - baseline);
      maxInFlight = Math.max(maxInFlight, monitor.stats().inFlight);
      maxSynSent = Math.max(maxSynSent, synSent(HOLE));
    }
    const stats = monitor.stats();
    monitor.stop();
    // ~300 checks per target; each one timed out.
    expect(stats.timedOut).toBeGreaterThan(200);
    expect(updates.every((u) => u.status === "down" && u.lastCheck.kind === "timeout")).toBe(true);
    // Per target at most: the connects of the first STUCK_MS (1 s = 5 checks), which Bun cannot cancel (see
    // conn.ts; counted until they settle), the one running now, and the previous one between its destroy() and its
    // close event: 7 each. Without real cancelling: one more per check (~300 per target by the end).
    expect(maxInFlight).toBeLessThanOrEqual(16);
    expect(maxSynSent).toBeLessThanOrEqual(14);
    expect(maxFds).toBeLessThanOrEqual(16);
  }, 90_000);
});

describe("an EMFILE storm in gorb serve", () => {
  let backends: Backend[] = [];
  let daemon: ReturnType<typeof Bun.spawn> | null = null;
  const held: Socket[] = [];

  beforeAll(async () => {
    assertInGuest();
    ipvsadm("-C");
    backends = await createBackends(2, { firstIndex: FIRST_BACKEND });
  });
  afterAll(async () => {
    if (process.env.GORB_RIG !== "1") return;
    for (const s of held) s.terminate();
    daemon?.kill("SIGKILL");
    await daemon?.exited;
    ipvsadm("-C");
    await destroyBackends(backends);
  });

  test("healthy backends keep their weights while gorb is out of file descriptors", async () => {
    const api = `http://127.0.0.1:${API_PORT}`;
    daemon = Bun.spawn(["/bin/sh", "-c", `ulimit -n 256 && exec "$0" "$@"`, process.execPath, MAIN, "serve", "-l", `127.0.0.1:${API_PORT}`, "--no-state", "--reconcile-interval", "0"], {
      stdout: "ignore",
      stderr: "ignore",
    });
    const pid = daemon.pid;
    const until = async (what: string, ok: () => Promise<boolean> | boolean, ms = 60_000) => {
      const end = performance.now() + ms;
      while (!(await ok())) {
        if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
        await Bun.sleep(100);
      }
    };
    await until("the API", async () => fetch(`${api}/service`).then((r) => r.ok, () => false));
    const put = async (path: string, body: unknown) => {
      const r = await fetch(`${api}${path}`, { method: "PUT", body: JSON.stringify(body) });
      expect(r.status).toBeLessThan(300);
    };
    await put("/service/storm", { host: VIP, port: 80, protocol: "tcp", method: "rr" });
    for (const b of backends) await put(`/service/storm/${b.name}`, { host: b.address, port: b.port, method: "nat", weight: 100, pulse: { type: "tcp", interval: "1s", args: { timeout: "1s" } } });
    const weights = () => serviceByKey(listIpvs(), `TCP ${VIP}:80`).destinations.map((d) => d.weight);
    const state = async (b: Backend) => {
      const r = (await (await fetch(`${api}/service/storm/${b.name}`)).json()) as { metrics?: { state?: string } };
      return r.metrics?.state;
    };
    await until("both backends up", async () => (await Promise.all(backends.map(state))).every((s) => s === "up"));
    expect(weights()).toEqual([100, 100]);

    // 400 idle connections, topped up for the whole watch: the daemon accepts until it runs out of descriptors, its
    // connection shedder closes the newest ones, and the client opens them again, so gorb stays at its limit.
    const forget = (socket: Socket) => {
      const i = held.indexOf(socket);
      if (i >= 0) held.splice(i, 1);
    };
    const topUp = async () => {
      for (let i = held.length; i < 400; i++) {
        try {
          held.push(await Bun.connect({ hostname: "127.0.0.1", port: API_PORT, socket: { data() {}, close: (s) => forget(s) } }));
        } catch {
          break; // the listen backlog is full
        }
      }
    };
    // The shedder closes what is over its cap every second, possibly before the first look: top up while waiting too.
    await until("the daemon to run out of descriptors", async () => {
      await topUp();
      return fdCount(pid) >= 250;
    });
    // Watch 6 check intervals: the weights never move, while the descriptors keep hitting the limit.
    const seen = new Set<string>();
    let most = 0;
    const end = performance.now() + 6_000;
    while (performance.now() < end) {
      seen.add(JSON.stringify(weights()));
      most = Math.max(most, fdCount(pid));
      await topUp();
      await Bun.sleep(50);
    }
    expect([...seen]).toEqual(["[100,100]"]);
    expect(most).toBeGreaterThanOrEqual(250);
  }, 120_000);
});
