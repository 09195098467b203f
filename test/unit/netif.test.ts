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

test("removeHost says whether the address was there: true when it removed it, false when someone removed it first", () => {
  // In a network namespace of its own (unshare -n): its lo is down and empty, the host's interfaces untouched.
  const module = JSON.stringify(new URL("../../src/netif/interface-addresses.ts", import.meta.url).pathname);
  const script = `
    const { InterfaceAddresses } = await import(${module});
    const ifs = new InterfaceAddresses();
    const added = await ifs.addHost("lo", "10.9.8.7");
    const first = await ifs.removeHost("lo", "10.9.8.7");
    const second = await ifs.removeHost("lo", "10.9.8.7");
    console.log(JSON.stringify({ added, first, second, left: (await ifs.list("lo")).map((a) => a.address) }));
    ifs.close();`;
  const r = Bun.spawnSync(["unshare", "-n", process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
  expect(r.stderr.toString()).toBe("");
  expect(JSON.parse(r.stdout.toString())).toEqual({ added: true, first: true, second: false, left: [] });
});
