/**
 * Fleet membership: each node keeps `PREFIX/nodes/<node>` on a lease of its own, holding its API address,
 * version, start time, the etcd revision it has applied, the services whose remote change it could not apply
 * (with the revision of the earliest such change) and the health its own checks see for each backend.
 * A node that dies stops renewing, so etcd deletes its key once the lease's TTL runs out.
 *
 * This is for people (GET /cluster, `gorb status --cluster`): which nodes run, whether each has caught up,
 * where a backend is up on one node and down on another. Health is never used across nodes for IPVS
 * decisions: every node drains from its own checks only.
 *
 * One thing is read across nodes: the connections each node's kernel still has to a backend being drained (an
 * operator's drain, POST .../drain), which every node watches and publishes here. The node that started the drain
 * ends it only once every live node's record says none are left (drainPeerReader; ../core/drain.ts).
 */
import type { ConnCounts } from "../core/drain.ts";
import type { EventBus, EventHealthState, EventPayloads } from "../core/events.ts";
import type { Logger } from "../log.ts";
import { silentLogger } from "../log.ts";
import { UnavailableError, errorMessage } from "../core/errors.ts";
import { EtcdError, prefixEnd, type Compare, type EtcdClient } from "./etcd-client.ts";
import type { FailedApply } from "./etcd-store.ts";
import { isRecord } from "../record.ts";

/** What a node publishes about itself. */
export interface NodeRecord {
  readonly node: string;
  /** The node's API address ("10.0.0.5:4672"). */
  readonly address: string;
  readonly version: string;
  /** ISO 8601. */
  readonly startedAt: string;
  /**
   * The etcd revision the node had applied when it last applied a change of services or backends (not moved by
   * membership records: republishing each of those would make every node rewrite its record after each other's).
   */
  readonly appliedRevision: number;
  /** The revision of the latest change of services or backends the node has applied (absent: an older gorb). */
  readonly changeRevision?: number;
  /** "ok" or "degraded" (cannot reach etcd; the node keeps what it has). */
  readonly store: string;
  /**
   * The services whose remote change this node could not apply (its kernel refused it), by id, each with the
   * revision of the earliest such change: the node does not serve that revision or any later one. Absent when
   * there is none (and in an older gorb's record).
   */
  readonly failed?: readonly FailedApply[];
  /** Health this node's checks see, by "service/backend". */
  readonly backends: Readonly<Record<string, EventHealthState>>;
  /**
   * The connections this node's kernel still has to each backend being drained, by "service/backend", with the
   * drain's deadline (ISO 8601), which tells one drain of a backend from the next. Absent when there is none (and in
   * an older gorb's record).
   */
  readonly drains?: Readonly<Record<string, DrainConns>>;
}

/** A node's counts for one drain. */
export interface DrainConns {
  readonly deadline: string;
  readonly active: number;
  readonly inactive: number;
}

export interface MembershipOptions {
  readonly client: EtcdClient;
  readonly prefix: string;
  readonly node: string;
  readonly address: string;
  readonly version: string;
  /** The lease's TTL in seconds. @default 10 */
  readonly ttlSeconds?: number;
  readonly events: EventBus;
  readonly status: () => {
    readonly appliedRevision: number;
    readonly changeRevision: number;
    readonly state: string;
    readonly failed?: readonly FailedApply[];
  };
  /**
   * The health of every backend when the node registers, by "service/backend": what was checked before (a
   * restored backend with pulse none is up at once, and never changes after) has no event left to tell it.
   */
  readonly health?: () => Promise<Iterable<readonly [string, EventHealthState]>>;
  /**
   * Told when the node has lost touch with etcd for longer than its lease (the lease expired, or no keepalive was
   * answered for longer than its TTL): its watch may have missed changes without saying so (EtcdStateStore.resync).
   */
  readonly onStale?: (reason: string) => void;
  /**
   * "service/backend" of the backends whose drain still waits for connections here (Gorb.drainingBackends): the
   * record keeps counts only for those. A drain another node ended and holds (then = keep) sends no event here, so
   * without it its last counts would stay in the record. Absent: counts go only with their events.
   */
  readonly draining?: () => ReadonlySet<string>;
  readonly logger?: Logger;
}

