/**
 * Health-driven weights and failover at random, with fixed seeds (a failure names its seed and step and lists the
 * steps before it). One gorb over the memory driver, driven through the REST API's handler, a hand-driven clock
 * (slow-start ramps and drain deadlines move only when a step moves time) and the fake health checks. Steps: check
 * results (up, down, the same result again as after a check error), time, PATCHes of weights, maintenance and
 * slow starts, drains (then keep or remove; connections ending, deadlines passing) and undrains, service settings
 * (quorum, hysteresis, panic threshold, sorry server, scheduler), backends created and deleted, POST /reconcile, and
 * now and then a kernel refusing an operation of a request.
 *
 * After each step, with gorb idle, a small model of README's rules (written from README, not from gorb's code)
 * says what the kernel must hold: each backend's weight from its configured weight, health (down: 0; recovering:
 * configured × max(health, passes in a row / 10), at least 1), panic mode, maintenance, drain and slow-start ramp,
 * and the sorry server exactly while the service is below quorum (with hysteresis). GET /service/web and its
 * backends agree with it (so no backend leaves the kernel unless deleted or drained with then: remove), every kernel
 * weight change has its backend.weight events, every quorum change its service.quorum event and hook, a refused
 * request (500) changes nothing, and a reconcile finds nothing to repair. A refusal during a health batch follows
 * README: the sorry server refused, the service stays up; a weight refused while leaving sorry mode, it stays down;
 * any other weight refused, a reconcile repairs it.
 */
import { describe, expect, test } from "bun:test";
import { createApp } from "../../../src/api/app.ts";
import type { GorbEvent } from "../../../src/core/events.ts";
import type { ApplyResult } from "../../../src/ipvs/driver.ts";
import type { IpvsOperation } from "../../../src/ipvs/errors.ts";
import type { Destination, DestinationConfig, ServiceKey } from "../../../src/ipvs/types.ts";
import { MemoryIpvsDriver } from "../../../src/ipvs/memory-driver.ts";
import { Draw, brokenSeeds, seedRange } from "../../helpers/random.ts";
import { makeGorb } from "../core/fakes.ts";
import { ManualClock } from "../health/_manual-clock.ts";

/** Sequences run (seeds FIRST..FIRST+SEEDS-1) and steps in each; GORB_HEALTH_SEEDS=1000 explores more (about 60 s). */
const SEEDS = Number(process.env.GORB_HEALTH_SEEDS ?? 30);
const FIRST_SEED = Number(process.env.GORB_HEALTH_FIRST_SEED ?? 1);
const STEPS = Number(process.env.GORB_HEALTH_STEPS ?? 80);

const WALL_START = Date.parse("2026-06-01T12:00:00Z");
const VIP = { host: "10.0.0.1", port: 80 };
const HOOK_UP = "/etc/gorb/hooks/up";
const HOOK_DOWN = "/etc/gorb/hooks/down";
const BACKEND_IDS = ["b1", "b2", "b3", "b4", "b5"];
const SORRY_HOSTS = ["10.9.0.1", "10.9.0.2"];
const hostOf = (id: string) => `10.1.0.${id.slice(1)}`;

// ---- the model: README's rules ------------------------------------------------------------------------------

type State = "unknown" | "up" | "down";

interface ModelDrain {
  phase: "draining" | "drained";
  then: "keep" | "remove";
  deadline: number;
}

interface ModelBackend {
  readonly id: string;
  readonly none: boolean;
  weight: number;
  state: State;
  /** The last check's facts: results in the window, passes among them, passes in a row. */
  samples: number;
  ok: number;
  streak: number;
  /** The weight health earned ("Weights" in README) and whether it is still recovering. */
  earned: number;
  recovering: boolean;
  maintenance: boolean;
  drain: ModelDrain | null;
  slowMs: number;
  rampStart: number | null;
}

interface ModelService {
  quorum: number;
  hysteresis: number;
  panicThreshold: number;
  sorry: { host: string; port: number } | null;
  /** The service has quorum_up and quorum_down hooks: with quorum 0 they alone make it q = 1 (README). */
  hooks: boolean;
  method: string;
  up: boolean;
  panic: boolean;
  readonly backends: Map<string, ModelBackend>;
}

