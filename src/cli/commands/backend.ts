/**
 * `gorb backend add|set|rm|show SERVICE NAME`: backends (real servers) of a service and their health checks,
 * through the daemon or, with --direct, as destinations in the kernel's IPVS table (no health checks there).
 */
import { type ArgsDef, defineCommand } from "citty";
import { withExamples, withFlagGroups, withNotes } from "../_command.ts";
import { drain, undrain } from "./drain.ts";
import { backendBody } from "../request-bodies.ts";
import {
  type RawArgs,
  SET_NOTE,
  boolArg,
  defined,
  directArgs,
  intArg,
  jsonArgs,
  positional,
  serverArgs,
  stringArg,
} from "../_shared.ts";
import { GorbClient, backendPath, clientOptionsFrom } from "../client.ts";
import { cliContext } from "../context.ts";
import { UsageError } from "../errors.ts";
import { jsonText } from "../../render/format.ts";
import { backendSummary } from "../views.ts";
import { BACKEND_FIELD_DEFS, DEFAULTS, LIMITS, PULSE_TYPES } from "../../contract/fields.ts";
import { DEFAULT_TIMEOUT_MS, MAX_THRESHOLD, PULSE_ARG_KEYS } from "../../health/options.ts";
import { DEFAULT_EXEC_DIRS } from "../../health/checkers/exec.ts";

const F = BACKEND_FIELD_DEFS;
const range = (r: { readonly min: number; readonly max: number }) => `${r.min}-${r.max}`;

/** Flags for the backend fields (without the pulse): ranges, choices and defaults from the REST contract. */
const backendFieldArgs = {
  host: { type: "string", description: "Backend address or DNS name (required for add)", valueHint: "addr" },
  port: { type: "string", description: "Backend port (default: the service's port)", valueHint: "port" },
  weight: {
    type: "string",
    description: `Weight ${range(LIMITS.weight)} (default ${DEFAULTS.weight}; 0 = drained)`,
    valueHint: "n",
  },
  forward: {
    type: "enum",
    alias: ["method"],
    options: [...F.method.values],
    description: `Forwarding method (default ${DEFAULTS.backendMethod}); --method is the GORB name`,
  },
  "tunnel-type": {
    type: "enum",
    options: [...F.tunnel_type.values],
    description: `Tunnel encapsulation (--forward tunnel; default ${DEFAULTS.tunnelType})`,
  },
  "tunnel-port": { type: "string", description: "GUE destination port (--tunnel-type gue)", valueHint: "port" },
  "tunnel-checksum": {
    type: "enum",
    options: [...F.tunnel_checksum.values],
    description: `Tunnel checksum (gue, gre; default ${DEFAULTS.tunnelChecksum})`,
  },
  "upper-threshold": { type: "string", description: "Stop sending new connections above this many (0 = no limit)", valueHint: "n" },
  "lower-threshold": { type: "string", description: "Resume below this many connections", valueHint: "n" },
  maintenance: {
    type: "boolean",
    description: "Maintenance: weight 0 whatever the health checks say (they keep running); --no-maintenance ends it",
    negativeDescription: "End maintenance",
  },
  "slow-start": {
    type: "string",
    description: "Failover: ramp the weight up over this long after creation or recovery, e.g. 30s (default off, none: turn it off; not for sh/mh)",
    valueHint: "duration",
  },
} satisfies ArgsDef;

/** Flags for the health check (pulse). */
const pulseArgs = {
  pulse: { type: "enum", options: [...PULSE_TYPES], description: `Health check type (default ${DEFAULTS.pulseType})` },
  "pulse-interval": {
    type: "string",
    description: `Time between checks, e.g. 5s, 1m (default ${DEFAULTS.pulseInterval})`,
    valueHint: "duration",
  },
  "pulse-timeout": { type: "string", description: `Time limit of one check, e.g. 2s (default ${DEFAULT_TIMEOUT_MS / 1000}s)`, valueHint: "duration" },
  "pulse-path": { type: "string", description: "HTTP(S) path and query (default /)", valueHint: "path" },
  "pulse-method": { type: "string", description: "HTTP(S) method (default GET)", valueHint: "method" },
  "pulse-expect": { type: "string", description: 'Accepted HTTP status: 200, "200,204", 200-299, 2xx (default 200)', valueHint: "codes" },
  "pulse-host": { type: "string", description: "Check this host instead of the backend's", valueHint: "host" },
  "pulse-port": { type: "string", description: "Check this port instead of the backend's", valueHint: "port" },
  "pulse-rise": { type: "string", description: `Successes in a row to count as up (1-${MAX_THRESHOLD}; default 1)`, valueHint: "n" },
  "pulse-fall": { type: "string", description: `Failures in a row to count as down (1-${MAX_THRESHOLD}; default 1)`, valueHint: "n" },
  "pulse-send": { type: "string", description: "UDP check: the datagram to send (text)", valueHint: "text" },
  "pulse-name": { type: "string", description: "DNS check: the name to query, e.g. example.org (required with --pulse dns)", valueHint: "name" },
  "pulse-command": {
    type: "string",
    description:
      "Exec check: the program (an absolute path under the daemon's --check-exec-dir, default " +
      `${DEFAULT_EXEC_DIRS.join(", ")}) and its arguments, split on spaces (required with --pulse exec)`,
    valueHint: "command",
  },
  "pulse-insecure": { type: "boolean", description: "HTTPS check: do not verify the certificate" },
} satisfies ArgsDef;

