/**
 * MemoryIpvsDriver: a working IPVS table in memory with the kernel's semantics, for tests, `--dry-run` and
 * every composition that has no real kernel. It runs the same pre-send checks as the kernel driver
 * (./validate.ts), then the kernel's own checks in the order ip_vs_ctl.c makes them, with the same errno and
 * the same messages (./messages.ts). Counters stay zero: no traffic flows through memory.
 *
 * Test helpers beyond IpvsDriver: `peek()` (a synchronous snapshot), `writes()` (the successful writes in
 * order), `failNext()` (make the next call of an operation fail with a given errno) and `clearFaults()`.
 */
import { addressToBytes } from "./address.ts";
import type { ApplyResult, IpvsDriver } from "./driver.ts";
import { ERRNO, IpvsError, type ErrnoName, type IpvsOperation } from "./errors.ts";
import {
  destinationExists,
  destinationNotRoutable,
  gueWithoutPort,
  badIpv6Netmask,
  ipvsErrorFor,
  mixedFamily,
  noSuchDestination,
  noSuchService,
  serviceExists,
  thresholdsOutOfOrder,
  unknownPersistenceEngine,
  unknownScheduler,
  type IpvsErrorContext,
} from "./messages.ts";
import type {
  Destination,
  DestinationConfig,
  DestinationKey,
  Family,
  IpvsInfo,
  IpvsOp,
  Service,
  ServiceConfig,
  ServiceKey,
  ServiceWithDestinations,
  Timeouts,
} from "./types.ts";
import { NETMASK_RANGE } from "./constants.ts";
import { PERSISTENCE_ENGINES, SCHEDULERS, ZERO_STATS, isFwmarkKey } from "./types.ts";
import {
  canonicalDestinationKey,
  canonicalServiceKey,
  canonicalTunnel,
  validateDestinationConfig,
  validateDestinationKey,
  validateServiceConfig,
  validateServiceKey,
  validateTimeouts,
} from "./validate.ts";

/** Schedulers of a Debian 12 (Linux 6.1) kernel: every known one but "twos", which arrived in Linux 6.2. */
export const LINUX_6_1_SCHEDULERS: readonly string[] = Object.freeze(SCHEDULERS.filter((s) => s !== "twos"));

/** The kernel's default connection timeouts (tcp 900 s, tcpfin 120 s, udp 300 s). */
const DEFAULT_TIMEOUTS: Timeouts = Object.freeze({ tcp: 900, tcpFin: 120, udp: 300 });

/** What GET_INFO reports on a stock kernel: IPVS 1.2.1 with a 4096-entry connection table. */
const DEFAULT_INFO: IpvsInfo = Object.freeze({ version: "1.2.1", versionCode: 0x010201, connTableSize: 4096 });

/** Options of MemoryIpvsDriver; every field has a kernel-like default. */
export interface MemoryIpvsDriverOptions {
  /** Scheduler names that "have a module"; default LINUX_6_1_SCHEDULERS. "none" is always accepted. */
  readonly schedulers?: readonly string[];
  /** Persistence engine names that "have a module"; default ["sip"]. */
  readonly persistenceEngines?: readonly string[];
  readonly info?: IpvsInfo;
  readonly timeouts?: Timeouts;
  /**
   * Whether the kernel would accept `address` as a destination (unicast or local, routable). The default
   * refuses what no kernel accepts: unspecified, multicast, broadcast and IPv6 link-local addresses.
   */
  readonly isRoutable?: (family: Family, address: string) => boolean;
}

/** A write the memory driver performed, as recorded by `writes()`. */
export type MemoryWrite =
  | IpvsOp
  | { readonly op: "flush" }
  | { readonly op: "zero"; readonly key: ServiceKey | null }
  | { readonly op: "set-timeouts"; readonly timeouts: Partial<Timeouts> };

interface StoredService {
  config: ServiceConfig;
  readonly destinations: Map<string, DestinationConfig>;
}