/**
 * README "Weights": down 0; back up, configured × max(health, passes in a row / 10), at least 1; configured 0 stays
 * 0. `kept`: panic mode keeps the weight of this down backend (a PATCH gives it its configured weight, a recovering
 * one keeps its partial weight, never above the configured one).
 */
function earn(b: ModelBackend, kept = false): void {
  if (kept) {
    b.earned = b.recovering ? Math.min(b.earned, b.weight) : b.weight;
  } else if (b.none) {
    b.earned = b.weight;
    b.recovering = false;
  } else if (b.state === "down") {
    b.earned = 0;
    b.recovering = true;
  } else if (b.state === "unknown") {
    b.earned = b.recovering ? Math.min(b.earned, b.weight) : b.weight;
  } else if (!b.recovering || b.weight === 0 || b.streak >= 10 || b.ok >= b.samples) {
    b.earned = b.weight;
    b.recovering = false;
  } else {
    const earned = Math.max(1, Math.floor((b.weight * b.ok) / b.samples), Math.floor((b.weight * b.streak) / 10));
    b.earned = Math.min(earned, b.weight);
    b.recovering = earned < b.weight;
  }
}

/** README "Slow start": configured × elapsed / slow_start, rounded down, at least 1, until it is over; null: no cap. */
function rampCap(b: ModelBackend, now: number): number | null {
  if (b.rampStart === null) return null;
  const elapsed = now - b.rampStart;
  if (b.slowMs <= 0 || b.weight <= 0 || elapsed >= b.slowMs) {
    b.rampStart = null;
    return null;
  }
  return Math.max(1, Math.floor((b.weight * elapsed) / b.slowMs));
}

function startRamp(b: ModelBackend, now: number): void {
  b.rampStart = b.slowMs > 0 && b.weight > 0 ? now : null;
}

/** README "Quorum": healthy (passed or pulse none, weight > 0, no maintenance, no drain) and pending counts. */
function counts(s: ModelService): { healthy: number; pending: number } {
  let healthy = 0;
  let pending = 0;
  for (const b of s.backends.values()) {
    if (b.weight <= 0 || b.maintenance || b.drain !== null) continue;
    if (b.none || b.state === "up") healthy++;
    else if (b.state === "unknown") pending++;
  }
  return { healthy, pending };
}

/** Panic mode: more than panic_threshold percent of the backends down (a pulse none is never down). */
function panicNow(s: ModelService): boolean {
  const down = [...s.backends.values()].filter((b) => !b.none && b.state === "down").length;
  return s.panicThreshold > 0 && s.backends.size > 0 && down * 100 > s.panicThreshold * s.backends.size;
}

/** Panic re-evaluated: leaving it drains the down backends it kept. */
function evaluatePanic(s: ModelService): void {
  const now = panicNow(s);
  if (s.panic && !now) for (const b of s.backends.values()) if (b.state === "down") earn(b);
  s.panic = now;
}

/** Quorum re-evaluated with hysteresis; true when the state flipped. */
function evaluateQuorum(s: ModelService): boolean {
  const rule = s.quorum > 0 ? { q: s.quorum, h: s.hysteresis } : s.sorry !== null || s.hooks ? { q: 1, h: 0 } : null;
  const c = counts(s);
  const up = rule === null ? true : s.up ? c.healthy + c.pending >= rule.q - rule.h : c.healthy >= rule.q + rule.h;
  const flipped = up !== s.up;
  s.up = up;
  return flipped;
}

/** What the kernel must hold for the service: "address:port" → weight. */
function expectedKernel(s: ModelService, now: number): Map<string, number> {
  const out = new Map<string, number>();
  const sorry = s.sorry !== null && !s.up;
  for (const b of s.backends.values()) {
    const cap = rampCap(b, now);
    const held = sorry || b.maintenance || b.drain !== null ? 0 : Math.min(b.earned, cap ?? Number.POSITIVE_INFINITY);
    out.set(`${hostOf(b.id)}:${VIP.port}`, held);
  }
  if (sorry && s.sorry !== null) out.set(`${s.sorry.host}:${s.sorry.port}`, 1);
  return out;
}

// ---- the stack ----------------------------------------------------------------------------------------------

