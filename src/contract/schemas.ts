/**
 * TypeBox schemas of the REST contract, built from the field tables in ./fields.ts. Elysia validates request
 * bodies with them (src/api/app.ts) and @elysiajs/openapi generates GET /openapi.json from them; core checks
 * every body against them too (src/core/normalize.ts), whichever way it came (API, configuration file, apply,
 * saved state).
 *
 * PATCH bodies take the same fields, each of which may also be null ("back to the default"). Extension keywords
 * word errors in gorb's way (src/contract/check.ts): `x-problem` says what a value must be (and, with
 * `x-problem-any-type`, a value of another type too), `x-range` overrides the range an integer's error shows.
 * Another, `x-default`, carries a field's default as data for clients (the web UI's placeholders); it is not
 * `default`, which Elysia would fill in (see fieldSchema).
 */
import { Type, type TObject, type TSchema } from "@sinclair/typebox";
import { MIN_INTERVAL_MS, PULSE_ARG_KEYS, PULSE_ARG_MAX_LENGTH, PULSE_LIST_ARGS, PULSE_TYPES } from "../health/options.ts";
import { BACKEND_FIELD_DEFS, DEFAULTS, DRAIN_FIELD_DEFS, DRAIN_THEN, ERROR_CODES, LIMITS, MAX_LENGTH, SERVICE_FIELD_DEFS, SORRY_METHODS, type FieldDef } from "./fields.ts";

/** Every args key any pulse type reads. */
const PULSE_ARG_NAMES = [...new Set(Object.values(PULSE_ARG_KEYS).flat())];

/** A pulse arg: text capped in length, or (for numeric and boolean args) a number or a boolean. */
function pulseArg(name: string): TSchema {
  const maxLength = PULSE_ARG_MAX_LENGTH[name] ?? 255;
  const maxItems = PULSE_LIST_ARGS[name];
  const list = maxItems === undefined ? [] : [Type.Array(Type.String({ maxLength }), { maxItems })];
  return Type.Union([Type.String({ maxLength }), Type.Number(), Type.Boolean(), ...list], {
    description: `used by ${Object.entries(PULSE_ARG_KEYS)
      .filter(([, keys]) => keys.includes(name))
      .map(([type]) => type)
      .join(", ")}; at most ${maxLength} characters`,
  });
}

/** `pulse`: {type, interval, args}; args a type does not read are dropped before validation. */
const PulseBody = Type.Object(
  {
    type: Type.Optional(
      Type.Union(PULSE_TYPES.map((v) => Type.Literal(v)), { description: `probe type (default: "${DEFAULTS.pulseType}")`, "x-default": DEFAULTS.pulseType }),
    ),
    interval: Type.Optional(
      Type.String({ maxLength: MAX_LENGTH.pulseInterval, description: `time between checks: 5s, 1m, 2h, 500ms (at least ${MIN_INTERVAL_MS}ms)` }),
    ),
    args: Type.Optional(
      Type.Object(Object.fromEntries(PULSE_ARG_NAMES.map((n) => [n, Type.Optional(pulseArg(n))])), {
        description: "probe arguments; keys are exact-case, unknown ones are dropped",
      }),
    ),
  },
  { description: "health check", "x-problem": 'must be an object such as {"type":"tcp","interval":"5s"}' },
);

/** `sorry_server`: {host, port, method}; host is an IP address of the service's family (checked by core). */
const SorryServerBody = Type.Object(
  {
    // Optional here so a non-object is reported as one; core requires it ("sorry_server.host: is required").
    host: Type.Optional(
      Type.String({ maxLength: MAX_LENGTH.host, pattern: "^[0-9A-Fa-f.:]+$", "x-problem": "must be an IP address", description: "IP address (required)" }),
    ),
    port: Type.Optional(Type.Integer({ minimum: LIMITS.port.min, maximum: LIMITS.port.max, description: "default: the service's port; with method dr or ipip only the service's port" })),
    method: Type.Optional(
      Type.Union(SORRY_METHODS.map((v) => Type.Literal(v)), { description: `forwarding method (default: "${DEFAULTS.sorryMethod}")`, "x-default": DEFAULTS.sorryMethod }),
    ),
  },
  { description: "sorry server", "x-problem": 'must be an object such as {"host":"10.0.0.9","port":80}' },
);

