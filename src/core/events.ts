/**
 * The event stream: what happened to gorb's services and backends, in order, for anyone who follows it
 * (`GET /events` as Server-Sent Events, `gorb status --watch`, the web UI, the BGP announcer).
 *
 * Every event gets a monotonic id (1, 2, 3, ... since the daemon started) and the time it was published. The
 * bus keeps the last `capacity` events in a ring buffer, so a follower that lost its connection resumes with
 * the id it saw last (`Last-Event-ID`): it gets every event after that one, or, when they have already left
 * the buffer (or the id is from another daemon run), a single `resync` event telling it to read the state
 * again. Publishing never waits for followers; a follower that throws is dropped and does not disturb others.
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
  "backend.created": { readonly service: string; readonly backend: string; readonly source: string };
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
  /** The follower missed events that are no longer kept: read the whole state again. */
  resync: { readonly reason: string };
}

export type EventType = keyof EventPayloads;

/** Every event type, for schemas and documentation. */
export const EVENT_TYPES = [
  "service.created",
  "service.changed",
  "service.deleted",
  "backend.created",
  "backend.changed",
  "backend.deleted",
  "backend.health",
  "backend.weight",
  "reconcile.repair",
  "service.panic",
  "resync",
] as const satisfies readonly EventType[];

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

/** Default number of events kept for followers that resume. */
export const DEFAULT_EVENT_BUFFER = 4096;

/** The in-process event bus; see the module comment. */
export class EventBus {
  readonly #capacity: number;
  readonly #ring: (GorbEvent | undefined)[];
  readonly #listeners = new Set<EventListener>();
  #lastId = 0;
  readonly #now: () => Date;

  constructor(options: { readonly capacity?: number; readonly now?: () => Date } = {}) {
    this.#capacity = Math.max(1, options.capacity ?? DEFAULT_EVENT_BUFFER);
    this.#ring = new Array<GorbEvent | undefined>(this.#capacity);
    this.#now = options.now ?? (() => new Date());
  }

  /** The id of the newest event (0 before the first). */
  get lastId(): number {
    return this.#lastId;
  }

  /** Publish one event to every follower; returns it. */
  publish<K extends EventType>(type: K, data: EventPayloads[K]): GorbEvent {
    const id = ++this.#lastId;
    const event = { id, time: this.#now().toISOString(), type, data } as GorbEvent;
    this.#ring[id % this.#capacity] = event;
    for (const listener of [...this.#listeners]) {
      try {
        listener(event);
      } catch {
        this.#listeners.delete(listener);
      }
    }
    return event;
  }

  /**
   * Follow the bus. With `after` (the last id a follower saw), the backlog holds the events since then that
   * are still kept; when some are gone, or `after` is ahead of this bus (another daemon run), the backlog is a
   * single `resync` event (id = the current last id, not stored). Without `after`, the backlog is empty.
   */
  subscribe(listener: EventListener, after?: number): Subscription {
    let backlog: GorbEvent[] = [];
    if (after !== undefined && after !== this.#lastId) {
      const oldestKept = Math.max(1, this.#lastId - this.#capacity + 1);
      if (after > this.#lastId || after + 1 < oldestKept) {
        const reason = after > this.#lastId ? "the event id is from another run of gorb" : "events were missed";
        backlog = [{ id: this.#lastId, time: this.#now().toISOString(), type: "resync", data: { reason } }];
      } else {
        for (let id = after + 1; id <= this.#lastId; id++) {
          const event = this.#ring[id % this.#capacity];
          if (event !== undefined && event.id === id) backlog.push(event);
        }
      }
    }
    this.#listeners.add(listener);
    return {
      backlog,
      unsubscribe: () => {
        this.#listeners.delete(listener);
      },
    };
  }

  /** Number of current followers (for /metrics). */
  get followers(): number {
    return this.#listeners.size;
  }
}
