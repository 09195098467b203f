/**
 * Gorb is the core facade: the desired state (services and their backends, each keyed within its service),
 * the only code that writes the IPVS table, and the consumer of health updates.
 *
 * Rules it keeps:
 *   - Every mutation runs under one async mutex, in call order (health-driven weight changes included).
 *   - A failed mutation changes nothing: the kernel is written first and gorb records the new state only after
 *     the write succeeded; side effects made before the kernel write (a VIP) are undone when it fails. A delete
 *     removes the object from the kernel first and forgets it only after that succeeded (an object the kernel
 *     no longer has counts as deleted).
 *   - The weight IPVS gets (effective weight) comes from the configured weight and the backend's health through
 *     the weight policy of src/health/weight.ts (0 while down, a ramp while recovering); a health update writes
 *     the kernel only when the effective weight changes, and a PATCH of the weight re-runs the policy.
 *   - Objects in the kernel that gorb did not create are never touched (adopt() only reports them).
 *   - With a `store`, every change is on disk before the mutation resolves (each mutation marks the rows it
 *     changed; they are committed at the end of its critical section). restore() loads the saved state and
 *     makes the kernel match it without touching what already matches; reconcile() repairs drift the same way
 *     (./reconcile.ts); apply() runs a declarative set through the mutations above (./plan.ts, ./apply.ts).
 */
import type { Discovery } from "../discovery/discovery.ts";
import { NoDiscovery } from "../discovery/none.ts";
import type { HealthUpdate } from "../health/monitor.ts";
import {
  DEFAULT_WEIGHT_POLICY,
  initialWeightState,
  nextWeight,
  type WeightPolicy,
  type WeightState,
} from "../health/weight.ts";
import { describeDestination, describeService, destinationKeyId, serviceKeyId } from "../ipvs/address.ts";
import type { IpvsDriver } from "../ipvs/driver.ts";
import type { Destination, DestinationConfig, ServiceConfig, ServiceKey } from "../ipvs/types.ts";
import { isFwmarkKey } from "../ipvs/types.ts";
import { dryRunReport, runPlan, type ApplyReport } from "./apply.ts";
import {
  ConflictError,
  KernelError,
  LimitError,
  NotFoundError,
  StateError,
  ValidationError,
  fromIpvsError,
  hasErrno,
} from "./errors.ts";
import type { Fields } from "./fields.ts";
import {
  UNKNOWN_HEALTH,
  backendHealthOf,
  type BackendHealth,
  type HealthChecks,
  type HealthChecksFactory,
} from "./health.ts";
import { checkId } from "./ids.ts";
import type { Logger } from "./logger.ts";
import { silentLogger } from "./logger.ts";
import type { BackendSpec, ServiceSpec } from "./model.ts";
import { AsyncMutex } from "./mutex.ts";
import {
  BACKEND_IDENTITY_FIELDS,
  SERVICE_IDENTITY_FIELDS,
  backendFields,
  backendPatchFields,
  normalizeBackendFields,
  normalizeServiceFields,
  patchBackendFields,
  patchServiceFields,
  serviceFields,
  servicePatchFields,
} from "./normalize.ts";
import { planApply, resolveDeclared, type DeclaredService, type ManagedService } from "./plan.ts";
import { samePulse } from "./pulse.ts";
import { planRepairs, restoredWeight, type Repair, type WantedService } from "./reconcile.ts";
import {
  dnsResolver,
  resolveBackendAddress,
  resolveServiceKey,
  toDestinationConfig,
  toServiceConfig,
  type HostResolver,
  type ResolvedAddress,
} from "./resolve.ts";
import {
  fieldsToJson,
  noChanges,
  type SavedBackend,
  type SavedService,
  type SavedState,
  type Source,
  type StateChanges,
  type StateStore,
} from "./state.ts";
import { NoVipManager, type VipManager } from "./vip.ts";
import {
  backendOptionsView,
  destinationCounters,
  metricsView,
  serviceHealth,
  serviceOptionsView,
  statsView,
  type BackendInfo,
  type ServiceDetail,
  type ServiceInfo,
} from "./views.ts";

/** What Gorb is built from. Only `driver` and `health` are required. */
export interface GorbOptions {
  readonly driver: IpvsDriver;
  /** Builds the health checks, given Gorb's update listener: `(onUpdate) => new HealthMonitor({ onUpdate })`. */
  readonly health: HealthChecksFactory;
  /** Tunes the recovery ramp. @default DEFAULT_WEIGHT_POLICY (full weight after 10 passes in a row) */
  readonly weightPolicy?: WeightPolicy;
  /** Adds/removes service addresses on the VIP interface. @default NoVipManager */
  readonly vip?: VipManager;
  /** Registers services with Consul. @default NoDiscovery */
  readonly discovery?: Discovery;
  /** Looks up DNS names. @default dnsResolver() */
  readonly resolver?: HostResolver;
  /** Address for services created without `host` (the first address of the -i interface). @default null */
  readonly defaultAddress?: string | null;
  /** The VIP interface's name (--vip-interface): a loopback VIP is accepted only on "lo". @default null */
  readonly vipInterface?: string | null;
  /** Most services gorb holds (--max-services); a create beyond it is a 409 LIMIT. @default unlimited */
  readonly maxServices?: number | null;
  /** Most backends gorb holds, over all services (--max-backends). @default unlimited */
  readonly maxBackends?: number | null;
  readonly logger?: Logger;
  /** Keeps every accepted change on disk (see ./state.ts). @default none: nothing survives a restart */
  readonly store?: StateStore;
}

