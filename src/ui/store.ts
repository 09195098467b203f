/**
 * What the UI knows: the services with their backends as GET /service?detail=true gives them, patched by the
 * event stream, and the recent past for the pictures: per backend its effective weight, configured weight and
 * health state over time; per service its connections and packets per second. Subscribers are called after
 * every change (the app re-renders).
 */

/** IPVS counters and rates (GET responses' `stats`). */
export interface Stats {
  readonly conns: number;
  readonly cps: number;
  readonly in_pps: number;
  readonly out_pps: number;
  readonly in_bps: number;
  readonly out_bps: number;
}

export type HealthState = "up" | "down" | "unknown";

/** GET /service/:service/:backend, with its id. */
export interface BackendView {
  readonly id: string;
  readonly options: Readonly<Record<string, unknown>> & { readonly host: string; readonly port: number; readonly weight: number; readonly method: string };
  readonly metrics: { readonly state: HealthState; readonly health: number; readonly message: string; readonly uptime: number };
  readonly effective_weight: number;
  readonly stats: Stats | null;
  readonly active_conns: number | null;
  readonly inactive_conns: number | null;
  /** The backend's connection drain (POST .../drain), when one runs or holds it at weight 0. */
  readonly drain?: { readonly state: "draining" | "drained"; readonly then: string; readonly seconds_left: number; readonly deadline: string } | null;
}

/** GET /service/:service (with its id), and the backends of ?detail=true. */
export interface ServiceView {
  readonly id: string;
  readonly options: Readonly<Record<string, unknown>> & { readonly host: string; readonly port: number; readonly protocol: string; readonly method: string };
  readonly health: number;
  readonly backends: readonly string[];
  readonly stats: Stats | null;
  readonly backend_details: readonly BackendView[];
  /** False while the kernel does not have the service (refused at start-up, or lost and not put back); absent from older daemons. */
  readonly in_kernel?: boolean;
  /** Failover (absent from older daemons): the sorry server serves; the service is up by its quorum; healthy count. */
  readonly sorry?: boolean;
  readonly quorum_up?: boolean;
  readonly healthy?: number;
}

/** A time series: times in seconds since the epoch, and one array per line. */
export interface Series {
  readonly t: number[];
  readonly lines: Record<string, (number | null)[]>;
}

/** How much past the pictures keep. */
const WINDOW_S = 10 * 60;

/** One line of the activity list. */
export interface Activity {
  readonly time: string;
  readonly type: string;
  /** What the event names: a service ("" for none, as resync), and a backend of it or null; drawn each on its own. */
  readonly service: string;
  readonly backend: string | null;
  readonly detail: string;
}

const STATE_LEVEL: Record<HealthState, number> = { up: 1, unknown: 0.5, down: 0 };

function push(series: Series, t: number, values: Record<string, number | null>): void {
  series.t.push(t);
  for (const [name, value] of Object.entries(values)) (series.lines[name] ??= []).push(value);
  let drop = 0;
  while (drop < series.t.length && (series.t[drop] ?? t) < t - WINDOW_S) drop++;
  if (drop > 0) {
    series.t.splice(0, drop);
    for (const line of Object.values(series.lines)) line.splice(0, drop);
  }
}

/** `mine` with the counters and rates of `read` (the same service, read from the API), where it has them. */
function withCounters(mine: ServiceView, read: ServiceView | undefined): ServiceView {
  if (read === undefined) return mine;
  const backends = new Map(read.backend_details.map((b) => [b.id, b]));
  return {
    ...mine,
    stats: read.stats,
    backend_details: mine.backend_details.map((b) => {
      const r = backends.get(b.id);
      return r === undefined ? b : { ...b, stats: r.stats, active_conns: r.active_conns, inactive_conns: r.inactive_conns };
    }),
  };
}

export class Store {
  services: ServiceView[] = [];
  readonly timelines = new Map<string, Series>();
  readonly rates = new Map<string, Series>();
  readonly activity: Activity[] = [];
  /**
   * Configured weights of backends set to Weight 0 from this tab, for Restore; `seenAtZero` once the page has seen
   * the backend at weight 0 since (a sighting at another weight before that is older than the Weight 0).
   */
  readonly #weightZeroFrom = new Map<string, { readonly had: number; seenAtZero: boolean }>();
  #listeners = new Set<() => void>();

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #changed(): void {
    for (const listener of this.#listeners) listener();
  }

