/**
 * HealthMonitor: one scheduler for many health targets.
 *
 * Scheduling. Every target has exactly one entry in a min-heap keyed by time: while waiting, the time its next
 * check is due; while a check runs, that check's deadline. A single timer is armed for the earliest entry, so
 * 10,000 targets cost one pending timer, not 10,000 intervals. When the timer fires, every entry that is due
 * (within SLACK_MS) is handled: a due target starts its check, an expired deadline aborts its check and records
 * a timeout. At most `maxInFlight` checks run at once, and at most `maxFetchInFlight` of them http/https; the rest
 * queue in FIFO order and start as slots free up (their timeout only starts when they do).
 * NB: one tick handles at most `maxPerTick` entries and then yields (a zero-delay timer), so when the monitor
 * falls behind, finished checks are still collected between batches instead of waiting behind one huge batch
 * (which would inflate measured check durations and could turn slow-to-collect results into timeouts).
 *
 * Timing per target, in the monitor's clock:
 * - the first check starts after a uniformly random delay in [0, interval) (no thundering herd at startup);
 * - later checks are due one `interval` after the previous one was due (fixed rate: the original waited an
 *   interval after each *update*, so its period drifted by the check's duration); a late start does not shift the
 *   schedule, but two starts are never closer than half an interval, and checks missed while overloaded are
 *   skipped rather than fired in a burst;
 * - each check is aborted (AbortSignal) after its timeout, which options keep <= interval, and counts as failed;
 * - with back-off on, every further failure while Down doubles the wait, up to the cap; any success resets it.
 *
 * State per target: the last 100 results (health = fraction passed), consecutive pass/fail counters, and a
 * status. The status starts "unknown"; the first result decides Up or Down; after that it takes `fall`
 * consecutive failures to go Down and `rise` consecutive passes to come back Up. Uptime is whole seconds since
 * the status last became Up (0 otherwise). Every finished check emits one HealthUpdate, whether or not the
 * status changed: the weight policy needs each result while a backend recovers.
 */
import type { CheckResult, Checker } from "./checker.ts";
import { describeError, formatHostPort } from "./checker.ts";
import { type CheckerFactory, checkerFor as defaultCheckerFor } from "./checkers/for-options.ts";
import { type MonitorClock, systemClock } from "./clock.ts";
import { formatDuration } from "./duration.ts";
import { HealthWindow } from "./health-window.ts";
import { type ProbeTarget, type PulseOptions, probeTarget } from "./options.ts";
import { type HeapItem, TimerHeap } from "./timer-heap.ts";

/** HealthStatus is a target's state: unknown before its first result, then up or down. */
export type HealthStatus = "up" | "down" | "unknown";

/** HealthUpdate is emitted after every finished check of a target. */
export interface HealthUpdate {
  readonly id: string;
  readonly status: "up" | "down";
  readonly previousStatus: HealthStatus;
  /** Fraction of passed checks among the last `samples` (at most 100), in [0, 1]. */
  readonly health: number;
  /** Number of results in the window (at most 100). */
  readonly samples: number;
  /** Number of passed results in the window; health = samplesOk / samples, exactly. */
  readonly samplesOk: number;
  /** Whole seconds since the status last became Up; 0 when Down. */
  readonly uptimeSeconds: number;
  readonly lastCheck: CheckResult;
  readonly consecutiveOk: number;
  readonly consecutiveFail: number;
}

/** HealthSnapshot is a target's current state, for GET responses and metrics. */
export interface HealthSnapshot {
  readonly id: string;
  readonly backend: ProbeTarget;
  /** The address actually probed (backend with args.host/args.port applied). */
  readonly probe: ProbeTarget;
  readonly options: PulseOptions;
  readonly status: HealthStatus;
  readonly health: number;
  readonly samples: number;
  readonly samplesOk: number;
  readonly uptimeSeconds: number;
  readonly lastCheck: CheckResult | null;
  readonly consecutiveOk: number;
  readonly consecutiveFail: number;
  /** Checks finished since the target was added (or its probe last changed). */
  readonly checks: number;
  /** The current wait between check starts: the interval, or longer while backing off. */
  readonly intervalMs: number;
  /** True while a check is running. */
  readonly checking: boolean;
}