/** What adopt() found or did at start-up. */
export interface AdoptReport {
  /** True when the whole IPVS table was flushed. */
  readonly flushed: boolean;
  /** Services in the kernel that gorb does not manage (left alone), e.g. "tcp 10.0.0.1:80 (2 destinations)". */
  readonly foreign: readonly string[];
}

/** One repair of a reconcile, as reported. */
export interface RepairReport {
  readonly service: string;
  readonly backend: string | null;
  readonly reason: string;
  readonly status: "done" | "failed";
  readonly error?: string;
}

/** What reconcile() did. */
export interface ReconcileReport {
  /** Every difference found, repaired or not; [] when the kernel matched. */
  readonly repairs: readonly RepairReport[];
}

/** What restore() did at start-up. */
export interface RestoreReport extends ReconcileReport {
  readonly services: number;
  readonly backends: number;
  /** Saved services and backends that could not be read back (removed from the state), with the reason. */
  readonly dropped: readonly string[];
}

/** Totals of every reconcile (restore included) since start, for /metrics. */
export interface ReconcileCounters {
  readonly runs: number;
  readonly repairs: number;
  readonly failures: number;
}

interface BackendRecord {
  readonly id: string;
  source: Source;
  readonly watchId: string;
  /** The request fields the backend was created with, PATCHes applied (the base of the next PATCH). */
  fields: Fields;
  spec: BackendSpec;
  readonly address: ResolvedAddress;
  /** The destination as written to the kernel; its weight is the effective weight. */
  dest: DestinationConfig;
  health: BackendHealth;
  /** The weight policy's memory (effective weight, recovering or not). */
  weight: WeightState;
}

interface ServiceRecord {
  readonly id: string;
  source: Source;
  fields: Fields;
  spec: ServiceSpec;
  /** The service as written to the kernel. */
  config: ServiceConfig;
  readonly backends: Map<string, BackendRecord>;
}

interface VipClaim {
  readonly family: ServiceKey["family"];
  /** Services bound to this address; gorb removes it when the last one goes. */
  readonly owners: Set<string>;
}

/** The core facade; see the module comment for the rules it keeps. */
export class Gorb {
  readonly #driver: IpvsDriver;
  readonly #checks: HealthChecks;
  readonly #policy: WeightPolicy;
  readonly #vip: VipManager;
  readonly #discovery: Discovery;
  readonly #resolver: HostResolver;
  readonly #defaultAddress: string | null;
  readonly #vipInterface: string | null;
  readonly #limits: { readonly services: number | null; readonly backends: number | null };
  readonly #log: Logger;
  readonly #mutex = new AsyncMutex();
  readonly #services = new Map<string, ServiceRecord>();
  /** Backends by watch id, for health updates. */
  readonly #watches = new Map<string, { service: ServiceRecord; backend: BackendRecord }>();
  /** Addresses gorb put on the VIP interface. */
  readonly #vips = new Map<string, VipClaim>();
  #nextWatch = 1;
  #closed = false;
  readonly #store: StateStore | null;
  /** Services and backends changed since the last commit (backend keys are JSON [service, backend]). */
  readonly #dirtyServices = new Set<string>();
  readonly #dirtyBackends = new Set<string>();
  /** Serialises applies (each step also takes the main mutex). */
  readonly #applyMutex = new AsyncMutex();
  #counters: ReconcileCounters = { runs: 0, repairs: 0, failures: 0 };

