/**
 * `gorb apply -f FILE`: make the daemon's file-owned services match the `services` of a configuration file
 * (create, update in place, re-create, delete); services created over the API, and services gorb does not
 * manage, are left alone. `--dry-run` (or `gorb diff`) only shows the changes.
 *
 * A large set can keep the daemon busy for a long time, so the request has no time limit: the client waits as
 * long as the daemon is alive (./liveness.ts), prints a progress line to stderr every few seconds, and reports
 * the daemon's real outcome. Only when the daemon goes away mid-request does it fail, saying so (exit 3) and how to
 * see what was applied.
 */
import { defineCommand } from "citty";
import { withExamples } from "../_command.ts";
import { type RawArgs, boolArg, jsonArgs, serverArgs, stringArg } from "../_shared.ts";
import { GorbClient, LostContactError, clientOptionsFrom } from "../client.ts";
import { cliContext } from "../context.ts";
import { CliError, UsageError } from "../errors.ts";
import { postApply, printReport, readDeclaredFile } from "../declarative.ts";

/** -f FILE, shared with `gorb diff`. */
export const fileArgs = {
  file: {
    type: "string",
    alias: "f",
    description: "Configuration file with a services: section (.yaml, .yml, .json or .toml)",
    valueHint: "file",
  },
} as const;

/** Run apply or diff. */
export async function runDeclarative(args: RawArgs, command: string, dryRun: boolean): Promise<number> {
  const ctx = cliContext();
  const path = stringArg(args, "file");
  if (path === undefined) throw new UsageError("missing -f FILE", command);
  const file = await readDeclaredFile(path, command);
  const what = `${count(file.services.services, "service")} and ${count(file.services.backends, "backend")} of ${file.file}`;
  const onWaiting = (elapsedMs: number): void =>
    ctx.io.stderr(`waiting for gorb to ${dryRun ? "plan" : "apply"} ${what}: ${Math.round(elapsedMs / 1000)}s (the daemon is up)\n`);
  const api = new GorbClient({ ...clientOptionsFrom(args, ctx.env, ctx.signal), wait: { onWaiting } });
  try {
    const report = await postApply(api, file, dryRun);
    return printReport(ctx.io, report, boolArg(args, "json") === true, file.file);
  } catch (error) {
    if (!(error instanceof LostContactError) || dryRun) throw error;
    throw new CliError(error.exitCode, `${error.message}: see what is in place with \`gorb diff -f ${file.file}\``, { cause: error });
  }
}

/** "10,000 backends" (digits grouped by hand: the Intl data behind toLocaleString is costly to load in a short run). */
function count(n: number, noun: string): string {
  return `${String(n).replace(/\B(?=(\d{3})+$)/g, ",")} ${noun}${n === 1 ? "" : "s"}`;
}

const apply = defineCommand({
  meta: {
    name: "gorb apply",
    description: "Make the daemon's services match a file's services: section (create, update in place, re-create, delete)",
  },
  args: {
    ...fileArgs,
    "dry-run": { type: "boolean", description: "Only show what would change (same as gorb diff)" },
    ...serverArgs,
    ...jsonArgs,
  },
  run: ({ args }) => runDeclarative(args, "gorb apply", boolArg(args, "dry-run") === true),
});

export default withExamples(apply, [
  "gorb apply -f /etc/gorb/services.yaml",
  "gorb apply -f services.toml --dry-run",
  "gorb apply -f services.json --json",
]);
