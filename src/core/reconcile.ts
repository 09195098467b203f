/**
 * The reconciler, pure part: given what gorb wants (desired services, each backend at its desired effective
 * weight) and what the kernel has (observed: a table read, or gorb's own record of what it wrote), the IPVS
 * writes that make the kernel match, each with the reason in words. Every write gorb makes goes through it:
 * API mutations, apply, restore, the periodic reconcile and health-driven weight changes, each scoped to the
 * services (or backends) concerned. Rolling a failed change back is planning again from the previous desired
 * state against what the kernel now has.
 *
 * Rules:
 *   - What already matches is never written: no delete-and-recreate, so connections and counters survive.
 *   - A service missing from IPVS is added with every backend listed; a service whose scheduler, flags,
 *     timeout, netmask or persistence engine differ is changed in place (SET_SERVICE); a service wanted absent
 *     (config null) is deleted with its destinations.
 *   - A backend missing from its service is added; one whose weight, forwarding method, thresholds or tunnel
 *     differ is changed in place (SET_DEST); a backend wanted absent is deleted.
 *   - With `complete`, the backends listed are all the service should have: any other destination is deleted
 *     (the service comes back as gorb knows it), except the ones in `keep` (destinations gorb was told to
 *     leave alone, e.g. found at start-up and reported). Without it only the backends listed are looked at,
 *     so a change to one backend of 20,000 costs one lookup.
 *   - Services not listed (in IPVS and not gorb's, or gorb's and out of scope) are not looked at.
 *   - Order: service deletes first (they free addresses), then per service in the order given: the service,
 *     its backends in the order given, the destinations to delete.
 */
import { describeDestination, describeService } from "../ipvs/address.ts";
import { destinationKeyId, serviceKeyId } from "./keys.ts";
import type {
  DestinationConfig,
  DestinationKey,
  IpvsOp,
  ServiceConfig,
  ServiceKey,
  ServiceWithDestinations,
} from "../ipvs/types.ts";
import { canonicalTunnel } from "../ipvs/validate.ts";
import { initialWeightState, type WeightState } from "../health/weight.ts";
import type { PulseType } from "../health/options.ts";
import type { Pacer } from "../pacer.ts";

/** A backend as gorb wants it in the kernel: `dest` (its weight is the effective weight), or absent (null). */
export interface WantedBackend {
  readonly id: string;
  readonly dest: DestinationConfig | null;
  /** The destination's key when `dest` is null (a backend to delete). */
  readonly key?: DestinationKey;
}

/** A service as gorb wants it in the kernel; see the module comment for `complete` and `keep`. */
export interface WantedService {
  readonly id: string;
  /** null: the service must not be in the kernel (`key` says which). */
  readonly config: ServiceConfig | null;
  readonly key?: ServiceKey;
  readonly backends: readonly WantedBackend[];
  /** True (the default) when `backends` lists every destination the service should have. */
  readonly complete?: boolean;
  /** Destination key ids (destinationKeyId) a complete plan leaves alone. */
  readonly keep?: ReadonlySet<string>;
}

/** One service as observed: its config and its destinations by destinationKeyId. */
export interface ObservedService {
  readonly config: ServiceConfig;
  readonly dests: ReadonlyMap<string, DestinationConfig>;
}

/** The observed kernel table, by serviceKeyId. */
export type ObservedTable = ReadonlyMap<string, ObservedService>;

/** One write, with what it repairs or changes. */
export interface Repair {
  readonly op: IpvsOp;
  /** The gorb service it concerns. */
  readonly service: string;
  /** The gorb backend it concerns; null for the service itself or a destination gorb does not know. */
  readonly backend: string | null;
  /** What was wrong, e.g. "tcp 10.0.0.1:80 is missing from IPVS" or "10.1.0.1:80: weight 7 in IPVS, want 100". */
  readonly reason: string;
  /**
   * The add puts back a destination that is not gorb's (one someone else added to a service of gorb's), which a
   * failed change took away: never recorded as gorb's (the kernel ledger).
   */
  readonly foreign?: true;
}

/** An operation of a plan is a Repair: the same shape serves mutations, health changes and reconciles. */
export type Operation = Repair;

/** One service of a table read as observed: its config, and its destinations in a map of its own. */
export function observedService(entry: ServiceWithDestinations): { config: ServiceConfig; readonly dests: Map<string, DestinationConfig> } {
  const dests = new Map<string, DestinationConfig>();
  for (const d of entry.destinations) dests.set(destinationKeyId(d), d);
  return { config: entry.service, dests };
}

