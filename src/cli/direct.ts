/**
 * --direct: the client commands against the kernel's IPVS table through KernelIpvsDriver, without a daemon.
 * Loaded only when --direct is given, so the other client commands never load libnl.
 *
 * The kernel stores no names, so here a service is named by its key and a backend by its address:
 *   service   tcp:10.0.0.1:80   udp:[2001:db8::1]:53   sctp:10.0.0.1:9   fwmark:7   fwmark:7/inet6
 *             (a bare 10.0.0.1:80 means tcp; --family inet6 also selects an IPv6 fwmark service)
 *   backend   10.1.0.1:8080   [2001:db8::2]:8080   10.1.0.1 (the service's port; 0 for fwmark services)
 * Addresses must be literals (no DNS). Health checks need the daemon: they are not available here.
 */
import { addressFamily, canonicalAddress } from "../ipvs/address.ts";
import type { IpvsDriver } from "../ipvs/driver.ts";
import { IpvsError } from "../ipvs/errors.ts";
import type {
  Destination,
  DestinationConfig,
  DestinationKey,
  Family,
  ForwardMethod,
  Protocol,
  Service,
  ServiceConfig,
  ServiceFlags,
  ServiceKey,
  Stats,
  TunnelChecksum,
  TunnelConfig,
  TunnelType,
} from "../ipvs/types.ts";
import { isFwmarkKey } from "../ipvs/types.ts";
import { SCHED_FLAG_NAMES } from "../core/model.ts";
import { type RawArgs, boolArg, choiceArg, intArg, stringArg } from "./_shared.ts";
import { cliContext } from "./context.ts";
import { CliError, EXIT, UsageError } from "./errors.ts";
import { type StatusBackend, type StatusService, hostPort, jsonText, keyValues, statusTable, table } from "./format.ts";
import { prepareLibnl } from "./native.ts";

const U32_MAX = 0xffffffff;
const DEFAULT_WEIGHT = 100;
const DEFAULT_PERSISTENCE_TIMEOUT = 300;

/** Makes the driver --direct uses; tests install a MemoryIpvsDriver with setDirectDriverFactory. */
export type DirectDriverFactory = () => Promise<IpvsDriver>;

async function kernelDriver(): Promise<IpvsDriver> {
  const ctx = cliContext();
  const source = await prepareLibnl(ctx.env);
  if (source !== null) ctx.log.debug(`libnl loaded from ${source}`);
  const { KernelIpvsDriver } = await import("../ipvs/kernel-driver.ts");
  return new KernelIpvsDriver();
}

let factory: DirectDriverFactory = kernelDriver;

/** setDirectDriverFactory replaces the kernel driver (tests); returns the previous factory. */
export function setDirectDriverFactory(next: DirectDriverFactory): DirectDriverFactory {
  const previous = factory;
  factory = next;
  return previous;
}

/** The CliError for a driver failure, with the exit code of its class. */
export function directError(error: unknown): CliError {
  if (error instanceof CliError) return error;
  const name = error instanceof Error ? error.name : "";
  const message = error instanceof Error ? error.message : String(error);
  if (name === "IpvsUnavailableError" || name === "LibraryLoadError") {
    return new CliError(EXIT.IPVS_UNAVAILABLE, message, { cause: error });
  }
  if (error instanceof IpvsError) {
    switch (error.code) {
      case "ESRCH":
        return new CliError(EXIT.NOT_FOUND, message, { cause: error });
      case "ENOENT":
        // On add/update-service ENOENT means an unknown scheduler or persistence engine: bad input.
        return new CliError(
          error.op === "add-service" || error.op === "update-service" ? EXIT.REJECTED : EXIT.NOT_FOUND,
          message,
          { cause: error },
        );
      case "EEXIST":
        return new CliError(EXIT.CONFLICT, message, { cause: error });
      case "EINVAL":
      case "ERANGE":
        return new CliError(EXIT.REJECTED, message, { cause: error });
      case "EPERM":
        return new CliError(EXIT.SERVER, `${message}; --direct needs root`, { cause: error });
      default:
        return new CliError(EXIT.SERVER, message, { cause: error });
    }
  }
  return new CliError(EXIT.SERVER, `IPVS: ${message}`, { cause: error });
}

async function withDriver<T>(fn: (driver: IpvsDriver) => Promise<T>): Promise<T> {
  let driver: IpvsDriver;
  try {
    driver = await factory();
  } catch (error) {
    throw directError(error);
  }
  try {
    return await fn(driver);
  } catch (error) {
    throw directError(error);
  } finally {
    driver.close();
  }
}