  constructor(options: GorbOptions) {
    this.#driver = options.driver;
    this.#policy = options.weightPolicy ?? DEFAULT_WEIGHT_POLICY;
    this.#vip = options.vip ?? new NoVipManager();
    this.#discovery = options.discovery ?? new NoDiscovery();
    this.#resolver = options.resolver ?? dnsResolver();
    this.#defaultAddress = options.defaultAddress ?? null;
    this.#vipInterface = options.vipInterface ?? null;
    this.#limits = { services: options.maxServices ?? null, backends: options.maxBackends ?? null };
    this.#log = options.logger ?? silentLogger;
    this.#store = options.store ?? null;
    this.#checks = options.health((update) => {
      void this.#onUpdate(update);
    });
  }

  // ---- start-up and shutdown ----------------------------------------------------------------------------

  /**
   * Start-up: with `flush`, delete every IPVS service (gorb's and everyone else's); without, read the table
   * and report the services gorb does not manage, without touching them.
   */
  adopt(flush: boolean): Promise<AdoptReport> {
    return this.#locked(async () => {
      if (flush) {
        await this.#kernel(() => this.#driver.flush());
        this.#log.info("flushed the IPVS table");
        return { flushed: true, foreign: [] };
      }
      const table = await this.#kernel(() => this.#driver.snapshot());
      const mine = new Set([...this.#services.values()].map((s) => serviceKeyId(s.config.key)));
      const foreign: string[] = [];
      for (const entry of table) {
        if (mine.has(serviceKeyId(entry.service.key))) continue;
        const n = entry.destinations.length;
        const text = `${describeService(entry.service.key)} (${n} destination${n === 1 ? "" : "s"})`;
        foreign.push(text);
        this.#log.warn(`IPVS has service ${text} that gorb does not manage; leaving it alone`);
      }
      return { flushed: false, foreign };
    });
  }

  /**
   * Shutdown: stop every health check and withdraw the services from discovery. The kernel table stays as it
   * is (traffic keeps flowing while gorb restarts). Mutations after close() are refused.
   */
  async close(): Promise<void> {
    await this.#mutex.run(async () => {
      this.#closed = true;
    });
    this.#checks.stop();
    await this.#discovery.close();
  }

  /** Resolves once every mutation and health update queued so far has been applied (tests, shutdown). */
  idle(): Promise<void> {
    return this.#mutex.run(async () => {});
  }

  // ---- services -----------------------------------------------------------------------------------------

  /** PUT /service/:service — create a virtual service from a GORB body. `source` says who owns it (default "api"). */
  async createService(id: string, body: unknown, options: { readonly source?: Source } = {}): Promise<void> {
    checkId("service", id);
    const fields = serviceFields(body);
    const spec = normalizeServiceFields(fields);
    return this.#locked(async () => {
      if (this.#services.has(id)) throw new ConflictError(`service ${JSON.stringify(id)} already exists`);
      if (this.#limits.services !== null && this.#services.size >= this.#limits.services) {
        throw new LimitError("services", this.#limits.services);
      }
      const key = await resolveServiceKey(spec, this.#resolver, this.#defaultAddress, this.#vipInterface);
      const config = toServiceConfig(spec, key);
      this.#checkServiceKeyFree(key);
      const claimed = await this.#claimVip(id, key);
      try {
        await this.#kernel(() => this.#driver.addService(config));
      } catch (error) {
        if (claimed) await this.#releaseVip(id, key);
        throw error;
      }
      const record: ServiceRecord = { id, source: options.source ?? "api", fields, spec, config, backends: new Map() };
      this.#services.set(id, record);
      this.#touch(id);
      if (!isFwmarkKey(key)) {
        this.#discovery.expose({ id, address: key.address, port: key.port, protocol: key.protocol });
      }
      this.#log.info(`created service ${JSON.stringify(id)}: ${describeService(key)} (${config.scheduler})`);
    });
  }

  /**
   * PATCH /service/:service — change a service in place (scheduler, flags, persistence, ...). Fields the body
   * leaves out keep their values; null resets one to its default. Changing the identity (host, port,
   * protocol, fwmark, family) is refused: that is a different service.
   */
  async updateService(id: string, body: unknown): Promise<void> {
    checkId("service", id);
    const patch = servicePatchFields(body);
    return this.#locked(async () => {
      const record = this.#service(id);
      if (patch.has("fwmark") && patch.get("fwmark") !== null && record.spec.fwmark === null) {
        throw new ValidationError(
          "fwmark",
          `cannot turn service ${JSON.stringify(id)} (${describeService(record.config.key)}) into a fwmark service; ` +
            "delete it and create it again",
        );
      }
      const fields = patchServiceFields(record.fields, patch);
      const spec = normalizeServiceFields(fields);
      const touchesIdentity = SERVICE_IDENTITY_FIELDS.filter((f) => patch.has(f));
      let key = record.config.key;
      if (touchesIdentity.length > 0) {
        const next = await resolveServiceKey(spec, this.#resolver, this.#defaultAddress, this.#vipInterface);
        if (serviceKeyId(next) !== serviceKeyId(key)) {
          throw new ValidationError(
            touchesIdentity[0] ?? "host",
            `cannot move service ${JSON.stringify(id)} from ${describeService(key)} to ${describeService(next)}; ` +
              "delete it and create it again",
          );
        }
        key = next;
      }
      const config = toServiceConfig(spec, key);
      await this.#kernel(() => this.#driver.updateService(config));
      record.fields = fields;
      record.spec = spec;
      record.config = config;
      this.#touch(id);
      this.#log.info(`updated service ${JSON.stringify(id)}: ${describeService(key)} (${config.scheduler})`);
    });
  }

  /** DELETE /service/:service — remove a service and its backends. */
  async deleteService(id: string): Promise<void> {
    checkId("service", id);
    return this.#locked(async () => {
      const record = this.#service(id);
      const key = record.config.key;
      try {
        await this.#driver.deleteService(key);
      } catch (error) {
        if (!hasErrno(error, "ESRCH")) throw fromIpvsError(error);
        this.#log.warn(`service ${JSON.stringify(id)} (${describeService(key)}) was already gone from IPVS`);
      }
      for (const backend of record.backends.values()) this.#unwatch(backend);
      this.#services.delete(id);
      this.#touch(id);
      await this.#releaseVip(id, key);
      if (!isFwmarkKey(key)) this.#discovery.remove(id);
      this.#log.info(`deleted service ${JSON.stringify(id)} (${describeService(key)})`);
    });
  }

  /** GET /service — the service ids, sorted. */
  listServices(): string[] {
    return [...this.#services.keys()].sort();
  }

  /** GET /service/:service. */
  async getService(id: string): Promise<ServiceInfo> {
    checkId("service", id);
    const record = this.#service(id);
    const view = this.#serviceInfo(record);
    try {
      const service = await this.#driver.getService(record.config.key);
      view.stats = statsView(service.stats);
    } catch (error) {
      this.#log.warn(`cannot read the counters of service ${JSON.stringify(id)}: ${String(error)}`);
    }
    return view;
  }

  /** GET /service?detail=true — every service with its backends, health and counters, from one table read. */
  async listServicesDetail(): Promise<ServiceDetail[]> {
    const records = [...this.#services.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const kernel = new Map<string, { stats: ServiceInfo["stats"]; dests: Map<string, Destination> }>();
    try {
      for (const entry of await this.#driver.snapshot()) {
        const dests = new Map(entry.destinations.map((d) => [destinationKeyId(d), d] as const));
        kernel.set(serviceKeyId(entry.service.key), { stats: statsView(entry.service.stats), dests });
      }
    } catch (error) {
      this.#log.warn(`cannot read the IPVS table: ${String(error)}`);
    }
    return records.map((record) => {
      const found = kernel.get(serviceKeyId(record.config.key));
      const info = this.#serviceInfo(record);
      info.stats = found?.stats ?? null;
      const details = [...record.backends.values()]
        .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
        .map((backend) => ({
          id: backend.id,
          ...this.#backendInfo(record, backend, found?.dests.get(destinationKeyId(backend.dest)) ?? null),
        }));
      return { id: record.id, ...info, backend_details: details };
    });
  }

  // ---- backends -----------------------------------------------------------------------------------------

  /** PUT /service/:service/:backend — add a backend and start its health checks. `source`: see createService. */
  async createBackend(
    serviceId: string,
    backendId: string,
    body: unknown,
    options: { readonly source?: Source } = {},
  ): Promise<void> {
    checkId("service", serviceId);
    checkId("backend", backendId);
    const fields = backendFields(body);
    return this.#locked(async () => {
      const service = this.#service(serviceId);
      if (service.backends.has(backendId)) {
        throw new ConflictError(`backend ${JSON.stringify(backendId)} of service ${JSON.stringify(serviceId)} already exists`);
      }
      if (this.#limits.backends !== null && this.#watches.size >= this.#limits.backends) {
        throw new LimitError("backends", this.#limits.backends);
      }
      const spec = normalizeBackendFields(fields, service.spec);
      const key = service.config.key;
      const address = await resolveBackendAddress(spec, key, this.#resolver);
      const health = UNKNOWN_HEALTH;
      const weight = initialWeightState(spec.weight);
      const dest = toDestinationConfig(spec, address, key, weight.effective);
      for (const other of service.backends.values()) {
        if (destinationKeyId(other.dest) === destinationKeyId(dest)) {
          throw new ConflictError(
            `backend ${JSON.stringify(other.id)} of service ${JSON.stringify(serviceId)} already uses ` +
              describeDestination(dest),
          );
        }
      }
      await this.#kernel(() => this.#driver.addDestination(key, dest));
      // Watch ids are unique per backend life, so a backend re-created under the same name starts afresh.
      const watchId = `${serviceId}/${backendId}#${this.#nextWatch++}`;
      const source = options.source ?? "api";
      const backend: BackendRecord = { id: backendId, source, watchId, fields, spec, address, dest, health, weight };
      try {
        this.#watch(service, backend);
      } catch (error) {
        this.#watches.delete(watchId);
        await this.#driver.deleteDestination(key, dest).catch((undo: unknown) => {
          this.#log.error(`cannot undo the add of ${describeDestination(dest)}: ${String(undo)}`);
        });
        throw fromIpvsError(error);
      }
      service.backends.set(backendId, backend);
      this.#touch(serviceId, backendId);
      this.#log.info(
        `created backend ${JSON.stringify(backendId)} of service ${JSON.stringify(serviceId)}: ` +
          `${describeDestination(dest)} weight ${spec.weight}`,
      );
    });
  }

  /**
   * PATCH /service/:service/:backend — change weight, method, thresholds, tunnel or pulse in place. Fields the
   * body leaves out keep their values (an omitted weight does not drain); null resets one to its default.
   * Moving the backend (host, port) is refused. A new pulse restarts the health checks from "unknown".
   */
  async updateBackend(serviceId: string, backendId: string, body: unknown): Promise<void> {
    checkId("service", serviceId);
    checkId("backend", backendId);
    const patch = backendPatchFields(body);
    return this.#locked(async () => {
      const service = this.#service(serviceId);
      const backend = this.#backend(service, backendId);
      const fields = patchBackendFields(backend.fields, patch);
      const spec = normalizeBackendFields(fields, service.spec);
      const key = service.config.key;
      let address = backend.address;
      const touchesIdentity = BACKEND_IDENTITY_FIELDS.filter((f) => patch.has(f));
      if (touchesIdentity.length > 0) address = await resolveBackendAddress(spec, key, this.#resolver);
      if (address.address !== backend.address.address || spec.port !== backend.spec.port) {
        const to = describeDestination({ family: address.family, address: address.address, port: spec.port });
        throw new ValidationError(
          touchesIdentity[0] ?? "host",
          `cannot move backend ${JSON.stringify(backendId)} from ${describeDestination(backend.dest)} to ${to}; ` +
            "delete it and create it again",
        );
      }
      const pulseChanged = !samePulse(spec.pulse, backend.spec.pulse);
      // A different probe starts the health history over (the monitor's rule); timing changes keep it.
      const probeChanged = spec.pulse.probeKey !== backend.spec.pulse.probeKey;
      const health = probeChanged ? UNKNOWN_HEALTH : backend.health;
      const weight = this.#nextWeight(backend.weight, spec, health);
      const dest = toDestinationConfig(spec, address, key, weight.effective);
      await this.#kernel(() => this.#driver.updateDestination(key, dest));
      backend.fields = fields;
      backend.spec = spec;
      backend.dest = dest;
      backend.health = health;
      backend.weight = weight;
      this.#touch(serviceId, backendId);
      if (pulseChanged) {
        this.#checks.update(backend.watchId, { host: address.address, port: spec.port }, spec.pulse);
      }
      this.#log.info(
        `updated backend ${JSON.stringify(backendId)} of service ${JSON.stringify(serviceId)}: ` +
          `weight ${spec.weight} (effective ${dest.weight})`,
      );
    });
  }

  /** DELETE /service/:service/:backend — remove a backend and stop its health checks. */
  async deleteBackend(serviceId: string, backendId: string): Promise<void> {
    checkId("service", serviceId);
    checkId("backend", backendId);
    return this.#locked(async () => {
      const service = this.#service(serviceId);
      const backend = this.#backend(service, backendId);
      try {
        await this.#driver.deleteDestination(service.config.key, backend.dest);
      } catch (error) {
        if (!hasErrno(error, "ENOENT") && !hasErrno(error, "ESRCH")) throw fromIpvsError(error);
        this.#log.warn(`backend ${JSON.stringify(backendId)} (${describeDestination(backend.dest)}) was already gone`);
      }
      this.#unwatch(backend);
      service.backends.delete(backendId);
      this.#touch(serviceId, backendId);
      this.#log.info(`deleted backend ${JSON.stringify(backendId)} of service ${JSON.stringify(serviceId)}`);
    });
  }

  /** GET /service/:service/:backend. */
  async getBackend(serviceId: string, backendId: string): Promise<BackendInfo> {
    checkId("service", serviceId);
    checkId("backend", backendId);
    const service = this.#service(serviceId);
    const backend = this.#backend(service, backendId);
    let dest: Destination | null = null;
    try {
      const wanted = destinationKeyId(backend.dest);
      const dests = await this.#driver.listDestinations(service.config.key);
      dest = dests.find((d) => destinationKeyId(d) === wanted) ?? null;
    } catch (error) {
      this.#log.warn(`cannot read the counters of backend ${JSON.stringify(backendId)}: ${String(error)}`);
    }
    return this.#backendInfo(service, backend, dest);
  }

  // ---- durable state, reconcile, declarative apply --------------------------------------------------------

  /**
   * Start-up: take over the saved services and backends and make the kernel match them without touching what
   * already matches (./reconcile.ts). Must run before any other mutation. A destination the kernel already has
   * keeps its weight until the first health check (see restoredWeight); health history starts over. Saved
   * rows that cannot be read back are logged and removed from the state.
   */
  restore(state: SavedState): Promise<RestoreReport> {
    return this.#locked(async () => {
      if (this.#services.size > 0) throw new ConflictError("restore() must run before any service is created");
      const table = await this.#kernel(() => this.#driver.snapshot());
      const kernel = new Map(
        table.map((e) => [serviceKeyId(e.service.key), new Map(e.destinations.map((d) => [destinationKeyId(d), d] as const))] as const),
      );
      const dropped: string[] = [];
      const drop = (what: string, error: unknown, serviceId: string, backendId?: string) => {
        const why = error instanceof Error ? error.message : String(error);
        dropped.push(`${what}: ${why}`);
        this.#log.error(`cannot restore ${what} (removed from the saved state): ${why}`);
        this.#touch(serviceId, backendId); // the commit deletes what is not restored
      };
      const backendsOf = new Map<string, SavedBackend[]>();
      for (const b of state.backends) backendsOf.set(b.service, [...(backendsOf.get(b.service) ?? []), b]);
      let backends = 0;
      for (const saved of state.services) {
        const what = `service ${JSON.stringify(saved.id)}`;
        let record: ServiceRecord;
        try {
          checkId("service", saved.id);
          // Read as a body: fields an older gorb kept but the contract drops (vsid, unused pulse args) go.
          const fields = serviceFields(saved.fields);
          const spec = normalizeServiceFields(fields);
          const config = toServiceConfig(spec, saved.key);
          this.#checkServiceKeyFree(saved.key);
          record = { id: saved.id, source: saved.source, fields, spec, config, backends: new Map() };
        } catch (error) {
          drop(`${what} (${JSON.stringify(saved.fields)})`, error, saved.id);
          continue;
        }
        const dests = kernel.get(serviceKeyId(record.config.key));
        for (const b of backendsOf.get(saved.id) ?? []) {
          try {
            checkId("backend", b.id);
            const fields = backendFields(b.fields);
            const spec = normalizeBackendFields(fields, record.spec);
            const found = dests?.get(destinationKeyId({ ...b.address, port: spec.port }));
            const weight = restoredWeight(spec.weight, spec.pulse.type, found?.weight ?? null);
            const dest = toDestinationConfig(spec, b.address, record.config.key, weight.effective);
            for (const other of record.backends.values()) {
              if (destinationKeyId(other.dest) === destinationKeyId(dest)) {
                throw new ConflictError(`backend ${JSON.stringify(other.id)} already uses ${describeDestination(dest)}`);
              }
            }
            const watchId = `${saved.id}/${b.id}#${this.#nextWatch++}`;
            record.backends.set(b.id, {
              id: b.id,
              source: b.source,
              watchId,
              fields,
              spec,
              address: b.address,
              dest,
              health: UNKNOWN_HEALTH,
              weight,
            });
            backends++;
          } catch (error) {
            drop(`backend ${JSON.stringify(b.id)} of ${what} (${JSON.stringify(b.fields)})`, error, saved.id, b.id);
          }
        }
        this.#services.set(saved.id, record);
        const key = record.config.key;
        if (saved.vip && !isFwmarkKey(key)) {
          const claim = this.#vips.get(key.address) ?? { family: key.family, owners: new Set<string>() };
          claim.owners.add(saved.id);
          this.#vips.set(key.address, claim);
        }
      }
      for (const [serviceId, rows] of backendsOf) {
        if (state.services.some((s) => s.id === serviceId)) continue;
        for (const b of rows) this.#touch(serviceId, b.id); // orphans: deleted by the commit
      }

      const repairs = await this.#repair(planRepairs(this.#wanted(), table));
      // At start-up a missing VIP is expected (the interface may have been reset with the host): not a repair.
      await this.#restoreVips(false);
      for (const record of this.#services.values()) {
        for (const backend of record.backends.values()) this.#watch(record, backend);
        const key = record.config.key;
        if (!isFwmarkKey(key)) this.#discovery.expose({ id: record.id, address: key.address, port: key.port, protocol: key.protocol });
      }
      this.#log.info(
        `restored ${this.#services.size} service(s) and ${backends} backend(s) from ${this.#store?.location ?? "the saved state"}` +
          (repairs.length === 0 ? "; the kernel already matched" : `; ${repairs.length} repair(s)`),
      );
      return { services: this.#services.size, backends, dropped, repairs };
    });
  }

  /**
   * Compare the kernel with what gorb manages and repair every difference in place (a service deleted or
   * changed behind gorb's back comes back as gorb knows it). Services gorb does not manage are not looked at.
   */
  reconcile(): Promise<ReconcileReport> {
    return this.#locked(async () => {
      const table = await this.#kernel(() => this.#driver.snapshot());
      const repairs = await this.#repair(planRepairs(this.#wanted(), table));
      await this.#restoreVips(true);
      return { repairs };
    });
  }

  /**
   * Put back every VIP gorb added that has gone from the VIP interface (only addresses gorb claimed: an address
   * the interface already had is not gorb's to restore). With `count`, each one put back counts as a repair.
   */
  async #restoreVips(count: boolean): Promise<void> {
    let restored = 0;
    let failed = 0;
    for (const [address, claim] of this.#vips) {
      try {
        if (await this.#vip.add(address, claim.family)) {
          restored++;
          this.#log.warn(`VIP ${address} was missing from the VIP interface: added it again`);
        }
      } catch (error) {
        failed++;
        this.#log.error(`cannot add VIP ${address} to the VIP interface: ${String(error)}`);
      }
    }
    if (count && restored + failed > 0) {
      this.#counters = { ...this.#counters, repairs: this.#counters.repairs + restored, failures: this.#counters.failures + failed };
    }
  }

  /** Totals of every reconcile since start (restore included). */
  reconcileCounters(): ReconcileCounters {
    return this.#counters;
  }

  /**
   * Make gorb's file-owned services match a declarative set (see ./plan.ts for what changes and what is never
   * touched). Everything is checked first: a bad field, an unresolvable name or a conflict rejects the set
   * with nothing changed. With `dryRun`, only the plan is returned.
   */
  apply(declared: readonly DeclaredService[], options: { readonly dryRun?: boolean } = {}): Promise<ApplyReport> {
    return this.#applyMutex.run(async () => {
      if (this.#closed) throw new KernelError("gorb is shutting down", "");
      const wanted = await resolveDeclared(declared, this.#resolver, this.#defaultAddress, this.#vipInterface);
      const table = await this.#kernel(() => this.#driver.snapshot());
      const mine = new Set([...this.#services.values()].map((s) => serviceKeyId(s.config.key)));
      const foreign = table.map((e) => e.service.key).filter((k) => !mine.has(serviceKeyId(k)));
      const plan = planApply(this.managedServices(), wanted, foreign);
      if (options.dryRun === true) return dryRunReport(plan);
      const report = await runPlan(this, plan);
      const failed = report.changes.filter((c) => c.status === "failed");
      if (plan.length > 0) {
        this.#log.info(`applied the declarative set: ${plan.length - failed.length} change(s) done, ${failed.length} failed`);
      }
      for (const c of failed) {
        this.#log.error(`apply: ${c.action} ${c.backend === null ? c.service : `${c.service}/${c.backend}`} failed: ${c.error ?? ""}`);
      }
      return report;
    });
  }

  /** Give a service (backendId null) or one backend to a new owner; see Source. */
  setSource(serviceId: string, backendId: string | null, source: Source): Promise<void> {
    return this.#locked(async () => {
      const service = this.#service(serviceId);
      if (backendId === null) {
        service.source = source;
        this.#touch(serviceId);
      } else {
        this.#backend(service, backendId).source = source;
        this.#touch(serviceId, backendId);
      }
    });
  }

  /** Every service gorb manages, with its owner and request fields, for planning an apply. */
  managedServices(): ManagedService[] {
    return [...this.#services.values()].map((s) => ({
      id: s.id,
      source: s.source,
      fields: new Map(s.fields),
      spec: s.spec,
      config: s.config,
      backends: [...s.backends.values()].map((b) => ({
        id: b.id,
        source: b.source,
        fields: new Map(b.fields),
        spec: b.spec,
        address: b.address,
      })),
    }));
  }

  /** What gorb wants in the kernel: every service with its backends at their current effective weight. */
  #wanted(): WantedService[] {
    return [...this.#services.values()].map((s) => ({
      id: s.id,
      config: s.config,
      backends: [...s.backends.values()].map((b) => ({ id: b.id, dest: b.dest })),
    }));
  }

  /** Run repairs in one batch; log and count each one. */
  async #repair(repairs: readonly Repair[]): Promise<RepairReport[]> {
    let results: (Error | null)[];
    try {
      results = repairs.length === 0 ? [] : await this.#driver.apply(repairs.map((r) => r.op));
    } catch (error) {
      const failure = error instanceof Error ? error : new Error(String(error));
      results = repairs.map(() => failure);
    }
    const reports = repairs.map((r, i): RepairReport => {
      const error = results[i] ?? null;
      const service = `service ${JSON.stringify(r.service)}`;
      const where = r.backend === null ? service : `backend ${JSON.stringify(r.backend)} of ${service}`;
      if (error === null) {
        this.#log.warn(`reconcile: ${where}: ${r.reason}; repaired`);
        return { service: r.service, backend: r.backend, reason: r.reason, status: "done" };
      }
      this.#log.error(`reconcile: ${where}: ${r.reason}; cannot repair: ${error.message}`);
      return { service: r.service, backend: r.backend, reason: r.reason, status: "failed", error: error.message };
    });
    const failed = reports.filter((r) => r.status === "failed").length;
    this.#counters = {
      runs: this.#counters.runs + 1,
      repairs: this.#counters.repairs + reports.length - failed,
      failures: this.#counters.failures + failed,
    };
    return reports;
  }

  // ---- health -------------------------------------------------------------------------------------------

  /** A health update: record it, and write the kernel when the effective weight changes. */
  #onUpdate(update: HealthUpdate): Promise<void> {
    return this.#mutex
      .run(async () => {
        const entry = this.#watches.get(update.id);
        if (entry === undefined || this.#closed) return; // an update for a backend deleted meanwhile
        const { service, backend } = entry;
        const before = backend.health;
        const health = backendHealthOf(update);
        backend.health = health;
        if (before.state !== health.state) {
          const how = health.state === "down" ? "warn" : "info";
          this.#log[how](
            `backend ${JSON.stringify(backend.id)} of service ${JSON.stringify(service.id)} is ${health.state}` +
              (health.message === "" ? "" : `: ${health.message}`),
          );
        }
        // The policy's state moves on even when the kernel write below fails: the write is retried on the next
        // update because the kernel's weight (backend.dest) still differs from the effective one.
        backend.weight = this.#nextWeight(backend.weight, backend.spec, health);
        const weight = backend.weight.effective;
        if (weight === backend.dest.weight) return;
        const dest = { ...backend.dest, weight };
        try {
          await this.#driver.updateDestination(service.config.key, dest);
          backend.dest = dest;
        } catch (error) {
          // The next update retries: the recorded weight still differs from the policy's.
          this.#log.error(
            `cannot set the weight of backend ${JSON.stringify(backend.id)} of service ${JSON.stringify(service.id)} ` +
              `to ${weight}: ${String(error)}`,
          );
        }
      })
      .catch((error: unknown) => this.#log.error(`health update failed: ${String(error)}`));
  }

  /** One step of the weight policy for a backend with `spec` and the latest `health`. */
  #nextWeight(previous: WeightState, spec: BackendSpec, health: BackendHealth): WeightState {
    return nextWeight(
      previous,
      {
        configured: spec.weight,
        pulseType: spec.pulse.type,
        status: health.state,
        samples: health.samples,
        samplesOk: health.samplesOk,
        consecutiveOk: health.consecutiveOk,
      },
      this.#policy,
    );
  }

  #watch(service: ServiceRecord, backend: BackendRecord): void {
    this.#watches.set(backend.watchId, { service, backend });
    this.#checks.add(backend.watchId, { host: backend.address.address, port: backend.spec.port }, backend.spec.pulse);
  }

  #unwatch(backend: BackendRecord): void {
    this.#watches.delete(backend.watchId);
    this.#checks.remove(backend.watchId);
  }

  /** The backend's health for GET: the monitor's live view (uptime grows between checks), else the record. */
  #liveHealth(backend: BackendRecord): BackendHealth {
    const view = this.#checks.snapshot(backend.watchId);
    return view === undefined ? backend.health : backendHealthOf(view);
  }

  // ---- helpers ------------------------------------------------------------------------------------------

  /** Run a mutation under the lock and save what it changed; refused after close(). */
  #locked<T>(section: () => Promise<T>): Promise<T> {
    return this.#mutex.run(async () => {
      if (this.#closed) throw new KernelError("gorb is shutting down", "");
      const result = await section();
      await this.#save();
      return result;
    });
  }

  /** Mark a service (or one of its backends) as changed since the last commit. */
  #touch(serviceId: string, backendId?: string): void {
    if (this.#store === null) return;
    if (backendId === undefined) this.#dirtyServices.add(serviceId);
    else this.#dirtyBackends.add(JSON.stringify([serviceId, backendId]));
  }

  /** Commit the rows changed since the last commit; a failure leaves them marked (the next commit retries). */
  async #save(): Promise<void> {
    if (this.#store === null) return;
    const changes = this.#changes();
    if (noChanges(changes)) return;
    try {
      await this.#store.commit(changes);
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      this.#log.error(`cannot save the state to ${this.#store.location}: ${why}`);
      throw new StateError(
        `the change is applied but could not be saved to ${this.#store.location} (${why}); ` +
          "gorb retries with the next change, and loses it if it restarts first",
        { cause: error },
      );
    }
    this.#dirtyServices.clear();
    this.#dirtyBackends.clear();
  }

  /** The rows to write or delete for everything marked changed. */
  #changes(): StateChanges {
    const putServices: SavedService[] = [];
    const deleteServices: string[] = [];
    const putBackends: SavedBackend[] = [];
    const deleteBackends: { service: string; id: string }[] = [];
    for (const id of this.#dirtyServices) {
      const record = this.#services.get(id);
      if (record === undefined) deleteServices.push(id);
      else putServices.push(this.#savedService(record));
    }
    for (const pair of this.#dirtyBackends) {
      const [serviceId = "", backendId = ""] = JSON.parse(pair) as string[];
      const service = this.#services.get(serviceId);
      if (service === undefined) {
        if (!this.#dirtyServices.has(serviceId)) deleteBackends.push({ service: serviceId, id: backendId });
        continue; // a deleted service takes its backend rows with it
      }
      const backend = service.backends.get(backendId);
      if (backend === undefined) deleteBackends.push({ service: serviceId, id: backendId });
      else putBackends.push(this.#savedBackend(service, backend));
    }
    return { putServices, deleteServices, putBackends, deleteBackends };
  }

  #savedService(record: ServiceRecord): SavedService {
    const key = record.config.key;
    const vip = !isFwmarkKey(key) && (this.#vips.get(key.address)?.owners.has(record.id) ?? false);
    return { id: record.id, source: record.source, fields: fieldsToJson(record.fields), key, vip };
  }

  #savedBackend(service: ServiceRecord, backend: BackendRecord): SavedBackend {
    return {
      service: service.id,
      id: backend.id,
      source: backend.source,
      fields: fieldsToJson(backend.fields),
      address: backend.address,
    };
  }

  /** Run a driver call, turning its failure into a GorbError. */
  async #kernel<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw fromIpvsError(error);
    }
  }

  #service(id: string): ServiceRecord {
    const record = this.#services.get(id);
    if (record === undefined) throw new NotFoundError(`service ${JSON.stringify(id)} not found`);
    return record;
  }

  #backend(service: ServiceRecord, id: string): BackendRecord {
    const backend = service.backends.get(id);
    if (backend === undefined) {
      throw new NotFoundError(`backend ${JSON.stringify(id)} of service ${JSON.stringify(service.id)} not found`);
    }
    return backend;
  }

  #checkServiceKeyFree(key: ServiceKey): void {
    const wanted = serviceKeyId(key);
    for (const other of this.#services.values()) {
      if (serviceKeyId(other.config.key) === wanted) {
        throw new ConflictError(`service ${JSON.stringify(other.id)} already uses ${describeService(key)}`);
      }
    }
  }

  /**
   * Put the service's address on the VIP interface unless gorb already did for another service. Resolves true
   * when this service now holds a claim on it. A failure fails the request (with nothing changed).
   */
  async #claimVip(id: string, key: ServiceKey): Promise<boolean> {
    if (isFwmarkKey(key)) return false;
    const claim = this.#vips.get(key.address);
    if (claim !== undefined) {
      claim.owners.add(id);
      return true;
    }
    let added: boolean;
    try {
      added = await this.#vip.add(key.address, key.family);
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new KernelError(`cannot add VIP ${key.address} to the VIP interface: ${why}`, "", { cause: error });
    }
    if (!added) return false; // already there, not gorb's: never removed
    this.#vips.set(key.address, { family: key.family, owners: new Set([id]) });
    return true;
  }

  /** Drop the service's claim on its VIP; remove the address when no service uses it any more. */
  async #releaseVip(id: string, key: ServiceKey): Promise<void> {
    if (isFwmarkKey(key)) return;
    const claim = this.#vips.get(key.address);
    if (claim === undefined || !claim.owners.delete(id) || claim.owners.size > 0) return;
    this.#vips.delete(key.address);
    try {
      await this.#vip.remove(key.address, claim.family);
    } catch (error) {
      this.#log.warn(`cannot remove VIP ${key.address} from the VIP interface: ${String(error)}`);
    }
  }

  #serviceInfo(record: ServiceRecord): ServiceInfo {
    const backends = [...record.backends.values()];
    return {
      options: serviceOptionsView(record.spec, record.config),
      health: serviceHealth(backends.map((b) => b.health)),
      backends: backends.map((b) => b.id).sort(),
      stats: null,
    };
  }

  #backendInfo(service: ServiceRecord, backend: BackendRecord, dest: Destination | null): BackendInfo {
    return {
      options: backendOptionsView(backend.spec, service.id, backend.address.address),
      metrics: metricsView(this.#liveHealth(backend)),
      effective_weight: backend.dest.weight,
      ...destinationCounters(dest),
    };
  }
}

