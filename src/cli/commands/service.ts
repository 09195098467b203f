/**
 * `gorb service add|set|rm|ls|show`: virtual services, through the daemon's REST API or, with --direct, in the
 * kernel's IPVS table (see ../direct.ts).
 */
import { type ArgsDef, defineCommand } from "citty";
import { withExamples, withFlagGroups, withNotes } from "../_command.ts";
import { serviceBody } from "../request-bodies.ts";
import {
  type RawArgs,
  SET_NOTE,
  boolArg,
  directArgs,
  jsonArgs,
  positional,
  serverArgs,
} from "../_shared.ts";
import { GorbClient, clientOptionsFrom, servicePath } from "../client.ts";
import { cliContext } from "../context.ts";
import { UsageError } from "../errors.ts";
import { jsonText, statusTable } from "../../render/format.ts";
import { table } from "../../render/table.ts";
import { serviceSummary } from "../views.ts";
import { serviceAddress, serviceMarkers, statusBackend } from "../../render/status.ts";
import { DEFAULTS, LIMITS, SCHED_FLAG_NAMES, SERVICE_FIELD_DEFS, SORRY_METHODS } from "../../contract/fields.ts";
import { NETMASK_RANGE } from "../../ipvs/constants.ts";

const F = SERVICE_FIELD_DEFS;
const range = (r: { readonly min: number; readonly max: number }) => `${r.min}-${r.max}`;

/** Flags for every service field: names, ranges, choices and defaults from the REST contract. */
const serviceFieldArgs = {
  host: {
    type: "string",
    description: "Virtual address or DNS name (default: the first address of the daemon's -i interface)",
    valueHint: "addr",
  },
  port: { type: "string", description: `Port ${range(LIMITS.port)} (required unless --fwmark)`, valueHint: "port" },
  protocol: { type: "enum", options: [...F.protocol.values], description: `Protocol (default ${DEFAULTS.protocol})` },
  // A string, not an enum: a scheduler matches in any case ("SH"); the choices in valueHint complete it.
  method: { type: "string", description: `Scheduler (default ${DEFAULTS.scheduler})`, valueHint: F.method.values.join("|") },
  flags: {
    type: "string",
    description: `Scheduler flags joined by | or ,: ${Object.keys(SCHED_FLAG_NAMES).join(", ")} (none: clear them)`,
    valueHint: "flags",
  },
  persistent: {
    type: "boolean",
    description: "Client persistence (implied by --persistence-timeout, --netmask, --pe)",
    negativeDescription: "Turn persistence off",
  },
  "persistence-timeout": {
    type: "string",
    description: `Persistence timeout in seconds (default ${DEFAULTS.persistenceTimeout})`,
    valueHint: "seconds",
  },
  netmask: {
    type: "string",
    description: `Persistence granularity as a prefix length (${range(NETMASK_RANGE.inet)} for IPv4, ${range(NETMASK_RANGE.inet6)} for IPv6)`,
    valueHint: "prefix",
  },
  fwmark: { type: "string", description: `Firewall-mark service (${range(LIMITS.fwmark)}) instead of host/port/protocol`, valueHint: "mark" },
  family: { type: "enum", options: [...F.family.values], description: `Address family (fwmark services; default ${DEFAULTS.fwmarkFamily})` },
  pe: { type: "enum", options: [...F.pe.values], description: "Persistence engine" },
  "one-packet": {
    type: "boolean",
    description: "One-packet scheduling (udp and fwmark services)",
    negativeDescription: "Turn one-packet scheduling off",
  },
  "panic-threshold": {
    type: "string",
    description: `Percent of backends that may be down at once before health checks stop draining (${range(LIMITS.panicThreshold)}; default ${DEFAULTS.panicThreshold} = off)`,
    valueHint: "percent",
  },
  "announce-min-healthy": {
    type: "string",
    description: `BGP: backends that must be up for this node to announce the VIP (${range(LIMITS.announceMinHealthy)}; default ${DEFAULTS.announceMinHealthy}; 0 = never)`,
    valueHint: "count",
  },
  "sorry-server": {
    type: "string",
    description: "Failover: IP[:PORT] serving alone while the service is down (none: remove it)",
    valueHint: "addr",
  },
  "sorry-method": { type: "enum", options: [...SORRY_METHODS], description: `Sorry server forwarding (default ${DEFAULTS.sorryMethod})` },
  quorum: {
    type: "string",
    description: `Failover: healthy backends the service needs to be up (${range(LIMITS.quorum)}; default ${DEFAULTS.quorum} = off)`,
    valueHint: "count",
  },
  hysteresis: {
    type: "string",
    description: `Failover: down below quorum - hysteresis, up again at quorum + hysteresis (default ${DEFAULTS.hysteresis})`,
    valueHint: "count",
  },
  "quorum-up": { type: "string", description: `Program under the daemon's --hook-dir run when the service comes up (none: no program)`, valueHint: "path" },
  "quorum-down": { type: "string", description: `Program under the daemon's --hook-dir run when the service goes down (none: no program)`, valueHint: "path" },
} satisfies ArgsDef;


