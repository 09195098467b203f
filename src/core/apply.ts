/**
 * Running a plan (./plan.ts) through Gorb's own mutations, so every step keeps Gorb's rules (checked, written
 * to the kernel first, saved to disk before it counts, rolled back on failure). Each change runs its steps in
 * order and stops at its first failure; the next changes still run (services are independent), and the report
 * says which changes were done and which failed, and why.
 *
 * An apply is not one transaction: each step is atomic and saved on its own, so a failure part-way leaves
 * the changes before it in place. Applying the same set again finishes the job.
 */
import { BACKEND_FIELDS, SERVICE_FIELDS } from "./normalize.ts";
import type { Fields } from "./fields.ts";
import type { ApplyStep, ChangeAction, PlannedChange } from "./plan.ts";
import type { Source } from "./state.ts";
import { fieldsToJson } from "./state.ts";

/** The mutations an apply uses (Gorb's). */
export interface ApplyTarget {
  createService(id: string, body: unknown, options?: { source?: Source }): Promise<void>;
  updateService(id: string, body: unknown): Promise<void>;
  deleteService(id: string): Promise<void>;
  createBackend(serviceId: string, backendId: string, body: unknown, options?: { source?: Source }): Promise<void>;
  updateBackend(serviceId: string, backendId: string, body: unknown): Promise<void>;
  deleteBackend(serviceId: string, backendId: string): Promise<void>;
  setSource(serviceId: string, backendId: string | null, source: Source): Promise<void>;
}

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

async function runStep(target: ApplyTarget, step: ApplyStep): Promise<void> {
  switch (step.kind) {
    case "create-service":
      return target.createService(step.service, fieldsToJson(step.fields), { source: "file" });
    case "update-service":
      return target.updateService(step.service, replacementBody(SERVICE_FIELDS, step.fields));
    case "delete-service":
      return target.deleteService(step.service);
    case "create-backend":
      return target.createBackend(step.service, step.backend, fieldsToJson(step.fields), { source: step.source });
    case "update-backend":
      return target.updateBackend(step.service, step.backend, replacementBody(BACKEND_FIELDS, step.fields));
    case "delete-backend":
      return target.deleteBackend(step.service, step.backend);
    case "take-over":
      return target.setSource(step.service, step.backend, "file");
  }
}

/** The report of a plan that is not run. */
export function dryRunReport(plan: readonly PlannedChange[]): ApplyReport {
  return {
    dry_run: true,
    ok: true,
    changes: plan.map((c) => ({ action: c.action, service: c.service, backend: c.backend, details: c.details, status: "planned" })),
  };
}

/** Run every change of `plan` against `target`; see the module comment. */
export async function runPlan(target: ApplyTarget, plan: readonly PlannedChange[]): Promise<ApplyReport> {
  const changes: ChangeReport[] = [];
  for (const change of plan) {
    const base = { action: change.action, service: change.service, backend: change.backend, details: change.details };
    try {
      for (const step of change.steps) await runStep(target, step);
      changes.push({ ...base, status: "done" });
    } catch (error) {
      changes.push({ ...base, status: "failed", error: error instanceof Error ? error.message : String(error) });
    }
  }
  return { dry_run: false, ok: changes.every((c) => c.status === "done"), changes };
}