/** The memory driver, every destination holding a connection unless the test says its connections ended. */
class BusyDriver extends MemoryIpvsDriver {
  readonly idle = new Set<string>();
  override async listDestinations(service: ServiceKey): Promise<Destination[]> {
    return (await super.listDestinations(service)).map((d) => (this.idle.has(d.address) ? d : { ...d, activeConns: 1 }));
  }
  /**
   * Consume a refusal armed with failNext() that nothing used (an operation on a service that does not exist); true
   * when it was still armed.
   */
  async disarm(op: IpvsOperation): Promise<boolean> {
    const service: ServiceKey = { family: "inet", address: "10.255.255.1", port: 1, protocol: "tcp" };
    const destination: DestinationConfig = { family: "inet", address: "10.255.255.2", port: 1, forward: "nat", weight: 1, upperThreshold: 0, lowerThreshold: 0, tunnel: null };
    const any = this.peek()[0]?.service;
    let result: ApplyResult = [];
    if (op === "update-service" && any !== undefined) result = await this.apply([{ op, service: { ...any, key: service } }]);
    if (op === "add-destination" || op === "update-destination" || op === "delete-destination") result = await this.apply([{ op, service, destination }]);
    return result[0] !== undefined && result[0] !== null && result[0].code !== "ESRCH";
  }
}

function setup() {
  const clock = new ManualClock();
  const driver = new BusyDriver();
  const hooks: string[] = [];
  const stack = makeGorb({ driver, clock, now: () => WALL_START + clock.now(), drainPollMs: 2, hooks: (program, env) => hooks.push(`${program} ${env.GORB_STATE}`) });
  const events: GorbEvent[] = [];
  stack.gorb.events.subscribe((e) => events.push(e));
  const app = createApp({ gorb: stack.gorb, logger: stack.logger });
  return { ...stack, driver, clock, hooks, events, app };
}
type Stack = ReturnType<typeof setup>;

async function send(s: Stack, method: string, path: string, body?: unknown) {
  const init: RequestInit = { method };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await s.app.handle(new Request(`http://gorb.test${path}`, init));
  const text = await response.text();
  return { status: response.status, text };
}

/** The kernel's destinations of the service, "address:port" → weight. */
function kernel(s: Stack): Map<string, number> {
  const svc = s.driver.peek().find((x) => "address" in x.service.key && x.service.key.address === VIP.host);
  return new Map((svc?.destinations ?? []).map((d) => [`${d.address}:${d.port}`, d.weight]));
}

const show = (m: ReadonlyMap<string, number>) => JSON.stringify([...m].sort());

/** Resolves with the first backend.drain event of `phase` for `backend` from now on, or "none" after 3 s. */
function drainEnd(s: Stack, backend: string): Promise<string> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      sub.unsubscribe();
      resolve("none");
    }, 3000);
    const sub = s.gorb.events.subscribe((e) => {
      if (e.type !== "backend.drain" || e.data.backend !== backend || (e.data.phase !== "drained" && e.data.phase !== "timeout")) return;
      clearTimeout(timer);
      sub.unsubscribe();
      resolve(e.data.phase);
    });
  });
}

// ---- the run ------------------------------------------------------------------------------------------------

class Run {
  readonly s = setup();
  readonly model: ModelService = { quorum: 0, hysteresis: 0, panicThreshold: 0, sorry: null, hooks: false, method: "wrr", up: true, panic: false, backends: new Map() };
  readonly log: string[] = [];
  #lastReport: { id: string; status: "up" | "down"; samples: number; ok: number; streak: number } | null = null;

  constructor(readonly draw: Draw) {}

  get now(): number {
    return this.s.clock.now();
  }

  /** A model change after an accepted edit: panic, then quorum re-evaluated. */
  settle(): void {
    evaluatePanic(this.model);
    evaluateQuorum(this.model);
  }

