/**
 * The configuration document: every `gorb serve` option under its flag's name in snake_case, and optionally
 * the declarative `services` with their `backends`, whose fields are the REST API's:
 *
 *   listen: "127.0.0.1:4672"        interface: eth0          flush: false
 *   consul: http://127.0.0.1:8500   vip_interface: lo        token: secret
 *   body_limit: 64k                 state: true              state_dir: /var/lib/gorb
 *   reconcile_interval: 30s         token_file: /etc/gorb/token   allow: [10.0.0.0/8]
 *   allow_origin: https://ops.example.com   max_connections: 256
 *   tls_cert: /etc/gorb/cert.pem    tls_key: /etc/gorb/key.pem
 *   consul_token_file: /etc/gorb/consul-token
 *   max_services: 1000              max_backends: 20000   ui: true
 *   bgp_bird_socket: /run/bird/bird.ctl   bgp_include: /run/gorb/bird-vips.conf
 *   bgp_protocol: gorb_vips         bgp_hold_down: 3s        bgp_keep_on_exit: false
 *   services:
 *     web:                          # the service id, as in PUT /service/web
 *       host: 10.0.0.1              # PUT /service/web's body
 *       port: 80
 *       backends:
 *         b1: { host: 10.1.0.1, port: 8080, pulse: { type: http, interval: 5s } }
 *
 * An unknown key is refused (a typo would otherwise go unnoticed). Every value is checked here, without I/O;
 * the services by ./services.ts. An error is a PathError naming the path.
 */
import { isPlainJson } from "../contract/check.ts";
import { describeValue, objectOf } from "../core/fields.ts";
import { PathError } from "../core/path.ts";
import type { DeclaredService } from "../core/plan.ts";
import { DaemonOptionError, parseDaemonOptions, type DaemonFlags } from "./daemon-options.ts";
import { mapping, readServices, refuseUnknown } from "./services.ts";

/** The server settings of the file, by key, with the DaemonFlags field each one fills and its type. */
const SETTINGS = {
  listen: { flag: "listen", type: "string" },
  interface: { flag: "interface", type: "string" },
  flush: { flag: "flush", type: "boolean" },
  consul: { flag: "consul", type: "string" },
  verbose: { flag: "verbose", type: "boolean" },
  vip_interface: { flag: "vipInterface", type: "string" },
  token: { flag: "token", type: "string" },
  body_limit: { flag: "bodyLimit", type: "size" },
  state: { flag: "state", type: "boolean" },
  state_dir: { flag: "stateDir", type: "string" },
  reconcile_interval: { flag: "reconcileInterval", type: "interval" },
  token_file: { flag: "tokenFile", type: "string" },
  allow: { flag: "allow", type: "list" },
  allow_origin: { flag: "allowOrigin", type: "list" },
  max_connections: { flag: "maxConnections", type: "count" },
  tls_cert: { flag: "tlsCert", type: "string" },
  tls_key: { flag: "tlsKey", type: "string" },
  consul_token: { flag: "consulToken", type: "string" },
  consul_token_file: { flag: "consulTokenFile", type: "string" },
  max_services: { flag: "maxServices", type: "count" },
  max_backends: { flag: "maxBackends", type: "count" },
  probe_marks: { flag: "probeMarks", type: "string" },
  ui: { flag: "ui", type: "boolean" },
  bgp_bird_socket: { flag: "bgpBirdSocket", type: "string" },
  bgp_include: { flag: "bgpInclude", type: "string" },
  bgp_protocol: { flag: "bgpProtocol", type: "string" },
  bgp_hold_down: { flag: "bgpHoldDown", type: "string" },
  bgp_keep_on_exit: { flag: "bgpKeepOnExit", type: "boolean" },
  store: { flag: "store", type: "string" },
  node_id: { flag: "nodeId", type: "string" },
  etcd_ca: { flag: "etcdCa", type: "string" },
  etcd_cert: { flag: "etcdCert", type: "string" },
  etcd_key: { flag: "etcdKey", type: "string" },
  etcd_user: { flag: "etcdUser", type: "string" },
  etcd_password_file: { flag: "etcdPasswordFile", type: "string" },
  ipvs_sysctls: { flag: "ipvsSysctls", type: "boolean" },
  hook_dir: { flag: "hookDir", type: "string" },
  check_exec_dir: { flag: "checkExecDir", type: "list" },
} as const satisfies Record<string, { flag: keyof DaemonFlags; type: string }>;

type SettingKey = keyof typeof SETTINGS;

/** The file's keys at the top level. */
export const CONFIG_KEYS: readonly string[] = [...Object.keys(SETTINGS), "services"];

/** What a configuration document holds. */
export interface ConfigDocument {
  /** The server settings, as the flags they stand for (checked; flags given on the command line win). */
  readonly flags: DaemonFlags;
  /** The declared services; null when the document has no `services` key. */
  readonly services: readonly DeclaredService[] | null;
}

/** DaemonOptionError's flag ("vip-interface") -> the file's key ("vip_interface"). */
function settingOfFlag(flag: string): string {
  return flag.replaceAll("-", "_");
}

