/**
 * What gorb keeps on disk so a restart (or a crash) loses nothing: every service and backend the API (or the
 * configuration file) created, as the request fields it was created with (PATCHes applied), the address each
 * host resolved to, who owns it, and whether gorb put the service's address on the VIP interface.
 *
 * The effective weights and the health history are not kept: the kernel has the weights (restore adopts
 * them, see ./reconcile.ts), and health starts over.
 *
 * Core defines the rows and the `StateStore` port; the store itself (SQLite) lives in src/state/. Rows are
 * plain JSON values; `decodeSavedService` and `decodeSavedBackend` check a row read back from disk.
 */
import { addressFamily, canonicalAddress } from "../ipvs/address.ts";
import { FAMILIES, PROTOCOLS, type Family, type Protocol, type ServiceKey } from "../ipvs/types.ts";
import { DRAIN_THEN, LIMITS } from "../contract/fields.ts";
import { DRAIN_PHASES, type DrainState } from "./drain.ts";
import type { Fields } from "./fields.ts";
import type { ResolvedAddress } from "./resolve.ts";
import { isRecord } from "../record.ts";

/**
 * Who owns a service or backend:
 *   "api"  created over the REST API (or the CLI); only the API changes or deletes it;
 *   "file" created by the declarative set (`services:` of the configuration file, or `gorb apply`); the next
 *          apply updates it, and deletes it when the set no longer lists it.
 * Services in IPVS that gorb did not create have no source: gorb never touches them.
 */
export type Source = "api" | "file";

/** A saved service: its request fields, the key it resolved to, its owner, and its VIP claim. */
export interface SavedService {
  readonly id: string;
  readonly source: Source;
  /** The request fields (canonical lower-case names), PATCHes applied. */
  readonly fields: Readonly<Record<string, unknown>>;
  /** The IPVS key the service was created with (its host resolved then). */
  readonly key: ServiceKey;
  /** True when gorb put the service's address on the VIP interface (and removes it with the service). */
  readonly vip: boolean;
}

/** A saved backend. */
export interface SavedBackend {
  readonly service: string;
  readonly id: string;
  readonly source: Source;
  readonly fields: Readonly<Record<string, unknown>>;
  /** The address the backend's host resolved to when it was created. */
  readonly address: ResolvedAddress;
  /** Its drain (./drain.ts), when one is in progress or held; absent or null when none. */
  readonly drain?: DrainState | null;
}

/** Everything on disk. */
export interface SavedState {
  readonly services: readonly SavedService[];
  readonly backends: readonly SavedBackend[];
  /**
   * Services gorb was creating in IPVS when it stopped, before the commit that would have saved them
   * (StateStore.intend): the ones the saved services do not hold are gorb's, made for a change it never answered,
   * and restore removes them. Absent: none (or a store that does not record them).
   */
  readonly creating?: readonly Creating[];
  /** A shared state's source: the etcd cluster and the revision of the snapshot. Absent for a local store. */
  readonly origin?: StateOrigin;
  /**
   * A shared state's address claims: the key ids (./keys.ts) of every service it has, including those whose rows do
   * not read here. A service of the kernel on one of them was not deleted. Absent for a local store.
   */
  readonly claimed?: readonly string[];
}

/** Where a shared state was read: the etcd cluster's id and the snapshot's revision. */
export interface StateOrigin {
  readonly clusterId: string;
  readonly revision: number;
  /**
   * The revision this node's previous start restored, as the shared state records it (StateStore.restored); absent
   * when it records none (a first start, a gorb from before the record, a store that keeps none).
   */
  readonly lastRestore?: number;
}

/** A service gorb was about to create in IPVS (StateStore.intend), and whether it put its address on the VIP interface. */
export interface Creating {
  readonly key: ServiceKey;
  /** True when gorb added the service's address to the VIP interface for it (no other service held the address). */
  readonly vip: boolean;
}

/** The rows one mutation changed: a store applies them in one transaction. */
export interface StateChanges {
  /** Services written whole (their backends are separate rows). */
  readonly putServices: readonly SavedService[];
  /** Services deleted, with every backend row they had. */
  readonly deleteServices: readonly string[];
  readonly putBackends: readonly SavedBackend[];
  readonly deleteBackends: readonly { readonly service: string; readonly id: string }[];
  /**
   * True when the change was planned from every service gorb has (an apply, which deletes the file-owned services
   * its set leaves out): a shared store refuses it (ConflictError) while another node has changed a service or
   * backend this node has not applied yet, as it refuses a change of a row changed elsewhere first.
   */
  readonly wholeSet?: boolean;
}

