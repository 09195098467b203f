/**
 * HealthMonitor: one scheduler for many health targets.
 *
 * Shared probes. Callers add targets under their own ids (one per service backend). Targets that probe the
 * same address the same way at the same pace (same probe key, probed host:port, interval, timeout, rise, fall
 * and back-off) share ONE probe: one check per interval, whose result fans out to every subscriber as its own
 * HealthUpdate. Two services with the same backend and the same pulse therefore cost one connection per
 * interval, not two. A subscriber that joins a running probe sees its current state at once.
 *
 * Scheduling. Every probe has exactly one entry in a min-heap keyed by time: while waiting, the time its next
 * check is due; while a check runs, that check's deadline. A single timer is armed for the earliest entry, so
 * 10,000 probes cost one pending timer, not 10,000 intervals. When the timer fires, every entry that is due
 * (a check start up to DEFAULT_BATCH_MS early, a deadline within SLACK_MS) is handled: a due probe starts its check, an expired deadline cancels its check and records
 * a timeout. At most `maxInFlight` probes hold a socket or process at once, and at most `maxFetchInFlight` of
 * them http/https; the rest queue in FIFO order and start as slots free up (their timeout only starts when they
 * do). NB: a slot is held until the checker reports the probe's socket or process closed, not merely until the
 * check ended, so sockets a cancelled connect could not close at once still count against the cap. While the
 * event loop lags (the timer fires late), the lanes' limits shrink (see LAG_HIGH_MS), so an overloaded monitor
 * queues checks instead of timing them out.
 * One tick handles at most `maxPerTick` entries and then yields (a zero-delay timer), so when the monitor falls
 * behind, finished checks are still collected between batches; and it yields once starting checks took
 * START_BUDGET_MS (exec checks' spawns), the checks not started yet waiting in their lanes meanwhile.
 *
 * Timing per probe, in the monitor's clock:
 * - the first check starts after a uniformly random delay in [0, interval) (no thundering herd at startup);
 * - later checks are due one `interval` after the previous one was due (fixed rate); a late start does not shift
 *   the schedule, but two starts are never closer than half an interval, and checks missed while overloaded are
 *   skipped rather than fired in a burst;
 * - each check is cancelled after its timeout, which options keep <= interval, and counts as failed;
 * - with back-off on, every further failure while Down doubles the wait, up to the cap; any success resets it.
 *
 * State per probe: the last 100 results (health = fraction passed), consecutive pass/fail counters, and a
 * status. The status starts "unknown"; the first result decides Up or Down; after that it takes `fall`
 * consecutive failures to go Down and `rise` consecutive passes to come back Up. Uptime is whole seconds since
 * the status last became Up (0 otherwise). Every finished check emits one HealthUpdate per subscriber, whether
 * or not the status changed: the weight policy needs each result while a backend recovers.
 *
 * Check errors. A result of kind "local-error" (this host ran out of file descriptors, buffers, local ports or
 * memory, could not start an exec check's program, or its checker threw) says nothing about the backend: it is recorded as the
 * last check (snapshot.lastCheck.kind = "local-error") and counted (stats().checkErrors), but it moves no
 * counter, no window and no status, and emits no HealthUpdate, so no weight changes because of it.
 */
import type { CancelProbe, CheckResult, Checker } from "./checker.ts";
import { formatHostPort } from "./checker.ts";
import { type CheckerFactory, checkersWith } from "./checkers/for-options.ts";
import { NO_CHECK_RESULT, noneChecker } from "./checkers/none.ts";
import { pollSockets } from "./checkers/poller.ts";
import { type MonitorClock, systemClock } from "./clock.ts";
import { formatDuration } from "./duration.ts";
import { HealthWindow, WINDOW_SIZE } from "./health-window.ts";
import { type ProbeTarget, type PulseOptions, probeTarget } from "./options.ts";
import { type HeapItem, TimerHeap } from "./timer-heap.ts";
import { Lane } from "./lane.ts";
import type { HealthBrief, HealthSnapshot, HealthStatus, HealthUpdate, MonitorStats } from "./target-state.ts";