/** MonitorStats are running totals, for benchmarks and metrics. */
export interface MonitorStats {
  readonly targets: number;
  readonly inFlight: number;
  readonly queued: number;
  readonly started: number;
  readonly finished: number;
  readonly timedOut: number;
}

/** MonitorOptions wire a monitor to its listener and, for tests and benchmarks, to fake time and checkers. */
export interface MonitorOptions {
  /** Called after every finished check. It may call add/update/remove/stop. */
  onUpdate(update: HealthUpdate): void;
  /** Called when onUpdate throws; by default the error is rethrown from a microtask (it is a bug upstream). */
  onListenerError?(error: unknown, update: HealthUpdate): void;
  /** Called when a check starts, with how late it starts relative to its due time (negative: up to SLACK_MS early). */
  onCheckStart?(id: string, lateMs: number): void;
  clock?: MonitorClock;
  /** Source of jitter in [0, 1); Math.random by default. */
  random?: () => number;
  checkerFor?: CheckerFactory;
  /** Most checks running at once; default DEFAULT_MAX_IN_FLIGHT. */
  maxInFlight?: number;
  /** Most http/https checks running at once; default DEFAULT_MAX_FETCH_IN_FLIGHT. */
  maxFetchInFlight?: number;
  /** Results kept per target; default 100 (the original's window). */
  windowSize?: number;
  /** Most heap entries handled per timer tick before yielding to I/O; default DEFAULT_MAX_PER_TICK. */
  maxPerTick?: number;
}

/** DEFAULT_MAX_IN_FLIGHT bounds concurrent checks (sockets) when many targets are slow at once. */
export const DEFAULT_MAX_IN_FLIGHT = 4096;
/**
 * DEFAULT_MAX_FETCH_IN_FLIGHT matches Bun's own cap on concurrent fetch() requests (BUN_CONFIG_MAX_HTTP_REQUESTS,
 * default 256). Requests beyond it would wait inside fetch while their timeout already runs, and on loopback
 * throughput drops as concurrency grows; queueing them here keeps timeouts honest. Raise both together.
 */
export const DEFAULT_MAX_FETCH_IN_FLIGHT = 256;
/** DEFAULT_MAX_PER_TICK bounds one tick's work (starting a TCP check on loopback costs ~80µs, so ~20ms). */
export const DEFAULT_MAX_PER_TICK = 256;
/** SLACK_MS: entries due this close to now are handled in the same timer tick instead of arming another. */
export const SLACK_MS = 1;

type Phase = "waiting" | "queued" | "running";

/** Lane is one class of checks with its own concurrency limit and FIFO queue. */
class Lane {
  inFlight = 0;
  private queue: Entry[] = [];
  private head = 0;

  constructor(readonly limit: number) {}

  get queued(): number {
    return this.queue.length - this.head;
  }

  push(e: Entry): void {
    this.queue.push(e);
  }

  /** shift returns the next queued entry, or undefined; stale entries are the caller's to skip. */
  shift(): Entry | undefined {
    if (this.head >= this.queue.length) return undefined;
    const e = this.queue[this.head++];
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return e;
  }

  clear(): void {
    this.queue = [];
    this.head = 0;
  }
}

interface Entry extends HeapItem {
  readonly id: string;
  backend: ProbeTarget;
  probe: ProbeTarget;
  lane: Lane;
  options: PulseOptions;
  checker: Checker;
  phase: Phase;
  /** When the next (or current) check was due. */
  dueAt: number;
  /** When the last check started; -1 before the first. */
  startedAt: number;
  /** Bumped whenever a running check is abandoned, so its late result is ignored. */
  run: number;
  controller: AbortController | null;
  intervalMs: number;
  readonly window: HealthWindow;
  status: HealthStatus;
  consecutiveOk: number;
  consecutiveFail: number;
  upSince: number;
  lastCheck: CheckResult | null;
  checks: number;
}

/** HealthMonitor schedules checks for many targets and reports each result through onUpdate. */
export class HealthMonitor {
  private readonly entries = new Map<string, Entry>();
  private readonly heap = new TimerHeap<Entry>();
  private readonly fetchLane: Lane;
  private readonly socketLane: Lane;
  private inFlight = 0;
  private timer: unknown = null;
  private armedAt = Number.POSITIVE_INFINITY;
  private stopped = false;
  private started = 0;
  private finished = 0;
  private timedOut = 0;