/** Changes written by StateStore.stage, to be made durable or dropped (exactly one of the two, once). */
export interface StagedCommit {
  /** Make the changes durable; rejects (and nothing of them is saved) when they cannot be. */
  commit(): Promise<void>;
  /** Drop the changes: nothing of them is saved. */
  abort(): Promise<void>;
}

/**
 * StateStore keeps SavedState durable. `commit` applies the changes of one mutation atomically and returns
 * only once they are on disk (fsync'd); it throws (or rejects) when they could not be written.
 */
export interface StateStore {
  /** Where the state lives, for messages ("/var/lib/gorb/state.db"). */
  readonly location: string;
  commit(changes: StateChanges): void | Promise<void>;
  /**
   * A durable write that changes nothing gorb reads, to learn whether the store can write again after a
   * failed commit (disk full, read-only). Throws (or rejects) while it cannot. Without it, an empty commit.
   */
  probe?(): void | Promise<void>;
  /**
   * Write `changes` without making them durable yet, while the caller waits for something else (an apply's kernel
   * batch); nothing else commits until the staged commit is committed or aborted. Rejects as commit() does, and
   * then nothing was written. Without it, the caller commits once it is done waiting.
   */
  stage?(changes: StateChanges): Promise<StagedCommit>;
  /**
   * Record durably that gorb is about to create the services `keys` in IPVS, before it does: should gorb stop before
   * the commit that saves them, the next start reads them back (SavedState.creating) and removes those the saved
   * state does not hold, which would otherwise stay in the kernel as services gorb does not manage. Keys add up
   * until the next commit that works, which clears the record in its own transaction; so does `intend([])`
   * (nothing to write when none is recorded). Throws (or rejects) as commit() does, and then gorb creates nothing. Without it, nothing is
   * recorded.
   */
  intend?(entries: readonly Creating[]): void | Promise<void>;
  /**
   * False while the store is known not to take writes (a shared store that lost its server): changes are then
   * refused (503) before anything is touched, unless a probe works. Without it, a store is assumed available
   * until a commit fails.
   */
  available?(): boolean;
  /**
   * Record in the shared state that this node restored the state read at `origin` (every start, with its kernel
   * ledger or without: the next start's SavedState.origin.lastRestore). Throws (or rejects) when it cannot write.
   * Without it, nothing is recorded.
   */
  restored?(origin: StateOrigin): Promise<void>;
  /**
   * True when other nodes share this state (etcd): a row this node cannot restore (a field its version does not
   * know, an address another service holds) is left in it, since other nodes may serve it.
   */
  readonly shared?: boolean;
  /**
   * Move rows restore cannot read out of the state, durably and in one transaction, into a place of their own that
   * is never read back (so they cannot come back under a service made later with the same id), kept verbatim with
   * why and when. A service's row goes with its backends' rows. Rows already gone are skipped. Throws (or rejects)
   * as commit() does, and then nothing moved. Without it, such rows are deleted.
   */
  setAside?(rows: readonly SetAsideRow[]): void | Promise<void>;
}

/** A saved row restore could not read: a service's (backend null) or a backend's, and why. */
export interface SetAsideRow {
  readonly service: string;
  readonly backend: string | null;
  readonly why: string;
}


/** A Fields map as a plain JSON object (keys sorted, so equal fields give equal rows). */
export function fieldsToJson(fields: Fields): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of [...fields.keys()].sort()) out[name] = fields.get(name);
  return out;
}


/** SavedStateError reports a row that cannot be read back; `what` names it ("service \"web\""). */
export class SavedStateError extends Error {
  override readonly name = "SavedStateError";
}

function sourceOf(value: unknown, what: string): Source {
  if (value === "api" || value === "file") return value;
  throw new SavedStateError(`${what}: source must be "api" or "file", got ${JSON.stringify(value)}`);
}

function fieldsOf(value: unknown, what: string): Record<string, unknown> {
  if (!isRecord(value)) throw new SavedStateError(`${what}: fields must be an object`);
  return value;
}

/** "a, b or c": the words of a list, for a message. */
function either(words: readonly string[]): string {
  return words.length < 2 ? words.join("") : `${words.slice(0, -1).join(", ")} or ${words.at(-1)}`;
}

/** `value` as one of `allowed`, or a SavedStateError saying which `field` must be ("tcp, udp or sctp"). */
function oneOf<T extends string>(value: unknown, allowed: readonly T[], field: string, what: string, quote: boolean): T {
  const found = allowed.find((a) => a === value);
  if (found !== undefined) return found;
  const words = quote ? allowed.map((a) => JSON.stringify(a)) : allowed;
  throw new SavedStateError(`${what}: ${field} must be ${either(words)}, got ${JSON.stringify(value)}`);
}

