// Failover against the real kernel (issue 12 part B): `gorb serve` runs as a subprocess in the rig guest, driven
// over its REST API only; ipvsadm and real HTTP traffic between network namespaces check what it did.
//   - a sorry server takes the traffic when every backend's server is stopped (health checks fail them) and gives
//     it back when one returns; a POST /reconcile and a restart in sorry mode keep it; the quorum hooks run;
//   - slow start: the weight of a new backend ramps up with time, sampled with ipvsadm -Ln.
// The timeline and the weight series are printed for the lead's notes; nothing here asserts a duration.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { countResponses } from "./helpers/client.ts";
import { type ApiResponse, type Daemon, pollUntil, startDaemon } from "./helpers/daemon.ts";
import { assertInGuest } from "./helpers/guest.ts";
import { listIpvs } from "./helpers/ipvsadm.ts";
import { type Backend, createBackends, destroyBackends, removeVip } from "./helpers/netns.ts";

// NB: addresses, backend indexes and the API port no other kernel test uses (be81-be83, 10.0.18.x, 4698).
const API_PORT = 4698;
const FIRST_BACKEND = 81;
const VIP = "10.0.18.10";
const SLOW_VIP = "10.0.18.20";
const KEY = `TCP ${VIP}:80`;
const SLOW_KEY = `TCP ${SLOW_VIP}:80`;
const WEIGHT = 100;
/** Health checks every second: a stopped server is down within about a second (the guest is slow: allow more). */
const STATE_TIMEOUT_MS = 60_000;

let daemon: Daemon | undefined;
let stateDir = "";
let hookDir = "";
let hookLog = "";
let backends: Backend[] = [];
let be1: Backend;
let be2: Backend;
let sorry: Backend;
const t0 = Date.now();
const timeline: string[] = [];

function mark(what: string): void {
  const line = `+${((Date.now() - t0) / 1000).toFixed(2)}s ${what}`;
  timeline.push(line);
  console.log(`failover timeline: ${line}`);
}

function api(): Daemon {
  if (daemon === undefined) throw new Error("the daemon did not start (see beforeAll's error)");
  return daemon;
}

async function call(method: string, path: string, body: unknown, status: number): Promise<ApiResponse> {
  const d = api();
  const res = await d.request(method, path, body);
  if (res.status !== status) {
    throw new Error(`${method} ${path} ${JSON.stringify(body ?? null)} answered ${res.status} (expected ${status}): ${res.text.slice(0, 400)}\n${d.tail()}`);
  }
  return res;
}

/** The destinations of a service as "address:port weight" strings (sorted), from ipvsadm -Ln. */
function dests(key: string): string[] {
  const svc = listIpvs().services.find((s) => s.key === key);
  if (svc === undefined) return [];
  return svc.destinations.map((d) => `${d.address}:${d.port} ${d.weight}`).sort();
}

async function serviceView(id: string): Promise<{ sorry: boolean; quorum_up: boolean; healthy: number }> {
  const res = await call("GET", `/service/${id}`, undefined, 200);
  return res.json as { sorry: boolean; quorum_up: boolean; healthy: number };
}

async function waitSorry(id: string, on: boolean): Promise<void> {
  let last = "";
  await pollUntil(
    `service ${id} sorry=${on}`,
    async () => {
      const view = await serviceView(id);
      last = JSON.stringify(view);
      return view.sorry === on ? true : undefined;
    },
    { timeoutMs: STATE_TIMEOUT_MS, everyMs: 200, describe: () => last },
  );
}

/** Every answer of `n` requests through the VIP, by backend name; all must be answered. */
async function answers(n: number): Promise<Record<string, number>> {
  const result = await countResponses({ host: VIP, port: 80, requests: n });
  expect(result.failures).toEqual([]);
  return result.counts;
}

function withLog(body: () => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await body();
    } catch (err) {
      const tail = daemon === undefined ? "(no daemon)" : daemon.tail(60);
      if (err instanceof Error) err.message = `${err.message}\n--- gorb serve log ---\n${tail}`;
      throw err;
    }
  };
}

async function start(): Promise<void> {
  daemon = await startDaemon({
    port: API_PORT,
    flags: ["--vip-interface", "lo", "-v", "--state-dir", stateDir, "--hook-dir", hookDir, "--reconcile-interval", "0"],
  });
}

