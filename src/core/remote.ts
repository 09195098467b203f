/**
 * Remote changes: a shared store (etcd, see src/store/) tells this node what the desired state of some
 * services now is, as saved rows written by any node. `syncService` turns the difference between gorb's
 * desired state and those rows into the same edits a request makes (create, update, delete of services and
 * backends), so the reconciler, the kernel writer, the health checks and the events see a remote change exactly
 * like a local one. Nothing is written back to the store: the rows came from it.
 *
 * Rows carry the addresses their hosts resolved to on the node that wrote them; this node uses those (no DNS
 * lookup), so every node programs the same destinations.
 */
import { errorMessage } from "./errors.ts";
import { serviceKeyId } from "./keys.ts";
import type { ServiceKey } from "../ipvs/types.ts";
import type { BackendRecord, DesiredState, ServiceRecord } from "./desired-state.ts";
import { type DrainState, sameDrain } from "./drain.ts";
import type { Edits } from "./edits.ts";
import { fieldsToJson, type SavedBackend, type SavedService, type SavedState } from "./state.ts";
import type { Fields } from "./fields.ts";
import { backendFields, normalizeBackendFields, serviceFields } from "./normalize.ts";
import type { HostResolver, ResolvedAddress } from "./resolve.ts";
import type { Logger } from "../log.ts";
import type { Transactions } from "./transactions.ts";
import { Tx } from "./tx.ts";

/** A resolver that answers every name with the address a row saved. */
function savedAddress(address: ResolvedAddress | null): HostResolver {
  return () => Promise.resolve(address === null ? [] : [address]);
}

function keyAddress(key: ServiceKey): ResolvedAddress | null {
  return "address" in key ? { address: key.address, family: key.family } : null;
}

function sameFields(fields: Fields, row: Readonly<Record<string, unknown>>): boolean {
  return JSON.stringify(fieldsToJson(fields)) === JSON.stringify(fieldsToJson(new Map(Object.entries(row))));
}

/** A PATCH taking `fields` to `row`: every field of the row, and null for each field the row dropped. */
function patchTo(fields: Fields, row: Readonly<Record<string, unknown>>, read: (raw: unknown) => Fields): Fields {
  const patch: Fields = read(row);
  for (const name of fields.keys()) if (!patch.has(name)) patch.set(name, null);
  return patch;
}

/**
 * What another node's drain does here, for the `backend.drain` event once committed: a drain that appears (or
 * replaces another) has `started`, one that goes while the backend stays (draining, or held after it ended with
 * then = keep) was `cancelled`. How a drain ended (drained or timeout) is the starting node's to say; here it
 * shows as the backend's removal or its held drain.
 */
export type RemoteDrainListener = (service: string, backend: string, drain: DrainState, phase: "started" | "cancelled") => void;

function remoteDrainPhase(before: DrainState | null, after: DrainState | null): "started" | "cancelled" | null {
  if (after !== null && after.phase === "draining" && (before === null || before.started !== after.started || before.node !== after.node)) return "started";
  if (after === null && before !== null) return "cancelled";
  return null;
}

/**
 * Whether backend row `want` keeps `backend`'s destination (address and port): one that moved was deleted and
 * created again (an apply does that), and a backend's destination cannot change in place. A row whose fields do not
 * read is left to the update, which throws their error.
 */
function sameDestination(record: ServiceRecord, backend: BackendRecord, want: SavedBackend): boolean {
  if (want.address.address !== backend.address.address) return false;
  try {
    return normalizeBackendFields(backendFields(want.fields), record.spec).port === backend.spec.port;
  } catch {
    return true;
  }
}

/**
 * Edit service `id` in `desired` to match `row` and `backends` (row null: the service is gone). Returns false
 * when it already matched (nothing edited). Throws the edit's error (the caller undoes `tx`). `onDrain` hears of
 * drains other nodes started or cancelled, after the commit.
 */
async function syncService(
  desired: DesiredState,
  edits: Edits,
  tx: Tx,
  id: string,
  row: SavedService | null,
  backends: readonly SavedBackend[],
  onDrain?: RemoteDrainListener,
): Promise<boolean> {
  let record: ServiceRecord | undefined = desired.service(id);
  let changed = false;
  if (row === null) {
    if (record === undefined) return false;
    edits.deleteService(tx, record);
    return true;
  }
  if (record !== undefined && serviceKeyId(record.config.key) !== serviceKeyId(row.key)) {
    // Deleted and created again elsewhere with another address.
    edits.deleteService(tx, record);
    record = undefined;
  }
  if (record === undefined) {
    await edits.createService(tx, id, serviceFields(row.fields), row.source, savedAddress(keyAddress(row.key)));
    record = desired.service(id);
    if (record === undefined) return true;
    changed = true;
  } else {
    if (!sameFields(record.fields, row.fields)) {
      await edits.updateService(tx, record, patchTo(record.fields, row.fields, serviceFields), savedAddress(keyAddress(row.key)));
      changed = true;
    }
    if (record.source !== row.source) {
      edits.setSource(tx, record, null, row.source);
      changed = true;
    }
  }
  const wanted = new Map(backends.map((b) => [b.id, b]));
  for (const backend of [...record.backends.values()]) {
    const want = wanted.get(backend.id);
    if (want !== undefined && sameDestination(record, backend, want)) continue;
    edits.deleteBackend(tx, record, backend);
    changed = true;
  }
  for (const want of backends) {
    const backend = record.backends.get(want.id);
    if (backend === undefined) {
      await edits.createBackend(tx, record, want.id, backendFields(want.fields), want.source, savedAddress(want.address));
      changed = true;
      continue;
    }
    if (!sameFields(backend.fields, want.fields)) {
      await edits.updateBackend(tx, record, backend, patchTo(backend.fields, want.fields, backendFields), savedAddress(want.address));
      changed = true;
    }
    if (backend.source !== want.source) {
      edits.setSource(tx, record, backend, want.source);
      changed = true;
    }
  }
  for (const want of backends) {
    // Drains are desired state too: every node holds the weight at 0 (./drain.ts says who ends one).
    const backend = record.backends.get(want.id);
    const drain = want.drain ?? null;
    if (backend === undefined || sameDrain(backend.drain, drain)) continue;
    const before = backend.drain;
    const phase = remoteDrainPhase(before, drain);
    const announced = (phase === "started" ? drain : before) as DrainState;
    const serviceId = record.id;
    edits.setDrain(tx, record, backend, drain, phase === null || onDrain === undefined ? null : () => onDrain(serviceId, want.id, announced, phase));
    changed = true;
  }
  return changed;
}

