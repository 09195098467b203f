/**
 * The daemon's composition root: the only place that builds the real stack (kernel IPVS driver, rtnetlink
 * VIPs, health monitor, Consul, durable state, core, REST API) from DaemonOptions, and the only place that
 * handles signals.
 *
 * Start-up, first the checks, which change nothing in the kernel: open and lock the state directory, check IPVS
 * (resolve its family and read its version: a clear error when the kernel has none or gorb is not root), read the
 * saved state and -i's first address, bind the API address. A check that fails (a taken or forbidden port, a
 * second gorb) stops the start with the kernel as it was. Then, every request answered 503 UNAVAILABLE ("gorb is starting: ...", Retry-After)
 * meanwhile: set the IPVS sysctls, flush the kernel table (-f), restore the saved services (the kernel is made to
 * match them without touching what already matches; destinations the state does not know are handled as
 * --unknown-destinations says: reported and left by default), report the services gorb does not manage, apply
 * the configuration file's services (a set refused on a lookup that may pass is retried in the background:
 * ./declared-apply.ts), start BGP; then serve and reconcile every --reconcile-interval.
 * SIGINT and SIGTERM end a start still in progress at once (their default); SIGHUP waits for its end.
 * With --store etcd://, the saved state is the shared one: read as a snapshot (retried while etcd cannot be
 * reached; the kernel table is left as it is meanwhile), restored the same way, then followed with a watch
 * (other nodes' writes applied through Gorb.applyRemote); the node registers in the fleet once it serves. The
 * state directory then holds the node's kernel ledger (fleet-ledger.db, opened and locked where state.db would
 * be; none with --no-state), so restore removes what this node created and another deleted while it was down.
 * SIGHUP: re-read the configuration file; a file with an error is refused whole (logged with its location)
 * and nothing changes; otherwise its services are applied (changes in place where IPVS allows). Settings other
 * than `services` take effect at the next start.
 * Shutdown (SIGINT/SIGTERM): stop accepting requests (those in flight get STOP_DEADLINE_MS, then their
 * connections are closed), stop health checks, close the state, leave the kernel table and the Consul
 * registrations as they are (traffic keeps flowing and Consul DNS keeps answering while gorb restarts), exit 0.
 * With --bgp-bird-socket, the VIP controller (src/bgp/) announces healthy VIPs through BIRD; at shutdown it
 * withdraws them first (unless --bgp-keep-on-exit), so routers stop sending traffic before gorb goes.
 */
import { quorumHookRunner } from "./hooks.ts";
import { DEFAULTS } from "../contract/fields.ts";
import { hostname } from "node:os";
import type { ConsolaInstance } from "consola";
import { createApp } from "../api/app.ts";
import { BirdAnnouncer } from "../bgp/bird-announcer.ts";
import { VipController, describeStop, servicesSource } from "../bgp/controller.ts";
import { systemClock } from "../health/clock.ts";
import type { ConnCounts, DrainState } from "../core/drain.ts";
import { EventBus } from "../core/events.ts";
import { Gorb } from "../core/gorb.ts";
import type { SavedState, StateStore } from "../core/state.ts";
import type { VipManager } from "../core/vip.ts";
import { ConsulDiscovery } from "../discovery/consul.ts";
import type { Discovery } from "../discovery/discovery.ts";
import { NoDiscovery } from "../discovery/none.ts";
import { HealthMonitor } from "../health/monitor.ts";
import { KernelIpvsDriver } from "../ipvs/kernel-driver.ts";
import type { IpvsDriver } from "../ipvs/driver.ts";
import type { IpvsInfo } from "../ipvs/types.ts";
import { InterfaceAddresses } from "../netif/interface-addresses.ts";
import { SqliteStateStore } from "../state/sqlite-store.ts";
import { SqliteLedgerStore } from "../state/ledger-store.ts";
import type { EtcdStateStore } from "../store/etcd-store.ts";
import type { EtcdClient } from "../store/etcd-client.ts";
import { openSharedStore } from "./shared-store.ts";
import { Membership, drainPeerReader, listMembers } from "../store/membership.ts";
import type { ClusterApi } from "../api/cluster.ts";
import { type SysctlReport, applyIpvsSysctls } from "./ipvs-sysctls.ts";
import { VERSION } from "../version.ts";
import { type ApiServer, startApiServer } from "./api-server.ts";
import { type DaemonOptions, isLoopbackListen } from "../config/daemon-options.ts";
import { InterfaceVipManager } from "./vip-manager.ts";
import { precompileBodyChecks } from "../core/normalize.ts";
import { startupWarnings } from "./startup-warnings.ts";
import { reloadConfig } from "./reload.ts";
import { DeclaredApplier } from "./declared-apply.ts";
import { errorMessage } from "../core/errors.ts";

