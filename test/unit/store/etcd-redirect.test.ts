/**
 * The etcd client follows no redirect: an endpoint that answers 307 (a misconfigured proxy, a member taken over)
 * must not get the etcd password of /v3/auth/authenticate, or any write, sent on to the host it names, and that
 * host's answers must not be taken as etcd's. No etcd is needed: both ends are fakes on loopback.
 */
import { afterEach, expect, test } from "bun:test";
import { EtcdClient, EtcdError } from "../../../src/store/etcd-client.ts";

const servers: { stop(force: boolean): unknown }[] = [];

afterEach(() => {
  for (const server of servers.splice(0)) server.stop(true);
});

/** An "etcd" that redirects every request to a host that records what it receives and answers like etcd. */
function redirectingEtcd() {
  const received: string[] = [];
  const elsewhere = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: async (request) => {
      received.push(`${new URL(request.url).pathname} ${await request.text()}`);
      return Response.json({ token: "theirs", header: { revision: "1" } });
    },
  });
  const etcd = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (request) => new Response(null, { status: 307, headers: { location: `http://127.0.0.1:${elsewhere.port}${new URL(request.url).pathname}` } }),
  });
  servers.push(elsewhere, etcd);
  return { endpoint: `http://127.0.0.1:${etcd.port}`, received };
}

test("a redirect on /v3/auth/authenticate is a failed call: the password is not sent to the host it names", async () => {
  const { endpoint, received } = redirectingEtcd();
  const client = new EtcdClient({ endpoints: [endpoint], auth: { user: "root", password: "s3cret" }, timeoutMs: 2000 });
  const failed = await client.put("/k", "v").catch((e: unknown) => e);
  expect(failed).toBeInstanceOf(EtcdError);
  expect((failed as EtcdError).status).toBe(307);
  expect(received).toEqual([]);
});

test("a redirect on a write is a failed call: the write is not sent on, nor its answer taken", async () => {
  const { endpoint, received } = redirectingEtcd();
  const client = new EtcdClient({ endpoints: [endpoint], timeoutMs: 2000 });
  const failed = await client.put("/k", "v").catch((e: unknown) => e);
  expect(failed).toBeInstanceOf(EtcdError);
  expect((failed as EtcdError).kind).toBe("rejected");
  expect(received).toEqual([]);
});
