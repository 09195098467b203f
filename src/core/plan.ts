/**
 * Planning a declarative apply: the services (with backends) a file declares, compared with the ones gorb
 * manages, give a list of changes, each one of
 *   create     a service or backend the file declares and gorb does not have;
 *   update     changed in place (SET_SERVICE / SET_DEST: scheduler, flags, persistence, weight, method,
 *              thresholds, tunnel, pulse), or only taken over by the file (it was created over the API);
 *   recreate   deleted and created again, because what identifies it in IPVS changed (a service's address,
 *              port, protocol, fwmark or family; a backend's address or port);
 *   delete     created by the file, and no longer declared.
 * Services and backends created over the API and not declared are kept; services in IPVS that gorb does not
 * manage are never touched (declaring one of their keys is a conflict). A host that spells the same address
 * another way ("2001:0DB8::1" for "2001:db8::1") is no change: nothing would change in IPVS.
 *
 * Everything is checked before anything changes: a bad field, a name that does not resolve or a conflict
 * rejects the whole set, with the path of the problem ("services.web.backends.b1.port: ...").
 */
import { addressFamily, canonicalAddress, describeDestination, describeService } from "../ipvs/address.ts";
import { destinationKeyId, serviceKeyId } from "./keys.ts";
import type { DestinationConfig, DestinationKey, ServiceConfig, ServiceKey } from "../ipvs/types.ts";
import { isFwmarkKey } from "../ipvs/types.ts";
import type { DrainState } from "./drain.ts";
import type { Fields } from "./fields.ts";
import { initialWeightState } from "../health/weight.ts";
import type { BackendSpec, ServiceSpec } from "./model.ts";
import { normalizeBackendFields, normalizeServiceFields } from "./normalize.ts";
import { Pacer } from "../pacer.ts";
import { PathConflictError, formatPath, underPath } from "./path.ts";
import {
  backendLiteral,
  resolveBackendAddress,
  resolveServiceKey,
  toDestinationConfig,
  toServiceConfig,
  type HostResolver,
  type ResolvedAddress,
} from "./resolve.ts";
import type { Source } from "./state.ts";
import { backendOptionsView, serviceOptionsView } from "./views.ts";

/** A backend as a declarative set lists it: its id and its request fields. */
export interface DeclaredBackend {
  readonly id: string;
  readonly fields: Fields;
}

/** A service as a declarative set lists it, with its backends. */
export interface DeclaredService {
  readonly id: string;
  readonly fields: Fields;
  readonly backends: readonly DeclaredBackend[];
}

/** A backend gorb manages, as the planner sees it. */
export interface ManagedBackend {
  readonly id: string;
  readonly source: Source;
  readonly fields: Fields;
  readonly spec: BackendSpec;
  readonly address: ResolvedAddress;
  /** Its drain (./drain.ts), in progress or held; absent or null when none. */
  readonly drain?: DrainState | null;
}

/** A service gorb manages, as the planner sees it. */
export interface ManagedService {
  readonly id: string;
  readonly source: Source;
  readonly fields: Fields;
  readonly spec: ServiceSpec;
  readonly config: ServiceConfig;
  readonly backends: readonly ManagedBackend[];
}

/** A declared backend, normalised and resolved. */
export interface ResolvedBackend {
  readonly id: string;
  readonly fields: Fields;
  readonly spec: BackendSpec;
  readonly address: ResolvedAddress;
  readonly dest: DestinationConfig;
}

/** A declared service, normalised and resolved. */
export interface ResolvedService {
  readonly id: string;
  readonly fields: Fields;
  readonly spec: ServiceSpec;
  readonly config: ServiceConfig;
  readonly backends: readonly ResolvedBackend[];
}

/** What a change does. */
export type ChangeAction = "create" | "update" | "recreate" | "delete";

