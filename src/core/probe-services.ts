/**
 * Checks through the VIP, the kernel side (pure). A backend whose pulse says `"via": "vip"` gets a firewall-mark
 * service of its own: mark M (from gorb's mark range), the service's family, scheduler rr, and one destination,
 * that backend with its forwarding method and tunnel, weight 1 whatever the backend's health (the probe must reach
 * a drained backend to see it recover). The probe socket carries SO_MARK M, so IPVS, which sees locally generated
 * packets at LOCAL_OUT, forwards the probe exactly as it forwards a client of that backend: a DR backend without
 * the VIP on its loopback, or a tunnel backend without its tunnel, fails its check.
 *
 * These services are gorb's own: they are not in the desired state (no GET /service, status, metrics, apply or
 * diff sees them), only the reconciler writes them, and every fwmark service in the range that no backend wants is
 * deleted (stale ones of an earlier run included). A user fwmark service in the range is refused.
 */
import type { DestinationConfig, ServiceConfig, ServiceKey } from "../ipvs/types.ts";
import { isFwmarkKey, NO_FLAGS } from "../ipvs/types.ts";
import { ValidationError } from "./errors.ts";
import { formatMarkRange, type MarkRange } from "./mark-range.ts";
import type { ObservedTable, WantedService } from "./reconcile.ts";

/** The id under which a probe service's repairs are planned (never a user service id: "/" is refused there). */
export const PROBE_SERVICE_ID = "gorb/probe";

function inMarkRange(range: MarkRange, mark: number): boolean {
  return mark >= range.first && mark <= range.last;
}

/** True for a service key gorb's probe services use. */
export function isProbeKey(range: MarkRange, key: ServiceKey): boolean {
  return isFwmarkKey(key) && inMarkRange(range, key.fwmark);
}

/** A user fwmark service must stay out of the range: the 400 names `fwmark`. */
export function checkUserFwmark(range: MarkRange, fwmark: number | null): void {
  if (fwmark !== null && inMarkRange(range, fwmark)) {
    throw new ValidationError(
      "fwmark",
      `${fwmark} (0x${fwmark.toString(16)}) is in the range gorb keeps for checks through the VIP (--probe-marks ${formatMarkRange(range)})`,
    );
  }
}

/** One backend checked through the VIP: its mark, its service's key and its destination as the service has it. */
export interface ProbeRoute {
  readonly mark: number;
  readonly service: ServiceKey;
  readonly dest: DestinationConfig;
}

/** The probe service of a route. */
function probeServiceConfig(route: ProbeRoute): ServiceConfig {
  const family = route.service.family;
  return { key: { family, fwmark: route.mark }, scheduler: "rr", flags: NO_FLAGS, timeout: 0, netmask: family === "inet6" ? 128 : 32, pe: null };
}

/** The probe service's one destination: the backend as clients reach it, always weight 1, no thresholds. */
function probeDestination(dest: DestinationConfig): DestinationConfig {
  return { ...dest, weight: 1, upperThreshold: 0, lowerThreshold: 0 };
}

/**
 * The reconciler's view of the probe services: one complete service per route, and every service of the range
 * that `observed` has and no route wants, absent.
 */
export function wantedProbeServices(routes: Iterable<ProbeRoute>, observed: ObservedTable, range: MarkRange): WantedService[] {
  const out: WantedService[] = [];
  const marks = new Set<string>();
  for (const route of routes) {
    marks.add(`${route.service.family}/${route.mark}`);
    const dest = probeDestination(route.dest);
    out.push({ id: PROBE_SERVICE_ID, config: probeServiceConfig(route), backends: [{ id: `fwmark ${route.mark}`, dest }], complete: true });
  }
  for (const found of observed.values()) {
    const key = found.config.key;
    if (!isFwmarkKey(key) || !inMarkRange(range, key.fwmark) || marks.has(`${key.family}/${key.fwmark}`)) continue;
    out.push({ id: PROBE_SERVICE_ID, config: null, key, backends: [] });
  }
  return out;
}
