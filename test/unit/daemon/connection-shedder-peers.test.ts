/**
 * Which connections the shedder closes: a flood of connections from another host must not get the operator's own
 * connection from loopback closed, however new it is. Real sockets:
 * a dual-stack "API" listener ("::"), connections from this machine's non-loopback IPv4 address (a peer that is
 * not loopback) and from 127.0.0.1, and the shedder's real view of them in /proc (its shutdown only recorded).
 */
import { afterAll, expect, test } from "bun:test";
import { networkInterfaces } from "node:os";
import { parseCidr } from "../../../src/config/cidr.ts";
import { ConnectionShedder, fdsOfSockets, socketInodesOnLocalPort } from "../../../src/daemon/connection-shedder.ts";

/** A non-loopback IPv4 address of this machine: connecting to it makes a peer outside 127.0.0.0/8. */
function externalAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const entry of list ?? []) if (entry.family === "IPv4" && !entry.internal) return entry.address;
  }
  throw new Error("this test needs one non-loopback IPv4 address on the machine");
}

const accepted: import("bun").Socket[] = [];
const api = Bun.listen({ hostname: "::", port: 0, socket: { open: (s) => void accepted.push(s), data() {} } });
const clients: import("bun").Socket[] = [];
afterAll(() => {
  for (const s of clients) s.terminate();
  api.stop(true);
});

async function open(hostname: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) clients.push(await Bun.connect({ hostname, port: api.port, socket: { data() {} } }));
  while (accepted.length < clients.length) await Bun.sleep(1);
}

/** The peer address (text) of each API connection the shedder shut down. */
function shutPeers(shut: readonly number[]): string[] {
  const byFd = new Map(fdsOfSockets(socketInodesOnLocalPort(api.port)).map((s) => [s.fd, s.peer]));
  return shut.map((fd) => [...(byFd.get(fd) ?? [])].join("."));
}

test("the operator's connection from loopback is kept however new", async () => {
  const external = externalAddress();
  await open(external, 3); // a flood from another host, opened first
  await open("127.0.0.1", 1); // the operator's CLI on the load balancer: the newest connection
  const peers = fdsOfSockets(socketInodesOnLocalPort(api.port)).map((s) => [...(s.peer ?? [])].join("."));
  // Through the dual-stack listener /proc lists them as IPv4-mapped IPv6: read as IPv4.
  expect(peers.sort()).toEqual(["127.0.0.1", external, external, external].sort());
  const round = (allow: string[]) => {
    const shut: number[] = [];
    const shedder = new ConnectionShedder({
      port: api.port,
      maxConnections: 2,
      fdLimit: 10_000,
      intervalMs: 3_600_000,
      allow: allow.map(parseCidr),
      shutdown: (fd) => (shut.push(fd), 0),
    });
    try {
      expect(shedder.check()).toBe(2);
      return shutPeers(shut);
    } finally {
      shedder.stop();
    }
  };
  // No allow list: the two newest of the other host's, not the newer one from loopback.
  expect(round([])).toEqual([external, external]);
  // The other host inside --allow or outside it: loopback stays.
  expect(round([`${external}/32`])).toEqual([external, external]);
  expect(round(["198.51.100.0/24"])).toEqual([external, external]);
});
