/**
 * Rendering of the daemon's GET answers for people: service and backend summaries and the status model.
 */
import { NETMASK_RANGE } from "../ipvs/constants.ts";
import type { BackendInfo, ServiceDetail, ServiceInfo } from "./client.ts";
import { type StatusBackend, type StatusService, compact, hostPort, keyValues } from "./format.ts";

type ServiceOptions = ServiceInfo["options"];
type BackendOptions = BackendInfo["options"];

/** serviceAddress: "tcp 10.0.0.1:80", "udp [2001:db8::1]:53", "fwmark 7" or "fwmark 7 inet6". */
export function serviceAddress(o: ServiceOptions): string {
  if (o.fwmark > 0) return o.family === "inet6" ? `fwmark ${o.fwmark} inet6` : `fwmark ${o.fwmark}`;
  const address = o.address !== "" ? o.address : o.host;
  return `${o.protocol} ${hostPort(address, o.port)}`;
}

/** backendTarget: "10.1.0.1:8080". */
function backendTarget(o: BackendOptions): string {
  return hostPort(o.address !== "" ? o.address : o.host, o.port);
}

function forwardText(o: BackendOptions): string {
  if (o.method !== "tunnel" && o.method !== "ipip") return o.method;
  if (o.tunnel_type === "" || o.tunnel_type === "ipip") return "tunnel";
  return o.tunnel_type === "gue" ? `gue:${o.tunnel_port}` : o.tunnel_type;
}

/** What holds a backend at weight 0 besides health, for the state column: " maint", " draining 42s>remove", " drained". */
function overrideText(b: BackendInfo): string {
  let text = b.options.maintenance === true ? " maint" : "";
  const drain = b.drain;
  if (drain !== undefined && drain !== null) {
    text += drain.state === "drained" ? " drained" : ` draining ${drain.seconds_left}s>${drain.then}`;
  }
  return text;
}

/** The status line of one backend from its GET answer. */
export function statusBackend(id: string, b: BackendInfo): StatusBackend {
  return {
    name: id,
    target: backendTarget(b.options),
    forward: forwardText(b.options),
    weight: b.options.weight,
    live: b.effective_weight,
    health: b.metrics.state === "unknown" ? null : b.metrics.health,
    state: b.metrics.state + overrideText(b),
    active: b.active_conns,
    inactive: b.inactive_conns,
    stats: b.stats,
    message: b.metrics.message,
  };
}

/** The status block of one service from GET /service?detail=true. */
export function statusService(d: ServiceDetail): StatusService {
  return {
    name: d.id,
    address: serviceAddress(d.options),
    scheduler: d.options.method,
    health: d.health,
    stats: d.stats,
    backends: d.backend_details.map((b) => statusBackend(b.id, b)),
    failover: failoverText(d),
  };
}

/** "sorry 10.9.0.1:80" while the sorry server serves, "no quorum" while down without one; null otherwise. */
function failoverText(info: ServiceInfo): string | null {
  const sorry = info.options.sorry_server;
  if (info.sorry === true && sorry != null) return `sorry ${hostPort(sorry.host, sorry.port)}`;
  return info.quorum_up === false ? "no quorum" : null;
}

function persistenceText(o: ServiceOptions): string {
  if (!o.persistent) return "off";
  const parts = [`${o.persistence_timeout}s`];
  const full = o.family === "inet6" ? NETMASK_RANGE.inet6.max : NETMASK_RANGE.inet.max;
  if (o.persistence_netmask !== full) parts.push(`netmask /${o.persistence_netmask}`);
  if (o.pe !== "") parts.push(`pe ${o.pe}`);
  return parts.join(", ");
}