/** The ObservedTable of a table read. */
export function observedTable(table: readonly ServiceWithDestinations[]): Map<string, ObservedService> {
  const out = new Map<string, ObservedService>();
  for (const entry of table) out.set(serviceKeyId(entry.service.key), observedService(entry));
  return out;
}

/** observedTable with a turn of the event loop whenever `pacer` says so (a restore's table of 20,000 services). */
export async function observedTablePaced(table: readonly ServiceWithDestinations[], pacer: Pacer): Promise<Map<string, ObservedService>> {
  const out = new Map<string, ObservedService>();
  for (const entry of table) {
    if (pacer.due()) await pacer.turn();
    out.set(serviceKeyId(entry.service.key), observedService(entry));
  }
  return out;
}

function flagsText(config: Pick<ServiceConfig, "flags">): string {
  const f = config.flags;
  const names = Object.entries(f)
    .filter(([, on]) => on)
    .map(([name]) => name);
  return names.length === 0 ? "none" : names.join("|");
}

function sameFlags(a: ServiceConfig["flags"], b: ServiceConfig["flags"]): boolean {
  return a.persistent === b.persistent && a.onePacket === b.onePacket && a.sched1 === b.sched1 && a.sched2 === b.sched2 && a.sched3 === b.sched3;
}

/** What differs between the service gorb wants and the one IPVS has, as "scheduler rr in IPVS, want wrr". */
function serviceDifferences(wanted: ServiceConfig, found: ServiceConfig): string[] {
  const out: string[] = [];
  if (wanted.scheduler !== found.scheduler) out.push(`scheduler ${found.scheduler} in IPVS, want ${wanted.scheduler}`);
  if (!sameFlags(wanted.flags, found.flags)) out.push(`flags ${flagsText(found)} in IPVS, want ${flagsText(wanted)}`);
  if (wanted.timeout !== found.timeout) out.push(`timeout ${found.timeout} in IPVS, want ${wanted.timeout}`);
  if (wanted.netmask !== found.netmask) out.push(`netmask /${found.netmask} in IPVS, want /${wanted.netmask}`);
  if ((wanted.pe ?? "") !== (found.pe ?? "")) out.push(`pe ${found.pe ?? "none"} in IPVS, want ${wanted.pe ?? "none"}`);
  return out;
}

function tunnelText(dest: Pick<DestinationConfig, "forward" | "tunnel">): string {
  const t = canonicalTunnel(dest.forward, dest.tunnel);
  return t === null ? "none" : `${t.type}:${t.port}:${t.checksum}`;
}

/** What differs between the destination gorb wants and the one IPVS has. */
function destinationDifferences(wanted: DestinationConfig, found: DestinationConfig): string[] {
  const out: string[] = [];
  if (wanted.weight !== found.weight) out.push(`weight ${found.weight} in IPVS, want ${wanted.weight}`);
  if (wanted.forward !== found.forward) out.push(`forwarding ${found.forward} in IPVS, want ${wanted.forward}`);
  if (wanted.upperThreshold !== found.upperThreshold) {
    out.push(`upper threshold ${found.upperThreshold} in IPVS, want ${wanted.upperThreshold}`);
  }
  if (wanted.lowerThreshold !== found.lowerThreshold) {
    out.push(`lower threshold ${found.lowerThreshold} in IPVS, want ${wanted.lowerThreshold}`);
  }
  if (tunnelText(wanted) !== tunnelText(found)) out.push(`tunnel ${tunnelText(found)} in IPVS, want ${tunnelText(wanted)}`);
  return out;
}

function destinationKeyOf(d: DestinationKey): DestinationKey {
  return { family: d.family, address: d.address, port: d.port };
}

/** The writes that make `observed` match `wanted` (see the module comment); [] when it already does. */
export function planOperations(wanted: readonly WantedService[], observed: ObservedTable): Operation[] {
  const plan = new OperationPlan();
  for (const svc of wanted) plan.add(svc, observed);
  return plan.operations();
}

/**
 * planOperations with a turn of the event loop whenever `pacer` says so, between services: a restore plans all of
 * gorb's (20,000 were tens of milliseconds in one block). `wanted` may be lazy (DesiredState.wantedEach).
 */
export async function planOperationsPaced(wanted: Iterable<WantedService>, observed: ObservedTable, pacer: Pacer): Promise<Operation[]> {
  const plan = new OperationPlan();
  for (const svc of wanted) {
    if (pacer.due()) await pacer.turn();
    plan.add(svc, observed);
  }
  return plan.operations();
}

/**
 * planOperations one service at a time, for a caller that takes turns of the event loop between services (an
 * apply's 1,000): add() each, then operations() in planOperations' order (service deletes first).
 */
export class OperationPlan {
  readonly #deletes: Operation[] = [];
  readonly #ops: Operation[] = [];

