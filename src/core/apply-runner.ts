/**
 * Running a planned apply (./plan.ts) under gorb's lock: every change's steps as edits of the desired state
 * (a step the desired state refuses fails its change at once, undone), then ONE kernel batch for every change
 * (up to three when sorry servers come or go: Transactions.runSorrySafe), then the changes the kernel refused are
 * undone (edits, and written back), then ONE commit for the rest. The
 * commit's rows are written while the kernel batch runs and made durable only after it (dropped and written again
 * without them when the kernel refused some changes). A failed commit undoes them all and throws 503. Each
 * operation of the batch is charged to the change it came from (its service and backend), so a refusal fails only
 * that change.
 */
import { Pacer } from "../pacer.ts";
import { replacementBody, type ApplyReport, type ChangeReport } from "./apply.ts";
import type { Edits } from "./edits.ts";
import { fromIpvsError, errorMessage } from "./errors.ts";
import { isChecked, type Fields } from "./fields.ts";
import { BACKEND_FIELDS, SERVICE_FIELDS, backendFields, backendPatchFields, serviceFields, servicePatchFields } from "./normalize.ts";
import type { ApplyStep, PlannedChange } from "./plan.ts";
import type { Queries } from "./queries.ts";
import type { HostResolver } from "./resolve.ts";
import { fieldsToJson } from "./state.ts";
import type { Transactions } from "./transactions.ts";
import { MergedTargets, Tx, noteCreated, type CreatedServices } from "./tx.ts";
import type { DesiredState } from "./desired-state.ts";
import { dryRunReport } from "./apply.ts";
import type { ServiceKey } from "../ipvs/types.ts";
import type { Logger } from "../log.ts";
import { serviceKeyId } from "./keys.ts";
import { planApply, resolveDeclared, type DeclaredService, type ManagedService } from "./plan.ts";


/** What the runner works with. */
export interface ApplyParts {
  readonly desired: DesiredState;
  readonly edits: Edits;
  readonly queries: Queries;
  readonly transactions: Transactions;
}

/**
 * `fields` as a checked field map: as it is when the contract checked it already (a declared set's fields,
 * read by readServices; field maps are never changed once built), else read again with `read`.
 */
function checkedFields(fields: Fields, read: (raw: unknown) => Fields): Fields {
  return isChecked(fields) ? fields : read(fieldsToJson(fields));
}

/** One step as an edit of the desired state. */
function applyStep(parts: ApplyParts, tx: Tx, step: ApplyStep, resolver: HostResolver): Promise<void> | void {
  const { edits, queries } = parts;
  const service = () => queries.service(step.service);
  switch (step.kind) {
    case "create-service":
      return edits.createService(tx, step.service, checkedFields(step.fields, serviceFields), "file", resolver);
    case "update-service":
      return edits.updateService(tx, service(), servicePatchFields(replacementBody(SERVICE_FIELDS, step.fields)), resolver);
    case "delete-service":
      return edits.deleteService(tx, service());
    case "create-backend": {
      const drain = step.drain;
      if (drain === undefined) return edits.createBackend(tx, service(), step.backend, checkedFields(step.fields, backendFields), step.source, resolver, step.address);
      return (async () => {
        const s = service();
        await edits.createBackend(tx, s, step.backend, checkedFields(step.fields, backendFields), step.source, resolver, step.address);
        edits.setDrain(tx, s, queries.backend(s, step.backend), drain, null);
      })();
    }
    case "update-backend": {
      const s = service();
      return edits.updateBackend(tx, s, queries.backend(s, step.backend), backendPatchFields(replacementBody(BACKEND_FIELDS, step.fields)), resolver);
    }
    case "delete-backend": {
      const s = service();
      return edits.deleteBackend(tx, s, queries.backend(s, step.backend));
    }
    case "take-over": {
      const s = service();
      return edits.setSource(tx, s, step.backend === null ? null : queries.backend(s, step.backend), "file");
    }
  }
}

