/**
 * What GET returns: the GORB shapes (`options`, `health`, `backends`; `options`, `metrics`) with gorb's
 * additions (IPVS counters and rates, effective weight, connection counts). Built from core's records by
 * pure functions.
 */
import type { Destination, ServiceConfig, Stats } from "../ipvs/types.ts";
import { isFwmarkKey } from "../ipvs/types.ts";
import type { DrainView } from "./drain.ts";
import type { BackendHealth } from "./health.ts";
import type { BackendOptionsView, BackendSpec, ServiceOptionsView, ServiceSpec } from "./model.ts";
import { pulseView } from "./pulse.ts";
import { formatDuration } from "../health/duration.ts";

/** IPVS counters (since the last zero) and rates (per second), snake_case on the wire. */
export interface StatsView {
  conns: number;
  in_pkts: number;
  out_pkts: number;
  in_bytes: number;
  out_bytes: number;
  cps: number;
  in_pps: number;
  out_pps: number;
  in_bps: number;
  out_bps: number;
}

/** GET /service/:service. */
export interface ServiceInfo {
  options: ServiceOptionsView;
  /** Mean health of the backends that have been checked; 1 when none has (as the original). */
  health: number;
  /** Backend ids, sorted; [] when there are none (the original said null). */
  backends: string[];
  /** IPVS counters of the service; null when the kernel could not be read (or does not have it: `in_kernel`). */
  stats: StatsView | null;
  /**
   * False while the kernel does not have the service (gorb's view of the IPVS table: the last read and every write
   * since): the kernel refused it at restore (./exposure.ts: then no VIP of its own and no discovery registration
   * either), or it went missing and a reconcile could not put it back, or its creation is still being written.
   * gorb keeps it desired and each reconcile tries again. The BGP controller does not count it as serving. Always
   * set by Gorb (optional for older callers).
   */
  in_kernel?: boolean;
  /**
   * True while the service is in panic mode: more than its panic_threshold percent of backends are down, so
   * gorb keeps their weights instead of draining them. Always set by Gorb (optional for older callers).
   */
  panic?: boolean;
  /**
   * Failover (./failover.ts): false while the service is down (below quorum - hysteresis until it is back at
   * quorum + hysteresis; with a sorry server and no quorum, while no backend is up). Always set by Gorb.
   */
  quorum_up?: boolean;
  /** True while the sorry server serves in place of the backends. */
  sorry?: boolean;
  /** Backends counted for the quorum: up, with a configured weight > 0. */
  healthy?: number;
}

/** `metrics` of GET /service/:service/:backend. */
export interface BackendMetricsView {
  /** GORB's integer status: 0 = up, 1 = down. A backend not checked yet shows 0, as in the original. */
  status: 0 | 1;
  /** The same as a word, with "unknown" before the first check. */
  state: "up" | "down" | "unknown";
  health: number;
  /** Whole seconds continuously up. */
  uptime: number;
  /** Duration of the last check in ms; null before the first. */
  last_check_ms: number | null;
  /** What the last check said. */
  message: string;
}

/** GET /service/:service/:backend. */
export interface BackendInfo {
  options: BackendOptionsView;
  metrics: BackendMetricsView;
  /** The weight IPVS has now: the configured weight scaled by health. */
  effective_weight: number;
  stats: StatsView | null;
  active_conns: number | null;
  inactive_conns: number | null;
  persistent_conns: number | null;
  /** The backend's drain, when one is in progress or held; null otherwise. Set by Gorb (optional for older callers). */
  drain?: DrainView | null;
}

/** One entry of GET /service?detail=true. */
export interface ServiceDetail extends ServiceInfo {
  id: string;
  backend_details: (BackendInfo & { id: string })[];
}

/** The counters and rates the status table shows (a part of StatsView). */
export type TrafficStatsView = Pick<StatsView, "conns" | "cps" | "in_bps" | "out_bps">;

/**
 * The part of a backend's view the status table shows (`gorb status`): the same field names as BackendInfo, so a
 * ServiceDetail of GET /service?detail=true is a ServiceStatusView too, and both render through the same code.
 */
export interface BackendStatusView {
  readonly id: string;
  readonly options: Pick<BackendOptionsView, "host" | "address" | "port" | "weight" | "method" | "tunnel_type" | "tunnel_port" | "maintenance">;
  readonly metrics: Pick<BackendMetricsView, "state" | "health" | "message">;
  readonly effective_weight: number;
  readonly stats: TrafficStatsView | null;
  readonly active_conns: number | null;
  readonly inactive_conns: number | null;
  readonly drain?: Pick<DrainView, "state" | "seconds_left" | "then"> | null;
}