  private readonly clock: MonitorClock;
  private readonly random: () => number;
  private readonly checkerFor: CheckerFactory;
  private readonly maxInFlight: number;
  private readonly windowSize: number;
  private readonly maxPerTick: number;

  constructor(private readonly hooks: MonitorOptions) {
    this.clock = hooks.clock ?? systemClock;
    this.random = hooks.random ?? Math.random;
    this.checkerFor = hooks.checkerFor ?? defaultCheckerFor;
    this.maxInFlight = hooks.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    this.windowSize = hooks.windowSize ?? 100;
    this.maxPerTick = hooks.maxPerTick ?? DEFAULT_MAX_PER_TICK;
    if (!Number.isInteger(this.maxPerTick) || this.maxPerTick < 1) {
      throw new RangeError(`maxPerTick must be a positive integer, got ${this.maxPerTick}`);
    }
    if (!Number.isInteger(this.maxInFlight) || this.maxInFlight < 1) {
      throw new RangeError(`maxInFlight must be a positive integer, got ${this.maxInFlight}`);
    }
    const maxFetch = hooks.maxFetchInFlight ?? DEFAULT_MAX_FETCH_IN_FLIGHT;
    if (!Number.isInteger(maxFetch) || maxFetch < 1) throw new RangeError(`maxFetchInFlight must be a positive integer, got ${maxFetch}`);
    this.fetchLane = new Lane(maxFetch);
    this.socketLane = new Lane(this.maxInFlight);
  }

  /** size is the number of targets. */
  get size(): number {
    return this.entries.size;
  }

  /** has says whether a target with this id exists. */
  has(id: string): boolean {
    return this.entries.has(id);
  }

  /** add starts checking a new target; its first check is after a random delay in [0, interval). */
  add(id: string, backend: ProbeTarget, options: PulseOptions): void {
    if (this.stopped) throw new Error("health monitor is stopped");
    if (this.entries.has(id)) throw new Error(`health target ${JSON.stringify(id)} already exists`);
    const entry: Entry = {
      id,
      backend,
      probe: probeTarget(backend, options),
      lane: this.laneFor(options),
      options,
      checker: this.checkerFor(options),
      phase: "waiting",
      at: 0,
      heapIndex: -1,
      dueAt: 0,
      startedAt: -1,
      run: 0,
      controller: null,
      intervalMs: options.intervalMs,
      window: new HealthWindow(this.windowSize),
      status: "unknown",
      consecutiveOk: 0,
      consecutiveFail: 0,
      upSince: Number.NaN,
      lastCheck: null,
      checks: 0,
    };
    this.entries.set(id, entry);
    this.scheduleFirst(entry);
    this.arm();
  }

  /**
   * update changes a target's address or options. When what is probed changes (type, probed address, probe
   * args), the target starts over: history dropped, status unknown, a running check abandoned, a new random
   * first delay. When only timing or thresholds change, history and status are kept and the next check is
   * re-timed from the last start with the new interval (back-off is reset).
   */
  update(id: string, backend: ProbeTarget, options: PulseOptions): void {
    const e = this.entries.get(id);
    if (e === undefined) throw new Error(`health target ${JSON.stringify(id)} does not exist`);
    const probe = probeTarget(backend, options);
    const sameProbe = options.probeKey === e.options.probeKey && probe.host === e.probe.host && probe.port === e.probe.port;
    e.backend = backend;
    if (!sameProbe) {
      this.abandon(e, "health check changed");
      e.options = options;
      e.probe = probe;
      e.lane = this.laneFor(options);
      e.checker = this.checkerFor(options);
      e.window.reset();
      e.status = "unknown";
      e.consecutiveOk = 0;
      e.consecutiveFail = 0;
      e.upSince = Number.NaN;
      e.lastCheck = null;
      e.checks = 0;
      e.startedAt = -1;
      e.intervalMs = options.intervalMs;
      this.scheduleFirst(e);
    } else {
      e.options = options;
      e.intervalMs = options.intervalMs;
      const now = this.clock.now();
      if (e.phase === "running") {
        this.heap.set(e, e.startedAt + options.timeoutMs);
      } else if (e.phase === "waiting") {
        const due = e.startedAt < 0 ? Math.min(e.dueAt, now + options.intervalMs) : Math.max(now, e.startedAt + options.intervalMs);
        e.dueAt = due;
        this.heap.set(e, due);
      }
    }
    this.drain();
    this.arm();
  }

