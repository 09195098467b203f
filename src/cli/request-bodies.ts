/**
 * The REST request bodies the `service` and `backend` commands build from their flags (only the flags given), for
 * the daemon and for `--direct` alike (which turns them into IPVS configs through core's normaliser). Ranges come
 * from the REST contract.
 */
import { LIMITS, SERVICE_FIELD_DEFS } from "../contract/fields.ts";
import { type RawArgs, boolArg, choiceArg, defined, intArg, stringArg } from "./_shared.ts";
import { UsageError } from "./errors.ts";

/**
 * A string flag that `none` clears: null, which a PATCH reads as "back to the default" (no scheduler flags, no
 * slow start, no hook) and a PUT as not given. None of these flags has a value "none" of its own.
 */
function clearableArg(args: RawArgs, name: string): string | null | undefined {
  const text = stringArg(args, name);
  return text?.trim().toLowerCase() === "none" ? null : text;
}

/** The GORB service body from the flags given (only those). */
export function serviceBody(args: RawArgs): Record<string, unknown> {
  const persistenceTimeout = intArg(args, "persistence-timeout", LIMITS.persistenceTimeout.min, LIMITS.persistenceTimeout.max);
  const netmask = intArg(args, "netmask", LIMITS.persistenceNetmask.min, LIMITS.persistenceNetmask.max);
  const pe = stringArg(args, "pe");
  let persistent = boolArg(args, "persistent");
  if (persistent === undefined && (persistenceTimeout !== undefined || netmask !== undefined || pe !== undefined)) {
    persistent = true;
  }
  return defined({
    host: stringArg(args, "host"),
    port: intArg(args, "port", LIMITS.port.min, LIMITS.port.max),
    protocol: stringArg(args, "protocol"),
    // A string flag (its choices complete it), checked here as an enum flag is: "SH" is sh, "foo" a usage error.
    method: choiceArg(args, "method", SERVICE_FIELD_DEFS.method.values),
    flags: clearableArg(args, "flags"),
    persistent,
    persistence_timeout: persistenceTimeout,
    persistence_netmask: netmask,
    fwmark: intArg(args, "fwmark", LIMITS.fwmark.min, LIMITS.fwmark.max),
    family: stringArg(args, "family"),
    pe,
    one_packet: boolArg(args, "one-packet"),
    panic_threshold: intArg(args, "panic-threshold", LIMITS.panicThreshold.min, LIMITS.panicThreshold.max),
    announce_min_healthy: intArg(args, "announce-min-healthy", LIMITS.announceMinHealthy.min, LIMITS.announceMinHealthy.max),
    sorry_server: sorryServerArg(args),
    quorum: intArg(args, "quorum", LIMITS.quorum.min, LIMITS.quorum.max),
    hysteresis: intArg(args, "hysteresis", LIMITS.quorum.min, LIMITS.quorum.max),
    quorum_up: clearableArg(args, "quorum-up"),
    quorum_down: clearableArg(args, "quorum-down"),
  });
}

/** --sorry-server IP[:PORT] ([IPv6]:PORT) with --sorry-method; "none" is null (PATCH: remove it). */
function sorryServerArg(args: RawArgs): Record<string, unknown> | null | undefined {
  const text = stringArg(args, "sorry-server")?.trim();
  const method = stringArg(args, "sorry-method");
  if (text === undefined) {
    if (method !== undefined) throw new UsageError("--sorry-method needs --sorry-server");
    return undefined;
  }
  if (text === "none") return null;
  const match = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:]+)(?::(\d+))?$/.exec(text) ?? [text, text, undefined];
  const port = match[2] === undefined ? undefined : Number(match[2]);
  if (port !== undefined && (port < LIMITS.port.min || port > LIMITS.port.max)) {
    throw new UsageError(`--sorry-server: port must be ${LIMITS.port.min}-${LIMITS.port.max}, got ${port}`);
  }
  return defined({ host: match[1], port, method });
}

/** The GORB backend body from the flags given (only those), without the pulse. */
export function backendBody(args: RawArgs): Record<string, unknown> {
  return defined({
    host: stringArg(args, "host"),
    port: intArg(args, "port", LIMITS.backendPort.min, LIMITS.backendPort.max),
    weight: intArg(args, "weight", LIMITS.weight.min, LIMITS.weight.max),
    method: stringArg(args, "forward"),
    tunnel_type: stringArg(args, "tunnel-type"),
    tunnel_port: intArg(args, "tunnel-port", LIMITS.tunnelPort.min, LIMITS.tunnelPort.max),
    tunnel_checksum: stringArg(args, "tunnel-checksum"),
    upper_threshold: intArg(args, "upper-threshold", LIMITS.threshold.min, LIMITS.threshold.max),
    lower_threshold: intArg(args, "lower-threshold", LIMITS.threshold.min, LIMITS.threshold.max),
    maintenance: boolArg(args, "maintenance"),
    slow_start: clearableArg(args, "slow-start"),
  });
}
