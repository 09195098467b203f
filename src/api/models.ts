/**
 * The REST contract as TypeBox schemas: request bodies, GET responses and the error body. They feed
 * GET /openapi.json. Bodies are NOT validated against them by Elysia: GORB clients send keys in any case
 * ("Port") and expect 400s that name the field, so core's normaliser (src/core/normalize.ts) validates bodies
 * and these schemas document what it accepts (a unit test keeps the two in step).
 */
import { t } from "elysia";

const Protocol = t.Union([t.Literal("tcp"), t.Literal("udp"), t.Literal("sctp")]);
const Family = t.Union([t.Literal("inet"), t.Literal("inet6")]);

/** Body of PUT/PATCH /service/:service. Keys are matched case-insensitively; unknown keys are ignored. */
export const ServiceBody = t.Object(
  {
    host: t.Optional(t.String({ description: "VIP address or DNS name; default: first address of the -i interface" })),
    port: t.Optional(t.Integer({ minimum: 1, maximum: 65535, description: "required unless fwmark is given" })),
    protocol: t.Optional(Protocol),
    method: t.Optional(t.String({ description: "IPVS scheduler: rr, wrr (default), lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos" })),
    flags: t.Optional(
      t.String({ description: "scheduler flags separated by | or ,: sh-fallback, sh-port, mh-fallback, mh-port, flag-1, flag-2, flag-3" }),
    ),
    persistent: t.Optional(t.Boolean({ description: "client persistence (IP_VS_SVC_F_PERSISTENT)" })),
    persistence_timeout: t.Optional(t.Integer({ minimum: 1, maximum: 4294967295, description: "seconds, default 300" })),
    persistence_netmask: t.Optional(t.Integer({ minimum: 0, maximum: 128, description: "prefix length of persistence granularity" })),
    fwmark: t.Optional(t.Integer({ minimum: 1, maximum: 4294967295, description: "firewall-mark service instead of host/port/protocol" })),
    family: t.Optional(Family),
    pe: t.Optional(t.Literal("sip")),
    one_packet: t.Optional(t.Boolean({ description: "one-packet scheduling (udp and fwmark only)" })),
    panic_threshold: t.Optional(
      t.Integer({ minimum: 0, maximum: 100, description: "percent of backends down at once above which gorb keeps their weights (panic mode); 0 = off" }),
    ),
  },
  { additionalProperties: true },
);
export type ServiceBody = typeof ServiceBody.static;

/** Pulse (health check) options; `args` depend on the type (see the health module). */
export const PulseBody = t.Object(
  {
    type: t.Optional(t.String({ description: "tcp (default), http, none, ..." })),
    interval: t.Optional(t.String({ description: "e.g. 5s, 1m (default), 2h" })),
    args: t.Optional(t.Record(t.String(), t.Unknown())),
  },
  { additionalProperties: true },
);

/** Body of PUT/PATCH /service/:service/:backend. */
export const BackendBody = t.Object(
  {
    host: t.Optional(t.String({ description: "backend address or DNS name; required on PUT" })),
    port: t.Optional(t.Integer({ minimum: 0, maximum: 65535, description: "default: the service's port" })),
    weight: t.Optional(t.Integer({ minimum: 0, maximum: 2147483647, description: "default 100; 0 = drained" })),
    method: t.Optional(
      t.Union([t.Literal("nat"), t.Literal("dr"), t.Literal("tunnel"), t.Literal("ipip"), t.Literal("local")]),
    ),
    upper_threshold: t.Optional(t.Integer({ minimum: 0, maximum: 4294967295 })),
    lower_threshold: t.Optional(t.Integer({ minimum: 0, maximum: 4294967295 })),
    tunnel_type: t.Optional(t.Union([t.Literal("ipip"), t.Literal("gue"), t.Literal("gre")])),
    tunnel_port: t.Optional(t.Integer({ minimum: 1, maximum: 65535, description: "gue only" })),
    tunnel_checksum: t.Optional(t.Union([t.Literal("nocsum"), t.Literal("csum"), t.Literal("remcsum")])),
    pulse: t.Optional(PulseBody),
    vsid: t.Optional(t.String({ description: "accepted and ignored (GORB compatibility)" })),
  },
  { additionalProperties: true },
);
export type BackendBody = typeof BackendBody.static;

/** IPVS counters and rates. */
export const StatsView = t.Object({
  conns: t.Number(),
  in_pkts: t.Number(),
  out_pkts: t.Number(),
  in_bytes: t.Number(),
  out_bytes: t.Number(),
  cps: t.Number(),
  in_pps: t.Number(),
  out_pps: t.Number(),
  in_bps: t.Number(),
  out_bps: t.Number(),
});

/** `options` of a service in GET responses. */
export const ServiceOptionsView = t.Object({
  host: t.String(),
  port: t.Integer(),
  protocol: t.String(),
  method: t.String(),
  flags: t.String(),
  persistent: t.Boolean(),
  persistence_timeout: t.Integer(),
  persistence_netmask: t.Integer(),
  fwmark: t.Integer(),
  family: Family,
  pe: t.String(),
  one_packet: t.Boolean(),
  address: t.String(),
});

/** GET /service/:service. */
export const ServiceInfo = t.Object({
  options: ServiceOptionsView,
  health: t.Number({ description: "mean health of checked backends; 1 when none" }),
  backends: t.Array(t.String()),
  stats: t.Union([StatsView, t.Null()]),
});

/** `options` of a backend in GET responses (`weight` = configured weight). */
export const BackendOptionsView = t.Object({
  host: t.String(),
  port: t.Integer(),
  weight: t.Integer(),
  method: t.String(),
  pulse: t.Unknown(),
  vsid: t.String(),
  upper_threshold: t.Integer(),
  lower_threshold: t.Integer(),
  tunnel_type: t.String(),
  tunnel_port: t.Integer(),
  tunnel_checksum: t.String(),
  address: t.String(),
});

/** `metrics` of a backend. */
export const BackendMetricsView = t.Object({
  status: t.Integer({ description: "0 = up (or not checked yet), 1 = down" }),
  state: t.Union([t.Literal("up"), t.Literal("down"), t.Literal("unknown")]),
  health: t.Number(),
  uptime: t.Integer({ description: "seconds" }),
  last_check_ms: t.Union([t.Number(), t.Null()]),
  message: t.String(),
});

/** GET /service/:service/:backend. */
export const BackendInfo = t.Object({
  options: BackendOptionsView,
  metrics: BackendMetricsView,
  effective_weight: t.Integer(),
  stats: t.Union([StatsView, t.Null()]),
  active_conns: t.Union([t.Integer(), t.Null()]),
  inactive_conns: t.Union([t.Integer(), t.Null()]),
  persistent_conns: t.Union([t.Integer(), t.Null()]),
});

/** One element of GET /service?detail=true. */
export const ServiceDetail = t.Composite([
  ServiceInfo,
  t.Object({
    id: t.String(),
    backend_details: t.Array(t.Composite([BackendInfo, t.Object({ id: t.String() })])),
  }),
]);

/** Every error body. */
export const ErrorBody = t.Object({
  error: t.String({ description: "<field>: <problem>, or what went wrong" }),
  code: t.String({ description: "VALIDATION, NOT_FOUND, CONFLICT, KERNEL, UNAUTHORIZED, TOO_LARGE, INTERNAL" }),
});
