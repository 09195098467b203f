// `gorb serve` end to end against the real kernel: the daemon runs as a subprocess in the rig guest, is driven over
// its REST API only, and every change is checked with ipvsadm and iproute2, which share no code with gorb.
// Real backends in network namespaces answer real traffic through the VIPs the daemon puts on `lo`.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { countResponses } from "./helpers/client.ts";
import { type ApiResponse, type Daemon, pollUntil, startDaemon } from "./helpers/daemon.ts";
import { assertInGuest } from "./helpers/guest.ts";
import { type IpvsadmListing, type IpvsadmService, listIpvs, serviceByKey } from "./helpers/ipvsadm.ts";
import { type Backend, createBackends, destroyBackends, removeVip } from "./helpers/netns.ts";
import { ip, ipvsadm } from "./helpers/sh.ts";

// NB: addresses and backend indexes no other kernel test uses. IPVS keeps connection entries (TIME_WAIT) after a
// service is deleted, and a destination re-added to the same service address within their lifetime comes back
// from the kernel's trash with its old counters and connections: shared addresses would leak counts across files.
const API_PORT = 4672;
/** First netns backend index (be21..be23 for IPv4 traffic, be24 with IPv6). */
const FIRST_BACKEND = 21;
/** The seed README's service address (its port is the README's). */
const README_VIP = "10.0.9.1";
const README_PORT = 12345;
/** The traffic service's VIP (and, at the end, the service that outlives the daemon). */
const VIP = "10.0.9.10";
const VIP6 = "fd00:9::10";
/** Addresses the error tests use. */
const TAKEN_VIP = "10.0.9.20";
const FOREIGN_VIP = "10.0.9.30";
const BAD_VIP = "10.0.9.40";
const ALL_VIPS = [README_VIP, VIP, VIP6, TAKEN_VIP, FOREIGN_VIP, BAD_VIP];

/** Pulse interval of the traffic and IPv6 services. */
const PULSE_INTERVAL_MS = 1_000;
/** Configured weight of the traffic backends. */
const WEIGHT = 100;
/** The kernel folds per-CPU counters into reported stats every 2 s: wait at most this long for them. */
const STATS_SETTLE_MS = 20_000;
/** One folding period of the kernel's stats, plus a margin. */
const STATS_FOLD_MS = 2_500;

let daemon: Daemon | undefined;
/** The daemon's own durable-state directory, so no other test's daemon restores what this one created. */
let stateDir: string | undefined;
let backends: Backend[] = [];
let be1: Backend;
let be2: Backend;
let be3: Backend;
/** The IPv6 backend. (be1..be4 are handles; the namespaces are be21..be24, see FIRST_BACKEND.) */
let be4: Backend;
/** Answers per backend name through VIP, over the traffic service's whole life. */
const answered: Record<string, number> = {};

function api(): Daemon {
  if (daemon === undefined) throw new Error("the daemon did not start (see beforeAll's error)");
  return daemon;
}

/** Fails with the request, the answer and the daemon's last log lines unless the status is `status`. */
async function call(method: string, path: string, body: unknown, status: number): Promise<ApiResponse> {
  const d = api();
  const res = await d.request(method, path, body);
  if (res.status !== status) {
    throw new Error(
      `${method} ${path} ${body === undefined ? "" : JSON.stringify(body)} answered ${res.status} (expected ${status}): ` +
        `${res.text.slice(0, 400)}\n--- gorb serve log (last lines) ---\n${d.tail()}`,
    );
  }
  return res;
}

/** An object from a JSON answer, or a failure naming what was expected. */
function obj(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`${what}: expected a JSON object, got ${JSON.stringify(value)}`);
  }
  return value as Record<string, unknown>;
}

/** Runs a test body and, when it fails, appends the daemon's last log lines to the error. */
function withLog(body: () => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await body();
    } catch (err) {
      const tail = daemon === undefined ? "(no daemon)" : daemon.tail(60);
      if (err instanceof Error) {
        err.message = `${err.message}\n--- gorb serve log (last lines) ---\n${tail}`;
        throw err;
      }
      throw new Error(`${String(err)}\n--- gorb serve log (last lines) ---\n${tail}`);
    }
  };
}

