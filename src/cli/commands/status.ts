/**
 * `gorb status [SERVICE]`: one table of services and backends with configured and live weight, health, state,
 * connections and rates. `--watch [seconds]` redraws it in place until Ctrl-C.
 */
import { defineCommand } from "citty";
import { withExamples } from "../_command.ts";
import { type RawArgs, boolArg, directArgs, jsonArgs, optionalPositional, serverArgs } from "../_shared.ts";
import { type ServiceDetail, GorbClient, clientOptionsFrom } from "../client.ts";
import { cliContext } from "../context.ts";
import { CliError, UsageError } from "../errors.ts";
import { type StatusService, jsonText, statusTable } from "../format.ts";
import { statusService } from "../views.ts";

/** DEFAULT_WATCH_SECONDS is the refresh interval of a bare --watch. */
export const DEFAULT_WATCH_SECONDS = 2;
/** Move to the top-left corner and clear the screen. */
const CLEAR = "\u001b[H\u001b[2J";

/** One snapshot: the table model and what --json prints. */
export interface StatusSnapshot {
  readonly model: readonly StatusService[];
  readonly json: unknown;
}

/** How --watch was given: not at all, or every `seconds`; a non-number value may be the SERVICE argument. */
export function parseWatch(raw: RawArgs[string], service: string | undefined): { seconds: number | null; service: string | undefined } {
  const value = Array.isArray(raw) ? raw[raw.length - 1] : raw;
  if (value === undefined || value === false) return { seconds: null, service };
  if (value === true || value === "") return { seconds: DEFAULT_WATCH_SECONDS, service };
  const text = String(value).trim();
  if (/^\d+(\.\d+)?$/.test(text)) {
    const seconds = Number(text);
    if (seconds < 0.5 || seconds > 3600) throw new UsageError(`--watch: must be 0.5-3600 seconds, got ${text}`);
    return { seconds, service };
  }
  // `gorb status --watch web`: the flag took the service name as its value.
  if (service === undefined) return { seconds: DEFAULT_WATCH_SECONDS, service: text };
  throw new UsageError(`--watch: expected seconds, got ${JSON.stringify(text)}`);
}

async function daemonSnapshot(args: RawArgs, service: string | undefined): Promise<StatusSnapshot> {
  const ctx = cliContext();
  const api = new GorbClient(clientOptionsFrom(args, ctx.env, ctx.signal));
  let details: ServiceDetail[];
  if (service === undefined) {
    details = await api.listServices();
  } else {
    const info = await api.getService(service);
    const backends = await Promise.all(info.backends.map(async (id) => ({ ...(await api.getBackend(service, id)), id })));
    details = [{ ...info, id: service, backend_details: backends }];
  }
  return { model: details.map(statusService), json: details };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

const status = defineCommand({
  meta: {
    name: "gorb status",
    description: "Show services and backends: weights (configured and live), health, state, connections, rates",
  },
  args: {
    service: { type: "positional", required: false, description: "Only this service (with --direct: tcp:ADDR:PORT or fwmark:N)" },
    watch: {
      type: "string",
      alias: "w",
      description: `Redraw every N seconds until Ctrl-C (default ${DEFAULT_WATCH_SECONDS}); with --json, one JSON line per refresh`,
      valueHint: "seconds",
    },
    ...serverArgs,
    ...directArgs,
    ...jsonArgs,
  },
  async run({ args }) {
    const ctx = cliContext();
    const json = boolArg(args, "json") === true;
    const { seconds, service } = parseWatch(args.watch, optionalPositional(args, "service"));
    const snapshot = async (): Promise<StatusSnapshot> => {
      if (boolArg(args, "direct") === true) return (await import("../direct.ts")).directStatus(service);
      return daemonSnapshot(args, service);
    };
    if (seconds === null) {
      const snap = await snapshot();
      ctx.io.stdout(json ? jsonText(snap.json) : statusTable(snap.model));
      return 0;
    }
    const where = boolArg(args, "direct") === true ? "kernel" : clientOptionsFrom(args, ctx.env).server;
    while (!ctx.signal.aborted) {
      let text: string;
      try {
        const snap = await snapshot();
        text = json ? `${JSON.stringify(snap.json)}\n` : statusTable(snap.model);
      } catch (error) {
        if (ctx.signal.aborted) break;
        if (!(error instanceof CliError)) throw error;
        // Keep watching through a daemon restart: show the error in place of the table.
        text = json ? `${JSON.stringify({ error: error.message })}\n` : `error: ${error.message}\n`;
      }
      if (json) ctx.io.stdout(text);
      else ctx.io.stdout(`${CLEAR}gorb status: ${where}, every ${seconds}s, ${new Date().toLocaleTimeString()} (Ctrl-C to stop)\n\n${text}`);
      await sleep(seconds * 1000, ctx.signal);
    }
    return 0;
  },
});

export default withExamples(status, [
  "gorb status",
  "gorb status web",
  "gorb status --watch 5",
  "gorb status --json",
  "gorb status --direct          # the kernel's table, without the daemon (root)",
]);