  static key(service: string, backend: string): string {
    return `${service}/${backend}`;
  }

  /**
   * The weight Restore offers: the one the backend had when this tab set it to Weight 0, else "" (the user types
   * it: gorb keeps no earlier weight, after a reload or a Weight 0 from elsewhere nobody knows it).
   */
  restoreOffer(service: string, backend: string): string {
    const offer = this.#weightZeroFrom.get(Store.key(service, backend));
    return offer === undefined ? "" : String(offer.had);
  }

  /** This tab's Weight 0 went through: the backend had `had`, which Restore offers. */
  weightZeroed(service: string, backend: string, had: number): void {
    const now = this.service(service)?.backend_details.find((b) => b.id === backend);
    this.#weightZeroFrom.set(Store.key(service, backend), { had, seenAtZero: now?.options.weight === 0 });
  }

  /** This tab's Restore went through: nothing to offer any more. */
  restored(service: string, backend: string): void {
    this.#weightZeroFrom.delete(Store.key(service, backend));
  }

  /**
   * Forgets the weight this tab set Weight 0 from once the backend, seen at weight 0 since, is seen at another
   * weight (restored, from here or elsewhere): a later Weight 0 from elsewhere would else be offered that old
   * weight, which nobody knows now. A sighting at another weight before the page saw the 0 is a read or event older
   * than the Weight 0, and changes nothing.
   */
  #sighted(service: string, b: BackendView): void {
    const key = Store.key(service, b.id);
    const offer = this.#weightZeroFrom.get(key);
    if (offer === undefined) return;
    if (b.options.weight === 0) offer.seenAtZero = true;
    else if (offer.seenAtZero) this.#weightZeroFrom.delete(key);
  }

  #sampleBackend(service: string, b: BackendView, t: number): void {
    const key = Store.key(service, b.id);
    let series = this.timelines.get(key);
    if (series === undefined) this.timelines.set(key, (series = { t: [], lines: {} }));
    push(series, t, { weight: b.effective_weight, configured: b.options.weight, state: STATE_LEVEL[b.metrics.state] });
  }

  /**
   * Replaces everything with a full read (GET /service?detail=true) and samples the pictures. A service `stale` says
   * had an event after the read started keeps what the page has (or stays away, if it was deleted): the event is
   * newer. Only its counters and rates are taken from the read, which is the one source of them. One the page does
   * not have is taken from the read unless `deleted` (by default: `stale`) says it was deleted after the read
   * started: the events about it patched nothing (the page's first read, a busy service), and the read is all there is.
   */
  setAll(
    services: readonly ServiceView[],
    now = Date.now() / 1000,
    stale: (service: string) => boolean = () => false,
    deleted: (service: string) => boolean = stale,
  ): void {
    const read = new Map(services.map((s) => [s.id, s]));
    const shown = new Set(this.services.map((s) => s.id));
    const fresh = services.filter((s) => !stale(s.id) || (!shown.has(s.id) && !deleted(s.id)));
    const kept = this.services.filter((s) => stale(s.id)).map((s) => withCounters(s, read.get(s.id)));
    this.services = [...fresh, ...kept].sort((a, b) => a.id.localeCompare(b.id));
    const alive = new Set<string>();
    for (const s of this.services) {
      let series = this.rates.get(s.id);
      if (series === undefined) this.rates.set(s.id, (series = { t: [], lines: {} }));
      push(series, now, { cps: s.stats?.cps ?? null, in_pps: s.stats?.in_pps ?? null, out_pps: s.stats?.out_pps ?? null });
      for (const b of s.backend_details) {
        this.#sighted(s.id, b);
        this.#sampleBackend(s.id, b, now);
        alive.add(Store.key(s.id, b.id));
      }
    }
    for (const key of [...this.timelines.keys()]) if (!alive.has(key)) this.timelines.delete(key);
    for (const id of [...this.rates.keys()]) if (!this.services.some((s) => s.id === id)) this.rates.delete(id);
    this.#changed();
  }

  service(id: string): ServiceView | undefined {
    return this.services.find((s) => s.id === id);
  }

  /** Puts one service's fields (GET /service/:service) in, keeping the backends it still lists. */
  putService(id: string, info: Omit<ServiceView, "id" | "backend_details">): void {
    const old = this.service(id);
    const backend_details = (old?.backend_details ?? []).filter((b) => info.backends.includes(b.id));
    const next: ServiceView = { ...info, id, backend_details };
    this.services = [...this.services.filter((s) => s.id !== id), next].sort((a, b) => a.id.localeCompare(b.id));
    this.#changed();
  }

  removeService(id: string): void {
    this.services = this.services.filter((s) => s.id !== id);
    this.rates.delete(id);
    for (const key of [...this.timelines.keys()]) if (key.startsWith(`${id}/`)) this.timelines.delete(key);
    for (const key of [...this.#weightZeroFrom.keys()]) if (key.startsWith(`${id}/`)) this.#weightZeroFrom.delete(key);
    this.#changed();
  }

  /**
   * Puts one backend (GET /service/:service/:backend) in and samples its timeline. `olderThanEvents`: an event about
   * the backend came while it was read; its effective weight, state and message stay as the events left them.
   * `olderThanWeight`: a backend.weight event came while it was read; its configured weight stays too.
   */
  putBackend(service: string, read: BackendView, now = Date.now() / 1000, { olderThanEvents = false, olderThanWeight = false } = {}): void {
    // A read answered after a weight or health event about the backend keeps the effective weight and health state
    // the events set (patchBackend); the configured weight only after a backend.weight event, which carries it (a
    // health event alone would keep an older one, and a configured weight changed while the backend is held at 0
    // comes with no weight event).
    const mine = olderThanEvents || olderThanWeight ? this.service(service)?.backend_details.find((b) => b.id === read.id) : undefined;
    const backend: BackendView =
      mine === undefined
        ? read
        : {
            ...read,
            effective_weight: mine.effective_weight,
            options: olderThanWeight ? { ...read.options, weight: mine.options.weight } : read.options,
            metrics: { ...read.metrics, state: mine.metrics.state, message: mine.metrics.message },
          };
    this.services = this.services.map((s) => {
      if (s.id !== service) return s;
      const others = s.backend_details.filter((b) => b.id !== backend.id);
      const backends = s.backends.includes(backend.id) ? s.backends : [...s.backends, backend.id].sort();
      return { ...s, backends, backend_details: [...others, backend].sort((a, b) => a.id.localeCompare(b.id)) };
    });
    this.#sighted(service, backend);
    this.#sampleBackend(service, backend, now);
    this.#changed();
  }

  removeBackend(service: string, backend: string): void {
    this.services = this.services.map((s) =>
      s.id !== service ? s : { ...s, backends: s.backends.filter((b) => b !== backend), backend_details: s.backend_details.filter((b) => b.id !== backend) },
    );
    this.timelines.delete(Store.key(service, backend));
    this.#weightZeroFrom.delete(Store.key(service, backend));
    this.#changed();
  }

  /** A backend.weight or backend.health event: patch the backend and add the point to its timeline at once. */
  patchBackend(service: string, backend: string, patch: { weight?: number; configured?: number; state?: HealthState; message?: string }, time: number): void {
    const s = this.service(service);
    const b = s?.backend_details.find((x) => x.id === backend);
    if (s === undefined || b === undefined) return;
    const next: BackendView = {
      ...b,
      effective_weight: patch.weight ?? b.effective_weight,
      options: { ...b.options, weight: patch.configured ?? b.options.weight },
      metrics: { ...b.metrics, state: patch.state ?? b.metrics.state, message: patch.message ?? b.metrics.message },
    };
    this.putBackend(service, next, time);
  }

  log(entry: Activity): void {
    this.activity.unshift(entry);
    this.activity.length = Math.min(this.activity.length, 50);
    this.#changed();
  }
}