/** serviceSummary: the key/value block of `gorb service show`. */
export function serviceSummary(id: string, info: ServiceInfo): string {
  const o = info.options;
  const pairs: [string, string][] = [
    ["service", id],
    ["address", serviceAddress(o) + (o.host !== "" && o.host !== o.address ? ` (host ${o.host})` : "")],
    ["scheduler", o.method + (o.flags !== "" ? ` (flags ${o.flags})` : "")],
    ["persistence", persistenceText(o)],
  ];
  if (o.one_packet) pairs.push(["one-packet", "yes"]);
  pairs.push(["health", info.health.toFixed(2)]);
  const sorry = o.sorry_server;
  if (o.quorum > 0) pairs.push(["quorum", `${o.quorum} (hysteresis ${o.hysteresis}): ${info.quorum_up === false ? "DOWN" : "up"}, ${info.healthy ?? 0} healthy`]);
  if (sorry != null) pairs.push(["sorry server", `${hostPort(sorry.host, sorry.port)} (${sorry.method})${info.sorry === true ? ": SERVING" : ""}`]);
  if (info.stats !== null) {
    const s = info.stats;
    pairs.push([
      "traffic",
      `${compact(s.conns)} conns, ${compact(s.cps)} conn/s, in ${compact(s.in_pps)} pkt/s ${compact(s.in_bps)} B/s, out ${compact(s.out_pps)} pkt/s ${compact(s.out_bps)} B/s`,
    ]);
  }
  pairs.push(["backends", info.backends.length === 0 ? "none" : info.backends.join(", ")]);
  return keyValues(pairs);
}

function pulseText(pulse: unknown): string {
  if (typeof pulse !== "object" || pulse === null) return "-";
  const p = pulse as { type?: unknown; interval?: unknown; args?: unknown };
  const args =
    typeof p.args === "object" && p.args !== null
      ? Object.entries(p.args as Record<string, unknown>)
          .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
          .join(" ")
      : "";
  return [String(p.type ?? "tcp"), `every ${String(p.interval ?? "1m")}`, args].filter((s) => s !== "").join(", ");
}

/** backendSummary: the key/value block of `gorb backend show`. */
export function backendSummary(service: string, id: string, b: BackendInfo): string {
  const o = b.options;
  const m = b.metrics;
  const pairs: [string, string][] = [
    ["backend", `${service}/${id}`],
    ["target", backendTarget(o) + (o.host !== "" && o.host !== o.address ? ` (host ${o.host})` : "")],
    ["forward", forwardText(o) + (o.tunnel_checksum !== "" && o.tunnel_checksum !== "nocsum" ? ` (${o.tunnel_checksum})` : "")],
    ["weight", `${o.weight} configured, ${b.effective_weight} live`],
  ];
  if (o.upper_threshold > 0 || o.lower_threshold > 0) {
    pairs.push(["thresholds", `upper ${o.upper_threshold}, lower ${o.lower_threshold}`]);
  }
  pairs.push(["pulse", pulseText(o.pulse)]);
  pairs.push([
    "health",
    `${m.state}, ${m.health.toFixed(2)}` +
      (m.state === "up" ? `, up ${m.uptime}s` : "") +
      (m.message !== "" ? ` (${m.message})` : ""),
  ]);
  if (o.maintenance === true) pairs.push(["maintenance", "on: weight 0 whatever the health checks say"]);
  if (b.drain !== undefined && b.drain !== null) {
    const d = b.drain;
    pairs.push([
      "drain",
      d.state === "drained"
        ? `drained since the drain ended; held at weight 0 (started ${d.started})`
        : `draining since ${d.started}, deadline ${d.deadline} (${d.seconds_left}s left), then ${d.then}`,
    ]);
  }
  if (b.active_conns !== null) {
    pairs.push(["connections", `${b.active_conns} active, ${b.inactive_conns ?? 0} inactive, ${b.persistent_conns ?? 0} persistent`]);
  }
  if (b.stats !== null) {
    const s = b.stats;
    pairs.push([
      "traffic",
      `${compact(s.conns)} conns, ${compact(s.cps)} conn/s, in ${compact(s.in_bps)} B/s, out ${compact(s.out_bps)} B/s`,
    ]);
  }
  return keyValues(pairs);
}
