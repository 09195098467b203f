/**
 * What an apply reports, and the PATCH body that makes a record's fields exactly a declared set. Gorb runs a
 * plan (./plan.ts) under its lock: every change's edits, then one kernel batch for all of them, then one commit.
 * A change the kernel refuses is undone (its edits, and in the kernel) and reported with why; the others stay
 * (services are independent). Applying the same set again finishes the job.
 */
import type { Fields } from "./fields.ts";
import type { ChangeAction, PlannedChange } from "./plan.ts";
import { fieldsToJson } from "./state.ts";

/** One change of an apply report. */
export interface ChangeReport {
  readonly action: ChangeAction;
  readonly service: string;
  readonly backend: string | null;
  readonly details: readonly string[];
  /** "planned" in a dry run; "done" or "failed" otherwise. */
  readonly status: "planned" | "done" | "failed";
  /** Why it failed. */
  readonly error?: string;
}

/** What POST /apply answers. */
export interface ApplyReport {
  readonly dry_run: boolean;
  /** False when a change failed. */
  readonly ok: boolean;
  readonly changes: readonly ChangeReport[];
}

/**
 * A PATCH body that makes a record's fields exactly `fields`: every known field not in `fields` is reset
 * (null), every field in it is set.
 */
export function replacementBody(known: readonly string[], fields: Fields): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const name of known) body[name] = null;
  return { ...body, ...fieldsToJson(fields) };
}

/** The report of a plan that is not run. */
export function dryRunReport(plan: readonly PlannedChange[]): ApplyReport {
  return {
    dry_run: true,
    ok: true,
    changes: plan.map((c) => ({ action: c.action, service: c.service, backend: c.backend, details: c.details, status: "planned" })),
  };
}