const HEALTH_STATES: ReadonlySet<string> = new Set<EventHealthState>(["up", "down", "unknown"]);

/** A record's `failed`: a list of { service, revision }, or null when it is not one. */
function decodeFailed(value: unknown): FailedApply[] | null {
  if (!Array.isArray(value)) return null;
  const out: FailedApply[] = [];
  for (const item of value as unknown[]) {
    if (!isRecord(item) || typeof item.service !== "string" || typeof item.revision !== "number") return null;
    out.push({ service: item.service, revision: item.revision });
  }
  return out;
}

/**
 * A record's `drains`; {} when it is not a map of counts (a node whose record says no drain counts keeps drains
 * waiting: see drainPeerReader).
 */
function decodeDrains(value: unknown): Record<string, DrainConns> {
  const out: Record<string, DrainConns> = {};
  if (!isRecord(value)) return out;
  for (const [path, c] of Object.entries(value)) {
    if (!isRecord(c) || typeof c.deadline !== "string" || !Number.isSafeInteger(c.active) || !Number.isSafeInteger(c.inactive)) return {};
    out[path] = { deadline: c.deadline, active: c.active as number, inactive: c.inactive as number };
  }
  return out;
}

/** The NodeRecord in a membership value, or null when it is not one (another program wrote it). */
function decodeNodeRecord(text: string): NodeRecord | null {
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch {
    return null;
  }
  if (!isRecord(value)) return null;
  const { node, address, version, startedAt, appliedRevision, changeRevision, store, backends } = value;
  const failed = value.failed === undefined ? undefined : decodeFailed(value.failed);
  if (failed === null) return null;
  if (typeof node !== "string" || typeof address !== "string" || typeof version !== "string" || typeof startedAt !== "string") return null;
  if (typeof appliedRevision !== "number" || typeof store !== "string" || !isRecord(backends)) return null;
  if (changeRevision !== undefined && typeof changeRevision !== "number") return null;
  const health: Record<string, EventHealthState> = {};
  for (const [path, state] of Object.entries(backends)) {
    if (typeof state !== "string" || !HEALTH_STATES.has(state) || !path.includes("/")) return null;
    health[path] = state as EventHealthState;
  }
  return {
    node,
    address,
    version,
    startedAt,
    appliedRevision,
    ...(changeRevision !== undefined ? { changeRevision } : {}),
    store,
    ...(failed !== undefined && failed.length > 0 ? { failed } : {}),
    backends: health,
    ...(value.drains !== undefined ? { drains: decodeDrains(value.drains) } : {}),
  };
}

/** How long one read of the nodes' records answers for every drain a node asks about (one look of its drain watch). */
const DRAIN_PEERS_REUSE_MS = 500;

/**
 * What a fleet node asks before it ends a drain it started: the connections the live nodes other than `self` still
 * have to backend `service`/`backend` for its drain whose deadline is `deadline`, summed from their records; null when
 * one of them has not said (its record has no counts for that drain: it has not seen it yet, its kernel could not be
 * read, or it is an older gorb). Rejects when etcd cannot be read. A node that died has no record once its lease runs
 * out, and is not waited for. One read of the records serves every question for `reuseMs` (many drains, one look).
 */
