/**
 * The saved desired state as a declarative document (`{"services": {id: {...fields, "backends": {id: {...}}}}}`),
 * the format of `gorb apply -f` and of a configuration file's `services`: `gorb state export` prints it, so a host
 * moves from its own SQLite state to the shared etcd state (or back) with `gorb apply` and nothing retyped.
 * The fields are the request fields each service and backend was created with (PATCHes applied). Services and
 * backends come out in id order, so two exports of the same state are the same text.
 */
import type { SavedState } from "../core/state.ts";

/** See the module comment. */
export function declarativeDocument(state: SavedState): { services: Record<string, Record<string, unknown>> } {
  const services: Record<string, Record<string, unknown>> = {};
  const byService = new Map<string, Record<string, unknown>>();
  for (const b of [...state.backends].sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0))) {
    let backends = byService.get(b.service);
    if (backends === undefined) byService.set(b.service, (backends = {}));
    backends[b.id] = { ...b.fields };
  }
  for (const s of [...state.services].sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0))) {
    const backends = byService.get(s.id);
    services[s.id] = { ...s.fields, ...(backends !== undefined ? { backends } : {}) };
  }
  return { services };
}
