/**
 * The VIP ledger: which service addresses gorb put on the VIP interface, and which services use each. An
 * address is removed with the last service that uses it; an address the interface already had is not gorb's
 * and is never removed (nor put back by reconcile). A service uses an address under its key: one moved to another
 * port of its address in one change (an apply) holds it under its new key while it gives up the old one.
 *
 * A fleet node also records the addresses it added in its kernel ledger (./kernel-ledger.ts), so that a restart
 * knows them when the shared state no longer has their services. An address is recorded once it is added (the
 * add says whether the interface had it already): a crash in between leaves an address gorb added unrecorded, and
 * never records one the interface had before.
 *
 * A fleet node's claims at restore are its kernel ledger's, plus the addresses it adds then for the services it
 * restores (./restore-runner.ts). A restored service the kernel does not have yet (it refused its add) waits
 * (claimWhenServing): its address is claimed, added unless the interface has it, once the kernel has the service
 * (restoreClaim, restoreMissing), as it would have been at restore.
 */
import { addressFamily } from "../ipvs/address.ts";
import type { ServiceKey } from "../ipvs/types.ts";
import { isFwmarkKey } from "../ipvs/types.ts";
import { KernelError, errorMessage } from "./errors.ts";
import type { Logger } from "../log.ts";
import type { Pacer } from "../pacer.ts";
import type { VipManager } from "./vip.ts";
import type { KernelLedger } from "./kernel-ledger.ts";
import { serviceKeyId } from "./keys.ts";

interface VipClaim {
  readonly family: ServiceKey["family"];
  /** Services bound to this address, by service id and key (owner()) to service id; gorb removes it when the last one goes. */
  readonly owners: Map<string, string>;
}

/** A service's hold on its address: its id and its key, so that one change can move it to another port of it. */
function owner(id: string, key: ServiceKey): string {
  return `${id} ${serviceKeyId(key)}`;
}

/** See the module comment. */
export class VipLedger {
  readonly #vip: VipManager;
  readonly #log: Logger;
  readonly #claims = new Map<string, VipClaim>();
  /** Services whose address is claimed once the kernel has them (claimWhenServing), by id. */
  readonly #waiting = new Map<string, ServiceKey>();
  readonly #ledger: KernelLedger | null;

  constructor(vip: VipManager, log: Logger, ledger: KernelLedger | null = null) {
    this.#vip = vip;
    this.#log = log;
    this.#ledger = ledger;
  }