/** `value` as a whole number in `range` (a contract limit), or a SavedStateError saying what `field` must be. */
function inRange(value: unknown, range: { readonly min: number; readonly max: number }, field: string, what: string): number {
  if (typeof value === "number" && Number.isInteger(value) && value >= range.min && value <= range.max) return value;
  throw new SavedStateError(`${what}: ${field} must be ${range.min}-${range.max}, got ${JSON.stringify(value)}`);
}

function familyOf(value: unknown, what: string): Family {
  return oneOf(value, FAMILIES, "family", what, true);
}

function addressOf(value: unknown, family: Family, what: string): string {
  if (typeof value !== "string" || addressFamily(value) !== family) {
    throw new SavedStateError(`${what}: ${JSON.stringify(value)} is not an ${family} address`);
  }
  return canonicalAddress(value);
}

function keyOf(value: unknown, what: string): ServiceKey {
  if (!isRecord(value)) throw new SavedStateError(`${what}: key must be an object`);
  const family = familyOf(value.family, what);
  if (value.fwmark !== undefined) return { family, fwmark: inRange(value.fwmark, LIMITS.fwmark, "fwmark", what) };
  const protocol: Protocol = oneOf(value.protocol, PROTOCOLS, "protocol", what, false);
  const port = inRange(value.port, LIMITS.port, "port", what);
  return { family, protocol, address: addressOf(value.address, family, what), port };
}

/** A row of services being created (StateStore.intend): its key's JSON and its vip flag; throws SavedStateError. */
export function decodeCreating(key: unknown, vip: unknown): Creating {
  return { key: keyOf(key, "service being created"), vip: vip === 1 || vip === true };
}

/** The SavedService of a row (`id` and its JSON `data`); throws SavedStateError naming the problem. */
export function decodeSavedService(id: string, data: unknown): SavedService {
  const what = `service ${JSON.stringify(id)}`;
  if (!isRecord(data)) throw new SavedStateError(`${what}: not an object`);
  return {
    id,
    source: sourceOf(data.source, what),
    fields: fieldsOf(data.fields, what),
    key: keyOf(data.key, what),
    vip: data.vip === true,
  };
}

/** The SavedBackend of a row; throws SavedStateError naming the problem. */
export function decodeSavedBackend(service: string, id: string, data: unknown): SavedBackend {
  const what = `backend ${JSON.stringify(id)} of service ${JSON.stringify(service)}`;
  if (!isRecord(data)) throw new SavedStateError(`${what}: not an object`);
  const family = familyOf(data.family, what);
  const drain = decodeDrain(data.drain, what);
  return {
    service,
    id,
    source: sourceOf(data.source, what),
    fields: fieldsOf(data.fields, what),
    address: { address: addressOf(data.address, family, what), family },
    ...(drain !== null ? { drain } : {}),
  };
}

/** The JSON form of a drain in a saved backend row. */
function encodeDrain(drain: DrainState): Record<string, unknown> {
  return { started: drain.started, deadline: drain.deadline, then: drain.then, phase: drain.phase, node: drain.node };
}

/** A drain read back from a saved backend row (`what`); null when absent; throws SavedStateError when malformed. */
function decodeDrain(value: unknown, what: string): DrainState | null {
  if (value === undefined || value === null) return null;
  if (!isRecord(value)) throw new SavedStateError(`${what}: drain must be an object`);
  const { started, deadline } = value;
  if (typeof started !== "number" || !Number.isFinite(started)) throw new SavedStateError(`${what}: drain.started must be a number`);
  if (typeof deadline !== "number" || !Number.isFinite(deadline)) throw new SavedStateError(`${what}: drain.deadline must be a number`);
  const then = oneOf(value.then, DRAIN_THEN, "drain.then", what, false);
  const phase = oneOf(value.phase, DRAIN_PHASES, "drain.phase", what, false);
  const node = typeof value.node === "string" ? value.node : null;
  return { started, deadline, then, phase, node };
}

/** The JSON `data` of a service row (what decodeSavedService reads back). */
export function encodeSavedService(service: SavedService): Record<string, unknown> {
  return { source: service.source, fields: service.fields, key: service.key, vip: service.vip };
}

/** The JSON `data` of a backend row. */
export function encodeSavedBackend(backend: SavedBackend): Record<string, unknown> {
  return {
    source: backend.source,
    fields: backend.fields,
    address: backend.address.address,
    family: backend.address.family,
    ...(backend.drain !== undefined && backend.drain !== null ? { drain: encodeDrain(backend.drain) } : {}),
  };
}
