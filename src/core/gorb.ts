/**
 * Gorb is the core facade: a lock (./work-queue.ts) and the orchestration of small single-purpose modules.
 *
 *   desired state   ./desired-state.ts   services, backends, owners, with indexes; health facts and weights
 *   edits           ./edits.ts           the changes requests and applies are made of, each undoable (./tx.ts)
 *   reconciler      ./reconcile.ts       pure: desired + observed -> IPVS operations, with reasons
 *   executor        ./kernel-writer.ts   the only code that writes IPVS: one driver batch per plan
 *   health          ./health-weights.ts  health updates -> desired effective weights (panic threshold);
 *                   ./health-runner.ts   updates queued and written as one batch per turn of the lock
 *   failover        ./failover.ts        quorum state and sorry server (pure); ./slow-start.ts ramps;
 *                   ./failover-runner.ts events, hooks and the ramp timer
 *   VIPs            ./vip-ledger.ts      addresses gorb put on the VIP interface
 *   kernel ledger   ./kernel-ledger.ts   a fleet node's record of what it put in its kernel (restore removes
 *                                        what it created and the shared state no longer has)
 *   durable state   ./changes.ts         rows changed -> one store commit per group of requests
 *   reads           ./queries.ts         what GET returns
 *   restore         ./restore.ts (pure), ./restore-runner.ts; reconcile repairs: ./repairs.ts
 *   apply           ./plan.ts (pure), ./apply.ts, ./apply-runner.ts
 *   fleet           ./remote.ts          another node's rows -> the same edits as a request
 *   probes          ./probe-checks.ts, ./probe-sync.ts  checks through the VIP and their probe services
 *   drains          ./drains.ts          drains with a deadline; maintenance and drains override health (./drain.ts)
 *
 * Rules it keeps:
 *   - Every change runs under the lock, in call order. Requests queued together run as one group and share
 *     one commit to the store (group commit); each one is written to the kernel as one batch of its own, so a
 *     failed request never disturbs the others. A group whose commit a shared store refuses for some of its
 *     requests (a 409, a 413) runs again in halves, so the others are not refused with them.
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
import { Exposure } from "./exposure.ts";
import { DEFAULT_WEIGHT_POLICY, type WeightPolicy } from "../health/weight.ts";
import { describeService } from "../ipvs/address.ts";
import { serviceKeyId } from "./keys.ts";
import type { IpvsDriver } from "../ipvs/driver.ts";
import type { ServiceKey } from "../ipvs/types.ts";
import type { ApplyReport } from "./apply.ts";
import { type BackendRecord, DesiredState, type ServiceRecord } from "./desired-state.ts";
import { Edits } from "./edits.ts";
import { ConflictError, UnavailableError, fromIpvsError, errorMessage } from "./errors.ts";
import { EventBus } from "./events.ts";
import { drainEvent, drainFields } from "./drain-targets.ts";
import { drainRequestOf, type DrainView } from "./drain.ts";
import { Drains } from "./drains.ts";
import type { HealthChecks } from "./health.ts";
import { checkId } from "./ids.ts";
import { KernelWriter } from "./kernel-writer.ts";
import { KernelLedger } from "./kernel-ledger.ts";
import type { Logger } from "../log.ts";
import { Pacer } from "../pacer.ts";
import { silentLogger } from "../log.ts";
import {
  backendFields,
  backendPatchFields,
  checkForwardedPort,
  checkSorryPort,
  normalizeBackendFields,
  normalizeServiceFields,
  serviceFields,
  servicePatchFields,
} from "./normalize.ts";
import type { DeclaredService, ManagedService } from "./plan.ts";
import { Queries } from "./queries.ts";
import { planOperationsPaced } from "./reconcile.ts";
import { ProbeChecks } from "./probe-checks.ts";
import { DEFAULT_PROBE_MARKS } from "./mark-range.ts";
import { isProbeKey, wantedProbeServices } from "./probe-services.ts";
import { DEFAULT_RESOLVE_TIMEOUT_MS, dnsResolver, namesOf, prefetchHosts, withTimeout, type HostResolver } from "./resolve.ts";
import { type RemoteDrainListener, applyRemoteRows } from "./remote.ts";
import { Transactions } from "./transactions.ts";
import { applyDeclared, managedServicesOf } from "./apply-runner.ts";
import type { UnknownDestinationMode } from "./unknown-destinations.ts";
import type { SavedState, Source, StateStore } from "./state.ts";
import { Tx } from "./tx.ts";
import { NoVipManager } from "./vip.ts";
import { VipLedger } from "./vip-ledger.ts";
import { type BackendInfo, type ServiceDetail, type ServiceInfo, type ServiceStatusView, backendOptionsView, serviceOptionsView } from "./views.ts";
import { checkIfMatch } from "./etag.ts";
import { WorkQueue, type QueuedJob, type ScheduleJob } from "./work-queue.ts";
import { DEFAULTS } from "../contract/fields.ts";
import { systemClock } from "../health/clock.ts";
import type { GorbOptions } from "./gorb-options.ts";
import { FailoverRunner } from "./failover-runner.ts";
import { HealthRunner } from "./health-runner.ts";
import { ProbeSync } from "./probe-sync.ts";
import { type ReconcileCounters, type ReconcileReport, type RepairReport, Repairs } from "./repairs.ts";
import { type RestoreReport, runRestore } from "./restore-runner.ts";

/** What adopt() found or did at start-up. */
export interface AdoptReport {
  /** True when the whole IPVS table was flushed. */
  readonly flushed: boolean;
  /** Services in the kernel that gorb does not manage (left alone), e.g. "tcp 10.0.0.1:80 (2 destinations)". */
  readonly foreign: readonly string[];
}