/** The IPVS driver the daemon runs on: the kernel's tells when ip_vs was reloaded. */
export type DaemonDriver = IpvsDriver & Pick<KernelIpvsDriver, "onFamilyChange">;

/** Where the daemon's signals arrive (the process). */
interface SignalSource {
  on(signal: "SIGHUP" | "SIGINT" | "SIGTERM", listener: () => void): unknown;
}

/** What runDaemon takes from the host; tests give a fake driver, a sysctl recorder and their own signals. */
export interface DaemonHost {
  /** The IPVS driver; the kernel's resolves the generic-netlink family (ip_vs loaded if need be) and changes nothing. */
  openDriver(): DaemonDriver;
  /** Set gorb's IPVS sysctls (when `set`) and read them back (./ipvs-sysctls.ts). */
  applySysctls(set: boolean): SysctlReport;
  readonly signals: SignalSource;
}

/** The real host: the kernel's IPVS, /proc/sys and the process's signals. */
const KERNEL_HOST: DaemonHost = {
  // The daemon reads big dump series (`gorb status`, reconcile) on a thread of their own, so it keeps answering.
  openDriver: () => new KernelIpvsDriver({ dumpThread: true }),
  applySysctls: (set) => applyIpvsSysctls(set),
  signals: process,
};

/** runDaemon runs gorb's daemon until SIGINT or SIGTERM. */
export async function runDaemon(options: DaemonOptions, log: ConsolaInstance, host: DaemonHost = KERNEL_HOST): Promise<void> {
  log.info(`starting gorb ${VERSION}`);
  // SIGHUP would end the process by default: hold it until the daemon is up, then re-read the file.
  let hupEarly = false;
  let onHup = () => {
    hupEarly = true;
  };
  host.signals.on("SIGHUP", () => onHup());
  // The state directory is opened (checked, locked) before IPVS is touched: one gorb cannot use stops the start
  // before the sysctls are set, and a second daemon on the same directory stops there too.
  const store = options.sharedStore === null && options.stateDir !== null ? SqliteStateStore.open(options.stateDir) : null;
  // A fleet node keeps its kernel ledger there instead: what it put in its kernel from the shared state.
  const ledger = options.sharedStore !== null && options.stateDir !== null ? SqliteLedgerStore.open(options.stateDir, options.sharedStore.prefix) : null;
  const { driver, info } = await openIpvs(host, () => {
    store?.close();
    ledger?.close();
  });
  log.info(`IPVS ${info.version}, connection table size ${info.connTableSize}`);

  // Until the API is bound, nothing changes the kernel: a check that fails (the saved state, -i, a file of --store,
  // the listen address, the TLS files) stops the start with the kernel as it was.
  const addresses = new InterfaceAddresses();
  let shared: EtcdStateStore | null = null;
  const closeOpened = async () => {
    await shared?.close();
    store?.close();
    ledger?.close();
    driver.close();
    addresses.close();
  };
  /** What the daemon is doing while it starts (the API answers 503 saying it); null once it serves. */
  let starting: string | null = "setting the IPVS sysctls";
  let defaultAddress: string | null;
  let gorb: Gorb;
  let events: EventBus;
  let consul: ConsulDiscovery | null;
  let bgp: VipController | null;
  let api: ApiServer;
  let sysctls: SysctlReport = { values: {}, warnings: [] };
  let saved: SavedState = { services: [], backends: [] };
  let monitor: HealthMonitor | null = null;
  const nodeName = options.nodeId ?? hostname();
  try {
    if (store !== null) {
      saved = store.load();
      log.info(`state: ${store.location} (${saved.services.length} service(s), ${saved.backends.length} backend(s) saved)`);
    } else if (options.sharedStore === null) {
      log.warn("--no-state: nothing is kept on disk; the services are lost when gorb stops");
    } else if (ledger === null) {
      log.warn("--no-state: no kernel ledger; at start-up, what another node deleted while this one was down is reported, not removed");
    }
    if (ledger !== null) log.info(`kernel ledger: ${ledger.location}`);
    if (options.sharedStore !== null) shared = openSharedStore(options.sharedStore, log.withTag("etcd"), nodeName);
    defaultAddress = await firstAddress(addresses, options.interface, log);
    const vip: VipManager | undefined = options.vipInterface !== null ? new InterfaceVipManager(addresses, options.vipInterface) : undefined;
    consul =
      options.consulUrl !== null
        ? new ConsulDiscovery({
            url: options.consulUrl,
            instance: hostname(),
            logger: log.withTag("consul"),
            ...(options.consulToken !== null ? { token: options.consulToken } : {}),
          })
        : null;
    const discovery: Discovery = consul ?? new NoDiscovery();

    // What gorb publishes (creates, changes, health, weights, repairs) and GET /events follows.
    events = new EventBus();
    // The health checks' sockets in flight are not API connections: the connection shedder leaves them out.
    gorb = new Gorb({
      driver,
      events,
      health: (onUpdate, onCheckError) =>
        (monitor = new HealthMonitor({
          onUpdate,
          onCheckError: (id, result) => onCheckError(id, result.message),
          ...(options.checkExecDirs !== null ? { execDirs: options.checkExecDirs } : {}),
        })),
      ...(vip ? { vip } : {}),
      discovery,
      defaultAddress,
      vipInterface: options.vipInterface,
      maxServices: options.maxServices,
      maxBackends: options.maxBackends,
      hookDir: options.hookDir,
      hooks: quorumHookRunner(options.hookDir, DEFAULTS.hookTimeoutMs, log.withTag("hooks")),
      probeMarks: options.probeMarks,
      logger: log.withTag("core"),
      ...(shared !== null ? { store: shared as StateStore } : store !== null ? { store } : {}),
      ...(ledger !== null ? { ledger } : {}),
      // In a fleet a drain records the node that started it: that node decides its end (src/core/drain.ts), once the
      // other live nodes' records say their connections to the backend have ended too.
      nodeId: shared !== null ? nodeName : null,
      ...(shared !== null ? { drainPeers: drainPeersOf(shared.client, shared.prefix, nodeName) } : {}),
    });
    bgp = options.bgp !== null ? vipController(options.bgp, gorb, events, log) : null;

    const app = createApp({
      gorb,
      events,
      ...(bgp !== null ? { bgp } : {}),
      logger: log.withTag("api"),
      ...(options.token !== null ? { token: options.token } : {}),
      bodyLimitBytes: options.bodyLimitBytes,
      version: VERSION,
      allow: options.allow,
      allowOrigins: options.allowOrigins,
      localOnly: isLoopbackListen(options.listen),
      maxRequests: options.maxConnections,
      ui: options.ui,
      ...(shared !== null ? { cluster: clusterOf(shared, nodeName) } : {}),
      sysctls: () => sysctls.values,
      https: options.tls !== null,
      starting: () => starting,
    });
    api = startApiServer(app, {
      listen: options.listen,
      tls: options.tls,
      maxConnections: options.maxConnections,
      otherFds: () => monitor?.stats().inFlight ?? 0,
      allow: options.allow,
      logger: log.withTag("api"),
    });
  } catch (error) {
    await closeOpened();
    throw error;
  }
  log.info(`API bound on ${api.shown}: it answers 503 until gorb has started`);

  // The file's services: a set refused on a lookup that may pass is tried again in the background (./declared-apply.ts).
  const declared = new DeclaredApplier({ apply: (services) => gorb.apply(services), clock: systemClock, log });
  try {
    // ip_vs is loaded now (the driver resolved its family), so its sysctls exist in this namespace.
    sysctls = host.applySysctls(options.ipvsSysctls);
    for (const warning of sysctls.warnings) log.warn(`${warning}: drains may not end for persistent clients, and removed backends' connections stall`);
    log.info(
      `IPVS sysctls: ${Object.entries(sysctls.values).map(([k, v]) => `${k}=${v ?? "?"}`).join(" ")}` +
        (options.ipvsSysctls ? "" : " (--no-ipvs-sysctls: left as they were)"),
    );

    if (shared !== null) {
      starting = `waiting for the shared state in ${shared.location}`;
      saved = await loadShared(shared, log);
    }

    if (options.flush) {
      starting = "flushing the IPVS table (-f)";
      await gorb.adopt(true);
      log.warn("flushed every IPVS service (-f)");
    }
    starting = `restoring ${saved.services.length} saved service(s)`;
    await restore(gorb, saved, options, log);
    // The shared state: follow every node's writes from the snapshot's revision on.
    shared?.sync(gorb);
    if (options.declared !== null) {
      const file = options.configPath ?? "the configuration file";
      starting = `applying the services of ${file}`;
      await declared.apply(options.declared, file);
    }

    for (const warning of startupWarnings(options)) log.warn(warning);

    if (bgp !== null && options.bgp !== null) {
      starting = "announcing the VIPs through BIRD";
      await bgp.start();
      log.info(`BGP: announcing healthy VIPs through BIRD (${options.bgp.socket}, ${options.bgp.include}, protocol ${options.bgp.protocol})`);
    }
  } catch (error) {
    // The kernel keeps what was done (as at any stop); what gorb opened is closed.
    await declared.stop();
    await api.stop(0);
    await gorb.close();
    await closeOpened();
    throw error;
  }
  starting = null;

  const port = api.port;
  log.success(`gorb is listening on ${api.shown}${api.protocol === "https" ? " (HTTPS)" : ""}`);
  if (options.ui) log.info(`web UI: ${api.protocol}://<this host>:${port}/ui (--no-ui turns it off)`);
  // Once listening: the body checks a declared set and a PATCH go through are compiled before the first one comes.
  void precompileBodyChecks();
  let membership: Membership | null = null;
  if (shared !== null) {
    const store = shared;
    membership = new Membership({
      client: store.client,
      prefix: store.prefix,
      node: nodeName,
      address: api.shown,
      version: VERSION,
      events,
      status: () => store.status(),
      onStale: (reason) => store.resync(reason),
      draining: () => gorb.drainingBackends(),
      health: async () =>
        (await gorb.listServicesDetail({ counters: false })).flatMap((s) => s.backend_details.map((b) => [`${s.id}/${b.id}`, b.metrics.state] as const)),
      logger: log.withTag("fleet"),
    });
    await membership.start();
    // The drains restored with the state were looked at before the membership followed the events: their counts
    // are published again for its record, which the node that started each drain waits for.
    gorb.announceDrainCounts();
    log.info(`node ${nodeName} joined the fleet in ${store.location}`);
  }

  if (consul !== null) {
    // Registrations outlive a restart (nothing is deregistered at shutdown): drop only this instance's
    // registrations of services gorb no longer has (deleted while it was down).
    void consul.prune(gorb.listServices());
    if (defaultAddress !== null && port !== 0) consul.exposeSelf({ address: defaultAddress, port });
  }

  let reconciling = false;
  let reconcileAgain = false;
  /** `again`: when one is running, run once more after it (its table read may predate the change). */
  const reconcile = async (again = false) => {
    if (reconciling) {
      if (again) reconcileAgain = true;
      return;
    }
    reconciling = true;
    try {
      do {
        reconcileAgain = false;
        await gorb.reconcile();
      } while (reconcileAgain);
    } catch (error) {
      log.error(`reconcile failed: ${errorMessage(error)}`);
    } finally {
      reconciling = false;
    }
  };
  // The ip_vs module was reloaded (a new family id, an empty table): put gorb's services back now.
  driver.onFamilyChange(() => {
    log.warn("the IPVS generic-netlink family changed (ip_vs module reloaded); reconciling");
    void reconcile(true);
  });
  const timer = options.reconcileIntervalMs > 0 ? setInterval(() => void reconcile(), options.reconcileIntervalMs) : null;

  let reloading: Promise<void> = Promise.resolve();
  const reload = async () => {
    if (options.configPath === null) {
      log.warn("SIGHUP: gorb was started without --config; nothing to re-read");
      return;
    }
    await reloadConfig(options.configPath, log, (services, file) => declared.apply(services, file), options.configSettings);
  };

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info(`${signal}: stopping (the IPVS table is left as it is)`);
      const retryEnded = declared.stop();
      void (async () => {
        if (timer !== null) clearInterval(timer);
        if (bgp !== null) {
          const keep = options.bgp?.keepOnExit === true;
          const result = await bgp.stop({ keep }).catch((error: unknown) => {
            log.error(`BGP: ${errorMessage(error)}`);
            return null;
          });
          const report = describeStop(keep, result);
          log[report.level](report.text);
        }
        events.close(); // ends the GET /events streams, which the graceful stop would otherwise wait for
        const outcome = await api.stop();
        if (outcome === "forced") log.warn("requests still in flight at the stop deadline were cut off");
        await reloading;
        await retryEnded;
        await membership?.stop();
        await shared?.close();
        await gorb.close();
        store?.close();
        ledger?.close();
        driver.close();
        addresses.close();
        resolve();
      })();
    };
    host.signals.on("SIGINT", () => stop("SIGINT"));
    host.signals.on("SIGTERM", () => stop("SIGTERM"));
    onHup = () => {
      if (stopping) return;
      // The file is read again: a retry of the set read before ends (the set now read is applied in its turn).
      declared.cancel("SIGHUP: the file is read again");
      reloading = reloading.then(reload, reload);
    };
    if (hupEarly) onHup();
  });
  log.info("gorb stopped");
}

