/**
 * The event stream: what happened to gorb's services and backends, in order, for anyone who follows it
 * (`GET /events` as Server-Sent Events, `gorb status --watch`, the web UI, the BGP announcer).
 *
 * Every event gets a monotonic id (1, 2, 3, ... since the daemon started) and the time it was published. The
 * bus keeps the last `capacity` events in a ring buffer, so a follower that lost its connection resumes with
 * the id it saw last (`Last-Event-ID`): it gets every event after that one, or, when they have already left
 * the buffer (or the id is from another daemon run), a single `resync` event telling it to read the state
 * again. Ids restart at 1 with every run, so a follower's position also names the run (`EventBus.run`): an id
 * from another run gets a `resync` too. Publishing never waits for followers; a follower that throws is dropped
 * and does not disturb others. When the daemon stops, close() lets every follower go.
 */

/** Health state names, as GET responses show them. */
export type EventHealthState = "up" | "down" | "unknown";

/** What each event type carries. */
export interface EventPayloads {
  /** A service was created (over the API, the CLI or the declarative file). */
  "service.created": { readonly service: string; readonly source: string };
  /** A service's fields changed (PATCH, apply). */
  "service.changed": { readonly service: string };
  "service.deleted": { readonly service: string };
  /** `health`: the health it starts with (up with pulse none, which is never checked; else unknown until checked). */
  "backend.created": { readonly service: string; readonly backend: string; readonly source: string; readonly health: EventHealthState };
  /** A backend's fields changed (PATCH, apply); its weight events come separately. */
  "backend.changed": { readonly service: string; readonly backend: string };
  "backend.deleted": { readonly service: string; readonly backend: string };
  /** A backend's health state changed. `message` is a short check result ("connection refused", "HTTP 503"). */
  "backend.health": {
    readonly service: string;
    readonly backend: string;
    readonly from: EventHealthState;
    readonly to: EventHealthState;
    readonly message: string;
  };
  /** The weight IPVS has for a backend (its effective weight) changed: drain, recovery step, PATCH. */
  "backend.weight": {
    readonly service: string;
    readonly backend: string;
    readonly from: number;
    readonly to: number;
    readonly configured: number;
  };
  /** Reconcile found the kernel different from the desired state and repaired it (or could not). */
  "reconcile.repair": {
    readonly service: string;
    readonly backend: string | null;
    readonly reason: string;
    readonly status: "done" | "failed";
    readonly error?: string;
  };
  /**
   * A service entered (active) or left panic mode: more than `threshold` percent of its backends are down
   * (`down` of `total`), so gorb keeps their weights instead of draining them.
   */
  "service.panic": {
    readonly service: string;
    readonly down: number;
    readonly total: number;
    readonly threshold: number;
    readonly active: boolean;
  };
  /**
   * Failover: a service went down (`up` false: below quorum - hysteresis, or no backend up with a sorry
   * server) or came back up; `sorry` says whether the sorry server serves now.
   */
  "service.quorum": {
    readonly service: string;
    readonly up: boolean;
    readonly healthy: number;
    readonly quorum: number;
    readonly hysteresis: number;
    readonly sorry: boolean;
  };
  /**
   * BGP (src/bgp/): this node starts announcing the VIP (`prefix`, e.g. "203.0.113.10/32"): its `services` have
   * stayed healthy for the hold-down. Whether BIRD took it shows in GET /bgp.
   */
  "bgp.announced": { readonly vip: string; readonly prefix: string; readonly services: readonly string[] };
  /** BGP: this node withdraws the VIP (its services turned unhealthy, were deleted, or gorb is stopping). */
  "bgp.withdrawn": { readonly vip: string; readonly prefix: string; readonly reason: "unhealthy" | "deleted" | "shutdown" };
  /** The follower missed events that are no longer kept: read the whole state again. */
  resync: { readonly reason: string };
  /** A backend's maintenance override was turned on or off (its weight events come separately). */
  "backend.maintenance": { readonly service: string; readonly backend: string; readonly on: boolean };
  /**
   * A backend's drain: `started` (weight 0 now), `progress` (its connection counts changed), `drained` (no
   * connection left, or a UDP service), `timeout` (the deadline passed with connections left), `cancelled`
   * (undrained). After drained or timeout the backend is removed (then "remove") or held at weight 0 ("keep").
   * `active` and `inactive` are the kernel's counts (null when unknown); times are ISO 8601.
   */
  "backend.drain": {
    readonly service: string;
    readonly backend: string;
    readonly phase: "started" | "progress" | "drained" | "timeout" | "cancelled";
    readonly then: "remove" | "keep";
    readonly deadline: string;
    readonly active: number | null;
    readonly inactive: number | null;
  };
}

