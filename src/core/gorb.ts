/**
 * Gorb is the core facade: a lock (./work-queue.ts) and the orchestration of small single-purpose modules.
 *
 *   desired state   ./desired-state.ts   services, backends, owners, with indexes; health facts and weights
 *   edits           ./edits.ts           the changes requests and applies are made of, each undoable (./tx.ts)
 *   reconciler      ./reconcile.ts       pure: desired + observed -> IPVS operations, with reasons
 *   executor        ./kernel-writer.ts   the only code that writes IPVS: one driver batch per plan
 *   health          ./health-weights.ts  health updates -> desired effective weights (panic threshold)
 *   VIPs            ./vip-ledger.ts      addresses gorb put on the VIP interface
 *   durable state   ./changes.ts         rows changed -> one store commit per group of requests
 *   reads           ./queries.ts         what GET returns
 *   restore, apply  ./restore.ts, ./plan.ts, ./apply.ts
 *
 * Rules it keeps:
 *   - Every change runs under the lock, in call order. Requests queued together run as one group and share
 *     one commit to the store (group commit); each one is written to the kernel as one batch of its own, so a
 *     failed request never disturbs the others.
 *   - A failed request changes nothing: its edits of the desired state are undone and the reconciler writes
 *     the kernel back (planning from the previous desired state against what the kernel now has). A failed
 *     commit undoes every request of its group the same way and answers 503; while the store cannot write,
 *     requests are refused with 503 before anything is touched, until a probe write works again.
 *   - Health updates only change desired effective weights; the reconciler writes them (coalesced: one batch
 *     for every update queued meanwhile). DNS names are resolved before the lock is taken, with a timeout, so
 *     a slow resolver never holds up a drain.
 *   - Objects in the kernel that gorb did not create are never touched; what matches is never rewritten.
 *   - Every change is published on the event bus (./events.ts) once it is committed.
 */
import type { Discovery } from "../discovery/discovery.ts";
import { NoDiscovery } from "../discovery/none.ts";
import type { HealthUpdate } from "../health/monitor.ts";
import { DEFAULT_WEIGHT_POLICY, type WeightPolicy } from "../health/weight.ts";
import { describeDestination, describeService } from "../ipvs/address.ts";
import { destinationKeyId, serviceKeyId } from "./keys.ts";
import type { IpvsDriver } from "../ipvs/driver.ts";
import type { DestinationConfig } from "../ipvs/types.ts";
import { isFwmarkKey } from "../ipvs/types.ts";
import { dryRunReport, type ApplyReport, type ChangeReport, replacementBody } from "./apply.ts";
import { ChangeTracker } from "./changes.ts";
import { DesiredState, type BackendRecord } from "./desired-state.ts";
import { Edits } from "./edits.ts";
import { ConflictError, GorbError, UnavailableError, fromIpvsError } from "./errors.ts";
import { EventBus } from "./events.ts";
import { UNKNOWN_HEALTH, type HealthChecks, type HealthChecksFactory } from "./health.ts";
import { applyHealthUpdates } from "./health-weights.ts";
import { checkId } from "./ids.ts";
import { KernelWriter, type OperationResult } from "./kernel-writer.ts";
import type { Logger } from "./logger.ts";
import { silentLogger } from "./logger.ts";
import {
  BACKEND_FIELDS,
  SERVICE_FIELDS,
  backendFields,
  backendPatchFields,
  normalizeBackendFields,
  normalizeServiceFields,
  serviceFields,
  servicePatchFields,
} from "./normalize.ts";
import { planApply, resolveDeclared, type ApplyStep, type DeclaredService, type ManagedService, type PlannedChange } from "./plan.ts";
import { Queries } from "./queries.ts";
import { observedTable, planOperations, unknownDestinations, type Operation, type WantedService } from "./reconcile.ts";
import { DEFAULT_RESOLVE_TIMEOUT_MS, dnsResolver, namesOf, prefetchHosts, withTimeout, type HostResolver } from "./resolve.ts";
import { adoptedFields, adoptedId, loadSavedState } from "./restore.ts";
import type { UnknownDestinationMode } from "./unknown-destinations.ts";
import { fieldsToJson, type SavedState, type Source, type StateStore } from "./state.ts";
import { Tx, mergeTargets, wantedFor } from "./tx.ts";
import { NoVipManager, type VipManager } from "./vip.ts";
import { VipLedger } from "./vip-ledger.ts";
import type { BackendInfo, ServiceDetail, ServiceInfo } from "./views.ts";
import { WorkQueue, type QueuedJob } from "./work-queue.ts";

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
  /** How long a DNS lookup may take before the request is refused (400 on "host"). @default 2000 */
  readonly resolveTimeoutMs?: number;
  /** Address for services created without `host` (the first address of the -i interface). @default null */
  readonly defaultAddress?: string | null;
  readonly logger?: Logger;
  /** Keeps every accepted change on disk (see ./state.ts). @default none: nothing survives a restart */
  readonly store?: StateStore;
  /** Where changes are published. @default a private bus */
  readonly events?: EventBus;
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
  /**
   * Serving destinations of gorb's services that the saved state does not know, e.g. "10.1.0.9:80 in service
   * \"web\"": left alone ("report"), taken as backends ("adopt") or deleted ("remove").
   */
  readonly unknown: readonly string[];
}