/** One step of a change, run through Gorb's own mutations. */
export type ApplyStep =
  | { readonly kind: "create-service"; readonly service: string; readonly fields: Fields }
  | { readonly kind: "update-service"; readonly service: string; readonly fields: Fields }
  | { readonly kind: "delete-service"; readonly service: string }
  | {
      readonly kind: "create-backend";
      readonly service: string;
      readonly backend: string;
      readonly fields: Fields;
      readonly source: Source;
      /** The address the plan resolved the declared host to, for the service's family (not looked up again). */
      readonly address?: ResolvedAddress;
      /** The drain the backend had in the service this re-creates: it goes on (an apply leaves drains alone). */
      readonly drain?: DrainState;
    }
  | { readonly kind: "update-backend"; readonly service: string; readonly backend: string; readonly fields: Fields }
  | { readonly kind: "delete-backend"; readonly service: string; readonly backend: string }
  | { readonly kind: "take-over"; readonly service: string; readonly backend: string | null };

/** One line of a plan. */
export interface PlannedChange {
  readonly action: ChangeAction;
  readonly service: string;
  /** null when the change is about the service itself. */
  readonly backend: string | null;
  /** What it is or what changes, e.g. ["tcp 10.0.0.1:80, wrr"] or ["method: \"wrr\" -> \"rr\""]. */
  readonly details: readonly string[];
  readonly steps: readonly ApplyStep[];
  /**
   * Re-creations that take the address another one frees (a service moved to the address another moves off, two
   * backends that swap addresses), and a re-created service with its re-added backends, share a number: they run as
   * one, every delete of them before any create, and fail together. Absent for the others.
   */
  readonly together?: number;
}

/**
 * Normalise and resolve a declared set. Throws a ValidationError whose field is the path of the problem
 * ("services.web.backends.b1.host: cannot resolve ..."). `managed`: the services gorb has, whose addresses a name
 * that still resolves to them keeps (ResolveOptions.keep: a name with several addresses is not a move).
 */
export async function resolveDeclared(
  declared: readonly DeclaredService[],
  resolver: HostResolver,
  defaultAddress: string | null,
  vipInterface: string | null = null,
  managed: readonly ManagedService[] = [],
): Promise<ResolvedService[]> {
  const out: ResolvedService[] = [];
  const pacer = new Pacer();
  const current = new Map(managed.map((s) => [s.id, s] as const));
  for (const service of declared) {
    if (pacer.due()) await pacer.turn();
    const at = ["services", service.id];
    const have = current.get(service.id);
    let spec: ServiceSpec;
    let key: ServiceKey;
    let config: ServiceConfig;
    try {
      spec = normalizeServiceFields(service.fields);
      key = await resolveServiceKey(spec, resolver, defaultAddress, vipInterface, have?.config.key ?? null);
      config = toServiceConfig(spec, key);
    } catch (error) {
      throw underPath(error, at);
    }
    const held = have === undefined ? null : new Map(have.backends.map((b) => [b.id, b.address] as const));
    const backends: ResolvedBackend[] = [];
    for (const backend of service.backends) {
      if (pacer.due()) await pacer.turn();
      try {
        const bspec = normalizeBackendFields(backend.fields, spec);
        const address = backendLiteral(bspec, key) ?? (await resolveBackendAddress(bspec, key, resolver, held?.get(backend.id) ?? null));
        const dest = toDestinationConfig(bspec, address, key, initialWeightState(bspec.weight).effective);
        backends.push({ id: backend.id, fields: backend.fields, spec: bspec, address, dest });
      } catch (error) {
        throw underPath(error, [...at, "backends", backend.id]);
      }
    }
    out.push({ id: service.id, fields: service.fields, spec, config, backends });
  }
  return out;
}

/**
 * A `host` as compared: an address literal in its canonical spelling ("2001:0DB8:0::1" and "2001:db8::1" are one
 * address, and nothing would change in IPVS), a name as written (it is looked up again on its own).
 */
function hostIdentity(host: unknown): unknown {
  return isAddressLiteral(host) ? canonicalAddress(host) : host;
}

