/**
 * The VIP controller: decides which VIPs this node announces, from the health gorb already tracks, and hands
 * the decisions to an Announcer (./announcer.ts).
 *
 * A service is healthy on this node when at least its `announce_min_healthy` backends (default 1) are up with
 * an effective weight > 0 (a backend with pulse `none` counts as up), it is not down by its quorum (a service
 * below quorum, or serving from its sorry server, counts as having none), and the kernel has it (`in_kernel`: one
 * the kernel refused at restore, or lost and not got back, counts as having none, since IPVS would drop its
 * traffic; its health checks probe the backends directly and cannot tell). A VIP is announced when every service
 * on it that announces (announce_min_healthy > 0; fwmark services have no VIP) is healthy: the route carries all
 * of the VIP's ports, so a node that can serve only some of them leaves the VIP to the other nodes.
 *
 * Announcing waits for a hold-down (default 3 s): the VIP must stay healthy that long, so that a flapping
 * service does not flap routes. A service still being set up does not make an announced VIP unhealthy until its
 * first checks say so: one with no backends yet (not all deleted), or with backends not checked yet (created, or
 * their check changed), or not in the kernel yet (one never seen there: a read between the change of the desired
 * state and the kernel write of its creation sees it so; one the kernel had and lost is not being set up).
 * Otherwise adding a service to an anycast VIP, given to every node at once (a PUT of the service, then of its
 * backends), would withdraw the VIP from every node at the same moment. It does keep an unannounced VIP back.
 * At start, the VIPs a previous run left announced (the announcer's inherited(): --bgp-keep-on-exit, a crash) count
 * as announced, so the same rule keeps them through a restart while the restored backends await their first check.
 * Withdrawal is immediate: when the VIP turns unhealthy, when its last service is deleted, and (unless told to
 * keep them) at shutdown; told to keep them, it still tries once more to have the speaker take the VIPs it
 * withdrew, and says so when the speaker does not. The controller re-evaluates after every event of the bus about
 * services, backends and reconcile repairs (the one that adds a service the kernel lacked, or cannot), and every
 * `recheckMs` as a safety net; it publishes `bgp.announced` and `bgp.withdrawn`.
 *
 * It only reads core (events, views); core knows nothing of it.
 */
import { CoalescedRun } from "./coalesced-run.ts";
import type { EventBus, GorbEvent } from "../core/events.ts";
import type { ServiceDetail } from "../core/views.ts";
import type { MonitorClock } from "../health/clock.ts";
import type { Logger } from "../log.ts";
import type { Announcer, PrefixStatus, SpeakerStatus } from "./announcer.ts";
import { hostPrefix } from "./include-file.ts";
import { errorMessage } from "../core/errors.ts";

/** What the controller reads of one service. */
export interface AnnounceInput {
  readonly id: string;
  /** The resolved VIP; "" for a fwmark service. */
  readonly address: string;
  readonly minHealthy: number;
  /** Backends that are up (or not checked: pulse none) with an effective weight > 0. */
  readonly healthy: number;
  /**
   * True when the service, short of healthy backends, is still being set up: it has no backends yet, or enough of
   * them are not checked yet (state unknown, a pulse other than none, a configured weight > 0, not in maintenance
   * nor drained) to be healthy once they are; for a service not in the kernel (`inKernel`), that it would be healthy
   * there. Default false.
   */
  readonly settingUp?: boolean;
  /** How many backends it has (unknown when absent). One that had some and has none left is not being set up. */
  readonly backends?: number;
  /**
   * False when the kernel does not have the service (default true). Such a service counts as having no healthy
   * backend; it is being set up (`settingUp` says whether it would be healthy there) until the kernel has had it.
   */
  readonly inKernel?: boolean;
}

/** The controller's inputs from GET views (/service?detail=true). */
function announceInputs(details: readonly ServiceDetail[]): AnnounceInput[] {
  return details.map((service) => {
    // A service down by its quorum (or serving from its sorry server) counts as having no healthy backend, and so
    // does one the kernel does not have.
    const down = service.quorum_up === false;
    const inKernel = service.in_kernel !== false;
    const backends = service.backend_details;
    const minHealthy = service.options.announce_min_healthy;
    const serving = down ? 0 : backends.filter((b) => b.effective_weight > 0 && (b.metrics.state === "up" || b.options.pulse.type === "none")).length;
    const unchecked = backends.filter(
      (b) => b.metrics.state === "unknown" && b.options.pulse.type !== "none" && b.options.weight > 0 && b.options.maintenance !== true && (b.drain ?? null) === null,
    ).length;
    return {
      id: service.id,
      address: service.options.address,
      minHealthy,
      healthy: inKernel ? serving : 0,
      settingUp: !down && (backends.length === 0 || serving + unchecked >= minHealthy),
      backends: backends.length,
      inKernel,
    };
  });
}