function literal(text: string, what: string): { address: string; family: Family } {
  const family = addressFamily(text);
  if (family === null) {
    throw new UsageError(`${what}: ${JSON.stringify(text)} is not an IP address (--direct takes addresses, not names)`);
  }
  return { address: canonicalAddress(text), family };
}

function portOf(text: string, what: string, min: number): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) < min || Number(text) > 65535) {
    throw new UsageError(`${what}: port must be ${min}-65535, got ${JSON.stringify(text)}`);
  }
  return Number(text);
}

/**
 * parseServiceName reads a --direct service name (see the module comment). `family` is --family, which only
 * fwmark names use.
 */
export function parseServiceName(text: string, family?: Family): ServiceKey {
  const what = `service ${JSON.stringify(text)}`;
  const fw = /^fwmark:(\d+)(?:\/(inet|inet6))?$/i.exec(text);
  if (fw !== null) {
    const mark = Number(fw[1]);
    if (mark < 1 || mark > U32_MAX) throw new UsageError(`${what}: fwmark must be 1-${U32_MAX}`);
    const fam = (fw[2]?.toLowerCase() as Family | undefined) ?? family ?? "inet";
    return { family: fam, fwmark: mark };
  }
  const m = /^(?:(tcp|udp|sctp):)?(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/i.exec(text);
  if (m === null) {
    throw new UsageError(`${what}: with --direct a service is named tcp:ADDR:PORT, udp:..., sctp:..., or fwmark:N`);
  }
  const { address, family: fam } = literal(m[2] ?? m[3] ?? "", what);
  if (family !== undefined && family !== fam) throw new UsageError(`${what}: --family ${family} does not match the address`);
  return { family: fam, protocol: ((m[1] ?? "tcp").toLowerCase() as Protocol), address, port: portOf(m[4] ?? "", what, 1) };
}

/** formatServiceName writes a key the way parseServiceName reads it. */
export function formatServiceName(key: ServiceKey): string {
  if (isFwmarkKey(key)) return key.family === "inet6" ? `fwmark:${key.fwmark}/inet6` : `fwmark:${key.fwmark}`;
  return `${key.protocol}:${hostPort(key.address, key.port)}`;
}

/** parseBackendName reads ADDR[:PORT] / [IPV6][:PORT]; the port defaults to the service's. */
export function parseBackendName(text: string, service: ServiceKey): DestinationKey {
  const what = `backend ${JSON.stringify(text)}`;
  const defaultPort = isFwmarkKey(service) ? 0 : service.port;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  const plain = /^([^:[\]]+)(?::(\d+))?$/.exec(text);
  let addressText: string;
  let portText: string | undefined;
  if (bracketed !== null) [, addressText = "", portText] = bracketed;
  else if (plain !== null) [, addressText = "", portText] = plain;
  else if (addressFamily(text) === "inet6") addressText = text;
  else throw new UsageError(`${what}: with --direct a backend is named ADDR[:PORT] or [IPV6][:PORT]`);
  const { address, family } = literal(addressText, what);
  const port = portText === undefined ? defaultPort : portOf(portText, what, isFwmarkKey(service) ? 0 : 1);
  return { family, address, port };
}

/** formatBackendName writes a destination key as ADDR:PORT. */
export function formatBackendName(key: DestinationKey): string {
  return hostPort(key.address, key.port);
}

function refuse(args: RawArgs, names: readonly string[], why: string): void {
  for (const name of names) if (args[name] !== undefined) throw new UsageError(`--${name} is not used with --direct: ${why}`);
}

function serviceKeyFrom(name: string, args: RawArgs): ServiceKey {
  refuse(args, ["host", "port", "protocol", "fwmark"], "the service is named by its key, e.g. tcp:10.0.0.1:80 or fwmark:7");
  const family = choiceArg(args, "family", ["inet", "inet6"] as const);
  return parseServiceName(name, family);
}

function flagNames(scheduler: string): Record<"sched1" | "sched2" | "sched3", string> {
  if (scheduler === "sh") return { sched1: "sh-fallback", sched2: "sh-port", sched3: "flag-3" };
  if (scheduler === "mh") return { sched1: "mh-fallback", sched2: "mh-port", sched3: "flag-3" };
  return { sched1: "flag-1", sched2: "flag-2", sched3: "flag-3" };
}

function schedFlagsText(scheduler: string, flags: ServiceFlags): string {
  const names = flagNames(scheduler);
  return (["sched1", "sched2", "sched3"] as const).filter((bit) => flags[bit]).map((bit) => names[bit]).join("|");
}

function parseSchedFlags(text: string): Pick<ServiceFlags, "sched1" | "sched2" | "sched3"> {
  const out = { sched1: false, sched2: false, sched3: false };
  if (text.trim() === "") return out;
  for (const part of text.split(/[|,]/)) {
    const name = part.trim().toLowerCase();
    if (!Object.hasOwn(SCHED_FLAG_NAMES, name)) {
      throw new UsageError(`--flags: unknown flag ${JSON.stringify(part.trim())}; known: ${Object.keys(SCHED_FLAG_NAMES).join(", ")}`);
    }
    out[SCHED_FLAG_NAMES[name as keyof typeof SCHED_FLAG_NAMES]] = true;
  }
  return out;
}

/** The ServiceConfig from the flags, over `base` (the current service for `set`). */
export function serviceConfigFrom(key: ServiceKey, args: RawArgs, base: ServiceConfig | null): ServiceConfig {
  const timeout = intArg(args, "persistence-timeout", 1, U32_MAX);
  const netmask = intArg(args, "netmask", 0, 128);
  const pe = choiceArg(args, "pe", ["sip"] as const);
  const persistent =
    boolArg(args, "persistent") ??
    (timeout !== undefined || netmask !== undefined || pe !== undefined ? true : (base?.flags.persistent ?? false));
  const flagsText = stringArg(args, "flags");
  const sched = flagsText === undefined ? (base?.flags ?? { sched1: false, sched2: false, sched3: false }) : parseSchedFlags(flagsText);
  const flags: ServiceFlags = {
    persistent,
    onePacket: boolArg(args, "one-packet") ?? base?.flags.onePacket ?? false,
    sched1: sched.sched1,
    sched2: sched.sched2,
    sched3: sched.sched3,
  };
  return {
    key,
    scheduler: (stringArg(args, "method") ?? base?.scheduler ?? "wrr").toLowerCase(),
    flags,
    timeout: persistent ? (timeout ?? (base !== null && base.timeout > 0 ? base.timeout : DEFAULT_PERSISTENCE_TIMEOUT)) : 0,
    netmask: netmask ?? base?.netmask ?? (key.family === "inet" ? 32 : 128),
    pe: persistent ? (pe ?? base?.pe ?? null) : null,
  };
}

/** The DestinationConfig from the flags, over `base` (the current destination for `set`). */
export function destinationConfigFrom(dest: DestinationKey, args: RawArgs, base: Destination | null): DestinationConfig {
  refuse(args, ["host", "port"], "the backend is named by its address, e.g. 10.1.0.1:8080");
  const forwardArg = choiceArg(args, "forward", ["nat", "dr", "tunnel", "ipip", "local"] as const);
  const forward: ForwardMethod =
    forwardArg === undefined ? (base?.forward ?? "nat") : forwardArg === "ipip" ? "tunnel" : forwardArg;
  const tunnelType = choiceArg(args, "tunnel-type", ["ipip", "gue", "gre"] as const);
  const tunnelPort = intArg(args, "tunnel-port", 1, 65535);
  const checksum = choiceArg(args, "tunnel-checksum", ["nocsum", "csum", "remcsum"] as const);
  let tunnel: TunnelConfig | null = null;
  if (forward === "tunnel") {
    const type: TunnelType = tunnelType ?? (forwardArg === "ipip" ? "ipip" : (base?.tunnel?.type ?? "ipip"));
    const port = tunnelPort ?? (type === "gue" ? (base?.tunnel?.port ?? 0) : 0);
    const sum: TunnelChecksum = checksum ?? base?.tunnel?.checksum ?? "nocsum";
    tunnel = { type, port, checksum: sum };
  } else if (tunnelType !== undefined || tunnelPort !== undefined || checksum !== undefined) {
    throw new UsageError("--tunnel-* options need --forward tunnel");
  }
  return {
    ...dest,
    forward,
    weight: intArg(args, "weight", 0, 0x7fffffff) ?? base?.weight ?? DEFAULT_WEIGHT,
    upperThreshold: intArg(args, "upper-threshold", 0, U32_MAX) ?? base?.upperThreshold ?? 0,
    lowerThreshold: intArg(args, "lower-threshold", 0, U32_MAX) ?? base?.lowerThreshold ?? 0,
    tunnel,
  };
}

function statsJson(s: Stats) {
  return {
    conns: s.conns,
    in_pkts: s.inPkts,
    out_pkts: s.outPkts,
    in_bytes: s.inBytes,
    out_bytes: s.outBytes,
    cps: s.cps,
    in_pps: s.inPps,
    out_pps: s.outPps,
    in_bps: s.inBps,
    out_bps: s.outBps,
  };
}

/** The --json form of a kernel service. */
export function serviceJson(s: Service) {
  const key = s.key;
  return {
    service: formatServiceName(key),
    family: key.family,
    protocol: isFwmarkKey(key) ? "" : key.protocol,
    address: isFwmarkKey(key) ? "" : key.address,
    port: isFwmarkKey(key) ? 0 : key.port,
    fwmark: isFwmarkKey(key) ? key.fwmark : 0,
    scheduler: s.scheduler,
    flags: schedFlagsText(s.scheduler, s.flags),
    persistent: s.flags.persistent,
    persistence_timeout: s.timeout,
    persistence_netmask: s.netmask,
    pe: s.pe ?? "",
    one_packet: s.flags.onePacket,
    stats: statsJson(s.stats),
  };
}

/** The --json form of a kernel destination. */
export function backendJson(d: Destination) {
  return {
    backend: formatBackendName(d),
    family: d.family,
    address: d.address,
    port: d.port,
    forward: d.forward,
    weight: d.weight,
    upper_threshold: d.upperThreshold,
    lower_threshold: d.lowerThreshold,
    tunnel_type: d.tunnel?.type ?? "",
    tunnel_port: d.tunnel?.port ?? 0,
    tunnel_checksum: d.tunnel?.checksum ?? "",
    active_conns: d.activeConns,
    inactive_conns: d.inactiveConns,
    persistent_conns: d.persistentConns,
    stats: statsJson(d.stats),
  };
}

function statusOf(service: Service, dests: readonly Destination[]): StatusService {
  const traffic = (s: Stats) => ({ cps: s.cps, in_bps: s.inBps, out_bps: s.outBps, conns: s.conns });
  const backends: StatusBackend[] = dests.map((d) => ({
    name: formatBackendName(d),
    target: formatBackendName(d),
    forward: d.forward === "tunnel" && d.tunnel !== null && d.tunnel.type !== "ipip" ? d.tunnel.type : d.forward,
    weight: null,
    live: d.weight,
    health: null,
    state: "-",
    active: d.activeConns,
    inactive: d.inactiveConns,
    stats: traffic(d.stats),
    message: "",
  }));
  const flags = schedFlagsText(service.scheduler, service.flags);
  return {
    name: formatServiceName(service.key),
    address: "-",
    scheduler: service.scheduler + (flags !== "" ? ` (${flags})` : ""),
    health: null,
    stats: traffic(service.stats),
    backends,
  };
}

function done(message: string): number {
  cliContext().log.success(message);
  return EXIT.OK;
}

/** `gorb service add NAME --direct`. */
export async function serviceAdd(name: string, args: RawArgs): Promise<number> {
  const key = serviceKeyFrom(name, args);
  const config = serviceConfigFrom(key, args, null);
  await withDriver((d) => d.addService(config));
  return done(`service ${formatServiceName(key)} created in the kernel`);
}

/** `gorb service set NAME --direct`. */
export async function serviceSet(name: string, args: RawArgs): Promise<number> {
  const key = serviceKeyFrom(name, args);
  await withDriver(async (d) => d.updateService(serviceConfigFrom(key, args, await d.getService(key))));
  return done(`service ${formatServiceName(key)} updated in the kernel`);
}

/** `gorb service rm NAME --direct`. */
export async function serviceRm(name: string): Promise<number> {
  const key = parseServiceName(name);
  await withDriver((d) => d.deleteService(key));
  return done(`service ${formatServiceName(key)} removed from the kernel`);
}

/** `gorb service ls --direct`. */
export async function serviceLs(json: boolean): Promise<number> {
  const services = await withDriver((d) => d.listServices());
  const { io } = cliContext();
  if (json) {
    io.stdout(jsonText(services.map(serviceJson)));
    return EXIT.OK;
  }
  if (services.length === 0) {
    io.stdout("no services\n");
    return EXIT.OK;
  }
  const rows = services.map((s) => {
    const flags = schedFlagsText(s.scheduler, s.flags);
    return [
      formatServiceName(s.key),
      s.scheduler + (flags !== "" ? ` (${flags})` : ""),
      s.flags.persistent ? `${s.timeout}s` : "-",
      String(s.stats.conns),
    ];
  });
  io.stdout(table(["SERVICE", "SCHEDULER", "PERSIST", "CONNS"], rows, ["left", "left", "right", "right"]));
  return EXIT.OK;
}

/** `gorb service show NAME --direct`. */
export async function serviceShow(name: string, json: boolean): Promise<number> {
  const key = parseServiceName(name);
  const [service, dests] = await withDriver(async (d) => [await d.getService(key), await d.listDestinations(key)] as const);
  const { io } = cliContext();
  if (json) {
    io.stdout(jsonText({ ...serviceJson(service), backends: dests.map(backendJson) }));
    return EXIT.OK;
  }
  const j = serviceJson(service);
  const pairs: [string, string][] = [
    ["service", j.service],
    ["scheduler", j.scheduler + (j.flags !== "" ? ` (flags ${j.flags})` : "")],
    ["persistence", j.persistent ? `${j.persistence_timeout}s, netmask /${j.persistence_netmask}${j.pe !== "" ? `, pe ${j.pe}` : ""}` : "off"],
  ];
  if (j.one_packet) pairs.push(["one-packet", "yes"]);
  pairs.push(["backends", String(dests.length)]);
  io.stdout(keyValues(pairs));
  if (dests.length > 0) io.stdout(`\n${statusTable([statusOf(service, dests)])}`);
  return EXIT.OK;
}

async function findDestination(d: IpvsDriver, key: ServiceKey, dest: DestinationKey): Promise<Destination> {
  const found = (await d.listDestinations(key)).find(
    (x) => x.family === dest.family && x.address === dest.address && x.port === dest.port,
  );
  if (found === undefined) {
    throw new CliError(EXIT.NOT_FOUND, `backend ${formatBackendName(dest)} of service ${formatServiceName(key)} not found in the kernel`);
  }
  return found;
}

/** `gorb backend add SERVICE NAME --direct`. */
export async function backendAdd(service: string, name: string, args: RawArgs): Promise<number> {
  const key = parseServiceName(service);
  const dest = parseBackendName(name, key);
  const config = destinationConfigFrom(dest, args, null);
  await withDriver((d) => d.addDestination(key, config));
  return done(`backend ${formatBackendName(dest)} added to ${formatServiceName(key)} in the kernel`);
}

/** `gorb backend set SERVICE NAME --direct`. */
export async function backendSet(service: string, name: string, args: RawArgs): Promise<number> {
  const key = parseServiceName(service);
  const dest = parseBackendName(name, key);
  await withDriver(async (d) => d.updateDestination(key, destinationConfigFrom(dest, args, await findDestination(d, key, dest))));
  return done(`backend ${formatBackendName(dest)} of ${formatServiceName(key)} updated in the kernel`);
}

/** `gorb backend rm SERVICE NAME --direct`. */
export async function backendRm(service: string, name: string): Promise<number> {
  const key = parseServiceName(service);
  const dest = parseBackendName(name, key);
  await withDriver((d) => d.deleteDestination(key, dest));
  return done(`backend ${formatBackendName(dest)} removed from ${formatServiceName(key)} in the kernel`);
}

/** `gorb backend show SERVICE NAME --direct`. */
export async function backendShow(service: string, name: string, json: boolean): Promise<number> {
  const key = parseServiceName(service);
  const dest = parseBackendName(name, key);
  const found = await withDriver((d) => findDestination(d, key, dest));
  const j = backendJson(found);
  const { io } = cliContext();
  if (json) {
    io.stdout(jsonText(j));
    return EXIT.OK;
  }
  const pairs: [string, string][] = [
    ["backend", `${formatServiceName(key)} -> ${j.backend}`],
    ["forward", j.forward + (j.tunnel_type !== "" ? ` (${j.tunnel_type}${j.tunnel_port > 0 ? `:${j.tunnel_port}` : ""}, ${j.tunnel_checksum})` : "")],
    ["weight", String(j.weight)],
  ];
  if (j.upper_threshold > 0 || j.lower_threshold > 0) pairs.push(["thresholds", `upper ${j.upper_threshold}, lower ${j.lower_threshold}`]);
  pairs.push(["connections", `${j.active_conns} active, ${j.inactive_conns} inactive, ${j.persistent_conns} persistent`]);
  io.stdout(keyValues(pairs));
  return EXIT.OK;
}

/** `gorb status [SERVICE] --direct`: the model for the table and the --json value. */
export async function directStatus(service: string | undefined): Promise<{ model: StatusService[]; json: unknown }> {
  const entries = await withDriver(async (d) => {
    if (service === undefined) return d.snapshot();
    const key = parseServiceName(service);
    return [{ service: await d.getService(key), destinations: await d.listDestinations(key) }];
  });
  return {
    model: entries.map((e) => statusOf(e.service, e.destinations)),
    json: entries.map((e) => ({ ...serviceJson(e.service), backends: e.destinations.map(backendJson) })),
  };
}
