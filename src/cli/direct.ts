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
import { BACKEND_METHODS, LIMITS, schedFlagsText } from "../contract/fields.ts";
import { GorbError, fromIpvsError, ipvsOutcome, errorMessage } from "../core/errors.ts";
import {
  backendFields,
  backendPatchFields,
  checkForwardedPort,
  normalizeBackendFields,
  normalizeService,
  normalizeServiceFields,
  patchBackendFields,
  patchServiceFields,
  serviceFields,
  servicePatchFields,
} from "../core/normalize.ts";
import {
  type HostResolver,
  resolveBackendAddress,
  resolveServiceKey,
  toDestinationConfig,
  toServiceConfig,
} from "../core/resolve.ts";
import { addressFamily, canonicalAddress } from "../ipvs/address.ts";
import type { IpvsDriver } from "../ipvs/driver.ts";
import { IpvsError } from "../ipvs/errors.ts";
import type {
  Destination,
  DestinationConfig,
  DestinationKey,
  Family,
  Protocol,
  Service,
  ServiceConfig,
  ServiceKey,
  Stats,
} from "../ipvs/types.ts";
import { FAMILIES, isFwmarkKey } from "../ipvs/types.ts";
import { PLAIN_IPIP } from "../ipvs/validate.ts";
import { type RawArgs, choiceArg } from "./_shared.ts";
import { backendBody, serviceBody } from "./request-bodies.ts";
import { cliContext } from "./context.ts";
import { CliError, EXIT, UsageError, exitCodeForStatus } from "./errors.ts";
import { hostPort } from "../ipv6-text.ts";
import { type StatusBackend, type StatusService, jsonText, keyValues, statusTable } from "../render/format.ts";
import { table } from "../render/table.ts";
import { prepareLibnl } from "./native.ts";


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
  const message = errorMessage(error);
  if (name === "IpvsUnavailableError" || name === "LibraryLoadError") {
    return new CliError(EXIT.IPVS_UNAVAILABLE, message, { cause: error });
  }
  if (error instanceof IpvsError) {
    // The daemon's table (core/errors.ts), except that a missing object is the user's name, not a loss.
    if (ipvsOutcome(error) === "lost") return new CliError(EXIT.NOT_FOUND, message, { cause: error });
    if (error.code === "EPERM") return new CliError(EXIT.SERVER, `${message}; --direct needs root`, { cause: error });
    return new CliError(exitCodeForStatus(fromIpvsError(error).status), message, { cause: error });
  }
  if (error instanceof GorbError) return new CliError(exitCodeForStatus(error.status), message, { cause: error });
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
  const max = LIMITS.port.max;
  if (!/^\d{1,5}$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new UsageError(`${what}: port must be ${min}-${max}, got ${JSON.stringify(text)}`);
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
    if (mark < LIMITS.fwmark.min || mark > LIMITS.fwmark.max) {
      throw new UsageError(`${what}: fwmark must be ${LIMITS.fwmark.min}-${LIMITS.fwmark.max}`);
    }
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
  refuse(args, ["sorry-server", "sorry-method", "quorum", "hysteresis", "quorum-up", "quorum-down"], "failover needs the daemon's health checks");
  refuse(args, ["panic-threshold"], "panic mode needs the daemon's health checks");
  refuse(args, ["announce-min-healthy"], "BGP announcements need the daemon");
  const family = choiceArg(args, "family", FAMILIES);
  return parseServiceName(name, family);
}

/** The REST fields that name a kernel service key. */
function keyBody(key: ServiceKey): Record<string, unknown> {
  if (isFwmarkKey(key)) return { fwmark: key.fwmark, family: key.family };
  return { host: key.address, port: key.port, protocol: key.protocol, family: key.family };
}

/** The REST body that normalises back into `config` (the base a `set` patches). */
function serviceBodyOf(config: ServiceConfig): Record<string, unknown> {
  const persistent = config.flags.persistent;
  return {
    ...keyBody(config.key),
    method: config.scheduler,
    flags: schedFlagsText(config.scheduler, config.flags),
    persistent,
    ...(persistent ? { persistence_timeout: config.timeout, persistence_netmask: config.netmask } : {}),
    ...(persistent && config.pe !== null ? { pe: config.pe } : {}),
    one_packet: config.flags.onePacket,
  };
}

/** --direct names addresses, never DNS names: a resolver that is never asked (literals resolve themselves). */
const noDns: HostResolver = async (host) => {
  throw new UsageError(`${JSON.stringify(host)}: --direct takes addresses, not names`);
};

/**
 * The ServiceConfig the flags describe, over `base` (the kernel's current service for `set`), built the way
 * the daemon builds one: the flags become the REST body (../commands/service.ts), core normalises it
 * (defaults, checks) and resolves the key (the VIP address rules).
 */