/**
 * Make the services named in `ids` match the rows of `state` (a service without a row is deleted), each one a
 * change of its own through syncService: one that fails (a conflict with a local service, a kernel error) is undone
 * and logged, the others stay. The ones that failed are tried again while a pass changes something: one change may
 * free what another needs (an apply that moves service a onto b's key and b elsewhere: whichever comes first finds
 * the key taken); when no single one goes through any more, they are tried as one change (applyJointly: keys
 * swapped). Runs on Gorb's lock. Returns how many services changed, and the ids of those that still failed
 * (to be tried again with the next change: the local service they conflicted with may be gone by then).
 */
export async function applyRemoteRows(
  parts: {
    readonly desired: DesiredState;
    readonly edits: Edits;
    readonly transactions: Transactions;
    readonly log: Logger;
    readonly onDrain: RemoteDrainListener;
  },
  state: SavedState,
  ids: readonly string[],
): Promise<{ readonly changed: number; readonly failed: readonly string[] }> {
  const { desired, edits, transactions, log } = parts;
  const rows = new Map<string, SavedService>(state.services.map((s) => [s.id, s]));
  const backendsOf = new Map<string, SavedBackend[]>();
  for (const b of state.backends) {
    let list = backendsOf.get(b.service);
    if (list === undefined) backendsOf.set(b.service, (list = []));
    list.push(b);
  }
  let changed = 0;
  let pending = ids;
  for (;;) {
    const errors = new Map<string, string>();
    let progress = 0;
    for (const id of pending) {
      const outcome = await runChange(transactions, (tx) => syncService(desired, edits, tx, id, rows.get(id) ?? null, backendsOf.get(id) ?? [], parts.onDrain));
      if (outcome === "unchanged") continue;
      if (outcome !== "done") {
        const where = outcome.kernel ? " to IPVS" : "";
        errors.set(id, `cannot apply the shared state of service ${JSON.stringify(id)}${where}: ${errorMessage(outcome.error)}`);
        continue;
      }
      changed++;
      progress++;
    }
    if (errors.size > 1 && progress === 0 && (await applyJointly(parts, rows, backendsOf, [...errors.keys()]))) return { changed: changed + errors.size, failed: [] };
    if (errors.size === 0 || progress === 0) {
      for (const message of errors.values()) log.error(message);
      return { changed, failed: [...errors.keys()] };
    }
    pending = [...errors.keys()];
  }
}

/**
 * Services that swapped keys (or moved round a cycle) cannot be applied one at a time: each finds its new key held
 * by another. As one change, with every one of them that moved deleted first, they can. Resolves whether that
 * went through; when not, nothing of it stays.
 */
async function applyJointly(
  parts: Parameters<typeof applyRemoteRows>[0],
  rows: ReadonlyMap<string, SavedService>,
  backendsOf: ReadonlyMap<string, readonly SavedBackend[]>,
  ids: readonly string[],
): Promise<boolean> {
  const { desired, edits, transactions } = parts;
  const outcome = await runChange(transactions, async (tx) => {
    for (const id of ids) {
      const record = desired.service(id);
      const row = rows.get(id);
      if (record !== undefined && row !== undefined && serviceKeyId(record.config.key) !== serviceKeyId(row.key)) edits.deleteService(tx, record);
    }
    for (const id of ids) await syncService(desired, edits, tx, id, rows.get(id) ?? null, backendsOf.get(id) ?? [], parts.onDrain);
    return true;
  });
  return outcome === "done";
}

/**
 * One change: `edit` makes its edits in a new Tx (false: there was nothing to edit), which is written to the kernel
 * and its effects run; edits that throw are rolled back, and a refused write undoes itself (Transactions.write).
 */
async function runChange(
  transactions: Transactions,
  edit: (tx: Tx) => Promise<boolean>,
): Promise<"done" | "unchanged" | { readonly error: unknown; readonly kernel: boolean }> {
  const tx = new Tx();
  try {
    if (!(await edit(tx))) return "unchanged";
  } catch (error) {
    await transactions.rollback(tx);
    return { error, kernel: false };
  }
  try {
    await transactions.write(tx);
  } catch (error) {
    return { error, kernel: true };
  }
  await transactions.effects(tx);
  return "done";
}
