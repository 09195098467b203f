/**
 * IP networks for the API's --allow list: parse "10.0.0.0/8", "2001:db8::/32" or a bare address (a /32 or
 * /128), and test whether a peer address (as Bun reports it: "192.0.2.7", "::1", "::ffff:192.0.2.7",
 * "fe80::1%eth0") is inside. An IPv4-mapped IPv6 peer is matched as its IPv4 address, so a dual-stack
 * listener ("[::]:4672") is checked like an IPv4 one. Pure; no I/O.
 */
import { formatIpv6 } from "../ipv6-text.ts";

/** An address as bytes: 4 for IPv4, 16 for IPv6. */
export type AddressBytes = Uint8Array;

/** A network: its first address's bytes and prefix length; `text` is the normalised "addr/prefix". */
export interface Cidr {
  readonly bytes: AddressBytes;
  readonly prefix: number;
  readonly text: string;
}

/** CidrError: a network that cannot be parsed; `value` is the text given. */
export class CidrError extends Error {
  override readonly name = "CidrError";
  readonly value: string;

  constructor(value: string, problem: string) {
    super(`${JSON.stringify(value)}: ${problem}`);
    this.value = value;
  }
}

const V4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function parseV4(text: string): AddressBytes | null {
  if (!V4.test(text)) return null;
  return Uint8Array.from(text.split(".").map(Number));
}

function parseV6(text: string): AddressBytes | null {
  const value = text.replace(/%[^%]*$/, ""); // zone id of a link-local peer
  if (!/^[0-9a-fA-F:.]+$/.test(value) || value.length < 2) return null;
  const halves = value.split("::");
  if (halves.length > 2) return null;
  const groups = (part: string): number[] | null => {
    if (part === "") return [];
    const out: number[] = [];
    const pieces = part.split(":");
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i] ?? "";
      if (i === pieces.length - 1 && piece.includes(".")) {
        const v4 = parseV4(piece);
        if (v4 === null) return null;
        out.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(piece)) return null;
      out.push(Number.parseInt(piece, 16));
    }
    return out;
  };
  const head = groups(halves[0] ?? "");
  const tail = halves.length === 2 ? groups(halves[1] ?? "") : [];
  if (head === null || tail === null) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const all = [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  all.forEach((group, i) => {
    bytes[i * 2] = group >> 8;
    bytes[i * 2 + 1] = group & 0xff;
  });
  return bytes;
}

/** The bytes of an IPv4 or IPv6 address, an IPv4-mapped IPv6 one as IPv4; null when it is not an address. */
export function parseAddress(text: string): AddressBytes | null {
  const bytes = parseV4(text) ?? parseV6(text);
  if (bytes === null || bytes.length === 4) return bytes;
  const mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  return mapped ? bytes.slice(12) : bytes;
}

/** An address's text: dotted for IPv4 (an IPv4-mapped IPv6 address parses to 4 bytes), zeros compressed for IPv6. */
export function formatAddress(bytes: AddressBytes): string {
  return bytes.length === 4 ? [...bytes].join(".") : formatIpv6(bytes);
}

/** Parse "ADDR/PREFIX" or a bare address. Host bits must be zero ("10.0.0.1/8" is refused as ambiguous). */
export function parseCidr(text: string): Cidr {
  const value = text.trim();
  const slash = value.indexOf("/");
  const addressText = slash < 0 ? value : value.slice(0, slash);
  const bytes = parseV4(addressText) ?? parseV6(addressText);
  if (bytes === null) throw new CidrError(text, "not an IPv4 or IPv6 address or network (e.g. 10.0.0.0/8, 2001:db8::/32)");
  const bits = bytes.length * 8;
  let prefix = bits;
  if (slash >= 0) {
    const prefixText = value.slice(slash + 1);
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > bits) {
      throw new CidrError(text, `the prefix length must be 0-${bits}`);
    }
    prefix = Number(prefixText);
  }
  for (let bit = prefix; bit < bits; bit++) {
    if (((bytes[bit >> 3] ?? 0) >> (7 - (bit & 7))) & 1) {
      throw new CidrError(text, `has bits set after the /${prefix} prefix; did you mean ${formatAddress(mask(bytes, prefix))}/${prefix}?`);
    }
  }
  // An IPv4-mapped network (::ffff:10.0.0.0/104) is the IPv4 one (10.0.0.0/8): peers are matched as IPv4 addresses
  // (parseAddress), so kept in IPv6 form it would never match one.
  const mapped = bytes.length === 16 && prefix >= 96 && bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (mapped) return { bytes: bytes.slice(12), prefix: prefix - 96, text: `${formatAddress(bytes.slice(12))}/${prefix - 96}` };
  return { bytes, prefix, text: `${formatAddress(bytes)}/${prefix}` };
}

function mask(bytes: AddressBytes, prefix: number): AddressBytes {
  const out = Uint8Array.from(bytes);
  for (let bit = prefix; bit < out.length * 8; bit++) out[bit >> 3] = (out[bit >> 3] ?? 0) & ~(1 << (7 - (bit & 7)));
  return out;
}

/** Parse a comma-separated list of networks ("10.0.0.0/8, 192.0.2.7"); empty items are ignored. */
export function parseCidrList(text: string): Cidr[] {
  return text
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "")
    .map(parseCidr);
}

/** True when `address` (bytes of the same family) lies inside `network`. */
export function cidrContains(network: Cidr, address: AddressBytes): boolean {
  if (network.bytes.length !== address.length) return false;
  for (let bit = 0; bit < network.prefix; bit++) {
    const byte = bit >> 3;
    const shift = 7 - (bit & 7);
    if ((((network.bytes[byte] ?? 0) >> shift) & 1) !== (((address[byte] ?? 0) >> shift) & 1)) return false;
  }
  return true;
}

const LOOPBACK: readonly Cidr[] = [parseCidr("127.0.0.0/8"), parseCidr("::1/128")];

/** True for 127.0.0.0/8 and ::1 (and their IPv4-mapped forms). */
export function isLoopback(address: AddressBytes): boolean {
  return LOOPBACK.some((network) => cidrContains(network, address));
}