  /** True when service `id` holds a claim on its address (saved with the service). */
  holds(id: string, key: ServiceKey): boolean {
    return !isFwmarkKey(key) && (this.#claims.get(key.address)?.owners.has(owner(id, key)) ?? false);
  }

  /**
   * Put the service's address on the VIP interface unless gorb already did for another service. Resolves true
   * when this service now holds a claim on it. A failure rejects with a KernelError (nothing changed).
   */
  async claim(id: string, key: ServiceKey): Promise<boolean> {
    if (isFwmarkKey(key)) return false;
    const claim = this.#claims.get(key.address);
    if (claim !== undefined) {
      claim.owners.set(owner(id, key), id);
      return true;
    }
    let added: boolean;
    try {
      added = await this.#vip.add(key.address, key.family);
    } catch (error) {
      throw new KernelError(`cannot add VIP ${key.address} to the VIP interface: ${errorMessage(error)}`, "", { cause: error });
    }
    if (!added) return false; // already there, not gorb's: never removed
    // Recorded with the kernel batch that follows (the service's add), in the same disk write.
    this.#ledger?.noteVip(key.address);
    this.#claims.set(key.address, { family: key.family, owners: new Map([[owner(id, key), id]]) });
    return true;
  }

  /** Record a claim read back from the saved state (no I/O). */
  remember(id: string, key: ServiceKey): void {
    if (isFwmarkKey(key)) return;
    const claim = this.#claims.get(key.address) ?? { family: key.family, owners: new Map<string, string>() };
    claim.owners.set(owner(id, key), id);
    this.#claims.set(key.address, claim);
  }

  /**
   * Claim the address of service `id` (a fleet node's, restored without a claim) once the kernel has it:
   * restoreMissing (Exposure.sync) or restoreClaim does, as claim() would (no I/O now).
   */
  claimWhenServing(id: string, key: ServiceKey): void {
    if (!isFwmarkKey(key)) this.#waiting.set(id, key);
  }

  /** Drop the service's claim; remove the address when no service uses it any more. */
  async release(id: string, key: ServiceKey): Promise<void> {
    if (isFwmarkKey(key)) return;
    this.#waiting.delete(id);
    const claim = this.#claims.get(key.address);
    if (claim === undefined || !claim.owners.delete(owner(id, key)) || claim.owners.size > 0) return;
    this.#claims.delete(key.address);
    await this.#remove(key.address, claim.family);
  }

  /**
   * Remove `address` from the VIP interface unless a service holds a claim on it: gorb added it for a service it
   * never saved (it stopped before the commit), or that the shared state no longer has (restore remembered the
   * claims of the services it restores first). Resolves true when it was removed (false when the interface no
   * longer had it); a failure is logged.
   */
  async dropUnclaimed(address: string): Promise<boolean> {
    const family = addressFamily(address);
    if (family === null || this.#claims.has(address)) return false;
    return this.#remove(address, family);
  }

  /**
   * Remove `address` from the interface (and from the kernel ledger); resolves whether it did: false when it could
   * not (a failure is logged) or when the interface no longer had it.
   */
  async #remove(address: string, family: ServiceKey["family"]): Promise<boolean> {
    let removed: boolean;
    try {
      removed = await this.#vip.remove(address, family);
    } catch (error) {
      this.#log.warn(`cannot remove VIP ${address} from the VIP interface: ${String(error)}`);
      return false;
    }
    await this.#ledger?.forget({ services: [], destinations: [], vips: [address] });
    return removed;
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
      if (![...claim.owners.values()].some(serving)) continue;
      const outcome = await this.#putBack(address, claim);
      if (outcome === "restored") restored++;
      else if (outcome === "failed") failed++;
    }
    let claimed = 0;
    for (const [id, key] of [...this.#waiting]) {
      if (pacer?.due() === true) await pacer.turn();
      if (!serving(id)) continue;
      if (await this.#claimWaiting(id, key)) claimed++;
      else failed++;
    }
    // The addresses noted above, recorded in one write.
    if (restored + claimed > 0) await this.#ledger?.flushVips();
    return { restored, failed };
  }

  /** restoreMissing() for the address of service `id` alone, when it holds a claim on it. */
  async restoreClaim(id: string, key: ServiceKey): Promise<void> {
    if (isFwmarkKey(key)) return;
    if (this.#waiting.has(id)) {
      if (await this.#claimWaiting(id, key)) await this.#ledger?.flushVips();
      return;
    }
    const claim = this.#claims.get(key.address);
    if (claim !== undefined && claim.owners.has(owner(id, key)) && (await this.#putBack(key.address, claim)) === "restored") await this.#ledger?.flushVips();
  }

  /**
   * Claim the address of a waiting service (claimWhenServing) now, noting it for the ledger (the caller records the
   * notes: flushVips); false when it could not be added (logged, it waits on).
   */
  async #claimWaiting(id: string, key: ServiceKey): Promise<boolean> {
    try {
      await this.claim(id, key);
    } catch (error) {
      this.#log.error(`${errorMessage(error)} (service ${JSON.stringify(id)})`);
      return false;
    }
    this.#waiting.delete(id);
    return true;
  }

  /** Add a claimed address to the interface unless it is there; a failure is logged. */
  async #putBack(address: string, claim: VipClaim): Promise<"restored" | "present" | "failed"> {
    try {
      if (!(await this.#vip.add(address, claim.family))) return "present";
      this.#log.warn(`VIP ${address} was missing from the VIP interface: added it again`);
    } catch (error) {
      this.#log.error(`cannot add VIP ${address} to the VIP interface: ${String(error)}`);
      return "failed";
    }
    // Added: the next restart must know it is gorb's (recorded once the pass is over: restoreMissing,
    // restoreClaim). Not recorded, it is left there, as before the ledger.
    this.#ledger?.noteVip(address);
    return "restored";
  }
}
