// The netlink layer must never freeze the daemon: while gorb's driver applies thousands of writes to the real
// kernel and dumps them back, an HTTP server in the same process keeps answering.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { KernelIpvsDriver } from "../../src/ipvs/kernel-driver.ts";
import type { IpvsOp } from "../../src/ipvs/types.ts";
import { NO_FLAGS } from "../../src/ipvs/types.ts";
import { assertInGuest } from "./helpers/guest.ts";
import { ip, ipvsadm } from "./helpers/sh.ts";

let driver: KernelIpvsDriver;

beforeAll(() => {
  assertInGuest();
  ip("route", "replace", "10.77.0.0/16", "dev", "lo");
  ipvsadm("-C");
  driver = new KernelIpvsDriver();
});

afterAll(() => {
  if (process.env.GORB_RIG !== "1") return;
  driver?.close();
  ipvsadm("-C");
});

function bulk(services: number, dests: number): IpvsOp[] {
  const ops: IpvsOp[] = [];
  for (let i = 0; i < services; i++) {
    const key = { family: "inet" as const, protocol: "tcp" as const, address: `10.200.${i >> 8}.${i & 255}`, port: 80 };
    ops.push({ op: "add-service", service: { key, scheduler: "wrr", flags: NO_FLAGS, timeout: 0, netmask: 32, pe: null } });
    for (let j = 0; j < dests; j++) {
      ops.push({ op: "add-destination", service: key, destination: { family: "inet", address: `10.77.${j}.${(i & 254) + 1}`, port: 8000 + (i >> 8), forward: "nat", weight: 1, upperThreshold: 0, lowerThreshold: 0, tunnel: null } });
    }
  }
  return ops;
}

test("an HTTP server in the same process keeps answering during a 5,500-op apply and a full dump", async () => {
  const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("ok") });
  let answered = 0;
  let busy = true;
  const poller = (async () => {
    while (busy) {
      const res = await fetch(`http://127.0.0.1:${server.port}/`);
      if ((await res.text()) === "ok") answered++;
    }
  })();
  try {
    const ops = bulk(500, 10);
    const results = await driver.apply(ops);
    expect(results.filter((r) => r !== null)).toEqual([]);
    const snap = await driver.snapshot();
    expect(snap.reduce((n, s) => n + 1 + s.destinations.length, 0)).toBe(ops.length);
  } finally {
    busy = false;
    await poller;
    server.stop(true);
  }
  console.log(`HTTP requests answered during the bulk apply and dump: ${answered}`);
  // A driver that blocked the event loop for the whole operation would let at most one request through.
  expect(answered).toBeGreaterThan(10);
});
