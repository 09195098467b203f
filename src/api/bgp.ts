/**
 * GET /bgp: what this node announces over BGP (src/bgp/): per VIP whether gorb wants it announced, whether
 * BIRD confirmed it, the last error; and the speaker's state. 404 when gorb runs without --bgp-bird-socket.
 */
import { t } from "elysia";
import type { BgpStatus } from "../bgp/controller.ts";
import { NotFoundError } from "../core/errors.ts";

/** Where GET /bgp reads from (the daemon's VipController). */
export interface BgpSource {
  status(): BgpStatus;
}

/** The response schema of GET /bgp. */
export const BgpStatusView = t.Object({
  speaker: t.Object({
    kind: t.String({ description: '"bird"' }),
    reachable: t.Boolean({ description: "the control socket answered the last time gorb asked" }),
    version: t.Union([t.String(), t.Null()]),
    lastError: t.Union([t.String(), t.Null()]),
  }),
  hold_down_ms: t.Integer(),
  vips: t.Array(
    t.Object({
      vip: t.String(),
      prefix: t.String({ description: "VIP/32 or VIP/128" }),
      services: t.Array(t.String(), { description: "the services on this VIP that announce" }),
      healthy: t.Boolean({ description: "every one of them has at least announce_min_healthy backends up with weight > 0" }),
      state: t.Union([t.Literal("announced"), t.Literal("hold-down"), t.Literal("withdrawn")]),
      wanted: t.Boolean({ description: "gorb wants BIRD to announce it" }),
      confirmed: t.Boolean({ description: "BIRD has the route as its best for the prefix, which BGP exports (show route protocol ...)" }),
      announce_at: t.Union([t.String(), t.Null()], { description: "end of the hold-down (ISO time)" }),
      error: t.Union([t.String(), t.Null()]),
    }),
  ),
});

/** The body of GET /bgp; throws NotFoundError when BGP is off. */
export function bgpStatus(source: BgpSource | undefined): BgpStatus {
  if (source === undefined) throw new NotFoundError("BGP is off: gorb serve runs without --bgp-bird-socket");
  return source.status();
}
