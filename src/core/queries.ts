/**
 * The read side: what GET returns, built from the desired state, gorb's view of the kernel (effective weights,
 * whether it has a service), the health checks' live view and one kernel read for the counters. Nothing here
 * changes state.
 */
import { destinationKeyId, serviceKeyId } from "./keys.ts";
import type { IpvsDriver } from "../ipvs/driver.ts";
import { type Destination, type ServiceWithDestinations, isFwmarkKey } from "../ipvs/types.ts";
import { desiredDestination, backendDestId, serviceQuorumCounts, sorryActive, type BackendRecord, type DesiredState, type ServiceRecord } from "./desired-state.ts";
import { drainView, type ConnCounts, type DrainState } from "./drain.ts";
import { NotFoundError } from "./errors.ts";
import { backendHealthOf, type BackendHealth, type HealthChecks } from "./health.ts";
import type { KernelWriter } from "./kernel-writer.ts";
import type { Logger } from "../log.ts";
import { Pacer } from "../pacer.ts";
import {
  backendOptionsView,
  destinationCounters,
  metricsView,
  serviceHealth,
  serviceOptionsView,
  statsView,
  trafficStatsView,
  type BackendInfo,
  type BackendStatusView,
  type ServiceStatusView,
  type ServiceDetail,
  type ServiceInfo,
} from "./views.ts";

/**
 * A lookup of a service's kernel destinations by address and port: a scan for the usual handful (no key string per
 * destination), a map by key for a large service.
 */
function destinationFinder(list: readonly Destination[]): (address: string, port: number, keyId: string) => Destination | null {
  if (list.length <= 16) {
    return (address, port) => {
      for (const d of list) if (d.port === port && d.address === address) return d;
      return null;
    };
  }
  const byKey = new Map<string, Destination>();
  for (const d of list) byKey.set(destinationKeyId(d), d);
  return (_address, _port, keyId) => byKey.get(keyId) ?? null;
}

function byId<T extends { readonly id: string }>(a: T, b: T): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** A view whose kernel fields are filled in after it is built. */
type Unfrozen<T> = { -readonly [K in keyof T]: T[K] };

/** A service's status view while the kernel read runs, with what is needed to find its destinations. */
interface StatusRows {
  readonly keyId: string;
  readonly view: Unfrozen<ServiceStatusView>;
  readonly backends: { readonly view: Unfrozen<BackendStatusView>; readonly address: string; readonly port: number; readonly destId: string }[];
}

/** See the module comment. */
export class Queries {
  readonly #desired: DesiredState;
  readonly #writer: KernelWriter;
  readonly #checks: HealthChecks;
  readonly #driver: IpvsDriver;
  readonly #log: Logger;
  readonly #inKernel: (id: string) => boolean;

  readonly #now: () => number;
  readonly #drainOthers: (service: string, backend: string, drain: DrainState) => ConnCounts | null | undefined;

  constructor(parts: {
    desired: DesiredState;
    writer: KernelWriter;
    checks: HealthChecks;
    driver: IpvsDriver;
    log: Logger;
    /** Whether the kernel has service `id` (Exposure.inKernel, ./exposure.ts). */
    inKernel: (id: string) => boolean;
    /** The other fleet nodes' counts last read for a drain (DrainView.others). @default none */
    drainOthers?: (service: string, backend: string, drain: DrainState) => ConnCounts | null | undefined;
    now?: () => number;
  }) {
    this.#now = parts.now ?? Date.now;
    this.#drainOthers = parts.drainOthers ?? (() => undefined);
    this.#inKernel = parts.inKernel;
    this.#desired = parts.desired;
    this.#writer = parts.writer;
    this.#checks = parts.checks;
    this.#driver = parts.driver;
    this.#log = parts.log;
  }

  service(id: string): ServiceRecord {
    const record = this.#desired.service(id);
    if (record === undefined) throw new NotFoundError(`service ${JSON.stringify(id)} not found`);
    return record;
  }

  backend(service: ServiceRecord, id: string): BackendRecord {
    const backend = service.backends.get(id);
    if (backend === undefined) {
      throw new NotFoundError(`backend ${JSON.stringify(id)} of service ${JSON.stringify(service.id)} not found`);
    }
    return backend;
  }

  /** GET /service: ids, sorted. */
  listServices(): string[] {
    return this.#desired.ids().sort();
  }