/** A pulse as the flags give it: only the parts that were set. */
export interface PulseChange {
  type?: string;
  interval?: string;
  args?: Record<string, unknown>;
}

/** The pulse given by the flags, or null when no pulse flag is set. */
function pulseFromArgs(args: RawArgs): PulseChange | null {
  const pulseArgsGiven = defined({
    path: stringArg(args, "pulse-path"),
    method: stringArg(args, "pulse-method"),
    expect: stringArg(args, "pulse-expect"),
    host: stringArg(args, "pulse-host"),
    port: intArg(args, "pulse-port", LIMITS.port.min, LIMITS.port.max),
    timeout: stringArg(args, "pulse-timeout"),
    rise: intArg(args, "pulse-rise", 1, MAX_THRESHOLD),
    fall: intArg(args, "pulse-fall", 1, MAX_THRESHOLD),
    send: stringArg(args, "pulse-send"),
    name: stringArg(args, "pulse-name"),
    command: stringArg(args, "pulse-command"),
    insecure: boolArg(args, "pulse-insecure"),
  });
  const type = stringArg(args, "pulse");
  const interval = stringArg(args, "pulse-interval");
  if (type === undefined && interval === undefined && Object.keys(pulseArgsGiven).length === 0) return null;
  const change: PulseChange = defined({ type, interval });
  if (Object.keys(pulseArgsGiven).length > 0) change.args = pulseArgsGiven;
  return change;
}

/**
 * A --pulse-* flag the check's type does not read is a usage error: the API drops such an arg (as the original
 * did), so `--pulse-path /health` on a tcp check would leave a check that never asks for the path.
 */
function refuseUnreadPulseArgs(type: unknown, change: PulseChange): void {
  const name = typeof type === "string" ? type.toLowerCase() : "";
  const reads = PULSE_TYPES.find((t) => t === name);
  if (reads === undefined) return;
  for (const key of Object.keys(change.args ?? {})) {
    if (PULSE_ARG_KEYS[reads].includes(key)) continue;
    const readers = PULSE_TYPES.filter((t) => PULSE_ARG_KEYS[t].includes(key));
    throw new UsageError(`--pulse-${key}: a check of type ${reads} does not read it; it is for ${readers.join(", ")} checks (--pulse ${readers[0] ?? ""})`);
  }
}

/** The pulse of a PATCH: the backend's current pulse with the flags laid over it (the API replaces it whole). */
function mergePulse(current: unknown, change: PulseChange): Record<string, unknown> {
  const base = typeof current === "object" && current !== null ? (current as Record<string, unknown>) : {};
  const baseArgs = typeof base.args === "object" && base.args !== null ? (base.args as Record<string, unknown>) : {};
  const merged: Record<string, unknown> = {
    type: change.type ?? base.type ?? DEFAULTS.pulseType,
    interval: change.interval ?? base.interval ?? DEFAULTS.pulseInterval,
  };
  refuseUnreadPulseArgs(merged.type, change);
  const args = { ...baseArgs, ...(change.args ?? {}) };
  if (Object.keys(args).length > 0) merged.args = args;
  return merged;
}

function client(args: RawArgs): GorbClient {
  const ctx = cliContext();
  return new GorbClient({ ...clientOptionsFrom(args, ctx.env, ctx.signal), offersDirect: true });
}

async function direct() {
  return import("../direct.ts");
}

function refusePulseDirect(args: RawArgs): void {
  if (pulseFromArgs(args) !== null) {
    throw new UsageError("health checks (--pulse*) need the daemon; leave them out with --direct");
  }
}

/** A new backend of a service that exists: the service's id is completed with the daemon's (../completion.ts). */
const ids = {
  service: { type: "positional", description: "Service id (with --direct: tcp:ADDR:PORT, ... or fwmark:N)", valueHint: "service" },
  name: { type: "positional", description: "Backend id (with --direct: ADDR[:PORT])" },
} as const;

/** A backend that exists: its id is completed with the service's backend ids, read from the daemon. */
const existingIds = { ...ids, name: { ...ids.name, valueHint: "backend" } } as const;

