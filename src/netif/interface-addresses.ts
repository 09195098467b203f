/**
 * Interface addresses over rtnetlink (NETLINK_ROUTE): list the addresses of an interface (for `-i`, the
 * default service host) and add/remove service VIPs (/32 or /128) for `--vip-interface`.
 * Messages are encoded by our codec and sent over the same libnl-backed transport as IPVS.
 */
import { readFileSync } from "node:fs";
import { ERRNO } from "../errno.ts";
import { AttributeSet, HOST_LITTLE_ENDIAN } from "../netlink/attributes.ts";
import { NETLINK_ROUTE } from "../netlink/constants.ts";
import { NetlinkDecodeError, NetlinkError } from "../netlink/errors.ts";
import type { NetlinkMessage } from "../netlink/message.ts";
import { NetlinkConnection, type Request } from "../transport/connection.ts";
import type { DatagramSocket } from "../transport/datagram-socket.ts";
import { LibnlSocket } from "../transport/libnl-socket.ts";
import { addressFamily, addressToBytes, bytesToAddress } from "../ipvs/address.ts";
import type { Family } from "../ipvs/types.ts";

/** rtnetlink.h message types and if_addr.h attributes. */
const RTM_NEWADDR = 20;
const RTM_DELADDR = 21;
const RTM_GETADDR = 22;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_F_NODAD = 0x02;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;
const AF_INET = 2;
const AF_INET6 = 10;
/** How many times an address dump the kernel flags interrupted is run before its EINTR is the answer. */
const DUMP_ATTEMPTS = 3;

/** An address of an interface. */
export interface InterfaceAddress {
  readonly family: Family;
  readonly address: string;
  readonly prefixLength: number;
}

/** A problem with an interface or one of its addresses, in words. */
export class InterfaceError extends Error {
  override readonly name = "InterfaceError";
}

/** The kernel index of a network interface, from sysfs. */
export function interfaceIndex(name: string): number {
  if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(name)) throw new InterfaceError(`invalid interface name ${JSON.stringify(name)}`);
  try {
    return Number(readFileSync(`/sys/class/net/${name}/ifindex`, "utf8").trim());
  } catch {
    throw new InterfaceError(`no network interface named ${JSON.stringify(name)}`);
  }
}

function ifaddrmsg(family: number, prefixLength: number, flags: number, index: number): Uint8Array {
  const b = new Uint8Array(8);
  b[0] = family;
  b[1] = prefixLength;
  b[2] = flags;
  b[3] = 0; // RT_SCOPE_UNIVERSE
  new DataView(b.buffer).setUint32(4, index, HOST_LITTLE_ENDIAN);
  return b;
}

/** Reads and changes interface addresses through one rtnetlink connection. */
export class InterfaceAddresses {
  private readonly conn: NetlinkConnection;

  constructor(openSocket: () => DatagramSocket = () => new LibnlSocket({ protocol: NETLINK_ROUTE, timeoutMs: 5000 })) {
    this.conn = new NetlinkConnection(openSocket);
  }

  /** Every address of the interface, in kernel order. */
  async list(interfaceName: string): Promise<InterfaceAddress[]> {
    const index = interfaceIndex(interfaceName);
    const msgs = await this.dumpAddresses();
    const out: InterfaceAddress[] = [];
    for (const m of msgs) {
      if (m.type !== RTM_NEWADDR || m.payload.length < 8) continue;
      const view = new DataView(m.payload.buffer, m.payload.byteOffset, m.payload.byteLength);
      if (view.getUint32(4, HOST_LITTLE_ENDIAN) !== index) continue;
      const fam = m.payload[0] === AF_INET ? "inet" : m.payload[0] === AF_INET6 ? "inet6" : null;
      if (fam === null) continue;
      const attrs = new AttributeSet(m.payload.subarray(8));
      const raw = attrs.bytes(IFA_LOCAL) ?? attrs.bytes(IFA_ADDRESS);
      if (!raw) continue;
      // rtnetlink sends exactly the family's length; anything else would read as another address (16 bytes taken
      // as IPv4 are their first 4) or not at all.
      const need = fam === "inet" ? 4 : 16;
      if (raw.length !== need) throw new NetlinkDecodeError(`interface address of ${raw.length} bytes for ${fam} (needs ${need})`);
      out.push({ family: fam, address: bytesToAddress(raw, fam), prefixLength: m.payload[1] ?? 0 });
    }
    return out;
  }

  /**
   * Add a host address (/32 or /128) to the interface. Returns false when it was already there (so the
   * caller knows it is not gorb's to remove later), true when gorb added it.
   */
  async addHost(interfaceName: string, address: string): Promise<boolean> {
    try {
      await this.conn.request(this.hostRequest(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, interfaceName, address));
      return true;
    } catch (e) {
      if (e instanceof NetlinkError && e.errno === ERRNO.EEXIST) return false;
      throw this.explain(e, `add ${address} to ${interfaceName}`);
    }
  }

  /** Remove a host address; resolves true when it removed it, false when it was already gone (not an error). */
  async removeHost(interfaceName: string, address: string): Promise<boolean> {
    try {
      await this.conn.request(this.hostRequest(RTM_DELADDR, 0, interfaceName, address));
      return true;
    } catch (e) {
      if (e instanceof NetlinkError && e.errno === ERRNO.EADDRNOTAVAIL) return false;
      throw this.explain(e, `remove ${address} from ${interfaceName}`);
    }
  }

  close(): void {
    this.conn.close();
  }

  /**
   * Every RTM_NEWADDR message of a consistent dump. An address added or removed while the kernel dumps makes it
   * flag the dump interrupted (the connection's NetlinkError EINTR): it is run again, a few times at most.
   */
  private async dumpAddresses(): Promise<NetlinkMessage[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.conn.dump({ type: RTM_GETADDR, flags: 0, header: ifaddrmsg(0, 0, 0, 0) });
      } catch (e) {
        if (!(e instanceof NetlinkError) || e.errno !== ERRNO.EINTR || attempt >= DUMP_ATTEMPTS) throw e;
      }
    }
  }

  private hostRequest(type: number, flags: number, interfaceName: string, address: string): Request {
    const family = addressFamily(address);
    if (family === null) throw new InterfaceError(`not an IP address: ${JSON.stringify(address)}`);
    const index = interfaceIndex(interfaceName);
    const bytes = addressToBytes(address);
    const v6 = family === "inet6";
    return {
      type,
      flags,
      header: ifaddrmsg(v6 ? AF_INET6 : AF_INET, v6 ? 128 : 32, v6 ? IFA_F_NODAD : 0, index),
      attrs: (w) => {
        w.attr(IFA_LOCAL, bytes);
        w.attr(IFA_ADDRESS, bytes);
      },
    };
  }

  private explain(e: unknown, what: string): Error {
    if (e instanceof NetlinkError) return new InterfaceError(`cannot ${what}: errno ${e.errno}${e.errno === ERRNO.EPERM ? " (needs CAP_NET_ADMIN)" : ""}`);
    return e instanceof Error ? e : new Error(String(e));
  }
}
