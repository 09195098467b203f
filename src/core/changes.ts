/**
 * Change tracking for the state store: the services and backends changed since the last commit, turned into
 * the rows to write or delete (StateChanges) from the desired state at commit time.
 */
import type { DesiredState } from "./desired-state.ts";
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

  /** The rows to write or delete for everything marked, as the desired state has it now. */
  changes(desired: DesiredState, vips: VipLedger): StateChanges {
    const putServices: SavedService[] = [];
    const deleteServices: string[] = [];
    const putBackends: SavedBackend[] = [];
    const deleteBackends: { service: string; id: string }[] = [];
    for (const id of this.#services) {
      const record = desired.service(id);
      if (record === undefined) {
        deleteServices.push(id);
        continue;
      }
      const key = record.config.key;
      putServices.push({ id, source: record.source, fields: fieldsToJson(record.fields), key, vip: vips.holds(id, key) });
    }
    for (const [serviceId, ids] of this.#backends) {
      const service = desired.service(serviceId);
      if (service === undefined) {
        // A deleted service takes its backend rows with it.
        if (!this.#services.has(serviceId)) for (const id of ids) deleteBackends.push({ service: serviceId, id });
        continue;
      }
      for (const id of ids) {
        const backend = service.backends.get(id);
        if (backend === undefined) deleteBackends.push({ service: serviceId, id });
        else {
          putBackends.push({
            service: serviceId,
            id,
            source: backend.source,
            fields: fieldsToJson(backend.fields),
            address: backend.address,
            ...(backend.drain !== null ? { drain: backend.drain } : {}),
          });
        }
      }
    }
    return { putServices, deleteServices, putBackends, deleteBackends };
  }
}
