/**
 * The VIP seam: gorb can put each service's address on an interface (the original's -vipi) so the host
 * answers for it. The real implementation speaks rtnetlink and lives with the daemon; core only sees this
 * interface. `NoVipManager` is used when no VIP interface is configured, `MemoryVipManager` in tests.
 */
import type { Family } from "../ipvs/types.ts";

/** VipManager adds and removes service addresses on the VIP interface. */
export interface VipManager {
  /**
   * Add `address` (as a /32 or /128) to the VIP interface. Resolves true when gorb added it, false when the
   * interface already had it (gorb then never removes it). Rejects when the address could not be added.
   */
  add(address: string, family: Family): Promise<boolean>;
  /**
   * Remove an address gorb added. Resolves true when it removed it, false when the interface no longer had it
   * (someone removed it first). Rejects when it could not be removed.
   */
  remove(address: string, family: Family): Promise<boolean>;
}

/** NoVipManager manages no addresses: add() always reports "already there", so remove() is never needed. */
export class NoVipManager implements VipManager {
  async add(): Promise<boolean> {
    return false;
  }

  async remove(): Promise<boolean> {
    return false;
  }
}
