/** The socket addresses of the raw probe and marked sockets, as golden bytes. */
import { describe, expect, test } from "bun:test";
import { addressBytes, sockaddrOfBytes } from "../../../ffi/sockaddr.ts";

const hex = (b: Uint8Array | null) => (b === null ? null : Buffer.from(b).toString("hex"));

describe("addressBytes", () => {
  test("IPv4 and IPv6 literals; anything else is null", () => {
    expect(hex(addressBytes("10.1.0.2"))).toBe("0a010002");
    expect(hex(addressBytes("2001:db8::1"))).toBe("20010db8000000000000000000000001");
    expect(hex(addressBytes("::"))).toBe("00000000000000000000000000000000");
    expect(hex(addressBytes("1:2:3:4:5:6:7:8"))).toBe("00010002000300040005000600070008");
    for (const bad of ["10.1.0.256", "web.example", "1:2:3:4::5:6:7:8", "1::2::3", "fe80::1%eth0", "::ffff:10.0.0.1", "1:2:3", "12345::", ""]) {
      expect(addressBytes(bad)).toBeNull();
    }
  });
});

describe("sockaddrOfBytes", () => {
  test("sockaddr_in: family (host order), port (network order), address, zero padding", () => {
    expect(hex(sockaddrOfBytes(Uint8Array.of(10, 1, 0, 2), 8080))).toBe("0200" + "1f90" + "0a010002" + "0000000000000000");
  });
  test("sockaddr_in6: family, port, flow info 0, address, scope 0", () => {
    const bytes = addressBytes("2001:db8::1");
    if (bytes === null) throw new Error("no bytes");
    expect(hex(sockaddrOfBytes(bytes, 80))).toBe("0a00" + "0050" + "00000000" + "20010db8000000000000000000000001" + "00000000");
  });
});