  /** A request whose success the model then applies; a refusal changes nothing. The problem, or null. */
  async request(method: string, path: string, body: unknown, apply: () => void, refusal: IpvsOperation | null): Promise<string | null> {
    const before = show(kernel(this.s));
    const reply = await send(this.s, method, path, body);
    await this.s.gorb.idle();
    this.log.push(`${method} ${path} ${body === undefined ? "" : JSON.stringify(body)} -> ${reply.status}${refusal === null ? "" : ` (kernel refuses ${refusal})`}`);
    if (reply.status === 200) {
      apply();
      return null;
    }
    if (reply.status >= 500 && (refusal === null || !reply.text.includes('"KERNEL"'))) return `${reply.status} ${reply.text}`;
    if (show(kernel(this.s)) !== before) return `${reply.status} ${reply.text} changed the kernel: ${before} -> ${show(kernel(this.s))}`;
    return reply.status >= 500 ? null : `${reply.status} ${reply.text}`;
  }

  backend(id: string): ModelBackend | undefined {
    return this.model.backends.get(id);
  }

  async create(id: string, refusal: IpvsOperation | null): Promise<string | null> {
    const d = this.draw;
    const none = d.chance(0.2);
    const body: Record<string, unknown> = { host: hostOf(id), weight: d.pick([0, 1, 3, 100, 100]), pulse: none ? { type: "none" } : { type: "tcp" } };
    if (d.chance(0.4)) body.slow_start = d.pick(["2s", "3s", "5s"]);
    if (d.chance(0.15)) body.maintenance = true;
    return this.request("PUT", `/service/web/${id}`, body, () => {
      const b: ModelBackend = {
        id,
        none,
        weight: body.weight as number,
        state: none ? "up" : "unknown",
        samples: none ? 1 : 0,
        ok: none ? 1 : 0,
        streak: none ? 1 : 0,
        earned: body.weight as number,
        recovering: false,
        maintenance: body.maintenance === true,
        drain: null,
        slowMs: body.slow_start === undefined ? 0 : Number((body.slow_start as string).slice(0, -1)) * 1000,
        rampStart: null,
      };
      startRamp(b, this.now);
      this.model.backends.set(id, b);
      this.settle();
    }, refusal);
  }

  /** A check's result for a checked backend, as the monitor sends it; `again`: the last one once more. */
  async report(again: boolean): Promise<string | null> {
    const d = this.draw;
    const checked = [...this.model.backends.values()].filter((b) => !b.none);
    if (checked.length === 0) return null;
    let r = this.#lastReport;
    if (!again || r === null || this.backend(r.id) === undefined) {
      const b = d.pick(checked);
      const status = d.chance(0.5) ? "up" : "down";
      const samples = b.samples >= 100 ? 100 : b.samples + 1;
      const ok = status === "up" ? Math.min(samples, d.pick([samples, samples - 1, Math.floor(samples / 2), 1])) : Math.max(0, Math.min(samples - 1, d.int(samples)));
      const streak = status === "up" ? d.pick([1, 2, 5, 9, 10, 12]) : 0;
      r = { id: b.id, status, samples, ok, streak };
    }
    this.#lastReport = r;
    // Now and then the kernel refuses the sorry server's add or a weight of the batch.
    const refusal = !again && this.draw.chance(0.15) ? this.draw.pick(["add-destination", "update-destination"] as const) : null;
    if (refusal !== null) this.s.driver.failNext(refusal, "EIO");
    this.log.push(`health ${r.id} ${r.status} ${r.ok}/${r.samples} streak ${r.streak}${again ? " (again)" : ""}${refusal === null ? "" : ` (kernel refuses ${refusal})`}`);
    this.s.health.report("web", r.id, r.status, { samples: r.samples, samplesOk: r.ok, consecutiveOk: r.streak });
    await this.s.gorb.idle();
    const refused = refusal !== null && !(await this.s.driver.disarm(refusal));
    const m = this.model;
    const b = this.backend(r.id) as ModelBackend;
    const wasDown = b.state === "down";
    const earnedBefore = b.earned;
    const sorryBefore = m.sorry !== null && !m.up;
    Object.assign(b, { state: r.status, samples: r.samples, ok: r.ok, streak: r.streak });
    evaluatePanic(m);
    earn(b, m.panic && b.state === "down");
    if (wasDown && b.state === "up" && earnedBefore === 0) startRamp(b, this.now);
    evaluateQuorum(m);
    if (!refused) return null;
    const sorryAfter = m.sorry !== null && !m.up;
    // README: the sorry server refused, the service stays up with its backends' weights; a backend's weight refused
    // while leaving sorry mode, the sorry server stays and the service stays down (its next check tries again).
    if (!sorryBefore && sorryAfter && refusal === "add-destination") m.up = true;
    else if (sorryBefore && !sorryAfter && refusal === "update-destination") m.up = false;
    else if (refusal === "update-destination") {
      // Any other weight refused: the kernel keeps the old one until a write repairs it; a reconcile does.
      this.log.push("  a weight was refused: POST /reconcile repairs it");
      const reply = await send(this.s, "POST", "/reconcile");
      await this.s.gorb.idle();
      if (reply.status !== 200) return `reconcile: ${reply.status} ${reply.text}`;
    } else return `the kernel refused ${refusal}, which no change of this step needed`;
    return null;
  }