  /** remove stops checking a target (a running check is aborted, its result dropped); false if unknown. */
  remove(id: string): boolean {
    const e = this.entries.get(id);
    if (e === undefined) return false;
    this.abandon(e, "health target removed");
    this.entries.delete(id);
    this.drain();
    this.arm();
    return true;
  }

  /** stop aborts every running check and forgets every target; the monitor cannot be used afterwards. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const e of this.entries.values()) this.abandon(e, "health monitor stopped");
    this.entries.clear();
    this.heap.clear();
    this.fetchLane.clear();
    this.socketLane.clear();
    if (this.timer !== null) this.clock.clearTimer(this.timer);
    this.timer = null;
  }

  /** snapshot returns a target's current state, or undefined for an unknown id. */
  snapshot(id: string): HealthSnapshot | undefined {
    const e = this.entries.get(id);
    if (e === undefined) return undefined;
    return {
      id,
      backend: e.backend,
      probe: e.probe,
      options: e.options,
      status: e.status,
      health: e.window.health,
      samples: e.window.samples,
      samplesOk: e.window.samplesOk,
      uptimeSeconds: this.uptimeSeconds(e, this.clock.now()),
      lastCheck: e.lastCheck,
      consecutiveOk: e.consecutiveOk,
      consecutiveFail: e.consecutiveFail,
      checks: e.checks,
      intervalMs: e.intervalMs,
      checking: e.phase === "running",
    };
  }

  /** stats returns running totals. */
  stats(): MonitorStats {
    return {
      targets: this.entries.size,
      inFlight: this.inFlight,
      queued: this.fetchLane.queued + this.socketLane.queued,
      started: this.started,
      finished: this.finished,
      timedOut: this.timedOut,
    };
  }

  private scheduleFirst(e: Entry): void {
    const due = this.clock.now() + this.random() * e.options.intervalMs;
    e.phase = "waiting";
    e.dueAt = due;
    this.heap.set(e, due);
  }

  /** arm makes sure the one timer fires no later than the earliest heap entry. */
  private arm(): void {
    if (this.stopped) return;
    const top = this.heap.peek();
    if (top === undefined) {
      if (this.timer !== null) this.clock.clearTimer(this.timer);
      this.timer = null;
      this.armedAt = Number.POSITIVE_INFINITY;
      return;
    }
    if (this.timer !== null && this.armedAt <= top.at) return;
    if (this.timer !== null) this.clock.clearTimer(this.timer);
    this.armedAt = top.at;
    this.timer = this.clock.setTimer(this.onTimer, Math.max(0, top.at - this.clock.now()));
  }

  private readonly onTimer = (): void => {
    this.timer = null;
    this.armedAt = Number.POSITIVE_INFINITY;
    if (this.stopped) return;
    const limit = this.clock.now() + SLACK_MS;
    let budget = this.maxPerTick;
    for (let top = this.heap.peek(); top !== undefined && top.at <= limit && budget > 0; top = this.heap.peek()) {
      budget--;
      this.heap.delete(top);
      if (top.phase === "running") this.expire(top);
      else this.ready(top);
    }
    this.drain();
    this.arm();
  };

  private laneFor(options: PulseOptions): Lane {
    return options.type === "http" || options.type === "https" ? this.fetchLane : this.socketLane;
  }

  private canStart(lane: Lane): boolean {
    return this.inFlight < this.maxInFlight && lane.inFlight < lane.limit;
  }

  private ready(e: Entry): void {
    if (this.canStart(e.lane)) {
      this.start(e);
    } else {
      e.phase = "queued";
      e.lane.push(e);
    }
  }

  /** drain starts queued checks while their lane and the global limit allow. */
  private drain(): void {
    for (const lane of [this.socketLane, this.fetchLane]) {
      while (!this.stopped && this.canStart(lane)) {
        const e = lane.shift();
        if (e === undefined) break;
        if (e.phase === "queued" && e.lane === lane && this.entries.get(e.id) === e) this.start(e);
      }
    }
  }