/** The TypeBox schema of one field. */
function fieldSchema(def: FieldDef): TSchema {
  // Defaults go into the description, not a `default` keyword: Elysia would fill those in before core sees
  // the body, and "left out" must stay distinguishable from "given" (e.g. persistence_timeout needs persistent).
  const meta =
    def.default === undefined
      ? { description: def.description }
      : { description: `${def.description} (default: ${JSON.stringify(def.default)})`, "x-default": def.default };
  switch (def.kind) {
    case "integer":
      return Type.Integer({
        minimum: def.min,
        maximum: def.max,
        ...(def.rangeText === undefined ? {} : { "x-range": def.rangeText }),
        ...meta,
      });
    case "boolean":
      return Type.Boolean(meta);
    case "enum":
      return Type.Union(
        def.values.map((v) => Type.Literal(v)),
        meta,
      );
    case "string":
      return Type.String({
        maxLength: def.maxLength,
        ...(def.pattern === undefined ? {} : { pattern: def.pattern }),
        ...(def.problem === undefined ? {} : { "x-problem": def.problem }),
        ...(def.problemOfAnyType === true ? { "x-problem-any-type": true } : {}),
        ...meta,
      });
    case "pulse":
      return PulseBody;
    case "server":
      return SorryServerBody;
  }
}

function bodySchema(defs: Readonly<Record<string, FieldDef>>, nullable: boolean, description: string): TObject {
  const properties: Record<string, TSchema> = {};
  for (const [name, def] of Object.entries(defs)) {
    const schema = fieldSchema(def);
    properties[name] = Type.Optional(nullable ? Type.Union([schema, Type.Null()], { description: def.description }) : schema);
  }
  return Type.Object(properties, { description });
}

const CASE = "Keys match case-insensitively; unknown keys are ignored and not kept.";

/** Body of PUT /service/:service. */
export const ServiceBody = bodySchema(SERVICE_FIELD_DEFS, false, `A virtual service. ${CASE}`);
/** Body of PATCH /service/:service: the fields to change; null puts one back to its default. */
export const ServicePatchBody = bodySchema(SERVICE_FIELD_DEFS, true, `Fields to change; null = default. ${CASE}`);
/** Body of PUT /service/:service/:backend. */
export const BackendBody = bodySchema(BACKEND_FIELD_DEFS, false, `A backend. ${CASE} vsid is accepted and dropped.`);
/** Body of PATCH /service/:service/:backend. */
export const BackendPatchBody = bodySchema(BACKEND_FIELD_DEFS, true, `Fields to change; null = default. ${CASE}`);

/**
 * Body of POST /apply: {"services": {id: {...service fields, "backends": {id: {...backend fields}}}}}. Unlike
 * PUT, an unknown key is refused (in a file a typo would otherwise go unnoticed); the checks name the path.
 */
const ApplyBody = Type.Object(
  {
    services: Type.Record(
      Type.String(),
      Type.Composite([
        Type.Partial(ServiceBody),
        Type.Object({ backends: Type.Optional(Type.Record(Type.String(), Type.Partial(BackendBody))) }),
      ]),
      { description: "service id -> service (required; the empty set is {})" },
    ),
  },
  { description: "a declarative set of services" },
);

/** IPVS counters and rates. */
const StatsView = Type.Object({
  conns: Type.Number(),
  in_pkts: Type.Number(),
  out_pkts: Type.Number(),
  in_bytes: Type.Number(),
  out_bytes: Type.Number(),
  cps: Type.Number(),
  in_pps: Type.Number(),
  out_pps: Type.Number(),
  in_bps: Type.Number(),
  out_bps: Type.Number(),
});

