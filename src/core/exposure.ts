/**
 * Exposure: what gorb shows the network for a service, its VIP on the VIP interface and its registration with
 * discovery, follows the kernel. A service the kernel refused at restore (its add failed) stays desired and
 * saved, and each reconcile tries it again; until the kernel has it, gorb puts none of its VIPs back and does
 * not register it. The reconcile that finds it in the kernel (the one whose repair added it, or any later one)
 * puts its VIP back and registers it; so does any other write that adds it (a request's, e.g. a PATCH of what
 * the kernel refused, an apply's, a health change's, a rollback's: KernelWriter tells added()), once the change
 * is done: in its effects (Transactions.effects), so a request answers after it, or else after the job that
 * wrote it. A service created by a request is in the kernel when the request
 * succeeds (a refused add fails it whole), so it is registered at once (./edits.ts). A fwmark service has no
 * registration: at restore, one its id may still have from when it had a VIP (it was re-created as a fwmark
 * service while gorb was stopped) is withdrawn.
 */
import type { Discovery, ServiceRegistration } from "../discovery/discovery.ts";
import { isFwmarkKey, type ServiceKey } from "../ipvs/types.ts";
import type { DesiredState, ServiceRecord } from "./desired-state.ts";
import type { KernelWriter } from "./kernel-writer.ts";
import type { Pacer } from "../pacer.ts";
import { serviceKeyId } from "./keys.ts";
import type { VipLedger } from "./vip-ledger.ts";

/** What discovery announces for service `id` at `key`; null for a fwmark service (it has no VIP). */
function registration(id: string, key: ServiceKey): ServiceRegistration | null {
  return isFwmarkKey(key) ? null : { id, address: key.address, port: key.port, protocol: key.protocol };
}

/** See the module comment. */
export class Exposure {
  /** Services not registered because the kernel did not have them. */
  readonly #held = new Set<string>();
  /** Held services a write added to the kernel since exposeEntered() last ran. */
  readonly #entered = new Set<string>();

  constructor(
    private readonly deps: {
      readonly desired: DesiredState;
      readonly writer: KernelWriter;
      readonly vips: VipLedger;
      readonly discovery: Discovery;
    },
  ) {}

  /** True when the kernel has service `id` (gorb's view of it: the last table read, and every write since). */
  readonly inKernel = (id: string): boolean => {
    const record = this.deps.desired.service(id);
    return record !== undefined && this.deps.writer.view.has(serviceKeyId(record.config.key));
  };

  /**
   * Register the service when the kernel has it. Else hold it for sync(), and withdraw the registration it may
   * still have from before a restart (registrations outlive one).
   */
  expose(record: ServiceRecord): void {
    const announced = registration(record.id, record.config.key);
    if (this.inKernel(record.id)) {
      if (announced !== null) this.deps.discovery.expose(announced);
      return;
    }
    this.#held.add(record.id);
    if (announced !== null) this.deps.discovery.remove(record.id);
  }

  /**
   * expose() for a service restored at start. A fwmark service withdraws the registration its id may still have
   * from before the restart, when it had a VIP (registrations outlive a restart; a withdrawal of none is done).
   */
  exposeRestored(record: ServiceRecord): void {
    if (isFwmarkKey(record.config.key)) this.deps.discovery.remove(record.id);
    this.expose(record);
  }

  /** KernelWriter's hook: the kernel took the add of service `id`. A held one is exposed by exposeEntered(). */
  readonly added = (id: string): void => {
    if (this.#held.has(id)) this.#entered.add(id);
  };

  /**
   * Put back the VIP of each held service a write added to the kernel since the last call, and register it.
   * Nothing to wait for when there is none (the usual case: this runs after every change). Never rejects.
   */
  exposeEntered(): Promise<void> | undefined {
    return this.#entered.size === 0 ? undefined : this.#exposeEntered();
  }

  async #exposeEntered(): Promise<void> {
    const ids = [...this.#entered];
    this.#entered.clear();
    for (const id of ids) {
      const record = this.deps.desired.service(id);
      // Deleted, exposed by a reconcile meanwhile, or out of the kernel again (deleted behind gorb's back): not now.
      if (record === undefined || !this.#held.has(id) || !this.inKernel(id)) continue;
      this.#held.delete(id);
      await this.deps.vips.restoreClaim(id, record.config.key);
      this.expose(record);
    }
  }

  /** Withdraw a deleted service's registration. */
  withdraw(id: string, key: ServiceKey): void {
    this.#held.delete(id);
    if (!isFwmarkKey(key)) this.deps.discovery.remove(id);
  }

  /**
   * Put back the missing VIPs of the services the kernel has, and register the held services it has now (a
   * deleted one is forgotten). Returns how many VIPs were put back, and how many could not be. With a `pacer`
   * (a restore's), a turn of the event loop whenever it says so.
   */
  async sync(pacer: Pacer | null = null): Promise<{ restored: number; failed: number }> {
    const vips = await this.deps.vips.restoreMissing(this.inKernel, pacer);
    for (const id of [...this.#held]) {
      if (pacer?.due() === true) await pacer.turn();
      const record = this.deps.desired.service(id);
      if (record !== undefined && !this.inKernel(id)) continue;
      this.#held.delete(id);
      if (record !== undefined) this.expose(record);
    }
    return vips;
  }
}