  /** Time moves on a second at a time; drains whose deadline passes end. */
  async tick(seconds: number): Promise<string | null> {
    this.log.push(`time +${seconds}s`);
    for (let i = 0; i < seconds; i++) {
      const due = [...this.model.backends.values()].filter((b) => b.drain?.phase === "draining" && b.drain.deadline <= WALL_START + this.now + 1000);
      const ends = due.map((b) => drainEnd(this.s, b.id));
      await this.s.clock.advance(1000);
      for (const [j, end] of ends.entries()) {
        const b = due[j] as ModelBackend;
        if ((await end) !== "timeout") return `the drain of ${b.id} did not time out at its deadline`;
        this.endDrain(b);
      }
      await this.s.gorb.idle();
    }
    return null;
  }

  endDrain(b: ModelBackend): void {
    if (b.drain?.then === "remove") this.model.backends.delete(b.id);
    else if (b.drain !== null) b.drain.phase = "drained";
    this.settle();
  }

  /** One random step; the problem found, or null. */
  async step(): Promise<string | null> {
    const d = this.draw;
    const kind = d.int(20);
    if (kind < 6) return this.report(kind === 5);
    if (kind < 8) return this.tick(1 + d.int(3));
    if (kind === 8) return this.reconcile();
    const refusal: IpvsOperation | null = d.chance(0.15) ? d.pick(["update-destination", "add-destination", "delete-destination", "update-service"] as const) : null;
    if (refusal !== null) this.s.driver.failNext(refusal, d.pick(["EPERM", "EIO", "ENOMEM"] as const));
    try {
      return await this.edit(kind, refusal);
    } finally {
      if (refusal !== null) await this.s.driver.disarm(refusal);
    }
  }

  async reconcile(): Promise<string | null> {
    const reply = await send(this.s, "POST", "/reconcile");
    await this.s.gorb.idle();
    this.log.push(`POST /reconcile -> ${reply.status}`);
    const repairs = (JSON.parse(reply.text) as { repairs?: unknown[] }).repairs ?? [];
    return reply.status === 200 && repairs.length === 0 ? null : `reconcile: ${reply.status} ${reply.text}`;
  }

  async edit(kind: number, refusal: IpvsOperation | null): Promise<string | null> {
    const d = this.draw;
    const id = d.pick(BACKEND_IDS);
    const b = this.backend(id);
    if (kind < 14 && b === undefined) return this.create(id, refusal);
    if (kind < 11 && b !== undefined) {
      const patch: Record<string, unknown> = {};
      const what = d.int(3);
      if (what === 0) patch.weight = d.pick([0, 1, 2, 50, 100]);
      if (what === 1) patch.maintenance = !b.maintenance;
      if (what === 2) patch.slow_start = d.pick(["2s", "4s", null]);
      return this.request("PATCH", `/service/web/${id}`, patch, () => {
        const released = (b.weight === 0 && (patch.weight as number) > 0) || (b.maintenance && patch.maintenance === false);
        if (patch.weight !== undefined) b.weight = patch.weight as number;
        if (patch.maintenance !== undefined) b.maintenance = patch.maintenance as boolean;
        if (patch.slow_start !== undefined) b.slowMs = patch.slow_start === null ? 0 : Number((patch.slow_start as string).slice(0, -1)) * 1000;
        earn(b, this.model.panic && b.state === "down" && !b.none);
        if (released) startRamp(b, this.now);
        this.settle();
      }, refusal);
    }
    if (kind < 12 && b !== undefined) {
      const then = d.pick(["keep", "remove"] as const);
      const timeout = d.pick([2, 3, 3600]);
      return this.request("POST", `/service/web/${id}/drain`, { timeout: `${timeout}s`, then }, () => {
        b.drain = { phase: "draining", then, deadline: WALL_START + this.now + timeout * 1000 };
        this.settle();
      }, refusal);
    }
    if (kind < 13 && b !== undefined) {
      if (b.drain?.phase === "draining" && refusal === null) return this.connectionsEnd(b);
      // Nothing to cancel is fine, and changes nothing (README: Routes).
      return this.request("DELETE", `/service/web/${id}/drain`, undefined, () => {
        if (b.drain === null) return;
        startRamp(b, this.now);
        b.drain = null;
        this.settle();
      }, refusal);
    }
    if (kind < 14 && b !== undefined) {
      return this.request("DELETE", `/service/web/${id}`, undefined, () => {
        this.model.backends.delete(id);
        this.settle();
      }, refusal);
    }
    return this.serviceEdit(refusal);
  }

