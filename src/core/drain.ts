/**
 * Drains and maintenance, the pure part: the operator overrides that health checks cannot undo, and the
 * decisions of a drain's state machine. No timers and no I/O here; ./drain-watch.ts reads the kernel's
 * connection counts and acts on these decisions under gorb's lock.
 *
 * A drain (POST /service/:service/:backend/drain) sets the backend's effective weight to 0 at once, then waits
 * until the kernel shows no active and no inactive connection to its destination, or until its deadline; then
 * the backend is removed (then = "remove") or held at weight 0 (then = "keep", phase "drained") until the drain
 * is cancelled. Maintenance (the backend field `maintenance: true`) holds the weight at 0 as long as it is set.
 * Both sit on top of the health policy's weight (./health-weights.ts keeps stepping it, so the weight the
 * backend returns to is the one its health earned meanwhile).
 *
 * Protocol policy: a UDP service has no connection end to wait for (its entries only expire), so its drains end
 * at once. The deadline is absolute (epoch ms) and stored with the desired state, so a restart resumes a drain.
 *
 * Fleet (--store etcd://): the drain is desired state, shared by every node, which all set the weight to 0.
 * The node that started it (`node`) decides its end: at the deadline, or once its own kernel shows no connection
 * AND every other live node says the same of its own (each publishes its counts of the drains it watches in its
 * membership record, ../store/membership.ts): with anycast VIPs the backend's connections are spread over the
 * nodes, and removing it when only the starting node's have ended would cut the others'. A live node that has
 * not said (it has not seen the drain yet, or an older gorb) keeps the drain waiting, up to its deadline. The others
 * only end it themselves once they have watched it for its whole timeout plus `FLEET_GRACE_MS` (the starting node
 * is gone, say), measured on their own monotonic clock: the deadline is the starting node's wall clock, and
 * another node's clock may be far ahead of it (it would remove the backend at once) or behind.
 */
import { DRAIN, DRAIN_THEN, type DrainThen } from "../contract/fields.ts";
import { ValidationError } from "./errors.ts";
import type { BackendSpec } from "./model.ts";

/** draining: waiting for connections to end; drained: ended with then = "keep", held at weight 0. */
export const DRAIN_PHASES = ["draining", "drained"] as const;
export type DrainPhase = (typeof DRAIN_PHASES)[number];

/** A drain, as kept with the desired state. */
export interface DrainState {
  /** Epoch ms when it started. */
  readonly started: number;
  /** Epoch ms when it ends even if connections remain. */
  readonly deadline: number;
  readonly then: DrainThen;
  readonly phase: DrainPhase;
  /** The fleet node that started it (it decides the end); null on a single node. */
  readonly node: string | null;
}

/** How long after the drain's timeout (as it watched it) a node that did not start a drain ends it itself. */
const FLEET_GRACE_MS = 10_000;

/** The weight IPVS must have: 0 under maintenance or a drain, else the health policy's weight. */
export function overrideWeight(spec: Pick<BackendSpec, "maintenance">, drain: DrainState | null, healthWeight: number): number {
  return spec.maintenance || drain !== null ? 0 : healthWeight;
}

const DURATION = /^(\d+)(ms|s|sec|m|min|h|d)$/i;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, sec: 1000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000 };

/** A drain timeout ("30s", "5m", "2h", "0s") in ms; a ValidationError on `timeout` otherwise. */
function parseDrainTimeout(text: string): number {
  const match = DURATION.exec(text.trim());
  if (match === null) throw new ValidationError("timeout", `${DRAIN.timeoutProblem}, got ${JSON.stringify(text)}`);
  // Any number of digits (the contract bounds the text's length): a huge one is above the maximum, not malformed.
  const ms = Number(match[1]) * (UNIT_MS[(match[2] ?? "s").toLowerCase()] ?? 1000);
  if (ms > DRAIN.maxTimeoutMs) throw new ValidationError("timeout", `must be at most ${DRAIN.maxTimeout}, got ${JSON.stringify(text)}`);
  return ms;
}

