/**
 * The drain watcher: while any backend is draining, it reads the kernel's connection counts of those backends'
 * destinations every `pollMs` (one destination list per service with a drain), publishes a `progress` event
 * when a count changes, and asks gorb to end a drain when ./drain.ts decides so (drained or timed out). The end
 * itself (remove, or hold at weight 0) is a change under gorb's lock, committed like a request; the watcher
 * never writes IPVS. With no drain left it stops its timer until kick() (a new drain, a restore, a remote change).
 */
import { errorMessage } from "./errors.ts";
import { destinationKeyId } from "./keys.ts";
import type { Destination, ServiceKey } from "../ipvs/types.ts";
import { NO_CONNS, drainDecision, type ConnCounts, type DrainDecision, type DrainState } from "./drain.ts";
import type { Logger } from "../log.ts";

/** One draining backend, as the watcher sees it. */
export interface DrainTarget {
  readonly service: string;
  readonly backend: string;
  readonly key: ServiceKey;
  /** destinationKeyId of the backend's destination. */
  readonly destId: string;
  readonly drain: DrainState;
  readonly udp: boolean;
}

/** What the watcher works with. */
export interface DrainWatchParts {
  /** Every backend whose drain is in phase "draining". */
  readonly targets: () => DrainTarget[];
  /** The kernel's destinations of a service. */
  readonly read: (key: ServiceKey) => Promise<Destination[]>;
  /** End a drain (under gorb's lock; it checks the drain is still the same one). */
  readonly finish: (target: DrainTarget, decision: "drained" | "timeout", conns: ConnCounts | null) => Promise<void>;
  /** A count changed. */
  readonly progress: (target: DrainTarget, conns: ConnCounts) => void;
  readonly now: () => number;
  /** A monotonic clock (ms): how long this node has watched a drain, whatever its wall clock does. */
  readonly monotonic: () => number;
  /** This node's name in the fleet; null on one node. */
  readonly node: string | null;
  /**
   * The other live nodes' counts for a drain (./drain.ts DrainFacts.peers), asked only when this node would end its
   * own drain because its kernel shows no connection left; null on one node (nobody else to ask).
   */
  readonly peers: ((target: DrainTarget) => Promise<ConnCounts | null>) | null;
  readonly pollMs: number;
  readonly log: Logger;
}

/** See the module comment. */
export class DrainWatch {
  readonly #p: DrainWatchParts;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #running = false;
  #again = false;
  #stopped = false;
  /** Last counts seen, by "service/backend/started". */
  readonly #seen = new Map<string, string>();
  /** When (monotonic) this watcher first saw each drain, by "service/backend/started". */
  readonly #since = new Map<string, number>();
  /** The last error reading the other nodes' counts (null once they were read), so that each is logged once. */
  #peersFailing: string | null = null;
  /** The other nodes' counts as last read for each drain this node asked about, by "service/backend/started". */
  readonly #peersRead = new Map<string, ConnCounts | null>();

  constructor(parts: DrainWatchParts) {
    this.#p = parts;
  }

  /** Look now (a drain started or changed), and keep looking while drains remain. */
  kick(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#tick(), 0);
  }

  /** The other nodes' counts this node last read for a drain (DrainView.others); undefined when it has not asked. */
  othersRead(service: string, backend: string, drain: DrainState): ConnCounts | null | undefined {
    return this.#peersRead.get(`${service}/${backend}/${drain.started}`);
  }

  /** Publish every drain's counts at the next look, changed or not (a follower that starts late). */
  announce(): void {
    this.#seen.clear();
    this.kick();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  async #tick(): Promise<void> {
    this.#timer = null;
    this.#running = true;
    let remaining = 0;
    try {
      remaining = await this.#look();
    } catch (error) {
      // An end refused (a store conflict, gorb stopping): looked at again at the next poll.
      if (!this.#stopped) this.#p.log.error(`drain watch: ${errorMessage(error)}`);
      remaining = 1;
    } finally {
      this.#running = false;
    }
    if (this.#stopped) return;
    if (this.#again) {
      this.#again = false;
      this.#timer = setTimeout(() => void this.#tick(), 0);
    } else if (remaining > 0) {
      this.#timer = setTimeout(() => void this.#tick(), this.#p.pollMs);
    }
  }

  /** The other nodes' counts for `t`; null (wait) when they cannot be read, said once until they can again. */
  async #peers(t: DrainTarget): Promise<ConnCounts | null> {
    const ask = this.#p.peers;
    if (ask === null) return NO_CONNS;
    try {
      const peers = await ask(t);
      this.#peersFailing = null;
      return peers;
    } catch (error) {
      const text = errorMessage(error);
      if (text !== this.#peersFailing) this.#p.log.warn(`drain watch: cannot read the other nodes' connections to backend ${JSON.stringify(t.backend)} of service ${JSON.stringify(t.service)}, so its drain waits: ${text}`);
      this.#peersFailing = text;
      return null;
    }
  }

  /** One look at every drain; returns how many are still waiting. */
  async #look(): Promise<number> {
    const targets = this.#p.targets();
    const byService = new Map<string, DrainTarget[]>();
    for (const t of targets) {
      let list = byService.get(t.service);
      if (list === undefined) byService.set(t.service, (list = []));
      list.push(t);
    }
    const live = new Set<string>();
    let waiting = 0;
    for (const list of byService.values()) {
      const first = list[0];
      if (first === undefined) continue;
      let counts: Map<string, ConnCounts> | null = null;
      try {
        counts = new Map((await this.#p.read(first.key)).map((d) => [destinationKeyId(d), { active: d.activeConns, inactive: d.inactiveConns }]));
      } catch (error) {
        this.#p.log.warn(`drain watch: cannot read the destinations of service ${JSON.stringify(first.service)}: ${String(error)}`);
      }
      for (const t of list) {
        const id = `${t.service}/${t.backend}/${t.drain.started}`;
        live.add(id);
        const since = this.#since.get(id) ?? this.#p.monotonic();
        this.#since.set(id, since);
        // A destination missing from the kernel has no connection left (reconcile puts it back if it must be).
        const conns = counts === null ? null : (counts.get(t.destId) ?? { active: 0, inactive: 0 });
        if (conns !== null) {
          const text = `${conns.active}/${conns.inactive}`;
          const before = this.#seen.get(id);
          this.#seen.set(id, text);
          if (before !== text) this.#p.progress(t, conns);
        }
        const facts = { conns, now: this.#p.now(), udp: t.udp, node: this.#p.node, watchedMs: this.#p.monotonic() - since, peers: NO_CONNS };
        let decision: DrainDecision = drainDecision(t.drain, facts);
        // Its connections here have ended: the other nodes' too? (A deadline or a UDP service needs no asking.)
        if (decision === "drained" && !t.udp && this.#p.peers !== null) {
          const peers = await this.#peers(t);
          this.#peersRead.set(id, peers);
          decision = drainDecision(t.drain, { ...facts, peers });
        }
        if (decision === "drained" || decision === "timeout") {
          if (this.#stopped) return 0;
          await this.#p.finish(t, decision, conns);
          continue;
        }
        if (decision === "wait") waiting++;
      }
    }
    for (const seen of [this.#seen, this.#since, this.#peersRead]) for (const id of [...seen.keys()]) if (!live.has(id)) seen.delete(id);
    return waiting;
  }
}