  /** The kernel shows no connection to a draining backend any more: the drain ends. */
  async connectionsEnd(b: ModelBackend): Promise<string | null> {
    this.log.push(`connections of ${b.id} end`);
    const end = drainEnd(this.s, b.id);
    this.s.driver.idle.add(hostOf(b.id));
    const how = await end;
    this.s.driver.idle.delete(hostOf(b.id));
    await this.s.gorb.idle();
    if (how !== "drained") return `the drain of ${b.id} did not end when its connections did`;
    this.endDrain(b);
    return null;
  }

  async serviceEdit(refusal: IpvsOperation | null): Promise<string | null> {
    const d = this.draw;
    const m = this.model;
    const patch: Record<string, unknown> = {};
    const what = d.int(5);
    if (what === 0) {
      patch.quorum = d.int(4);
      patch.hysteresis = Math.min(d.int(2), Math.max(0, (patch.quorum as number) - 1));
    }
    if (what === 1) patch.panic_threshold = d.pick([0, 25, 50, 75]);
    if (what === 2) patch.sorry_server = d.chance(0.3) ? null : { host: d.pick(SORRY_HOSTS), port: d.pick([80, 8080]) };
    if (what === 3) patch.method = d.pick(["wrr", "rr", "lc", "sh", "mh"]);
    if (what === 4) patch.hysteresis = d.int(3);
    const valid = patch.hysteresis === undefined || (patch.hysteresis as number) === 0 || (patch.hysteresis as number) < ((patch.quorum as number | undefined) ?? m.quorum);
    const problem = await this.request("PATCH", "/service/web", patch, () => {
      if (patch.quorum !== undefined) m.quorum = patch.quorum as number;
      if (patch.hysteresis !== undefined) m.hysteresis = patch.hysteresis as number;
      if (patch.panic_threshold !== undefined) m.panicThreshold = patch.panic_threshold as number;
      if (patch.sorry_server !== undefined) m.sorry = patch.sorry_server as ModelService["sorry"];
      if (patch.method !== undefined) m.method = patch.method as string;
      this.settle();
    }, refusal);
    if (problem !== null && !valid && problem.startsWith("400 ") && /"field": ?"hysteresis"/.test(problem)) return null;
    return problem === null && !valid ? "a hysteresis not below quorum was accepted" : problem;
  }