function client(args: RawArgs): GorbClient {
  const ctx = cliContext();
  return new GorbClient({ ...clientOptionsFrom(args, ctx.env, ctx.signal), offersDirect: true });
}

async function direct() {
  return import("../direct.ts");
}

const nameArg = {
  name: { type: "positional", description: "Service id (with --direct: tcp:ADDR:PORT, udp:..., sctp:... or fwmark:N)" },
} as const;

/** The id of a service that exists: completed with the daemon's service ids (valueHint "service", ../completion.ts). */
const existingNameArg = { name: { ...nameArg.name, valueHint: "service" } } as const;

const add = withExamples(
  defineCommand({
    meta: { name: "gorb service add", description: "Create a virtual service", alias: ["create"] },
    args: { ...nameArg, ...serviceFieldArgs, ...serverArgs, ...directArgs },
    async run({ args }) {
      const name = positional(args, "name");
      if (boolArg(args, "direct") === true) return (await direct()).serviceAdd(name, args);
      await client(args).request("PUT", servicePath(name), serviceBody(args));
      cliContext().log.success(`service ${name} created`);
      return 0;
    },
  }),
  [
    "gorb service add web --host 10.0.0.1 --port 80",
    "gorb service add dns --host 10.0.0.53 --port 53 --protocol udp --method sh --flags sh-port",
    "gorb service add sticky --host 10.0.0.2 --port 443 --persistent --persistence-timeout 600",
    "gorb service add marked --fwmark 7 --method rr",
    "gorb service add tcp:10.0.0.1:80 --method rr --direct",
  ],
);

/**
 * The flags that say which kernel service a service is: `service set` takes them only as they are (the API refuses a
 * change, 400: delete it and create it again), so its --help lists them apart.
 */
const IDENTITY_FLAGS = ["host", "port", "protocol", "fwmark", "family"] as const satisfies readonly (keyof typeof serviceFieldArgs)[];

/** `service set`'s service flags: the identity flags described as what they are there, the service's own. */
const setFieldArgs = {
  ...serviceFieldArgs,
  host: { ...serviceFieldArgs.host, description: "The service's virtual address (or a DNS name of it)" },
  port: { ...serviceFieldArgs.port, description: "The service's port" },
  protocol: { ...serviceFieldArgs.protocol, description: "The service's protocol" },
  fwmark: { ...serviceFieldArgs.fwmark, description: "The service's firewall mark" },
  family: { ...serviceFieldArgs.family, description: "The service's address family (fwmark services; with --direct, of fwmark:N)" },
} satisfies ArgsDef;

