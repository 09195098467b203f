/**
 * `gorb status [SERVICE]`: one table of services and backends with configured and live weight, health, state,
 * connections and rates.
 *
 * `--watch` follows the daemon's event stream (GET /events, ../event-stream.ts): it prints the status once,
 * then reads it again and redraws whenever an event says something changed (a burst of events is one read),
 * and after a lost connection comes back or a `resync`. Connections and rates change without events: `--watch N`
 * also re-reads every N seconds (0.5-3600; `--watch -1` is a usage error). With --direct there is no daemon and no
 * events: the kernel's table is read every N seconds (default 2). An error before the first table that the command
 * would end with without --watch (a SERVICE not found, a refused request) ends the watch too (endsWatch).
 *
 * `--cluster` (a daemon started with --store etcd://): every node of the fleet from GET /cluster, with the
 * revision it has applied, whether it has converged and its store's state, then the services a node could not
 * apply (and since which revision), then the backends that are up on one node and down on another.
 */
import { defineCommand } from "citty";
import { withExamples } from "../_command.ts";
import { type RawArgs, boolArg, directArgs, jsonArgs, optionalPositional, serverArgs, sleep } from "../_shared.ts";
import { type ClientOptions, type ServiceDetail, GorbClient, clientOptionsFrom } from "../client.ts";
import { type CliContext, cliContext } from "../context.ts";
import { CliError, EXIT, UsageError } from "../errors.ts";
import { type StreamEvent, followEvents } from "../event-stream.ts";
import { jsonText, statusTable } from "../../render/format.ts";
import { table } from "../../render/table.ts";
import { statusText } from "../../render/status.ts";
import { fetchBgp } from "../bgp-view.ts";
import { bgpTable } from "../../render/bgp.ts";

/** The refresh interval of a bare --watch with --direct. */
const DEFAULT_DIRECT_SECONDS = 2;
/** Move to the top-left corner and clear the screen. */
const CLEAR = "\u001b[H\u001b[2J";

/** One snapshot: the table (rendered on demand) and what --json prints. */
interface StatusSnapshot {
  table(): string;
  /** The table as the daemon sent it (UTF-8), when it did: written out without decoding. */
  readonly bytes?: Uint8Array;
  readonly json: unknown;
}

/** How --watch was given: not at all, bare, or with seconds; a non-number value may be the SERVICE argument. */
function parseWatch(
  raw: RawArgs[string],
  service: string | undefined,
): { watch: boolean; seconds: number | null; service: string | undefined } {
  const value = Array.isArray(raw) ? raw[raw.length - 1] : raw;
  if (value === undefined || value === false) return { watch: false, seconds: null, service };
  if (value === true || value === "") return { watch: true, seconds: null, service };
  const text = String(value).trim();
  // A number, or one with a sign (`--watch -1`): meant as seconds, whatever its value.
  if (/^\d+(\.\d+)?$/.test(text) || /^[-+]\.?\d/.test(text)) {
    const seconds = Number(text);
    if (!(seconds >= 0.5 && seconds <= 3600)) {
      throw new UsageError(`--watch: must be 0.5-3600 seconds, got ${Number.isFinite(seconds) ? text : JSON.stringify(text)}`);
    }
    return { watch: true, seconds, service };
  }
  // `gorb status --watch web`: the flag took the service name as its value.
  if (service === undefined) return { watch: true, seconds: null, service: text };
  throw new UsageError(`--watch: expected seconds, got ${JSON.stringify(text)}`);
}

/**
 * The daemon's status. The whole table comes rendered by the daemon (GET /service with Accept: text/plain, with the
 * BGP section under it when the daemon announces VIPs: one request): its code is warm, and the CLI then neither
 * parses GET /service?detail=true (9 MB of JSON for 1,000 x 10) nor formats it, nor decodes the text: its bytes go
 * to stdout as they came (decoding and encoding again cost about 150 ms of 1.4 s in the emulated guest).
 * --json, one service, and a daemon too old to render (it answers JSON) take the JSON and render here.
 */