export type EventType = keyof EventPayloads;

/** Every event type once (a type added to EventPayloads and not here fails to compile), for the API's document. */
export const EVENT_TYPES = Object.keys({
  "service.created": true,
  "service.changed": true,
  "service.deleted": true,
  "backend.created": true,
  "backend.changed": true,
  "backend.deleted": true,
  "backend.health": true,
  "backend.weight": true,
  "backend.maintenance": true,
  "backend.drain": true,
  "reconcile.repair": true,
  "service.panic": true,
  "service.quorum": true,
  "bgp.announced": true,
  "bgp.withdrawn": true,
  resync: true,
} satisfies Record<EventType, true>) as readonly EventType[];

/** One published event. */
export type GorbEvent = {
  [K in EventType]: {
    readonly id: number;
    /** ISO 8601 time of publication. */
    readonly time: string;
    readonly type: K;
    readonly data: EventPayloads[K];
  };
}[EventType];

export type EventListener = (event: GorbEvent) => void;

/** What subscribe() gives back. */
export interface Subscription {
  /** The events after `after` that the buffer still holds, oldest first (a `resync` event when some are gone). */
  readonly backlog: readonly GorbEvent[];
  unsubscribe(): void;
}

/**
 * Where a follower stopped: the id of the last event it saw, and the run of the bus that published it. Ids
 * restart at 1 when the daemon restarts, so an id alone cannot tell "event 40 of this run" from "event 40 of
 * the previous run"; the run can.
 */
export interface EventPosition {
  readonly run: string;
  readonly id: number;
}

/** Default number of events kept for followers that resume. */
const DEFAULT_EVENT_BUFFER = 4096;

/** One follower: its listener, the newest event it already has (in its backlog or delivered), its close hook. */
interface Follower {
  readonly listener: EventListener;
  readonly after: number;
  readonly onClose: (() => void) | undefined;
}

/** A random name for one bus (one daemon run): 8 hex digits. */
function newRun(): string {
  return crypto.randomUUID().slice(0, 8);
}

/** The in-process event bus; see the module comment. */
export class EventBus {
  /** Names this bus (one daemon run), so positions from another run are recognised; see EventPosition. */
  readonly run: string;
  readonly #capacity: number;
  readonly #ring: (GorbEvent | undefined)[];
  /** One entry per subscribe(), so one function subscribed twice is two followers. */
  readonly #followers = new Set<Follower>();
  /**
   * The followers as an array, made again only after a subscribe or unsubscribe: delivery walks it for every
   * event, and copying the set per event (an apply publishes 11,000) cost more than the listeners.
   */
  #list: readonly Follower[] | null = null;
  #lastId = 0;
  readonly #now: () => Date;
  /** Events published but not yet handed to every follower (a listener that publishes queues behind them). */
  readonly #pending: GorbEvent[] = [];
  #delivering = false;
  #closed = false;
  /**
   * The time text of the events published in one run of synchronous code (until the next microtask), read once:
   * an apply of 10,000 backends publishes its events in slices of synchronous work, and a clock reading with its
   * ISO text was a visible part of each in the emulated test guest. Within it nothing can see an event yet
   * (followers write it out later).
   */
  #turnTime: string | null = null;