/** MonitorOptions wire a monitor to its listener and, for tests and benchmarks, to fake time and checkers. */
export interface MonitorOptions {
  /** Called after every finished check. It may call add/update/remove/stop. */
  onUpdate(update: HealthUpdate): void;
  /** Called when onUpdate throws; by default the error is rethrown from a microtask (it is a bug upstream). */
  onListenerError?(error: unknown, update: HealthUpdate): void;
  /** Called when a check starts, with how late it starts relative to its due time (negative: up to SLACK_MS early). */
  onCheckStart?(id: string, lateMs: number): void;
  /** Called for a check error (kind "local-error"), once per subscriber; nothing else happens for it. */
  onCheckError?(id: string, result: CheckResult): void;
  clock?: MonitorClock;
  /** Source of jitter in [0, 1); Math.random by default. */
  random?: () => number;
  checkerFor?: CheckerFactory;
  /** Directories exec checks may run programs from (default checkers only); default /etc/gorb/checks. */
  execDirs?: readonly string[];
  /** Most probes holding a socket or process at once; default DEFAULT_MAX_IN_FLIGHT. */
  maxInFlight?: number;
  /** Most http/https probes at once; default DEFAULT_MAX_FETCH_IN_FLIGHT. */
  maxFetchInFlight?: number;
  /** Results kept per target; default WINDOW_SIZE (the original's 100). */
  windowSize?: number;
  /** Most heap entries handled per timer tick before yielding to I/O; default DEFAULT_MAX_PER_TICK. */
  maxPerTick?: number;
  /** Share one probe between targets that probe identically (default true). */
  shareProbes?: boolean;
  /** Most a check may start early to share a timer tick with others (also at most 5% of its interval); default DEFAULT_BATCH_MS. */
  batchMs?: number;
  /** The real time the work of starting checks is measured with (START_BUDGET_MS); default performance.now. */
  workClock?: () => number;
}

/** DEFAULT_MAX_IN_FLIGHT bounds concurrent probes (sockets, processes) when many targets are slow at once. */
const DEFAULT_MAX_IN_FLIGHT = 4096;
/**
 * DEFAULT_MAX_FETCH_IN_FLIGHT bounds concurrent http/https probes (each costs the backend a request, and a TLS
 * session for https). Measured with bench/pulse.ts (10,000 http targets/s on a loaded host): 256 in flight
 * finished 6,444 checks/s, 1,024 only 4,783 (the backends' accept queues overflowed and SYNs were retried).
 */
const DEFAULT_MAX_FETCH_IN_FLIGHT = 256;
/** DEFAULT_MAX_PER_TICK bounds one tick's work. */
const DEFAULT_MAX_PER_TICK = 256;
/**
 * START_BUDGET_MS: the most time the monitor spends starting checks before it yields the event loop (a zero-delay
 * timer), whatever the tick's entry count allows. A socket check starts in microseconds, but an exec check's spawn
 * takes milliseconds (2.6 ms each on the host, 8 ms on a loaded one): 256 exec checks due at once held the loop, and
 * the API, for 1.5-3 s. Checks it does not start yet wait in their lane (their timeouts start when they do).
 */
const START_BUDGET_MS = 20;
/** SLACK_MS: entries due this close to now are handled in the same timer tick instead of arming another. */
const SLACK_MS = 1;
/**
 * DEFAULT_BATCH_MS: a due check may start up to this much early (and at most 5% of its interval early), so checks
 * due close together start in one timer tick and their sockets complete in one event-loop turn. Measured on the
 * host with 1,000 tcp targets every 1s: 54 µs user + 64 µs system per check one by one, 20 + 42 batched by 50ms.
 * Deadlines are never early: a timeout fires at most SLACK_MS before it is due.
 */
const DEFAULT_BATCH_MS = 50;
/**
 * STARVED_MS: a check that lost this much of its timeout to gorb itself (its deadline handled this late, or the
 * monitor's timer firing this late in total while it ran: a long synchronous task, a GC pause, a backlog of the
 * monitor's own) did not get its timeout's worth of a running process: replies waiting in its socket were not
 * read, its next packets not sent (a TLS handshake needs several turns). Only lags of STALL_MS or more add up
 * (a busy monitor's timer is a few ms late on every tick, which starves nothing). It is given its timeout once more
 * instead of timing out; a second expiry counts. A timeout shorter than 4 × STARVED_MS is starved by a quarter
 * of itself.
 */