/** The kernel table without the connection counts, which move on their own: what a shutdown must not change. */
function tableShape(listing: IpvsadmListing = listIpvs()) {
  return listing.services.map((s) => ({
    key: s.key,
    scheduler: s.scheduler,
    flags: s.flagsText,
    destinations: s.destinations.map((d) => ({ address: d.address, port: d.port, forward: d.forward, weight: d.weight })),
  }));
}

/** Addresses on `lo` as `address/prefix`, sorted. */
function loAddresses(): string[] {
  const out = ip("-o", "addr", "show", "dev", "lo");
  return [...out.matchAll(/\binet6?\s+(\S+)/g)].map((m) => m[1] ?? "").sort();
}

function hasVip(address: string): boolean {
  return loAddresses().includes(`${address}/${address.includes(":") ? 128 : 32}`);
}

function service(key: string): IpvsadmService {
  return serviceByKey(listIpvs(), key);
}

function weightOf(key: string, address: string): number {
  const dest = service(key).destinations.find((d) => d.address === address);
  if (dest?.weight === undefined) throw new Error(`ipvsadm lists no destination ${address} under ${key}`);
  return dest.weight;
}

/** GET /service/:service/:backend as an object with `options`, `metrics` and `effective_weight`. */
async function backendInfo(serviceId: string, backendId: string) {
  const res = await call("GET", `/service/${serviceId}/${backendId}`, undefined, 200);
  const info = obj(res.json, `GET /service/${serviceId}/${backendId}`);
  return { info, options: obj(info.options, "options"), metrics: obj(info.metrics, "metrics") };
}

/** Waits until GET shows the backend with health state `state`. */
async function waitForState(serviceId: string, backendId: string, state: "up" | "down", timeoutMs: number): Promise<void> {
  let last = "";
  await pollUntil(
    `backend ${serviceId}/${backendId} to be ${state}`,
    async () => {
      const { metrics } = await backendInfo(serviceId, backendId);
      last = JSON.stringify(metrics);
      return metrics.state === state ? true : undefined;
    },
    { timeoutMs, everyMs: 250, describe: () => last },
  );
}

/** Sends `requests` requests through host:80, requires every one answered, and adds the answers to `answered`. */
async function traffic(host: string, requests: number): Promise<Record<string, number>> {
  const result = await countResponses({ host, port: 80, requests });
  expect(result.failures).toEqual([]);
  for (const [name, n] of Object.entries(result.counts)) answered[name] = (answered[name] ?? 0) + n;
  return result.counts;
}

/**
 * Waits until the kernel's folded stats of `key` count every connection in `answered`, then one more folding
 * period (the packets that close the last connections may land in the next one), and returns them.
 */
async function settledStats(key: string, names: readonly Backend[]): Promise<IpvsadmService> {
  const total = names.reduce((sum, b) => sum + (answered[b.name] ?? 0), 0);
  let last: IpvsadmService | undefined;
  await pollUntil(
    `the kernel's stats of ${key} to count ${total} connections`,
    () => {
      last = serviceByKey(listIpvs("stats"), key);
      return last.stats?.conns === total ? last : undefined;
    },
    { timeoutMs: STATS_SETTLE_MS, everyMs: 500, describe: () => JSON.stringify(last) },
  );
  await Bun.sleep(STATS_FOLD_MS);
  const settled = serviceByKey(listIpvs("stats"), key);
  expect(settled.stats?.conns).toBe(total);
  return settled;
}

function destConns(svc: IpvsadmService, address: string): number {
  const dest = svc.destinations.find((d) => d.address === address);
  if (dest?.stats === undefined) throw new Error(`no stats for destination ${address} of ${svc.key}`);
  return dest.stats.conns;
}