  constructor(options: { readonly capacity?: number; readonly now?: () => Date; readonly run?: string } = {}) {
    const capacity = options.capacity ?? DEFAULT_EVENT_BUFFER;
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new RangeError(`capacity: must be a positive integer, got ${String(capacity)}`);
    }
    this.#capacity = capacity;
    this.#ring = new Array<GorbEvent | undefined>(capacity);
    this.#now = options.now ?? (() => new Date());
    this.run = options.run ?? newRun();
  }

  /** The id of the newest event (0 before the first). */
  get lastId(): number {
    return this.#lastId;
  }

  /** How many events the buffer keeps. */
  get capacity(): number {
    return this.#capacity;
  }

  /**
   * Publish one event to every follower; returns it. Followers see events in id order, also when a listener
   * publishes (its event is delivered after the current one has reached everybody).
   */
  publish<K extends EventType>(type: K, data: EventPayloads[K]): GorbEvent {
    const id = ++this.#lastId;
    const event = { id, time: this.#time(), type, data } as GorbEvent;
    this.#ring[id % this.#capacity] = event;
    this.#pending.push(event);
    if (!this.#delivering) this.#deliver();
    return event;
  }

  #time(): string {
    if (this.#turnTime === null) {
      this.#turnTime = this.#isoTime(this.#now());
      queueMicrotask(() => {
        this.#turnTime = null;
      });
    }
    return this.#turnTime;
  }

  /** The second of the last time formatted, and its ISO text up to the seconds ("2026-12-03T16:56:10"). */
  #second = Number.NaN;
  #secondText = "";

  /** `date` as toISOString() writes it, the text up to the seconds reused within a second. */
  #isoTime(date: Date): string {
    const ms = date.getTime();
    const second = Math.floor(ms / 1000);
    if (second !== this.#second || !Number.isFinite(second)) {
      const text = date.toISOString();
      // Years 0-9999 only (the text is then 24 characters); another stays whole.
      if (text.length !== 24) return text;
      this.#second = second;
      this.#secondText = text.slice(0, 19);
      return text;
    }
    const millis = ms - second * 1000;
    return `${this.#secondText}.${millis < 10 ? "00" : millis < 100 ? "0" : ""}${millis}Z`;
  }

  #deliver(): void {
    this.#delivering = true;
    try {
      for (let next = this.#pending.shift(); next !== undefined; next = this.#pending.shift()) {
        this.#list ??= [...this.#followers];
        for (const follower of this.#list) {
          // Unsubscribed by an earlier listener of this event, or subscribed after it (then it is in its backlog).
          if (!this.#followers.has(follower) || next.id <= follower.after) continue;
          try {
            follower.listener(next);
          } catch {
            this.#unfollow(follower);
          }
        }
      }
    } finally {
      this.#delivering = false;
    }
  }

  /**
   * Follow the bus. With `after` (the last id a follower saw, or its EventPosition), the backlog holds the
   * events since then that are still kept; it is a single `resync` event (id = the current last id, not
   * stored) when some are gone, when `after` is ahead of this bus, or when the position is from another run.
   * Without `after`, the backlog is empty. The listener then gets every event after the backlog. `onClose` is
   * called when the bus closes (at once, but not before subscribe returns, when it is closed already).
   */
  subscribe(listener: EventListener, after?: number | EventPosition, onClose?: () => void): Subscription {
    const backlog = after === undefined ? [] : this.#backlog(after);
    const follower: Follower = { listener, after: this.#lastId, onClose };
    if (this.#closed) {
      if (onClose !== undefined) queueMicrotask(onClose);
    } else {
      this.#followers.add(follower);
      this.#list = null;
    }
    return {
      backlog,
      unsubscribe: () => this.#unfollow(follower),
    };
  }

  #unfollow(follower: Follower): void {
    if (this.#followers.delete(follower)) this.#list = null;
  }

  #backlog(after: number | EventPosition): GorbEvent[] {
    const resync = (reason: string): GorbEvent[] => [
      { id: this.#lastId, time: this.#now().toISOString(), type: "resync", data: { reason } },
    ];
    const position = typeof after === "number" ? { run: this.run, id: after } : after;
    if (position.run !== this.run) return resync("the event id is from another run of gorb");
    if (!Number.isSafeInteger(position.id) || position.id < 0) return resync("the event id is not one gorb gives");
    if (position.id > this.#lastId) return resync(`the event id is ahead of this run of gorb (its last event is ${this.#lastId})`);
    const oldestKept = Math.max(1, this.#lastId - this.#capacity + 1);
    if (position.id + 1 < oldestKept) return resync("events were missed");
    const backlog: GorbEvent[] = [];
    for (let id = position.id + 1; id <= this.#lastId; id++) {
      const event = this.#ring[id % this.#capacity];
      if (event !== undefined && event.id === id) backlog.push(event);
    }
    return backlog;
  }

  /**
   * The daemon is stopping: every follower is let go (its onClose is called) and later ones are closed at once,
   * so that open streams end and do not hold the server's shutdown. Publishing still works, for nobody.
   */
  close(): void {
    this.#closed = true;
    const followers = [...this.#followers];
    this.#followers.clear();
    this.#list = null;
    for (const follower of followers) {
      try {
        follower.onClose?.();
      } catch {
        // One follower's failure does not keep the others open.
      }
    }
  }

  /** Number of current followers (for /metrics). */
  get followers(): number {
    return this.#followers.size;
  }
}
