// Drains and maintenance with real long-lived TCP connections: `gorb serve` in the rig guest, backends in network
// namespaces running a line server that keeps every connection open, clients in the root namespace connecting
// through a NAT service on a VIP on `lo`. `ipvsadm -Ln` (no code shared with gorb) is the judge of the kernel
// table; the backend's own answers say where a connection landed and that it still exchanges data.
//
// Connections are closed with a TCP reset (resetAndDestroy): IPVS then keeps their entry in its CLOSE state for
// 10 s, counted as inactive. A FIN close would keep it in TIME_WAIT for 2 minutes (IPVS's fixed timeout), and
// a drain waits for inactive connections too, as it must (they can still carry packets).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import net from "node:net";
import { type ApiResponse, type Daemon, pollUntil, startDaemon } from "./helpers/daemon.ts";
import { assertInGuest } from "./helpers/guest.ts";
import { listIpvs, serviceByKey } from "./helpers/ipvsadm.ts";
import { type Backend, createBackends, destroyBackends, removeVip } from "./helpers/netns.ts";
import { IP, ipvsadm, run } from "./helpers/sh.ts";

// NB: a VIP, ports and backend indexes (be71, be72) no other kernel test file uses.
const VIP = "10.0.14.10";
const API_PORT = 4691;
const FIRST_BACKEND = 71;
/** The port the line servers listen on in every backend namespace. */
const LINE_PORT = 9000;
const SERVER_SCRIPT = "/tmp/gorb-drain-line-server.ts";
/** How long kernel state gets to show what the test waits for (the guest runs about 10x slower than a host). */
const WAIT_MS = 60_000;

let daemon: Daemon | undefined;
let backends: Backend[] = [];
let be1: Backend;
let be2: Backend;
const servers: ReturnType<typeof Bun.spawn>[] = [];

function api(): Daemon {
  if (daemon === undefined) throw new Error("the daemon did not start (see beforeAll's error)");
  return daemon;
}

async function call(method: string, path: string, body: unknown, status: number): Promise<ApiResponse> {
  const res = await api().request(method, path, body);
  if (res.status !== status) {
    throw new Error(`${method} ${path} answered ${res.status} (expected ${status}): ${res.text.slice(0, 400)}\n--- gorb log ---\n${api().tail()}`);
  }
  return res;
}

/** Every line of the daemon log on failure. */
async function withLog(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    const tail = daemon === undefined ? "" : `\n--- gorb serve log (last lines) ---\n${daemon.tail(60)}`;
    throw new Error(`${error instanceof Error ? error.message : String(error)}${tail}\n--- ipvsadm -Ln ---\n${ipvsadm("-Ln")}`);
  }
}

/** A client connection through the VIP: it asks the backend for its name, as often as the test wants. */
class Conn {
  readonly #socket: net.Socket;
  #waiting: ((line: string) => void) | null = null;
  #buffer = "";
  closed = false;
  error: string | null = null;
  /** The backend this connection landed on (its first answer). */
  backend = "";

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      this.#buffer += chunk;
      const nl = this.#buffer.indexOf("\n");
      if (nl < 0) return;
      const line = this.#buffer.slice(0, nl);
      this.#buffer = this.#buffer.slice(nl + 1);
      const waiting = this.#waiting;
      this.#waiting = null;
      waiting?.(line);
    });
    socket.on("error", (e: NodeJS.ErrnoException) => {
      this.error = e.code ?? e.message;
    });
    socket.on("close", () => {
      this.closed = true;
      const waiting = this.#waiting;
      this.#waiting = null;
      waiting?.("");
    });
  }

  static async open(port: number): Promise<Conn> {
    const socket = net.connect({ host: VIP, port });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", () => resolve());
      socket.once("error", reject);
    });
    const conn = new Conn(socket);
    conn.backend = await conn.ask();
    return conn;
  }

  /** Sends a line and resolves with the backend's answer ("" when the connection closed), within 10 s. */
  ask(): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no answer within 10 s")), 10_000);
      this.#waiting = (line) => {
        clearTimeout(timer);
        resolve(line);
      };
      this.#socket.write("ping\n");
    });
  }

  /** Closes with a reset (see the file comment). */
  reset(): void {
    this.#socket.resetAndDestroy();
  }
}

