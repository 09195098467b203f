/** formatIpv6: RFC 5952 text of 16 bytes, as WHATWG URLs serialize an IPv6 address; hostPort: with a port. */
import { expect, test } from "bun:test";
import { formatIpv6, hostPort } from "../../src/ipv6-text.ts";

test("every placement of zero groups is written as the URL serializer writes it (the first longest run of two or more as ::)", () => {
  for (let zeros = 0; zeros < 256; zeros++) {
    const bytes = new Uint8Array(16);
    for (let g = 0; g < 8; g++) if ((zeros & (1 << g)) === 0) bytes[2 * g + 1] = g + 1;
    const groups = Array.from({ length: 8 }, (_, g) => (bytes[2 * g + 1] as number).toString(16)).join(":");
    expect(formatIpv6(bytes)).toBe(new URL(`http://[${groups}]/`).hostname.slice(1, -1));
  }
});

test("the 16 bytes from an offset; lower case, no leading zeros, an IPv4-mapped address without a dotted tail", () => {
  expect(formatIpv6(Uint8Array.of(9, 9, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 9, 9), 2)).toBe("2001:db8::1");
  expect(formatIpv6(Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4))).toBe("::ffff:102:304");
  expect(formatIpv6(Uint8Array.of(0x20, 0x01, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1))).toBe("2001:0:0:1::1");
});

test("a host and port: an IPv6 address in brackets, an IPv4 address or a name as it is", () => {
  expect([hostPort("2001:db8::1", 80), hostPort("10.0.0.1", 80), hostPort("example.com", 443)]).toEqual(["[2001:db8::1]:80", "10.0.0.1:80", "example.com:443"]);
});