/** Why a change run together with `plan[at]` failed: that one did. */
function withFailed(plan: readonly PlannedChange[], at: number, error: string): string {
  const c = plan[at] as PlannedChange;
  return `not applied: it goes with the ${c.action} of ${c.backend === null ? c.service : `${c.service}/${c.backend}`}, which failed: ${error}`;
}

/** Run `plan`; see the module comment. */
async function runApplyPlan(parts: ApplyParts, plan: readonly PlannedChange[], resolver: HostResolver): Promise<ApplyReport> {
  const { transactions } = parts;
  // Every pass over the plan (11 changes per service of 10 backends) takes turns of the event loop.
  const pacer = new Pacer();
  // Changes run together (PlannedChange.together) share one Tx: one undo for all of them.
  const members = new Map<number, number[]>();
  for (const [i, c] of plan.entries()) {
    if (pacer.due()) await pacer.turn();
    if (c.together === undefined) continue;
    const list = members.get(c.together);
    if (list === undefined) members.set(c.together, [i]);
    else list.push(i);
  }
  const shared = new Map([...members.keys()].map((g) => [g, new Tx(true)] as const));
  const txs: Tx[] = [];
  for (const c of plan) {
    if (pacer.due()) await pacer.turn();
    txs.push((c.together === undefined ? undefined : shared.get(c.together)) ?? new Tx(true));
  }
  // The Txs of the changes at `indexes`, each once, in order.
  const only = async (indexes: readonly number[]): Promise<Tx[]> => {
    const seen = new Set<Tx>();
    for (const i of indexes) {
      if (pacer.due()) await pacer.turn();
      seen.add(txs[i] as Tx);
    }
    return [...seen];
  };
  const errors: (string | null)[] = plan.map(() => null);
  for (const [i, change] of plan.entries()) {
    if (pacer.due()) await pacer.turn();
    const tx = txs[i] as Tx;
    const group = change.together === undefined ? [i] : (members.get(change.together) ?? [i]);
    if (group[0] !== i) continue; // run with the first of its group
    // A group's deletes (the keys its members free) run before any of its creates.
    const order = group.length === 1 ? [{ i, steps: change.steps }] : [
      ...group.map((m) => ({ i: m, steps: (plan[m] as PlannedChange).steps.filter((s) => s.kind.startsWith("delete-")) })),
      ...group.map((m) => ({ i: m, steps: (plan[m] as PlannedChange).steps.filter((s) => !s.kind.startsWith("delete-")) })),
    ];
    let at = i;
    try {
      for (const part of order) {
        at = part.i;
        for (const step of part.steps) await applyStep(parts, tx, step, resolver);
      }
    } catch (error) {
      tx.undoEdits();
      await tx.releaseClaims();
      for (const m of group) errors[m] = m === at ? errorMessage(error) : withFailed(plan, at, errorMessage(error));
    }
  }
  const live = plan.map((_, i) => i).filter((i) => errors[i] === null);
  const liveTxs = await only(live);
  const targets = new MergedTargets();
  for (const tx of liveTxs) {
    if (pacer.due()) await pacer.turn();
    transactions.quorum(tx); // failover: a quorum flip writes its service whole
    targets.add(tx.targets);
  }
  // The change an operation came from: its backend's change, else its service's, else any of that service. Only
  // a refused operation needs one: the map is made at the first.
  let owner: Map<string, number> | null = null;
  const ownerOf = (service: string, backend: string | null): number | undefined => {
    if (owner === null) {
      owner = new Map<string, number>();
      for (const i of live) {
        const c = plan[i] as PlannedChange;
        // "service\0backend" (a service's own change has backend ""), and "service\1" for any change of it.
        for (const k of [`${c.service}\u0000${c.backend ?? ""}`, `${c.service}\u0001`]) if (!owner.has(k)) owner.set(k, i);
      }
    }
    return owner.get(`${service}\u0000${backend ?? ""}`) ?? owner.get(`${service}\u0000`) ?? owner.get(`${service}\u0001`);
  };
  const operations = await transactions.plan(targets.list(), pacer);
  const removed = transactions.removedBy(operations);
  try {
    await transactions.intend(operations);
  } catch (error) {
    for (const tx of [...liveTxs].reverse()) tx.undoEdits();
    for (const tx of liveTxs) await tx.releaseClaims();
    throw error;
  }
  const executing = transactions.runSorrySafe(operations, (ops) => transactions.run(ops, pacer));
  // The rows are written while the kernel batch runs (on another thread when it is big), and made durable once every
  // change is known to have worked; a change the kernel refused makes them be dropped and written again without it.
  const staging = transactions.stage(liveTxs, true).then(
    (pending) => ({ pending, error: null }),
    (error: unknown) => ({ pending: null, error }),
  );
  let results: Awaited<typeof executing>["results"];
  let held: Awaited<typeof executing>["held"];
  try {
    ({ results, held } = await executing);
  } catch (error) {
    await (await staging).pending?.abort();
    await transactions.forgetIntents();
    throw error;
  }
  const staged = await staging;
  for (const r of results) {
    if (r.error === null) continue;
    const i = ownerOf(r.operation.service, r.operation.backend);
    if (i !== undefined && errors[i] === null) errors[i] = fromIpvsError(r.error).message;
  }
  // A service whose sorry server the kernel refused (or what must precede it) had none of its other writes run: every
  // change of it fails, so that it is as before the apply. Failing only the change charged with the refusal would
  // leave another that takes the service down standing without the sorry server it needs.
  if (held.size > 0) {
    const refused = new Map<string, string>();
    for (const r of results) {
      if (r.error !== null && held.get(r.operation.service) === "first" && !refused.has(r.operation.service)) {
        refused.set(r.operation.service, fromIpvsError(r.error).message);
      }
    }
    for (const i of live) if (errors[i] === null) errors[i] = refused.get((plan[i] as PlannedChange).service) ?? null;
  }
  // A change run together with others fails with them: they share their edits. The first that failed (in plan order:
  // a re-created service before its backends) is named in the others, whose own errors follow from it (a backend
  // added to a service the kernel refused is "no such service").
  for (const group of members.values()) {
    const at = group.find((m) => errors[m] !== null);
    if (at !== undefined) for (const m of group) if (m !== at) errors[m] = withFailed(plan, at, errors[at] ?? "");
  }
  const failed = live.filter((i) => errors[i] !== null);
  const failedTxs = await only(failed);
  if (failed.length > 0) await staged.pending?.abort();
  for (const tx of [...failedTxs].reverse()) tx.undoEdits();
  const succeeded = failed.length === 0 ? liveTxs : await only(live.filter((i) => errors[i] === null));
  // A quorum flip that a change which worked made may have counted a refused one: the services of the refused
  // changes are counted again without them, and a flip back is written with the undo and published after the commit.
  const recount = new Tx(true);
  if (failed.length > 0) {
    for (const tx of failedTxs) for (const t of tx.targets) recount.target(t);
    // A service whose sorry server's delete did not run (another of its writes was refused) is written whole: its
    // sorry server goes, after the weights, when the changes that worked leave it up.
    for (const [service, stopped] of held) {
      const record = stopped === "rest" ? parts.desired.service(service) : undefined;
      if (record !== undefined) recount.target({ service, key: record.config.key, backends: null });
    }
    transactions.quorum(recount);
    // The services the failed changes alone created: one a change that worked created (a new service whose backend
    // the kernel refused) stays.
    const kept = new Set(succeeded.flatMap((tx) => tx.targets.map((t) => serviceKeyId(t.key))));
    const created: CreatedServices = new Map();
    noteCreated(created, results, new Set(recount.targets.map((t) => serviceKeyId(t.key)).filter((k) => !kept.has(k))));
    await transactions.writeBack(recount.targets, removed, created);
    for (const tx of failedTxs) await tx.releaseClaims();
  }
  if (pacer.due()) await pacer.turn();
  try {
    if (staged.error !== null) throw staged.error;
    if (failed.length === 0) await staged.pending?.commit();
    else await transactions.commit(succeeded, true);
  } catch (error) {
    recount.undoEdits();
    for (const tx of [...succeeded].reverse()) tx.undoEdits();
    const created: CreatedServices = new Map();
    noteCreated(created, results);
    await transactions.writeBack([...succeeded.flatMap((tx) => tx.targets), ...recount.targets], removed, created);
    for (const tx of succeeded) await tx.releaseClaims();
    await transactions.forgetIntents();
    throw error;
  }

  for (const tx of succeeded) {
    if (pacer.due()) await pacer.turn();
    const pending = transactions.effects(tx);
    if (pending !== undefined) await pending;
  }
  await transactions.effects(recount);
  await transactions.weightEventsPaced(
    errors.every((e) => e === null)
      ? results
      : results.filter((r) => {
          const i = ownerOf(r.operation.service, r.operation.backend);
          return i === undefined || errors[i] === null;
        }),
    pacer,
  );
  const changes: ChangeReport[] = [];
  for (const [i, c] of plan.entries()) {
    if (pacer.due()) await pacer.turn();
    const base = { action: c.action, service: c.service, backend: c.backend, details: c.details };
    const error = errors[i];
    changes.push(error === null || error === undefined ? { ...base, status: "done" } : { ...base, status: "failed", error });
  }
  return { dry_run: false, ok: changes.every((c) => c.status === "done"), changes };
}