/** Totals of every reconcile (restore included) since start, for /metrics. */
export interface ReconcileCounters {
  readonly runs: number;
  readonly repairs: number;
  readonly failures: number;
}

interface Job extends QueuedJob {
  readonly section: (tx: Tx) => Promise<unknown>;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

const q = JSON.stringify;

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The core facade; see the module comment. */
export class Gorb {
  readonly #driver: IpvsDriver;
  readonly #checks: HealthChecks;
  readonly #policy: WeightPolicy;
  readonly #vips: VipLedger;
  readonly #discovery: Discovery;
  readonly #resolver: HostResolver;
  readonly #defaultAddress: string | null;
  readonly #log: Logger;
  readonly #store: StateStore | null;
  readonly #events: EventBus;
  readonly #desired = new DesiredState();
  readonly #writer: KernelWriter;
  readonly #edits: Edits;
  readonly #queries: Queries;
  readonly #queue: WorkQueue<Job>;
  readonly #pendingHealth: HealthUpdate[] = [];
  #healthQueued = false;
  #closed = false;
  /** Set when a commit failed; cleared by a probe write that works. */
  #storeDown = false;
  #counters: ReconcileCounters = { runs: 0, repairs: 0, failures: 0 };

  constructor(options: GorbOptions) {
    this.#driver = options.driver;
    this.#policy = options.weightPolicy ?? DEFAULT_WEIGHT_POLICY;
    this.#discovery = options.discovery ?? new NoDiscovery();
    this.#resolver = withTimeout(options.resolver ?? dnsResolver(), options.resolveTimeoutMs ?? DEFAULT_RESOLVE_TIMEOUT_MS);
    this.#defaultAddress = options.defaultAddress ?? null;
    this.#log = options.logger ?? silentLogger;
    this.#store = options.store ?? null;
    this.#events = options.events ?? new EventBus();
    this.#vips = new VipLedger(options.vip ?? new NoVipManager(), this.#log);
    this.#checks = options.health((update) => this.#onUpdate(update));
    this.#writer = new KernelWriter(this.#driver);
    this.#edits = new Edits({
      desired: this.#desired,
      vips: this.#vips,
      checks: this.#checks,
      discovery: this.#discovery,
      events: this.#events,
      log: this.#log,
      policy: this.#policy,
      defaultAddress: this.#defaultAddress,
    });
    this.#queries = new Queries({ desired: this.#desired, writer: this.#writer, checks: this.#checks, driver: this.#driver, log: this.#log });
    this.#queue = new WorkQueue<Job>(
      (job) => this.#runOne(job),
      (jobs) => this.#runGroup(jobs),
    );
  }

  /** The event bus changes are published on (GET /events follows it). */
  get events(): EventBus {
    return this.#events;
  }

  // ---- start-up and shutdown ----------------------------------------------------------------------------

  /**
   * Start-up: with `flush`, delete every IPVS service (gorb's and everyone else's); without, read the table
   * and report the services gorb does not manage, without touching them.
   */
  adopt(flush: boolean): Promise<AdoptReport> {
    return this.#exclusive(async () => {
      if (flush) {
        await this.#kernel(() => this.#writer.flush());
        this.#log.info("flushed the IPVS table");
        return { flushed: true, foreign: [] };
      }
      const table = await this.#kernel(() => this.#driver.snapshot());
      const foreign: string[] = [];
      for (const entry of table) {
        if (this.#desired.hasKeyId(serviceKeyId(entry.service.key))) continue;
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
   * is (traffic keeps flowing while gorb restarts). Changes after close() are refused.
   */
  async close(): Promise<void> {
    await this.#exclusive(async () => {
      this.#closed = true;
    }, false);
    this.#checks.stop();
    await this.#discovery.close();
  }

  /** Resolves once every change and health update queued so far has been applied (tests, shutdown). */
  idle(): Promise<void> {
    return this.#exclusive(async () => {}, false);
  }

  // ---- services -----------------------------------------------------------------------------------------

  /** PUT /service/:service — create a virtual service from a GORB body. `source` says who owns it (default "api"). */
  async createService(id: string, body: unknown, options: { readonly source?: Source } = {}): Promise<void> {
    checkId("service", id);
    const fields = serviceFields(body);
    normalizeServiceFields(fields); // refuse bad input before waiting for the lock
    return this.#withHosts([fields.get("host")], async (tx, resolver) => {
      await this.#edits.createService(tx, id, fields, options.source ?? "api", resolver);
      await this.#write(tx);
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
    return this.#withHosts([patch.get("host")], async (tx, resolver) => {
      await this.#edits.updateService(tx, this.#queries.service(id), patch, resolver);
      await this.#write(tx);
    });
  }

  /** DELETE /service/:service — remove a service and its backends. */
  async deleteService(id: string): Promise<void> {
    checkId("service", id);
    return this.#mutation(async (tx) => {
      this.#edits.deleteService(tx, this.#queries.service(id));
      await this.#write(tx);
    });
  }

  /** GET /service — the service ids, sorted. */
  listServices(): string[] {
    return this.#queries.listServices();
  }

  /** GET /service/:service. */
  async getService(id: string): Promise<ServiceInfo> {
    checkId("service", id);
    return this.#queries.getService(id);
  }

  /** GET /service?detail=true — every service with its backends, health and counters, from one table read. */
  listServicesDetail(): Promise<ServiceDetail[]> {
    return this.#queries.listServicesDetail();
  }

  // ---- backends -----------------------------------------------------------------------------------------

  /** PUT /service/:service/:backend — add a backend and start its health checks. `source`: see createService. */
  async createBackend(serviceId: string, backendId: string, body: unknown, options: { readonly source?: Source } = {}): Promise<void> {
    checkId("service", serviceId);
    checkId("backend", backendId);
    const fields = backendFields(body);
    return this.#withHosts([fields.get("host")], async (tx, resolver) => {
      const service = this.#queries.service(serviceId);
      await this.#edits.createBackend(tx, service, backendId, fields, options.source ?? "api", resolver);
      await this.#write(tx);
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
    return this.#withHosts([patch.get("host")], async (tx, resolver) => {
      const service = this.#queries.service(serviceId);
      await this.#edits.updateBackend(tx, service, this.#queries.backend(service, backendId), patch, resolver);
      await this.#write(tx);
    });
  }

  /** DELETE /service/:service/:backend — remove a backend and stop its health checks. */
  async deleteBackend(serviceId: string, backendId: string): Promise<void> {
    checkId("service", serviceId);
    checkId("backend", backendId);
    return this.#mutation(async (tx) => {
      const service = this.#queries.service(serviceId);
      this.#edits.deleteBackend(tx, service, this.#queries.backend(service, backendId));
      await this.#write(tx);
    });
  }

  /** GET /service/:service/:backend. */
  async getBackend(serviceId: string, backendId: string): Promise<BackendInfo> {
    checkId("service", serviceId);
    checkId("backend", backendId);
    return this.#queries.getBackend(serviceId, backendId);
  }

  // ---- restore, reconcile, declarative apply --------------------------------------------------------------

  /**
   * Start-up: take over the saved services and backends and make the kernel match them without touching what
   * already matches, in one batch. Must run before any other change. A destination the kernel already has
   * keeps its weight until the first health check (see restoredWeight); health history starts over. Saved
   * rows that cannot be read back are logged and removed from the state. Destinations of gorb's services the
   * state does not know are reported and left serving, adopted, or removed (`unknownDestinations`).
   */
  restore(state: SavedState, options: { readonly unknownDestinations?: UnknownDestinationMode } = {}): Promise<RestoreReport> {
    const mode = options.unknownDestinations ?? "report";
    return this.#exclusive(async () => {
      if (this.#desired.size > 0) throw new ConflictError("restore() must run before any service is created");
      const table = await this.#kernel(() => this.#driver.snapshot());
      const tracker = new ChangeTracker();
      const loaded = loadSavedState(state, observedTable(table), (s, b) => this.#edits.watchId(s, b));
      for (const record of loaded.services) this.#desired.addService(record);
      for (const record of loaded.vips) this.#vips.remember(record.id, record.config.key);
      for (const d of loaded.dropped) this.#log.error(`cannot restore ${d.what} (removed from the saved state): ${d.why}`);
      for (const [service, backend] of loaded.drop) tracker.touch(service, backend);
      this.#writer.replace(table, (id) => this.#desired.hasKeyId(id));

      const unknown: string[] = [];
      for (const { service: serviceId, dest } of unknownDestinations(this.#desired.wantedAll(), this.#writer.view)) {
        const service = this.#desired.service(serviceId);
        if (service === undefined) continue;
        const text = `${describeDestination(dest)} in service ${q(serviceId)}`;
        unknown.push(text);
        if (mode === "report") {
          service.keep.add(destinationKeyId(dest));
          this.#log.warn(`restore: IPVS serves ${text}, which the saved state does not know; leaving it (--unknown-destinations report)`);
        } else if (mode === "adopt") {
          this.#adoptDestination(service.id, dest, tracker);
          this.#log.warn(`restore: IPVS serves ${text}, which the saved state does not know; adopted it as an API backend`);
        } else {
          this.#log.warn(`restore: IPVS serves ${text}, which the saved state does not know; removing it (--unknown-destinations remove)`);
        }
      }

      const repairs = await this.#repair(planOperations(this.#desired.wantedAll(), this.#writer.view));
      // At start-up a missing VIP is expected (the interface may have been reset with the host): not a repair.
      await this.#vips.restoreMissing();
      let backends = 0;
      for (const record of this.#desired.services()) {
        for (const backend of record.backends.values()) {
          this.#checks.add(backend.watchId, { host: backend.address.address, port: backend.spec.port }, backend.spec.pulse);
          backends++;
        }
        const key = record.config.key;
        if (!isFwmarkKey(key)) this.#discovery.expose({ id: record.id, address: key.address, port: key.port, protocol: key.protocol });
      }
      if (this.#store !== null && !tracker.empty) {
        try {
          await this.#store.commit(tracker.changes(this.#desired, this.#vips));
        } catch (error) {
          this.#storeDown = true;
          this.#log.error(`cannot save the state to ${this.#store.location}: ${message(error)}`);
        }
      }
      this.#log.info(
        `restored ${this.#desired.size} service(s) and ${backends} backend(s) from ${this.#store?.location ?? "the saved state"}` +
          (repairs.length === 0 ? "; the kernel already matched" : `; ${repairs.length} repair(s)`),
      );
      return { services: this.#desired.size, backends: loaded.backends, dropped: loaded.dropped.map((d) => `${d.what}: ${d.why}`), repairs, unknown };
    });
  }

  /**
   * Compare the kernel with what gorb manages and repair every difference in place (a service deleted or
   * changed behind gorb's back comes back as gorb knows it). Services gorb does not manage are not looked at.
   */
  reconcile(): Promise<ReconcileReport> {
    return this.#exclusive(async () => {
      const table = await this.#kernel(() => this.#driver.snapshot());
      this.#writer.replace(table, (id) => this.#desired.hasKeyId(id));
      const repairs = await this.#repair(planOperations(this.#desired.wantedAll(), this.#writer.view));
      const vips = await this.#vips.restoreMissing();
      if (vips.restored + vips.failed > 0) {
        this.#counters = {
          ...this.#counters,
          repairs: this.#counters.repairs + vips.restored,
          failures: this.#counters.failures + vips.failed,
        };
      }
      return { repairs };
    });
  }

  /** Totals of every reconcile since start (restore included). */
  reconcileCounters(): ReconcileCounters {
    return this.#counters;
  }

  /**
   * Make gorb's file-owned services match a declarative set (see ./plan.ts for what changes and what is never
   * touched). Names are resolved first, outside the lock; then the set is planned and run under the lock, as
   * one kernel batch and one commit, so a request cannot slip in between. A bad field, an unresolvable name or
   * a conflict rejects the set with nothing changed. A change the kernel refuses is undone and reported; the
   * others stay. With `dryRun`, only the plan is returned.
   */
  async apply(declared: readonly DeclaredService[], options: { readonly dryRun?: boolean } = {}): Promise<ApplyReport> {
    const hosts = declared.flatMap((s) => [s.fields.get("host"), ...s.backends.map((b) => b.fields.get("host"))]);
    const resolver = await prefetchHosts(hosts, this.#resolver);
    return this.#exclusive(async () => {
      if (options.dryRun !== true) await this.#checkStore();
      const wanted = await resolveDeclared(declared, resolver, this.#defaultAddress);
      const services = await this.#kernel(() => this.#driver.listServices());
      const foreign = services.map((s) => s.key).filter((k) => !this.#desired.hasKeyId(serviceKeyId(k)));
      const plan = planApply(this.managedServices(), wanted, foreign);
      if (options.dryRun === true) return dryRunReport(plan);
      const report = await this.#runApply(plan, resolver);
      const failed = report.changes.filter((c) => c.status === "failed");
      if (plan.length > 0) this.#log.info(`applied the declarative set: ${plan.length - failed.length} change(s) done, ${failed.length} failed`);
      for (const c of failed) {
        this.#log.error(`apply: ${c.action} ${c.backend === null ? c.service : `${c.service}/${c.backend}`} failed: ${c.error ?? ""}`);
      }
      return report;
    });
  }

  /** Every service gorb manages, with its owner and request fields, for planning an apply. */
  managedServices(): ManagedService[] {
    return [...this.#desired.services()].map((s) => ({
      id: s.id,
      source: s.source,
      fields: new Map(s.fields),
      spec: s.spec,
      config: s.config,
      backends: [...s.backends.values()].map((b) => ({ id: b.id, source: b.source, fields: new Map(b.fields), spec: b.spec, address: b.address })),
    }));
  }

  // ---- the lock -----------------------------------------------------------------------------------------

  /**
   * Queue a request that may name hosts: DNS names among `hosts` are looked up first, outside the lock (with
   * the timeout); a request without names is queued at once, so requests keep their call order.
   */
  #withHosts<T>(hosts: readonly unknown[], section: (tx: Tx, resolver: HostResolver) => Promise<T>): Promise<T> {
    if (namesOf(hosts).size === 0) return this.#mutation((tx) => section(tx, this.#resolver));
    return prefetchHosts(hosts, this.#resolver).then((resolver) => this.#mutation((tx) => section(tx, resolver)));
  }

  /** Queue a request: it runs in a group with the requests queued with it, and shares their commit. */
  #mutation<T>(section: (tx: Tx) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ group: true, section, resolve: resolve as (value: unknown) => void, reject });
    });
  }

  /** Queue a job that runs alone; refused after close() unless `refuseClosed` is false. */
  #exclusive<T>(section: () => Promise<T>, refuseClosed = true): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const run = async () => {
        if (refuseClosed && this.#closed) throw new UnavailableError("shutdown", "gorb is shutting down");
        return section();
      };
      this.#queue.push({ group: false, section: run, resolve: resolve as (value: unknown) => void, reject });
    });
  }

  async #runOne(job: Job): Promise<void> {
    try {
      job.resolve(await job.section(new Tx()));
    } catch (error) {
      job.reject(error);
    }
  }

  /** Run a group of requests: each on its own, then one commit for all; see the module comment. */
  async #runGroup(jobs: readonly Job[]): Promise<void> {
    try {
      if (this.#closed) throw new UnavailableError("shutdown", "gorb is shutting down");
      await this.#checkStore();
    } catch (error) {
      for (const job of jobs) job.reject(error);
      return;
    }
    const done: { job: Job; tx: Tx; result: unknown }[] = [];
    for (const job of jobs) {
      const tx = new Tx();
      try {
        done.push({ job, tx, result: await job.section(tx) });
      } catch (error) {
        job.reject(error);
      }
    }
    try {
      await this.#commit(done.map((d) => d.tx));
    } catch (error) {
      for (const d of [...done].reverse()) await this.#rollback(d.tx);
      for (const d of done) d.job.reject(error);
      return;
    }
    for (const d of done) {
      await d.tx.commitEffects().catch((error: unknown) => this.#log.error(`after a change: ${message(error)}`));
      d.job.resolve(d.result);
    }
  }

  /** Refuse (503) while the store cannot write; a probe write that works clears the state. */
  async #checkStore(): Promise<void> {
    if (this.#closed) throw new UnavailableError("shutdown", "gorb is shutting down");
    const store = this.#store;
    if (store === null || !this.#storeDown) return;
    try {
      if (store.probe !== undefined) await store.probe();
      else await store.commit({ putServices: [], deleteServices: [], putBackends: [], deleteBackends: [] });
    } catch (error) {
      throw new UnavailableError(
        "state",
        `gorb cannot save its state to ${store.location} (${message(error)}); changes are refused until it can`,
        { cause: error },
      );
    }
    this.#storeDown = false;
    this.#log.info(`the state can be saved to ${store.location} again; changes are accepted`);
  }

  /** Commit the rows the changes touched, in one transaction; a failure marks the store down and throws 503. */
  async #commit(txs: readonly Tx[]): Promise<void> {
    const store = this.#store;
    if (store === null) return;
    const tracker = new ChangeTracker();
    for (const tx of txs) for (const [service, backend] of tx.touched) tracker.touch(service, backend);
    if (tracker.empty) return;
    try {
      await store.commit(tracker.changes(this.#desired, this.#vips));
    } catch (error) {
      this.#storeDown = true;
      this.#log.error(`cannot save the state to ${store.location}: ${message(error)}`);
      throw new UnavailableError(
        "state",
        `the change could not be saved to ${store.location} (${message(error)}) and was undone; ` +
          "changes are refused until the state can be saved again",
        { cause: error },
      );
    }
  }

  // ---- writing the kernel -------------------------------------------------------------------------------

  /** Write a change's targets as one batch; on failure, roll the change back and throw the first error. */
  async #write(tx: Tx): Promise<void> {
    const results = await this.#execute(wantedFor(this.#desired, mergeTargets(tx.targets)));
    const failed = results.find((r) => r.error !== null);
    if (failed !== undefined) {
      await this.#rollback(tx);
      throw fromIpvsError(failed.error);
    }
    tx.after(() => this.#weightEvents(results));
  }

  /** Undo a change's edits and write its targets back to the previous desired state. */
  async #rollback(tx: Tx): Promise<void> {
    tx.undoEdits();
    const results = await this.#execute(wantedFor(this.#desired, mergeTargets(tx.targets)));
    for (const r of results) {
      if (r.error !== null) this.#log.error(`cannot undo a failed change in IPVS (${r.operation.reason}): ${r.error.message}`);
    }
    await tx.releaseClaims();
  }

  /** Plan `wanted` against gorb's view of the kernel and run it as one batch; log deletes already done. */
  async #execute(wanted: readonly WantedService[]): Promise<OperationResult[]> {
    const results = await this.#writer.run(planOperations(wanted, this.#writer.view));
    for (const r of results) {
      if (!r.gone) continue;
      const op = r.operation.op;
      if (op.op === "delete-service") this.#log.warn(`service ${q(r.operation.service)} (${describeService(op.key)}) was already gone from IPVS`);
      else if (op.op === "delete-destination") {
        this.#log.warn(`backend ${q(r.operation.backend ?? "")} (${describeDestination(op.destination)}) was already gone`);
      }
    }
    return results;
  }

  /** Publish backend.weight for every effective weight the kernel now has differently. */
  #weightEvents(results: readonly OperationResult[]): void {
    for (const r of results) {
      const op = r.operation.op;
      if (r.error !== null || op.op !== "update-destination" || r.operation.backend === null) continue;
      const from = r.before?.weight;
      if (from === undefined || from === op.destination.weight) continue;
      const backend = this.#desired.service(r.operation.service)?.backends.get(r.operation.backend);
      this.#events.publish("backend.weight", {
        service: r.operation.service,
        backend: r.operation.backend,
        from,
        to: op.destination.weight,
        configured: backend?.spec.weight ?? op.destination.weight,
      });
    }
  }

  /** Run repairs in one batch; log, count and publish each one. */
  async #repair(operations: readonly Operation[]): Promise<RepairReport[]> {
    const results = await this.#writer.run(operations);
    this.#weightEvents(results);
    const reports = results.map((r): RepairReport => {
      const { service, backend, reason } = r.operation;
      const where = backend === null ? `service ${q(service)}` : `backend ${q(backend)} of service ${q(service)}`;
      const report: RepairReport =
        r.error === null
          ? { service, backend, reason, status: "done" }
          : { service, backend, reason, status: "failed", error: r.error.message };
      if (r.error === null) this.#log.warn(`reconcile: ${where}: ${reason}; repaired`);
      else this.#log.error(`reconcile: ${where}: ${reason}; cannot repair: ${r.error.message}`);
      this.#events.publish("reconcile.repair", report);
      return report;
    });
    const failed = reports.filter((r) => r.status === "failed").length;
    this.#counters = {
      runs: this.#counters.runs + 1,
      repairs: this.#counters.repairs + reports.length - failed,
      failures: this.#counters.failures + failed,
    };
    return reports;
  }

  /** Run a driver call, turning its failure into a GorbError. */
  async #kernel<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw fromIpvsError(error);
    }
  }

  // ---- health -------------------------------------------------------------------------------------------

  /** A health update: queue it; one drain handles every update queued meanwhile, as one batch. */
  #onUpdate(update: HealthUpdate): void {
    this.#pendingHealth.push(update);
    if (this.#healthQueued) return;
    this.#healthQueued = true;
    this.#queue.push({
      group: false,
      section: () => this.#drainHealth(),
      resolve: () => undefined,
      reject: (error) => this.#log.error(`health update failed: ${message(error)}`),
    });
  }

  async #drainHealth(): Promise<void> {
    this.#healthQueued = false;
    const updates = this.#pendingHealth.splice(0);
    if (this.#closed) return;
    const step = applyHealthUpdates(this.#desired, updates, this.#policy);
    for (const t of step.transitions) {
      // A first "up" (a new backend passing its first check) is routine: debug, so a bulk load logs nothing per
      // backend; going down is a warning, coming back up is news.
      const how = t.to.state === "down" ? "warn" : t.from.state === "unknown" ? "debug" : "info";
      this.#log[how](`backend ${q(t.backend.id)} of service ${q(t.service.id)} is ${t.to.state}` + (t.to.message === "" ? "" : `: ${t.to.message}`));
      this.#events.publish("backend.health", {
        service: t.service.id,
        backend: t.backend.id,
        from: t.from.state,
        to: t.to.state,
        message: t.to.message,
      });
    }
    for (const p of step.panics) {
      const text = `${p.down} of ${p.total} backends down, threshold ${p.threshold}%`;
      if (p.active) this.#log.warn(`service ${q(p.service.id)} is in panic mode (${text}): keeping the weights of the down backends`);
      else this.#log.info(`service ${q(p.service.id)} left panic mode (${text}): draining the down backends`);
      this.#events.publish("service.panic", { service: p.service.id, down: p.down, total: p.total, threshold: p.threshold, active: p.active });
    }
    const wanted = [...step.touched].map(([service, ids]) => this.#desired.wanted(service, ids));
    const results = await this.#writer.run(planOperations(wanted, this.#writer.view));
    this.#weightEvents(results);
    for (const r of results) {
      if (r.error === null) continue;
      const op = r.operation.op;
      const weight = "destination" in op && "weight" in op.destination ? op.destination.weight : "?";
      this.#log.error(
        `cannot set the weight of backend ${q(r.operation.backend ?? "")} of service ${q(r.operation.service)} to ${weight}: ${String(r.error)}`,
      );
    }
  }

  // ---- apply --------------------------------------------------------------------------------------------

  /** Run a plan: edits per change, one kernel batch, undo of the changes the kernel refused, one commit. */
  async #runApply(plan: readonly PlannedChange[], resolver: HostResolver): Promise<ApplyReport> {
    const txs = plan.map(() => new Tx());
    const errors: (string | null)[] = plan.map(() => null);
    for (const [i, change] of plan.entries()) {
      const tx = txs[i] as Tx;
      try {
        for (const step of change.steps) await this.#applyStep(tx, step, resolver);
      } catch (error) {
        tx.undoEdits();
        await tx.releaseClaims();
        errors[i] = message(error);
      }
    }
    const live = plan.map((_, i) => i).filter((i) => errors[i] === null);
    const owner = new Map<string, number>();
    for (const i of live) {
      const c = plan[i] as PlannedChange;
      for (const k of [`${c.service}\u0000${c.backend ?? ""}`, `${c.service}\u0000`, `${c.service}\u0001`]) if (!owner.has(k)) owner.set(k, i);
    }
    const results = await this.#execute(wantedFor(this.#desired, mergeTargets(live.flatMap((i) => (txs[i] as Tx).targets))));
    for (const r of results) {
      if (r.error === null) continue;
      const { service, backend } = r.operation;
      const i = owner.get(`${service}\u0000${backend ?? ""}`) ?? owner.get(`${service}\u0000`) ?? owner.get(`${service}\u0001`);
      if (i !== undefined && errors[i] === null) errors[i] = fromIpvsError(r.error).message;
    }
    const failed = live.filter((i) => errors[i] !== null);
    const published = results.filter((r) => {
      const { service, backend } = r.operation;
      const i = owner.get(`${service}\u0000${backend ?? ""}`) ?? owner.get(`${service}\u0000`);
      return i === undefined || errors[i] === null;
    });
    for (const i of [...failed].reverse()) (txs[i] as Tx).undoEdits();
    if (failed.length > 0) {
      const back = await this.#execute(wantedFor(this.#desired, mergeTargets(failed.flatMap((i) => (txs[i] as Tx).targets))));
      for (const r of back) if (r.error !== null) this.#log.error(`cannot undo a failed change in IPVS (${r.operation.reason}): ${r.error.message}`);
      for (const i of failed) await (txs[i] as Tx).releaseClaims();
    }
    const succeeded = live.filter((i) => errors[i] === null).map((i) => txs[i] as Tx);
    try {
      await this.#commit(succeeded);
    } catch (error) {
      for (const tx of [...succeeded].reverse()) tx.undoEdits();
      await this.#execute(wantedFor(this.#desired, mergeTargets(succeeded.flatMap((tx) => tx.targets))));
      for (const tx of succeeded) await tx.releaseClaims();
      throw error;
    }
    for (const tx of succeeded) await tx.commitEffects().catch((error: unknown) => this.#log.error(`after a change: ${message(error)}`));
    this.#weightEvents(published);
    const changes = plan.map((c, i): ChangeReport => {
      const base = { action: c.action, service: c.service, backend: c.backend, details: c.details };
      const error = errors[i];
      return error === null || error === undefined ? { ...base, status: "done" } : { ...base, status: "failed", error };
    });
    return { dry_run: false, ok: changes.every((c) => c.status === "done"), changes };
  }

  async #applyStep(tx: Tx, step: ApplyStep, resolver: HostResolver): Promise<void> {
    const service = () => this.#queries.service(step.service);
    switch (step.kind) {
      case "create-service":
        return this.#edits.createService(tx, step.service, serviceFields(fieldsToJson(step.fields)), "file", resolver);
      case "update-service":
        return this.#edits.updateService(tx, service(), servicePatchFields(replacementBody(SERVICE_FIELDS, step.fields)), resolver);
      case "delete-service":
        return this.#edits.deleteService(tx, service());
      case "create-backend":
        return this.#edits.createBackend(tx, service(), step.backend, backendFields(fieldsToJson(step.fields)), step.source, resolver);
      case "update-backend": {
        const s = service();
        const patch = backendPatchFields(replacementBody(BACKEND_FIELDS, step.fields));
        return this.#edits.updateBackend(tx, s, this.#queries.backend(s, step.backend), patch, resolver);
      }
      case "delete-backend": {
        const s = service();
        return this.#edits.deleteBackend(tx, s, this.#queries.backend(s, step.backend));
      }
      case "take-over": {
        const s = service();
        return this.#edits.setSource(tx, s, step.backend === null ? null : this.#queries.backend(s, step.backend), "file");
      }
    }
  }

  /** Restore: take a destination the state does not know as an API-owned backend with pulse none. */
  #adoptDestination(serviceId: string, dest: DestinationConfig, tracker: ChangeTracker): void {
    const service = this.#desired.service(serviceId);
    if (service === undefined) return;
    const fields = adoptedFields(dest);
    try {
      const spec = normalizeBackendFields(fields, service.spec);
      const id = adoptedId(dest, (taken) => service.backends.has(taken));
      const backend: BackendRecord = {
        id,
        source: "api",
        watchId: this.#edits.watchId(serviceId, id),
        fields,
        spec,
        address: { address: dest.address, family: dest.family },
        health: UNKNOWN_HEALTH,
        weight: { effective: spec.weight, recovering: false },
      };
      this.#desired.addBackend(service, backend);
      tracker.touch(serviceId, id);
    } catch (error) {
      if (error instanceof GorbError) {
        service.keep.add(destinationKeyId(dest));
        this.#log.error(`restore: cannot adopt ${describeDestination(dest)} of service ${q(serviceId)}: ${error.message}; leaving it`);
      } else throw error;
    }
  }
}

