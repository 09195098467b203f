/**
 * Rendering of the daemon's GET answers for people: service and backend summaries and the status model.
 */
import { DEFAULTS } from "../contract/fields.ts";
import { NETMASK_RANGE } from "../ipvs/constants.ts";
import { hostPort } from "../ipv6-text.ts";
import { compact, keyValues } from "../render/format.ts";
import { backendTarget, forwardText, serviceAddress } from "../render/status.ts";
import type { BackendInfo, ServiceInfo } from "./client.ts";

type ServiceOptions = ServiceInfo["options"];

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
  if (info.in_kernel === false) pairs.push(["kernel", "MISSING: IPVS does not have it (each reconcile tries to add it)"]);
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
  return [String(p.type ?? DEFAULTS.pulseType), `every ${String(p.interval ?? DEFAULTS.pulseInterval)}`, args].filter((s) => s !== "").join(", ");
}

/** backendSummary: the key/value block of `gorb backend show`. */
export function backendSummary(service: string, id: string, b: BackendInfo): string {
  const o = b.options;
  const m = b.metrics;
  const pairs: [string, string][] = [
    ["backend", `${service}/${id}`],
    ["target", backendTarget(o) + (o.host !== "" && o.host !== o.address ? ` (host ${o.host})` : "")],
    ["forward", forwardText(o) + (o.tunnel_checksum !== "" && o.tunnel_checksum !== DEFAULTS.tunnelChecksum ? ` (${o.tunnel_checksum})` : "")],
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