const STARVED_MS = 250;
/** STALL_MS: a lag of the monitor's timer this long or longer is a stall (shorter ones are a busy loop's jitter). */
const STALL_MS = 50;

type Phase = "waiting" | "queued" | "running";

/** A subscriber: one id the caller added. */
interface Sub {
  readonly id: string;
  backend: ProbeTarget;
  options: PulseOptions;
  probe: Probe;
}

/** A probe: one address probed one way at one pace, with its state, shared by its subscribers. */
interface Probe extends HeapItem {
  key: string;
  readonly subs: Sub[];
  target: ProbeTarget;
  lane: Lane<Probe>;
  options: PulseOptions;
  /** Made from `options` (see retime). */
  checker: Checker;
  phase: Phase;
  /** When the next (or current) check was due. */
  dueAt: number;
  /** When the last check started; -1 before the first. */
  startedAt: number;
  /** Bumped whenever a running check ends or is abandoned, so a late result is ignored. */
  run: number;
  /** The monitor's stalledMs when the running check started. */
  stalledAtStart: number;
  /** The run whose deadline was moved once because gorb starved it (see STARVED_MS); -1 for none. */
  graceRun: number;
  cancel: CancelProbe | null;
  intervalMs: number;
  readonly window: HealthWindow;
  status: HealthStatus;
  consecutiveOk: number;
  consecutiveFail: number;
  upSince: number;
  lastCheck: CheckResult | null;
  checks: number;
  /** Per-probe callbacks, made once (no closure per check). */
  readonly onDone: (result: CheckResult) => void;
  readonly onReleased: () => void;
  /** True from the removal of the last subscriber: a late callback must not touch anything. */
  dead: boolean;
}

/** The `none` checker (shared by every `none` probe that was not given another one). */
const NONE = noneChecker();

/** HealthMonitor schedules checks for many targets and reports each result through onUpdate. */
export class HealthMonitor {
  private readonly entries = new Map<string, Sub>();
  private readonly probes = new Map<string, Probe>();
  private readonly heap = new TimerHeap<Probe>();
  private readonly fetchLane: Lane<Probe>;
  private readonly socketLane: Lane<Probe>;
  private open = 0;
  private timer: unknown = null;
  /** While a checker's run is on the stack (see start): the time that check started. */
  private startedNow: number | null = null;
  private armedAt = Number.POSITIVE_INFINITY;
  /** When the armed timer should fire in the monitor's clock (its lateness is the event loop's lag). */
  private fireAt = 0;
  private stopped = false;
  private started = 0;
  private finished = 0;
  private timedOut = 0;
  private checkErrors = 0;
  private nextPrivateKey = 0;
  /** How late the monitor's timer has fired, in total, counting stalls only (see STALL_MS). */
  private stalledMs = 0;

  private readonly clock: MonitorClock;
  private readonly random: () => number;
  private readonly checkerFor: CheckerFactory;
  private readonly maxInFlight: number;
  private readonly windowSize: number;
  private readonly maxPerTick: number;
  private readonly share: boolean;
  private readonly batchMs: number;
  private readonly workClock: () => number;
  /** Time spent starting checks since the monitor's timer last fired or it last yielded for START_BUDGET_MS. */
  private startWorkMs = 0;
  private yieldArmed = false;

