/**
 * Socket addresses for the raw sockets of ffi/ (probe-socket.ts, marked-socket.ts): the bytes of an IPv4 or IPv6
 * literal and the struct sockaddr_in / sockaddr_in6 carrying it, and the socket(2) constants both use. Pure: no
 * library is loaded here.
 */

export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;

/** The 4 or 16 bytes of an IPv4 or IPv6 literal (no zone, no dotted IPv4 tail), or null for anything else. */
export function addressBytes(host: string): Uint8Array | null {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(host)) {
    const parts = host.split(".").map(Number);
    return parts.every((p) => p <= 255) ? Uint8Array.from(parts) : null;
  }
  if (!host.includes(":") || host.includes("%") || host.includes(".")) return null;
  const [head = "", tail, extra] = host.split("::");
  if (extra !== undefined) return null;
  const groups = (s: string) => (s === "" ? [] : s.split(":"));
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const fill = 8 - h.length - t.length;
  // "::" stands for at least one group of zeros; without it there must be eight groups.
  if (fill < 0 || (tail === undefined && fill !== 0) || (tail !== undefined && fill === 0)) return null;
  const all = [...h, ...Array<string>(fill).fill("0"), ...t];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const g = all[i] ?? "";
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    const v = Number.parseInt(g, 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  }
  return out;
}

/** The sockaddr_in (16 bytes) or sockaddr_in6 (28 bytes) of an address's bytes and a port. */
export function sockaddrOfBytes(address: Uint8Array, port: number): Uint8Array {
  const v6 = address.length === 16;
  const out = new Uint8Array(v6 ? 28 : 16);
  const view = new DataView(out.buffer);
  view.setUint16(0, v6 ? AF_INET6 : AF_INET, true);
  view.setUint16(2, port, false);
  out.set(address, v6 ? 8 : 4);
  return out;
}
