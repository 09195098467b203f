/**
 * GET /bgp for `gorb bgp status` (and `gorb status` against a daemon older than the rendered table). Apart from the
 * `bgp` command, so that `gorb status` does not load the daemon's option parsing the command's defaults come from.
 * The section's text is ../render/bgp.ts, which the daemon also renders under the status table.
 */
import type { BgpStatus } from "../bgp/controller.ts";
import type { GorbClient } from "./client.ts";
import { CliError, EXIT } from "./errors.ts";

/** GET /bgp, or null when the daemon runs without BGP (404). */
export async function fetchBgp(api: GorbClient): Promise<BgpStatus | null> {
  try {
    return await api.requestObject<BgpStatus>("GET", "/bgp", "the BGP status", { speaker: "object", vips: "list" });
  } catch (error) {
    if (error instanceof CliError && error.exitCode === EXIT.NOT_FOUND) return null;
    throw error;
  }
}
