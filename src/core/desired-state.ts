/**
 * The desired state: every service and backend gorb manages, who owns each (API or file), and the runtime
 * facts that decide each backend's desired effective weight (its health and the weight policy's memory).
 *
 * Indexes keep every lookup O(1): services by id and by IPVS key, backends by id within their service and
 * by destination key, and backends by health-watch id. Nothing here does I/O; the reconciler turns it into
 * IPVS writes (./reconcile.ts, ./kernel-writer.ts) and the change tracker into stored rows (./changes.ts).
 */
import { destinationKeyId, serviceKeyId } from "./keys.ts";
import type { DestinationConfig, DestinationKey, ServiceConfig, ServiceKey } from "../ipvs/types.ts";
import type { WeightState } from "../health/weight.ts";
import type { Fields } from "./fields.ts";
import { overrideWeight, type DrainState } from "./drain.ts";
import type { BackendHealth } from "./health.ts";
import type { BackendSpec, ServiceSpec } from "./model.ts";
import type { WantedBackend, WantedService } from "./reconcile.ts";
import { SORRY_ID, nextQuorumState, quorumCounts, quorumRule, sorryDestination, sorryKey, type QuorumCounts } from "./failover.ts";
import { toDestinationConfig, type ResolvedAddress } from "./resolve.ts";
import type { Source } from "./state.ts";

/** A backend gorb manages. */
export interface BackendRecord {
  readonly id: string;
  source: Source;
  /** Unique per backend life, so updates for a deleted backend of the same name are ignored. */
  readonly watchId: string;
  /** The request fields the backend was created with, PATCHes applied (the base of the next PATCH). */
  fields: Fields;
  spec: BackendSpec;
  readonly address: ResolvedAddress;
  health: BackendHealth;
  /** The weight policy's memory: its `effective` is the weight health earned (before the overrides). */
  weight: WeightState;
  /** A drain in progress or held (./drain.ts); null when none. Kept with the desired state. */
  drain: DrainState | null;
  /** Slow start (./slow-start.ts) while the weight ramps up: when it started and the cap it allows now. */
  ramp?: Ramp | null;
}

/** A slow-start ramp in progress. */
export interface Ramp {
  /** Clock milliseconds the ramp started at. */
  readonly startMs: number;
  /** The highest effective weight the ramp allows now (1..configured). */
  readonly cap: number;
}

/** A service gorb manages. */
export interface ServiceRecord {
  readonly id: string;
  source: Source;
  fields: Fields;
  spec: ServiceSpec;
  /** The service as it must be in the kernel. */
  config: ServiceConfig;
  readonly backends: Map<string, BackendRecord>;
  /** Backend id by destinationKeyId. */
  readonly byDest: Map<string, string>;
  /** Destinations found in the kernel at start-up that gorb leaves alone (reported, not adopted). */
  readonly keep: Set<string>;
  /** True while more than panic_threshold percent of the backends are down (weights are kept). */
  panic: boolean;
  /** Failover (./failover.ts): false while the service is down (no quorum); undefined = up. */
  quorumUp?: boolean;
  /** True while the kernel refused its sorry server: its backends' next check, quiet or not, tries again. */
  sorryRetry?: boolean;
}

/** A service going down (up false) or coming back up. */
export interface QuorumChange {
  readonly service: ServiceRecord;
  readonly up: boolean;
  readonly healthy: number;
  readonly quorum: number;
  readonly hysteresis: number;
  /** True when the sorry server serves now (down with a sorry server). */
  readonly sorry: boolean;
}

/** True while the sorry server serves in place of the backends. */
export function sorryActive(service: ServiceRecord): boolean {
  return service.spec.sorryServer !== null && service.quorumUp === false;
}

/** The counts the quorum looks at; a backend in maintenance or draining counts as weight 0 (it takes no new flows). */
export function serviceQuorumCounts(service: ServiceRecord): QuorumCounts {
  return quorumCounts(
    [...service.backends.values()].map((b) => ({
      state: b.health.state,
      pulseNone: b.spec.pulse.type === "none",
      configuredWeight: overrideWeight(b.spec, b.drain, b.spec.weight),
    })),
  );
}

/** Re-evaluate a service's quorum state (./failover.ts); the change, or null when it stays as it was. */
export function evaluateQuorum(service: ServiceRecord): QuorumChange | null {
  const rule = quorumRule(service.spec);
  const was = service.quorumUp !== false;
  // Without a rule the state is up: nothing to count unless it was down (the hot path of every request).
  if (rule === null && was) return null;
  const counts = serviceQuorumCounts(service);
  const up = nextQuorumState(was, counts, rule);
  if (up === was) return null;
  service.quorumUp = up;
  return {
    service,
    up,
    healthy: counts.healthy,
    quorum: rule?.quorum ?? 0,
    hysteresis: rule?.hysteresis ?? 0,
    sorry: sorryActive(service),
  };
}

/** The key of a backend's destination. */
export function destinationKeyOfBackend(backend: Pick<BackendRecord, "address" | "spec">): DestinationKey {
  return { family: backend.address.family, address: backend.address.address, port: backend.spec.port };
}

/**
 * Each backend's destinationKeyId, made once and kept on the backend itself (a WeakMap's insert costs more): a
 * backend never moves (updateBackend refuses a new address or port).
 */
const DEST_ID: unique symbol = Symbol("destination id");

/** Keep `destId`, made by the caller from the backend's address and port, as its backendDestId. */
export function keepDestId(backend: Pick<BackendRecord, "address" | "spec">, destId: string): void {
  (backend as Pick<BackendRecord, "address" | "spec"> & { [DEST_ID]?: string })[DEST_ID] = destId;
}

