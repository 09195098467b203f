/**
 * A write whose connection closes after it was sent (the etcd member crashed, or a proxy reset it, before the
 * answer) may have been applied: etcd had it. It is not "etcd unreachable": it must not be sent again to the next
 * member (its compares then fail against its own result, and the answer is a 409 naming another node), and the
 * answer must say etcd may still apply it, as for a write etcd did not answer in time.
 */
import { expect, test } from "bun:test";
import { createConnection, createServer, type Socket } from "node:net";
import { ConflictError, StoreOutcomeUnknownError } from "../../../src/core/errors.ts";
import { EtcdClient } from "../../../src/store/etcd-client.ts";
import { EtcdStateStore } from "../../../src/store/etcd-store.ts";
import { makeGorb } from "../core/fakes.ts";
import { cleanupsAfterEach, etcdForFile } from "./etcd-process.ts";

const etcd = etcdForFile();
const cleanups = cleanupsAfterEach();

/**
 * A TCP proxy to `upstream` that, once armed, passes the next transaction to etcd and closes the client's
 * connection when etcd's answer comes, without passing it on.
 */
async function resettingProxy(upstream: string) {
  const target = new URL(upstream);
  const state = { armed: false };
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const server = createConnection({ host: target.hostname, port: Number(target.port) });
    sockets.add(client).add(server);
    let resetOnAnswer = false;
    client.on("data", (chunk: Buffer) => {
      if (chunk.subarray(0, 16).toString("latin1") === "POST /v3/kv/txn ") {
        if (state.armed) {
          state.armed = false;
          resetOnAnswer = true;
        }
      }
      server.write(chunk);
    });
    server.on("data", (chunk: Buffer) => {
      if (!resetOnAnswer) {
        client.write(chunk);
        return;
      }
      client.resetAndDestroy();
      server.destroy();
    });
    client.on("error", () => undefined);
    server.on("error", () => undefined);
    client.on("close", () => server.destroy());
    server.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  cleanups.push(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { endpoint: `http://127.0.0.1:${port}`, state };
}

test("a write whose connection is reset after etcd applied it is not sent again to the next member; it says etcd may have applied it, and the node then serves it", async () => {
  const prefix = "/reset-write";
  const proxy = await resettingProxy(etcd.endpoint);
  // Two endpoints: the proxy first, etcd itself second (as a second member would be).
  const store = new EtcdStateStore({ endpoints: [proxy.endpoint, etcd.endpoint], prefix, retryMs: 100 });
  cleanups.push(() => store.close());
  const node = makeGorb({ store });
  await node.gorb.restore((await store.load()).state);
  store.sync(node.gorb);

  proxy.state.armed = true;
  const refused = await node.gorb.createService("web", { host: "10.0.0.1", port: 80 }).then(
    () => null,
    (error: unknown) => error,
  );
  expect(refused).toBeInstanceOf(Error);
  expect(refused).not.toBeInstanceOf(ConflictError);
  expect((refused as Error).cause).toBeInstanceOf(StoreOutcomeUnknownError);
  expect((refused as Error).message).toContain("the store may still apply it");
  // etcd applied it: the node follows etcd and serves it, in its state and its kernel.
  const applied = await new EtcdClient({ endpoints: [etcd.endpoint] }).range(`${prefix}/services/web`);
  expect(applied.kvs.length).toBe(1);
  expect(await store.waitApplied(applied.revision, 10_000)).toBe(true);
  await node.gorb.idle();
  expect(node.gorb.listServices()).toEqual(["web"]);
  expect((await node.driver.snapshot()).map((e) => e.service.key)).toEqual([{ family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 }]);
});