/** The destinations of the service on `port`, as "address:port" -> weight and connection counts. */
function kernelDests(port: number): Map<string, { weight: number; active: number; inactive: number }> {
  const svc = serviceByKey(listIpvs("default"), `TCP ${VIP}:${port}`);
  const out = new Map<string, { weight: number; active: number; inactive: number }>();
  for (const d of svc?.destinations ?? []) out.set(`${d.address}:${d.port}`, { weight: d.weight ?? -1, active: d.activeConns ?? 0, inactive: d.inactiveConns ?? 0 });
  return out;
}

/** A timeline: milliseconds since `t0` and what happened. */
class Timeline {
  readonly #t0 = Date.now();
  readonly entries: string[] = [];
  mark(what: string): number {
    const at = Date.now() - this.#t0;
    this.entries.push(`${(at / 1000).toFixed(2).padStart(7)} s  ${what}`);
    return at;
  }
  print(title: string): void {
    console.log(`${title}\n${this.entries.join("\n")}`);
  }
}

/** Records the daemon's backend.drain events (with the time they arrived) until stopped. */
function followDrainEvents(timeline: Timeline): { stop(): void } {
  const controller = new AbortController();
  void (async () => {
    try {
      const res = await fetch(`${api().url}/events`, { signal: controller.signal });
      const reader = res.body?.getReader();
      if (reader === undefined) return;
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += decoder.decode(value, { stream: true });
        let end: number;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const type = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (data === undefined || (type !== "backend.drain" && type !== "backend.deleted" && type !== "backend.weight")) continue;
          const d = JSON.parse(data) as Record<string, unknown>;
          if (type === "backend.drain") {
            const counts = d.active === null ? "" : ` (${String(d.active)} active, ${String(d.inactive)} inactive)`;
            timeline.mark(`event backend.drain ${String(d.phase)} ${String(d.backend)}${counts}`);
          } else if (type === "backend.weight") {
            timeline.mark(`event backend.weight ${String(d.backend)} ${String(d.from)} -> ${String(d.to)}`);
          } else {
            timeline.mark(`event backend.deleted ${String(d.backend)}`);
          }
        }
      }
    } catch {
      // aborted
    }
  })();
  return { stop: () => controller.abort() };
}

/** Opens `count` connections one after the other (wrr with equal weights alternates between the backends). */
async function openSpread(port: number, count: number): Promise<Conn[]> {
  const conns: Conn[] = [];
  for (let i = 0; i < count; i++) conns.push(await Conn.open(port));
  return conns;
}

async function createService(id: string, port: number, backendIds: readonly [string, Backend][]): Promise<void> {
  await call("PUT", `/service/${id}`, { host: VIP, port, method: "wrr" }, 200);
  for (const [name, b] of backendIds) {
    await call("PUT", `/service/${id}/${name}`, { host: b.address, port: LINE_PORT, pulse: { type: "tcp", interval: "1s" } }, 200);
  }
}