  constructor(private readonly hooks: MonitorOptions) {
    this.clock = hooks.clock ?? systemClock;
    this.random = hooks.random ?? Math.random;
    this.checkerFor = hooks.checkerFor ?? checkersWith(hooks.execDirs === undefined ? {} : { execDirs: hooks.execDirs });
    this.maxInFlight = hooks.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    this.windowSize = hooks.windowSize ?? WINDOW_SIZE;
    this.maxPerTick = hooks.maxPerTick ?? DEFAULT_MAX_PER_TICK;
    this.share = hooks.shareProbes ?? true;
    this.batchMs = Math.max(SLACK_MS, hooks.batchMs ?? DEFAULT_BATCH_MS);
    this.workClock = hooks.workClock ?? (() => performance.now());
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

  /**
   * add starts checking a new target; a new probe's first check is after a random delay in [0, interval), but a
   * `none` probe's, which runs within the call (see scheduleFirst).
   */
  add(id: string, backend: ProbeTarget, options: PulseOptions): void {
    if (this.stopped) throw new Error("health monitor is stopped");
    if (this.entries.has(id)) throw new Error(`health target ${JSON.stringify(id)} already exists`);
    const target = probeTarget(backend, options);
    const key = this.keyOf(options, target);
    let probe = this.probes.get(key);
    if (probe === undefined) {
      probe = this.newProbe(key, target, options);
      this.scheduleFirst(probe);
    }
    const sub: Sub = { id, backend, options, probe };
    probe.subs.push(sub);
    this.entries.set(id, sub);
    this.joined(sub);
    this.arm();
  }

  /**
   * update changes a target's address or options. When what is probed changes (type, probed address, probe
   * args), the target starts over: history dropped, status unknown, a new random first delay (or it joins an
   * identical probe that already runs). When only timing or thresholds change, history and status are kept and
   * the next check is re-timed from the last start with the new interval (back-off is reset).
   */
  update(id: string, backend: ProbeTarget, options: PulseOptions): void {
    const sub = this.entries.get(id);
    if (sub === undefined) throw new Error(`health target ${JSON.stringify(id)} does not exist`);
    const old = sub.probe;
    const target = probeTarget(backend, options);
    const key = this.keyOf(options, target);
    sub.backend = backend;
    sub.options = options;
    if (key === old.key) return;
    const sameProbe = options.probeKey === old.options.probeKey && target.host === old.target.host && target.port === old.target.port;
    const existing = this.probes.get(key);
    if (sameProbe && existing === undefined && old.subs.length === 1) {
      // Re-time the probe in place: history and status stay.
      this.probes.delete(old.key);
      old.key = key;
      this.probes.set(key, old);
      this.retime(old, options);
    } else {
      this.leave(sub);
      let probe = existing;
      if (probe === undefined) {
        probe = this.newProbe(key, target, options);
        if (sameProbe) {
          this.copyState(probe, old);
          this.retime(probe, options);
        } else {
          this.scheduleFirst(probe);
        }
      }
      sub.probe = probe;
      probe.subs.push(sub);
      if (probe === existing) this.joined(sub);
    }
    this.drain();
    this.arm();
  }

  /**
   * A target that joined a probe which already has a status is told it at once (after the caller's turn), as if
   * the probe's last check had just settled: without this it stayed unknown to the listener until the probe's next
   * check, up to an interval later, while snapshot() already showed the probe's status.
   */
  private joined(sub: Sub): void {
    // (A `none` probe's subscribers get no update at all: their listener knows they are up.)
    if (sub.probe.status === "unknown" || sub.probe.options.type === "none") return;
    queueMicrotask(() => {
      const p = sub.probe;
      if (this.stopped || this.entries.get(sub.id) !== sub || p.lastCheck === null || p.status === "unknown") return;
      this.emit(sub, p, "unknown", p.lastCheck, this.clock.now());
    });
  }

  /** remove stops checking a target (a probe no one else shares is cancelled, its result dropped); false if unknown. */
  remove(id: string): boolean {
    const sub = this.entries.get(id);
    if (sub === undefined) return false;
    this.entries.delete(id);
    this.leave(sub);
    this.drain();
    this.arm();
    return true;
  }

  /** stop cancels every running check and forgets every target; the monitor cannot be used afterwards. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const p of this.probes.values()) {
      this.abandon(p);
      p.dead = true;
    }
    this.entries.clear();
    this.probes.clear();
    this.heap.clear();
    this.fetchLane.clear();
    this.socketLane.clear();
    if (this.timer !== null) this.clock.clearTimer(this.timer);
    this.timer = null;
  }

  /** snapshot returns a target's current state, or undefined for an unknown id. */
  snapshot(id: string): HealthSnapshot | undefined {
    const sub = this.entries.get(id);
    if (sub === undefined) return undefined;
    const p = sub.probe;
    return {
      id,
      backend: sub.backend,
      probe: p.target,
      options: sub.options,
      status: p.status,
      health: p.window.health,
      samples: p.window.samples,
      samplesOk: p.window.samplesOk,
      uptimeSeconds: this.uptimeSeconds(p, this.clock.now()),
      lastCheck: p.lastCheck,
      consecutiveOk: p.consecutiveOk,
      consecutiveFail: p.consecutiveFail,
      checks: p.checks,
      intervalMs: p.intervalMs,
      checking: p.phase === "running",
      sharedBy: p.subs.length,
    };
  }

  /** brief returns what a status table shows of a target (no uptime, so no clock read), or undefined. */
  brief(id: string): HealthBrief | undefined {
    const p = this.entries.get(id)?.probe;
    if (p === undefined) return undefined;
    return { status: p.status, health: p.window.health, message: p.lastCheck?.message ?? "" };
  }

  /** stats returns running totals. */
  stats(): MonitorStats {
    return {
      targets: this.entries.size,
      probes: this.probes.size,
      inFlight: this.open,
      queued: this.fetchLane.queued + this.socketLane.queued,
      started: this.started,
      finished: this.finished,
      timedOut: this.timedOut,
      checkErrors: this.checkErrors,
    };
  }

  // ---- probes -------------------------------------------------------------------------------------------

  private keyOf(o: PulseOptions, t: ProbeTarget): string {
    if (!this.share) return `private:${this.nextPrivateKey++}`;
    return `${o.probeKey}\u0000${t.host}\u0000${t.port}\u0000${o.intervalMs}\u0000${o.timeoutMs}\u0000${o.rise}\u0000${o.fall}\u0000${o.backoffMaxMs}`;
  }

  private newProbe(key: string, target: ProbeTarget, options: PulseOptions): Probe {
    const p: Probe = {
      key,
      subs: [],
      target,
      lane: this.laneFor(options),
      options,
      checker: this.checkerFor(options),
      phase: "waiting",
      at: 0,
      heapIndex: -1,
      dueAt: 0,
      startedAt: -1,
      run: 0,
      stalledAtStart: 0,
      graceRun: -1,
      cancel: null,
      intervalMs: options.intervalMs,
      window: new HealthWindow(this.windowSize),
      status: "unknown",
      consecutiveOk: 0,
      consecutiveFail: 0,
      upSince: Number.NaN,
      lastCheck: null,
      checks: 0,
      onDone: (result) => this.finish(p, p.run, result),
      onReleased: () => this.release(p.lane),
      dead: false,
    };
    this.probes.set(key, p);
    return p;
  }

  /** leave detaches a subscriber from its probe; the last one out cancels the probe. */
  private leave(sub: Sub): void {
    const p = sub.probe;
    const i = p.subs.indexOf(sub);
    if (i >= 0) p.subs.splice(i, 1);
    if (p.subs.length > 0) return;
    this.abandon(p);
    p.dead = true;
    if (this.probes.get(p.key) === p) this.probes.delete(p.key);
  }

  private copyState(to: Probe, from: Probe): void {
    to.window.copyFrom(from.window);
    to.status = from.status;
    to.consecutiveOk = from.consecutiveOk;
    to.consecutiveFail = from.consecutiveFail;
    to.upSince = from.upSince;
    to.lastCheck = from.lastCheck;
    to.checks = from.checks;
    to.startedAt = from.startedAt;
    to.dueAt = from.dueAt;
  }

  /** retime applies new timing to a probe whose probe is unchanged: the next check is re-timed from the last start. */
  private retime(p: Probe, options: PulseOptions): void {
    // A checker is made from the options in force: an exec program is told its timeout (GORB_TIMEOUT_MS). A check
    // still running keeps the checker it started with (its cancel is its own).
    if (p.options.timeoutMs !== options.timeoutMs) p.checker = this.checkerFor(options);
    p.options = options;
    p.intervalMs = options.intervalMs;
    const now = this.clock.now();
    if (p.phase === "running") {
      this.heap.set(p, p.startedAt + options.timeoutMs);
    } else if (p.phase === "waiting") {
      const due = p.startedAt < 0 ? Math.min(p.dueAt < now ? now : p.dueAt, now + options.intervalMs) : Math.max(now, p.startedAt + options.intervalMs);
      p.dueAt = due;
      this.heap.set(p, due);
    }
  }

  private scheduleFirst(p: Probe): void {
    // A `none` probe touches nothing, so its only check (see settle) runs now, in the call, before the target is
    // attached: it is up from the start without a timer, a turn of the event loop, or an update to send.
    if (p.options.type === "none" && this.canStart(p.lane)) {
      const now = this.clock.now();
      p.dueAt = now;
      if (p.checker === NONE) this.passNone(p, now);
      else this.start(p, now);
      return;
    }
    // A first check is spread over the interval so probes do not all start at once.
    const due = this.clock.now() + (p.options.type === "none" ? 0 : this.random() * p.options.intervalMs);
    p.phase = "waiting";
    p.dueAt = due;
    this.heap.set(p, due);
  }

  /**
   * A new `none` probe's check with the `none` checker, recorded as start() and finish() would record it: that
   * checker answers in the call with a pass, so the probe never enters the heap nor holds a lane's slot, and nothing
   * is queued behind it (10,000 backends created without a health check cost no timer work).
   */
  private passNone(p: Probe, now: number): void {
    p.startedAt = now;
    p.run += 2; // one check started and finished
    this.started++;
    this.startedNow = now;
    try {
      this.settle(p, NO_CHECK_RESULT);
    } finally {
      this.startedNow = null;
    }
  }

  // ---- the timer ------------------------------------------------------------------------------------------

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
    const now = this.clock.now();
    const delay = Math.max(0, top.at - now);
    this.fireAt = now + delay;
    this.timer = this.clock.setTimer(this.onTimer, delay);
  }