  /** Every invariant after a step; the problem found, or null. */
  async check(quorumBefore: boolean, weightsBefore: Map<string, number>, events: GorbEvent[], hooks: string[]): Promise<string | null> {
    const s = this.s;
    const m = this.model;
    const want = expectedKernel(m, this.now);
    const have = kernel(s);
    if (show(want) !== show(have)) return `kernel ${show(have)}, README's rules say ${show(want)} (model ${JSON.stringify({ ...m, backends: [...m.backends.values()] })})`;
    const svc = JSON.parse((await send(s, "GET", "/service/web")).text) as Record<string, unknown>;
    const { healthy } = counts(m);
    const view = { panic: svc.panic, quorum_up: svc.quorum_up, sorry: svc.sorry, healthy: svc.healthy, backends: [...(svc.backends as string[])].sort() };
    const wanted = { panic: m.panic, quorum_up: m.up, sorry: m.sorry !== null && !m.up, healthy, backends: [...m.backends.keys()].sort() };
    if (JSON.stringify(view) !== JSON.stringify(wanted)) return `GET /service/web shows ${JSON.stringify(view)}, the model ${JSON.stringify(wanted)}`;
    for (const b of m.backends.values()) {
      const got = JSON.parse((await send(s, "GET", `/service/web/${b.id}`)).text) as {
        effective_weight: number;
        options: { weight: number; maintenance: boolean };
        metrics: { state: string };
        drain: { state: string; then: string } | null;
      };
      const shown = { effective: got.effective_weight, weight: got.options.weight, maintenance: got.options.maintenance, state: got.metrics.state, drain: got.drain === null ? null : `${got.drain.state} ${got.drain.then}` };
      const expected = { effective: want.get(`${hostOf(b.id)}:${VIP.port}`), weight: b.weight, maintenance: b.maintenance, state: b.state, drain: b.drain === null ? null : `${b.drain.phase} ${b.drain.then}` };
      if (JSON.stringify(shown) !== JSON.stringify(expected)) return `GET /service/web/${b.id} shows ${JSON.stringify(shown)}, the model ${JSON.stringify(expected)}`;
    }
    // Each backend's weight change in the kernel is told by backend.weight events, from the old weight to the new.
    for (const [dest, weight] of have) {
      const before = weightsBefore.get(dest);
      const id = [...m.backends.keys()].find((b) => `${hostOf(b)}:${VIP.port}` === dest);
      if (before === undefined || id === undefined) continue;
      const chain = events.flatMap((e) => (e.type === "backend.weight" && e.data.backend === id ? [e.data] : []));
      if (before === weight && chain.length === 0) continue;
      const first = chain[0];
      const last = chain.at(-1);
      if (first?.from !== before || last?.to !== weight) return `${id}: weight ${before} -> ${weight} in the kernel, backend.weight events ${JSON.stringify(chain)}`;
    }
    const quorum = events.flatMap((e) => (e.type === "service.quorum" ? [e.data.up] : []));
    const flipped = quorumBefore !== m.up;
    if (JSON.stringify(quorum) !== JSON.stringify(flipped ? [m.up] : [])) return `quorum ${quorumBefore} -> ${m.up}, service.quorum events ${JSON.stringify(quorum)}`;
    const hook = flipped && m.hooks ? [m.up ? `${HOOK_UP} up` : `${HOOK_DOWN} down`] : [];
    if (JSON.stringify(hooks) !== JSON.stringify(hook)) return `quorum ${quorumBefore} -> ${m.up}, hooks run ${JSON.stringify(hooks)}`;
    return null;
  }
}

async function runSequence(seed: number): Promise<string | null> {
  const run = new Run(new Draw(seed));
  const s = run.s;
  // Half the runs have hooks, which with quorum 0 make the service q = 1 (down without backends, from its creation).
  run.model.hooks = run.draw.chance(0.5);
  const created = await send(s, "PUT", "/service/web", { ...VIP, ...(run.model.hooks ? { quorum_up: HOOK_UP, quorum_down: HOOK_DOWN } : {}) });
  if (created.status !== 200) return `seed ${seed}: setup: ${created.status} ${created.text}`;
  evaluateQuorum(run.model);
  try {
    for (let step = 0; step < STEPS; step++) {
      const quorumBefore = run.model.up;
      const weightsBefore = kernel(s);
      s.events.length = 0;
      s.hooks.length = 0;
      const problem = (await run.step()) ?? (await run.check(quorumBefore, weightsBefore, s.events, s.hooks));
      run.log.push(`  = ${[...kernel(s)].map(([dest, weight]) => `${dest.replace(/^10\.1\.0\.(\d+):80$/, "b$1")} ${weight}`).join(", ")}`);
      if (problem !== null) return `seed ${seed} step ${step}: ${problem}\nsteps:\n  ${run.log.join("\n  ")}`;
    }
    return null;
  } finally {
    await s.gorb.close();
  }
}

describe("health-driven weights and failover at random (fixed seeds)", () => {
  test(`${SEEDS} sequences of ${STEPS} steps keep README's rules`, async () => {
    expect(await brokenSeeds(seedRange(FIRST_SEED, SEEDS), runSequence)).toEqual([]);
  }, 20_000 + SEEDS * 1000);
});