interface Job extends QueuedJob {
  readonly section: (tx: Tx) => Promise<unknown>;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

const q = JSON.stringify;

/** A write's precondition: the request's If-Match header, when it has one (./etag.ts). */
export interface Precondition {
  readonly ifMatch?: string | null;
}

/**
 * Refuses the write (412) unless the service's options still have the tag `options.ifMatch` asks for. Without the
 * header nothing is built: most writes carry none.
 */
function checkServiceMatch(options: Precondition, service: ServiceRecord): void {
  if (options.ifMatch === undefined || options.ifMatch === null) return;
  checkIfMatch(options.ifMatch, serviceOptionsView(service.spec, service.config), `service ${q(service.id)}`);
}

/** As checkServiceMatch, for a backend. */
function checkBackendMatch(options: Precondition, serviceId: string, backend: BackendRecord): void {
  if (options.ifMatch === undefined || options.ifMatch === null) return;
  checkIfMatch(options.ifMatch, backendOptionsView(backend.spec, serviceId, backend.address.address), `backend ${q(backend.id)} of service ${q(serviceId)}`);
}

/** The items of `parts`, one part after the other, each item taken when it is reached (a lazy part stays lazy). */
function* concat<T>(...parts: Iterable<T>[]): Generator<T> {
  for (const part of parts) yield* part;
}

/** The core facade; see the module comment. */
export class Gorb {
  readonly #driver: IpvsDriver;
  readonly #checks: HealthChecks;
  readonly #probes: ProbeChecks;
  readonly #policy: WeightPolicy;
  readonly #vips: VipLedger;
  readonly #ledger: KernelLedger | null;
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
  readonly #health: HealthRunner;
  readonly #probeSync: ProbeSync;
  readonly #repairs: Repairs;
  readonly #exposure: Exposure;
  #closed = false;
  readonly #failover: FailoverRunner;
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
    this.#ledger = options.ledger !== undefined ? new KernelLedger(options.ledger, this.#log) : null;
    this.#vips = new VipLedger(options.vip ?? new NoVipManager(), this.#log, this.#ledger);
    const schedule: ScheduleJob = (section, what) =>
      this.#queue.push({ group: false, section, resolve: () => undefined, reject: (error) => this.#log.error(`${what} failed: ${errorMessage(error)}`) });
    const closed = () => this.#closed;
    this.#writer = new KernelWriter(this.#driver, (id) => this.#exposure.added(id), this.#ledger);
    this.#probeSync = new ProbeSync({ probes: () => this.#probes, writer: this.#writer, log: this.#log, schedule, closed });
    this.#probes = new ProbeChecks(
      options.health(
        (update) => this.#health.onUpdate(update),
        (id, message) => this.#health.onCheckError(id, message),
      ),
      this.#desired,
      options.probeMarks ?? DEFAULT_PROBE_MARKS,
      this.#probeSync.queue,
      (watchId) => this.#log.error(`no mark left in the --probe-marks range for ${watchId}: it is checked directly, not through the VIP`),
    );
    this.#checks = this.#probes;
    const clock = options.clock ?? systemClock;
    this.#failover = new FailoverRunner({
      clock,
      hooks: options.hooks ?? null,
      log: this.#log,
      events: this.#events,
      desired: this.#desired,
      writer: this.#writer,
      transactions: () => this.#tx,
      schedule,
    });
    const health = { desired: this.#desired, writer: this.#writer, events: this.#events, log: this.#log, transactions: () => this.#tx };
    this.#health = new HealthRunner({ ...health, policy: this.#policy, failover: this.#failover, schedule, closed });
    this.#repairs = new Repairs(health);
    this.#exposure = new Exposure({ desired: this.#desired, writer: this.#writer, vips: this.#vips, discovery: this.#discovery });
    this.#edits = new Edits({
      desired: this.#desired,
      vips: this.#vips,
      checks: this.#checks,
      exposure: this.#exposure,
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
    this.#queries = new Queries({
      desired: this.#desired,
      writer: this.#writer,
      checks: this.#checks,
      driver: this.#driver,
      log: this.#log,
      inKernel: this.#exposure.inKernel,
      drainOthers: (service, backend, drain) => this.#drains.othersRead(service, backend, drain),
      now,
    });
    this.#tx = new Transactions({
      desired: this.#desired,
      writer: this.#writer,
      store: this.#store,
      vips: this.#vips,
      events: this.#events,
      log: this.#log,
      onQuorum: (change) => this.#failover.quorumChanged(change),
      policy: this.#policy,
      exposeEntered: () => this.#exposure.exposeEntered(),
    });
    const core = { desired: this.#desired, edits: this.#edits, queries: this.#queries, transactions: this.#tx, events: this.#events };
    const timing = { now, monotonic: () => clock.now(), nodeId: options.nodeId ?? null, peers: options.drainPeers ?? null, pollMs: options.drainPollMs ?? 1000 };
    this.#drains = new Drains({ ...core, ...timing, driver: this.#driver, log: this.#log, mutation: (section) => this.#mutation(section) });
    // After every job: a held service its writes put in the kernel and no change's effects exposed (a health change,
    // a rollback) is exposed before the next job (./exposure.ts).
    const after = () => {
      this.#failover.arm();
      return this.#exposure.exposeEntered();
    };
    this.#queue = new WorkQueue<Job>(
      (job) => this.#runOne(job).finally(after),
      (jobs) => {
        if (!this.#closed) return this.#tx.runGroup(jobs).finally(after);
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
    // Refuse bad input before waiting for the lock; the rules of new objects (checkSorryPort, checkForwardedPort)
    // are checked here and where an apply's set is read, not for another node's rows (./remote.ts), as at restore.
    checkSorryPort(normalizeServiceFields(fields));
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
  async updateService(id: string, body: unknown, options: Precondition = {}): Promise<void> {
    checkId("service", id);
    const patch = servicePatchFields(body);
    return this.#withHosts([patch.get("host")], async (tx, resolver) => {
      const service = this.#queries.service(id);
      checkServiceMatch(options, service);
      await this.#edits.updateService(tx, service, patch, resolver);
      await this.#tx.write(tx);
    });
  }

  /** DELETE /service/:service — remove a service and its backends. */
  async deleteService(id: string, options: Precondition = {}): Promise<void> {
    checkId("service", id);
    return this.#mutation(async (tx) => {
      const service = this.#queries.service(id);
      checkServiceMatch(options, service);
      this.#edits.deleteService(tx, service);
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

  /**
   * GET /service?detail=true — every service with its backends, health and counters, from one table read.
   * `counters: false` (the BGP controller, which needs only health and weights) leaves the kernel unread.
   */
  listServicesDetail(options: { readonly counters?: boolean } = {}): Promise<ServiceDetail[]> {
    return this.#queries.listServicesDetail(options);
  }

  /** GET /service as text (`gorb status`): only what the status table shows, from one table read. */
  listServicesStatus(): Promise<ServiceStatusView[]> {
    return this.#queries.listServicesStatus();
  }

  /** The same in two steps, the kernel's counters coming in after the views (see Queries.readServicesStatus). */
  readServicesStatus(): Promise<{ readonly views: readonly ServiceStatusView[]; readonly counters: Promise<void> }> {
    return this.#queries.readServicesStatus();
  }

  // ---- backends -----------------------------------------------------------------------------------------

  /** PUT /service/:service/:backend — add a backend and start its health checks. `source`: see createService. */
  async createBackend(serviceId: string, backendId: string, body: unknown, options: { readonly source?: Source } = {}): Promise<void> {
    checkId("service", serviceId);
    checkId("backend", backendId);
    const fields = backendFields(body);
    return this.#withHosts([fields.get("host")], async (tx, resolver) => {
      const service = this.#queries.service(serviceId);
      checkForwardedPort(normalizeBackendFields(fields, service.spec), service.spec);
      await this.#edits.createBackend(tx, service, backendId, fields, options.source ?? "api", resolver);
      await this.#tx.write(tx);
    });
  }

  /**
   * PATCH /service/:service/:backend — change weight, method, thresholds, tunnel or pulse in place. Fields the
   * body leaves out keep their values (an omitted weight does not drain); null resets one to its default.
   * Moving the backend (host, port) is refused. A new pulse restarts the health checks from "unknown".
   */
  async updateBackend(serviceId: string, backendId: string, body: unknown, options: Precondition = {}): Promise<void> {
    checkId("service", serviceId);
    checkId("backend", backendId);
    const patch = backendPatchFields(body);
    return this.#withHosts([patch.get("host")], async (tx, resolver) => {
      const service = this.#queries.service(serviceId);
      const backend = this.#queries.backend(service, backendId);
      checkBackendMatch(options, service.id, backend);
      await this.#edits.updateBackend(tx, service, backend, patch, resolver);
      await this.#tx.write(tx);
    });
  }

  /** DELETE /service/:service/:backend — remove a backend and stop its health checks. */
  async deleteBackend(serviceId: string, backendId: string, options: Precondition = {}): Promise<void> {
    checkId("service", serviceId);
    checkId("backend", backendId);
    return this.#mutation(async (tx) => {
      const service = this.#queries.service(serviceId);
      const backend = this.#queries.backend(service, backendId);
      checkBackendMatch(options, service.id, backend);
      this.#edits.deleteBackend(tx, service, backend);
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

  /**
   * Publish every drain's connection counts again (a `backend.drain` `progress` event each) at the drain watch's
   * next look, changed or not: for a follower that starts after the first look, such as a fleet node's membership
   * record (the node that started a drain waits for every node's counts).
   */
  announceDrainCounts(): void {
    this.#drains.announce();
  }

  /**
   * "service/backend" of every backend whose drain waits for its connections: the drains whose counts a fleet
   * node's membership record publishes (one another node ended, held with then = keep, sends no event here).
   */
  drainingBackends(): Set<string> {
    return this.#drains.waiting();
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
      return runRestore(
        {
          driver: this.#driver,
          desired: this.#desired,
          edits: this.#edits,
          writer: this.#writer,
          vips: this.#vips,
          ledger: this.#ledger,
          checks: this.#checks,
          probeMarks: this.#probes.range,
          exposure: this.#exposure,
          failover: this.#failover,
          repairs: this.#repairs,
          transactions: this.#tx,
          drains: this.#drains,
          store: this.#store,
          log: this.#log,
          kernel: (call) => this.#kernel(call),
        },
        state,
        mode,
      );
    });
  }

  /**
   * Compare the kernel with what gorb manages and repair every difference in place (a service deleted or
   * changed behind gorb's back comes back as gorb knows it). Services gorb does not manage are not looked at.
   * Every pass over the services (gorb's view of the kernel, the plan, the repairs, the VIPs) takes a turn of the
   * event loop whenever one Pacer says so: with 20,000 services they were one block of 50-150 ms every 30 s.
   */
  reconcile(): Promise<ReconcileReport> {
    return this.#exclusive(async () => {
      const pacer = new Pacer();
      // Read, plan, write; once more when the table changed between the read and the write (ipvsadm -C meanwhile).
      const repairs: RepairReport[] = [];
      for (let readAgain = true; ; readAgain = false) {
        const table = await this.#kernel(() => this.#driver.snapshot());
        await this.#writer.replace(table, (id, key) => this.#desired.hasKeyId(id) || isProbeKey(this.#probes.range, key), pacer);
        const probes = wantedProbeServices(this.#probes.routes(), this.#writer.view, this.#probes.range);
        const operations = await planOperationsPaced(concat(this.#desired.wantedEach(), probes), this.#writer.view, pacer);
        const run = await this.#repairs.run(operations, { readAgain, pacer });
        repairs.push(...run.reports);
        if (!run.raced) break;
      }
      this.#repairs.countVips(await this.#exposure.sync(pacer));
      return { repairs };
    });
  }

  /** A drain another node started or cancelled, announced on this node's log and event stream too. */
  readonly #onRemoteDrain: RemoteDrainListener = (service, backend, drain, phase) => {
    this.#log.info(`backend ${q(backend)} of service ${q(service)}: drain ${phase} on node ${q(drain.node ?? "")}`);
    this.#events.publish("backend.drain", drainEvent(service, backend, drain, phase, null));
  };

  /**
   * A shared store's change (another node's write, or a relist): make the services named in `ids` match the rows
   * of `state` (a service without a row is deleted), both given by `read` once the lock is held (so they include
   * every change this node committed before), through the same edits, reconciler and kernel writer as a
   * request, without writing to the store (the rows came from it). Each service is one change of its own: one
   * that fails (a conflict with a local service, a kernel error) is undone and logged, the others stay.
   * `onApplied` runs under the lock once every service was handled, before any later request, with the ids of
   * the services that failed. Returns how many services changed, and the ids of those that failed (the caller
   * tries them again with a later change).
   */
  applyRemote(
    read: () => { readonly state: SavedState; readonly ids: Iterable<string> },
    onApplied?: (failed: ReadonlySet<string>) => void,
  ): Promise<{ readonly changed: number; readonly failed: readonly string[] }> {
    const parts = { desired: this.#desired, edits: this.#edits, transactions: this.#tx, log: this.#log, onDrain: this.#onRemoteDrain };
    return this.#exclusive(async () => {
      // Read under the lock: a change this node made meanwhile is in the rows.
      const { state, ids } = read();
      const result = await applyRemoteRows(parts, state, [...new Set(ids)]);
      onApplied?.(new Set(result.failed));
      if (result.changed > 0) this.#drains.kick(); // another node may have started a drain
      return result;
    }, false);
  }

  /** Totals of every reconcile since start (restore included). */
  reconcileCounters(): ReconcileCounters {
    return this.#repairs.counters;
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
    const parts = {
      desired: this.#desired,
      edits: this.#edits,
      queries: this.#queries,
      transactions: this.#tx,
      log: this.#log,
      defaultAddress: this.#defaultAddress,
      vipInterface: this.#vipInterface,
      kernelServices: async () => (await this.#kernel(() => this.#driver.listServices())).map((s) => s.key),
      isOwn: (key: ServiceKey) => isProbeKey(this.#probes.range, key),
    };
    return this.#exclusive(() => applyDeclared(parts, declared, resolver, options.dryRun === true));
  }

  /** Every service gorb manages, with its owner and request fields, for planning an apply. */
  managedServices(): ManagedService[] {
    return managedServicesOf(this.#desired);
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

  /** Run a driver call, turning its failure into a GorbError. */
  async #kernel<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw fromIpvsError(error);
    }
  }
}
