/**
 * `gorb apply -f FILE`: make the daemon's file-owned services match the `services` of a configuration file
 * (create, update in place, re-create, delete); services created over the API, and services gorb does not
 * manage, are left alone. `--dry-run` (or `gorb diff`) only shows the changes.
 */
import { defineCommand } from "citty";
import { withExamples } from "../_command.ts";
import { type RawArgs, boolArg, jsonArgs, serverArgs, stringArg } from "../_shared.ts";
import { GorbClient, clientOptionsFrom } from "../client.ts";
import { cliContext } from "../context.ts";
import { UsageError } from "../errors.ts";
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
  const api = new GorbClient(clientOptionsFrom(args, ctx.env, ctx.signal));
  const report = await postApply(api, file, dryRun);
  return printReport(ctx.io, report, boolArg(args, "json") === true, file.file);
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
