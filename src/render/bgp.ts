/**
 * The BGP section of `gorb status` and `gorb bgp status`: the speaker's state, then one line per VIP (GET /bgp).
 * The daemon renders it under the status table it answers as text; `gorb bgp status` renders it from GET /bgp.
 */
import type { BgpStatus } from "../bgp/controller.ts";
import { table } from "./table.ts";

/** The BGP section of `gorb status` and `gorb bgp status`. */
export function bgpTable(status: BgpStatus): string {
  const s = status.speaker;
  const head = `BGP (${s.kind}): ${s.reachable ? "reachable" : "UNREACHABLE"}${s.version !== null ? `, ${s.version}` : ""}` +
    `${s.lastError !== null ? `; last error: ${s.lastError}` : ""}; hold-down ${status.hold_down_ms} ms\n`;
  if (status.vips.length === 0) return `${head}no VIP to announce\n`;
  const rows = status.vips.map((v) => [
    v.prefix,
    v.services.join(",") || "-",
    v.healthy ? "healthy" : "unhealthy",
    v.state === "hold-down" && v.announce_at !== null ? `hold-down until ${v.announce_at}` : v.state,
    v.wanted ? "yes" : "no",
    v.confirmed ? "yes" : "no",
    v.error ?? "",
  ]);
  return head + table(["PREFIX", "SERVICES", "HEALTH", "STATE", "WANTED", "IN BIRD", "ERROR"], rows);
}
