/**
 * An apply through one node that moves things (a backend to another port, services onto each other's keys) is
 * applied by every other node from etcd's rows, one service at a time. Found by the fleet random test: a backend
 * whose port an apply changed, and a service moved onto the key another service of the same apply left, were
 * listed as `failed` on every other node (their kernels kept the old destinations) until some later change.
 */
import { expect, test } from "bun:test";
import { readServices } from "../../../src/config/services.ts";
import { cleanupsAfterEach, etcdForFile } from "./etcd-process.ts";
import { directNode } from "./etcd-proxy.ts";

const etcd = etcdForFile();
const cleanups = cleanupsAfterEach();

const node = (prefix: string) => directNode(etcd.endpoint, prefix, cleanups);

/** A and B on one prefix; `apply` runs a set through A and waits until B has applied it. */
async function pair(prefix: string) {
  const a = await node(prefix);
  const b = await node(prefix);
  return {
    a,
    b,
    async apply(set: Record<string, unknown>) {
      const report = await a.gorb.apply(readServices(set));
      expect(report.ok).toBe(true);
      expect(await b.store.waitApplied(a.store.committedRevision, 5000)).toBe(true);
      await b.gorb.idle();
    },
  };
}

function cannotApply(lines: readonly string[]): string[] {
  return lines.filter((l) => l.includes("cannot apply the shared state"));
}

test("an apply that moves a backend to another port: the other node re-creates it there", async () => {
  const { a, b, apply } = await pair("/moves-port");
  await apply({ web: { host: "10.0.0.1", port: 80, backends: { b1: { host: "10.1.0.1", port: 8080 }, b2: { host: "10.1.0.2", port: 8080 } } } });
  await apply({ web: { host: "10.0.0.1", port: 80, backends: { b1: { host: "10.1.0.1", port: 80 }, b2: { host: "10.1.0.2", port: 8080 } } } });
  expect(b.store.status().failed).toEqual([]);
  expect(cannotApply(b.logger.lines)).toEqual([]);
  expect(b.driver.peek()[0]?.destinations.map((d) => `${d.address}:${d.port}`).sort()).toEqual(["10.1.0.1:80", "10.1.0.2:8080"]);
  expect(await b.driver.snapshot()).toEqual(await a.driver.snapshot());
});

test("an apply that moves a service onto the key another service of the set leaves: the other node applies both", async () => {
  const { a, b, apply } = await pair("/moves-chain");
  await apply({
    api: { host: "10.0.0.1", port: 80, backends: { b1: { host: "10.1.0.1", port: 80 } } },
    web: { host: "10.0.0.2", port: 80, backends: { b1: { host: "10.1.0.2", port: 80 } } },
  });
  // api (applied first: ids in order) takes web's key, web moves on.
  await apply({
    api: { host: "10.0.0.2", port: 80, backends: { b1: { host: "10.1.0.1", port: 80 } } },
    web: { host: "10.0.0.3", port: 80, backends: { b1: { host: "10.1.0.2", port: 80 } } },
  });
  expect(b.store.status().failed).toEqual([]);
  expect(cannotApply(b.logger.lines)).toEqual([]);
  expect((await b.gorb.getService("api")).options.host).toBe("10.0.0.2");
  expect(await b.driver.snapshot()).toEqual(await a.driver.snapshot());
});

test("an apply that swaps two services' keys: the other node applies them as one change", async () => {
  const { a, b, apply } = await pair("/moves-swap");
  await apply({
    api: { host: "10.0.0.1", port: 80, backends: { b1: { host: "10.1.0.1", port: 80 } } },
    web: { host: "10.0.0.2", port: 80, backends: { b1: { host: "10.1.0.2", port: 80 } } },
  });
  await apply({
    api: { host: "10.0.0.2", port: 80, backends: { b1: { host: "10.1.0.1", port: 80 } } },
    web: { host: "10.0.0.1", port: 80, backends: { b1: { host: "10.1.0.2", port: 80 } } },
  });
  expect(b.store.status().failed).toEqual([]);
  expect(cannotApply(b.logger.lines)).toEqual([]);
  expect([(await b.gorb.getService("api")).options.host, (await b.gorb.getService("web")).options.host]).toEqual(["10.0.0.2", "10.0.0.1"]);
  expect(await b.driver.snapshot()).toEqual(await a.driver.snapshot());
});
