/**
 * Restore, the pure part: the saved rows read back into desired-state records, in one pass (linear in the
 * number of rows: every check is an index lookup), with the weight each restored backend starts at taken from
 * the kernel's table (restoredWeight). Rows that no longer read back are dropped with the reason.
 *
 * Also: the fields and id of a destination restore adopts (see ./unknown-destinations.ts).
 */
import type { Pacer } from "../pacer.ts";
import { describeDestination } from "../ipvs/address.ts";
import { destinationKeyId, serviceKeyId } from "./keys.ts";
import type { DestinationConfig } from "../ipvs/types.ts";
import { ConflictError, GorbError, errorMessage } from "./errors.ts";
import type { ChangeTracker } from "./changes.ts";
import type { BackendSpec } from "./model.ts";
import type { Fields } from "./fields.ts";
import { overrideWeight } from "./drain.ts";
import { startingHealth } from "./health.ts";
import type { BackendRecord, DesiredState, ServiceRecord } from "./desired-state.ts";
import { checkId } from "./ids.ts";
import {
  backendFields,
  forwardedPortProblem,
  normalizeBackendFields,
  normalizeServiceFields,
  serviceFields,
  sorryPortProblem,
} from "./normalize.ts";
import { restoredWeight, type ObservedTable } from "./reconcile.ts";
import { toDestinationConfig, toServiceConfig } from "./resolve.ts";
import { type Creating, type SavedBackend, type SavedState, type SetAsideRow } from "./state.ts";

/** The saved state read back. */
export interface LoadedState {
  readonly services: readonly ServiceRecord[];
  /** Services whose VIP claim was saved. */
  readonly vips: readonly ServiceRecord[];
  readonly backends: number;
  /** Rows that could not be read back: what ('service "web" ({...})') and why. */
  readonly dropped: readonly { readonly what: string; readonly why: string }[];
  /** The rows to take out of the saved state (a service's with its backends'), with why. */
  readonly drop: readonly SetAsideRow[];
  /**
   * Restored objects that break a rule gorb checks only on writes, kept as they are: a dr, tunnel or local backend
   * (or a dr or ipip sorry server) on another port than its service's, saved by a gorb from before the rule
   * (clients reach it on the service's port, which its check does not probe). What and why, as `dropped`.
   */
  readonly portWarnings: readonly { readonly what: string; readonly why: string }[];
}

/**
 * Read the saved rows back (see the module comment); `watchId` names each backend's health watch. A turn of the
 * event loop whenever `pacer` says so: signals, and a slow start-up's other work, are served during a large restore.
 */
export async function loadSavedState(
  state: SavedState,
  table: ObservedTable,
  watchId: (service: string, backend: string) => string,
  pacer: Pacer,
): Promise<LoadedState> {
  const services: ServiceRecord[] = [];
  const vips: ServiceRecord[] = [];
  const dropped: { what: string; why: string }[] = [];
  const drop: SetAsideRow[] = [];
  const portWarnings: { what: string; why: string }[] = [];
  const backendsOf = new Map<string, SavedBackend[]>();
  for (const b of state.backends) {
    if (pacer.due()) await pacer.turn();
    let list = backendsOf.get(b.service);
    if (list === undefined) backendsOf.set(b.service, (list = []));
    list.push(b);
  }
  const keys = new Map<string, string>();
  const saved = new Set<string>();
  let backends = 0;
  for (const row of state.services) {
    if (pacer.due()) await pacer.turn(); // 20,000 services without backends held the event loop for a second
    saved.add(row.id);
    const what = `service ${JSON.stringify(row.id)}`;
    let record: ServiceRecord;
    try {
      checkId("service", row.id);
      // Read as a request body: fields an older gorb kept but the contract drops (vsid, unused pulse args) go.
      const fields = serviceFields(row.fields);
      const spec = normalizeServiceFields(fields);
      const config = toServiceConfig(spec, row.key);
      const other = keys.get(serviceKeyId(row.key));
      if (other !== undefined) throw new ConflictError(`service ${JSON.stringify(other)} already uses the same address`);
      keys.set(serviceKeyId(row.key), row.id);
      record = { id: row.id, source: row.source, fields, spec, config, backends: new Map(), byDest: new Map(), keep: new Set(), panic: false };
      const sorry = sorryPortProblem(spec);
      if (sorry !== null) portWarnings.push({ what: `the sorry server of ${what}`, why: `sorry_server.port ${sorry}` });
    } catch (error) {
      const why = errorMessage(error);
      dropped.push({ what: `${what} (${JSON.stringify(row.fields)})`, why });
      drop.push({ service: row.id, backend: null, why });
      continue;
    }
    const dests = table.get(serviceKeyId(record.config.key))?.dests;
    for (const b of backendsOf.get(row.id) ?? []) {
      if (pacer.due()) await pacer.turn();
      try {
        checkId("backend", b.id);
        const fields = backendFields(b.fields);
        const spec = normalizeBackendFields(fields, record.spec);
        const destId = destinationKeyId({ ...b.address, port: spec.port });
        const found = dests?.get(destId);
        const drain = b.drain ?? null;
        // Under maintenance or a drain the kernel's 0 is the override's, not health's: health starts from the
        // configured weight (as for a new backend), so an undrain gives it back once the override ends.
        const overridden = spec.maintenance || drain !== null;
        const weight = restoredWeight(spec.weight, spec.pulse.type, overridden ? null : (found?.weight ?? null));
        const dest = toDestinationConfig(spec, b.address, record.config.key, overrideWeight(spec, drain, weight.effective));
        const other = record.byDest.get(destId);
        if (other !== undefined) throw new ConflictError(`backend ${JSON.stringify(other)} already uses ${describeDestination(dest)}`);
        const backend: BackendRecord = {
          id: b.id,
          source: b.source,
          watchId: watchId(row.id, b.id),
          fields,
          spec,
          address: b.address,
          health: startingHealth(spec.pulse),
          weight,
          drain,
        };
        record.backends.set(b.id, backend);
        record.byDest.set(destId, b.id);
        backends++;
        const port = forwardedPortProblem(spec, record.spec);
        if (port !== null) portWarnings.push({ what: `backend ${JSON.stringify(b.id)} of ${what}`, why: `port ${port}` });
      } catch (error) {
        const why = errorMessage(error);
        dropped.push({ what: `backend ${JSON.stringify(b.id)} of ${what} (${JSON.stringify(b.fields)})`, why });
        drop.push({ service: row.id, backend: b.id, why });
        // What the kernel serves for it is left alone, whatever --unknown-destinations says: it is not unknown.
        const destId = droppedDestId(b, record.spec.port);
        if (!record.byDest.has(destId)) record.keep.add(destId);
      }
    }
    services.push(record);
    if (row.vip) vips.push(record);
  }
  for (const [serviceId, rows] of backendsOf) {
    if (pacer.due()) await pacer.turn();
    if (saved.has(serviceId)) continue;
    for (const b of rows) drop.push({ service: serviceId, backend: b.id, why: "its service has no row" }); // orphans
  }
  return { services, vips, backends, dropped, drop, portWarnings };
}