describe("failover against the real kernel", () => {
  beforeAll(async () => {
    assertInGuest();
    for (const v of [VIP, SLOW_VIP]) removeVip(v);
    backends = await createBackends(3, { firstIndex: FIRST_BACKEND });
    [be1, be2, sorry] = backends as [Backend, Backend, Backend];
    for (const b of backends) writeFileSync(join(b.docroot, "health"), "ok\n");
    stateDir = mkdtempSync(join(tmpdir(), "gorb-failover-state-"));
    hookDir = mkdtempSync(join(tmpdir(), "gorb-failover-hooks-"));
    hookLog = join(hookDir, "ran.log");
    mkdirSync(hookDir, { recursive: true });
    const hook = join(hookDir, "quorum.sh");
    writeFileSync(hook, `#!/bin/sh\necho "$GORB_SERVICE $GORB_STATE healthy=$GORB_HEALTHY sorry=$GORB_SORRY vip=$GORB_VIP" >> ${hookLog}\n`);
    chmodSync(hook, 0o755);
    await start();
  });

  afterAll(async () => {
    console.log(`failover timeline:\n${timeline.join("\n")}`);
    await daemon?.kill();
    await destroyBackends(backends);
    for (const dir of [stateDir, hookDir]) if (dir !== "") rmSync(dir, { recursive: true, force: true });
  });

  test(
    "a sorry server takes the traffic while every backend is down and gives it back when one returns",
    withLog(async () => {
      const hook = join(hookDir, "quorum.sh");
      // A hook outside the hook directory is refused, naming the field.
      const refused = await api().request("PUT", "/service/web", { host: VIP, port: 80, quorum_up: "/bin/true" });
      expect(refused.status).toBe(400);
      expect((refused.json as { error: string }).error).toStartWith("quorum_up: ");
      const bad = await api().request("PUT", "/service/web", { host: VIP, port: 80, sorry_server: { host: sorry.address, port: 70000 } });
      expect(bad.status).toBe(400);
      expect((bad.json as { error: string }).error).toStartWith("sorry_server.port: must be 1-65535");

      await call("PUT", "/service/web", {
        host: VIP,
        port: 80,
        method: "rr",
        quorum: 1,
        sorry_server: { host: sorry.address, port: 80, method: "nat" },
        quorum_up: hook,
        quorum_down: hook,
      }, 200);
      const pulse = { type: "http", interval: "1s", args: { path: "/health" } };
      await call("PUT", "/service/web/b1", { host: be1.address, weight: WEIGHT, pulse }, 200);
      await call("PUT", "/service/web/b2", { host: be2.address, weight: WEIGHT, pulse }, 200);
      // A new service with no backend up yet serves from its sorry server until a check passes.
      await waitSorry("web", false);
      mark(`serving from the backends: ipvsadm ${JSON.stringify(dests(KEY))}`);
      expect(dests(KEY)).toEqual([`${be1.address}:80 ${WEIGHT}`, `${be2.address}:80 ${WEIGHT}`]);
      const before = await answers(10);
      expect(Object.keys(before).sort()).toEqual([be1.name, be2.name]);

      mark("stopping be1's and be2's servers");
      await be1.stop();
      await be2.stop();
      await waitSorry("web", true);
      mark(`sorry mode: ipvsadm ${JSON.stringify(dests(KEY))}`);
      // The sorry server is added, the backends are kept at weight 0 (their connections may finish).
      expect(dests(KEY)).toEqual([`${be1.address}:80 0`, `${be2.address}:80 0`, `${sorry.address}:80 1`].sort());
      expect(await answers(10)).toEqual({ [sorry.name]: 10 });
      const view = await call("GET", "/service/web", undefined, 200);
      expect(view.json).toMatchObject({ sorry: true, quorum_up: false, healthy: 0, backends: ["b1", "b2"] });
      const metrics = (await call("GET", "/metrics", undefined, 200)).text;
      expect(metrics).toContain(`gorb_service_sorry_active{name="web",host="${VIP}",port="80",protocol="tcp"} 1`);
      expect(metrics).toContain(`gorb_service_quorum_up{name="web",host="${VIP}",port="80",protocol="tcp"} 0`);

      // A reconcile keeps the sorry server; so does a restart (the kernel's sorry destination says where it was).
      const reconcile = await call("POST", "/reconcile", undefined, 200);
      expect((reconcile.json as { repairs: unknown[] }).repairs).toEqual([]);
      expect(dests(KEY)).toContain(`${sorry.address}:80 1`);
      await api().stop();
      mark("daemon stopped in sorry mode");
      await start();
      mark(`daemon restarted: ipvsadm ${JSON.stringify(dests(KEY))}`);
      expect(dests(KEY)).toContain(`${sorry.address}:80 1`);
      expect(await serviceView("web")).toMatchObject({ sorry: true });
      expect(await answers(5)).toEqual({ [sorry.name]: 5 });

      mark("starting be1's server");
      await be1.start();
      await waitSorry("web", false);
      mark(`back from sorry mode: ipvsadm ${JSON.stringify(dests(KEY))}`);
      // b1 is back (its weight restored gradually from the health window, as after any recovery), b2 still
      // drained, the sorry server gone.
      const back = dests(KEY);
      expect(back).toHaveLength(2);
      expect(back[1]).toBe(`${be2.address}:80 0`);
      expect(Number(back[0]?.split(" ")[1])).toBeGreaterThan(0);
      expect(await answers(10)).toEqual({ [be1.name]: 10 });

      // The hooks ran, without a shell of gorb's, with the environment: down and up at the start (created with no
      // backend up, then the first checks: one or both backends up by then, as they come), down before the restart,
      // up after it. Each runs after its change, so the last one is awaited by its own line: the log has an " up "
      // line since the start.
      const hooksRan = () => (existsSync(hookLog) ? readFileSync(hookLog, "utf8").trim().split("\n") : []);
      await pollUntil("the four quorum hooks to have run", () => (hooksRan().length >= 4 ? true : undefined), { timeoutMs: 20_000 });
      const ran = hooksRan();
      console.log(`failover hooks ran:\n${ran.join("\n")}`);
      const down = `web down healthy=0 sorry=1 vip=${VIP}`;
      const up = `web up healthy=1 sorry=0 vip=${VIP}`;
      expect(ran).toEqual([down, expect.stringMatching(new RegExp(`^web up healthy=[12] sorry=0 vip=${VIP.replaceAll(".", "\\.")}$`)), down, up]);

      // Deleting the service removes it with its sorry server.
      await be2.start();
      await call("DELETE", "/service/web", undefined, 200);
      expect(listIpvs().services.some((s) => s.key === KEY)).toBe(false);
    }),
  );

  test(
    "slow start: a new backend's weight ramps up with time to its configured weight",
    withLog(async () => {
      await call("PUT", "/service/slow", { host: SLOW_VIP, port: 80, method: "wrr" }, 200);
      await call("PUT", "/service/slow/b1", { host: be1.address, weight: WEIGHT, slow_start: "8s", pulse: { type: "none" } }, 200);
      const samples: { t: number; weight: number }[] = [];
      const startedAt = Date.now();
      await pollUntil(
        "the slow-start ramp to reach the configured weight",
        () => {
          const found = dests(SLOW_KEY)[0];
          const weight = found === undefined ? -1 : Number(found.split(" ")[1]);
          if (samples.at(-1)?.weight !== weight) samples.push({ t: (Date.now() - startedAt) / 1000, weight });
          return weight === WEIGHT ? true : undefined;
        },
        { timeoutMs: 120_000, everyMs: 250, describe: () => JSON.stringify(samples) },
      );
      console.log(`slow start weights (s -> weight, ipvsadm -Ln): ${samples.map((s) => `${s.t.toFixed(2)}->${s.weight}`).join(" ")}`);
      const weights = samples.map((s) => s.weight);
      for (let i = 1; i < weights.length; i++) expect(weights[i] as number).toBeGreaterThanOrEqual(weights[i - 1] as number);
      expect(weights[0]).toBeLessThan(WEIGHT); // the first sample may come late in a slow guest: only "below" is sure
      expect(new Set(weights).size).toBeGreaterThanOrEqual(3);
      expect(weights.at(-1)).toBe(WEIGHT);
      const backend = await call("GET", "/service/slow/b1", undefined, 200);
      expect(backend.json).toMatchObject({ effective_weight: WEIGHT, options: { slow_start: "8s" } });
      await call("DELETE", "/service/slow", undefined, 200);
    }),
  );
});
