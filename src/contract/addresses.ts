/**
 * Which addresses may be a VIP or a backend. A VIP is put on the VIP interface and answered for; a backend
 * receives traffic. Neither may be an address that is not one host's unicast address:
 *   unspecified (0.0.0.0/8, ::), limited broadcast (255.255.255.255), multicast (224.0.0.0/4, ff00::/8);
 * an IPv4-mapped IPv6 address (::ffff:a.b.c.d) counts as the IPv4 address it carries.
 * A loopback address (127.0.0.0/8, ::1) is a VIP only when the VIP interface is `lo` (anywhere else it would
 * put 127.x on a real interface); as a backend it is the local host and is allowed.
 */
import { addressFamily, addressToBytes } from "../ipvs/address.ts";
import type { Family } from "../ipvs/types.ts";

/** The loopback interface, the only one a loopback VIP may be put on. */
const LOOPBACK_INTERFACE = "lo";

/** What an address is used as ("sorry": a service's sorry server, a destination like a backend). */
export type AddressRole = "vip" | "backend" | "sorry";

const ROLE_TEXT: Record<AddressRole, string> = { vip: "a VIP", backend: "a backend", sorry: "a sorry server" };

/** The kind of a special address, or null for an ordinary unicast one. */
function specialAddress(address: string, family: Family): "unspecified" | "broadcast" | "multicast" | "loopback" | null {
  if (family === "inet" && addressFamily(address) === "inet") {
    // A dotted quad as the pattern accepts it (no leading zeros): its first number and its text say it all.
    const first = Number(address.slice(0, address.indexOf(".")));
    if (first === 0) return "unspecified";
    if (address === "255.255.255.255") return "broadcast";
    if (first >= 224 && first <= 239) return "multicast";
    if (first === 127) return "loopback";
    return null;
  }
  const b = addressToBytes(address);
  if (family === "inet") {
    const first = b[0] ?? 0;
    if (first === 0) return "unspecified";
    if (b.every((x) => x === 255)) return "broadcast";
    if (first >= 224 && first <= 239) return "multicast";
    if (first === 127) return "loopback";
    return null;
  }
  if (b.every((x) => x === 0)) return "unspecified";
  if (b[0] === 0xff) return "multicast";
  // An IPv4-mapped address (::ffff:a.b.c.d) is the IPv4 address it carries.
  if (b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) {
    return specialAddress(Array.from(b.slice(12)).join("."), "inet");
  }
  if (b.slice(0, 15).every((x) => x === 0) && b[15] === 1) return "loopback";
  return null;
}

/**
 * Why `address` cannot be used as `role` ("is a multicast address; a VIP must be ..."), or null when it can.
 * `vipInterface` is the daemon's --vip-interface (null when it has none). The caller puts the address (as the
 * client wrote it) in front.
 */
export function addressProblem(address: string, family: Family, role: AddressRole, vipInterface: string | null): string | null {
  const kind = specialAddress(address, family);
  if (kind === null) return null;
  const unicast = `${ROLE_TEXT[role]} must be one host's unicast address`;
  switch (kind) {
    case "unspecified":
      return `is an unspecified address; ${unicast}`;
    case "broadcast":
      return `is the broadcast address; ${unicast}`;
    case "multicast":
      return `is a multicast address; ${unicast}`;
    case "loopback":
      if (role !== "vip" || vipInterface === LOOPBACK_INTERFACE) return null;
      return `is a loopback address; it is a VIP only when gorb serve has --vip-interface ${LOOPBACK_INTERFACE}` +
        (vipInterface === null ? "" : ` (the VIP interface is ${vipInterface})`);
  }
}