function readSettings(doc: Record<string, unknown>): DaemonFlags {
  const flags: Record<string, string | boolean> = {};
  for (const [key, spec] of Object.entries(SETTINGS) as [SettingKey, (typeof SETTINGS)[SettingKey]][]) {
    if (!Object.hasOwn(doc, key) || doc[key] === null) continue;
    const value = doc[key];
    switch (spec.type) {
      case "boolean":
        if (typeof value !== "boolean") throw new PathError([key], `must be true or false, got ${describeValue(value)}`);
        flags[spec.flag] = value;
        break;
      case "string":
        if (typeof value !== "string") throw new PathError([key], `must be a string, got ${describeValue(value)}`);
        flags[spec.flag] = value;
        break;
      case "size":
        if (typeof value !== "string" && !(typeof value === "number" && Number.isInteger(value))) {
          throw new PathError([key], `must be a size such as 64k or a number of bytes, got ${describeValue(value)}`);
        }
        flags[spec.flag] = String(value);
        break;
      case "list":
        if (typeof value === "string") flags[spec.flag] = value;
        else if (Array.isArray(value) && value.every((item) => typeof item === "string")) flags[spec.flag] = value.join(",");
        else throw new PathError([key], `must be a string or a list of strings, got ${describeValue(value)}`);
        break;
      case "count":
        if (!(typeof value === "number" && Number.isInteger(value)) && !(typeof value === "string" && /^(\d+|unlimited)$/.test(value))) {
          throw new PathError([key], `must be a whole number (max_services, max_backends: or "unlimited"), got ${describeValue(value)}`);
        }
        flags[spec.flag] = String(value);
        break;
      case "interval":
        if (typeof value !== "string" && value !== 0) {
          throw new PathError([key], `must be a duration such as "30s" (0 or "off": never), got ${describeValue(value)}`);
        }
        flags[spec.flag] = String(value);
        break;
    }
  }
  const settings = flags as DaemonFlags;
  try {
    parseDaemonOptions(settings);
  } catch (error) {
    if (!(error instanceof DaemonOptionError)) throw error;
    const problem = error.message.slice(`--${error.flag}: `.length);
    throw new PathError([settingOfFlag(error.flag)], problem, { cause: error });
  }
  return settings;
}

/** Check a parsed configuration document (null = an empty file). Throws PathError naming the path. */
export function readConfigDocument(doc: unknown): ConfigDocument {
  return readDocument(doc, readServices);
}

function readDocument<S>(doc: unknown, services: (value: unknown) => S): { readonly flags: DaemonFlags; readonly services: S | null } {
  if (doc === null || doc === undefined) return { flags: {}, services: null };
  const top = mapping(doc, [], "settings");
  refuseUnknown(top, CONFIG_KEYS, [], false);
  const flags = readSettings(top);
  return { flags, services: Object.hasOwn(top, "services") ? services(top.services) : null };
}

/** The `services` of a document as POST /apply takes them, for the daemon to check (see readServicesToSend). */
export interface ServicesToSend {
  /** The `services` value of POST /apply's body. */
  readonly body: Readonly<Record<string, unknown>>;
  /** How many services and backends it declares (for progress lines). */
  readonly services: number;
  readonly backends: number;
}

/** How deep a declared set's plain values may nest (services.ID.backends.ID.pulse.args.expect.status[]). */
const SET_DEPTH = 12;

/**
 * A document's settings checked, and its `services` left for the daemon to check (`gorb apply`): the daemon checks
 * a set with the same code (./services.ts) before it changes anything, and its errors name the path, which the
 * client traces back to the line; checking 10,000 backends in the client as well was a fifth of an apply. The
 * set is sent as it was read when it holds only JSON values; a YAML or TOML value JSON cannot carry (NaN, a date)
 * would turn into something else on the way, so such a set is checked here, and what was read is sent.
 */
export function readServicesToSend(doc: unknown): { readonly flags: DaemonFlags; readonly services: ServicesToSend | null } {
  return readDocument(doc, (value): ServicesToSend => {
    const set = value === null ? {} : mapping(value, ["services"], "service ids to services");
    if (!isPlainJson(set, SET_DEPTH)) {
      const checked = readServices(set);
      const body: Record<string, unknown> = {};
      for (const s of checked) {
        const backends: Record<string, unknown> = {};
        for (const b of s.backends) backends[b.id] = objectOf(b.fields);
        body[s.id] = { ...objectOf(s.fields), backends };
      }
      return { body, services: checked.length, backends: checked.reduce((n, s) => n + s.backends.length, 0) };
    }
    let backends = 0;
    for (const service of Object.values(set)) {
      if (typeof service !== "object" || service === null) continue;
      for (const [key, value] of Object.entries(service)) {
        if (key.toLowerCase() === "backends" && typeof value === "object" && value !== null) backends += Object.keys(value).length;
      }
    }
    return { body: set, services: Object.keys(set).length, backends };
  });
}
