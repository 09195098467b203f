/**
 * The BGP section of `gorb status` and `gorb bgp status` (GET /bgp). Apart from the `bgp` command, so that
 * `gorb status` does not load the daemon's option parsing the command's defaults come from.
 */
import type { BgpStatus } from "../bgp/controller.ts";
import { table } from "../render/format.ts";
import type { GorbClient } from "./client.ts";
import { CliError, EXIT } from "./errors.ts";

/** GET /bgp, or null when the daemon runs without BGP (404). */
export async function fetchBgp(api: GorbClient): Promise<BgpStatus | null> {
  try {
    return (await api.request("GET", "/bgp")) as BgpStatus;
  } catch (error) {
    if (error instanceof CliError && error.exitCode === EXIT.NOT_FOUND) return null;
    throw error;
  }
}

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