/** What a drain request asks for, defaults filled in. */
export interface DrainRequest {
  readonly timeoutMs: number;
  readonly then: DrainThen;
}

/** A drain request from a body the contract accepted (canonical: lower-case keys, known fields only). */
export function drainRequestOf(body: Readonly<Record<string, unknown>>): DrainRequest {
  const timeout = typeof body.timeout === "string" ? body.timeout : DRAIN.timeout;
  const then = DRAIN_THEN.find((t) => t === body.then) ?? DRAIN.then;
  return { timeoutMs: parseDrainTimeout(timeout), then };
}

/** The drain a request starts at `now` on `node`. */
export function startDrain(request: DrainRequest, now: number, node: string | null): DrainState {
  return { started: now, deadline: now + request.timeoutMs, then: request.then, phase: "draining", node };
}

/** A destination's connection counts as the kernel shows them. */
export interface ConnCounts {
  readonly active: number;
  readonly inactive: number;
}

/** What a drain should do now. */
export type DrainDecision =
  /** Keep waiting. */
  | "wait"
  /** Its connections are gone (or its protocol has none to wait for): end it. */
  | "drained"
  /** The deadline passed with connections left: end it anyway. */
  | "timeout"
  /** Nothing to do: it is held ("drained" phase). */
  | "hold";

/** What decides a drain's end, besides the drain itself. */
export interface DrainFacts {
  /** The kernel's counts for the destination; null when they could not be read. */
  readonly conns: ConnCounts | null;
  readonly now: number;
  /** True for a UDP service: nothing to wait for. */
  readonly udp: boolean;
  /** This node's name in the fleet; null on a single node. */
  readonly node: string | null;
  /** How long this node has watched the drain, on its own monotonic clock (ms). */
  readonly watchedMs: number;
  /**
   * The other live nodes' counts for the drain, summed ({0, 0} on a single node); null when one of them has not
   * said (or they could not be read). Only the starting node's decision reads them.
   */
  readonly peers: ConnCounts | null;
}

/** No connection. */
export const NO_CONNS: ConnCounts = { active: 0, inactive: 0 };

function none(conns: ConnCounts): boolean {
  return conns.active + conns.inactive === 0;
}

/** The decision for `drain` (see the module comment). */
export function drainDecision(drain: DrainState, facts: DrainFacts): DrainDecision {
  if (drain.phase === "drained") return "hold";
  const mine = drain.node === null || drain.node === facts.node;
  if (!mine) return facts.watchedMs >= drain.deadline - drain.started + FLEET_GRACE_MS ? "timeout" : "wait";
  if (facts.udp) return "drained";
  if (facts.conns !== null && none(facts.conns) && facts.peers !== null && none(facts.peers)) return "drained";
  return facts.now >= drain.deadline ? "timeout" : "wait";
}

/** A drain as GET shows it. */
export interface DrainView {
  state: DrainPhase;
  started: string;
  deadline: string;
  then: DrainThen;
  seconds_left: number;
  node: string | null;
  /**
   * Fleet, on the node that started the drain: the other live nodes' connections left, as it last read them once its
   * own had ended (null: a node has not said yet). Absent on one node, on the other nodes, and before it asked.
   */
  others?: ConnCounts | null;
}

/** The view of `drain` at `now`; `others` as DrainView says (undefined: left out). */
export function drainView(drain: DrainState, now: number, others?: ConnCounts | null): DrainView {
  return {
    state: drain.phase,
    started: new Date(drain.started).toISOString(),
    deadline: new Date(drain.deadline).toISOString(),
    then: drain.then,
    seconds_left: drain.phase === "drained" ? 0 : Math.max(0, Math.ceil((drain.deadline - now) / 1000)),
    node: drain.node,
    ...(others !== undefined && drain.phase === "draining" ? { others } : {}),
  };
}

/** True when two drains (or their absence) are the same. */
export function sameDrain(a: DrainState | null, b: DrainState | null): boolean {
  if (a === null || b === null) return a === b;
  return a.started === b.started && a.deadline === b.deadline && a.then === b.then && a.phase === b.phase && a.node === b.node;
}