describe("drains and maintenance with real connections", () => {
  beforeAll(async () => {
    assertInGuest();
    // The daemon must set these itself (the guest's defaults are 0).
    writeFileSync("/proc/sys/net/ipv4/vs/expire_nodest_conn", "0\n");
    writeFileSync("/proc/sys/net/ipv4/vs/expire_quiescent_template", "0\n");
    backends = await createBackends(2, { firstIndex: FIRST_BACKEND });
    [be1, be2] = backends as [Backend, Backend];
    writeFileSync(
      SERVER_SCRIPT,
      `const [host, port, name] = process.argv.slice(2);
Bun.listen({ hostname: host, port: Number(port), socket: { data(s) { s.write(name + "\\n"); }, error() {} } });
`,
    );
    for (const b of backends) {
      const proc = Bun.spawn([IP, "netns", "exec", b.name, process.execPath, SERVER_SCRIPT, b.address, String(LINE_PORT), b.name], {
        stdin: "ignore",
        stdout: "ignore",
        stderr: "ignore",
      });
      proc.unref();
      servers.push(proc);
      await pollUntil(`${b.name}'s line server`, async () => {
        try {
          const s = await Bun.connect({ hostname: b.address, port: LINE_PORT, socket: { data() {} } });
          s.end();
          return true;
        } catch {
          return undefined;
        }
      }, { timeoutMs: 30_000 });
    }
    daemon = await startDaemon({ port: API_PORT, flags: ["--vip-interface", "lo", "--no-state", "-v"] });
  });

  afterAll(async () => {
    if (process.env.GORB_RIG !== "1") return;
    await daemon?.stop().catch(() => daemon?.kill());
    for (const s of servers) s.kill("SIGKILL");
    ipvsadm("-C");
    await destroyBackends(backends);
    removeVip(VIP);
  });

  test("gorb sets the IPVS sysctls at start and reports them; sh services get sh-fallback", async () => {
    await withLog(async () => {
      expect(run(["/bin/busybox", "cat", "/proc/sys/net/ipv4/vs/expire_nodest_conn"]).trim()).toBe("1");
      expect(run(["/bin/busybox", "cat", "/proc/sys/net/ipv4/vs/expire_quiescent_template"]).trim()).toBe("1");
      const metrics = (await call("GET", "/metrics", undefined, 200)).text;
      expect(metrics).toContain('gorb_ipvs_sysctl{name="expire_nodest_conn"} 1');
      expect(metrics).toMatch(/gorb_ipvs_sysctl\{name="conn_reuse_mode"\} \d/);
      await call("PUT", "/service/hash", { host: VIP, port: 9010, method: "sh" }, 200);
      expect(serviceByKey(listIpvs("default"), `TCP ${VIP}:9010`)?.schedFlags).toEqual(["sh-fallback"]);
      await call("DELETE", "/service/hash", undefined, 200);
    });
  });

  test("drain: no new connection reaches the backend, its connections still talk, it is removed when the last one closes", async () => {
    await withLog(async () => {
      const port = 9001;
      await createService("d1", port, [["b1", be1], ["b2", be2]]);
      const held = await openSpread(port, 4);
      const onB1 = held.filter((c) => c.backend === be1.name);
      expect(onB1.length).toBeGreaterThanOrEqual(1);
      const timeline = new Timeline();
      const events = followDrainEvents(timeline);
      timeline.mark(`${onB1.length} connection(s) open on b1 (${be1.name}), ${held.length - onB1.length} on b2`);
      const drain = await call("POST", "/service/d1/b1/drain", { timeout: "5m", then: "remove" }, 200);
      timeline.mark(`POST drain answered: ${JSON.stringify(drain.json)}`);
      expect(kernelDests(port).get(`${be1.address}:${LINE_PORT}`)?.weight).toBe(0);

      const fresh = await openSpread(port, 6);
      expect(fresh.map((c) => c.backend)).toEqual(Array(6).fill(be2.name));
      timeline.mark("6 new connections: all on b2");
      for (const c of fresh) c.reset();
      for (const c of onB1) expect(await c.ask()).toBe(be1.name);
      timeline.mark("b1's connections still answer");
      const show = (await call("GET", "/service/d1/b1", undefined, 200)).json as Record<string, unknown>;
      expect(show).toMatchObject({ effective_weight: 0, drain: { state: "draining", then: "remove" } });

      for (const [i, c] of onB1.entries()) {
        c.reset();
        timeline.mark(`closed b1 connection ${i + 1} of ${onB1.length}`);
        expect(kernelDests(port).has(`${be1.address}:${LINE_PORT}`)).toBe(true); // not before its entries are gone
      }
      await pollUntil("b1 removed from the kernel", () => (kernelDests(port).has(`${be1.address}:${LINE_PORT}`) ? undefined : true), {
        timeoutMs: WAIT_MS,
        everyMs: 100,
        describe: () => JSON.stringify([...kernelDests(port)]),
      });
      timeline.mark("ipvsadm -Ln: b1 gone");
      expect((await api().request("GET", "/service/d1/b1")).status).toBe(404);
      events.stop();
      for (const c of held) if (c.backend !== be1.name) c.reset();
      timeline.print("drain timeline (then remove; connections closed with a reset):");
    });
  }, 180_000);

  test("a connection that never closes: the backend is removed at the deadline, and the connection is cut", async () => {
    await withLog(async () => {
      const port = 9002;
      await createService("d2", port, [["b1", be1], ["b2", be2]]);
      const conns = await openSpread(port, 2);
      const stuck = conns.find((c) => c.backend === be1.name);
      if (stuck === undefined) throw new Error(`no connection landed on b1: ${conns.map((c) => c.backend).join(", ")}`);
      const timeline = new Timeline();
      const events = followDrainEvents(timeline);
      const drain = (await call("POST", "/service/d2/b1/drain", { timeout: "15s" }, 200)).json as { deadline: string };
      const deadline = Date.parse(drain.deadline);
      timeline.mark(`POST drain (timeout 15s, then remove); deadline ${drain.deadline}`);
      expect(await stuck.ask()).toBe(be1.name);
      await pollUntil("b1 removed at the deadline", () => (kernelDests(port).has(`${be1.address}:${LINE_PORT}`) ? undefined : true), {
        timeoutMs: WAIT_MS,
        everyMs: 100,
      });
      const removedAt = Date.now();
      timeline.mark("ipvsadm -Ln: b1 gone");
      expect(removedAt).toBeGreaterThanOrEqual(deadline); // the order of events, not a speed
      // expire_nodest_conn=1: the connection to the removed destination is cut; its next packet gets a reset.
      const answer = await stuck.ask().catch(() => "");
      expect(answer).toBe("");
      await pollUntil("the stuck connection closed", () => (stuck.closed ? true : undefined), { timeoutMs: WAIT_MS, everyMs: 100 });
      timeline.mark(`the held connection's next packet: closed (${stuck.error ?? "closed"})`);
      events.stop();
      for (const c of conns) if (c !== stuck) c.reset();
      timeline.print("drain timeline (a connection that never closes):");
    });
  }, 180_000);

  test("then keep: held at weight 0 and not removed; undrain restores the weight", async () => {
    await withLog(async () => {
      const port = 9003;
      await createService("d3", port, [["b1", be1], ["b2", be2]]);
      await call("POST", "/service/d3/b1/drain", { timeout: "1m", then: "keep" }, 200);
      await pollUntil("the drain held", async () => {
        const info = (await call("GET", "/service/d3/b1", undefined, 200)).json as { drain: { state: string } | null };
        return info.drain?.state === "drained" ? true : undefined;
      }, { timeoutMs: WAIT_MS });
      expect(kernelDests(port).get(`${be1.address}:${LINE_PORT}`)?.weight).toBe(0);
      const conns = await openSpread(port, 4);
      expect(conns.map((c) => c.backend)).toEqual(Array(4).fill(be2.name));
      for (const c of conns) c.reset();
      await call("DELETE", "/service/d3/b1/drain", undefined, 200);
      expect(kernelDests(port).get(`${be1.address}:${LINE_PORT}`)?.weight).toBe(100);
    });
  }, 180_000);

  test("maintenance: weight 0 through health passes; off brings the weight back", async () => {
    await withLog(async () => {
      const port = 9004;
      await createService("m", port, [["b1", be1], ["b2", be2]]);
      await pollUntil("b1 up", async () => {
        const info = (await call("GET", "/service/m/b1", undefined, 200)).json as { metrics: { state: string } };
        return info.metrics.state === "up" ? true : undefined;
      }, { timeoutMs: WAIT_MS });
      await call("PATCH", "/service/m/b1", { maintenance: true }, 200);
      expect(kernelDests(port).get(`${be1.address}:${LINE_PORT}`)?.weight).toBe(0);
      // Health checks keep running and passing (1 s interval) while the weight stays 0: wait until b1 has been up
      // for three more seconds (three more passing checks), asserting it stays up meanwhile.
      const checks = new Set<string>();
      await pollUntil("three more health checks", async () => {
        const info = (await call("GET", "/service/m/b1", undefined, 200)).json as { metrics: { state: string; uptime: number } };
        expect(info.metrics.state).toBe("up");
        checks.add(String(info.metrics.uptime));
        return checks.size >= 4 ? true : undefined;
      }, { timeoutMs: WAIT_MS, everyMs: 300 });
      expect(kernelDests(port).get(`${be1.address}:${LINE_PORT}`)?.weight).toBe(0);
      const conns = await openSpread(port, 4);
      expect(conns.map((c) => c.backend)).toEqual(Array(4).fill(be2.name));
      for (const c of conns) c.reset();
      await call("PATCH", "/service/m/b1", { maintenance: false }, 200);
      expect(kernelDests(port).get(`${be1.address}:${LINE_PORT}`)?.weight).toBe(100);
    });
  }, 180_000);
});
