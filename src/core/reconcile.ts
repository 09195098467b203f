/**
 * Reconciliation, the pure part: given the services gorb manages (as it would write them) and the kernel's
 * table, the writes that make the kernel match, each with the reason in words. Used at start-up (restore)
 * and by the periodic and on-demand reconcile.
 *
 * Rules:
 *   - What already matches is never written: no delete-and-recreate, so connections and counters survive.
 *   - A service missing from IPVS is added with every backend; a service whose scheduler, flags, timeout,
 *     netmask or persistence engine differ is changed in place (SET_SERVICE).
 *   - A backend missing from its service is added; one whose weight, forwarding method, thresholds or tunnel
 *     differ is changed in place (SET_DEST); a destination in a gorb service that gorb does not know is
 *     deleted (the service comes back as gorb knows it).
 *   - Services in IPVS that gorb does not manage are not looked at.
 */
import { describeDestination, describeService, destinationKeyId, serviceKeyId } from "../ipvs/address.ts";
import type { Destination, DestinationConfig, IpvsOp, Service, ServiceConfig, ServiceWithDestinations } from "../ipvs/types.ts";
import { canonicalTunnel } from "../ipvs/validate.ts";
import { initialWeightState, type WeightState } from "../health/weight.ts";
import type { PulseType } from "../health/options.ts";

/** A service as gorb wants it in the kernel. */
export interface WantedService {
  readonly id: string;
  readonly config: ServiceConfig;
  readonly backends: readonly WantedBackend[];
}

/** A backend as gorb wants it in the kernel (its weight is the effective weight). */
export interface WantedBackend {
  readonly id: string;
  readonly dest: DestinationConfig;
}

/** One write that repairs a difference. */
export interface Repair {
  readonly op: IpvsOp;
  /** The gorb service it repairs. */
  readonly service: string;
  /** The gorb backend it repairs; null for the service itself or a destination gorb does not know. */
  readonly backend: string | null;
  /** What was wrong, e.g. "tcp 10.0.0.1:80 is missing from IPVS" or "10.1.0.1:80: weight 7 in IPVS, want 100". */
  readonly reason: string;
}

function flagsText(config: Pick<ServiceConfig, "flags">): string {
  const f = config.flags;
  const names = Object.entries(f)
    .filter(([, on]) => on)
    .map(([name]) => name);
  return names.length === 0 ? "none" : names.join("|");
}

/** What differs between the service gorb wants and the one IPVS has, as "scheduler rr in IPVS, want wrr". */
export function serviceDifferences(wanted: ServiceConfig, found: ServiceConfig): string[] {
  const out: string[] = [];
  if (wanted.scheduler !== found.scheduler) out.push(`scheduler ${found.scheduler} in IPVS, want ${wanted.scheduler}`);
  if (flagsText(wanted) !== flagsText(found)) out.push(`flags ${flagsText(found)} in IPVS, want ${flagsText(wanted)}`);
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
export function destinationDifferences(wanted: DestinationConfig, found: DestinationConfig): string[] {
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

/** The writes that make `table` match `wanted` (see the module comment); [] when it already does. */
export function planRepairs(wanted: readonly WantedService[], table: readonly ServiceWithDestinations[]): Repair[] {
  const kernel = new Map<string, { service: Service; dests: readonly Destination[] }>();
  for (const entry of table) kernel.set(serviceKeyId(entry.service.key), { service: entry.service, dests: entry.destinations });
  const repairs: Repair[] = [];
  for (const svc of wanted) {
    const key = svc.config.key;
    const found = kernel.get(serviceKeyId(key));
    if (found === undefined) {
      repairs.push({
        op: { op: "add-service", service: svc.config },
        service: svc.id,
        backend: null,
        reason: `${describeService(key)} is missing from IPVS`,
      });
      for (const b of svc.backends) {
        repairs.push({
          op: { op: "add-destination", service: key, destination: b.dest },
          service: svc.id,
          backend: b.id,
          reason: `${describeDestination(b.dest)} is missing from IPVS`,
        });
      }
      continue;
    }
    const diffs = serviceDifferences(svc.config, found.service);
    if (diffs.length > 0) {
      repairs.push({
        op: { op: "update-service", service: svc.config },
        service: svc.id,
        backend: null,
        reason: `${describeService(key)}: ${diffs.join(", ")}`,
      });
    }
    const dests = new Map(found.dests.map((d) => [destinationKeyId(d), d] as const));
    for (const b of svc.backends) {
      const id = destinationKeyId(b.dest);
      const dest = dests.get(id);
      dests.delete(id);
      if (dest === undefined) {
        repairs.push({
          op: { op: "add-destination", service: key, destination: b.dest },
          service: svc.id,
          backend: b.id,
          reason: `${describeDestination(b.dest)} is missing from IPVS`,
        });
        continue;
      }
      const destDiffs = destinationDifferences(b.dest, dest);
      if (destDiffs.length > 0) {
        repairs.push({
          op: { op: "update-destination", service: key, destination: b.dest },
          service: svc.id,
          backend: b.id,
          reason: `${describeDestination(b.dest)}: ${destDiffs.join(", ")}`,
        });
      }
    }
    for (const extra of dests.values()) {
      repairs.push({
        op: { op: "delete-destination", service: key, destination: { family: extra.family, address: extra.address, port: extra.port } },
        service: svc.id,
        backend: null,
        reason: `${describeDestination(extra)} in ${describeService(key)} is not one of gorb's backends`,
      });
    }
  }
  return repairs;
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
