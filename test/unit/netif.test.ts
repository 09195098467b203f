import { expect, test } from "bun:test";
import { InterfaceAddresses, InterfaceError, interfaceIndex } from "../../src/netif/interface-addresses.ts";

// These run against the host's real rtnetlink (no IPVS needed): lo always exists with 127.0.0.1.
test("the addresses of lo include 127.0.0.1/8", async () => {
  const ifs = new InterfaceAddresses();
  const addrs = await ifs.list("lo");
  ifs.close();
  expect(addrs).toContainEqual({ family: "inet", address: "127.0.0.1", prefixLength: 8 });
});

test("an unknown interface is an error that names it", () => {
  expect(() => interfaceIndex("nosuchif0")).toThrow('no network interface named "nosuchif0"');
  expect(() => interfaceIndex("../etc")).toThrow(InterfaceError);
});