/** Whether `host` is an address literal, whose `address` in a view only repeats it. */
function isAddressLiteral(host: unknown): host is string {
  return typeof host === "string" && addressFamily(host) !== null;
}

/**
 * "a: 1 -> 2" for each wire field that differs between two views (the values as written: a `host` that only
 * spells the same address another way does not differ, and the saved one is kept). `address` is shown only when a
 * host is a name (or unset): it is then what the name resolved to, while for two literals it repeats `host`.
 */
function viewDifferences(before: Record<string, unknown>, after: Record<string, unknown>, skip: readonly string[]): string[] {
  const out: string[] = [];
  const addressRepeatsHost = isAddressLiteral(before.host) && isAddressLiteral(after.host);
  for (const name of Object.keys(after)) {
    if (skip.includes(name) || (name === "address" && addressRepeatsHost)) continue;
    // The same spelling (the usual case) is compared first: canonical forms only when the two differ.
    if (name === "host" && (before[name] === after[name] || hostIdentity(before[name]) === hostIdentity(after[name]))) continue;
    const a = JSON.stringify(before[name]);
    const b = JSON.stringify(after[name]);
    if (a !== b) out.push(`${name}: ${a} -> ${b}`);
  }
  return out;
}

function serviceView(spec: ServiceSpec, config: ServiceConfig): Record<string, unknown> {
  return { ...serviceOptionsView(spec, config) };
}

function backendView(spec: BackendSpec, address: ResolvedAddress): Record<string, unknown> {
  return { ...backendOptionsView(spec, "", address.address) };
}

function serviceSummary(config: ServiceConfig, backends: number): string {
  return `${describeService(config.key)}, ${config.scheduler}, ${backends} backend${backends === 1 ? "" : "s"}`;
}

function backendSummary(dest: DestinationConfig, spec: BackendSpec): string {
  return `${describeDestination(dest)}, ${spec.method}, weight ${spec.weight}`;
}

/** Phase of each kind of change: deletes first (they free keys), creates last. */
const PHASE: Readonly<Record<string, number>> = {
  "delete:service": 0,
  "delete:backend": 1,
  "recreate:service": 2,
  "recreate:backend": 3,
  "update:service": 4,
  "update:backend": 5,
  "create:service": 6,
  "create:backend": 7,
};

/** "(created over the API)" style owner note for a service that is not the file's. */
function keyOwner(id: string): string {
  return `service ${JSON.stringify(id)} (created over the API)`;
}

/**
 * The changes that turn `managed` into `wanted` (see the module comment), in the order they must run.
 * `foreign` lists the keys of IPVS services gorb does not manage. Throws PathConflictError, naming the path,
 * when a declared service or backend would take an address that something kept already uses.
 */
export async function planApply(
  managed: readonly ManagedService[],
  wanted: readonly ResolvedService[],
  foreign: readonly ServiceKey[],
): Promise<PlannedChange[]> {
  const changes: PlannedChange[] = [];
  const moves = new Map<PlannedChange, Move>();
  const links = new Map<PlannedChange, PlannedChange>();
  const created = new Map<PlannedChange, PlannedChange>();
  const pacer = new Pacer();
  for (const _ of planSteps(managed, wanted, foreign, changes, moves, { links, created })) if (pacer.due()) await pacer.turn();
  return await byPhase(joinMoves(changes, moves, { links, created }), pacer);
}

/** Backend changes that go with a service's change: a re-creation's (`links`), a new service's (`created`). */
interface Links {
  readonly links: Map<PlannedChange, PlannedChange>;
  readonly created: Map<PlannedChange, PlannedChange>;
}

/** The key a re-creation frees and the one it takes (a service's, or a backend's within its service). */
interface Move {
  readonly from: string;
  readonly to: string;
}

