/**
 * A transaction etcd answers with gRPC Unavailable ("request timed out", "leader changed") may still be applied:
 * its proposal can commit after the answer. The change is then not known to have failed, and the answer says so.
 */
import { expect, test } from "bun:test";
import { EtcdClient } from "../../../src/store/etcd-client.ts";
import { cleanupsAfterEach, etcdForFile } from "./etcd-process.ts";
import { proxiedNode } from "./etcd-proxy.ts";

const etcd = etcdForFile();
const cleanups = cleanupsAfterEach();

test("a write etcd answers 'request timed out' (and applies) is reported as possibly applied, and the node serves it once the watch brings it", async () => {
  const { proxy, store, node } = await proxiedNode(etcd.endpoint, "/unknown-outcome", cleanups);
  store.sync(node.gorb);

  proxy.timeOutNextTxn();
  const refused = await node.gorb.createService("web", { host: "10.0.0.1", port: 80 }).then(
    () => null,
    (error: unknown) => error,
  );
  expect(refused).toBeInstanceOf(Error);
  const message = (refused as Error).message;
  expect(message).toContain("etcdserver: request timed out");
  expect(message).toContain("the store may still apply it");
  // etcd did apply it: the watch brings it back to this node, which then serves it (state and kernel agree).
  const applied = await new EtcdClient({ endpoints: [etcd.endpoint] }).range("/unknown-outcome/services/web");
  expect(applied.kvs.length).toBe(1);
  expect(await store.waitApplied(applied.revision, 10_000)).toBe(true);
  expect(node.gorb.listServices()).toEqual(["web"]);
  expect((await node.driver.snapshot()).map((e) => e.service.key)).toEqual([{ family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 }]);
});
