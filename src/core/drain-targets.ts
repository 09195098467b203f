/**
 * Glue between the desired state and drains: the drain request body checked against the contract, the
 * backends the watcher must look at, and the payload of a `backend.drain` event.
 */
import { canonicalDrainBody, contractProblem } from "../contract/check.ts";
import { DrainBody } from "../contract/schemas.ts";
import { isFwmarkKey } from "../ipvs/types.ts";
import { backendDestId, type DesiredState } from "./desired-state.ts";
import type { ConnCounts, DrainState } from "./drain.ts";
import type { DrainTarget } from "./drain-watch.ts";
import { ValidationError } from "./errors.ts";
import type { EventPayloads } from "./events.ts";

/** A drain body in canonical form, checked against the contract; a ValidationError naming the field otherwise. */
export function drainFields(raw: unknown): Record<string, unknown> {
  const canonical = canonicalDrainBody(raw);
  const found = contractProblem(DrainBody, canonical);
  if (found !== null) throw new ValidationError(found.field, found.problem);
  return canonical as Record<string, unknown>;
}

/** Every backend whose drain waits for its connections (phase "draining"). */
export function drainTargets(desired: DesiredState): DrainTarget[] {
  const out: DrainTarget[] = [];
  for (const service of desired.services()) {
    const key = service.config.key;
    const udp = !isFwmarkKey(key) && key.protocol === "udp";
    for (const backend of service.backends.values()) {
      const drain = backend.drain;
      if (drain === null || drain.phase !== "draining") continue;
      out.push({ service: service.id, backend: backend.id, key, destId: backendDestId(backend), drain, udp });
    }
  }
  return out;
}

/** The payload of a `backend.drain` event. */
export function drainEvent(
  service: string,
  backend: string,
  drain: DrainState,
  phase: EventPayloads["backend.drain"]["phase"],
  conns: ConnCounts | null,
): EventPayloads["backend.drain"] {
  return {
    service,
    backend,
    phase,
    then: drain.then,
    deadline: new Date(drain.deadline).toISOString(),
    active: conns?.active ?? null,
    inactive: conns?.inactive ?? null,
  };
}
