/**
 * `gorb backend drain SERVICE NAME [--timeout 5m] [--then remove|keep] [--no-wait]` and `gorb backend undrain
 * SERVICE NAME`: the connection drain of POST/DELETE /service/:service/:backend/drain. Without --no-wait, drain
 * shows a live progress line (connections left, time to the deadline) read from GET of the backend every
 * second, until the backend is removed or held at weight 0. Ctrl-C stops watching; the drain goes on.
 */
import { defineCommand } from "citty";
import { withExamples } from "../_command.ts";
import { type RawArgs, boolArg, choiceArg, defined, positional, serverArgs, sleep, stringArg } from "../_shared.ts";
import { type BackendInfo, GorbClient, backendPath, clientOptionsFrom } from "../client.ts";
import { cliContext } from "../context.ts";
import { CliError, EXIT } from "../errors.ts";
import { DRAIN, DRAIN_THEN } from "../../contract/fields.ts";

/** A backend that exists (its ids completed from the daemon's: valueHint "service" and "backend", ../completion.ts). */
const ids = {
  service: { type: "positional", description: "Service id", valueHint: "service" },
  name: { type: "positional", description: "Backend id", valueHint: "backend" },
} as const;

function client(args: RawArgs): GorbClient {
  const ctx = cliContext();
  return new GorbClient(clientOptionsFrom(args, ctx.env, ctx.signal));
}

/** The progress line of a draining backend. */
function drainProgressLine(service: string, name: string, info: BackendInfo): string {
  const drain = info.drain;
  if (drain === undefined || drain === null) return `${service}/${name}: not draining`;
  const conns = `${info.active_conns ?? "?"} active, ${info.inactive_conns ?? "?"} inactive`;
  if (drain.state === "drained") return `${service}/${name}: drained, held at weight 0`;
  const m = Math.floor(drain.seconds_left / 60);
  const s = String(drain.seconds_left % 60).padStart(2, "0");
  // In a fleet, once this node's connections have ended it waits for the other nodes' (the drain's `others`).
  const others =
    drain.others === undefined ? "" : drain.others === null ? " (other nodes: not all have said yet)" : ` (other nodes: ${drain.others.active} active, ${drain.others.inactive} inactive)`;
  return `${service}/${name}: draining, ${conns} connection(s) left${others}, ${m}:${s} to the deadline, then ${drain.then}`;
}

/** Watch a drain until it ends; the exit code. */
async function watch(api: GorbClient, service: string, name: string, started: string | null): Promise<number> {
  const ctx = cliContext();
  const tty = ctx.io.isTTY;
  let last = "";
  // What the drain was to do when it ends, as last seen: a backend gone while its drain was to keep it was deleted
  // by someone else, not removed by the drain.
  let then = started;
  for (;;) {
    if (ctx.signal.aborted) {
      ctx.io.stderr("\n");
      ctx.log.info(`stopped watching; the drain of ${service}/${name} goes on (gorb backend show ${service} ${name})`);
      return EXIT.INTERRUPTED;
    }
    let info: BackendInfo;
    try {
      info = await api.getBackend(service, name);
    } catch (error) {
      if (error instanceof CliError && error.exitCode === EXIT.NOT_FOUND) {
        if (tty) ctx.io.stderr("\n");
        if (then !== "remove") throw new CliError(EXIT.NOT_FOUND, `backend ${service}/${name} was deleted while it drained, not by its drain (it was to keep it): ${error.message}`);
        ctx.log.success(`backend ${service}/${name} drained and removed`);
        return 0;
      }
      throw error;
    }
    then = info.drain?.then ?? then;
    const line = drainProgressLine(service, name, info);
    if (line !== last) ctx.io.stderr(tty ? `\r\u001b[2K${line}` : `${line}\n`);
    last = line;
    if (info.drain === undefined || info.drain === null) {
      if (tty) ctx.io.stderr("\n");
      throw new CliError(EXIT.CONFLICT, `the drain of ${service}/${name} was cancelled`);
    }
    if (info.drain.state === "drained") {
      if (tty) ctx.io.stderr("\n");
      ctx.log.success(`backend ${service}/${name} drained; kept at weight 0 (gorb backend undrain ${service} ${name} brings it back)`);
      return 0;
    }
    await sleep(1000, ctx.signal);
  }
}

export const drain = withExamples(
  defineCommand({
    meta: { name: "gorb backend drain", description: "Drain a backend: weight 0 now, wait for its connections to end (or the timeout), then remove or keep it" },
    args: {
      ...ids,
      timeout: { type: "string", description: `Longest wait for the connections to end: 30s, 5m, 2h (default ${DRAIN.timeout})`, valueHint: "duration" },
      then: { type: "enum", options: [...DRAIN_THEN], description: `When the drain ends: remove the backend or keep it at weight 0 (default ${DRAIN.then})` },
      wait: { type: "boolean", default: true, description: "Show the drain's progress until it ends", negativeDescription: "Return at once" },
      ...serverArgs,
    },
    async run({ args }) {
      const service = positional(args, "service");
      const name = positional(args, "name");
      const body = defined({ timeout: stringArg(args, "timeout"), then: choiceArg(args, "then", DRAIN_THEN) });
      const api = client(args);
      const started = await api.request("POST", `${backendPath(service, name)}/drain`, body);
      if (boolArg(args, "wait") === false) {
        cliContext().log.success(`backend ${service}/${name} is draining`);
        return 0;
      }
      const then = typeof started === "object" && started !== null && "then" in started && typeof started.then === "string" ? started.then : null;
      return watch(api, service, name, then);
    },
  }),
  ["gorb backend drain web b1                      # wait up to 5m, then remove", "gorb backend drain web b1 --timeout 30m --then keep --no-wait"],
);

export const undrain = withExamples(
  defineCommand({
    meta: { name: "gorb backend undrain", description: "Cancel a backend's drain (or end a kept one): its weight comes back" },
    args: { ...ids, ...serverArgs },
    async run({ args }) {
      const service = positional(args, "service");
      const name = positional(args, "name");
      const api = client(args);
      // Said as it was: the DELETE answers the same whether a drain was cancelled or there was none.
      const before = await api.getBackend(service, name);
      await api.request("DELETE", `${backendPath(service, name)}/drain`);
      const was = before.drain === undefined || before.drain === null ? "was not drained: nothing to cancel" : "is no longer drained";
      cliContext().log.success(`backend ${service}/${name} ${was}`);
      return 0;
    },
  }),
  ["gorb backend undrain web b1"],
);
