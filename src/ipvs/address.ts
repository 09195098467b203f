/**
 * IP address text <-> bytes, and the human-readable names of services and destinations used in
 * error messages ("tcp 10.0.0.1:80", "fwmark 7 (inet6)", "[2001:db8::1]:443").
 */
import type { DestinationKey, Family, ServiceKey } from "./types.ts";
import { isFwmarkKey } from "./types.ts";
import { formatIpv6 } from "../ipv6-text.ts";

/**
 * Whether `text` is a dotted quad (four decimal numbers 0-255, no leading zeros, nothing else), its bytes written to
 * `out` when given. A loop over the characters, not a pattern and a split: every request that names a service or
 * destination reads its address, 1,000s of times for one `gorb status` or apply, and most readers only ask which
 * family it is (no bytes allocated for them).
 */
function scanIpv4(text: string, out: Uint8Array | null): boolean {
  const n = text.length;
  if (n < 7 || n > 15) return false;
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? text.charCodeAt(i) : 46; // the end closes the last part like a "."
    if (c === 46) {
      if (digits === 0 || part > 3) return false;
      if (out !== null) out[part] = value;
      part++;
      value = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return false; // a leading zero
      value = value * 10 + (c - 48);
      if (value > 255) return false;
      digits++;
    } else {
      return false;
    }
  }
  return part === 4;
}

/** Bytes of a dotted quad (see scanIpv4), or null. */
function parseIpv4(text: string): Uint8Array | null {
  const out = new Uint8Array(4);
  return scanIpv4(text, out) ? out : null;
}

/** The family of an address literal, or null when it is not one. */
export function addressFamily(text: string): Family | null {
  if (scanIpv4(text, null)) return "inet";
  return parseIpv6(text) === null ? null : "inet6";
}

/** Bytes of an IPv4 (4) or IPv6 (16) literal; throws TypeError when it is neither. */
export function addressToBytes(text: string): Uint8Array {
  const v4 = parseIpv4(text);
  if (v4 !== null) return v4;
  const v6 = parseIpv6(text);
  if (v6 === null) throw new TypeError(`not an IP address: ${JSON.stringify(text)}`);
  return v6;
}

/** Canonical text of an address: dotted quad, or RFC 5952 IPv6 (lower case, longest zero run as ::). */
export function bytesToAddress(bytes: Uint8Array, family: Family): string {
  if (family === "inet") {
    if (bytes.length < 4) throw new TypeError(`IPv4 address needs 4 bytes, got ${bytes.length}`);
    return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  }
  if (bytes.length < 16) throw new TypeError(`IPv6 address needs 16 bytes, got ${bytes.length}`);
  return formatIpv6(bytes);
}

/** Canonical text of an address literal (e.g. "2001:DB8:0::1" -> "2001:db8::1"). */
export function canonicalAddress(text: string): string {
  // A dotted quad scanIpv4 accepts has no leading zeros: it is canonical already.
  if (scanIpv4(text, null)) return text;
  const family = addressFamily(text);
  if (family === null) throw new TypeError(`not an IP address: ${JSON.stringify(text)}`);
  return bytesToAddress(addressToBytes(text), family);
}

function parseIpv6(text: string): Uint8Array | null {
  if (text.length < 2 || text.length > 45 || !/^[0-9a-fA-F:.]+$/.test(text)) return null;
  let s = text;
  const out = new Uint8Array(16);
  // An embedded IPv4 tail (::ffff:1.2.3.4) stands for the last two words.
  let tail4: Uint8Array | null = null;
  const lastColon = s.lastIndexOf(":");
  if (s.includes(".")) {
    const v4 = s.slice(lastColon + 1);
    tail4 = parseIpv4(v4);
    if (tail4 === null) return null;
    s = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const parseWords = (part: string): number[] | null => {
    if (part === "") return [];
    const words = part.split(":");
    const res: number[] = [];
    for (const w of words) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(w)) return null;
      res.push(parseInt(w, 16));
    }
    return res;
  };
  const head = parseWords(halves[0] ?? "");
  const tail = halves.length === 2 ? parseWords(halves[1] ?? "") : [];
  if (head === null || tail === null) return null;
  if (halves.length === 1 && head.length !== 8) return null;
  if (halves.length === 2 && head.length + tail.length > 7) return null;
  const words = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  words.forEach((w, i) => {
    out[i * 2] = w >> 8;
    out[i * 2 + 1] = w & 0xff;
  });
  if (tail4) out.set(tail4, 12);
  return out;
}

/** IPv4 dotted mask for a prefix length 0..32 (e.g. 24 -> 255.255.255.0), as a big-endian u32. */
export function prefixToMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Prefix length of a big-endian IPv4 mask: the number of leading one bits. */
export function maskToPrefix(mask: number): number {
  let n = 0;
  for (let bit = 31; bit >= 0 && (mask >>> bit) & 1; bit--) n++;
  return n;
}

function hostPort(address: string, port: number, family: Family): string {
  return family === "inet6" ? `[${address}]:${port}` : `${address}:${port}`;
}

/** "tcp 10.0.0.1:80", "udp [2001:db8::1]:53", "fwmark 7", "fwmark 7 (inet6)". */
export function describeService(key: ServiceKey): string {
  if (isFwmarkKey(key)) return key.family === "inet6" ? `fwmark ${key.fwmark} (inet6)` : `fwmark ${key.fwmark}`;
  return `${key.protocol} ${hostPort(key.address, key.port, key.family)}`;
}

/** "10.1.0.1:8080" or "[2001:db8::2]:8080". */
export function describeDestination(key: DestinationKey): string {
  return hostPort(key.address, key.port, key.family);
}