  private readonly onTimer = (): void => {
    this.timer = null;
    this.armedAt = Number.POSITIVE_INFINITY;
    if (this.stopped) return;
    const now = this.clock.now();
    const lag = now - this.fireAt;
    if (lag >= STALL_MS) this.stalledMs += lag;
    this.socketLane.adapt(lag);
    this.fetchLane.adapt(lag);
    // A timer fires in a turn of its own: the work of starting checks is counted from here (or from a yield).
    if (!this.yieldArmed) this.startWorkMs = 0;
    let budget = this.maxPerTick;
    let expiring: { p: Probe; run: number; late: number }[] | null = null;
    for (let top = this.heap.peek(); top !== undefined && budget > 0; top = this.heap.peek()) {
      const early = top.phase === "running" ? SLACK_MS : Math.max(SLACK_MS, Math.min(this.batchMs, top.intervalMs / 20));
      if (top.at > now + early) break;
      budget--;
      this.heap.delete(top);
      if (top.phase === "running") (expiring ??= []).push({ p: top, run: top.run, late: now - top.at });
      else this.ready(top);
    }
    // NB: a deadline is enforced only after one more pass of the event loop: when the process is busy, a reply
    // may already be waiting in the socket while the timer runs first, and it must not count as a timeout.
    if (expiring !== null) {
      const due = expiring;
      this.clock.setTimer(() => {
        if (this.stopped) return;
        // Replies waiting in raw probe sockets are collected first (checkers/poller.ts polls them on a timer).
        pollSockets();
        for (const { p, run, late } of due) if (!p.dead && p.run === run && p.phase === "running") this.expireUnlessStarved(p, late);
        this.drain();
        this.arm();
      }, 0);
    }
    this.drain();
    this.arm();
  };