/**
 * `changes` with the re-creations that depend on each other (one takes the key another frees, in a chain or a
 * cycle) numbered together (PlannedChange.together), and with each re-created service's re-added backends (`links`:
 * backend change -> its service's re-creation). Run one by one, the first of a chain would find its new key still
 * held, fail, and in a cycle fail again at every apply; a backend re-added to a re-creation that failed would be
 * left on a service record its undo took away. A new service on the key a re-creation frees goes with it too, with
 * its backends (`created`): a re-creation that failed takes its key back, which the new one would hold as well. So
 * does a new backend on the destination a re-created backend of its service frees.
 */
function joinMoves(changes: readonly PlannedChange[], moves: ReadonlyMap<PlannedChange, Move>, { links, created }: Links): PlannedChange[] {
  if (moves.size < 2 && links.size === 0) return [...changes];
  const parent = new Map<PlannedChange, PlannedChange>();
  const root = (c: PlannedChange): PlannedChange => {
    let at = c;
    for (let up = parent.get(at); up !== undefined && up !== at; up = parent.get(at)) at = up;
    parent.set(c, at);
    return at;
  };
  const join = (a: PlannedChange, b: PlannedChange) => {
    const [ra, rb] = [root(a), root(b)];
    if (ra !== rb) parent.set(ra, rb);
  };
  const freeing = new Map([...moves].map(([c, m]) => [m.from, c] as const));
  for (const [c, m] of moves) {
    const other = freeing.get(m.to);
    if (other !== undefined && other !== c) join(c, other);
  }
  for (const [backend, service] of links) join(backend, service);
  for (const [backend, service] of created) if (parent.has(service)) join(backend, service);
  const size = new Map<PlannedChange, number>();
  for (const c of parent.keys()) size.set(root(c), (size.get(root(c)) ?? 0) + 1);
  const numbers = new Map<PlannedChange, number>();
  let next = 0;
  return changes.map((c) => {
    if (!parent.has(c) || (size.get(root(c)) ?? 0) < 2) return c;
    const r = root(c);
    let together = numbers.get(r);
    if (together === undefined) numbers.set(r, (together = next++));
    return { ...c, together };
  });
}

/**
 * The work of planApply, adding to `changes` in the declared order; it yields before each declared service, and
 * planApply takes a turn of the event loop every few milliseconds (../pacer.ts) there: planning 10,000 backends was
 * one block of work for the requests waiting meanwhile.
 */