/** The resolved address, next to the fields (with defaults) of a view. */
const ADDRESS = Type.String({ description: "the address the host resolved to" });

/** `options` of GET /service/:service: every service field with its value or default. */
const ServiceOptionsView = Type.Object({
  host: Type.String(),
  port: Type.Integer(),
  protocol: Type.String({ description: '"" for a fwmark service' }),
  method: Type.String(),
  flags: Type.String(),
  persistent: Type.Boolean(),
  persistence_timeout: Type.Integer(),
  persistence_netmask: Type.Integer(),
  fwmark: Type.Integer({ description: "0 for an address service" }),
  family: Type.String(),
  pe: Type.String(),
  one_packet: Type.Boolean(),
  panic_threshold: Type.Integer(),
  announce_min_healthy: Type.Integer(),
  hash_fallback: Type.Boolean(),
  sorry_server: Type.Union([
    Type.Object({ host: Type.String(), port: Type.Integer(), method: Type.String() }),
    Type.Null(),
  ]),
  quorum: Type.Integer(),
  hysteresis: Type.Integer(),
  quorum_up: Type.String(),
  quorum_down: Type.String(),
  address: ADDRESS,
});

/** GET /service/:service. */
export const ServiceInfo = Type.Object({
  options: ServiceOptionsView,
  health: Type.Number({ description: "mean health of the checked backends; 1 when none" }),
  backends: Type.Array(Type.String()),
  stats: Type.Union([StatsView, Type.Null()]),
  in_kernel: Type.Optional(
    Type.Boolean({
      description: "false while the kernel does not have the service (refused at restore, or missing and not put back yet): not exposed until a reconcile adds it",
    }),
  ),
  panic: Type.Optional(
    Type.Boolean({ description: "true while the service is in panic mode (more than panic_threshold percent of its backends down: weights kept)" }),
  ),
  quorum_up: Type.Optional(Type.Boolean({ description: "false while the service is down (below quorum, or no backend up with a sorry server)" })),
  sorry: Type.Optional(Type.Boolean({ description: "true while the sorry server serves in place of the backends" })),
  healthy: Type.Optional(Type.Integer({ description: "backends counted for the quorum: up, with configured weight > 0" })),
});

/** `options` of GET /service/:service/:backend (`weight` is the configured weight). */
const BackendOptionsView = Type.Object({
  host: Type.String(),
  port: Type.Integer(),
  weight: Type.Integer(),
  method: Type.String(),
  pulse: Type.Object({
    type: Type.String(),
    interval: Type.String(),
    args: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
  }),
  vsid: Type.String({ description: "the service id (GORB compatibility)" }),
  upper_threshold: Type.Integer(),
  lower_threshold: Type.Integer(),
  tunnel_type: Type.String(),
  tunnel_port: Type.Integer(),
  tunnel_checksum: Type.String(),
  slow_start: Type.String({ description: '"" when off' }),
  address: ADDRESS,
  maintenance: Type.Boolean({ description: "operator override: effective weight 0 while true" }),
});

/** `metrics` of a backend. */
const BackendMetricsView = Type.Object({
  status: Type.Integer({ description: "0 = up (or not checked yet), 1 = down" }),
  state: Type.Union([Type.Literal("up"), Type.Literal("down"), Type.Literal("unknown")]),
  health: Type.Number(),
  uptime: Type.Integer({ description: "seconds" }),
  last_check_ms: Type.Union([Type.Number(), Type.Null()]),
  message: Type.String(),
});

/** Body of POST /service/:service/:backend/drain. */
export const DrainBody = bodySchema(DRAIN_FIELD_DEFS, false, `Drain a backend: weight 0 now, then wait for its connections to end. ${CASE}`);

