/**
 * gorb's desired state in etcd, shared by every node that points at the same prefix (`--store etcd://...`).
 *
 * Keys (./layout.ts; ids never contain "/", so a key names one object and a prefix never catches a neighbour):
 * PREFIX/services/<service>, PREFIX/backends/<service>/<backend>, PREFIX/addresses/<address> (./claims.ts),
 * PREFIX/nodes/<node> (./membership.ts) and PREFIX/restores/<node> (the revision a node's last start restored, read
 * with the snapshot and written by `restored`: ../core/kernel-ledger.ts).
 *
 * Writes: `commit` makes one etcd transaction of one group of requests. Each put or delete compares the key's
 * revision with the one this node has applied: create_revision == 0 for a key it does not know (so a create
 * that another node made first fails on every node), mod_revision == the applied one for a key it knows (so a
 * change made elsewhere meanwhile is never overwritten). A failed compare is a ConflictError (409); deleting a
 * service deletes `PREFIX/backends/<service>/` in the same transaction, on condition that etcd holds there no key
 * this node has not applied as it is (#backendsCompare): a backend another node added or changed goes with its
 * service only once this node has seen it. Creating a backend compares so the backends another node added to its
 * service: two backends on one destination created at once through two nodes would both go through. An apply (StateChanges.wholeSet: planned from every service) reads the
 * keys of services and backends changed since this node's applied revision first, is a ConflictError when one is
 * not as this node applied it, and compares both prefixes unchanged since that read (#unchangedCompare).
 *
 * Reads: `load` is the snapshot (one range, at revision R) restored at start-up; `sync` then watches from R+1
 * and hands each batch of remote changes to the sink (Gorb.applyRemote). The applied revisions of the keys
 * are updated under gorb's lock once the sink has applied them, so a commit's compares always describe gorb's
 * desired state. A watch that ends (compaction, error, EOF) or the resync timer relists: a fresh range, the
 * difference (deletes included) applied, and a new watch from there; so does a process that finds it was paused
 * (SIGSTOP, a frozen VM) for more than 5 s, and so does evidence from membership that the node lost touch with
 * etcd for longer than its lease (`resync`: a watch held up by the network says nothing), a watch silent for
 * three of etcd's progress intervals (once one was seen), or a watch that does not deliver what etcd has under the
 * prefix (./watch-liveness.ts), the store degraded until that relist is applied.
 * While etcd cannot be reached the node keeps its desired state and its kernel as they are and retries;
 * `status()` says so. A service whose remote change gorb could not apply (its kernel refused it) is tried again
 * with later changes; until then `status().failed` names it with the revision it failed from, and `waitServed`
 * (GET /cluster/revision?wait=N) does not count this node as serving that revision or any later one. A key
 * whose value does not read back as a row (another etcd client wrote it) leaves its service as it is until its
 * keys read again. An etcd that answers from another history (another cluster, or its revision below the applied one and
 * below the last change of services, backends or addresses this node has seen: it lost a change of the desired state)
 * is never followed again by this process (StoreDivergedError). One whose revision is below the applied one only lost
 * writes outside the desired state (membership records): the node goes back to etcd's revision and follows it from
 * there, once a read at that last change shows etcd still has the desired state as this node saw it (#rewind).
 */
import { ConflictError, StoreOutcomeUnknownError, StoreTooLargeError, errorMessage } from "../core/errors.ts";
import {
  encodeSavedBackend,
  encodeSavedService,
  type SavedState,
  type StateChanges,
  type StateOrigin,
  type StateStore,
} from "../core/state.ts";
import type { Logger } from "../log.ts";
import { silentLogger } from "../log.ts";
import { EtcdClient, EtcdError, endBefore, prefixEnd, type Compare, type EtcdClientOptions, type KeyValue, type TxnOp, type WatchEvent } from "./etcd-client.ts";
import { claimOps, dropStaleClaims } from "./claims.ts";
import { StoreDivergedError } from "./diverged.ts";
import { KeyLayout, type Rows, type SkippedKey } from "./layout.ts";
import { WatchLiveness } from "./watch-liveness.ts";

/**
 * Where remote changes go: Gorb.applyRemote. `read` runs under gorb's lock, so the rows are the mirror's as of
 * then: a change this node committed after the event came (its answer and its event race) is in them.
 * `onApplied` gets the services that failed: their keys keep the revisions this node last applied, so that its
 * own writes to them are conflicts (they would put its older rows back) until a later try applies them.
 */
export interface RemoteSink {
  applyRemote(
    read: () => { readonly state: SavedState; readonly ids: Iterable<string> },
    onApplied?: (failed: ReadonlySet<string>) => void,
  ): Promise<{ readonly changed: number; readonly failed: readonly string[] }>;
}

/** A service whose remote change this node could not apply, and the revision of the earliest such change. */
export interface FailedApply {
  readonly service: string;
  readonly revision: number;
}

/** What `status()` reports. */
export interface EtcdStoreStatus {
  readonly state: "ok" | "degraded";
  /** The etcd revision this node's desired state and kernel have applied. */
  readonly appliedRevision: number;
  /**
   * The revision of the latest change of services or backends this node has applied (its own writes included);
   * unlike appliedRevision, membership records and progress notifications do not move it.
   */
  readonly changeRevision: number;
  readonly lastError: string | null;
  readonly relists: number;
  /** The services this node has not applied (see FailedApply), by id. */
  readonly failed: readonly FailedApply[];
}

export interface EtcdStoreOptions extends EtcdClientOptions {
  /** Key prefix, without a trailing "/" ("/gorb"). */
  readonly prefix: string;
  /** Full relist every this many ms (a safety net behind the watch). @default 300000 */
  readonly resyncMs?: number;
  /** Pause between attempts while etcd cannot be reached. @default 1000 */
  readonly retryMs?: number;
  /**
   * How long the watch may say nothing while etcd's revision is ahead of it before the store asks etcd whether
   * anything under the prefix changed since, and how long it then has to deliver something (./watch-liveness.ts).
   * @default 3000
   */
  readonly watchLagMs?: number;
  /** This node's name (--node-id): the snapshot reads, and `restored` writes, PREFIX/restores/<node>. Without it, neither. */
  readonly node?: string;
  readonly logger?: Logger;
}