  add(svc: WantedService, observed: ObservedTable): void {
    planService(svc, observed, this.#deletes, this.#ops);
  }

  operations(): Operation[] {
    return [...this.#deletes, ...this.#ops];
  }
}

/** The add of a destination the kernel lacks. */
function missingDestination(service: string, key: ServiceKey, backend: string, dest: DestinationConfig): Operation {
  return { op: { op: "add-destination", service: key, destination: dest }, service, backend, reason: `${describeDestination(dest)} is missing from IPVS` };
}

/** The writes for one wanted service: its delete into `deletes`, every other write into `ops`. */
function planService(svc: WantedService, observed: ObservedTable, deletes: Operation[], ops: Operation[]): void {
  const key = svc.config?.key ?? svc.key;
  if (key === undefined) return;
  const found = observed.get(serviceKeyId(key));
  if (svc.config === null) {
    if (found !== undefined) {
      deletes.push({ op: { op: "delete-service", key }, service: svc.id, backend: null, reason: `${describeService(key)} is not wanted` });
    }
    return;
  }
  const config = svc.config;
  const complete = svc.complete ?? true;
  if (found === undefined) {
    ops.push({ op: { op: "add-service", service: config }, service: svc.id, backend: null, reason: `${describeService(key)} is missing from IPVS` });
    for (const b of svc.backends) if (b.dest !== null) ops.push(missingDestination(svc.id, key, b.id, b.dest));
    return;
  }
  const diffs = serviceDifferences(config, found.config);
  if (diffs.length > 0) {
    ops.push({ op: { op: "update-service", service: config }, service: svc.id, backend: null, reason: `${describeService(key)}: ${diffs.join(", ")}` });
  }
  const listed = complete ? new Set<string>() : null;
  for (const b of svc.backends) {
    const destKey = b.dest ?? b.key;
    if (destKey === undefined) continue;
    const id = destinationKeyId(destKey);
    listed?.add(id);
    const dest = found.dests.get(id);
    if (b.dest === null) {
      if (dest !== undefined) {
        ops.push({
          op: { op: "delete-destination", service: key, destination: destinationKeyOf(destKey) },
          service: svc.id,
          backend: b.id,
          reason: `${describeDestination(destKey)} is not wanted`,
        });
      }
      continue;
    }
    if (dest === undefined) {
      ops.push(missingDestination(svc.id, key, b.id, b.dest));
      continue;
    }
    const destDiffs = destinationDifferences(b.dest, dest);
    if (destDiffs.length > 0) {
      ops.push({
        op: { op: "update-destination", service: key, destination: b.dest },
        service: svc.id,
        backend: b.id,
        reason: `${describeDestination(b.dest)}: ${destDiffs.join(", ")}`,
      });
    }
  }
  if (listed === null) return;
  for (const [id, extra] of found.dests) {
    if (listed.has(id) || svc.keep?.has(id) === true) continue;
    ops.push({
      op: { op: "delete-destination", service: key, destination: destinationKeyOf(extra) },
      service: svc.id,
      backend: null,
      reason: `${describeDestination(extra)} in ${describeService(key)} is not one of gorb's backends`,
    });
  }
}

/**
 * Destinations of gorb's services that the kernel has and gorb does not know, as [service id, destination]:
 * what restore reports (or adopts, or removes) instead of deleting silently.
 */
export function unknownDestinations(
  wanted: readonly WantedService[],
  observed: ObservedTable,
): { readonly service: string; readonly dest: DestinationConfig }[] {
  const out: { service: string; dest: DestinationConfig }[] = [];
  for (const svc of wanted) {
    if (svc.config === null) continue;
    const found = observed.get(serviceKeyId(svc.config.key));
    if (found === undefined) continue;
    const known = new Set<string>();
    for (const b of svc.backends) {
      const k = b.dest ?? b.key;
      if (k !== undefined) known.add(destinationKeyId(k));
    }
    for (const [id, dest] of found.dests) if (!known.has(id)) out.push({ service: svc.id, dest });
  }
  return out;
}

/**
 * The weight state of a restored backend: a destination the kernel already has keeps the weight it has (never
 * above the configured one) until its first health check, so a backend drained before the restart stays
 * drained until a check passes; one the kernel lacks starts at its configured weight, as a new backend does.
 * A backend with a "none" pulse always has its configured weight.
 */
export function restoredWeight(configured: number, pulseType: PulseType, kernelWeight: number | null): WeightState {
  if (kernelWeight === null || pulseType === "none") return initialWeightState(configured);
  const effective = Math.max(0, Math.min(kernelWeight, configured));
  return { effective, recovering: effective < configured };
}
