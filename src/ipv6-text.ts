/**
 * IPv6 addresses as text, the one writer for every layer: formatIpv6 from an address's 16 bytes (the IPVS driver's
 * addresses, --allow's CIDRs, a DNS check's AAAA answers), hostPort with a port (a listen address, a probe's target,
 * the CLI's tables).
 */

/**
 * The 16 bytes of `bytes` from `at` as RFC 5952 writes an IPv6 address, and WHATWG URLs serialize one: lower-case hex
 * groups without leading zeros, the first longest run of two or more zero groups as "::". No dotted IPv4 tail, an
 * IPv4-mapped address included (::ffff:102:304). A byte past the end reads as 0.
 */
export function formatIpv6(bytes: Uint8Array, at = 0): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[at + i] ?? 0) << 8) | (bytes[at + i + 1] ?? 0));
  let start = -1;
  let length = 0;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > length && j - i >= 2) [start, length] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = (from: number, to: number) => groups.slice(from, to).map((g) => g.toString(16)).join(":");
  return start < 0 ? hex(0, 8) : `${hex(0, start)}::${hex(start + length, 8)}`;
}

/** A host and port as one text, an IPv6 address in brackets ("[2001:db8::1]:80", "10.0.0.1:80", "example.com:80"). */
export function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