function* planSteps(
  managed: readonly ManagedService[],
  wanted: readonly ResolvedService[],
  foreign: readonly ServiceKey[],
  changes: PlannedChange[],
  moves: Map<PlannedChange, Move>,
  { links, created }: Links,
): Generator<void> {
  const current = new Map(managed.map((s) => [s.id, s] as const));
  const declared = new Set(wanted.map((s) => s.id));

  // Keys that stay taken whatever the file says: services created over the API that the file does not declare,
  // and services gorb does not manage at all.
  const taken = new Map<string, string>();
  for (const s of managed) {
    if (!declared.has(s.id) && s.source === "api") taken.set(serviceKeyId(s.config.key), keyOwner(s.id));
  }
  for (const key of foreign) taken.set(serviceKeyId(key), `a service in IPVS that gorb does not manage`);
  // Who claimed each key (a service id): its path is written only into an error.
  const claimed = new Map<string, string>();
  for (const s of wanted) {
    const id = serviceKeyId(s.config.key);
    const other = claimed.get(id);
    if (other !== undefined) {
      throw new PathConflictError(["services", s.id], `${describeService(s.config.key)} is also the address of ${formatPath(["services", other])}`);
    }
    claimed.set(id, s.id);
    const owner = taken.get(id);
    if (owner !== undefined) {
      throw new PathConflictError(["services", s.id], `${describeService(s.config.key)} is already used by ${owner}`);
    }
  }

  for (const s of managed) {
    if (declared.has(s.id) || s.source !== "file") continue;
    changes.push({
      action: "delete",
      service: s.id,
      backend: null,
      details: [`${serviceSummary(s.config, s.backends.length)}; no longer declared`],
      steps: [{ kind: "delete-service", service: s.id }],
    });
  }

  for (const want of wanted) {
    yield;
    const at = ["services", want.id];
    const have = current.get(want.id);
    const keptApi = have === undefined ? [] : have.backends.filter((b) => b.source === "api" && !want.backends.some((w) => w.id === b.id));
    // Destinations must stay distinct within the service: the declared ones and the API's that are kept (whose ids
    // are not declared). Each is kept with the id of the backend that has it; its text is written only into an error.
    const dests = new Map<string, string>();
    for (const b of keptApi) dests.set(destinationKeyId({ ...b.address, port: b.spec.port }), b.id);
    for (const b of want.backends) {
      const id = destinationKeyId(b.dest);
      const other = dests.get(id);
      if (other !== undefined) {
        const owner = keptApi.some((k) => k.id === other) ? `backend ${JSON.stringify(other)} (created over the API)` : formatPath([...at, "backends", other]);
        throw new PathConflictError([...at, "backends", b.id], `${describeDestination(b.dest)} is also the address of ${owner}`);
      }
      dests.set(id, b.id);
    }

    if (have === undefined) {
      const create: PlannedChange = {
        action: "create",
        service: want.id,
        backend: null,
        details: [serviceSummary(want.config, want.backends.length)],
        steps: [{ kind: "create-service", service: want.id, fields: want.fields }],
      };
      changes.push(create);
      // It frees no key (its own `from` is taken by no one): it joins the re-creation that frees its key, if any.
      moves.set(create, { from: `c\u0000${want.id}`, to: `s\u0000${serviceKeyId(want.config.key)}` });
      for (const b of want.backends) {
        const change = createBackend(want.id, b, []);
        changes.push(change);
        created.set(change, create);
      }
      continue;
    }

    const serviceDiffs = viewDifferences(serviceView(have.spec, have.config), serviceView(want.spec, want.config), []);
    if (serviceKeyId(have.config.key) !== serviceKeyId(want.config.key) || isFwmarkKey(have.config.key) !== isFwmarkKey(want.config.key)) {
      const details = [...serviceDiffs, `${describeService(have.config.key)} -> ${describeService(want.config.key)}: a new IPVS service`];
      const recreate: PlannedChange = {
        action: "recreate",
        service: want.id,
        backend: null,
        details,
        steps: [
          { kind: "delete-service", service: want.id },
          { kind: "create-service", service: want.id, fields: want.fields },
        ],
      };
      changes.push(recreate);
      moves.set(recreate, { from: `s\u0000${serviceKeyId(have.config.key)}`, to: `s\u0000${serviceKeyId(want.config.key)}` });
      // A backend re-added on its destination keeps its drain: an operator's drain is not the file's to end.
      const before = new Map(have.backends.map((o) => [o.id, o] as const));
      const drainOf = (id: string, dest: DestinationKey): DrainState | null => {
        const old = before.get(id);
        const same = old !== undefined && destinationKeyId({ ...old.address, port: old.spec.port }) === destinationKeyId(dest);
        return same ? (old.drain ?? null) : null;
      };
      // Its backends are re-added with it, as one change set (see joinMoves).
      const readd = (change: PlannedChange) => {
        changes.push(change);
        links.set(change, recreate);
      };
      for (const b of want.backends) readd(createBackend(want.id, b, ["re-added to the re-created service"], drainOf(b.id, b.dest)));
      for (const b of keptApi) {
        const drain = drainOf(b.id, { ...b.address, port: b.spec.port });
        readd({
          action: "create",
          service: want.id,
          backend: b.id,
          details: [
            `${describeDestination({ ...b.address, port: b.spec.port })}, created over the API; re-added to the re-created service` +
              (drain === null ? "" : `; its drain goes on (${drain.phase})`),
          ],
          steps: [{ kind: "create-backend", service: want.id, backend: b.id, fields: b.fields, source: "api", ...(drain === null ? {} : { drain }) }],
        });
      }
      continue;
    }
    if (serviceDiffs.length > 0 || have.source !== "file") {
      const details = [...serviceDiffs];
      if (have.source !== "file") details.push("taken over by the file (it was created over the API)");
      const steps: ApplyStep[] = [];
      if (serviceDiffs.length > 0) steps.push({ kind: "update-service", service: want.id, fields: want.fields });
      if (have.source !== "file") steps.push({ kind: "take-over", service: want.id, backend: null });
      changes.push({ action: "update", service: want.id, backend: null, details, steps });
    }

    const haveBackends = new Map(have.backends.map((b) => [b.id, b] as const));
    const within = `b\u0000${want.id}\u0000`;
    for (const b of have.backends) {
      if (b.source !== "file" || want.backends.some((w) => w.id === b.id)) continue;
      changes.push({
        action: "delete",
        service: want.id,
        backend: b.id,
        details: [`${describeDestination({ ...b.address, port: b.spec.port })}; no longer declared`],
        steps: [{ kind: "delete-backend", service: want.id, backend: b.id }],
      });
    }
    for (const b of want.backends) {
      const old = haveBackends.get(b.id);
      if (old === undefined) {
        const create = createBackend(want.id, b, []);
        changes.push(create);
        // It frees no destination: it joins the re-creation of a backend that frees its own, if any (see joinMoves).
        moves.set(create, { from: `c${within}${b.id}`, to: within + destinationKeyId(b.dest) });
        continue;
      }
      const diffs = viewDifferences(backendView(old.spec, old.address), backendView(b.spec, b.address), ["vsid"]);
      const oldDest = { ...old.address, port: old.spec.port };
      if (destinationKeyId(oldDest) !== destinationKeyId(b.dest)) {
        const recreate: PlannedChange = {
          action: "recreate",
          service: want.id,
          backend: b.id,
          details: [...diffs, `${describeDestination(oldDest)} -> ${describeDestination(b.dest)}: a new IPVS destination`],
          steps: [
            { kind: "delete-backend", service: want.id, backend: b.id },
            { kind: "create-backend", service: want.id, backend: b.id, fields: b.fields, source: "file", address: b.address },
          ],
        };
        changes.push(recreate);
        moves.set(recreate, { from: within + destinationKeyId(oldDest), to: within + destinationKeyId(b.dest) });
        continue;
      }
      if (diffs.length > 0 || old.source !== "file") {
        const details = [...diffs];
        if (old.source !== "file") details.push("taken over by the file (it was created over the API)");
        const steps: ApplyStep[] = [];
        if (diffs.length > 0) steps.push({ kind: "update-backend", service: want.id, backend: b.id, fields: b.fields });
        if (old.source !== "file") steps.push({ kind: "take-over", service: want.id, backend: b.id });
        changes.push({ action: "update", service: want.id, backend: b.id, details, steps });
      }
    }
  }

}

/**
 * The changes by phase, keeping the declared order within a phase (and a service's backends after it): one bucket
 * per phase, not a sort of 11,000 changes; with a turn of the event loop whenever `pacer` says so.
 */
async function byPhase(changes: readonly PlannedChange[], pacer: Pacer): Promise<PlannedChange[]> {
  const buckets: PlannedChange[][] = [];
  for (const c of changes) {
    if (pacer.due()) await pacer.turn();
    const p = PHASE[`${c.action}:${c.backend === null ? "service" : "backend"}`] ?? 9;
    (buckets[p] ??= []).push(c);
  }
  return buckets.flatMap((bucket) => bucket ?? []);
}

function createBackend(service: string, b: ResolvedBackend, notes: readonly string[], drain: DrainState | null = null): PlannedChange {
  const kept = drain === null ? [] : [`its drain goes on (${drain.phase})`];
  return {
    action: "create",
    service,
    backend: b.id,
    details: [[backendSummary(b.dest, b.spec), ...notes, ...kept].join("; ")],
    steps: [{ kind: "create-backend", service, backend: b.id, fields: b.fields, source: "file", address: b.address, ...(drain === null ? {} : { drain }) }],
  };
}
