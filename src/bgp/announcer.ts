/**
 * The speaker interface: whatever tells routers which host prefixes this node serves. The BIRD implementation
 * (./bird-announcer.ts) is the only one today; a native BGP speaker could be added behind the same interface.
 *
 * The VIP controller (./controller.ts) decides what to announce; an announcer only carries it out and says
 * what the speaker has confirmed.
 */

/** What the announcer knows about one prefix. */
export interface PrefixStatus {
  /** "203.0.113.10/32" or "2001:db8::10/128". */
  readonly prefix: string;
  /** gorb wants it announced. */
  readonly wanted: boolean;
  /** The speaker has it as its best route for the prefix (read back from it), so routers are told. */
  readonly confirmed: boolean;
  /** The last error about this prefix (a refused configuration, an unreachable speaker); null when none. */
  readonly error: string | null;
}

/** The speaker as a whole. */
export interface SpeakerStatus {
  /** "bird". */
  readonly kind: string;
  /** The speaker answered the last time gorb asked. */
  readonly reachable: boolean;
  /** Its own description ("BIRD 2.0.12 ready."), when known. */
  readonly version: string | null;
  readonly lastError: string | null;
}

/** See the module comment. */
export interface Announcer {
  /** Adds prefixes to the announced set; resolves once the speaker was told (or the attempt failed: see status()). */
  announce(prefixes: readonly string[]): Promise<void>;
  /** Removes prefixes from the announced set; resolves once the speaker was told (or the attempt failed). */
  withdraw(prefixes: readonly string[]): Promise<void>;
  /** Every prefix wanted or still confirmed, sorted. */
  status(): readonly PrefixStatus[];
  speaker(): SpeakerStatus;
  /**
   * The prefixes a previous run of gorb left announced (stopped with --bgp-keep-on-exit, or killed), which the
   * speaker still has: for BIRD, the routes of the include file. Read before start().
   */
  inherited(): readonly string[];
  /** Starts watching the speaker (reconnects, re-asserts after it restarts). */
  start(): void;
  /** Stops watching; announces nothing more and withdraws nothing by itself. */
  close(): Promise<void>;
}