describe("gorb serve against the real kernel", () => {
  beforeAll(async () => {
    assertInGuest();
    ipvsadm("-C");
    for (const v of ALL_VIPS) removeVip(v);
    backends = [
      ...(await createBackends(3, { firstIndex: FIRST_BACKEND })),
      ...(await createBackends(1, { firstIndex: FIRST_BACKEND + 3, ipv6: true })),
    ];
    [be1, be2, be3, be4] = backends as [Backend, Backend, Backend, Backend];
    for (const b of backends) writeFileSync(join(b.docroot, "health"), "ok\n");
    stateDir = mkdtempSync(join(tmpdir(), "gorb-serve-test-"));
    // Reconciling every second: whatever the tests do through the API must never look like drift to repair
    // (health-driven weights above all), and the last test checks the log for repairs.
    const flags = ["--vip-interface", "lo", "-v", "--state-dir", stateDir, "--reconcile-interval", "1s"];
    daemon = await startDaemon({ port: API_PORT, flags });
  });

  afterAll(async () => {
    if (process.env.GORB_RIG !== "1") return; // beforeAll already failed with directions; nothing to undo
    await daemon?.kill();
    ipvsadm("-C");
    for (const v of ALL_VIPS) removeVip(v);
    await destroyBackends(backends);
    if (stateDir !== undefined) rmSync(stateDir, { recursive: true, force: true });
  });

  test(
    "the daemon starts on the real kernel, answers, and leaves an empty table alone",
    withLog(async () => {
      const res = await call("GET", "/service", undefined, 200);
      expect(res.json).toEqual([]);
      expect(api().log()).toMatch(/IPVS \d+\.\d+\.\d+, connection table size \d+/);
      expect(api().log()).toContain("gorb is listening on 127.0.0.1:4672");
      expect(listIpvs().services).toEqual([]);
      for (const v of ALL_VIPS) expect(hasVip(v)).toBe(false);
    }),
  );

  test(
    "listening on loopback (the default), a request to a DNS name is refused: a page that rebound its name sends no other sign over HTTP",
    withLog(async () => {
      const statusFor = async (host: string): Promise<string> => {
        let text = "";
        const { promise, resolve } = Promise.withResolvers<string>();
        await Bun.connect({
          hostname: "127.0.0.1",
          port: API_PORT,
          socket: {
            open: (socket) => void socket.write(`GET /service HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`),
            data: (_socket, chunk) => void (text += chunk.toString()),
            close: () => resolve(text.split("\r\n")[0] ?? ""),
            error: () => resolve(text.split("\r\n")[0] ?? ""),
          },
        });
        return promise;
      };
      expect(await statusFor(`attacker.example:${API_PORT}`)).toBe("HTTP/1.1 403 Forbidden");
      expect(await statusFor(`127.0.0.1:${API_PORT}`)).toBe("HTTP/1.1 200 OK");
      expect(await statusFor(`localhost:${API_PORT}`)).toBe("HTTP/1.1 200 OK");
    }),
  );

  describe("the seed README's requests, checked in the kernel", () => {
    const key = `TCP ${README_VIP}:${README_PORT}`;
    const udpKey = `UDP ${README_VIP}:${README_PORT}`;

    test(
      "PUT /service/<service> creates a persistent wrr service and its VIP",
      withLog(async () => {
        await call("PUT", "/service/readme", { host: README_VIP, port: README_PORT, protocol: "tcp", method: "wrr", persistent: true }, 200);
        const svc = service(key);
        expect(svc).toMatchObject({ protocol: "TCP", family: "inet", address: README_VIP, port: README_PORT, scheduler: "wrr" });
        // persistent: true really makes the service persistent (the original ignored it): 300 s, full mask.
        expect(svc.persistence).toEqual({ timeout: 300, mask: null });
        expect(svc.schedFlags).toEqual([]);
        expect(svc.pe).toBeNull();
        expect(svc.onePacket).toBe(false);
        expect(svc.destinations).toEqual([]);
        expect(hasVip(README_VIP)).toBe(true);
      }),
    );

    test(
      "PUT /service/<service> with the README's other choices: udp, sh with scheduler flags, not persistent",
      withLog(async () => {
        const tcpBefore = service(key);
        await call(
          "PUT",
          "/service/readme-udp",
          { host: README_VIP, port: README_PORT, protocol: "udp", method: "sh", flags: "sh-fallback|sh-port", persistent: false },
          200,
        );
        const svc = service(udpKey);
        expect(svc).toMatchObject({ protocol: "UDP", family: "inet", address: README_VIP, port: README_PORT, scheduler: "sh" });
        expect(svc.schedFlags).toEqual(["sh-fallback", "sh-port"]);
        expect(svc.persistence).toBeNull();
        expect(service(key)).toEqual(tcpBefore);
        const res = await call("GET", "/service/readme-udp", undefined, 200);
        expect(obj(res.json, "GET /service/readme-udp").options).toMatchObject({ protocol: "udp", method: "sh", flags: "sh-fallback|sh-port", persistent: false });
        expect((await call("GET", "/service", undefined, 200)).json).toEqual(["readme", "readme-udp"]);
      }),
    );

    test(
      "PUT /service/<service>/<backend> adds a NAT backend with an http pulse and a tunnel backend without one",
      withLog(async () => {
        await call(
          "PUT",
          "/service/readme/web1",
          {
            host: be1.address,
            port: 80,
            method: "nat",
            pulse: { type: "http", args: { method: "GET", path: "/health", expect: 200 }, interval: "5s" },
            weight: 100,
          },
          200,
        );
        expect(service(key).destinations).toEqual([
          { family: "inet", address: be1.address, port: 80, forward: "Masq", weight: 100, activeConns: 0, inactiveConns: 0 },
        ]);
        await call(
          "PUT",
          "/service/readme/web2",
          { host: be2.address, port: README_PORT, method: "tunnel", pulse: { type: "none", interval: "5s" }, weight: 20 },
          200,
        );
        const dests = service(key).destinations.map((d) => ({ address: d.address, port: d.port, forward: d.forward, weight: d.weight }));
        expect(dests).toEqual([
          { address: be1.address, port: 80, forward: "Masq", weight: 100 },
          { address: be2.address, port: README_PORT, forward: "Tunnel", weight: 20 },
        ]);
        // The service itself is untouched by adding backends.
        expect(service(key)).toMatchObject({ scheduler: "wrr", persistence: { timeout: 300, mask: null } });
      }),
    );

    test(
      "GET /service/<service> returns the configuration the kernel has",
      withLog(async () => {
        const before = tableShape();
        const res = await call("GET", "/service/readme", undefined, 200);
        const info = obj(res.json, "GET /service/readme");
        expect(info.options).toMatchObject({
          host: README_VIP,
          port: README_PORT,
          protocol: "tcp",
          method: "wrr",
          persistent: true,
          persistence_timeout: 300,
          family: "inet",
          address: README_VIP,
        });
        expect(info.backends).toEqual(["web1", "web2"]);
        expect(obj(info.stats, "stats").conns).toBe(0);
        expect(tableShape()).toEqual(before);
      }),
    );

    test(
      "GET /service/<service>/<backend> returns the backend's configuration and its health check metrics",
      withLog(async () => {
        const before = tableShape();
        // The first check runs within one interval (5 s) of the PUT; /health exists on be1, so it passes.
        await waitForState("readme", "web1", "up", 30_000);
        const { info, options, metrics } = await backendInfo("readme", "web1");
        expect(options).toMatchObject({ host: be1.address, port: 80, weight: 100, method: "nat", vsid: "readme" });
        expect(options.pulse).toEqual({ type: "http", interval: "5s", args: { method: "GET", path: "/health", expect: 200 } });
        expect(metrics).toMatchObject({ status: 0, state: "up", health: 1 });
        expect(String(metrics.message)).toContain("200");
        expect(info.effective_weight).toBe(100);
        expect(tableShape()).toEqual(before);
      }),
    );

    test(
      "DELETE /service/<service>/<backend> removes only that destination",
      withLog(async () => {
        await call("DELETE", "/service/readme/web2", undefined, 200);
        expect(service(key).destinations.map((d) => d.address)).toEqual([be1.address]);
        await call("GET", "/service/readme/web2", undefined, 404);
      }),
    );

    test(
      "DELETE /service/<service> removes the service and its backends, and the VIP with the last service on it",
      withLog(async () => {
        await call("DELETE", "/service/readme", undefined, 200);
        expect(listIpvs().services.map((s) => s.key)).toEqual([udpKey]);
        // The UDP service still uses the address.
        expect(hasVip(README_VIP)).toBe(true);
        await call("GET", "/service/readme", undefined, 404);

        await call("DELETE", "/service/readme-udp", undefined, 200);
        expect(listIpvs().services).toEqual([]);
        expect(hasVip(README_VIP)).toBe(false);
      }),
    );
  });

  describe("real traffic through a NAT service with http pulses every 1s", () => {
    const key = `TCP ${VIP}:80`;
    const pulse = { type: "http", interval: "1s", args: { path: "/health", expect: 200 } };

    test(
      "every connection is answered and all three backends are used",
      withLog(async () => {
        await call("PUT", "/service/traffic", { host: VIP, port: 80, protocol: "tcp", method: "rr" }, 200);
        for (const b of [be1, be2, be3]) {
          await call("PUT", `/service/traffic/${b.name}`, { host: b.address, port: 80, method: "nat", weight: WEIGHT, pulse }, 200);
        }
        expect(service(key).destinations.map((d) => [d.address, d.forward, d.weight])).toEqual([
          [be1.address, "Masq", WEIGHT],
          [be2.address, "Masq", WEIGHT],
          [be3.address, "Masq", WEIGHT],
        ]);
        for (const b of [be1, be2, be3]) await waitForState("traffic", b.name, "up", 20_000);
        const counts = await traffic(VIP, 300);
        console.log(`rr over 300 requests: ${JSON.stringify(counts)}`);
        expect(Object.keys(counts).sort()).toEqual([be1.name, be2.name, be3.name]);
        // rr over three equal destinations: a strict rotation.
        for (const b of [be1, be2, be3]) expect(counts[b.name]).toBe(100);
      }),
    );

    test(
      "a stopped backend gets weight 0 in the kernel within a few intervals and no new connection",
      withLog(async () => {
        await be2.stop();
        const started = Date.now();
        let seen = -1;
        await pollUntil(
          `${be2.name}'s weight to drop to 0`,
          () => {
            seen = weightOf(key, be2.address);
            return seen === 0 ? true : undefined;
          },
          { timeoutMs: 10 * PULSE_INTERVAL_MS, everyMs: 100, describe: () => `weight ${seen}` },
        );
        console.log(`${be2.name} stopped: weight 0 in the kernel after ${Date.now() - started} ms`);
        expect(weightOf(key, be1.address)).toBe(WEIGHT);
        expect(weightOf(key, be3.address)).toBe(WEIGHT);

        const { info, options, metrics } = await backendInfo("traffic", be2.name);
        expect(metrics).toMatchObject({ status: 1, state: "down", uptime: 0 });
        expect(String(metrics.message)).toContain(`http://${be2.address}:80/health failed`);
        expect(info.effective_weight).toBe(0);
        expect(options.weight).toBe(WEIGHT);

        const be2Before = answered[be2.name] ?? 0;
        const counts = await traffic(VIP, 150);
        expect(counts[be2.name]).toBeUndefined();
        expect((counts[be1.name] ?? 0) + (counts[be3.name] ?? 0)).toBe(150);
        // The kernel never scheduled a connection to it: its connection counter did not move.
        const stats = await settledStats(key, [be1, be2, be3]);
        expect(destConns(stats, be2.address)).toBe(be2Before);
      }),
    );

    test(
      "a backend that comes back climbs to its configured weight in steps",
      withLog(async () => {
        // The weight before the server is back (0), so a check that passes at once still shows as a step from 0.
        const weights: number[] = [weightOf(key, be2.address)];
        await be2.start();
        let checkedGet = false;
        await pollUntil(
          `${be2.name}'s weight to climb back to ${WEIGHT}`,
          async () => {
            const w = weightOf(key, be2.address);
            if (weights[weights.length - 1] !== w) weights.push(w);
            if (!checkedGet && w > 0 && w < WEIGHT) {
              // Mid-ramp, GET agrees: up again, with an effective weight on the ramp (it only climbs).
              checkedGet = true;
              const { info, metrics } = await backendInfo("traffic", be2.name);
              expect(metrics).toMatchObject({ status: 0, state: "up" });
              expect(info.effective_weight).toBeGreaterThanOrEqual(w);
              expect(info.effective_weight).toBeLessThanOrEqual(WEIGHT);
            }
            return w === WEIGHT ? true : undefined;
          },
          { timeoutMs: 40 * PULSE_INTERVAL_MS, everyMs: 100, describe: () => `weights so far ${weights.join(" -> ")}` },
        );
        console.log(`${be2.name} restarted: kernel weights ${weights.join(" -> ")}`);
        expect(weights[0]).toBe(0);
        expect(weights.some((w) => w > 0 && w < WEIGHT)).toBe(true);
        expect(weights[weights.length - 1]).toBe(WEIGHT);
        // Non-decreasing: the ramp never steps back while the backend stays up.
        expect([...weights].sort((a, b) => a - b)).toEqual(weights);
        expect(checkedGet).toBe(true);

        const { info, metrics } = await backendInfo("traffic", be2.name);
        expect(metrics).toMatchObject({ status: 0, state: "up" });
        expect(info.effective_weight).toBe(WEIGHT);

        const counts = await traffic(VIP, 150);
        expect(Object.keys(counts).sort()).toEqual([be1.name, be2.name, be3.name]);
      }),
    );

    test(
      "PATCH of the scheduler and of a weight change the kernel in place, keeping the counters",
      withLog(async () => {
        const before = await settledStats(key, [be1, be2, be3]);
        const be1Conns = destConns(before, be1.address);
        expect(be1Conns).toBe(answered[be1.name] ?? -1);

        await call("PATCH", "/service/traffic", { method: "wlc" }, 200);
        const patched = service(key);
        expect(patched.scheduler).toBe("wlc");
        expect(patched.destinations.map((d) => [d.address, d.weight])).toEqual([
          [be1.address, WEIGHT],
          [be2.address, WEIGHT],
          [be3.address, WEIGHT],
        ]);
        // The same service object: its counters were not reset by a delete and re-add.
        expect(serviceByKey(listIpvs("stats"), key).stats).toEqual(before.stats);

        await call("PATCH", `/service/traffic/${be1.name}`, { weight: 50 }, 200);
        expect(weightOf(key, be1.address)).toBe(50);
        expect(weightOf(key, be2.address)).toBe(WEIGHT);
        const after = serviceByKey(listIpvs("stats"), key);
        expect(destConns(after, be1.address)).toBe(be1Conns);
        expect(after.destinations.map((d) => d.stats)).toEqual(before.destinations.map((d) => d.stats));

        const { info, options } = await backendInfo("traffic", be1.name);
        expect(options.weight).toBe(50);
        expect(info.effective_weight).toBe(50);
        const res = await call("GET", "/service/traffic", undefined, 200);
        expect(obj(res.json, "GET /service/traffic").options).toMatchObject({ method: "wlc" });

        // Still balancing after both PATCHes. (Which backends answer is wlc's choice: it counts inactive
        // connections, and be2 has fewer of them since it was down, so sequential requests may all go there.)
        const counts = await traffic(VIP, 60);
        expect(Object.values(counts).reduce((sum, n) => sum + n, 0)).toBe(60);
      }),
    );

    test(
      "GET /metrics reports the kernel's counters for the service and its backends",
      withLog(async () => {
        const stats = await settledStats(key, [be1, be2, be3]);
        const res = await call("GET", "/metrics", undefined, 200);
        const sample = (name: string, labels: string): number => {
          const line = res.text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(labels));
          if (line === undefined) throw new Error(`/metrics has no ${name} with ${labels}:\n${res.text}`);
          return Number(line.slice(line.lastIndexOf(" ") + 1));
        };
        const svcLabels = `name="traffic",host="${VIP}",port="80",protocol="tcp"`;
        expect(sample("gorb_service_connections_total", svcLabels)).toBe(stats.stats?.conns ?? -1);
        expect(sample("gorb_service_in_packets_total", svcLabels)).toBe(stats.stats?.inPkts ?? -1);
        expect(sample("gorb_service_out_bytes_total", svcLabels)).toBe(stats.stats?.outBytes ?? -1);
        expect(sample("gorb_service_backends", svcLabels)).toBe(3);
        for (const b of [be1, be2, be3]) {
          const labels = `service_name="traffic",name="${b.name}",host="${b.address}",port="80"`;
          expect(sample("gorb_service_backend_connections_total", labels)).toBe(destConns(stats, b.address));
          expect(sample("gorb_service_backend_connections_total", labels)).toBe(answered[b.name] ?? -1);
          expect(sample("gorb_service_backend_status", labels)).toBe(0);
        }
        expect(sample("gorb_service_backend_weight", `name="${be1.name}"`)).toBe(50);
        expect(sample("gorb_service_backend_configured_weight", `name="${be1.name}"`)).toBe(50);
        expect(sample("gorb_service_connections_total", svcLabels)).toBe(
          [be1, be2, be3].reduce((sum, b) => sum + (answered[b.name] ?? 0), 0),
        );
      }),
    );

    test(
      "DELETE /service empties the kernel table and takes the VIP off lo",
      withLog(async () => {
        expect(hasVip(VIP)).toBe(true);
        await call("DELETE", "/service/traffic", undefined, 200);
        expect(listIpvs().services).toEqual([]);
        expect(hasVip(VIP)).toBe(false);
        await call("GET", "/service/traffic", undefined, 404);
        expect((await call("GET", "/service", undefined, 200)).json).toEqual([]);
      }),
    );
  });

  test(
    "IPv6 end to end: an IPv6 VIP, an IPv6 backend with a tcp pulse, and traffic through it",
    withLog(async () => {
      const address6 = be4.address6;
      if (address6 === null) throw new Error(`${be4.name} was created without IPv6`);
      const key = `TCP [${VIP6}]:80`;
      const body = { host: VIP6, port: 80, protocol: "tcp", method: "rr", persistent: true, persistence_timeout: 60, persistence_netmask: 64 };
      await call("PUT", "/service/v6", body, 200);
      expect(service(key)).toMatchObject({ family: "inet6", address: VIP6, port: 80, scheduler: "rr", persistence: { timeout: 60, mask: "64" } });
      expect(hasVip(VIP6)).toBe(true);

      await call("PUT", `/service/v6/${be4.name}`, { host: address6, port: 80, method: "nat", pulse: { type: "tcp", interval: "1s" } }, 200);
      expect(service(key).destinations).toEqual([
        { family: "inet6", address: address6, port: 80, forward: "Masq", weight: 100, activeConns: 0, inactiveConns: 0 },
      ]);
      await waitForState("v6", be4.name, "up", 20_000);
      const { info, metrics } = await backendInfo("v6", be4.name);
      expect(info.effective_weight).toBe(100);
      expect(String(metrics.message)).toContain(address6);

      const result = await countResponses({ host: VIP6, port: 80, requests: 50 });
      expect(result.failures).toEqual([]);
      expect(result.counts).toEqual({ [be4.name]: 50 });
      let last: IpvsadmService | undefined;
      await pollUntil(
        `the kernel's stats of ${key} to count 50 connections`,
        () => {
          last = serviceByKey(listIpvs("stats"), key);
          return last.stats?.conns === 50 ? true : undefined;
        },
        { timeoutMs: STATS_SETTLE_MS, everyMs: 500, describe: () => JSON.stringify(last) },
      );

      await call("DELETE", "/service/v6", undefined, 200);
      expect(listIpvs().services).toEqual([]);
      expect(hasVip(VIP6)).toBe(false);
    }),
  );

  describe("errors against the real kernel change nothing", () => {
    test(
      "an address:port another gorb service has gives 409",
      withLog(async () => {
        await call("PUT", "/service/one", { host: TAKEN_VIP, port: 80, method: "rr" }, 200);
        const table = tableShape();
        const addrs = loAddresses();
        const res = await call("PUT", "/service/two", { host: TAKEN_VIP, port: 80, method: "wlc" }, 409);
        expect(obj(res.json, "409 body")).toMatchObject({ code: "CONFLICT" });
        expect(String(obj(res.json, "409 body").error)).toContain('"one"');
        expect(tableShape()).toEqual(table);
        expect(service(`TCP ${TAKEN_VIP}:80`).scheduler).toBe("rr");
        expect(loAddresses()).toEqual(addrs);
        await call("GET", "/service/two", undefined, 404);
      }),
    );

    test(
      "an address:port the kernel has outside gorb gives 409 and no leaked VIP",
      withLog(async () => {
        ipvsadm("-A", "-t", `${FOREIGN_VIP}:80`, "-s", "sh");
        const table = tableShape();
        const addrs = loAddresses();
        const res = await call("PUT", "/service/three", { host: FOREIGN_VIP, port: 80, method: "rr" }, 409);
        expect(obj(res.json, "409 body")).toMatchObject({ code: "CONFLICT" });
        expect(String(obj(res.json, "409 body").error)).toContain("in the kernel");
        expect(tableShape()).toEqual(table);
        expect(service(`TCP ${FOREIGN_VIP}:80`).scheduler).toBe("sh");
        expect(hasVip(FOREIGN_VIP)).toBe(false);
        expect(loAddresses()).toEqual(addrs);
        await call("GET", "/service/three", undefined, 404);
      }),
    );

    test(
      "an unknown scheduler gives 400 naming method",
      withLog(async () => {
        const table = tableShape();
        const addrs = loAddresses();
        const res = await call("PUT", "/service/four", { host: BAD_VIP, port: 80, method: "fastest" }, 400);
        const body = obj(res.json, "400 body");
        expect(body.code).toBe("VALIDATION");
        expect(String(body.error)).toStartWith("method: ");
        expect(String(body.error)).toContain('"fastest"');
        expect(tableShape()).toEqual(table);
        expect(hasVip(BAD_VIP)).toBe(false);
        expect(loAddresses()).toEqual(addrs);
        expect((await call("GET", "/service", undefined, 200)).json).toEqual(["one"]);

        await call("DELETE", "/service/one", undefined, 200);
        ipvsadm("-D", "-t", `${FOREIGN_VIP}:80`);
        expect(listIpvs().services).toEqual([]);
        expect(hasVip(TAKEN_VIP)).toBe(false);
      }),
    );
  });

  test(
    "SIGTERM stops the daemon with exit 0 and leaves the kernel table and the VIP serving traffic",
    withLog(async () => {
      const key = `TCP ${VIP}:80`;
      await call("PUT", "/service/survivor", { host: VIP, port: 80, method: "rr" }, 200);
      for (const b of [be1, be3]) {
        await call("PUT", `/service/survivor/${b.name}`, { host: b.address, port: 80, weight: 7, pulse: { type: "http", interval: "1s" } }, 200);
      }
      for (const b of [be1, be3]) await waitForState("survivor", b.name, "up", 20_000);
      const table = tableShape();
      expect(table).toEqual([
        {
          key,
          scheduler: "rr",
          flags: "",
          destinations: [
            { address: be1.address, port: 80, forward: "Masq", weight: 7 },
            { address: be3.address, port: 80, forward: "Masq", weight: 7 },
          ],
        },
      ]);
      const addrs = loAddresses();

      const exit = await api().stop();
      if (exit.exitCode !== 0) throw new Error(`gorb serve exited with ${exit.exitCode} (signal ${exit.signalCode}); log:\n${exit.log}`);
      expect(exit.log).toContain("SIGTERM: stopping (the IPVS table is left as it is)");
      expect(exit.log).toContain("gorb stopped");
      // Nothing in the whole run was an error on the daemon's side (refused requests are the client's errors).
      expect(exit.log).not.toContain("] error: ");
      // Nothing was changed behind gorb's back, so the reconcile every second never found anything to repair.
      expect(exit.log).not.toContain("reconcile:");
      expect(tableShape()).toEqual(table);
      expect(loAddresses()).toEqual(addrs);
      expect(hasVip(VIP)).toBe(true);
      // With the daemon gone, the kernel keeps balancing.
      const result = await countResponses({ host: VIP, port: 80, requests: 20 });
      expect(result.failures).toEqual([]);
      expect(result.counts).toEqual({ [be1.name]: 10, [be3.name]: 10 });
    }),
  );
});