/** The part of a service's view the status table shows (see BackendStatusView). */
export interface ServiceStatusView {
  readonly id: string;
  readonly options: Pick<ServiceOptionsView, "host" | "address" | "port" | "protocol" | "fwmark" | "family" | "method" | "sorry_server">;
  readonly health: number;
  readonly stats: TrafficStatsView | null;
  readonly in_kernel?: boolean;
  readonly quorum_up?: boolean;
  readonly sorry?: boolean;
  readonly backend_details: readonly BackendStatusView[];
}

/** The counters and rates of the status table from the kernel's stats. */
export function trafficStatsView(stats: Stats): TrafficStatsView {
  return { conns: stats.conns, cps: stats.cps, in_bps: stats.inBps, out_bps: stats.outBps };
}

/** The wire form of IPVS stats. */
export function statsView(stats: Stats): StatsView {
  return {
    conns: stats.conns,
    in_pkts: stats.inPkts,
    out_pkts: stats.outPkts,
    in_bytes: stats.inBytes,
    out_bytes: stats.outBytes,
    cps: stats.cps,
    in_pps: stats.inPps,
    out_pps: stats.outPps,
    in_bps: stats.inBps,
    out_bps: stats.outBps,
  };
}

/** The `options` of a service: GORB's fields with defaults filled in, then gorb's. */
export function serviceOptionsView(spec: ServiceSpec, config: ServiceConfig): ServiceOptionsView {
  const key = config.key;
  const fwmark = isFwmarkKey(key);
  return {
    host: spec.host,
    port: spec.port,
    protocol: fwmark ? "" : spec.protocol,
    method: spec.method,
    flags: spec.flags,
    persistent: spec.persistent,
    persistence_timeout: spec.persistenceTimeout,
    persistence_netmask: config.netmask,
    fwmark: spec.fwmark ?? 0,
    family: key.family,
    pe: spec.pe ?? "",
    one_packet: spec.onePacket,
    panic_threshold: spec.panicThreshold,
    announce_min_healthy: spec.announceMinHealthy,
    hash_fallback: spec.hashFallback,
    sorry_server: spec.sorryServer === null ? null : { host: spec.sorryServer.host, port: spec.sorryServer.port, method: spec.sorryServer.method },
    quorum: spec.quorum,
    hysteresis: spec.hysteresis,
    quorum_up: spec.quorumUp,
    quorum_down: spec.quorumDown,
    address: isFwmarkKey(key) ? "" : key.address,
  };
}

/** The `options` of a backend; `weight` is the configured weight. */
export function backendOptionsView(spec: BackendSpec, serviceId: string, address: string): BackendOptionsView {
  return {
    host: spec.host,
    port: spec.port,
    weight: spec.weight,
    method: spec.method,
    pulse: pulseView(spec.pulse),
    vsid: serviceId,
    upper_threshold: spec.upperThreshold,
    lower_threshold: spec.lowerThreshold,
    tunnel_type: spec.tunnel?.type ?? "",
    tunnel_port: spec.tunnel?.port ?? 0,
    tunnel_checksum: spec.tunnel?.checksum ?? "",
    slow_start: spec.slowStartMs === 0 ? "" : formatDuration(spec.slowStartMs),
    address,
    maintenance: spec.maintenance,
  };
}

/** The `metrics` of a backend. */
export function metricsView(health: BackendHealth): BackendMetricsView {
  return {
    status: health.state === "down" ? 1 : 0,
    state: health.state,
    health: health.health,
    uptime: health.uptimeSeconds,
    last_check_ms: health.lastCheckMs,
    message: health.message,
  };
}

/** Mean health of the checked backends; 1 when none has been checked (GORB said 1 with no backends). */
export function serviceHealth(backends: Iterable<{ readonly health: BackendHealth }>): number {
  let checked = 0;
  let sum = 0;
  for (const { health } of backends) {
    if (health.state === "unknown") continue;
    checked++;
    sum += health.health;
  }
  return checked === 0 ? 1 : sum / checked;
}

/** The kernel's view of a destination for BackendInfo, or nulls when it could not be read. */
export function destinationCounters(
  dest: Destination | null,
): Pick<BackendInfo, "stats" | "active_conns" | "inactive_conns" | "persistent_conns"> {
  if (dest === null) return { stats: null, active_conns: null, inactive_conns: null, persistent_conns: null };
  return {
    stats: statsView(dest.stats),
    active_conns: dest.activeConns,
    inactive_conns: dest.inactiveConns,
    persistent_conns: dest.persistentConns,
  };
}