async function daemonSnapshot(client: ClientOptions, service: string | undefined, json: boolean): Promise<StatusSnapshot> {
  const api = new GorbClient(client);
  if (!json && service === undefined) {
    const bytes = await api.getTextBytes("/service?detail=true");
    if (bytes !== null) return { table: () => new TextDecoder().decode(bytes), bytes, json: null };
  }
  let details: ServiceDetail[];
  if (service === undefined) {
    details = await api.listServices();
  } else {
    const info = await api.getService(service);
    details = [{ ...info, id: service, backend_details: await api.getBackends(service, info.backends) }];
  }
  return { table: () => statusText(details), json: details };
}

/**
 * Whether an error ends a watch that has not shown a table yet (`shown` false), as it ends `gorb status` without
 * --watch: the SERVICE named does not exist, or the request is refused. Once a table was shown (the service deleted
 * while watched), and for a daemon not reached, the error is shown in place of the table and the watch goes on.
 */
function endsWatch(error: CliError, shown: boolean): boolean {
  return !shown && (error.exitCode === EXIT.NOT_FOUND || error.exitCode === EXIT.REJECTED || error.exitCode === EXIT.USAGE);
}

/** Writes frames of a watch: the table under a header line (cleared screen), or one JSON line. */
function screen(ctx: CliContext, json: boolean, heading: string) {
  return {
    show(snap: StatusSnapshot) {
      if (json) ctx.io.stdout(`${JSON.stringify(snap.json)}\n`);
      else ctx.io.stdout(`${CLEAR}${heading}, ${new Date().toLocaleTimeString()} (Ctrl-C to stop)\n\n${snap.table()}`);
    },
    /** An error in place of the table: the watch goes on (the daemon may come back). */
    error(error: CliError) {
      if (json) ctx.io.stdout(`${JSON.stringify({ error: error.message })}\n`);
      else ctx.io.stdout(`${CLEAR}${heading}, ${new Date().toLocaleTimeString()} (Ctrl-C to stop)\n\nerror: ${error.message}\n`);
    },
  };
}

/** The service an event is about, or null (resync, or an event of no service). */
function serviceOf(event: StreamEvent): string | null {
  const data = event.data;
  if (typeof data !== "object" || data === null) return null;
  const service = (data as { service?: unknown }).service;
  return typeof service === "string" ? service : null;
}

/** --watch against the daemon: redraw on events (and every `seconds`, when given) until Ctrl-C. */
async function watchDaemon(ctx: CliContext, client: ClientOptions, service: string | undefined, json: boolean, seconds: number | null) {
  const every = seconds === null ? "" : `, counters every ${seconds}s`;
  const out = screen(ctx, json, `gorb status: ${client.server}, following events${every}`);
  // Stops on Ctrl-C, or on an unexpected error (a bug) in a read, which is then thrown.
  const stop = new AbortController();
  const signal = AbortSignal.any([ctx.signal, stop.signal]);
  let failure: { readonly error: unknown } | null = null;
  // One read at a time; what asks for one while it runs gets one more read after it (a burst is one read).
  let running: Promise<void> | null = null;
  let again = false;
  let shown = false;
  const read = async () => {
    do {
      again = false;
      try {
        out.show(await daemonSnapshot({ ...client, signal }, service, json));
        shown = true;
      } catch (error) {
        if (signal.aborted) return;
        if (!(error instanceof CliError) || endsWatch(error, shown)) {
          failure = { error };
          stop.abort();
          return;
        }
        out.error(error);
      }
    } while (again && !signal.aborted);
  };
  const refresh = () => {
    if (running !== null) {
      again = true;
      return;
    }
    running = read().finally(() => {
      running = null;
    });
  };
  const ticker = (async () => {
    if (seconds === null) return;
    for (;;) {
      await sleep(seconds * 1000, signal);
      if (signal.aborted) return;
      refresh();
    }
  })();
  try {
    await followEvents(
      { server: client.server, token: client.token, offersDirect: client.offersDirect === true, signal },
      {
        onOpen: refresh,
        onEvent: (event) => {
          const about = serviceOf(event);
          if (service === undefined || event.type === "resync" || about === null || about === service) refresh();
        },
        onError: (error) => out.error(error),
      },
    );
  } finally {
    stop.abort();
    await ticker;
    // The last read ends with the signal; nothing is printed after returning.
    while (running !== null) await running;
  }
  if (failure !== null) throw (failure as { readonly error: unknown }).error;
}

