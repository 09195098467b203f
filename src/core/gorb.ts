/**
 * Gorb is the core facade: a lock (./work-queue.ts) and the orchestration of small single-purpose modules.
 *
 *   desired state   ./desired-state.ts   services, backends, owners, with indexes; health facts and weights
 *   edits           ./edits.ts           the changes requests and applies are made of, each undoable (./tx.ts)
 *   reconciler      ./reconcile.ts       pure: desired + observed -> IPVS operations, with reasons
 *   executor        ./kernel-writer.ts   the only code that writes IPVS: one driver batch per plan
 *   health          ./health-weights.ts  health updates -> desired effective weights (panic threshold)
 *   failover        ./failover.ts        quorum state and sorry server (pure); ./slow-start.ts ramps;
 *                   ./failover-runner.ts events, hooks and the ramp timer
 *   VIPs            ./vip-ledger.ts      addresses gorb put on the VIP interface
 *   durable state   ./changes.ts         rows changed -> one store commit per group of requests
 *   reads           ./queries.ts         what GET returns
 *   restore, apply  ./restore.ts, ./plan.ts, ./apply.ts
 *   drains          ./drains.ts          drains with a deadline; maintenance and drains override health (./drain.ts)
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
import { isFwmarkKey } from "../ipvs/types.ts";
import { dryRunReport, type ApplyReport } from "./apply.ts";
import { ChangeTracker } from "./changes.ts";
import { DesiredState, evaluateQuorum, type QuorumChange } from "./desired-state.ts";
import { Edits } from "./edits.ts";
import { ConflictError, UnavailableError, fromIpvsError } from "./errors.ts";
import { EventBus } from "./events.ts";
import { drainEvent, drainFields } from "./drain-targets.ts";
import { drainRequestOf, type DrainView } from "./drain.ts";
import { Drains } from "./drains.ts";
import { type HealthChecks, type HealthChecksFactory } from "./health.ts";
import { applyHealthUpdates, isQuietUpdate } from "./health-weights.ts";
import { checkId } from "./ids.ts";
import { KernelWriter } from "./kernel-writer.ts";
import type { Logger } from "../log.ts";
import { silentLogger } from "../log.ts";
import { backendFields, backendPatchFields, normalizeServiceFields, serviceFields, servicePatchFields } from "./normalize.ts";
import { planApply, resolveDeclared, type DeclaredService, type ManagedService } from "./plan.ts";
import { Queries } from "./queries.ts";
import { observedTable, planOperations, unknownDestinations, type Operation } from "./reconcile.ts";
import { ProbeChecks } from "./probe-checks.ts";
import { DEFAULT_PROBE_MARKS, type MarkRange } from "./mark-range.ts";
import { isProbeKey, PROBE_SERVICE_ID, wantedProbeServices } from "./probe-services.ts";
import { DEFAULT_RESOLVE_TIMEOUT_MS, dnsResolver, namesOf, prefetchHosts, withTimeout, type HostResolver } from "./resolve.ts";
import { type RemoteDrainListener, syncService } from "./remote.ts";
import { adoptDestination, loadSavedState } from "./restore.ts";
import { Transactions } from "./transactions.ts";
import { runApplyPlan } from "./apply-runner.ts";
import type { UnknownDestinationMode } from "./unknown-destinations.ts";
import { type SavedBackend, type SavedService, type SavedState, type Source, type StateStore } from "./state.ts";
import { Tx } from "./tx.ts";
import { NoVipManager, type VipManager } from "./vip.ts";
import { VipLedger } from "./vip-ledger.ts";
import type { BackendInfo, ServiceDetail, ServiceInfo, ServiceStatusView } from "./views.ts";
import { WorkQueue, type QueuedJob } from "./work-queue.ts";
import { DEFAULTS } from "../contract/fields.ts";
import { systemClock, type MonitorClock } from "../health/clock.ts";
import type { QuorumHookRunner } from "./failover.ts";
import { FailoverRunner } from "./failover-runner.ts";

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
  /** The VIP interface's name (--vip-interface): a loopback VIP is accepted only on "lo". @default null */
  readonly vipInterface?: string | null;
  /** Most services gorb holds (--max-services); a create beyond it is a 409 LIMIT. @default unlimited */
  readonly maxServices?: number | null;
  /** Most backends gorb holds, over all services (--max-backends). @default unlimited */
  readonly maxBackends?: number | null;
  readonly logger?: Logger;
  /** Keeps every accepted change on disk (see ./state.ts). @default none: nothing survives a restart */
  readonly store?: StateStore;
  /** Where changes are published. @default a private bus */
  readonly events?: EventBus;
  /** This node's name in a fleet (--store etcd://): drains record who started them. @default null (one node) */
  readonly nodeId?: string | null;
  /** Milliseconds between two reads of draining backends' connection counts. @default 1000 */
  readonly drainPollMs?: number;
  /** The wall clock (epoch ms) drains are timed with. @default Date.now */
  readonly now?: () => number;
  /** Runs quorum_up / quorum_down hooks (./failover.ts). @default none: hooks are logged, not run */
  readonly hooks?: QuorumHookRunner;
  /** Where quorum hooks must live (--hook-dir). @default DEFAULTS.hookDir */
  readonly hookDir?: string;
  /** The clock slow-start ramps run on. @default systemClock */
  readonly clock?: MonitorClock;
  /** Firewall marks for checks through the VIP (--probe-marks); default DEFAULT_PROBE_MARKS. */
  readonly probeMarks?: MarkRange;
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
  readonly #probes: ProbeChecks;
  #probeSyncQueued = false;
  readonly #policy: WeightPolicy;
  readonly #vips: VipLedger;
  readonly #discovery: Discovery;
  readonly #resolver: HostResolver;
  readonly #defaultAddress: string | null;
  readonly #vipInterface: string | null;
  readonly #log: Logger;
  readonly #store: StateStore | null;
  readonly #events: EventBus;
  readonly #desired = new DesiredState();
  readonly #writer: KernelWriter;
  readonly #edits: Edits;
  readonly #queries: Queries;
  readonly #tx: Transactions;
  readonly #queue: WorkQueue<Job>;
  readonly #pendingHealth: HealthUpdate[] = [];
  /** Ids of the updates in #pendingHealth: a later update of one of them is never quiet. */
  readonly #pendingHealthIds = new Set<string>();
  #healthQueued = false;
  #closed = false;
  readonly #failover: FailoverRunner;
  #counters: ReconcileCounters = { runs: 0, repairs: 0, failures: 0 };
  readonly #drains: Drains;

  constructor(options: GorbOptions) {
    this.#driver = options.driver;
    this.#policy = options.weightPolicy ?? DEFAULT_WEIGHT_POLICY;
    this.#discovery = options.discovery ?? new NoDiscovery();
    this.#resolver = withTimeout(options.resolver ?? dnsResolver(), options.resolveTimeoutMs ?? DEFAULT_RESOLVE_TIMEOUT_MS);
    this.#defaultAddress = options.defaultAddress ?? null;
    this.#vipInterface = options.vipInterface ?? null;
    this.#log = options.logger ?? silentLogger;
    this.#store = options.store ?? null;
    this.#events = options.events ?? new EventBus();
    this.#vips = new VipLedger(options.vip ?? new NoVipManager(), this.#log);
    this.#probes = new ProbeChecks(
      options.health((update) => this.#onUpdate(update)),
      this.#desired,
      options.probeMarks ?? DEFAULT_PROBE_MARKS,
      () => this.#queueProbeSync(),
      (watchId) => this.#log.error(`no mark left in the --probe-marks range for ${watchId}: it is checked directly, not through the VIP`),
    );
    this.#checks = this.#probes;
    this.#writer = new KernelWriter(this.#driver);
    this.#failover = new FailoverRunner({
      clock: options.clock ?? systemClock,
      hooks: options.hooks ?? null,
      log: this.#log,
      events: this.#events,
      desired: this.#desired,
      writer: this.#writer,
      transactions: () => this.#tx,
      schedule: (section, what) =>
        this.#queue.push({ group: false, section, resolve: () => undefined, reject: (error) => this.#log.error(`${what} failed: ${message(error)}`) }),
    });
    this.#edits = new Edits({
      desired: this.#desired,
      vips: this.#vips,
      checks: this.#checks,
      discovery: this.#discovery,
      events: this.#events,
      log: this.#log,
      policy: this.#policy,
      defaultAddress: this.#defaultAddress,
      vipInterface: options.vipInterface ?? null,
      limits: { services: options.maxServices ?? null, backends: options.maxBackends ?? null },
      slowStart: this.#failover.slowStart,
      now: () => this.#failover.now(),
      hookDir: options.hookDir ?? DEFAULTS.hookDir,
      probeMarks: this.#probes.range,
    });
    const now = options.now ?? Date.now;
    this.#queries = new Queries({ desired: this.#desired, writer: this.#writer, checks: this.#checks, driver: this.#driver, log: this.#log, now });
    this.#tx = new Transactions({
      desired: this.#desired,
      writer: this.#writer,
      store: this.#store,
      vips: this.#vips,
      events: this.#events,
      log: this.#log,
      onQuorum: (change) => this.#failover.quorumChanged(change),
    });
    const core = { desired: this.#desired, edits: this.#edits, queries: this.#queries, transactions: this.#tx, events: this.#events };
    const timing = { now, nodeId: options.nodeId ?? null, pollMs: options.drainPollMs ?? 1000 };
    this.#drains = new Drains({ ...core, ...timing, driver: this.#driver, log: this.#log, mutation: (section) => this.#mutation(section) });
    this.#queue = new WorkQueue<Job>(
      (job) => this.#runOne(job).finally(() => this.#failover.arm()),
      (jobs) => {
        if (!this.#closed) return this.#tx.runGroup(jobs).finally(() => this.#failover.arm());
        for (const job of jobs) job.reject(new UnavailableError("shutdown", "gorb is shutting down"));
        return Promise.resolve();
      },
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
        if (this.#desired.hasKeyId(serviceKeyId(entry.service.key)) || isProbeKey(this.#probes.range, entry.service.key)) continue;
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
    this.#drains.stop();
    this.#failover.stop();
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
      await this.#tx.write(tx);
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
      await this.#tx.write(tx);
    });
  }

  /** DELETE /service/:service — remove a service and its backends. */
  async deleteService(id: string): Promise<void> {
    checkId("service", id);
    return this.#mutation(async (tx) => {
      this.#edits.deleteService(tx, this.#queries.service(id));
      await this.#tx.write(tx);
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

  /** GET /service as text (`gorb status`): only what the status table shows, from one table read. */
  listServicesStatus(): Promise<ServiceStatusView[]> {
    return this.#queries.listServicesStatus();
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
      await this.#tx.write(tx);
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
      await this.#tx.write(tx);
    });
  }

  /** DELETE /service/:service/:backend — remove a backend and stop its health checks. */
  async deleteBackend(serviceId: string, backendId: string): Promise<void> {
    checkId("service", serviceId);
    checkId("backend", backendId);
    return this.#mutation(async (tx) => {
      const service = this.#queries.service(serviceId);
      this.#edits.deleteBackend(tx, service, this.#queries.backend(service, backendId));
      await this.#tx.write(tx);
    });
  }

  /** GET /service/:service/:backend. */
  async getBackend(serviceId: string, backendId: string): Promise<BackendInfo> {
    checkId("service", serviceId);
    checkId("backend", backendId);
    return this.#queries.getBackend(serviceId, backendId);
  }

  // ---- drains ---------------------------------------------------------------------------------------------

  /**
   * POST /service/:service/:backend/drain — weight 0 at once (whatever health says), then wait for the
   * backend's connections to end or the deadline (./drain.ts); then remove it or hold it at 0. A drain of a
   * backend already draining replaces it (a new deadline). Answers the drain as GET shows it.
   */
  async drainBackend(serviceId: string, backendId: string, body: unknown): Promise<DrainView> {
    checkId("service", serviceId);
    checkId("backend", backendId);
    return this.#drains.start(serviceId, backendId, drainRequestOf(drainFields(body)));
  }

  /** DELETE /service/:service/:backend/drain — cancel a drain (or end a held one): the weight comes back. */
  async undrainBackend(serviceId: string, backendId: string): Promise<void> {
    checkId("service", serviceId);
    checkId("backend", backendId);
    return this.#drains.cancel(serviceId, backendId);
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
      const loaded = await loadSavedState(state, observedTable(table), (s, b) => this.#edits.watchId(s, b));
      for (const record of loaded.services) this.#desired.addService(record);
      for (const record of loaded.vips) this.#vips.remember(record.id, record.config.key);
      for (const d of loaded.dropped) this.#log.error(`cannot restore ${d.what} (removed from the saved state): ${d.why}`);
      for (const [service, backend] of loaded.drop) tracker.touch(service, backend);
      this.#writer.replace(table, (id, key) => this.#desired.hasKeyId(id) || isProbeKey(this.#probes.range, key));

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
          const refused = adoptDestination(this.#desired, service, dest, (s, b) => this.#edits.watchId(s, b), tracker);
          if (refused === null) this.#log.warn(`restore: IPVS serves ${text}, which the saved state does not know; adopted it as an API backend`);
          else this.#log.error(`restore: cannot adopt ${text}: ${refused}; leaving it`);
        } else {
          this.#log.warn(`restore: IPVS serves ${text}, which the saved state does not know; removing it (--unknown-destinations remove)`);
        }
      }

      const quorumChanges = this.#failover.restoreStates();
      const repairs = await this.#repair(planOperations(this.#desired.wantedAll(), this.#writer.view));
      for (const change of quorumChanges) this.#failover.quorumChanged(change);
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
      // Rows dropped or adopted; a failure is logged and refuses changes until the disk takes writes again.
      await this.#tx.commitTracked(tracker).catch(() => undefined);
      this.#log.info(
        `restored ${this.#desired.size} service(s) and ${backends} backend(s) from ${this.#store?.location ?? "the saved state"}` +
          (repairs.length === 0 ? "; the kernel already matched" : `; ${repairs.length} repair(s)`),
      );
      this.#drains.kick(); // drains saved before the restart carry on, against their saved deadline
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
      this.#writer.replace(table, (id, key) => this.#desired.hasKeyId(id) || isProbeKey(this.#probes.range, key));
      const probes = wantedProbeServices(this.#probes.routes(), this.#writer.view, this.#probes.range);
      const repairs = await this.#repair(planOperations([...this.#desired.wantedAll(), ...probes], this.#writer.view));
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

  /**
   * A shared store's change (another node's write, or a relist): make the services named in `ids` match the rows
   * of `state` (a service without a row is deleted), through the same edits, reconciler and kernel writer as a
   * request, without writing to the store (the rows came from it). Each service is one change of its own: one
   * that fails (a conflict with a local service, a kernel error) is undone and logged, the others stay.
   * `onApplied` runs under the lock once every service was handled, before any later request. Returns how many
   * services changed.
   */
  /** A drain another node started or cancelled, announced on this node's log and event stream too. */
  readonly #onRemoteDrain: RemoteDrainListener = (service, backend, drain, phase) => {
    this.#log.info(`backend ${q(backend)} of service ${q(service)}: drain ${phase} on node ${q(drain.node ?? "")}`);
    this.#events.publish("backend.drain", drainEvent(service, backend, drain, phase, null));
  };

  applyRemote(state: SavedState, ids: Iterable<string>, onApplied?: () => void): Promise<number> {
    const rows = new Map<string, SavedService>(state.services.map((s) => [s.id, s]));
    const backendsOf = new Map<string, SavedBackend[]>();
    for (const b of state.backends) {
      let list = backendsOf.get(b.service);
      if (list === undefined) backendsOf.set(b.service, (list = []));
      list.push(b);
    }
    const wanted = [...new Set(ids)];
    return this.#exclusive(async () => {
      let changed = 0;
      for (const id of wanted) {
        const tx = new Tx();
        try {
          if (!(await syncService(this.#desired, this.#edits, tx, id, rows.get(id) ?? null, backendsOf.get(id) ?? [], this.#onRemoteDrain))) continue;
        } catch (error) {
          await this.#tx.rollback(tx);
          this.#log.error(`cannot apply the shared state of service ${q(id)}: ${message(error)}`);
          continue;
        }
        try {
          await this.#tx.write(tx);
        } catch (error) {
          this.#log.error(`cannot apply the shared state of service ${q(id)} to IPVS: ${message(error)}`);
          continue;
        }
        await this.#tx.effects(tx);
        changed++;
      }
      onApplied?.();
      if (changed > 0) this.#drains.kick(); // another node may have started a drain
      return changed;
    }, false);
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
      if (options.dryRun !== true) await this.#tx.checkStore();
      const wanted = await resolveDeclared(declared, resolver, this.#defaultAddress, this.#vipInterface);
      const services = await this.#kernel(() => this.#driver.listServices());
      const foreign = services.map((s) => s.key).filter((k) => !this.#desired.hasKeyId(serviceKeyId(k)) && !isProbeKey(this.#probes.range, k));
      const plan = planApply(this.managedServices(), wanted, foreign);
      if (options.dryRun === true) return dryRunReport(plan);
      const report = await runApplyPlan({ desired: this.#desired, edits: this.#edits, queries: this.#queries, transactions: this.#tx }, plan, resolver);
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

  // ---- the kernel ---------------------------------------------------------------------------------------

  /** Run repairs in one batch; log, count and publish each one. */
  async #repair(operations: readonly Operation[]): Promise<RepairReport[]> {
    const results = await this.#writer.run(operations);
    this.#tx.weightEvents(results.filter((r) => r.operation.service !== PROBE_SERVICE_ID));
    // The probe services are gorb's own (checks through the VIP): logged at debug, never reported or published.
    for (const r of results) {
      if (r.operation.service !== PROBE_SERVICE_ID) continue;
      if (r.error === null) this.#log.debug(`reconcile: probe service: ${r.operation.reason}; repaired`);
      else this.#log.error(`reconcile: probe service: ${r.operation.reason}; cannot repair: ${r.error.message}`);
    }
    const reports = results.filter((r) => r.operation.service !== PROBE_SERVICE_ID).map((r): RepairReport => {
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
    // A check that changes nothing (see isQuietUpdate) costs nothing beyond the check itself.
    if (!this.#pendingHealthIds.has(update.id) && isQuietUpdate(this.#desired, this.#writer.view, update, this.#policy)) return;
    this.#pendingHealthIds.add(update.id);
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
    this.#pendingHealthIds.clear();
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
    const now = this.#failover.now();
    for (const t of step.transitions) if (t.from.state === "down" && t.to.state === "up") this.#failover.slowStart.start(t.service, t.backend, now);
    const quorumChanges: QuorumChange[] = [];
    const wanted = [...step.touched].map(([service, ids]) => {
      const change = evaluateQuorum(service);
      if (change === null) return this.#desired.wanted(service, ids);
      quorumChanges.push(change);
      return this.#desired.wanted(service); // the sorry server and every weight change together
    });
    const results = await this.#writer.run(planOperations(wanted, this.#writer.view));
    this.#tx.weightEvents(results);
    for (const change of quorumChanges) this.#failover.quorumChanged(change);
    for (const r of results) {
      if (r.error === null) continue;
      const op = r.operation.op;
      const weight = "destination" in op && "weight" in op.destination ? op.destination.weight : "?";
      this.#log.error(
        `cannot set the weight of backend ${q(r.operation.backend ?? "")} of service ${q(r.operation.service)} to ${weight}: ${String(r.error)}`,
      );
    }
  }


  // ---- checks through the VIP -----------------------------------------------------------------------------

  /** The set of backends checked through the VIP changed: write their probe services (one job for many changes). */
  #queueProbeSync(): void {
    if (this.#probeSyncQueued) return;
    this.#probeSyncQueued = true;
    this.#queue.push({
      group: false,
      section: () => this.#syncProbes(),
      resolve: () => undefined,
      reject: (error) => this.#log.error(`writing the probe services failed: ${message(error)}`),
    });
  }

  async #syncProbes(): Promise<void> {
    this.#probeSyncQueued = false;
    if (this.#closed) return;
    const wanted = wantedProbeServices(this.#probes.routes(), this.#writer.view, this.#probes.range);
    const results = await this.#writer.run(planOperations(wanted, this.#writer.view));
    for (const r of results) {
      if (r.error !== null) this.#log.error(`probe service: ${r.operation.reason}: ${r.error.message}`);
      else this.#log.debug(`probe service: ${r.operation.reason}; done`);
    }
  }
}