/**
 * The destination a backend row that no longer reads stands for: its saved address, at the port its fields give
 * when that is a port number, else at the service's (a backend's default).
 */
function droppedDestId(b: SavedBackend, servicePort: number): string {
  const port = b.fields["port"];
  return destinationKeyId({ ...b.address, port: typeof port === "number" && Number.isInteger(port) ? port : servicePort });
}

/** The request fields of an adopted destination: what the kernel has, with pulse none. */
function adoptedFields(dest: DestinationConfig): Fields {
  const fields: Fields = new Map<string, unknown>([
    ["host", dest.address],
    ["port", dest.port],
    ["weight", dest.weight],
    ["method", dest.forward === "bypass" ? "nat" : dest.forward],
    ["pulse", { type: "none" }],
  ]);
  if (dest.upperThreshold !== 0) fields.set("upper_threshold", dest.upperThreshold);
  if (dest.lowerThreshold !== 0) fields.set("lower_threshold", dest.lowerThreshold);
  if (dest.forward === "tunnel" && dest.tunnel !== null) {
    fields.set("tunnel_type", dest.tunnel.type);
    if (dest.tunnel.port !== 0) fields.set("tunnel_port", dest.tunnel.port);
    fields.set("tunnel_checksum", dest.tunnel.checksum);
  }
  return fields;
}

/** The id an adopted destination gets: its address and port ("10.1.0.9:80", "[2001:db8::1]:80"). */
function adoptedId(dest: DestinationConfig, taken: (id: string) => boolean): string {
  const base = describeDestination(dest);
  let id = base;
  for (let n = 2; taken(id); n++) id = `${base}-${n}`;
  return id;
}

/**
 * Take a destination the saved state does not know as an API-owned backend with pulse none, at the weight the
 * kernel has; marks its row for the next commit. When its fields do not make a valid backend, it is kept
 * (left serving) and the reason returned.
 */
export function adoptDestination(
  desired: DesiredState,
  service: ServiceRecord,
  dest: DestinationConfig,
  watchId: (service: string, backend: string) => string,
  tracker: ChangeTracker,
): string | null {
  const fields = adoptedFields(dest);
  let spec: BackendSpec;
  try {
    spec = normalizeBackendFields(fields, service.spec);
  } catch (error) {
    if (!(error instanceof GorbError)) throw error;
    service.keep.add(destinationKeyId(dest));
    return error.message;
  }
  const id = adoptedId(dest, (taken) => service.backends.has(taken));
  desired.addBackend(service, {
    id,
    source: "api",
    watchId: watchId(service.id, id),
    fields,
    spec,
    address: { address: dest.address, family: dest.family },
    health: startingHealth(spec.pulse),
    weight: { effective: spec.weight, recovering: false },
    drain: null,
  });
  tracker.touch(service.id, id);
  return null;
}

/**
 * Of the services gorb was creating when it stopped (SavedState.creating), the ones to remove at start-up: those
 * IPVS holds and the saved state does not (`saved` tells by serviceKeyId). A service the state holds was saved
 * after all; one IPVS does not hold was never made, or undone. Each key once, in the order recorded.
 */
export function unsavedCreations(creating: readonly Creating[], kernel: ObservedTable, saved: (keyId: string) => boolean): Creating[] {
  const out: Creating[] = [];
  const seen = new Set<string>();
  for (const entry of creating) {
    const id = serviceKeyId(entry.key);
    if (seen.has(id) || saved(id) || !kernel.has(id)) continue;
    seen.add(id);
    out.push(entry);
  }
  return out;
}