/**
 * destinationKeyId(destinationKeyOfBackend(backend)), made once per backend: not a new string (to hash) for each
 * lookup of each of 10,000 backends in a status query, a reconcile or a health batch.
 */
export function backendDestId(backend: Pick<BackendRecord, "address" | "spec">): string {
  const kept = backend as Pick<BackendRecord, "address" | "spec"> & { [DEST_ID]?: string };
  let id = kept[DEST_ID];
  if (id === undefined) kept[DEST_ID] = id = destinationKeyId(destinationKeyOfBackend(backend));
  return id;
}

/** The weight a backend must have in the kernel: health's, or 0 under maintenance or a drain. */
function desiredWeight(backend: Pick<BackendRecord, "spec" | "drain" | "weight">): number {
  return overrideWeight(backend.spec, backend.drain, backend.weight.effective);
}

/** The weight a backend must have in the kernel. */
export function desiredKernelWeight(service: ServiceRecord, backend: BackendRecord): number {
  // Sorry mode holds every backend at 0; maintenance and drains hold theirs at 0; a slow-start ramp caps the weight.
  return sorryActive(service) ? 0 : Math.min(desiredWeight(backend), backend.ramp?.cap ?? Number.POSITIVE_INFINITY);
}

/** The destination a backend must have in the kernel: its spec at its desired effective weight. */
export function desiredDestination(service: ServiceRecord, backend: BackendRecord): DestinationConfig {
  return toDestinationConfig(backend.spec, backend.address, service.config.key, desiredKernelWeight(service, backend));
}

/** The sorry server's entry of a complete plan: added first while active, deleted last otherwise. */
function sorryEntry(service: ServiceRecord): { readonly first: boolean; readonly entry: WantedBackend } | null {
  const family = service.config.key.family;
  const key = sorryKey(service.spec, family);
  if (key === null) return null;
  if (sorryActive(service)) return { first: true, entry: { id: SORRY_ID, dest: sorryDestination(service.spec, family) } };
  return { first: false, entry: { id: SORRY_ID, dest: null, key } };
}

/** The desired state; see the module comment. */
export class DesiredState {
  readonly #services = new Map<string, ServiceRecord>();
  readonly #byKey = new Map<string, string>();
  readonly #watches = new Map<string, { service: ServiceRecord; backend: BackendRecord }>();

  get size(): number {
    return this.#services.size;
  }

  /** Backends over all services. */
  get backendCount(): number {
    return this.#watches.size;
  }

  services(): IterableIterator<ServiceRecord> {
    return this.#services.values();
  }

  ids(): string[] {
    return [...this.#services.keys()];
  }

  service(id: string): ServiceRecord | undefined {
    return this.#services.get(id);
  }

  /** The id of the service using `key`, if any. */
  serviceIdByKey(key: ServiceKey): string | undefined {
    return this.#byKey.get(serviceKeyId(key));
  }

  /** True when a service gorb manages has this serviceKeyId. */
  hasKeyId(keyId: string): boolean {
    return this.#byKey.has(keyId);
  }

  /** The id of the backend of `service` using the destination whose destinationKeyId is `destId`, if any. */
  backendIdByDestId(service: ServiceRecord, destId: string): string | undefined {
    return service.byDest.get(destId);
  }

  watched(watchId: string): { service: ServiceRecord; backend: BackendRecord } | undefined {
    return this.#watches.get(watchId);
  }

  /** Add a service (with the backends its record already holds). */
  addService(record: ServiceRecord): void {
    this.#services.set(record.id, record);
    this.#byKey.set(serviceKeyId(record.config.key), record.id);
    for (const backend of record.backends.values()) this.#watches.set(backend.watchId, { service: record, backend });
  }

  removeService(id: string): ServiceRecord | undefined {
    const record = this.#services.get(id);
    if (record === undefined) return undefined;
    this.#services.delete(id);
    if (this.#byKey.get(serviceKeyId(record.config.key)) === id) this.#byKey.delete(serviceKeyId(record.config.key));
    for (const backend of record.backends.values()) this.#watches.delete(backend.watchId);
    return record;
  }

  addBackend(service: ServiceRecord, backend: BackendRecord): void {
    service.backends.set(backend.id, backend);
    service.byDest.set(backendDestId(backend), backend.id);
    this.#watches.set(backend.watchId, { service, backend });
  }

  removeBackend(service: ServiceRecord, id: string): BackendRecord | undefined {
    const backend = service.backends.get(id);
    if (backend === undefined) return undefined;
    service.backends.delete(id);
    const destId = backendDestId(backend);
    if (service.byDest.get(destId) === id) service.byDest.delete(destId);
    this.#watches.delete(backend.watchId);
    return backend;
  }

  /** The reconciler's view of one service: complete (every backend), or only the backends named. */
  wanted(service: ServiceRecord, only?: Iterable<string>): WantedService {
    const backends: WantedBackend[] = [];
    if (only === undefined) {
      for (const b of service.backends.values()) backends.push({ id: b.id, dest: desiredDestination(service, b) });
      const sorry = sorryEntry(service);
      if (sorry?.first === true) backends.unshift(sorry.entry);
      else if (sorry !== null) backends.push(sorry.entry);
      return { id: service.id, config: service.config, backends, complete: true, keep: service.keep };
    }
    for (const id of only) {
      const b = service.backends.get(id);
      if (b !== undefined) backends.push({ id, dest: desiredDestination(service, b) });
    }
    return { id: service.id, config: service.config, backends, complete: false };
  }

  /** The reconciler's view of every service, complete, one service at a time, each worked out when it is reached. */
  *wantedEach(): Generator<WantedService> {
    for (const s of this.#services.values()) yield this.wanted(s);
  }
}