export function drainPeerReader(
  client: EtcdClient,
  prefix: string,
  self: string,
  reuseMs = DRAIN_PEERS_REUSE_MS,
): (service: string, backend: string, deadline: string) => Promise<ConnCounts | null> {
  let read: { readonly at: number; readonly members: Promise<NodeRecord[]> } | null = null;
  return async (service, backend, deadline) => {
    const now = Date.now();
    if (read === null || now - read.at >= reuseMs) {
      const members = listMembers(client, prefix);
      const current = { at: now, members };
      read = current;
      // A failed read is not reused.
      members.catch(() => {
        if (read === current) read = null;
      });
    }
    let active = 0;
    let inactive = 0;
    for (const member of await read.members) {
      if (member.node === self) continue;
      const counts = member.drains?.[`${service}/${backend}`];
      if (counts === undefined || counts.deadline !== deadline) return null;
      active += counts.active;
      inactive += counts.inactive;
    }
    return { active, inactive };
  };
}

/**
 * The nodes registered under `prefix`, sorted by name; a value that is not a node record is left out. etcd not
 * answering is an UnavailableError on "store" (GET /cluster then shows this node's store state without the nodes).
 */
export async function listMembers(client: EtcdClient, prefix: string): Promise<NodeRecord[]> {
  const dir = `${prefix}/nodes/`;
  let kvs: Awaited<ReturnType<EtcdClient["range"]>>["kvs"];
  try {
    ({ kvs } = await client.range(dir, prefixEnd(dir)));
  } catch (error) {
    if (error instanceof EtcdError) throw new UnavailableError("store", `cannot read the nodes' records from etcd: ${error.message}`, { cause: error });
    throw error;
  }
  const out: NodeRecord[] = [];
  for (const kv of kvs) {
    const record = decodeNodeRecord(kv.value);
    if (record !== null) out.push(record);
  }
  return out.sort((a, b) => a.node.localeCompare(b.node));
}

/** See the module comment. */
export class Membership {
  readonly #o: MembershipOptions;
  readonly #log: Logger;
  readonly #ttl: number;
  readonly #startedAt = new Date().toISOString();
  readonly #health = new Map<string, EventHealthState>();
  /** This node's counts of the drains it watches, by "service/backend" (NodeRecord.drains). */
  readonly #drains = new Map<string, DrainConns>();
  /** A publication asked for before the next tick (a drain's count reached zero or left it). */
  #soon: ReturnType<typeof setTimeout> | null = null;
  #tickAgain = false;
  #lease: string | null = null;
  #published = "";
  /** The revision of this process's last write of its record; 0: not registered. */
  #putRevision = 0;
  /** Who holds the key when this process could not register ("" when it could), to warn once. */
  #holder = "";
  /** The changeRevision published, and the appliedRevision taken when it last moved. */
  #change = -1;
  #applied = 0;
  #timer: ReturnType<typeof setInterval> | null = null;
  /** The last registration error said (null once a tick succeeded), so that each is logged once. */
  #failing: string | null = null;
  #unsubscribe: (() => void) | null = null;
  #ticking = false;
  /** When etcd last renewed (or granted) the lease; whether onStale was told since. */
  #renewedAt = Date.now();
  #staleTold = false;

  constructor(options: MembershipOptions) {
    this.#o = options;
    this.#log = options.logger ?? silentLogger;
    this.#ttl = options.ttlSeconds ?? 10;
  }

