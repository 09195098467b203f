/**
 * The real VipManager: puts service addresses on an interface (/32 or /128) through rtnetlink.
 */
import type { VipManager } from "../core/vip.ts";
import type { Family } from "../ipvs/types.ts";
import { type InterfaceAddresses, interfaceIndex } from "../netif/interface-addresses.ts";

/** Adds and removes VIPs on one interface. */
export class InterfaceVipManager implements VipManager {
  /** Checks at once that the interface exists, so a typo fails `gorb serve` at start-up. */
  constructor(
    private readonly addresses: InterfaceAddresses,
    private readonly interfaceName: string,
  ) {
    interfaceIndex(interfaceName);
  }

  add(address: string, _family: Family): Promise<boolean> {
    return this.addresses.addHost(this.interfaceName, address);
  }

  remove(address: string, _family: Family): Promise<boolean> {
    return this.addresses.removeHost(this.interfaceName, address);
  }
}
