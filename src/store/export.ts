/**
 * The saved desired state as a declarative document (`{"services": {id: {...fields, "backends": {id: {...}}}}}`),
 * the format of `gorb apply -f` and of a configuration file's `services`: `gorb state export` prints it, so a host
 * moves from its own SQLite state to the shared etcd state (or back) with `gorb apply` and nothing retyped.
 * The fields are the request fields each service and backend was created with (PATCHes applied), read as a restore
 * reads them: keys an older gorb kept and the contract drops (`vsid`, args a pulse type does not read) are left out,
 * since `gorb apply -f` refuses unknown keys. A row whose fields do not read is printed as saved (apply then names
 * its problem). Services and backends come out in id order, so two exports of the same state are the same text.
 *
 * A drain is not a field of the document (an apply leaves drains alone), so a backend being drained, or held at
 * weight 0 by a drain (`then: keep`), would come back into service from the document at full weight. It is exported
 * with `maintenance: true` instead, and listed in `drained` for the command to say so: the operator took it out of
 * service, and moving the state must not put it back.
 */
import { GorbError } from "../core/errors.ts";
import type { Fields } from "../core/fields.ts";
import { backendFields, serviceFields } from "../core/normalize.ts";
import type { DrainState } from "../core/drain.ts";
import { fieldsToJson, type SavedState } from "../core/state.ts";

/** A backend a drain held out of service, exported with `maintenance: true` (see the module comment). */
export interface ExportedDrain {
  readonly service: string;
  readonly backend: string;
  readonly then: DrainState["then"];
  /** Epoch ms. */
  readonly deadline: number;
}

/** The document `gorb state export` prints, and the drained backends it marks for maintenance. */
export interface ExportedState {
  readonly document: { services: Record<string, Record<string, unknown>> };
  readonly drained: readonly ExportedDrain[];
}

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
export function declarativeDocument(state: SavedState): ExportedState {
  const services: Record<string, Record<string, unknown>> = {};
  const byService = new Map<string, Record<string, unknown>>();
  const drained: ExportedDrain[] = [];
  for (const b of [...state.backends].sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0))) {
    let backends = byService.get(b.service);
    if (backends === undefined) byService.set(b.service, (backends = {}));
    const fields = readable(b.fields, backendFields);
    if (b.drain !== undefined && b.drain !== null) {
      fields["maintenance"] = true;
      drained.push({ service: b.service, backend: b.id, then: b.drain.then, deadline: b.drain.deadline });
    }
    backends[b.id] = fields;
  }
  for (const s of [...state.services].sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0))) {
    const backends = byService.get(s.id);
    services[s.id] = { ...readable(s.fields, serviceFields), ...(backends !== undefined ? { backends } : {}) };
  }
  drained.sort((x, y) => (x.service < y.service ? -1 : x.service > y.service ? 1 : 0));
  return { document: { services }, drained };
}