  // ---- running checks ------------------------------------------------------------------------------------

  private laneFor(options: PulseOptions): Lane<Probe> {
    return options.type === "http" || options.type === "https" ? this.fetchLane : this.socketLane;
  }

  private canStart(lane: Lane<Probe>): boolean {
    return this.open < this.maxInFlight && lane.open < lane.limit && this.startWorkMs < START_BUDGET_MS;
  }

  /**
   * Counts `ms` of work starting checks; past START_BUDGET_MS, no check starts until a zero-delay timer has let the
   * event loop run (I/O, the API), then the queued ones start.
   */
  private spendStartWork(ms: number): void {
    this.startWorkMs += ms;
    if (this.startWorkMs < START_BUDGET_MS || this.yieldArmed) return;
    this.yieldArmed = true;
    this.clock.setTimer(() => {
      this.yieldArmed = false;
      this.startWorkMs = 0;
      if (this.stopped) return;
      this.drain();
      this.arm();
    }, 0);
  }

  private ready(p: Probe): void {
    if (this.canStart(p.lane)) {
      this.start(p);
    } else {
      p.phase = "queued";
      p.lane.push(p);
    }
  }

  /** drain starts queued checks while their lane and the global limit allow. */
  private drain(): void {
    for (const lane of [this.socketLane, this.fetchLane]) {
      while (!this.stopped && this.canStart(lane)) {
        const p = lane.shift();
        if (p === undefined) break;
        if (p.phase === "queued" && p.lane === lane && !p.dead) this.start(p);
      }
    }
  }