/** What servicesSource reads: gorb's views without the kernel's counters. */
export interface ServiceViews {
  listServicesDetail(options: { readonly counters: false }): Promise<readonly ServiceDetail[]>;
}

/**
 * The controller's source in the daemon: health and weights come from gorb's desired state, so the IPVS table
 * (a dump per service) is not read on every event and every recheck.
 */
export function servicesSource(gorb: ServiceViews): () => Promise<AnnounceInput[]> {
  return async () => announceInputs(await gorb.listServicesDetail({ counters: false }));
}

/** One VIP as GET /bgp shows it. */
export interface VipStatus {
  readonly vip: string;
  readonly prefix: string;
  /** The services on this VIP that announce, sorted. */
  readonly services: readonly string[];
  /** Every one of them has enough healthy backends. */
  readonly healthy: boolean;
  /** "announced", "hold-down" (healthy, waiting), "withdrawn". */
  readonly state: "announced" | "hold-down" | "withdrawn";
  /** gorb wants BIRD to announce it. */
  readonly wanted: boolean;
  /** BIRD has it. */
  readonly confirmed: boolean;
  /** ISO time the hold-down ends, while in hold-down. */
  readonly announce_at: string | null;
  readonly error: string | null;
}

/** GET /bgp. */
export interface BgpStatus {
  readonly speaker: SpeakerStatus;
  readonly hold_down_ms: number;
  readonly vips: readonly VipStatus[];
}

/** What stop() did. */
export interface StopOutcome {
  /**
   * The speaker confirmed that it has what gorb leaves behind: without keep, no VIP (a VIP withdrawn before the stop
   * that the speaker still has counts as one to withdraw); with keep, what gorb last decided (none it withdrew).
   * True when there was nothing to do.
   */
  readonly confirmed: boolean;
  /** Prefixes the speaker still has that it should not: without keep, every one; with keep, those gorb withdrew. */
  readonly stillAnnounced: readonly string[];
  /** The speaker's last error when it did not confirm. */
  readonly lastError: string | null;
}

/** A stop with nothing to do. */
const NOTHING_LEFT: StopOutcome = { confirmed: true, stillAnnounced: [], lastError: null };

/**
 * The log line for a stop (`outcome` null: the stop itself failed): info when the speaker was left as gorb decided,
 * otherwise an error naming what it still has.
 */
export function describeStop(keep: boolean, outcome: StopOutcome | null): { readonly level: "info" | "error"; readonly text: string } {
  if (outcome?.confirmed === true) return { level: "info", text: keep ? "BGP: VIPs left announced (--bgp-keep-on-exit)" : "BGP: every VIP withdrawn" };
  const list = outcome?.stillAnnounced.join(", ") ?? "";
  const why = outcome?.lastError ?? "stop failed";
  if (keep) {
    const still = list === "" ? "" : ` (BIRD still has ${list}, which gorb withdrew)`;
    return { level: "error", text: `BGP: VIPs left announced (--bgp-keep-on-exit), but BIRD did not take gorb's last decision${still}: ${why}` };
  }
  const still = list === "" ? "" : ` (BIRD still has ${list})`;
  return { level: "error", text: `BGP: BIRD did not confirm the withdrawal${still}: ${why}; it may keep announcing this node's VIPs` };
}

export interface VipControllerOptions {
  readonly announcer: Announcer;
  /** Reads the services (the daemon gives servicesSource(gorb)). */
  readonly source: () => Promise<readonly AnnounceInput[]>;
  readonly events?: EventBus;
  readonly clock: MonitorClock;
  /** Milliseconds a VIP must stay healthy before it is announced (the daemon's --bgp-hold-down, default DEFAULT_BGP_HOLD_DOWN). */
  readonly holdDownMs: number;
  /** Period of the safety-net re-evaluation (default 5000; 0 = only on events). */
  readonly recheckMs?: number;
  readonly log: Logger;
  /** Wall-clock time for `announce_at` (default Date.now). */
  readonly wallNow?: () => number;
}