/** Every service of the desired state, with its owner and request fields, for planning an apply. */
export function managedServicesOf(desired: DesiredState): ManagedService[] {
  return [...desired.services()].map((s) => ({
    id: s.id,
    source: s.source,
    fields: new Map(s.fields),
    spec: s.spec,
    config: s.config,
    backends: [...s.backends.values()].map((b) => ({ id: b.id, source: b.source, fields: new Map(b.fields), spec: b.spec, address: b.address, drain: b.drain })),
  }));
}

/** What applyDeclared needs beyond ApplyParts: the kernel's service keys, and which of them are gorb's own. */
export interface DeclaredApplyParts extends ApplyParts {
  readonly log: Logger;
  readonly defaultAddress: string | null;
  readonly vipInterface: string | null;
  /** The kernel's service keys (a driver call that throws a GorbError). */
  readonly kernelServices: () => Promise<readonly ServiceKey[]>;
  /** True for gorb's own services that are not in the desired state (the probe services). */
  readonly isOwn: (key: ServiceKey) => boolean;
}

/**
 * Apply a declarative set under gorb's lock (names already looked up by `resolver`): plan it against the managed
 * services and the kernel's foreign ones (./plan.ts), then run the plan (runApplyPlan), or only report it
 * (`dryRun`). The store is asked first whether it takes writes, so a set is not run only to fail its commit.
 */
export async function applyDeclared(parts: DeclaredApplyParts, declared: readonly DeclaredService[], resolver: HostResolver, dryRun: boolean): Promise<ApplyReport> {
  const { desired, log } = parts;
  if (!dryRun) await parts.transactions.checkStore();
  const managed = managedServicesOf(desired);
  const wanted = await resolveDeclared(declared, resolver, parts.defaultAddress, parts.vipInterface, managed);
  const foreign = (await parts.kernelServices()).filter((k) => !desired.hasKeyId(serviceKeyId(k)) && !parts.isOwn(k));
  const plan = await planApply(managed, wanted, foreign);
  if (dryRun) return dryRunReport(plan);
  const report = await runApplyPlan(parts, plan, resolver);
  const failed = report.changes.filter((c) => c.status === "failed");
  if (plan.length > 0) log.info(`applied the declarative set: ${plan.length - failed.length} change(s) done, ${failed.length} failed`);
  for (const c of failed) log.error(`apply: ${c.action} ${c.backend === null ? c.service : `${c.service}/${c.backend}`} failed: ${c.error ?? ""}`);
  return report;
}