const set = withNotes(withFlagGroups(withExamples(
  defineCommand({
    meta: { name: "gorb service set", description: "Change a virtual service in place (scheduler, flags, persistence)", alias: ["update"] },
    args: { ...existingNameArg, ...setFieldArgs, ...serverArgs, ...directArgs },
    async run({ args }) {
      const name = positional(args, "name");
      if (boolArg(args, "direct") === true) return (await direct()).serviceSet(name, args);
      const body = serviceBody(args);
      if (Object.keys(body).length === 0) throw new UsageError("nothing to change: give at least one option", "gorb service set");
      await client(args).request("PATCH", servicePath(name), body);
      cliContext().log.success(`service ${name} updated`);
      return 0;
    },
  }),
  ["gorb service set web --method lc", "gorb service set web --no-persistent"],
), [{ heading: "Identity options (they must match the service: to change one, delete the service and add it again)", flags: IDENTITY_FLAGS }]), SET_NOTE);

const rm = withExamples(
  defineCommand({
    meta: { name: "gorb service rm", description: "Remove a virtual service and all its backends", alias: ["delete", "remove"] },
    args: { ...existingNameArg, ...serverArgs, ...directArgs },
    async run({ args }) {
      const name = positional(args, "name");
      if (boolArg(args, "direct") === true) return (await direct()).serviceRm(name);
      await client(args).request("DELETE", servicePath(name));
      cliContext().log.success(`service ${name} removed`);
      return 0;
    },
  }),
  ["gorb service rm web", "gorb service rm tcp:10.0.0.1:80 --direct"],
);

const ls = withExamples(
  defineCommand({
    meta: { name: "gorb service ls", description: "List virtual services", alias: ["list"] },
    args: { ...serverArgs, ...directArgs, ...jsonArgs },
    async run({ args }) {
      const json = boolArg(args, "json") === true;
      if (boolArg(args, "direct") === true) return (await direct()).serviceLs(json);
      const services = await client(args).listServices();
      const { io } = cliContext();
      if (json) {
        io.stdout(jsonText(services.map(({ backend_details: _, ...rest }) => rest)));
        return 0;
      }
      if (services.length === 0) {
        io.stdout("no services\n");
        return 0;
      }
      const rows = services.map((s) => [
        s.id,
        serviceAddress(s.options),
        s.options.method + (s.options.flags !== "" ? ` (${s.options.flags})` : ""),
        s.options.persistent ? `${s.options.persistence_timeout}s` : "-",
        String(s.backends.length),
        s.health.toFixed(2),
      ]);
      io.stdout(table(["NAME", "ADDRESS", "SCHEDULER", "PERSIST", "BACKENDS", "HEALTH"], rows, ["left", "left", "left", "right", "right", "right"]));
      return 0;
    },
  }),
  ["gorb service ls", "gorb service ls --json", "gorb service ls --direct"],
);

const show = withExamples(
  defineCommand({
    meta: { name: "gorb service show", description: "Show a virtual service, its health and its backends", alias: ["get"] },
    args: { ...existingNameArg, ...serverArgs, ...directArgs, ...jsonArgs },
    async run({ args }) {
      const name = positional(args, "name");
      const json = boolArg(args, "json") === true;
      if (boolArg(args, "direct") === true) return (await direct()).serviceShow(name, json);
      const api = client(args);
      const info = await api.getService(name);
      const { io } = cliContext();
      if (json) {
        io.stdout(jsonText(info));
        return 0;
      }
      io.stdout(serviceSummary(name, info));
      if (info.backends.length > 0) {
        const backends = (await api.getBackends(name, info.backends)).map((b) => statusBackend(b.id, b));
        io.stdout("\n");
        io.stdout(
          statusTable([
            { name, address: serviceAddress(info.options), scheduler: info.options.method, health: info.health, stats: info.stats, backends, markers: serviceMarkers(info) },
          ]),
        );
      }
      return 0;
    },
  }),
  ["gorb service show web", "gorb service show web --json", "gorb service show tcp:10.0.0.1:80 --direct"],
);

export default defineCommand({
  meta: { name: "gorb service", description: "Manage virtual services (add, set, rm, ls, show)" },
  subCommands: { add, set, rm, ls, show },
});