interface VipState {
  readonly vip: string;
  readonly prefix: string;
  services: string[];
  healthy: boolean;
  announced: boolean;
  /** Hold-down timer and when (monotonic) it fires. */
  hold: { readonly handle: unknown; readonly at: number } | null;
}

/** See the module comment. */
export class VipController {
  readonly #options: VipControllerOptions;
  readonly #holdDownMs: number;
  readonly #vips = new Map<string, VipState>();
  #unsubscribe: (() => void) | null = null;
  #recheck: unknown = null;
  #stopped = false;
  /**
   * Withdrawals handed to the announcer and not yet carried out. An evaluation does not wait for them (BIRD can take
   * seconds, or hang until its timeout), so that the next one, and its own withdrawals, are not held back meanwhile;
   * evaluate() and stop() do.
   */
  readonly #inFlight = new Set<Promise<void>>();
  /**
   * Services seen with backends since they were created: with none left (all deleted) such a service is not one
   * "with no backends yet", and an announced VIP it is on is withdrawn.
   */
  readonly #hadBackends = new Set<string>();
  /**
   * Services seen in the kernel since they were created: one the kernel lacks now was lost (ipvsadm -C, a repair
   * refused) and is not being set up, so an announced VIP it is on is withdrawn.
   */
  readonly #hadKernel = new Set<string>();
  /** The prefixes the previous run left announced that the first evaluation has not judged yet. */
  readonly #inherited = new Set<string>();

  readonly #evaluations = new CoalescedRun(() => this.#evaluateOnce(), () => this.#stopped);

  constructor(options: VipControllerOptions) {
    this.#options = options;
    this.#holdDownMs = options.holdDownMs;
  }

  /**
   * Starts following the bus and the announcer; evaluates at once. Resolves after the first evaluation. The VIPs a
   * previous run left announced (--bgp-keep-on-exit, a crash) are taken as announced: the first evaluation keeps
   * each one whose services are healthy or still being checked (after a restart every backend is unknown until
   * its first check) and withdraws the others, and those no service is on any more.
   */
  async start(): Promise<void> {
    const inherited = this.#options.announcer.inherited();
    for (const prefix of inherited) this.#inherited.add(prefix);
    // Wanted from the first sync on, so that it does not take them out of the speaker before they are judged.
    if (inherited.length > 0) void this.#options.announcer.announce(inherited);
    this.#options.announcer.start();
    if (this.#options.events !== undefined) {
      const subscription = this.#options.events.subscribe((event) => this.#onEvent(event));
      this.#unsubscribe = () => subscription.unsubscribe();
    }
    this.#armRecheck();
    // Not waiting for the withdrawals this first evaluation starts (of inherited VIPs): a speaker slow to answer
    // does not hold gorb's start; stop() waits for them.
    await this.#evaluations.run();
    const orphans = [...this.#inherited];
    this.#inherited.clear();
    if (orphans.length === 0 || this.#stopped) return;
    for (const prefix of orphans) {
      this.#options.log.info(`withdrawing ${prefix} (left announced by the previous run; no service is on it now)`);
      this.#options.events?.publish("bgp.withdrawn", { vip: prefix.replace(/\/\d+$/, ""), prefix, reason: "deleted" });
    }
    this.#inBackground(this.#options.announcer.withdraw(orphans));
  }

  /** A withdrawal nobody awaits but stop(): its failure is logged. */
  #inBackground(withdrawal: Promise<void>): void {
    const done: Promise<void> = withdrawal
      .catch((error: unknown) => this.#options.log.error(`withdrawing: ${errorMessage(error)}`))
      .finally(() => this.#inFlight.delete(done));
    this.#inFlight.add(done);
  }

  #onEvent(event: GorbEvent): void {
    // A service created (again, under an id seen before) is a new one: it has had no backends yet.
    if (event.type === "service.created" || event.type === "service.deleted") {
      this.#hadBackends.delete(event.data.service);
      this.#hadKernel.delete(event.data.service);
    }
    if (event.type.startsWith("service.") || event.type.startsWith("backend.") || event.type === "reconcile.repair" || event.type === "resync") {
      void this.evaluate();
    }
  }

  #armRecheck(): void {
    const every = this.#options.recheckMs ?? 5000;
    if (every <= 0 || this.#stopped) return;
    this.#recheck = this.#options.clock.setTimer(() => {
      this.#recheck = null;
      void this.evaluate().finally(() => this.#armRecheck());
    }, every);
  }

  /** Re-reads the services and decides; concurrent calls coalesce into one more run. Resolves once the announcer carried out the decisions. */
  async evaluate(): Promise<void> {
    await this.#evaluations.run();
    await this.#settled();
  }

  /** Resolves once no withdrawal is in flight. */
  async #settled(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.all(this.#inFlight);
  }