  private release(lane: Lane<Probe>): void {
    this.open--;
    lane.open--;
    if (!this.stopped && (this.socketLane.queued > 0 || this.fetchLane.queued > 0)) {
      this.drain();
      this.arm();
    }
  }

  private start(p: Probe, now: number = this.clock.now()): void {
    const began = this.workClock();
    try {
      this.startCheck(p, now);
    } finally {
      this.spendStartWork(this.workClock() - began);
    }
  }

  private startCheck(p: Probe, now: number): void {
    p.phase = "running";
    p.startedAt = now;
    p.stalledAtStart = this.stalledMs;
    const run = ++p.run;
    this.open++;
    p.lane.open++;
    this.started++;
    this.heap.set(p, now + p.options.timeoutMs);
    if (this.hooks.onCheckStart !== undefined) for (const s of p.subs) this.hooks.onCheckStart(s.id, now - p.dueAt);
    const checker = p.checker;
    if (checker.run !== undefined) {
      let cancel: CancelProbe;
      this.startedNow = now;
      try {
        cancel = checker.run(p.target, p.onDone, p.onReleased);
      } catch (err) {
        this.startedNow = null;
        this.release(p.lane);
        this.finish(p, run, this.bugResult(err, now));
        return;
      }
      this.startedNow = null;
      if (p.run === run && p.phase === "running") p.cancel = cancel;
      return;
    }
    this.startPromise(p, checker, run, now);
  }