  get #key(): string {
    return `${this.#o.prefix}/nodes/${this.#o.node}`;
  }

  /** Register now (errors are logged and retried on the next tick) and keep the registration fresh. */
  async start(): Promise<void> {
    // What events said while the health was read: newer than it (a backend deleted since is not put back).
    let gone: Set<string> | null = new Set<string>();
    const sub = this.#o.events.subscribe((event) => {
      if (event.type === "backend.health") this.#health.set(`${event.data.service}/${event.data.backend}`, event.data.to);
      else if (event.type === "backend.created") this.#health.set(`${event.data.service}/${event.data.backend}`, event.data.health);
      else if (event.type === "backend.drain") this.#drainEvent(event.data);
      else if (event.type === "backend.deleted") {
        this.#health.delete(`${event.data.service}/${event.data.backend}`);
        this.#drains.delete(`${event.data.service}/${event.data.backend}`);
        gone?.add(`${event.data.service}/${event.data.backend}`);
      } else if (event.type === "service.deleted") {
        for (const map of [this.#health, this.#drains]) for (const key of [...map.keys()]) if (key.startsWith(`${event.data.service}/`)) map.delete(key);
        gone?.add(`${event.data.service}/`);
      }
    });
    this.#unsubscribe = () => sub.unsubscribe();
    try {
      for (const [path, state] of (await this.#o.health?.()) ?? []) {
        const deleted = gone.has(path) || gone.has(`${path.slice(0, path.indexOf("/"))}/`);
        if (!this.#health.has(path) && !deleted) this.#health.set(path, state);
      }
    } catch (error) {
      this.#log.warn(`membership: cannot read the backends' health: ${errorMessage(error)}`);
    }
    gone = null;
    await this.#tick();
    this.#timer = setInterval(() => void this.#tick(), Math.max(1000, (this.#ttl * 1000) / 3));
  }

  /**
   * A drain's counts as this node's watch reads them: kept while it waits, gone once it ends. When they reach zero
   * or leave it, the record is published at once rather than at the next tick: the starting node waits for it.
   */
  #drainEvent(d: EventPayloads["backend.drain"]): void {
    const path = `${d.service}/${d.backend}`;
    const before = this.#drains.get(path);
    if (d.phase !== "progress" || d.active === null || d.inactive === null) {
      this.#drains.delete(path);
      return;
    }
    this.#drains.set(path, { deadline: d.deadline, active: d.active, inactive: d.inactive });
    const zero = d.active + d.inactive === 0;
    if (before === undefined || before.deadline !== d.deadline || (before.active + before.inactive === 0) !== zero) this.#publishSoon();
  }

  #publishSoon(): void {
    if (this.#timer === null || this.#soon !== null) return;
    this.#soon = setTimeout(() => {
      this.#soon = null;
      void this.#tick();
    }, 0);
  }

  /**
   * Stop renewing and revoke the lease (the registration goes at once); with `revoke: false` the registration
   * stays until the lease's TTL runs out, as when the process is killed.
   */
  async stop(options: { readonly revoke?: boolean } = {}): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    if (this.#soon !== null) clearTimeout(this.#soon);
    this.#soon = null;
    this.#unsubscribe?.();
    const lease = this.#lease;
    this.#lease = null;
    if (lease !== null && options.revoke !== false) await this.#o.client.leaseRevoke(lease).catch(() => undefined);
  }

  #record(): NodeRecord {
    const status = this.#o.status();
    const draining = this.#o.draining?.();
    if (draining !== undefined) for (const path of [...this.#drains.keys()]) if (!draining.has(path)) this.#drains.delete(path);
    // Also while the applied revision is below the change: the node's own write moves the change at once, and
    // its watch passes it a moment later; the record must say so then, not at the next change.
    if (status.changeRevision !== this.#change || this.#applied < this.#change) {
      this.#change = status.changeRevision;
      this.#applied = status.appliedRevision;
    }
    return {
      node: this.#o.node,
      address: this.#o.address,
      version: this.#o.version,
      startedAt: this.#startedAt,
      appliedRevision: this.#applied,
      changeRevision: this.#change,
      store: status.state,
      ...(status.failed !== undefined && status.failed.length > 0 ? { failed: status.failed } : {}),
      backends: Object.fromEntries([...this.#health].sort(([a], [b]) => a.localeCompare(b))),
      ...(this.#drains.size > 0 ? { drains: Object.fromEntries([...this.#drains].sort(([a], [b]) => a.localeCompare(b))) } : {}),
    };
  }

  /**
   * Write the record, as long as the key is this process's: created here (nobody held it: create revision 0) or
   * last written here. Another process with the same node id (a cloned host keeps its host name) would otherwise
   * overwrite it, and its stop would delete the record of a node still running. A compare that fails because etcd
   * lost the record or rolled it back (etcd lost writes: see EtcdStateStore's #rewind) finds the key gone, or
   * holding an older record of this very process (same node and start time): the record is written again over it.
   */
  async #publish(value: string, lease: string, again = true): Promise<void> {
    const key = this.#key;
    const mine: Compare =
      this.#putRevision === 0 ? { key, target: "create", op: "equal", revision: 0 } : { key, target: "mod", op: "equal", revision: this.#putRevision };
    const { succeeded, revision } = await this.#o.client.txn([mine], [{ put: { key, value, lease } }]);
    if (succeeded) {
      this.#putRevision = revision;
      this.#published = value;
      this.#holder = "";
      return;
    }
    this.#putRevision = 0;
    this.#published = "";
    const held = (await this.#o.client.range(key)).kvs[0];
    if (held !== undefined && held.lease === lease) {
      // This process's own write, which etcd applied without saying so (it answered Unavailable or not in time):
      // the record is still this node's, at a revision it did not learn. Taken as written; the next tick goes on.
      this.#putRevision = held.modRevision;
      this.#published = held.value;
      return;
    }
    const holder = held === undefined ? null : decodeNodeRecord(held.value);
    const own = held === undefined || (holder?.node === this.#o.node && holder.startedAt === this.#startedAt);
    if (own && again) {
      this.#log.warn(`membership: etcd ${held === undefined ? "lost the record" : `holds an older record (revision ${held.modRevision})`} of node ${this.#o.node}; writing it again`);
      this.#putRevision = held?.modRevision ?? 0;
      return this.#publish(value, lease, false);
    }
    const who = holder === null ? "another program" : `the gorb at ${holder.address} started ${holder.startedAt}`;
    if (who !== this.#holder) {
      this.#log.warn(
        `node id ${this.#o.node} is registered by ${who} (another node with this --node-id, or this node before a restart); ` +
          "this node registers once that registration ends; give every node its own --node-id",
      );
      this.#holder = who;
    }
  }

  #stale(reason: string): void {
    this.#staleTold = true;
    this.#o.onStale?.(reason);
  }

  async #tick(): Promise<void> {
    if (this.#ticking) {
      // A publication asked for meanwhile (#publishSoon) is not left to the next tick.
      this.#tickAgain = true;
      return;
    }
    this.#ticking = true;
    try {
      const client = this.#o.client;
      if (this.#lease !== null && (await client.leaseKeepAlive(this.#lease)) <= 0) {
        this.#log.warn(`the membership lease of node ${this.#o.node} expired; registering again`);
        this.#lease = null;
        this.#stale(`the membership lease of node ${this.#o.node} expired`);
      }
      if (this.#lease === null) {
        this.#lease = await client.leaseGrant(this.#ttl);
        this.#published = "";
        this.#putRevision = 0;
      }
      this.#renewedAt = Date.now();
      this.#staleTold = false;
      const value = JSON.stringify(this.#record());
      if (value !== this.#published) await this.#publish(value, this.#lease);
      if (this.#failing !== null) {
        this.#log.info(`membership: node ${this.#o.node} is registered again`);
        this.#failing = null;
      }
    } catch (error) {
      // Said once, not every tick: until then the node is missing from GET /cluster (no leader, a permission denied
      // on nodes/, a record over etcd's request size), and nothing else would say why.
      const text = errorMessage(error);
      const silent = Date.now() - this.#renewedAt;
      if (silent > this.#ttl * 1000 && !this.#staleTold) {
        this.#stale(`etcd has not renewed the membership lease of node ${this.#o.node} for ${Math.round(silent / 1000)} s (${text})`);
      }
      if (text !== this.#failing) this.#log.warn(`membership: node ${this.#o.node} cannot register in etcd, so GET /cluster leaves it out: ${text}`);
      this.#failing = text;
    } finally {
      this.#ticking = false;
      if (this.#tickAgain) {
        this.#tickAgain = false;
        this.#publishSoon();
      }
    }
  }
}