  async #evaluateOnce(): Promise<void> {
    if (this.#stopped) return;
    let inputs: readonly AnnounceInput[];
    try {
      inputs = await this.#options.source();
    } catch (error) {
      this.#options.log.error(`cannot read the services: ${errorMessage(error)}`);
      return;
    }
    // `healthy`: every service has enough healthy backends; `keep`: every one has, or is still being set up (what
    // an announced VIP needs to stay announced).
    const byVip = new Map<string, { prefix: string; services: string[]; healthy: boolean; keep: boolean }>();
    const present = new Set(inputs.map((input) => input.id));
    for (const seen of [this.#hadBackends, this.#hadKernel]) for (const id of seen) if (!present.has(id)) seen.delete(id);
    for (const input of inputs) {
      const emptied = input.backends === 0 && this.#hadBackends.has(input.id);
      if ((input.backends ?? 0) > 0) this.#hadBackends.add(input.id);
      const lost = input.inKernel === false && this.#hadKernel.has(input.id);
      if (input.inKernel !== false) this.#hadKernel.add(input.id);
      if (input.minHealthy <= 0) continue;
      const prefix = hostPrefix(input.address);
      if (prefix === null) continue;
      const entry = byVip.get(input.address) ?? { prefix, services: [], healthy: true, keep: true };
      entry.services.push(input.id);
      entry.healthy &&= input.healthy >= input.minHealthy;
      entry.keep &&= input.healthy >= input.minHealthy || (input.settingUp === true && !emptied && !lost);
      byVip.set(input.address, entry);
    }
    const withdraw: VipState[] = [];
    for (const [vip, state] of this.#vips) {
      if (byVip.has(vip)) continue;
      this.#cancelHold(state);
      this.#vips.delete(vip);
      if (state.announced) withdraw.push(state);
    }
    for (const [vip, entry] of byVip) {
      let state = this.#vips.get(vip);
      if (state === undefined) {
        // One the previous run left announced stays so while its services are healthy or being checked.
        const kept = this.#inherited.delete(entry.prefix);
        state = { vip, prefix: entry.prefix, services: [], healthy: false, announced: kept, hold: null };
        this.#vips.set(vip, state);
        if (kept) this.#options.log.info(`keeping ${entry.prefix} announced, as the previous run left it, while its services are healthy or not checked yet`);
      }
      state.services = entry.services.sort();
      state.healthy = entry.healthy;
      if (state.announced) {
        if (!entry.keep) withdraw.push(state);
      } else if (!entry.healthy) {
        this.#cancelHold(state);
      } else if (state.hold === null) {
        this.#startHold(state);
      }
    }
    if (withdraw.length > 0) this.#inBackground(this.#withdraw(withdraw, "unhealthy"));
  }

  #startHold(state: VipState): void {
    const at = this.#options.clock.now() + this.#holdDownMs;
    const handle = this.#options.clock.setTimer(() => {
      if (state.hold?.handle !== handle) return;
      state.hold = null;
      if (this.#stopped || this.#vips.get(state.vip) !== state || !state.healthy) return;
      void this.#announce(state);
    }, this.#holdDownMs);
    state.hold = { handle, at };
  }

  #cancelHold(state: VipState): void {
    if (state.hold === null) return;
    this.#options.clock.clearTimer(state.hold.handle);
    state.hold = null;
  }

