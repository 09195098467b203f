/**
 * A configuration document's top level: the server settings (every `gorb serve` option under its flag's name in
 * snake_case, see ./schema.ts) checked as the flags they stand for, and the `services` value handed to a reader.
 */
import { DATE_OR_TIME, describeValue, isDateValue } from "../contract/json-values.ts";
import { PathError } from "../core/path.ts";
import { DaemonOptionError, parseDaemonOptions, type DaemonFlags } from "./daemon-options.ts";
import { mapping, refuseUnknown } from "./mapping.ts";

/** The server settings of the file, by key, with the DaemonFlags field each one fills and its type. */
const SETTINGS = {
  listen: { flag: "listen", type: "string" },
  interface: { flag: "interface", type: "string" },
  flush: { flag: "flush", type: "boolean" },
  consul: { flag: "consul", type: "string" },
  verbose: { flag: "verbose", type: "boolean" },
  vip_interface: { flag: "vipInterface", type: "string" },
  token: { flag: "token", type: "secret" },
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
  consul_token: { flag: "consulToken", type: "secret" },
  consul_token_file: { flag: "consulTokenFile", type: "string" },
  unknown_destinations: { flag: "unknownDestinations", type: "string" },
  max_services: { flag: "maxServices", type: "count" },
  max_backends: { flag: "maxBackends", type: "count" },
  probe_marks: { flag: "probeMarks", type: "string" },
  ui: { flag: "ui", type: "boolean" },
  bgp_bird_socket: { flag: "bgpBirdSocket", type: "string" },
  bgp_include: { flag: "bgpInclude", type: "string" },
  bgp_protocol: { flag: "bgpProtocol", type: "string" },
  bgp_hold_down: { flag: "bgpHoldDown", type: "hold-down" },
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

/** DaemonOptionError's flag ("vip-interface") -> the file's key ("vip_interface"). */
function settingOfFlag(flag: string): string {
  return flag.replaceAll("-", "_");
}

/** What a value is, without the value itself. */
function kindOf(value: unknown): string {
  if (Array.isArray(value)) return "a list";
  if (isDateValue(value)) return DATE_OR_TIME;
  return typeof value === "object" ? "a mapping" : `a ${typeof value}`;
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
      case "secret":
        // The value is not repeated: the message goes to the terminal, and to the journal on SIGHUP.
        if (typeof value !== "string") throw new PathError([key], `must be a string (quote it), got ${kindOf(value)}`);
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
      case "hold-down":
        // 0 as a number too, as for the interval (YAML, TOML and JSON read `0` as one).
        if (typeof value !== "string" && value !== 0) {
          throw new PathError([key], `must be a duration such as "3s" (0: none), got ${describeValue(value)}`);
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
    throw new PathError([settingOfFlag(error.flag)], error.problemAs(settingOfFlag), { cause: error });
  }
  return settings;
}

/**
 * The keys of the settings whose values differ between two readings of a configuration file (at start, and at a
 * SIGHUP), in SETTINGS' order; a secret is named, never shown.
 */
export function changedSettings(before: DaemonFlags, after: DaemonFlags): string[] {
  return (Object.entries(SETTINGS) as [SettingKey, (typeof SETTINGS)[SettingKey]][]).filter(([, spec]) => before[spec.flag] !== after[spec.flag]).map(([key]) => key);
}

/** The settings of a document, and its `services` read by `services` (null when the document has none). */
export function readDocument<S>(doc: unknown, services: (value: unknown) => S): { readonly flags: DaemonFlags; readonly services: S | null } {
  if (doc === null || doc === undefined) return { flags: {}, services: null };
  const top = mapping(doc, [], "settings");
  refuseUnknown(top, CONFIG_KEYS, [], false);
  const flags = readSettings(top);
  return { flags, services: Object.hasOwn(top, "services") ? services(top.services) : null };
}