/**
 * Open IPVS and read its version: the check that the kernel has IPVS and lets gorb use it (root), which reads and
 * changes nothing. When it fails, `opened` is closed (the state directory) and the error thrown.
 */
async function openIpvs(host: DaemonHost, opened: () => void): Promise<{ driver: DaemonDriver; info: IpvsInfo }> {
  let driver: DaemonDriver | null = null;
  try {
    driver = host.openDriver();
    return { driver, info: await driver.info() };
  } catch (error) {
    driver?.close();
    opened();
    throw error;
  }
}

/** The first address of -i's interface (services without a host bind to it), or null without -i. */
async function firstAddress(addresses: InterfaceAddresses, name: string | null, log: ConsolaInstance): Promise<string | null> {
  if (name === null) return null;
  const first = (await addresses.list(name))[0];
  if (!first) throw new Error(`interface ${name} has no address to use as the default service host (-i)`);
  log.info(`services without a host bind to ${first.address} (first address of ${name})`);
  return first.address;
}

/** A fleet node's GorbOptions.drainPeers: the other live nodes' counts, from their membership records in etcd. */
function drainPeersOf(client: EtcdClient, prefix: string, node: string): (service: string, backend: string, drain: DrainState) => Promise<ConnCounts | null> {
  const peers = drainPeerReader(client, prefix, node);
  return (service, backend, drain) => peers(service, backend, new Date(drain.deadline).toISOString());
}

