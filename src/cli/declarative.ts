/**
 * The client side of `gorb apply` and `gorb diff`: read and check the file locally (so a bad file is refused
 * with its line before the daemon is asked), send its services to POST /apply, and print the changes.
 * A path the daemon refuses (a name that does not resolve, a conflict) is traced back to its line in the file.
 * Loaded with every command (completion, --help), so the checking code is imported only when used.
 */
import type { ApplyReport, ChangeReport } from "../core/apply.ts";
import type { Fields } from "../core/fields.ts";
import type { DeclaredService } from "../core/plan.ts";
import type { ConfigFile } from "../config/load.ts";
import type { GorbClient } from "./client.ts";
import { CliError, EXIT, UsageError } from "./errors.ts";
import { jsonText } from "../render/format.ts";
import { table } from "../render/table.ts";

/** The configuration file's declared services, checked; a bad file is one line with its location (exit 2). */
export async function readDeclaredFile(path: string, command: string): Promise<ConfigFile & { services: readonly DeclaredService[] }> {
  const { ConfigError, loadConfigFile } = await import("../config/load.ts");
  let file: ConfigFile;
  try {
    file = await loadConfigFile(path);
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(EXIT.USAGE, error.message, { cause: error });
    throw error;
  }
  if (file.services === null) {
    throw new UsageError(`${path} declares no services (no "services" key); an empty set is "services: {}"`, command);
  }
  return { ...file, services: file.services };
}

/** The JSON body of POST /apply for declared services: each one's checked fields, in the order they were read. */
function applyBody(services: readonly DeclaredService[], objectOf: (fields: Fields) => Record<string, unknown>): { services: Record<string, unknown> } {
  const out: Record<string, unknown> = {};
  for (const s of services) {
    const backends: Record<string, unknown> = {};
    for (const b of s.backends) backends[b.id] = objectOf(b.fields);
    const body = objectOf(s.fields);
    body.backends = backends;
    out[s.id] = body;
  }
  return { services: out };
}

/** POST /apply; an error about a path of the set names the file and the line too. */
export async function postApply(api: GorbClient, file: ConfigFile, dryRun: boolean): Promise<ApplyReport> {
  const services = file.services ?? [];
  // Loaded already by the file's check (readDeclaredFile); imported here so --help and completion do not load it.
  const { objectOf } = await import("../core/fields.ts");
  try {
    return (await api.request("POST", `/apply${dryRun ? "?dry_run=true" : ""}`, applyBody(services, objectOf))) as ApplyReport;
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    const match = /^(services[^:\s]*): /.exec(error.message);
    if (match === null) throw error;
    const [{ parsePath }, { lineOfPath }, { readFile }] = await Promise.all([
      import("../core/path.ts"),
      import("../config/locate.ts"),
      import("node:fs/promises"),
    ]);
    const path = parsePath(match[1] ?? "");
    if (path === null) throw error;
    const line = lineOfPath(await readFile(file.file, "utf8").catch(() => ""), file.format, path);
    throw new CliError(error.exitCode, `${file.file}${line === null ? "" : `:${line}`}: ${error.message}`, { cause: error });
  }
}

function target(change: Pick<ChangeReport, "service" | "backend">): string {
  return change.backend === null ? change.service : `${change.service}/${change.backend}`;
}

/** The changes as a table (ACTION, SERVICE[/BACKEND], DETAILS[, RESULT]). */
function changesTable(report: ApplyReport): string {
  const rows = report.changes.map((c) => {
    const row = [c.action, target(c), c.details.join("; ")];
    if (!report.dry_run) row.push(c.status === "failed" ? `FAILED: ${c.error ?? ""}` : c.status);
    return row;
  });
  return table(report.dry_run ? ["ACTION", "TARGET", "DETAILS"] : ["ACTION", "TARGET", "DETAILS", "RESULT"], rows);
}

/** Print a report (text or JSON) and return the exit code: 7 when a change failed. */
export function printReport(io: { stdout(text: string): void }, report: ApplyReport, json: boolean, file: string): number {
  if (json) io.stdout(jsonText(report));
  else if (report.changes.length === 0) io.stdout(`no changes: gorb already matches ${file}\n`);
  else {
    io.stdout(changesTable(report));
    const failed = report.changes.filter((c) => c.status === "failed").length;
    const n = report.changes.length;
    if (report.dry_run) io.stdout(`\n${n} change${n === 1 ? "" : "s"} to apply (nothing was changed)\n`);
    else io.stdout(`\n${n - failed} change${n - failed === 1 ? "" : "s"} applied${failed > 0 ? `, ${failed} failed` : ""}\n`);
  }
  return report.ok ? EXIT.OK : EXIT.SERVER;
}
