/**
 * Failover: a service's quorum state and its sorry server (keepalived's `quorum`, `hysteresis` and
 * `sorry_server`), as pure functions of the desired state. Nothing here does I/O: the state decides desired
 * destinations (./desired-state.ts), the reconciler writes them, and Gorb publishes the transitions and runs
 * the hooks.
 *
 * Counting. Quorum counts backends, not weights: a backend is healthy when its last check passed (a `none`
 * pulse always is) and its configured weight is > 0 (an operator's drain does not count). Backends not checked
 * yet are "pending": they can keep a service up but never bring it up.
 *
 * The rule, with q = quorum and h = hysteresis (h < q):
 *   - an up service goes down when healthy + pending < q - h;
 *   - a down service comes back up when healthy >= q + h.
 * With quorum 0 and a sorry server, q = 1 and h = 0: the sorry server serves while no backend is up; so with a hook
 * (keepalived's quorum defaults to 1: its quorum_down runs when the last real server goes). With quorum 0 and
 * neither there is no state (always up, no events). A new service starts up and is
 * evaluated at once (a service with no backends is down); a restarted one starts down when the kernel already
 * has its sorry server (it was in sorry mode), else up.
 *
 * Sorry mode (down with a sorry server): the sorry server is a destination of gorb's own (weight 1, never a
 * backend, never counted), and every backend is held at weight 0 (kept, so its connections finish). Order:
 * entering sorry mode adds the sorry server before draining the backends; leaving it restores the backends'
 * weights before deleting the sorry server, so new connections always have somewhere to go. A batch goes on past a
 * refused write, so the writers run the sorry server's add alone before the rest, and its delete alone after it
 * (HealthRunner, Transactions.runSorrySafe).
 */
import { normalize } from "node:path";
import { destinationKeyId } from "./keys.ts";
import type { DestinationConfig, DestinationKey } from "../ipvs/types.ts";
import type { ResolvedAddress } from "./resolve.ts";
import type { ServiceSpec } from "./model.ts";
import type { EventPayloads } from "./events.ts";

/** The backend id the sorry server's operations carry (a "/" makes it impossible as a real backend id). */
export const SORRY_ID = "/sorry-server";

/** What the quorum counts of one service. */
export interface QuorumCounts {
  /** Backends up (or with pulse none) with configured weight > 0. */
  readonly healthy: number;
  /** Backends not checked yet with configured weight > 0. */
  readonly pending: number;
}

/** The thresholds a service's state follows; null when it has none (no quorum, no sorry server). */
export interface QuorumRule {
  readonly quorum: number;
  readonly hysteresis: number;
}

/** The service's rule; see the module comment. */
export function quorumRule(spec: Pick<ServiceSpec, "quorum" | "hysteresis" | "sorryServer" | "quorumUp" | "quorumDown">): QuorumRule | null {
  if (spec.quorum > 0) return { quorum: spec.quorum, hysteresis: spec.hysteresis };
  return spec.sorryServer === null && spec.quorumUp === "" && spec.quorumDown === "" ? null : { quorum: 1, hysteresis: 0 };
}

/** The next state (true = up) from the current one and the counts; see the module comment. */
export function nextQuorumState(up: boolean, counts: QuorumCounts, rule: QuorumRule | null): boolean {
  if (rule === null) return true;
  if (up) return counts.healthy + counts.pending >= rule.quorum - rule.hysteresis;
  return counts.healthy >= rule.quorum + rule.hysteresis;
}

/** One backend as the count sees it. */
export interface CountedBackend {
  readonly state: "up" | "down" | "unknown";
  readonly pulseNone: boolean;
  readonly configuredWeight: number;
}

/** The counts of a service's backends. */
export function quorumCounts(backends: Iterable<CountedBackend>): QuorumCounts {
  let healthy = 0;
  let pending = 0;
  for (const b of backends) {
    if (b.configuredWeight <= 0) continue;
    if (b.pulseNone || b.state === "up") healthy++;
    else if (b.state === "unknown") pending++;
  }
  return { healthy, pending };
}

/** The sorry server's destination key in a service of `family`, or null when the service has none. */
export function sorryKey(spec: Pick<ServiceSpec, "sorryServer">, family: ResolvedAddress["family"]): DestinationKey | null {
  const s = spec.sorryServer;
  return s === null ? null : { family, address: s.host, port: s.port };
}

/** The sorry server as a destination (weight 1). */
export function sorryDestination(spec: Pick<ServiceSpec, "sorryServer">, family: ResolvedAddress["family"]): DestinationConfig | null {
  const s = spec.sorryServer;
  if (s === null) return null;
  const tunnel = s.method === "ipip" || s.method === "tunnel";
  return {
    family,
    address: s.host,
    port: s.port,
    forward: tunnel ? "tunnel" : s.method,
    weight: 1,
    upperThreshold: 0,
    lowerThreshold: 0,
    tunnel: tunnel ? { type: "ipip", port: 0, checksum: "nocsum" } : null,
  };
}

/** The destinationKeyId of the sorry server, or null. */
export function sorryKeyId(spec: Pick<ServiceSpec, "sorryServer">, family: ResolvedAddress["family"]): string | null {
  const key = sorryKey(spec, family);
  return key === null ? null : destinationKeyId(key);
}

/** Why `program` cannot be a quorum hook under `dir` ("" is no hook), or null when it can. */
export function hookProblem(program: string, dir: string): string | null {
  if (program === "") return null;
  if (!program.startsWith("/")) return `must be an absolute path under ${dir}, got ${JSON.stringify(program)}`;
  const root = dir.endsWith("/") ? dir : `${dir}/`;
  if (normalize(program) !== program || !program.startsWith(root)) {
    return `must be a program under the hook directory ${dir}, got ${JSON.stringify(program)}`;
  }
  return null;
}

/** Runs a quorum hook: never blocks, never throws (the daemon's runner logs failures and kills it on timeout). */
export type QuorumHookRunner = (program: string, env: Readonly<Record<string, string>>) => void;

/** What a quorum hook's environment says about the service and its new state: the service.quorum event, plus its address. */
export interface HookFacts extends Readonly<EventPayloads["service.quorum"]> {
  /** The VIP ("" for fwmark), port, protocol and fwmark (0 for address services). */
  readonly address: string;
  readonly port: number;
  readonly protocol: string;
  readonly fwmark: number;
}

/** The environment of a quorum hook (nothing of gorb's own environment). */
export function hookEnvironment(f: HookFacts): Record<string, string> {
  return {
    PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
    GORB_SERVICE: f.service,
    GORB_STATE: f.up ? "up" : "down",
    GORB_HEALTHY: String(f.healthy),
    GORB_QUORUM: String(f.quorum),
    GORB_HYSTERESIS: String(f.hysteresis),
    GORB_SORRY: f.sorry ? "1" : "0",
    GORB_VIP: f.address,
    GORB_PORT: String(f.port),
    GORB_PROTOCOL: f.protocol,
    GORB_FWMARK: String(f.fwmark),
  };
}