/**
 * etcd's words for a transaction refused for its size: gRPC InvalidArgument (which also covers other refusals)
 * past --max-txn-ops or --max-request-bytes, and ResourceExhausted from its gRPC server past --max-request-bytes
 * plus 512 KiB, which refuses the request before etcd reads it.
 */
const TOO_LARGE = ["too many operations in txn request", "request is too large", "received message larger than max"];

/** etcd's words from the TOO_LARGE text on ("request is too large"), when its error `reply` has one; else null. */
function tooLarge(reply: string | null): string | null {
  const text = reply === null ? undefined : TOO_LARGE.find((t) => reply.includes(t));
  return reply === null || text === undefined ? null : reply.slice(reply.indexOf(text));
}

/** A timer tick this much later than due means the process was paused. */
const PAUSE_MS = 5000;

interface Rev {
  readonly create: number;
  readonly mod: number;
}

/** See the module comment. */
export class EtcdStateStore implements StateStore {
  readonly location: string;
  /** Other nodes share it: a row this node cannot restore stays (StateStore.shared). */
  readonly shared = true;
  readonly client: EtcdClient;
  readonly prefix: string;
  readonly #keys: KeyLayout;
  readonly #log: Logger;
  readonly #resyncMs: number;
  readonly #retryMs: number;
  /** Whether the watch is alive (./watch-liveness.ts). */
  readonly #liveness: WatchLiveness;
  /** Every key under the prefix as last seen in etcd (watch or relist). */
  #mirror = new Map<string, KeyValue>();
  /** The revisions of the keys gorb's desired state has applied (what commits compare against). */
  #applied = new Map<string, Rev>();
  #appliedRevision = 0;
  #changeRevision = 0;
  #lastError: string | null = null;
  #degraded = false;
  /**
   * Why this node's view may be stale although its watch said nothing (see resync): status says degraded until
   * a relist read after it has been applied. `#staleAsks` counts the calls, so that a relist whose range was
   * read before the last one does not clear it.
   */
  #stale: string | null = null;
  #staleAsks = 0;
  #relists = 0;
  #stop: AbortController | null = null;
  #watchAbort: AbortController | null = null;
  #loop: Promise<void> | null = null;
  /** Waits for a revision (waitApplied, waitServed): each resolves once `ready` says so. */
  #waiters: { ready: () => boolean; resolve: () => void }[] = [];
  /**
   * Services with a key that does not read back (not JSON, not a row: another etcd client wrote it): this node
   * leaves them as they are, and keeps their keys' applied revisions, so its own writes to them are conflicts.
   */
  #unreadable = new Set<string>();
  /**
   * Services whose last remote change this node could not apply (a conflict with one of its services, a kernel
   * error): tried again with the next change of any service, and on each relist. Each with the revision of the
   * earliest change of it this node has not applied (a lower bound when a relist found it: what came between is
   * not known), for waitServed and the membership record.
   */
  #failed = new Map<string, number>();
  /**
   * The keys this node's commits put or deleted, with the revision of that commit, until the watch (or a relist)
   * has passed it: an event of such a key older than that revision is already superseded here.
   */
  #own = new Map<string, number>();
  /** The etcd cluster the snapshot came from ("" until load, or when etcd does not say). */
  #clusterId = "";
  /** Set for good once etcd answered from another history (see StoreDivergedError): nothing is followed after. */
  #diverged: StoreDivergedError | null = null;
  /**
   * The highest revision of any change of services, backends or addresses this node has seen (the watch's puts and
   * deletes, a relist's keys, and for a key a relist finds gone its revision, its own commits): etcd answering
   * below the applied revision but at or above this one lost only writes outside the desired state (#rewind).
   */
  #desiredRevision = 0;
  /**
   * Set by #rewind to the applied revision it went back from (0: none pending): the next relist checks that etcd
   * still has, at the #desiredRevision of the first rewind, what the mirror had then (#checkKept). Both are taken at
   * the rewind: this node's own commits move #desiredRevision past changes of other nodes it has not seen yet, and
   * those are in etcd at the later revision but not in the mirror, which is no loss.
   */
  #rewound = 0;
  #rewoundSeen: { readonly revision: number; readonly mirror: ReadonlyMap<string, KeyValue> } | null = null;
  /** PREFIX/restores/<node>, or null without a node name. */
  readonly #restoreKey: string | null;