/** A drain as GET and POST .../drain show it. */
export const DrainView = Type.Object(
  {
    state: Type.Union([Type.Literal("draining"), Type.Literal("drained")], {
      description: "draining: waiting for connections to end; drained: ended with then=keep, held at weight 0",
    }),
    started: Type.String({ description: "ISO 8601" }),
    deadline: Type.String({ description: "ISO 8601: the drain ends then even if connections remain" }),
    then: Type.Union(DRAIN_THEN.map((v) => Type.Literal(v))),
    seconds_left: Type.Integer({ description: "until the deadline; 0 once passed or drained" }),
    node: Type.Union([Type.String(), Type.Null()], { description: "the fleet node that started it (it decides the end); null on one node" }),
    others: Type.Optional(
      Type.Union([Type.Object({ active: Type.Integer(), inactive: Type.Integer() }), Type.Null()], {
        description:
          "fleet, on the node that started it: the other live nodes' connections left, as it last read them once its own had ended " +
          "(null: a node has not said yet); absent on one node, on the other nodes and before it asked",
      }),
    ),
  },
  { description: "a drain in progress or held" },
);

/** GET /service/:service/:backend. */
export const BackendInfo = Type.Object({
  options: BackendOptionsView,
  metrics: BackendMetricsView,
  effective_weight: Type.Integer(),
  stats: Type.Union([StatsView, Type.Null()]),
  active_conns: Type.Union([Type.Integer(), Type.Null()]),
  inactive_conns: Type.Union([Type.Integer(), Type.Null()]),
  persistent_conns: Type.Union([Type.Integer(), Type.Null()]),
  drain: Type.Optional(Type.Union([DrainView, Type.Null()])),
});

/** GET /service: ids, or with ?detail=true every service with its backends. */
const ServiceList = Type.Union([
  Type.Array(Type.String()),
  Type.Array(
    Type.Composite([
      ServiceInfo,
      Type.Object({ id: Type.String(), backend_details: Type.Array(Type.Composite([BackendInfo, Type.Object({ id: Type.String() })])) }),
    ]),
  ),
]);

/** One change of an apply or a repair of a reconcile, as reported. */
const Change = Type.Object({}, { additionalProperties: true });

/** POST /apply's answer. */
export const ApplyReportView = Type.Object(
  { changes: Type.Array(Change) },
  { additionalProperties: true, description: "the plan and, unless dry_run, each change's outcome" },
);

/** POST /reconcile's answer. */
export const ReconcileReportView = Type.Object({ repairs: Type.Array(Change) }, { description: "every difference found" });

/** Every error body. */
export const ErrorBody = Type.Object({
  error: Type.String({ description: "<field>: <problem>, or what went wrong" }),
  code: Type.String({ description: ERROR_CODES.join(", ") }),
  field: Type.Optional(
    Type.String({ description: "VALIDATION (and POST /apply's CONFLICT): the field or path the error is about, as in `error`" }),
  ),
  path: Type.Optional(
    Type.Array(Type.Union([Type.String(), Type.Integer()]), {
      description: "POST /apply's VALIDATION or CONFLICT about a path of the set: its segments (services, web, backends, b1, port)",
    }),
  ),
  errno: Type.Optional(Type.String({ description: "KERNEL: the errno name the kernel answered (EPERM, ENOMEM)" })),
  etag: Type.Optional(Type.String({ description: "PRECONDITION_FAILED: the object's current entity tag (its ETag), which the If-Match did not name" })),
});

/** The schemas the OpenAPI document names under components.schemas. */
export const NAMED_SCHEMAS = {
  ServiceBody,
  ServicePatchBody,
  BackendBody,
  BackendPatchBody,
  PulseBody,
  ApplyBody,
  ServiceInfo,
  ServiceList,
  BackendInfo,
  ErrorBody,
  DrainBody,
  DrainView,
} as const;