const add = withExamples(
  defineCommand({
    meta: { name: "gorb backend add", description: "Add a backend to a service", alias: ["create"] },
    args: { ...ids, ...backendFieldArgs, ...pulseArgs, ...serverArgs, ...directArgs },
    async run({ args }) {
      const service = positional(args, "service");
      const name = positional(args, "name");
      if (boolArg(args, "direct") === true) {
        refusePulseDirect(args);
        return (await direct()).backendAdd(service, name, args);
      }
      const body = backendBody(args);
      const pulse = pulseFromArgs(args);
      if (pulse !== null) {
        refuseUnreadPulseArgs(pulse.type ?? DEFAULTS.pulseType, pulse);
        body.pulse = pulse;
      }
      await client(args).request("PUT", backendPath(service, name), body);
      cliContext().log.success(`backend ${service}/${name} added`);
      return 0;
    },
  }),
  [
    "gorb backend add web b1 --host 10.1.0.1 --pulse http",
    "gorb backend add web b2 --host 10.1.0.2 --port 8080 --weight 50 --pulse http --pulse-path /healthz --pulse-interval 5s",
    "gorb backend add web b3 --host 10.1.0.3 --forward tunnel --tunnel-type gue --tunnel-port 6080",
    "gorb backend add tcp:10.0.0.1:80 10.1.0.1:8080 --weight 10 --direct",
  ],
);

/** `backend set`'s flags that name the destination: a backend is not moved in place (a 400 says so). */
const IDENTITY_FLAGS = ["host", "port"] as const satisfies readonly (keyof typeof backendFieldArgs)[];

/** `backend set`'s backend flags: the identity flags described as what they are there, the backend's own. */
const setFieldArgs = {
  ...backendFieldArgs,
  host: { ...backendFieldArgs.host, description: "The backend's address (or a DNS name that gives the same address)" },
  port: { ...backendFieldArgs.port, description: "The backend's port" },
} satisfies ArgsDef;

const set = withNotes(withFlagGroups(withExamples(
  defineCommand({
    meta: { name: "gorb backend set", description: "Change a backend in place (weight, forwarding, thresholds, pulse)", alias: ["update"] },
    args: { ...existingIds, ...setFieldArgs, ...pulseArgs, ...serverArgs, ...directArgs },
    async run({ args }) {
      const service = positional(args, "service");
      const name = positional(args, "name");
      if (boolArg(args, "direct") === true) {
        refusePulseDirect(args);
        return (await direct()).backendSet(service, name, args);
      }
      const body = backendBody(args);
      const pulse = pulseFromArgs(args);
      if (pulse === null && Object.keys(body).length === 0) {
        throw new UsageError("nothing to change: give at least one option", "gorb backend set");
      }
      const api = client(args);
      if (pulse !== null) body.pulse = mergePulse((await api.getBackend(service, name)).options.pulse, pulse);
      await api.request("PATCH", backendPath(service, name), body);
      cliContext().log.success(`backend ${service}/${name} updated`);
      return 0;
    },
  }),
  [
    "gorb backend set web b1 --weight 0          # weight 0 at once (see also gorb backend drain)",
    "gorb backend set web b1 --maintenance       # weight 0 whatever health says; --no-maintenance ends it",
    "gorb backend set web b1 --pulse-interval 10s --pulse-fall 3",
  ],
), [{ heading: "Identity options (they must match the backend: to move it, delete it and add it again)", flags: IDENTITY_FLAGS }]), SET_NOTE);

const rm = withExamples(
  defineCommand({
    meta: { name: "gorb backend rm", description: "Remove a backend from a service", alias: ["delete", "remove"] },
    args: { ...existingIds, ...serverArgs, ...directArgs },
    async run({ args }) {
      const service = positional(args, "service");
      const name = positional(args, "name");
      if (boolArg(args, "direct") === true) return (await direct()).backendRm(service, name);
      await client(args).request("DELETE", backendPath(service, name));
      cliContext().log.success(`backend ${service}/${name} removed`);
      return 0;
    },
  }),
  ["gorb backend rm web b1", "gorb backend rm tcp:10.0.0.1:80 10.1.0.1:8080 --direct"],
);

const show = withExamples(
  defineCommand({
    meta: { name: "gorb backend show", description: "Show a backend: configuration, live weight, health, connections", alias: ["get"] },
    args: { ...existingIds, ...serverArgs, ...directArgs, ...jsonArgs },
    async run({ args }) {
      const service = positional(args, "service");
      const name = positional(args, "name");
      const json = boolArg(args, "json") === true;
      if (boolArg(args, "direct") === true) return (await direct()).backendShow(service, name, json);
      const info = await client(args).getBackend(service, name);
      cliContext().io.stdout(json ? jsonText(info) : backendSummary(service, name, info));
      return 0;
    },
  }),
  ["gorb backend show web b1", "gorb backend show web b1 --json"],
);

export default defineCommand({
  meta: { name: "gorb backend", description: "Manage the backends of a service (add, set, rm, show, drain, undrain)" },
  subCommands: { add, set, rm, show, drain, undrain },
});