export async function serviceConfigFrom(key: ServiceKey, args: RawArgs, base: ServiceConfig | null): Promise<ServiceConfig> {
  const flags = serviceBody(args);
  delete flags.family; // the name's family (fwmark:N/inet6 or --family) is already in the key
  const fields =
    base === null
      ? serviceFields({ ...keyBody(key), ...flags })
      : patchServiceFields(serviceFields(serviceBodyOf(base)), servicePatchFields(flags));
  const spec = normalizeServiceFields(fields);
  const resolved = await resolveServiceKey(spec, noDns, null);
  return toServiceConfig(spec, resolved);
}

/** The REST body that normalises back into the destination `dest` (the base a `set` patches). */
function backendBodyOf(dest: Destination): Record<string, unknown> {
  const method = dest.forward === "tunnel" ? "tunnel" : dest.forward;
  if (!(BACKEND_METHODS as readonly string[]).includes(method)) {
    throw new UsageError(`backend ${formatBackendName(dest)} forwards by ${JSON.stringify(dest.forward)}, which gorb cannot change`);
  }
  const tunnel = dest.forward === "tunnel" ? (dest.tunnel ?? PLAIN_IPIP) : null;
  return {
    host: dest.address,
    port: dest.port,
    weight: dest.weight,
    method,
    upper_threshold: dest.upperThreshold,
    lower_threshold: dest.lowerThreshold,
    ...(tunnel === null
      ? {}
      : {
          tunnel_type: tunnel.type,
          ...(tunnel.type === "gue" ? { tunnel_port: tunnel.port } : {}),
          tunnel_checksum: tunnel.checksum,
        }),
  };
}

/** The backend flags --direct has no place for: usage errors, found before the driver opens (no root, no libnl). */
function refuseBackendFlags(args: RawArgs): void {
  refuse(args, ["host", "port"], "the backend is named by its address, e.g. 10.1.0.1:8080");
  refuse(args, ["slow-start"], "slow start needs the daemon");
  // The kernel keeps no configured weight beside the live one: maintenance off would have no weight to give back.
  refuse(args, ["maintenance"], "maintenance keeps the configured weight, which only the daemon holds; use --weight 0, then --weight N");
}

/** The DestinationConfig the flags describe, over `base` (the current destination for `set`), as core builds it. */
export async function destinationConfigFrom(
  key: ServiceKey,
  dest: DestinationKey,
  args: RawArgs,
  base: Destination | null,
): Promise<DestinationConfig> {
  refuseBackendFlags(args);
  const flags = backendBody(args);
  const fields =
    base === null
      ? backendFields({ host: dest.address, port: dest.port, ...flags })
      : patchBackendFields(backendFields(backendBodyOf(base)), backendPatchFields(flags));
  const service = normalizeService(keyBody(key));
  const spec = normalizeBackendFields(fields, service);
  if (base === null || "method" in flags) checkForwardedPort(spec, service);
  const address = await resolveBackendAddress(spec, key, noDns);
  return toDestinationConfig(spec, address, key, spec.weight);
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
  // Checked before the driver opens: a bad flag needs neither root nor libnl.
  const config = await serviceConfigFrom(key, args, null).catch((error: unknown) => {
    throw directError(error);
  });
  await withDriver((d) => d.addService(config));
  return done(`service ${formatServiceName(key)} created in the kernel`);
}

/** `gorb service set NAME --direct`. */
export async function serviceSet(name: string, args: RawArgs): Promise<number> {
  const key = serviceKeyFrom(name, args);
  await withDriver(async (d) => d.updateService(await serviceConfigFrom(key, args, await d.getService(key))));
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

/**
 * `gorb __ids --direct [SERVICE]` (the completion scripts, with --direct on the line): the kernel's services as
 * --direct names them (tcp:ADDR:PORT, fwmark:N), or SERVICE's destinations (ADDR:PORT).
 */
export async function directIds(service: string | undefined): Promise<string[]> {
  if (service === undefined) return (await withDriver((d) => d.listServices())).map((s) => formatServiceName(s.key));
  const key = parseServiceName(service);
  return (await withDriver((d) => d.listDestinations(key))).map((dest) => formatBackendName(dest));
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
  const config = await destinationConfigFrom(key, dest, args, null).catch((error: unknown) => {
    throw directError(error);
  });
  await withDriver((d) => d.addDestination(key, config));
  return done(`backend ${formatBackendName(dest)} added to ${formatServiceName(key)} in the kernel`);
}

/** `gorb backend set SERVICE NAME --direct`. */
export async function backendSet(service: string, name: string, args: RawArgs): Promise<number> {
  const key = parseServiceName(service);
  const dest = parseBackendName(name, key);
  refuseBackendFlags(args);
  await withDriver(async (d) =>
    d.updateDestination(key, await destinationConfigFrom(key, dest, args, await findDestination(d, key, dest))),
  );
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