  async getService(id: string): Promise<ServiceInfo> {
    const record = this.service(id);
    const view = this.#serviceInfo(record);
    try {
      view.stats = statsView((await this.#driver.getService(record.config.key)).stats);
    } catch (error) {
      this.#log.warn(`cannot read the counters of service ${JSON.stringify(id)}: ${String(error)}`);
    }
    return view;
  }

  /** Every service's view; `counters: false` leaves out the kernel's counters (null) and does not read the table. */
  async listServicesDetail(options: { readonly counters?: boolean } = {}): Promise<ServiceDetail[]> {
    const records = [...this.#desired.services()].sort(byId);
    const kernel = new Map<string, { stats: ServiceInfo["stats"]; dests: Map<string, Destination> }>();
    try {
      for (const entry of options.counters === false ? [] : await this.#driver.snapshot()) {
        const dests = new Map(entry.destinations.map((d) => [destinationKeyId(d), d] as const));
        kernel.set(serviceKeyId(entry.service.key), { stats: statsView(entry.service.stats), dests });
      }
    } catch (error) {
      this.#log.warn(`cannot read the IPVS table: ${String(error)}`);
    }
    // Built in slices with turns of the event loop between them (GET /metrics and ?detail=true of 10,000 backends
    // held the loop 40-60 ms on the host, ten times that in the emulated guest), as readServicesStatus does.
    const pacer = new Pacer();
    const out: ServiceDetail[] = [];
    for (const record of records) {
      const found = kernel.get(serviceKeyId(record.config.key));
      const info = this.#serviceInfo(record);
      info.stats = found?.stats ?? null;
      const details: ServiceDetail["backend_details"][number][] = [];
      for (const backend of [...record.backends.values()].sort(byId)) {
        if (pacer.due()) await pacer.turn();
        details.push({ id: backend.id, ...this.#backendInfo(record, backend, found?.dests.get(backendDestId(backend)) ?? null) });
      }
      out.push({ id: record.id, ...info, backend_details: details });
    }
    return out;
  }

  /**
   * What the status table shows (`gorb status`, GET /service as text), built from the desired state and one
   * kernel read like listServicesDetail, but only the columns the table has: no full views of options, pulse,
   * metrics and drains for 10,000s of backends. Each field is taken where the full view takes it, so the table
   * is the same from either (test/unit/core/status-view.test.ts).
   */
  async listServicesStatus(): Promise<ServiceStatusView[]> {
    const read = await this.readServicesStatus();
    await read.counters;
    return read.views;
  }

  /**
   * listServicesStatus in two steps: resolves once the views are built, their kernel counters (stats, active and
   * inactive connections) still null; `counters` resolves once the kernel's read is back and its counters are in
   * those same views (they stay null when the read failed, which is logged). The read starts first and the views
   * are built while it runs: the daemon's driver reads the dumps on a thread of their own
   * (src/transport/dump-thread.ts), so that work and this take two CPUs, and the caller can go on with the views
   * (the daemon drafts the status table) until the counters are in. The building gives the event loop a turn
   * every slice (the read's own steps run in those turns).
   */
  async readServicesStatus(): Promise<{ readonly views: ServiceStatusView[]; readonly counters: Promise<void> }> {
    const reading = this.#driver.snapshot().catch((error: unknown) => {
      this.#log.warn(`cannot read the IPVS table: ${String(error)}`);
      return null;
    });
    const pacer = new Pacer();
    await pacer.turn();
    const records = [...this.#desired.services()].sort(byId);
    const now = this.#now();
    const rows: StatusRows[] = [];
    for (const record of records) {
      if (pacer.due()) await pacer.turn();
      rows.push(this.#statusRows(record, now));
    }
    const counters = reading.then((table) => {
      const kernel = new Map<string, ServiceWithDestinations>();
      for (const entry of table ?? []) kernel.set(serviceKeyId(entry.service.key), entry);
      for (const { keyId, view, backends } of rows) {
        const entry = kernel.get(keyId);
        if (entry === undefined) continue;
        view.stats = trafficStatsView(entry.service.stats);
        const dests = destinationFinder(entry.destinations);
        for (const b of backends) {
          const dest = dests(b.address, b.port, b.destId);
          if (dest === null) continue;
          b.view.stats = trafficStatsView(dest.stats);
          b.view.active_conns = dest.activeConns;
          b.view.inactive_conns = dest.inactiveConns;
        }
      }
    });
    return { views: rows.map((r): ServiceStatusView => r.view), counters };
  }

  /** A service's status view without the kernel's counters (filled in once the read is back), and its backends'. */
  #statusRows(record: ServiceRecord, now: number): StatusRows {
    const keyId = serviceKeyId(record.config.key);
    const written = this.#writer.view.get(keyId)?.dests;
    const backends: StatusRows["backends"] = [];
    const views: BackendStatusView[] = [];
    for (const backend of [...record.backends.values()].sort(byId)) {
      const destId = backendDestId(backend);
      const spec = backend.spec;
      const brief = this.#checks.brief(backend.watchId);
      const view: Unfrozen<BackendStatusView> = {
        id: backend.id,
        options: {
          host: spec.host,
          address: backend.address.address,
          port: spec.port,
          weight: spec.weight,
          method: spec.method,
          tunnel_type: spec.tunnel?.type ?? "",
          tunnel_port: spec.tunnel?.port ?? 0,
          maintenance: spec.maintenance,
        },
        metrics:
          brief === undefined
            ? { state: backend.health.state, health: backend.health.health, message: backend.health.message }
            : { state: brief.status, health: brief.health, message: brief.message },
        effective_weight: written?.get(destId)?.weight ?? desiredDestination(record, backend).weight,
        stats: null,
        active_conns: null,
        inactive_conns: null,
        drain: backend.drain === null ? null : drainView(backend.drain, now, this.#drainOthers(record.id, backend.id, backend.drain)),
      };
      views.push(view);
      backends.push({ view, address: backend.address.address, port: spec.port, destId });
    }
    const spec = record.spec;
    const key = record.config.key;
    const fwmark = isFwmarkKey(key);
    const view: Unfrozen<ServiceStatusView> = {
      id: record.id,
      options: {
        host: spec.host,
        address: fwmark ? "" : key.address,
        port: spec.port,
        protocol: fwmark ? "" : spec.protocol,
        fwmark: spec.fwmark ?? 0,
        family: key.family,
        method: spec.method,
        sorry_server: spec.sorryServer,
      },
      health: serviceHealth(record.backends.values()),
      stats: null,
      in_kernel: this.#inKernel(record.id),
      quorum_up: record.quorumUp !== false,
      sorry: sorryActive(record),
      backend_details: views,
    };
    return { keyId, view, backends };
  }

  async getBackend(serviceId: string, backendId: string): Promise<BackendInfo> {
    const service = this.service(serviceId);
    const backend = this.backend(service, backendId);
    let dest: Destination | null = null;
    try {
      const wanted = backendDestId(backend);
      const dests = await this.#driver.listDestinations(service.config.key);
      dest = dests.find((d) => destinationKeyId(d) === wanted) ?? null;
    } catch (error) {
      this.#log.warn(`cannot read the counters of backend ${JSON.stringify(backendId)}: ${String(error)}`);
    }
    return this.#backendInfo(service, backend, dest);
  }

  /** The weight the kernel has for a backend as gorb last wrote or read it; the desired one when unknown. */
  effectiveWeight(service: ServiceRecord, backend: BackendRecord): number {
    const written = this.#writer.view.get(serviceKeyId(service.config.key))?.dests.get(backendDestId(backend));
    return written?.weight ?? desiredDestination(service, backend).weight;
  }

  /** The backend's health for GET: the monitor's live view (uptime grows between checks), else the record. */
  #liveHealth(backend: BackendRecord): BackendHealth {
    const view = this.#checks.snapshot(backend.watchId);
    return view === undefined ? backend.health : backendHealthOf(view);
  }

  #serviceInfo(record: ServiceRecord): ServiceInfo {
    const backends = [...record.backends.values()];
    return {
      options: serviceOptionsView(record.spec, record.config),
      health: serviceHealth(backends),
      backends: backends.map((b) => b.id).sort(),
      stats: null,
      in_kernel: this.#inKernel(record.id),
      panic: record.panic,
      quorum_up: record.quorumUp !== false,
      sorry: sorryActive(record),
      healthy: serviceQuorumCounts(record).healthy,
    };
  }

  #backendInfo(service: ServiceRecord, backend: BackendRecord, dest: Destination | null): BackendInfo {
    return {
      options: backendOptionsView(backend.spec, service.id, backend.address.address),
      metrics: metricsView(this.#liveHealth(backend)),
      effective_weight: this.effectiveWeight(service, backend),
      ...destinationCounters(dest),
      drain: backend.drain === null ? null : drainView(backend.drain, this.#now(), this.#drainOthers(service.id, backend.id, backend.drain)),
    };
  }
}
