/**
 * Change tracking for the state store: the services and backends changed since the last commit, turned into
 * the rows to write or delete (StateChanges) from the desired state at commit time.
 */
import type { DesiredState } from "./desired-state.ts";
import { Pacer } from "../pacer.ts";
import { fieldsToJson, type SavedBackend, type SavedService, type StateChanges } from "./state.ts";
import type { VipLedger } from "./vip-ledger.ts";

/** See the module comment. */
export class ChangeTracker {
  readonly #services = new Set<string>();
  /** Backends by service id. */
  readonly #backends = new Map<string, Set<string>>();

  /** Mark a service (or one of its backends) as changed. */
  touch(serviceId: string, backendId?: string): void {
    if (backendId === undefined) {
      this.#services.add(serviceId);
      return;
    }
    let set = this.#backends.get(serviceId);
    if (set === undefined) this.#backends.set(serviceId, (set = new Set()));
    set.add(backendId);
  }

  get empty(): boolean {
    return this.#services.size === 0 && this.#backends.size === 0;
  }

  clear(): void {
    this.#services.clear();
    this.#backends.clear();
  }

  /** How many services and backends are marked. */
  get size(): number {
    let n = this.#services.size;
    for (const ids of this.#backends.values()) n += ids.size;
    return n;
  }

  /** The rows to write or delete for everything marked, as the desired state has it now. */
  changes(desired: DesiredState, vips: VipLedger): StateChanges {
    const out = emptyChanges();
    for (const _ of this.#rows(desired, vips, out));
    return out;
  }

  /**
   * changes() with a turn of the event loop every few milliseconds (../pacer.ts): the rows of an apply of 10,000
   * backends are a visible block of work. The caller holds gorb's lock, so the desired state does not change
   * between turns.
   */
  async changesPaced(desired: DesiredState, vips: VipLedger): Promise<StateChanges> {
    const out = emptyChanges();
    const pacer = new Pacer();
    for (const _ of this.#rows(desired, vips, out)) if (pacer.due()) await pacer.turn();
    return out;
  }

  /** Adds each marked row to `out`, yielding after each. */
  *#rows(desired: DesiredState, vips: VipLedger, out: MutableChanges): Generator<void> {
    for (const id of this.#services) {
      const record = desired.service(id);
      if (record === undefined) out.deleteServices.push(id);
      else {
        const key = record.config.key;
        out.putServices.push({ id, source: record.source, fields: fieldsToJson(record.fields), key, vip: vips.holds(id, key) });
      }
      yield;
    }
    for (const [serviceId, ids] of this.#backends) {
      const service = desired.service(serviceId);
      if (service === undefined) {
        // A deleted service takes its backend rows with it.
        if (!this.#services.has(serviceId)) for (const id of ids) out.deleteBackends.push({ service: serviceId, id });
        continue;
      }
      for (const id of ids) {
        const backend = service.backends.get(id);
        if (backend === undefined) out.deleteBackends.push({ service: serviceId, id });
        else {
          out.putBackends.push({
            service: serviceId,
            id,
            source: backend.source,
            fields: fieldsToJson(backend.fields),
            address: backend.address,
            ...(backend.drain !== null ? { drain: backend.drain } : {}),
          });
        }
        yield;
      }
    }
  }
}

/** StateChanges being filled in. */
interface MutableChanges {
  readonly putServices: SavedService[];
  readonly deleteServices: string[];
  readonly putBackends: SavedBackend[];
  readonly deleteBackends: { service: string; id: string }[];
}

function emptyChanges(): MutableChanges {
  return { putServices: [], deleteServices: [], putBackends: [], deleteBackends: [] };
}