  async #announce(state: VipState): Promise<void> {
    state.announced = true;
    this.#options.log.info(`announcing ${state.prefix} (${state.services.join(", ")} healthy for ${this.#holdDownMs} ms)`);
    this.#options.events?.publish("bgp.announced", { vip: state.vip, prefix: state.prefix, services: state.services });
    await this.#options.announcer.announce([state.prefix]);
  }

  async #withdraw(states: readonly VipState[], reason: "unhealthy" | "deleted" | "shutdown"): Promise<void> {
    for (const state of states) {
      state.announced = false;
      const why = reason === "unhealthy" && !this.#vips.has(state.vip) ? "deleted" : reason;
      this.#options.log.info(`withdrawing ${state.prefix} (${why})`);
      this.#options.events?.publish("bgp.withdrawn", { vip: state.vip, prefix: state.prefix, reason: why });
    }
    await this.#options.announcer.withdraw(states.map((s) => s.prefix));
  }

  /** GET /bgp. */
  status(): BgpStatus {
    const byPrefix = new Map(this.#options.announcer.status().map((p) => [p.prefix, p] as const));
    const wallNow = this.#options.wallNow ?? Date.now;
    const vips: VipStatus[] = [...this.#vips.values()].map((state) => {
      const prefix = byPrefix.get(state.prefix);
      const announceAt = state.hold === null ? null : new Date(wallNow() + (state.hold.at - this.#options.clock.now())).toISOString();
      return {
        vip: state.vip,
        prefix: state.prefix,
        services: state.services,
        healthy: state.healthy,
        state: state.announced ? "announced" : state.hold !== null ? "hold-down" : "withdrawn",
        wanted: prefix?.wanted ?? false,
        confirmed: prefix?.confirmed ?? false,
        announce_at: announceAt,
        error: prefix?.error ?? null,
      };
    });
    // Prefixes BIRD still has that no service names any more (e.g. a withdrawal BIRD has not taken yet).
    for (const prefix of byPrefix.values()) {
      if (vips.some((v) => v.prefix === prefix.prefix)) continue;
      const vip = prefix.prefix.replace(/\/\d+$/, "");
      vips.push({ vip, prefix: prefix.prefix, services: [], healthy: false, state: "withdrawn", wanted: prefix.wanted, confirmed: prefix.confirmed, announce_at: null, error: prefix.error });
    }
    vips.sort((a, b) => (a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0));
    return { speaker: this.#options.announcer.speaker(), hold_down_ms: this.#holdDownMs, vips };
  }

  /**
   * Stops deciding; withdraws every VIP unless `keep` (--bgp-keep-on-exit), then closes the announcer. Says
   * whether the speaker confirmed what gorb leaves behind: it answered, took the change, and has none of the VIPs
   * (with keep: none of those gorb withdrew).
   */
  async stop(options: { readonly keep: boolean }): Promise<StopOutcome> {
    this.#stopped = true;
    this.#unsubscribe?.();
    if (this.#recheck !== null) this.#options.clock.clearTimer(this.#recheck);
    await this.#evaluations.idle();
    await this.#settled();
    for (const state of this.#vips.values()) this.#cancelHold(state);
    const outcome = options.keep ? await this.#leaveAsDecided() : await this.#withdrawAll();
    await this.#options.announcer.close();
    return outcome;
  }

  /** stop() without keep: every VIP withdrawn. */
  async #withdrawAll(): Promise<StopOutcome> {
    const announced = [...this.#vips.values()].filter((s) => s.announced);
    // A VIP gorb stopped announcing earlier can still be in the speaker (BIRD refused its withdrawal, or the file
    // could not be written): there is something to withdraw then too, tried once more and judged the same way.
    const lingering = this.#options.announcer.status().some((p) => p.confirmed);
    if (announced.length === 0 && !lingering) return NOTHING_LEFT;
    if (announced.length > 0) await this.#withdraw(announced, "shutdown");
    else await this.#options.announcer.withdraw([]);
    return this.#judgeStop((p) => p.confirmed);
  }

  /**
   * stop() with keep: the announced VIPs stay, and the speaker is left with what gorb last decided. A VIP gorb withdrew
   * that the speaker still has (BIRD refused the file without it, or the file could not be written), or a last
   * attempt that failed, would otherwise outlive gorb as it is: the set is tried once more and judged.
   */
  async #leaveAsDecided(): Promise<StopOutcome> {
    const undone = (p: PrefixStatus) => p.confirmed && !p.wanted;
    if (!this.#options.announcer.status().some(undone) && this.#options.announcer.speaker().lastError === null) return NOTHING_LEFT;
    await this.#options.announcer.withdraw([]);
    return this.#judgeStop(undone);
  }

  /** The outcome of a stop's last try: confirmed when the speaker answered, took it, and has no prefix `left` picks. */
  #judgeStop(left: (prefix: PrefixStatus) => boolean): StopOutcome {
    const speaker = this.#options.announcer.speaker();
    const still = this.#options.announcer.status().filter(left).map((p) => p.prefix);
    const confirmed = speaker.reachable && speaker.lastError === null && still.length === 0;
    return { confirmed, stillAnnounced: still, lastError: speaker.lastError };
  }
}