interface ClusterAnswer {
  readonly node: string;
  readonly revision: number;
  readonly store: { readonly state: string; readonly appliedRevision: number; readonly lastError: string | null };
  readonly nodes: readonly {
    readonly node: string;
    readonly address: string;
    readonly version: string;
    readonly startedAt: string;
    readonly appliedRevision: number;
    readonly store: string;
    readonly converged: boolean;
    /** The services the node could not apply, from `revision` on (absent: none, or an older gorb). */
    readonly failed?: readonly { readonly service: string; readonly revision: number }[];
    /** The node's connections to each backend being drained, by "service/backend" (absent: none, or an older gorb). */
    readonly drains?: Readonly<Record<string, { readonly deadline: string; readonly active: number; readonly inactive: number }>>;
  }[];
  /** Why the nodes' records could not be read (etcd does not answer); absent or null when they were. */
  readonly nodes_error?: string | null;
  readonly health_splits: readonly { readonly service: string; readonly backend: string; readonly up: string[]; readonly down: string[] }[];
}

/**
 * The fleet as text: one row per node, then the services a node could not apply, the backends being drained (each
 * node's connections left), and the backends whose health differs between nodes.
 */
function clusterText(c: ClusterAnswer): string {
  const store = c.store.state === "ok" ? "ok" : `DEGRADED${c.store.lastError === null ? "" : `: ${c.store.lastError}`}`;
  let out = `asked node ${c.node}: store ${store}, latest change of the services at revision ${c.revision}\n\n`;
  if (c.nodes_error !== undefined && c.nodes_error !== null) return `${out}the nodes are not known: ${c.nodes_error}\n`;
  out += table(
    ["NODE", "ADDRESS", "VERSION", "APPLIED", "CONVERGED", "STORE", "STARTED"],
    c.nodes.map((n) => [n.node, n.address, n.version, String(n.appliedRevision), n.converged ? "yes" : "NO", n.store, n.startedAt]),
  );
  const failed = c.nodes.flatMap((n) => (n.failed ?? []).map((f) => [n.node, f.service, String(f.revision)]));
  if (failed.length > 0) {
    out += `\nservices a node could not apply (its kernel refused them; tried again with the next change and each relist):\n`;
    out += table(["NODE", "SERVICE", "SINCE REVISION"], failed);
  }
  const drains = c.nodes.flatMap((n) => Object.entries(n.drains ?? {}).map(([path, d]) => [path, n.node, String(d.active), String(d.inactive), d.deadline]));
  if (drains.length > 0) {
    out += `\nbackends being drained, by node (the drain ends once every node has none left, or at its deadline):\n`;
    out += table(["BACKEND", "NODE", "ACTIVE", "INACTIVE", "DEADLINE"], drains.sort((x, y) => (x[0] as string).localeCompare(y[0] as string)), ["left", "left", "right", "right", "left"]);
  }
  if (c.health_splits.length > 0) {
    out += `\nbackends whose health differs between nodes (each node drains from its own checks):\n`;
    out += table(["BACKEND", "UP ON", "DOWN ON"], c.health_splits.map((s) => [`${s.service}/${s.backend}`, s.up.join(","), s.down.join(",")]));
  }
  return out;
}