  /** startPromise runs a checker that only has `check`: its slot is freed when it settles or is aborted. */
  private startPromise(p: Probe, checker: Checker, run: number, now: number): void {
    const controller = new AbortController();
    const lane = p.lane;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.release(lane);
    };
    p.cancel = () => {
      controller.abort(p.dead ? new Error("health target removed") : new Error(`timed out after ${formatDuration(p.options.timeoutMs)}`));
      release();
    };
    let pending: Promise<CheckResult>;
    try {
      pending = checker.check(p.target, controller.signal);
    } catch (err) {
      pending = Promise.reject(err);
    }
    pending.then(
      (result) => {
        release();
        this.finish(p, run, result);
      },
      (err: unknown) => {
        release();
        this.finish(p, run, this.bugResult(err, now));
      },
    );
  }

  /**
   * A checker that throws or rejects failed, not the backend: a check error (gorb's own failure, as running out of
   * descriptors is), which changes no state, health or weight. Counting it as the backend's failure drained healthy
   * backends for a fault of gorb's.
   */
  private bugResult(err: unknown, startedAt: number): CheckResult {
    const why = err instanceof Error ? err.message || err.name : String(err);
    return { ok: false, durationMs: this.clock.now() - startedAt, message: `check error: checker failed: ${why}`, kind: "local-error", code: "CHECKER_FAILED" };
  }

  private finish(p: Probe, run: number, result: CheckResult): void {
    if (p.dead || p.run !== run || p.phase !== "running") return;
    p.run++;
    p.cancel = null;
    // settle moves the probe's heap entry from this check's deadline to its next due time (no delete + insert).
    this.settle(p, result);
    this.drain();
    this.arm();
  }

  /**
   * A check whose deadline passed `late` ms ago times out, unless gorb starved it (see STARVED_MS): then, once per
   * check, it gets its timeout again from now.
   */
  private expireUnlessStarved(p: Probe, late: number): void {
    const lost = Math.max(late, this.stalledMs - p.stalledAtStart);
    if (p.graceRun !== p.run && lost >= Math.min(STARVED_MS, p.options.timeoutMs / 4)) {
      p.graceRun = p.run;
      this.heap.set(p, this.clock.now() + p.options.timeoutMs);
      return;
    }
    this.expire(p);
  }

  /** expire handles a check whose deadline passed: cancel it (its socket closes) and count it as failed. */
  private expire(p: Probe): void {
    const timeout = formatDuration(p.options.timeoutMs);
    const run = p.run;
    const cancel = p.cancel;
    p.cancel = null;
    cancel?.();
    // A probe may answer its cancel with a check error (see CancelProbe): then that is the result, not a timeout.
    if (p.run !== run || p.phase !== "running") return;
    this.timedOut++;
    p.run++;
    this.settle(p, {
      ok: false,
      durationMs: p.options.timeoutMs,
      message: `${p.options.type} check of ${formatHostPort(p.target)} timed out after ${timeout}`,
      kind: "timeout",
      code: "ETIMEDOUT",
    });
  }

  /** abandon drops a probe's scheduled or running check without recording anything. */
  private abandon(p: Probe): void {
    if (p.phase === "running") {
      p.run++;
      const cancel = p.cancel;
      p.cancel = null;
      p.dead = true;
      cancel?.();
    }
    this.heap.delete(p);
    p.phase = "waiting";
  }

  /** settle records a finished check, moves the status, schedules the next check and emits the updates. */
  private settle(p: Probe, result: CheckResult): void {
    // A check that answered within its checker's run settles at the time it started: no second clock reading
    // (in the emulated test guest a reading costs microseconds, and 10,000 `none` probes settle this way).
    const now = this.startedNow ?? this.clock.now();
    this.finished++;
    p.phase = "waiting";
    p.checks++;
    p.lastCheck = result;

    if (result.kind === "local-error") {
      this.checkErrors++;
      const due = Math.max(now, p.dueAt + p.intervalMs, p.startedAt + p.intervalMs / 2);
      p.dueAt = due;
      this.heap.set(p, due);
      if (this.hooks.onCheckError !== undefined) for (const s of p.subs.length === 1 ? p.subs : [...p.subs]) this.hooks.onCheckError(s.id, result);
      return;
    }

    p.window.push(result.ok);
    const previous = p.status;
    if (result.ok) {
      p.consecutiveOk++;
      p.consecutiveFail = 0;
      if (previous === "unknown" || (previous === "down" && p.consecutiveOk >= p.options.rise)) {
        p.status = "up";
        p.upSince = now;
      }
    } else {
      p.consecutiveFail++;
      p.consecutiveOk = 0;
      if (previous === "unknown" || (previous === "up" && p.consecutiveFail >= p.options.fall)) {
        p.status = "down";
        p.upSince = Number.NaN;
      }
    }

    const cap = p.options.backoffMaxMs;
    if (result.ok || cap === null) p.intervalMs = p.options.intervalMs;
    else if (previous === "down" && p.status === "down") p.intervalMs = Math.min(p.intervalMs * 2, cap);

    // Fixed rate: the next check is due one interval after this one was *due*, so a late start does not shift
    // every later check (no drift under load). It is never earlier than half an interval after this start, nor
    // in the past: checks missed while overloaded are skipped, not fired in a burst.
    const due = Math.max(now, p.dueAt + p.intervalMs, p.startedAt + p.intervalMs / 2);
    p.dueAt = due;
    // A `none` probe passes without probing, so its first check settles it for good: it is not scheduled again.
    // 10,000 backends without a health check cost nothing per interval (at the default 1m they were 167 no-op
    // checks a second, each an update for gorb to apply). A change of its timing (retime) runs it once more.
    if (p.options.type === "none" && result.ok) this.heap.delete(p);
    else this.heap.set(p, due);

    // NB: a listener may remove or add subscribers; iterate over a copy when there is more than one.
    const subs = p.subs.length === 1 ? p.subs : [...p.subs];
    for (const s of subs) {
      if (this.entries.get(s.id) !== s) continue;
      this.emit(s, p, previous, result, now);
    }
  }

  /** Sends one subscriber the probe's status after `result`. */
  private emit(s: Sub, p: Probe, previous: HealthStatus, result: CheckResult, now: number): void {
    const update: HealthUpdate = {
      id: s.id,
      status: p.status === "up" ? "up" : "down",
      previousStatus: previous,
      health: p.window.health,
      samples: p.window.samples,
      samplesOk: p.window.samplesOk,
      uptimeSeconds: this.uptimeSeconds(p, now),
      lastCheck: result,
      consecutiveOk: p.consecutiveOk,
      consecutiveFail: p.consecutiveFail,
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

  private uptimeSeconds(p: Probe, now: number): number {
    return p.status === "up" ? Math.floor((now - p.upSince) / 1000) : 0;
  }
}