  constructor(options: EtcdStoreOptions) {
    this.client = new EtcdClient(options);
    this.prefix = options.prefix.replace(/\/+$/, "");
    this.#keys = new KeyLayout(this.prefix);
    this.location = `etcd ${options.endpoints.join(",")} ${this.prefix}/`;
    this.#log = options.logger ?? silentLogger;
    this.#resyncMs = options.resyncMs ?? 300_000;
    this.#retryMs = options.retryMs ?? 1000;
    const prefix = this.prefix;
    const client = this.client;
    this.#liveness = new WatchLiveness(
      {
        lagMs: options.watchLagMs ?? 3000,
        revision: () => client.revision,
        applied: () => this.#appliedRevision,
        changedSince: async (from) => {
          const { revision, clusterId, kvs } = await client.range(`${prefix}/`, prefixEnd(`${prefix}/`), from + 1);
          this.#checkHistory(revision, clusterId);
          return { revision, latest: kvs.length === 0 ? null : kvs.reduce((max, kv) => Math.max(max, kv.modRevision), 0) };
        },
      },
      prefix,
    );
    this.#restoreKey = options.node === undefined ? null : this.#keys.restoreKey(options.node);
  }

  /** The revision gorb has applied (read-your-writes: wait for the revision a write answered). */
  get appliedRevision(): number {
    return this.#appliedRevision;
  }

  status(): EtcdStoreStatus {
    return {
      state: this.#degraded || this.#stale !== null ? "degraded" : "ok",
      appliedRevision: this.#appliedRevision,
      changeRevision: this.#changeRevision,
      lastError: this.#lastError ?? this.#stale,
      relists: this.#relists,
      failed: [...this.#failed].map(([service, revision]) => ({ service, revision })).sort((a, b) => a.service.localeCompare(b.service)),
    };
  }

  /**
   * Resolves once this node has applied `revision` (true), or after `timeoutMs` (false). Applied means read and
   * handed to gorb: a service whose change failed (see waitServed) counts as applied here.
   */
  waitApplied(revision: number, timeoutMs: number): Promise<boolean> {
    return this.#wait(() => this.#appliedRevision >= revision, timeoutMs);
  }

  /**
   * Resolves once this node serves `revision` (true): it has applied it, and applied every change up to it
   * (no service whose change at or below it failed, see status().failed); false after `timeoutMs`.
   */
  waitServed(revision: number, timeoutMs: number): Promise<boolean> {
    return this.#wait(() => this.#appliedRevision >= revision && [...this.#failed.values()].every((since) => since > revision), timeoutMs);
  }

  #wait(ready: () => boolean, timeoutMs: number): Promise<boolean> {
    if (ready()) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        resolve(false);
      }, timeoutMs);
      const waiter = {
        ready,
        resolve: () => {
          clearTimeout(timer);
          resolve(true);
        },
      };
      this.#waiters.push(waiter);
    });
  }

  /** Resolve the waiters whose wait is over. */
  #wake(): void {
    const ready = this.#waiters.filter((w) => w.ready());
    if (ready.length === 0) return;
    this.#waiters = this.#waiters.filter((w) => !ready.includes(w));
    for (const w of ready) w.resolve();
  }

  #advance(revision: number): void {
    if (revision <= this.#appliedRevision) return;
    this.#appliedRevision = revision;
    for (const [key, own] of this.#own) if (own <= revision) this.#own.delete(key);
    this.#wake();
  }

  /**
   * Once an apply that tried the failed services `tried` again has updated the applied revisions (before it
   * advances: a wait must not see the revision without the failure): those not in `failed` leave #failed; one in
   * `failed` keeps the revision it has failed since, or (a new failure) takes `since` (the watch knows the
   * revisions of the changes it brought) or else a lower bound of its earliest change not applied.
   */
  #settleFailed(tried: Iterable<string>, failed: Iterable<string>, since: ReadonlyMap<string, number> = new Map()): void {
    const before = new Map(this.#failed);
    for (const id of tried) this.#failed.delete(id);
    for (const id of failed) this.#failed.set(id, before.get(id) ?? since.get(id) ?? this.#pendingSince(id));
    this.#wake();
  }

  /**
   * A lower bound of the earliest revision at which etcd's keys of service `id` differ from what this node applied
   * (a relist does not see the changes between): the revision after the one applied for a key changed or deleted
   * since, its create revision for a new key; 0 (before everything) when none differs.
   */
  #pendingSince(id: string): number {
    let since = Number.POSITIVE_INFINITY;
    for (const kv of this.#mirror.values()) {
      const applied = this.#applied.get(kv.key);
      if (this.#keys.serviceOf(kv.key) !== id || applied?.mod === kv.modRevision) continue;
      since = Math.min(since, applied === undefined ? kv.createRevision : applied.mod + 1);
    }
    for (const [key, rev] of this.#applied) if (this.#keys.serviceOf(key) === id && !this.#mirror.has(key)) since = Math.min(since, rev.mod + 1);
    return Number.isFinite(since) ? since : 0;
  }

  /**
   * Throws (and remembers) StoreDivergedError when an answer comes from another history than the one followed:
   * another cluster, or a revision below both the applied one and #desiredRevision (etcd lost a change of the
   * desired state). A revision below the applied one only: #rewind.
   */
  #checkHistory(revision: number, clusterId: string): void {
    if (this.#diverged !== null) throw this.#diverged;
    const otherCluster = clusterId !== "" && this.#clusterId !== "" && clusterId !== this.#clusterId;
    if (!otherCluster && revision >= this.#appliedRevision) return;
    if (!otherCluster && revision >= this.#desiredRevision) return this.#rewind(revision);
    this.#diverge(revision, clusterId, this.#appliedRevision);
  }

  /** Remembers (for good) and throws StoreDivergedError for an answer at `revision` while `applied` was the applied one. */
  #diverge(revision: number, clusterId: string, applied: number): never {
    const followed = { appliedRevision: applied, desiredRevision: this.#desiredRevision, clusterId: this.#clusterId };
    this.#diverged = new StoreDivergedError({ revision, clusterId }, followed);
    this.#watchAbort?.abort();
    throw this.#diverged;
  }

  /**
   * etcd answers at `revision`, below the applied one but not below the last change of the desired state this
   * node has seen: it lost writes outside the desired state (membership records; a single member can lose writes
   * it acknowledged when killed, etcd issue 14370), and will number new writes from revision + 1 again. The view
   * goes back to that revision (waits for later ones wait for etcd to get there again), and the watch is
   * relisted and opened from there; that relist first checks that etcd still has the desired state as seen
   * (#checkKept), else the store diverged after all.
   */
  #rewind(revision: number): void {
    this.#log.warn(
      `etcd's revision ${revision} is below the revision ${this.#appliedRevision} this node has applied, but not below revision ` +
        `${this.#desiredRevision} of the last change of services, backends or addresses it has seen: etcd lost writes outside ` +
        `the desired state (membership records); following etcd again from revision ${revision}`,
    );
    this.#rewound = Math.max(this.#rewound, this.#appliedRevision);
    this.#rewoundSeen ??= { revision: this.#desiredRevision, mirror: new Map(this.#mirror) };
    this.#appliedRevision = revision;
    this.#liveness.rewound(revision);
    this.#watchAbort?.abort();
  }

  /** Whether `key` is part of the desired state (services/, backends/, addresses/), as #desiredRevision counts. */
  #desired(key: string): boolean {
    return this.#keys.serviceOf(key) !== null || key.startsWith(this.#keys.addresses);
  }

  #sawDesired(kvs: readonly KeyValue[]): void {
    for (const kv of kvs) if (this.#desired(kv.key)) this.#desiredRevision = Math.max(this.#desiredRevision, kv.modRevision);
  }

  /**
   * After #rewind: etcd's services and backends at #desiredRevision must be the mirror's (same keys, revisions
   * and values); a change of them it lost (or a history that reused its revision) makes the store diverged.
   */
  async #checkKept(revision: number, clusterId: string): Promise<void> {
    const seen = this.#rewoundSeen;
    if (this.#rewound === 0 || seen === null) return;
    if (!(await this.#kept(seen.revision, seen.mirror))) this.#diverge(revision, clusterId, this.#rewound);
    this.#rewound = 0;
    this.#rewoundSeen = null;
  }

  /** Whether etcd's services and backends at revision `at` are `mirror`'s; false when etcd refuses the read (compacted). */
  async #kept(at: number, mirror: ReadonlyMap<string, KeyValue>): Promise<boolean> {
    let kvs: KeyValue[] = [];
    try {
      if (at > 0) kvs = await this.client.rangeAt(this.#keys.backends, prefixEnd(this.#keys.services), at);
    } catch (error) {
      if (error instanceof EtcdError && error.kind === "rejected") return false;
      throw error;
    }
    const rows = kvs.filter((kv) => kv.binaryKey !== true && this.#keys.serviceOf(kv.key) !== null);
    return (
      rows.length === mirror.size &&
      rows.every((kv) => {
        const mine = mirror.get(kv.key);
        return mine?.modRevision === kv.modRevision && mine.createRevision === kv.createRevision && mine.value === kv.value;
      })
    );
  }

  /**
   * The keys of services and backends among `kvs`. A key whose bytes are not UTF-8 (another client wrote it) is
   * none: the API never makes one, and its text is not the key (two such keys, or one and a real id, could read
   * the same). It is logged, added to `skipped`, and left out of the mirror.
   */
  #rowKeys(kvs: readonly KeyValue[], skipped: SkippedKey[] = []): KeyValue[] {
    return kvs.filter((kv) => {
      if (this.#keys.serviceOf(kv.key) === null) return false;
      if (kv.binaryKey !== true) return true;
      this.#notUtf8(kv);
      skipped.push({ key: kv.key, revision: kv.modRevision, why: "the key is not UTF-8" });
      return false;
    });
  }

  #notUtf8(kv: KeyValue): void {
    this.#log.error(`etcd key ${kv.key} (revision ${kv.modRevision}) is not a gorb key (the key is not UTF-8); ignoring it`);
  }

  /** The rows of `ids` (every service when null) in the mirror; see KeyLayout.readRows. */
  #rows(ids: ReadonlySet<string> | null): Rows {
    return this.#keys.readRows(this.#mirror.values(), ids, this.#log);
  }

  // ---- snapshot -----------------------------------------------------------------------------------------

  /** Range the whole prefix; the mirror and applied revisions become that snapshot. Returns its rows. */
  async load(): Promise<{ state: SavedState; revision: number; skipped: readonly SkippedKey[] }> {
    const { revision, clusterId, kvs } = await this.client.range(`${this.prefix}/`, prefixEnd(`${this.prefix}/`));
    this.#clusterId = clusterId;
    const binary: SkippedKey[] = [];
    this.#mirror = new Map(this.#rowKeys(kvs, binary).map((kv) => [kv.key, kv]));
    this.#applied = new Map([...this.#mirror.values()].map((kv) => [kv.key, { create: kv.createRevision, mod: kv.modRevision }]));
    for (const kv of this.#mirror.values()) this.#changeRevision = Math.max(this.#changeRevision, kv.modRevision);
    this.#sawDesired(kvs);
    this.#advance(revision);
    // A service with an unreadable key is restored with the rows that read (a destination of an unreadable
    // backend is an unknown one, left serving); the backends of an unreadable service row are left out, or the
    // restore would drop them from the shared state as orphans. Such a service follows etcd again once its keys
    // read.
    const { state, unreadable, skipped } = this.#rows(null);
    this.#unreadable = unreadable;
    const restored = new Set(state.services.map((s) => s.id));
    // Every service etcd has holds a claim on its key, its rows read or not: the kernel ledger's "not deleted". And
    // the revision this node's last start restored, from the same snapshot.
    const claimed: string[] = [];
    let last: KeyValue | undefined;
    for (const kv of kvs) {
      if (kv.key === this.#restoreKey) last = kv;
      const id = kv.binaryKey === true ? null : this.#keys.claimedKeyId(kv.key);
      if (id !== null) claimed.push(id);
    }
    const lastRestore = last === undefined || !/^\d{1,15}$/.test(last.value) ? undefined : Number(last.value);
    const origin = { clusterId, revision, ...(lastRestore !== undefined ? { lastRestore } : {}) };
    return {
      state: { services: state.services, backends: state.backends.filter((b) => restored.has(b.service)), origin, claimed },
      revision,
      skipped: [...binary, ...skipped],
    };
  }

  /** StateStore.restored: PREFIX/restores/<node> becomes the revision restored (nothing without a node name). */
  async restored(origin: StateOrigin): Promise<void> {
    if (this.#restoreKey !== null) await this.client.put(this.#restoreKey, String(origin.revision));
  }

  // ---- writes -------------------------------------------------------------------------------------------

  #compare(key: string): Compare {
    const rev = this.#applied.get(key);
    return rev === undefined ? { key, target: "create", op: "equal", revision: 0 } : { key, target: "mod", op: "equal", revision: rev.mod };
  }

  /**
   * The revision up to which this node has applied every change of service `id` (of every service when null): its
   * applied revision, or the one before the earliest change it failed to apply.
   */
  #seen(id: string | null): number {
    const failed = id === null ? Math.min(Number.POSITIVE_INFINITY, ...this.#failed.values()) : (this.#failed.get(id) ?? Number.POSITIVE_INFINITY);
    return Math.max(0, Math.min(this.#appliedRevision, failed - 1));
  }

  /**
   * The compares that let the delete of service `id` take every key under its backends' prefix only when etcd holds
   * there what this node has applied: a backend another node added or changed, that this node's watch has not
   * brought yet (or that it could not apply), fails them. This node has applied every change of the service up to
   * `seen` (#seen), so each key there must be older than seen + 1; but for the keys it applied later (its own
   * writes the watch has not brought back yet), each compared with its revision, the prefix split around them.
   * With `target` "create", only a backend another node added fails them (what a backend's create needs).
   */
  #backendsCompare(id: string, target: "mod" | "create" = "mod"): Compare[] {
    const prefix = this.#keys.backendKey(id, "");
    const seen = this.#seen(id);
    const later = [...this.#applied]
      .filter(([key, rev]) => key.startsWith(prefix) && rev.mod > seen)
      .map(([key]) => key)
      .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const compare = later.map((key) => this.#compare(key));
    let from = prefix;
    for (const key of [...later, null]) {
      compare.push({ key: from, rangeEnd: key === null ? prefixEnd(prefix) : endBefore(key), target, op: "less", revision: seen + 1 });
      if (key !== null) from = `${key}\0`;
    }
    return compare;
  }

  /**
   * For a change planned from every service this node has (StateChanges.wholeSet, an apply): the keys of services
   * and backends changed since #seen are read (keys only). One this node has not applied as it is (another node
   * changed it, and this node's watch has not brought it yet) is a ConflictError; otherwise the compares returned
   * hold both prefixes as read. A key deleted elsewhere is not seen here: the change's compares of the keys it
   * touches fail for it, and one it does not touch changes nothing of the set.
   */
  async #unchangedCompare(): Promise<Compare[]> {
    const { services, backends } = this.#keys;
    const { revision, clusterId, kvs } = await this.client.range(backends, prefixEnd(services), this.#seen(null) + 1);
    this.#checkHistory(revision, clusterId);
    for (const kv of kvs) {
      const service = this.#keys.serviceOf(kv.key);
      if (service === null || this.#applied.get(kv.key)?.mod === kv.modRevision) continue;
      if (this.#failed.size > 0) void this.#retryFailed();
      if (this.#failed.has(service)) throw this.#failedConflict(service);
      throw new ConflictError(`another gorb node changed ${kv.key} first, and this node has not applied it yet; retry once it has`);
    }
    return [services, backends].map((key) => ({ key, rangeEnd: prefixEnd(key), target: "mod", op: "less", revision: revision + 1 }));
  }

  /**
   * The conflict of a write planned from this node's state of `service`, whose latest change this node could not
   * apply (its kernel refused it): a retry is no use until it has (it tries again with every change and relist).
   */
  #failedConflict(service: string): ConflictError {
    return new ConflictError(
      `this node could not apply the latest change of service ${JSON.stringify(service)} (its kernel refused it: this node's log ` +
        "says why, GET /cluster lists it), and plans from what it has; write through a node that has applied it, or once this node has",
    );
  }

  /** One transaction for one group of requests; see the module comment. */
  async commit(changes: StateChanges, retry = true): Promise<void> {
    const compare: Compare[] = [];
    const ops: TxnOp[] = [];
    const puts: { key: string; value: string }[] = [];
    const deletes: string[] = [];
    const deletedServices: string[] = [];
    // Address claims: one service per address across the fleet (./claims.ts).
    const claims = claimOps(this.#keys, changes, (id) => this.#keys.claimOfRow(id, this.#mirror.get(this.#keys.serviceKey(id))));
    compare.push(...claims.compare);
    for (const id of changes.deleteServices) {
      const key = this.#keys.serviceKey(id);
      if (this.#applied.has(key)) compare.push(this.#compare(key));
      compare.push(...this.#backendsCompare(id));
      ops.push({ deleteRange: { key } }, { deleteRange: { key: this.#keys.backendKey(id, ""), rangeEnd: prefixEnd(this.#keys.backendKey(id, "")) } });
      deletes.push(key);
      deletedServices.push(id);
    }
    for (const s of changes.putServices) {
      const key = this.#keys.serviceKey(s.id);
      compare.push(this.#compare(key));
      puts.push({ key, value: JSON.stringify(encodeSavedService(s)) });
    }
    ops.push(...claims.release);
    for (const b of changes.deleteBackends) {
      const key = this.#keys.backendKey(b.service, b.id);
      if (this.#applied.has(key)) compare.push(this.#compare(key));
      ops.push({ deleteRange: { key } });
      deletes.push(key);
    }
    // A backend is written only into the service this node knows: another node may have deleted it (and its
    // backends) meanwhile, and the backend would stay behind without a service, to come back with the next service
    // of that id. Its key's create revision says it is the same service; its other changes do not matter here.
    const guarded = new Set(changes.putServices.map((s) => s.id));
    // A backend created must be its service's only one on its destination, which this node checked against the
    // backends it has applied: one another node added meanwhile (maybe on the same destination) fails the change.
    // An apply compares every backend already (#unchangedCompare).
    const creating = new Set<string>();
    for (const b of changes.putBackends) {
      const key = this.#keys.backendKey(b.service, b.id);
      compare.push(this.#compare(key));
      puts.push({ key, value: JSON.stringify(encodeSavedBackend(b)) });
      if (changes.wholeSet !== true && !this.#applied.has(key) && !creating.has(b.service)) {
        creating.add(b.service);
        compare.push(...this.#backendsCompare(b.service, "create"));
      }
      if (guarded.has(b.service)) continue;
      guarded.add(b.service);
      const service = this.#keys.serviceKey(b.service);
      const rev = this.#applied.get(service);
      if (rev !== undefined) compare.push({ key: service, target: "create", op: "equal", revision: rev.create });
    }
    // A backend created with its service: the service must still exist when it is written.
    for (const p of puts) ops.push({ put: p });
    ops.push(...claims.claim);
    if (ops.length === 0) return;
    if (this.#diverged !== null) throw this.#diverged;
    let answer: { succeeded: boolean; revision: number };
    if (changes.wholeSet === true) {
      try {
        compare.push(...(await this.#unchangedCompare()));
      } catch (error) {
        // Nothing was sent: unreachable or without quorum, etcd is down; another history, diverged.
        if (error instanceof StoreDivergedError || (error instanceof EtcdError && error.kind !== "rejected")) this.#fail(error, "cannot read the shared state from etcd");
        throw error;
      }
    }
    try {
      answer = await this.client.txn(compare, ops);
    } catch (error) {
      // Unreachable or no quorum: degraded until etcd answers. A refusal fails this change only; one for its
      // size (more keys than etcd's --max-txn-ops, more bytes than --max-request-bytes) says so.
      if (error instanceof EtcdError && error.kind !== "rejected") this.#fail(error, "cannot write the shared state to etcd");
      // Sent, and not answered in time, or answered Unavailable (its proposal may still commit): etcd may still apply it.
      if (error instanceof EtcdError && (error.kind === "timeout" || error.kind === "unavailable")) {
        throw new StoreOutcomeUnknownError(error.message, this.client.timeoutMs, { cause: error });
      }
      const reason = error instanceof EtcdError && error.kind === "rejected" ? tooLarge(error.reply) : null;
      if (reason !== null) throw new StoreTooLargeError(ops.length, reason, { cause: error });
      throw error;
    }
    const { succeeded, revision } = answer;
    try {
      this.#checkHistory(revision, "");
    } catch (error) {
      this.#fail(error, "cannot write the shared state to etcd");
      throw error;
    }
    if (!succeeded) {
      // A claim left behind (by a gorb from before claims, which deletes a service without its claim) is dropped
      // and the change tried once more.
      if (retry && (await dropStaleClaims(this.client, this.#keys, claims.taken, this.#log))) return this.commit(changes, false);
      // The conflict may be a remote change this node could not apply (see RemoteSink): tried again now, so that
      // the caller's next try, after reading the service again, can go through.
      if (this.#failed.size > 0) void this.#retryFailed();
      const failed = [...changes.putServices.map((r) => r.id), ...changes.deleteServices, ...changes.putBackends.map((r) => r.service), ...changes.deleteBackends.map((r) => r.service)].find((id) => this.#failed.has(id));
      if (failed !== undefined) throw this.#failedConflict(failed);
      throw new ConflictError("another gorb node changed the same service or backend first; read it again and retry");
    }
    for (const id of deletedServices) {
      const backends = this.#keys.backendKey(id, "");
      for (const key of [...this.#applied.keys()]) if (key.startsWith(backends)) this.#applied.delete(key);
      for (const key of [...this.#mirror.keys()]) {
        if (!key.startsWith(backends)) continue;
        this.#mirror.delete(key);
        this.#own.set(key, revision);
      }
    }
    for (const key of deletes) {
      this.#applied.delete(key);
      this.#mirror.delete(key);
      this.#own.set(key, revision);
    }
    for (const { key, value } of puts) {
      this.#own.set(key, revision);
      const create = this.#applied.get(key)?.create ?? revision;
      this.#applied.set(key, { create, mod: revision });
      this.#mirror.set(key, { key, value, createRevision: create, modRevision: revision, lease: "0" });
    }
    // This change may have removed what kept a failed remote change out (a service it conflicted with).
    if (this.#failed.size > 0) void this.#retryFailed();
    this.#lastCommit = Math.max(this.#lastCommit, revision);
    this.#changeRevision = Math.max(this.#changeRevision, revision);
    this.#desiredRevision = Math.max(this.#desiredRevision, revision);
    this.#degraded = false;
  }

  #lastCommit = 0;

  /**
   * The revision a mutation's answer names (X-Gorb-Revision): this node's last commit, or the latest change of
   * services and backends it has applied from other nodes when that is later. A write that found everything as
   * asked (another node made the same change) commits nothing, and what it answers holds from that change on.
   */
  get committedRevision(): number {
    return Math.max(this.#lastCommit, this.#changeRevision);
  }

  /** A linearizable read: fails while etcd has no quorum (gorb calls it after a failed commit). */
  async probe(): Promise<void> {
    const { revision, clusterId } = await this.client.range(`${this.prefix}/services/`, prefixEnd(`${this.prefix}/services/`));
    this.#checkHistory(revision, clusterId);
    this.#degraded = false;
    this.#lastError = null;
  }

  /** False while etcd could not be reached (see StateStore.available). */
  available(): boolean {
    return !this.#degraded;
  }

  // ---- sync ---------------------------------------------------------------------------------------------

  /** Apply again the remote changes that failed (queued behind the change that called it). */
  async #retryFailed(): Promise<void> {
    const sink = this.#sink;
    if (sink === null) return;
    const retried = [...this.#failed.keys()];
    let follow: string[] = [];
    const read = () => {
      const { state, unreadable } = this.#rows(new Set(retried));
      follow = retried.filter((id) => !unreadable.has(id));
      return { state, ids: follow };
    };
    try {
      await sink.applyRemote(read, (failed) => {
        this.#caughtUp(new Set(follow.filter((id) => !failed.has(id))));
        this.#settleFailed(retried, failed);
      });
    } catch (error) {
      this.#log.error(`cannot apply the shared state again: ${errorMessage(error)}`);
    }
  }

  #sink: RemoteSink | null = null;

  /** Services now applied as the mirror has them (a failed change applied at last): their keys take its revisions. */
  #caughtUp(ids: ReadonlySet<string>): void {
    if (ids.size === 0) return;
    for (const key of [...this.#applied.keys()]) if (ids.has(this.#keys.serviceOf(key) ?? "") && !this.#mirror.has(key)) this.#applied.delete(key);
    for (const kv of this.#mirror.values()) {
      if (!ids.has(this.#keys.serviceOf(kv.key) ?? "")) continue;
      this.#applied.set(kv.key, { create: kv.createRevision, mod: kv.modRevision });
      this.#changeRevision = Math.max(this.#changeRevision, kv.modRevision);
    }
  }

  /** Watch from the snapshot's revision, relist when the watch ends or on the resync timer. */
  sync(sink: RemoteSink): void {
    if (this.#loop !== null) return;
    this.#sink = sink;
    const stop = new AbortController();
    this.#stop = stop;
    const timer = setInterval(() => this.#watchAbort?.abort(), this.#resyncMs);
    // A process that was paused (SIGSTOP, a frozen VM) cannot trust its watch stream (it may be half-open, or
    // far behind): a tick that comes much later than due relists at once.
    let last = Date.now();
    const pauses = setInterval(() => {
      const now = Date.now();
      if (now - last > PAUSE_MS) {
        this.#log.warn(`this process was paused for ${Math.round((now - last) / 1000)} s; relisting the shared state`);
        this.#watchAbort?.abort();
      } else {
        const stale = this.#liveness.check(now);
        if (stale !== null) {
          if (stale.avoid !== null) this.client.avoid(stale.avoid);
          this.resync(stale.reason);
        }
      }
      last = now;
    }, 1000);
    this.#loop = this.#run(sink, stop.signal).finally(() => {
      clearInterval(timer);
      clearInterval(pauses);
    });
  }

  /**
   * Evidence from outside the watch that this node may have missed changes (its membership lease expired, its
   * keepalives went unanswered for longer than the lease): a watch held up somewhere (a half-open connection, a
   * partition) says nothing, not even that it is stale. The store says degraded (status, gorb_store_up 0) and the
   * watch is restarted from a fresh list, whose difference is applied as for any relist; it says ok again once
   * a list read after this call is applied.
   */
  resync(reason: string): void {
    if (this.#loop === null || this.#diverged !== null) return;
    if (this.#stale === null) this.#log.warn(`${reason}: the etcd watch may have missed changes; relisting the shared state`);
    this.#stale = reason;
    this.#staleAsks++;
    this.#watchAbort?.abort();
  }

  /** Stop watching. */
  async close(): Promise<void> {
    this.#stop?.abort();
    this.#watchAbort?.abort();
    await this.#loop;
    this.#loop = null;
  }

  async #run(sink: RemoteSink, stop: AbortSignal): Promise<void> {
    let from = this.#appliedRevision + 1;
    while (!stop.aborted) {
      const abort = new AbortController();
      this.#watchAbort = abort;
      const onStop = () => abort.abort();
      stop.addEventListener("abort", onStop);
      this.#liveness.started(this.client.endpoint, Date.now());
      const end = await this.client.watch(`${this.prefix}/`, prefixEnd(`${this.prefix}/`), from, (events, revision) => this.#watched(sink, events, revision), abort.signal);
      this.#liveness.ended();
      stop.removeEventListener("abort", onStop);
      if (stop.aborted) return;
      if (end.kind === "compacted") this.#log.warn(`etcd compacted past revision ${from} (now ${end.compactRevision}); relisting`);
      else if (end.kind === "error") this.#fail(end.error, "the etcd watch broke");
      else if (end.kind === "eof") this.#log.warn("the etcd watch ended; relisting");
      from = (await this.#relist(sink, stop)) + 1;
    }
  }

  #fail(error: unknown, what: string): void {
    const text = errorMessage(error);
    if (!this.#degraded || this.#lastError !== text) this.#log.error(`${what}: ${text}; keeping the desired state and IPVS as they are`);
    this.#degraded = true;
    this.#lastError = text;
  }

  /** Range again until it works; apply the difference; returns the revision read. */
  async #relist(sink: RemoteSink, stop: AbortSignal): Promise<number> {
    for (;;) {
      if (stop.aborted) return this.#appliedRevision;
      const asks = this.#staleAsks;
      try {
        const { revision, clusterId, kvs } = await this.client.range(`${this.prefix}/`, prefixEnd(`${this.prefix}/`));
        this.#checkHistory(revision, clusterId);
        await this.#checkKept(revision, clusterId);
        // A change this node committed after etcd served this range (its answer read first) is newer than the
        // snapshot: applied, the snapshot would take it back, in the kernel too, until the watch brought it again.
        if (this.#lastCommit > revision) continue;
        const before = this.#mirror;
        const mirror = new Map(this.#rowKeys(kvs).map((kv) => [kv.key, kv]));
        const ids = new Set<string>();
        for (const [key, kv] of mirror) if (before.get(key)?.modRevision !== kv.modRevision) ids.add(this.#keys.serviceOf(key) ?? "");
        for (const key of before.keys()) if (!mirror.has(key)) ids.add(this.#keys.serviceOf(key) ?? "");
        for (const id of this.#failed.keys()) ids.add(id);
        ids.delete("");
        this.#mirror = mirror;
        this.#sawDesired(kvs);
        // A key gone has no revision to go by: deleted at or before this one.
        if ([...before.keys()].some((key) => !mirror.has(key))) this.#desiredRevision = Math.max(this.#desiredRevision, revision);
        this.#relists++;
        let frozen = new Set<string>();
        const read = () => {
          const { state, unreadable } = this.#rows(ids);
          // Unreadable now, or before and untouched since: their keys keep the revisions last applied.
          frozen = new Set([...unreadable, ...[...this.#unreadable].filter((id) => !ids.has(id))]);
          return { state, ids: [...ids].filter((id) => !unreadable.has(id)) };
        };
        const { changed } = await sink.applyRemote(read, (failed) => {
          // A service this node could not apply keeps the revisions it last applied, as an unreadable one does.
          frozen = new Set([...frozen, ...failed]);
          const applied = new Map<string, Rev>();
          for (const [key, rev] of this.#applied) if (frozen.has(this.#keys.serviceOf(key) ?? "")) applied.set(key, rev);
          for (const kv of mirror.values()) {
            if (frozen.has(this.#keys.serviceOf(kv.key) ?? "")) continue;
            applied.set(kv.key, { create: kv.createRevision, mod: kv.modRevision });
            // A delete found by a relist has no revision to go by: only puts move changeRevision here.
            if (ids.has(this.#keys.serviceOf(kv.key) ?? "")) this.#changeRevision = Math.max(this.#changeRevision, kv.modRevision);
          }
          this.#applied = applied;
          this.#unreadable = new Set([...frozen].filter((id) => !failed.has(id) || this.#unreadable.has(id)));
          this.#settleFailed([...this.#failed.keys()], failed);
          this.#advance(revision);
        });
        if (this.#degraded || this.#stale !== null) this.#log.info(`etcd answers again at revision ${revision}; ${changed} service(s) caught up`);
        this.#degraded = false;
        this.#lastError = null;
        // Told again that the view may be stale while this range was read: it may predate what was missed.
        if (this.#staleAsks !== asks) continue;
        this.#stale = null;
        return revision;
      } catch (error) {
        this.#fail(error, "cannot read the shared state from etcd");
        const diverged = error instanceof StoreDivergedError;
        await new Promise<void>((resolve) => {
          // Diverged: nothing to retry; wait for close().
          const t = diverged ? undefined : setTimeout(resolve, this.#retryMs);
          stop.addEventListener("abort", () => {
            clearTimeout(t);
            resolve();
          });
        });
      }
    }
  }

  /** One message of the watch: its silence starts again once the batch is applied (./watch-liveness.ts). */
  async #watched(sink: RemoteSink, events: readonly WatchEvent[], revision: number): Promise<void> {
    this.#liveness.message(events.length > 0, Date.now());
    try {
      await this.#onEvents(sink, events, revision);
    } finally {
      this.#liveness.applied(Date.now());
    }
  }

  /** One watch batch: update the mirror, apply what this node did not write itself, advance. */
  async #onEvents(sink: RemoteSink, events: readonly WatchEvent[], revision: number): Promise<void> {
    const ids = new Set<string>();
    const touched: { key: string; revision: number }[] = [];
    for (const event of events) {
      // A delete event's kv carries the revision of the delete.
      if (this.#desired(event.kv.key)) this.#desiredRevision = Math.max(this.#desiredRevision, event.kv.modRevision);
      const service = this.#keys.serviceOf(event.kv.key);
      if (service === null) continue;
      if (event.kv.binaryKey === true) {
        if (event.type === "put") this.#notUtf8(event.kv);
        continue;
      }
      // Older than this node's own write of the key (its watch is behind its commits): the mirror already has
      // what came after. Applied, another node's earlier create or delete would take this node's change back.
      const own = this.#own.get(event.kv.key);
      if (own !== undefined && event.kv.modRevision < own) continue;
      const applied = this.#applied.get(event.kv.key);
      // A service left as it is (an unreadable key) is read again on any change of its keys.
      const frozen = this.#unreadable.has(service);
      if (event.type === "put") {
        this.#mirror.set(event.kv.key, event.kv);
        // This node's own write, or an older state of a key it has already moved past: nothing to apply.
        if (!frozen && applied !== undefined && applied.mod >= event.kv.modRevision) continue;
      } else {
        this.#mirror.delete(event.kv.key);
        // A key this node never applied is nothing to delete here, unless its service failed: then it is tried
        // again (it may have nothing left to apply, and leaves `failed`).
        if (!frozen && applied === undefined && !this.#failed.has(service)) continue;
      }
      ids.add(service);
      // A delete event's kv carries the revision of the delete.
      touched.push({ key: event.kv.key, revision: event.kv.modRevision });
    }
    if (ids.size === 0) {
      this.#advance(revision);
      return;
    }
    // A change elsewhere may have removed what kept a failed one out (the service it conflicted with).
    const retried = [...this.#failed.keys()];
    for (const id of retried) ids.add(id);
    const mirror = this.#mirror;
    let unreadable = new Set<string>();
    let thawed = new Set<string>();
    const read = () => {
      const rows = this.#rows(ids);
      unreadable = rows.unreadable;
      const follow = [...ids].filter((id) => !unreadable.has(id));
      // A service whose keys read again: every key of it is applied now, those that changed while it was not too.
      thawed = new Set(follow.filter((id) => this.#unreadable.has(id)));
      return { state: rows.state, ids: follow };
    };
    await sink.applyRemote(read, (failed) => {
      for (const { key, revision: changed } of touched) {
        const service = this.#keys.serviceOf(key) ?? "";
        // Not applied: the key keeps the revision this node last applied (see RemoteSink).
        if (unreadable.has(service) || failed.has(service)) continue;
        this.#changeRevision = Math.max(this.#changeRevision, changed);
        const kv = mirror.get(key);
        if (kv === undefined) this.#applied.delete(key);
        else this.#applied.set(key, { create: kv.createRevision, mod: kv.modRevision });
      }
      // Failed before and applied now: every key of it is applied, those that changed while it was failing too.
      this.#caughtUp(new Set([...thawed, ...retried.filter((id) => !unreadable.has(id))].filter((id) => !failed.has(id))));
      for (const id of thawed) if (!failed.has(id)) this.#unreadable.delete(id);
      for (const id of unreadable) this.#unreadable.add(id);
      const since = new Map<string, number>();
      for (const { key, revision: changed } of touched) {
        const service = this.#keys.serviceOf(key) ?? "";
        since.set(service, Math.min(since.get(service) ?? changed, changed));
      }
      this.#settleFailed(retried, failed, since);
      this.#advance(revision);
    });
    if (this.#degraded) {
      this.#degraded = false;
      this.#lastError = null;
    }
  }
}