const status = defineCommand({
  meta: {
    name: "gorb status",
    description: "Show services and backends: weights (configured and live), health, state, connections, rates",
  },
  args: {
    service: { type: "positional", required: false, description: "Only this service (with --direct: tcp:ADDR:PORT or fwmark:N)", valueHint: "service" },
    watch: {
      type: "string",
      alias: "w",
      description:
        "Redraw on every change (the daemon's event stream) until Ctrl-C; with N, also every N seconds (connections, " +
        `rates; --direct: every N seconds, default ${DEFAULT_DIRECT_SECONDS}); with --json, one JSON line per redraw`,
      valueHint: "[seconds]",
    },
    cluster: { type: "boolean", description: "The fleet (a daemon with --store etcd://): every node, its applied revision, health that differs" },
    ...serverArgs,
    ...directArgs,
    ...jsonArgs,
  },
  async run({ args }) {
    const ctx = cliContext();
    const json = boolArg(args, "json") === true;
    const daemon = (): ClientOptions => ({ ...clientOptionsFrom(args, ctx.env, ctx.signal), offersDirect: true });
    if (boolArg(args, "cluster") === true) {
      if (optionalPositional(args, "service") !== undefined || args.watch !== undefined || boolArg(args, "direct") === true) {
        throw new UsageError("--cluster shows every node of the fleet: it takes no SERVICE, --watch or --direct");
      }
      const shape = { store: "object", nodes: "list", health_splits: "list" } as const;
      const answer = await new GorbClient(daemon()).requestObject<ClusterAnswer>("GET", "/cluster", "the fleet's state", shape);
      ctx.io.stdout(json ? jsonText(answer) : clusterText(answer));
      return 0;
    }
    const direct = boolArg(args, "direct") === true;
    const { watch, seconds, service } = parseWatch(args.watch, optionalPositional(args, "service"));
    const snapshot = async (): Promise<StatusSnapshot> => {
      if (direct) {
        const kernel = await (await import("../direct.ts")).directStatus(service);
        return { table: () => statusTable(kernel.model), json: kernel.json };
      }
      return daemonSnapshot(daemon(), service, json);
    };
    if (!watch) {
      const snap = await snapshot();
      if (json) {
        ctx.io.stdout(jsonText(snap.json));
        return 0;
      }
      ctx.io.stdout(snap.bytes ?? snap.table());
      // The daemon renders the BGP section (when it announces VIPs) under the table it answers; a daemon older than
      // that answered JSON, and its section comes from GET /bgp.
      if (!direct && service === undefined && snap.bytes === undefined) {
        const bgp = await fetchBgp(new GorbClient(daemon()));
        if (bgp !== null) ctx.io.stdout(`\n${bgpTable(bgp)}`);
      }
      return 0;
    }
    if (!direct) {
      await watchDaemon(ctx, daemon(), service, json, seconds);
      return 0;
    }
    const interval = seconds ?? DEFAULT_DIRECT_SECONDS;
    const out = screen(ctx, json, `gorb status: kernel, every ${interval}s`);
    let shown = false;
    while (!ctx.signal.aborted) {
      try {
        out.show(await snapshot());
        shown = true;
      } catch (error) {
        if (ctx.signal.aborted) break;
        if (!(error instanceof CliError) || endsWatch(error, shown)) throw error;
        out.error(error);
      }
      await sleep(interval * 1000, ctx.signal);
    }
    return 0;
  },
});

export default withExamples(status, [
  "gorb status",
  "gorb status web",
  "gorb status --watch           # redraw on every change",
  "gorb status --watch 5         # ... and every 5 s for connections and rates",
  "gorb status --json",
  "gorb status --cluster        # every node of the fleet (--store etcd://)",
  "gorb status --direct          # the kernel's table, without the daemon (root)",
]);
