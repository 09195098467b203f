/**
 * Whether the etcd watch of the shared state is alive: a watch held up by the network (a partition, a half-open
 * connection) says nothing, not even that it is stale. Two kinds of evidence make EtcdStateStore relist:
 *
 * - Silence. A progress notification after nothing else since the last one (or since the watch started) measures
 *   etcd's progress interval (--experimental-watch-progress-notify-interval, 10 minutes unless set). etcd sends one
 *   each interval (plus up to a tenth) to a watch it sent no events in the interval before, so a live watch is never
 *   silent for much more than two: from the first measure on, a watch silent for SILENT_INTERVALS of them is dead.
 * - Lag. Every answer etcd gives this node names its current revision (EtcdClient.revision): when that is ahead of
 *   what the watch delivered and the watch has said nothing for `lagMs`, a keys-only read of the prefix since the
 *   watch's revision asks whether etcd has changes there (etcd's revision moves for keys outside the prefix too,
 *   which a live watch rightly says nothing of). When it has, and the watch still says nothing `lagMs` after that
 *   read was sent, the watch is stale, and its endpoint is avoided for the next one. A read that finds nothing, or
 *   fails (etcd unreachable: membership and writes say so), is no evidence; the next one waits for etcd to move past
 *   it. Deletes leave no key to find; another gorb node's delete moves its membership record.
 *
 * A batch being applied is not silence: the watch is not read meanwhile.
 */

/**
 * A watch that has sent nothing for this many of etcd's progress intervals is dead (see the module comment).
 */
const SILENT_INTERVALS = 3;

/** What the store gives the check. */
export interface WatchLivenessSource {
  /** How long the watch may say nothing while etcd has changes under the prefix, in ms. */
  readonly lagMs: number;
  /** etcd's revision as its last answer to this node named it. */
  revision(): number;
  /** The revision this node has applied (what the watch delivered). */
  applied(): number;
  /**
   * A keys-only read of the prefix for changes after `from`: etcd's revision, and the highest modification
   * revision of the keys found (null: none). Rejects when etcd cannot be read (or answers from another history).
   */
  changedSince(from: number): Promise<{ revision: number; latest: number | null }>;
}

/** Why the watch is taken for dead, and the endpoint to avoid for the next one (null: any). */
export interface StaleWatch {
  readonly reason: string;
  readonly avoid: string | null;
}

/** See the module comment. One per store; a new watch calls `started`. */
export class WatchLiveness {
  readonly #source: WatchLivenessSource;
  readonly #prefix: string;
  /** When the watch last sent something (or started); null while no watch runs. */
  #heardAt: number | null = null;
  /** A batch is being applied: the watch is not read meanwhile. */
  #applying = false;
  /** Since when the watch has sent only progress notifications (null after events). */
  #quietSince: number | null = null;
  /** The interval etcd's progress notifications came at, once seen. */
  #progressMs: number | null = null;
  /** The messages the watches have sent, each new watch counting as one: a probe tells by it whether the watch spoke. */
  #messages = 0;
  #endpoint = "";
  #probing = false;
  /** The revision up to which the last probe found nothing under the prefix. */
  #quietUpTo = 0;
  /** Once a probe found changes the watch had not delivered: when it was sent, the message count then, what it found. */
  #owed: { readonly since: number; readonly messages: number; readonly revision: number; readonly from: number } | null = null;

  constructor(source: WatchLivenessSource, prefix: string) {
    this.#source = source;
    this.#prefix = prefix;
  }

  /** A watch started on `endpoint`: a probe of the watch before it finds its answer stale. */
  started(endpoint: string, now: number): void {
    this.#heardAt = now;
    this.#quietSince = now;
    this.#messages++;
    this.#owed = null;
    this.#endpoint = endpoint;
  }

  /** The watch ended: nothing to judge until the next one starts. */
  ended(): void {
    this.#heardAt = null;
  }

  /** A message of the watch arrived (events, or a progress notification when `events` is false); its batch is applied next. */
  message(events: boolean, now: number): void {
    this.#messages++;
    if (events) this.#quietSince = null;
    else {
      if (this.#quietSince !== null) this.#progressMs = now - this.#quietSince;
      this.#quietSince = now;
    }
    this.#applying = true;
  }

  /** The message's batch is applied: the watch's silence starts again. */
  applied(now: number): void {
    this.#applying = false;
    this.#heardAt = now;
  }

  /** The store went back to etcd's lower revision (EtcdStateStore's rewind): what a probe found quiet above it is not known. */
  rewound(revision: number): void {
    this.#quietUpTo = Math.min(this.#quietUpTo, revision);
  }

  /** Called about once a second: the evidence that the watch is dead, or null (a probe may have been started). */
  check(now: number): StaleWatch | null {
    const heard = this.#heardAt;
    if (heard === null || this.#applying) return null;
    if (this.#progressMs !== null && now - heard > SILENT_INTERVALS * this.#progressMs) {
      const silent = ((now - heard) / 1000).toFixed(1);
      const reason = `the etcd watch sent nothing for ${silent} s, not even the progress notification etcd sends every ${(this.#progressMs / 1000).toFixed(1)} s`;
      // Until a notification measures it again: etcd restarted with a longer interval would otherwise have every
      // new watch taken for dead before its first notification, one relist after another.
      this.#progressMs *= 2;
      return { reason, avoid: null };
    }
    if (this.#probing) return null;
    const owed = this.#owed;
    if (owed !== null) {
      if (this.#messages !== owed.messages) this.#owed = null;
      else if (now - owed.since > this.#source.lagMs) {
        this.#owed = null;
        const silent = ((now - heard) / 1000).toFixed(1);
        return {
          reason: `the etcd watch on ${this.#endpoint} sent nothing for ${silent} s, while etcd has changes under ${this.#prefix}/ after revision ${owed.from} (up to ${owed.revision})`,
          avoid: this.#endpoint,
        };
      }
      return null;
    }
    if (now - heard < this.#source.lagMs || this.#source.revision() <= Math.max(this.#source.applied(), this.#quietUpTo)) return null;
    void this.#probe(now);
    return null;
  }

  /** The lag check's read: does etcd have keys under the prefix changed after what the watch delivered? */
  async #probe(since: number): Promise<void> {
    this.#probing = true;
    const messages = this.#messages;
    const from = this.#source.applied();
    try {
      const { revision, latest } = await this.#source.changedSince(from);
      // The watch spoke (or ended) meanwhile: it is alive, or being replaced.
      if (this.#messages !== messages || this.#heardAt === null) return;
      if (latest === null) this.#quietUpTo = revision;
      else this.#owed = { since, messages, revision: latest, from };
    } catch {
      // No evidence either way (see the module comment).
    } finally {
      this.#probing = false;
    }
  }
}