/** The default `isRoutable`: what the kernel's inet_addr_type / ipv6_addr_type checks refuse everywhere. */
export function defaultIsRoutable(family: Family, address: string): boolean {
  const b = addressToBytes(address);
  if (family === "inet") {
    const first = b[0] ?? 0;
    if (first === 0) return false; // 0.0.0.0/8: "this network", reported as broadcast
    if (first >= 224 && first <= 239) return false; // multicast
    return !b.every((x) => x === 255); // limited broadcast
  }
  const first = b[0] ?? 0;
  const second = b[1] ?? 0;
  if (b.every((x) => x === 0)) return false; // unspecified
  if (first === 0xff) return false; // multicast
  return !(first === 0xfe && (second & 0xc0) === 0x80); // link-local fe80::/10
}

function serviceId(key: ServiceKey): string {
  return isFwmarkKey(key) ? `${key.family}/fwmark/${key.fwmark}` : `${key.family}/${key.protocol}/${key.address}/${key.port}`;
}

function destinationId(key: DestinationKey): string {
  return `${key.family}/${key.address}/${key.port}`;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return a.length - b.length;
  for (let i = 0; i < a.length; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

const FAMILY_ORDER: Record<Family, number> = { inet: 0, inet6: 1 };
const PROTOCOL_ORDER: Record<string, number> = { tcp: 0, udp: 1, sctp: 2 };

/** Address services first (as the kernel dumps them), then fwmark services; each by family, then numerically. */
function compareServiceKeys(a: ServiceKey, b: ServiceKey): number {
  const fa = isFwmarkKey(a);
  const fb = isFwmarkKey(b);
  if (fa !== fb) return fa ? 1 : -1;
  const byFamily = FAMILY_ORDER[a.family] - FAMILY_ORDER[b.family];
  if (byFamily !== 0) return byFamily;
  if (isFwmarkKey(a) && isFwmarkKey(b)) return a.fwmark - b.fwmark;
  if (isFwmarkKey(a) || isFwmarkKey(b)) return 0;
  const byProtocol = (PROTOCOL_ORDER[a.protocol] ?? 9) - (PROTOCOL_ORDER[b.protocol] ?? 9);
  if (byProtocol !== 0) return byProtocol;
  const byAddress = compareBytes(addressToBytes(a.address), addressToBytes(b.address));
  return byAddress !== 0 ? byAddress : a.port - b.port;
}

function compareDestinationKeys(a: DestinationKey, b: DestinationKey): number {
  const byFamily = FAMILY_ORDER[a.family] - FAMILY_ORDER[b.family];
  if (byFamily !== 0) return byFamily;
  const byAddress = compareBytes(addressToBytes(a.address), addressToBytes(b.address));
  return byAddress !== 0 ? byAddress : a.port - b.port;
}

function copyServiceConfig(config: ServiceConfig): ServiceConfig {
  const f = config.flags;
  return {
    key: canonicalServiceKey(config.key),
    scheduler: config.scheduler,
    flags: { persistent: f.persistent, onePacket: f.onePacket, sched1: f.sched1, sched2: f.sched2, sched3: f.sched3 },
    timeout: config.timeout,
    netmask: config.netmask,
    pe: config.pe,
  };
}

function copyDestinationConfig(dest: DestinationConfig): DestinationConfig {
  return {
    ...canonicalDestinationKey(dest),
    forward: dest.forward,
    weight: dest.weight,
    upperThreshold: dest.upperThreshold,
    lowerThreshold: dest.lowerThreshold,
    tunnel: canonicalTunnel(dest.forward, dest.tunnel),
  };
}

function readService(config: ServiceConfig): Service {
  return { ...copyServiceConfig(config), stats: { ...ZERO_STATS } };
}

function readDestination(dest: DestinationConfig): Destination {
  return {
    ...copyDestinationConfig(dest),
    activeConns: 0,
    inactiveConns: 0,
    persistentConns: 0,
    stats: { ...ZERO_STATS },
  };
}

/** An IPVS table in memory with the kernel's rules, errnos and messages. */
export class MemoryIpvsDriver implements IpvsDriver {
  readonly #services = new Map<string, StoredService>();
  readonly #schedulers: ReadonlySet<string>;
  readonly #engines: ReadonlySet<string>;
  readonly #info: IpvsInfo;
  readonly #isRoutable: (family: Family, address: string) => boolean;
  #timeouts: Timeouts;
  readonly #writes: MemoryWrite[] = [];
  readonly #faults = new Map<IpvsOperation, { errno: number; times: number }>();

  constructor(options: MemoryIpvsDriverOptions = {}) {
    this.#schedulers = new Set(options.schedulers ?? LINUX_6_1_SCHEDULERS);
    this.#engines = new Set(options.persistenceEngines ?? PERSISTENCE_ENGINES);
    this.#info = { ...(options.info ?? DEFAULT_INFO) };
    this.#timeouts = { ...(options.timeouts ?? DEFAULT_TIMEOUTS) };
    this.#isRoutable = options.isRoutable ?? defaultIsRoutable;
  }

  // ---- test helpers -------------------------------------------------------------------------------------

  /** Every service with its destinations, synchronously, in the same order as snapshot(). */
  peek(): ServiceWithDestinations[] {
    return this.#sortedServices().map((s) => ({
      service: readService(s.config),
      destinations: this.#sortedDestinations(s).map(readDestination),
    }));
  }

  /** The writes that succeeded so far, oldest first (copies). */
  writes(): MemoryWrite[] {
    return this.#writes.map((w) => structuredClone(w));
  }

  /** Forget the recorded writes. */
  clearWrites(): void {
    this.#writes.length = 0;
  }

  /**
   * Make the next `times` calls of `op` (also inside apply()) fail with `errno` before they touch the table.
   * The error's message is the one the kernel driver would build for that errno.
   */
  failNext(op: IpvsOperation, errno: ErrnoName | number, times = 1): void {
    const value = typeof errno === "number" ? errno : ERRNO[errno];
    this.#faults.set(op, { errno: value, times });
  }

  /** Forget every failure failNext() armed and no call used yet. */
  clearFaults(): void {
    this.#faults.clear();
  }

  // ---- IpvsDriver -----------------------------------------------------------------------------------------

  async info(): Promise<IpvsInfo> {
    this.#fault("info", {});
    return { ...this.#info };
  }

  async getTimeouts(): Promise<Timeouts> {
    this.#fault("get-timeouts", {});
    return { ...this.#timeouts };
  }

  async setTimeouts(timeouts: Partial<Timeouts>): Promise<void> {
    validateTimeouts("set-timeouts", timeouts);
    this.#fault("set-timeouts", {});
    const keep = (next: number | undefined, current: number) => (next === undefined || next === 0 ? current : next);
    this.#timeouts = {
      tcp: keep(timeouts.tcp, this.#timeouts.tcp),
      tcpFin: keep(timeouts.tcpFin, this.#timeouts.tcpFin),
      udp: keep(timeouts.udp, this.#timeouts.udp),
    };
    this.#writes.push({ op: "set-timeouts", timeouts: { ...timeouts } });
  }

  async flush(): Promise<void> {
    this.#fault("flush", {});
    this.#services.clear();
    this.#writes.push({ op: "flush" });
  }

  async zero(key?: ServiceKey): Promise<void> {
    if (key === undefined) {
      this.#fault("zero", {});
      this.#writes.push({ op: "zero", key: null });
      return;
    }
    validateServiceKey("zero", key);
    this.#fault("zero", { service: key });
    this.#find("zero", key);
    this.#writes.push({ op: "zero", key: canonicalServiceKey(key) });
  }

  async addService(service: ServiceConfig): Promise<void> {
    this.#addService(service);
  }

  async updateService(service: ServiceConfig): Promise<void> {
    this.#updateService(service);
  }

  async deleteService(key: ServiceKey): Promise<void> {
    this.#deleteService(key);
  }

  async getService(key: ServiceKey): Promise<Service> {
    validateServiceKey("get-service", key);
    this.#fault("get-service", { service: key });
    return readService(this.#find("get-service", key).config);
  }

  async listServices(): Promise<Service[]> {
    this.#fault("list-services", {});
    return this.#sortedServices().map((s) => readService(s.config));
  }

  async addDestination(service: ServiceKey, destination: DestinationConfig): Promise<void> {
    this.#addDestination(service, destination);
  }

  async updateDestination(service: ServiceKey, destination: DestinationConfig): Promise<void> {
    this.#updateDestination(service, destination);
  }

  async deleteDestination(service: ServiceKey, destination: DestinationKey): Promise<void> {
    this.#deleteDestination(service, destination);
  }

  async listDestinations(service: ServiceKey): Promise<Destination[]> {
    validateServiceKey("list-destinations", service);
    this.#fault("list-destinations", { service });
    return this.#sortedDestinations(this.#find("list-destinations", service)).map(readDestination);
  }

  async snapshot(): Promise<ServiceWithDestinations[]> {
    this.#fault("list-services", {});
    return this.peek();
  }

  async apply(ops: readonly IpvsOp[]): Promise<ApplyResult> {
    const results: ApplyResult = [];
    for (const op of ops) {
      try {
        this.#applyOne(op);
        results.push(null);
      } catch (error) {
        if (!(error instanceof IpvsError)) throw error;
        results.push(error);
      }
    }
    return results;
  }

  /** Nothing to release; the table stays readable. */
  close(): void {}

  // ---- writes, synchronous so apply() and the single calls share them ---------------------------------------

  #applyOne(op: IpvsOp): void {
    switch (op.op) {
      case "add-service":
        return this.#addService(op.service);
      case "update-service":
        return this.#updateService(op.service);
      case "delete-service":
        return this.#deleteService(op.key);
      case "add-destination":
        return this.#addDestination(op.service, op.destination);
      case "update-destination":
        return this.#updateDestination(op.service, op.destination);
      case "delete-destination":
        return this.#deleteDestination(op.service, op.destination);
    }
  }

  #addService(config: ServiceConfig): void {
    const op = "add-service";
    validateServiceConfig(op, config);
    this.#fault(op, { serviceConfig: config });
    const key = config.key;
    if (this.#services.has(serviceId(canonicalServiceKey(key)))) throw serviceExists(key);
    this.#checkServiceModules(op, config);
    const stored: StoredService = { config: copyServiceConfig(config), destinations: new Map() };
    this.#services.set(serviceId(stored.config.key), stored);
    this.#writes.push({ op, service: copyServiceConfig(config) });
  }

  #updateService(config: ServiceConfig): void {
    const op = "update-service";
    validateServiceConfig(op, config);
    this.#fault(op, { serviceConfig: config });
    const stored = this.#find(op, config.key);
    this.#checkServiceModules(op, config);
    stored.config = copyServiceConfig(config);
    this.#writes.push({ op, service: copyServiceConfig(config) });
  }

  /** ip_vs_add_service / ip_vs_edit_service: scheduler, then persistence engine, then the IPv6 netmask. */
  #checkServiceModules(op: IpvsOperation, config: ServiceConfig): void {
    if (config.scheduler !== "none" && !this.#schedulers.has(config.scheduler)) {
      throw unknownScheduler(op, config.key, config.scheduler);
    }
    if (config.pe !== null && !this.#engines.has(config.pe)) throw unknownPersistenceEngine(op, config.key, config.pe);
    if (config.key.family === "inet6" && (config.netmask < NETMASK_RANGE.inet6.min || config.netmask > NETMASK_RANGE.inet6.max)) {
      throw badIpv6Netmask(op, config.key, config.netmask);
    }
  }

  #deleteService(key: ServiceKey): void {
    const op = "delete-service";
    validateServiceKey(op, key);
    this.#fault(op, { service: key });
    const stored = this.#find(op, key);
    this.#services.delete(serviceId(stored.config.key));
    this.#writes.push({ op, key: canonicalServiceKey(key) });
  }

  #addDestination(service: ServiceKey, dest: DestinationConfig): void {
    const op = "add-destination";
    validateServiceKey(op, service);
    validateDestinationConfig(op, service, dest);
    this.#fault(op, { service, destination: dest });
    const stored = this.#find(op, service);
    this.#checkDestination(op, service, dest);
    const copy = copyDestinationConfig(dest);
    if (stored.destinations.has(destinationId(copy))) throw destinationExists(service, dest);
    if (!this.#isRoutable(copy.family, copy.address)) throw destinationNotRoutable(op, service, dest);
    stored.destinations.set(destinationId(copy), copy);
    this.#writes.push({ op, service: canonicalServiceKey(service), destination: copyDestinationConfig(dest) });
  }

  #updateDestination(service: ServiceKey, dest: DestinationConfig): void {
    const op = "update-destination";
    validateServiceKey(op, service);
    validateDestinationConfig(op, service, dest);
    this.#fault(op, { service, destination: dest });
    const stored = this.#find(op, service);
    this.#checkDestination(op, service, dest);
    const copy = copyDestinationConfig(dest);
    if (!stored.destinations.has(destinationId(copy))) throw noSuchDestination(op, service, dest);
    stored.destinations.set(destinationId(copy), copy);
    this.#writes.push({ op, service: canonicalServiceKey(service), destination: copyDestinationConfig(dest) });
  }

  /** ip_vs_genl_set_cmd then ip_vs_add_dest / ip_vs_edit_dest, in their order (the weight is checked earlier). */
  #checkDestination(op: IpvsOperation, service: ServiceKey, dest: DestinationConfig): void {
    if (dest.family !== service.family && dest.forward !== "tunnel") throw mixedFamily(op, service, dest);
    if (dest.lowerThreshold > dest.upperThreshold) throw thresholdsOutOfOrder(op, service, dest);
    if (dest.forward === "tunnel" && dest.tunnel?.type === "gue" && dest.tunnel.port === 0) {
      throw gueWithoutPort(op, service, dest);
    }
  }

  #deleteDestination(service: ServiceKey, dest: DestinationKey): void {
    const op = "delete-destination";
    validateServiceKey(op, service);
    validateDestinationKey(op, service, dest);
    this.#fault(op, { service, destination: dest });
    const stored = this.#find(op, service);
    const id = destinationId(canonicalDestinationKey(dest));
    if (!stored.destinations.delete(id)) throw noSuchDestination(op, service, dest);
    this.#writes.push({ op, service: canonicalServiceKey(service), destination: canonicalDestinationKey(dest) });
  }

  // ---- lookups ---------------------------------------------------------------------------------------------

  #find(op: IpvsOperation, key: ServiceKey): StoredService {
    const stored = this.#services.get(serviceId(canonicalServiceKey(key)));
    if (stored === undefined) throw noSuchService(op, key);
    return stored;
  }

  #sortedServices(): StoredService[] {
    return [...this.#services.values()].sort((a, b) => compareServiceKeys(a.config.key, b.config.key));
  }

  #sortedDestinations(stored: StoredService): DestinationConfig[] {
    return [...stored.destinations.values()].sort(compareDestinationKeys);
  }

  #fault(op: IpvsOperation, context: IpvsErrorContext): void {
    const fault = this.#faults.get(op);
    if (fault === undefined) return;
    if (fault.times <= 1) this.#faults.delete(op);
    else fault.times--;
    throw ipvsErrorFor(op, fault.errno, context);
  }
}