  private start(e: Entry): void {
    const now = this.clock.now();
    e.phase = "running";
    e.startedAt = now;
    const run = ++e.run;
    const controller = new AbortController();
    e.controller = controller;
    this.inFlight++;
    e.lane.inFlight++;
    this.started++;
    this.heap.set(e, now + e.options.timeoutMs);
    this.hooks.onCheckStart?.(e.id, now - e.dueAt);
    let pending: Promise<CheckResult>;
    try {
      pending = e.checker.check(e.probe, controller.signal);
    } catch (err) {
      pending = Promise.reject(err);
    }
    pending.then(
      (result) => this.finish(e, run, result),
      (err: unknown) => this.finish(e, run, { ok: false, durationMs: this.clock.now() - now, message: `checker failed: ${describeError(err)}` }),
    );
  }

  private finish(e: Entry, run: number, result: CheckResult): void {
    if (e.run !== run || e.phase !== "running" || this.entries.get(e.id) !== e) return;
    this.heap.delete(e);
    this.settle(e, result);
    this.drain();
    this.arm();
  }

  /** expire handles a check whose deadline passed: abort it and count it as failed. */
  private expire(e: Entry): void {
    const timeout = formatDuration(e.options.timeoutMs);
    this.timedOut++;
    e.run++;
    e.controller?.abort(new Error(`timed out after ${timeout}`));
    this.settle(e, {
      ok: false,
      durationMs: e.options.timeoutMs,
      message: `${e.options.type} check of ${formatHostPort(e.probe)} timed out after ${timeout}`,
    });
  }

  /** abandon drops a target's scheduled or running check without recording anything. */
  private abandon(e: Entry, why: string): void {
    if (e.phase === "running") {
      e.run++;
      this.inFlight--;
      e.lane.inFlight--;
      e.controller?.abort(new Error(why));
      e.controller = null;
    }
    this.heap.delete(e);
    e.phase = "waiting";
  }

  /** settle records a finished check, moves the status, schedules the next check and emits the update. */
  private settle(e: Entry, result: CheckResult): void {
    const now = this.clock.now();
    this.inFlight--;
    e.lane.inFlight--;
    this.finished++;
    e.controller = null;
    e.phase = "waiting";
    e.checks++;
    e.lastCheck = result;
    e.window.push(result.ok);

    const previous = e.status;
    if (result.ok) {
      e.consecutiveOk++;
      e.consecutiveFail = 0;
      if (previous === "unknown" || (previous === "down" && e.consecutiveOk >= e.options.rise)) {
        e.status = "up";
        e.upSince = now;
      }
    } else {
      e.consecutiveFail++;
      e.consecutiveOk = 0;
      if (previous === "unknown" || (previous === "up" && e.consecutiveFail >= e.options.fall)) {
        e.status = "down";
        e.upSince = Number.NaN;
      }
    }

    const cap = e.options.backoffMaxMs;
    if (result.ok || cap === null) e.intervalMs = e.options.intervalMs;
    else if (previous === "down" && e.status === "down") e.intervalMs = Math.min(e.intervalMs * 2, cap);

    // Fixed rate: the next check is due one interval after this one was *due*, so a late start does not shift
    // every later check (no drift under load). It is never earlier than half an interval after this start, nor
    // in the past: checks missed while overloaded are skipped, not fired in a burst.
    const due = Math.max(now, e.dueAt + e.intervalMs, e.startedAt + e.intervalMs / 2);
    e.dueAt = due;
    this.heap.set(e, due);

    const update: HealthUpdate = {
      id: e.id,
      status: e.status === "up" ? "up" : "down",
      previousStatus: previous,
      health: e.window.health,
      samples: e.window.samples,
      samplesOk: e.window.samplesOk,
      uptimeSeconds: this.uptimeSeconds(e, now),
      lastCheck: result,
      consecutiveOk: e.consecutiveOk,
      consecutiveFail: e.consecutiveFail,
    };
    try {
      this.hooks.onUpdate(update);
    } catch (err) {
      if (this.hooks.onListenerError) this.hooks.onListenerError(err, update);
      else
        queueMicrotask(() => {
          throw err;
        });
    }
  }

  private uptimeSeconds(e: Entry, now: number): number {
    return e.status === "up" ? Math.floor((now - e.upSince) / 1000) : 0;
  }
}
