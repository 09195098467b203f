/**
 * The client side of `gorb apply` and `gorb diff`: read the file and check its syntax and settings locally, send its
 * services to POST /apply, and print the changes. The daemon checks the services (with the same code the file's
 * check uses) before it changes anything; a path it refuses (a bad field, a name that does not resolve, a
 * conflict) is traced back to its line in the file.
 * Loaded with every command (completion, --help), so the reading code is imported only when used.
 */
import type { ApplyReport, ChangeReport } from "../core/apply.ts";
import type { DeclaredFile, ServicesToSend } from "../config/declared.ts";
import type { GorbClient } from "./client.ts";
import { ApiError, CliError, EXIT, UsageError } from "./errors.ts";
import { jsonText } from "../render/format.ts";
import { table } from "../render/table.ts";

/** The configuration file's declared services; a file that cannot be read or parsed is one line with its location (exit 2). */
export async function readDeclaredFile(path: string, command: string): Promise<DeclaredFile & { services: ServicesToSend }> {
  const { ConfigError, loadDeclaredFile } = await import("../config/declared.ts");
  let file: DeclaredFile;
  try {
    file = await loadDeclaredFile(path);
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(EXIT.USAGE, error.message, { cause: error });
    throw error;
  }
  if (file.services === null) {
    throw new UsageError(`${path} declares no services (no "services" key); an empty set is "services: {}"`, command);
  }
  return { ...file, services: file.services };
}

/** POST /apply; an error about a path of the set (the answer's `path`) names the file and the line too. */
export async function postApply(api: GorbClient, file: DeclaredFile & { services: ServicesToSend }, dryRun: boolean): Promise<ApplyReport> {
  try {
    const path = `/apply${dryRun ? "?dry_run=true" : ""}`;
    return await api.requestObject<ApplyReport>("POST", path, "an apply report", { changes: "list" }, { services: file.services.body });
  } catch (error) {
    if (!(error instanceof ApiError) || error.path?.[0] !== "services") throw error;
    const [{ lineOfPath }, { readFile }] = await Promise.all([import("../config/locate.ts"), import("node:fs/promises")]);
    const line = lineOfPath(await readFile(file.file, "utf8").catch(() => ""), file.format, error.path);
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
