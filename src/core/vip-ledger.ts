/**
 * The VIP ledger: which service addresses gorb put on the VIP interface, and which services use each. An
 * address is removed with the last service that uses it; an address the interface already had is not gorb's
 * and is never removed (nor put back by reconcile).
 */
import type { ServiceKey } from "../ipvs/types.ts";
import { isFwmarkKey } from "../ipvs/types.ts";
import { KernelError, errorMessage } from "./errors.ts";
import type { Logger } from "../log.ts";
import type { Pacer } from "../pacer.ts";
import type { VipManager } from "./vip.ts";

interface VipClaim {
  readonly family: ServiceKey["family"];
  /** Services bound to this address; gorb removes it when the last one goes. */
  readonly owners: Set<string>;
}

/** See the module comment. */
export class VipLedger {
  readonly #vip: VipManager;
  readonly #log: Logger;
  readonly #claims = new Map<string, VipClaim>();

  constructor(vip: VipManager, log: Logger) {
    this.#vip = vip;
    this.#log = log;
  }

  /** True when service `id` holds a claim on its address (saved with the service). */
  holds(id: string, key: ServiceKey): boolean {
    return !isFwmarkKey(key) && (this.#claims.get(key.address)?.owners.has(id) ?? false);
  }

  /**
   * Put the service's address on the VIP interface unless gorb already did for another service. Resolves true
   * when this service now holds a claim on it. A failure rejects with a KernelError (nothing changed).
   */
  async claim(id: string, key: ServiceKey): Promise<boolean> {
    if (isFwmarkKey(key)) return false;
    const claim = this.#claims.get(key.address);
    if (claim !== undefined) {
      claim.owners.add(id);
      return true;
    }
    let added: boolean;
    try {
      added = await this.#vip.add(key.address, key.family);
    } catch (error) {
      throw new KernelError(`cannot add VIP ${key.address} to the VIP interface: ${errorMessage(error)}`, "", { cause: error });
    }
    if (!added) return false; // already there, not gorb's: never removed
    this.#claims.set(key.address, { family: key.family, owners: new Set([id]) });
    return true;
  }

  /** Record a claim read back from the saved state (no I/O). */
  remember(id: string, key: ServiceKey): void {
    if (isFwmarkKey(key)) return;
    const claim = this.#claims.get(key.address) ?? { family: key.family, owners: new Set<string>() };
    claim.owners.add(id);
    this.#claims.set(key.address, claim);
  }

  /** Drop the service's claim; remove the address when no service uses it any more. */
  async release(id: string, key: ServiceKey): Promise<void> {
    if (isFwmarkKey(key)) return;
    const claim = this.#claims.get(key.address);
    if (claim === undefined || !claim.owners.delete(id) || claim.owners.size > 0) return;
    this.#claims.delete(key.address);
    try {
      await this.#vip.remove(key.address, claim.family);
    } catch (error) {
      this.#log.warn(`cannot remove VIP ${key.address} from the VIP interface: ${String(error)}`);
    }
  }

  /**
   * Remove the address of `key` from the VIP interface unless a service holds a claim on it: gorb added it for a
   * service it never saved (it stopped before the commit; restore remembered the saved claims first). Resolves true
   * when it was removed; a failure is logged.
   */
  async dropUnclaimed(key: ServiceKey): Promise<boolean> {
    if (isFwmarkKey(key) || this.#claims.has(key.address)) return false;
    try {
      await this.#vip.remove(key.address, key.family);
      return true;
    } catch (error) {
      this.#log.warn(`cannot remove VIP ${key.address} from the VIP interface: ${String(error)}`);
      return false;
    }
  }

  /**
   * Put back every claimed address that has gone from the interface and that a service `serving` says yes to
   * claims; returns how many were put back / failed. With a `pacer`, a turn of the event loop whenever it says so:
   * awaiting an add that resolves at once (the address is there) is no turn, and a restore asks about 20,000.
   */
  async restoreMissing(serving: (id: string) => boolean, pacer: Pacer | null = null): Promise<{ restored: number; failed: number }> {
    let restored = 0;
    let failed = 0;
    for (const [address, claim] of this.#claims) {
      if (pacer?.due() === true) await pacer.turn();
      if (![...claim.owners].some(serving)) continue;
      const outcome = await this.#putBack(address, claim);
      if (outcome === "restored") restored++;
      else if (outcome === "failed") failed++;
    }
    return { restored, failed };
  }

  /** restoreMissing() for the address of service `id` alone, when it holds a claim on it. */
  async restoreClaim(id: string, key: ServiceKey): Promise<void> {
    if (isFwmarkKey(key)) return;
    const claim = this.#claims.get(key.address);
    if (claim !== undefined && claim.owners.has(id)) await this.#putBack(key.address, claim);
  }

  /** Add a claimed address to the interface unless it is there; a failure is logged. */
  async #putBack(address: string, claim: VipClaim): Promise<"restored" | "present" | "failed"> {
    try {
      if (!(await this.#vip.add(address, claim.family))) return "present";
      this.#log.warn(`VIP ${address} was missing from the VIP interface: added it again`);
      return "restored";
    } catch (error) {
      this.#log.error(`cannot add VIP ${address} to the VIP interface: ${String(error)}`);
      return "failed";
    }
  }
}
