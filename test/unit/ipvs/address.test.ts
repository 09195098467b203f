/** Address literals: which texts are IPv4 or IPv6 addresses, their bytes, and their canonical text. */
import { describe, expect, test } from "bun:test";
import { addressFamily, addressToBytes, canonicalAddress } from "../../../src/ipvs/address.ts";

describe("IPv4 literals", () => {
  test.each([
    ["0.0.0.0", [0, 0, 0, 0]],
    ["10.0.0.1", [10, 0, 0, 1]],
    ["255.255.255.255", [255, 255, 255, 255]],
    ["100.200.250.199", [100, 200, 250, 199]],
  ])("%s is an address: its bytes, and it is its own canonical text", (text, bytes) => {
    expect(addressFamily(text)).toBe("inet");
    expect([...addressToBytes(text)]).toEqual(bytes);
    expect(canonicalAddress(text)).toBe(text);
  });

  test.each([
    "256.1.1.1", // a part above 255
    "1.2.3.999",
    "01.2.3.4", // a leading zero (octal in some parsers)
    "1.2.3.00",
    "1.2.3", // three parts
    "1.2.3.4.5",
    "1..2.3", // an empty part
    ".1.2.3",
    "1.2.3.",
    "1.2.3.4 ", // anything but digits and dots
    " 1.2.3.4",
    "1.2.3.4\n",
    "+1.2.3.4",
    "1.2.3.-1",
    "1e1.2.3.4",
    "١.2.3.4", // a digit that is not ASCII
    "",
  ])("%j is not an address", (text) => {
    expect(addressFamily(text)).toBeNull();
    expect(() => addressToBytes(text)).toThrow(TypeError);
  });
});

describe("IPv6 literals", () => {
  test("an embedded IPv4 tail is read with the same rules", () => {
    expect([...addressToBytes("::ffff:10.0.0.1")]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1]);
    expect(addressFamily("::ffff:10.0.0.01")).toBeNull();
    expect(addressFamily("::ffff:10.0.0.256")).toBeNull();
  });

  test("canonical text is RFC 5952's", () => {
    expect(canonicalAddress("2001:DB8:0:0:0:0:0:1")).toBe("2001:db8::1");
    expect(addressFamily("2001:db8::1")).toBe("inet6");
  });
});