/** The VIP controller of --bgp-bird-socket (started once the services are restored). */
function vipController(o: NonNullable<DaemonOptions["bgp"]>, gorb: Gorb, events: EventBus, log: ConsolaInstance): VipController {
  const bgpLog = log.withTag("bgp");
  return new VipController({
    announcer: new BirdAnnouncer({ socket: o.socket, include: o.include, protocol: o.protocol, clock: systemClock, log: bgpLog }),
    source: servicesSource(gorb),
    events,
    clock: systemClock,
    holdDownMs: o.holdDownMs,
    log: bgpLog,
  });
}

/**
 * Restore the saved services into the kernel and log what it did: how many were restored and repaired, the
 * destinations the state does not know, and (without -f) the services gorb does not manage.
 */
async function restore(gorb: Gorb, saved: SavedState, options: DaemonOptions, log: ConsolaInstance): Promise<void> {
  const restored = await gorb.restore(saved, { unknownDestinations: options.unknownDestinations });
  const repaired = restored.repairs.filter((r) => r.status === "done").length;
  if (saved.services.length > 0) {
    log.info(
      `restored ${restored.services} service(s), ${restored.backends} backend(s); ` +
        (restored.repairs.length === 0
          ? "the kernel table already matched"
          : `${repaired} of ${restored.repairs.length} kernel difference(s) repaired`),
    );
  }
  if (restored.unknown.length > 0) {
    const what = { report: "left serving", adopt: "adopted as API backends", remove: "removed" }[options.unknownDestinations];
    log.warn(
      `${restored.unknown.length} destination(s) of gorb's services were not in the saved state (${what}; ` +
        `--unknown-destinations ${options.unknownDestinations}): ${restored.unknown.join(", ")}`,
    );
  }
  if (!options.flush) {
    const report = await gorb.adopt(false);
    for (const foreign of report.foreign) log.warn(`leaving alone a service gorb does not manage: ${foreign}`);
  }
}

/** The snapshot to restore; while etcd cannot be reached, waits (the kernel table is left as it is). */
async function loadShared(store: EtcdStateStore, log: ConsolaInstance): Promise<SavedState> {
  for (let attempt = 1; ; attempt++) {
    try {
      const { state, revision } = await store.load();
      log.info(`state: ${store.location} at revision ${revision} (${state.services.length} service(s), ${state.backends.length} backend(s))`);
      return state;
    } catch (error) {
      if (attempt === 1 || attempt % 30 === 0) {
        log.error(`cannot read the shared state from ${store.location} (${errorMessage(error)}); retrying`);
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

/** What the fleet routes see of the shared store. */
function clusterOf(store: EtcdStateStore, node: string): ClusterApi {
  return {
    node,
    committedRevision: () => store.committedRevision,
    status: () => store.status(),
    waitApplied: (revision, timeoutMs) => store.waitServed(revision, timeoutMs),
    members: () => listMembers(store.client, store.prefix),
  };
}
