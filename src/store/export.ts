/**
 * The saved desired state as a declarative document (`{"services": {id: {...fields, "backends": {id: {...}}}}}`),
 * the format of `gorb apply -f` and of a configuration file's `services`: `gorb state export` prints it, so a host
 * moves from its own SQLite state to the shared etcd state (or back) with `gorb apply` and nothing retyped.
 * The fields are the request fields each service and backend was created with (PATCHes applied), read as a restore
 * reads them: keys an older gorb kept and the contract drops (`vsid`, args a pulse type does not read) are left out,
 * since `gorb apply -f` refuses unknown keys. A row whose fields do not read is printed as saved (apply then names
 * its problem). Services and backends come out in id order, so two exports of the same state are the same text.
 */
import { GorbError } from "../core/errors.ts";
import type { Fields } from "../core/fields.ts";
import { backendFields, serviceFields } from "../core/normalize.ts";
import { fieldsToJson, type SavedState } from "../core/state.ts";

/** `saved` read as a request body (see the module comment), or as it is when it does not read. */
function readable(saved: Readonly<Record<string, unknown>>, read: (raw: unknown) => Fields): Record<string, unknown> {
  try {
    return fieldsToJson(read(saved));
  } catch (error) {
    if (!(error instanceof GorbError)) throw error;
    return { ...saved };
  }
}

/** See the module comment. */
export function declarativeDocument(state: SavedState): { services: Record<string, Record<string, unknown>> } {
  const services: Record<string, Record<string, unknown>> = {};
  const byService = new Map<string, Record<string, unknown>>();
  for (const b of [...state.backends].sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0))) {
    let backends = byService.get(b.service);
    if (backends === undefined) byService.set(b.service, (backends = {}));
    backends[b.id] = readable(b.fields, backendFields);
  }
  for (const s of [...state.services].sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0))) {
    const backends = byService.get(s.id);
    services[s.id] = { ...readable(s.fields, serviceFields), ...(backends !== undefined ? { backends } : {}) };
  }
  return { services };
}
