/**
 * An HTTP proxy in front of the real etcd for the store tests, to reproduce the network's timing: it forwards
 * every request, and can hold etcd's answers to ranges (etcd has served them, the client has not read them), hold
 * what the watch streams carry (a watcher behind etcd) and break the watch streams in flight (as a connection reset
 * does). It counts the ranges of changed keys it forwards (EtcdStateStore asking whether its watch lags).
 */
import { expect } from "bun:test";
import { EventBus } from "../../../src/core/events.ts";
import type { SavedState } from "../../../src/core/state.ts";
import { EtcdStateStore, type RemoteSink } from "../../../src/store/etcd-store.ts";
import { Membership } from "../../../src/store/membership.ts";
import { makeGorb } from "../core/fakes.ts";

export interface EtcdProxy {
  readonly endpoint: string;
  /**
   * Hold the answer of the next range etcd serves; `served` resolves once etcd has answered it, and `release`
   * lets it through.
   */
  holdNextRange(): { readonly served: Promise<void>; release(): void };
  /** Hold what etcd sends on the watch streams until `release` (the client's watch lags behind etcd). */
  holdWatches(): { release(): void };
  /** End every watch stream in flight (the client sees its watch break). */
  breakWatches(): void;
  /**
   * Cut the client off etcd for every request but the watch streams (hold them too with holdWatches): requests
   * go unanswered, never reaching etcd, until `heal`, when each is answered 504 (its client gave up long before).
   */
  partition(): { heal(): void };
  /**
   * Forward the next transaction to etcd (it is applied) and answer it as etcd does when its leader commits a
   * proposal after the request's own deadline: HTTP 503, gRPC Unavailable, "etcdserver: request timed out".
   */
  timeOutNextTxn(): void;
  /** How many ranges of changed keys only (`min_mod_revision`) etcd has answered through the proxy. */
  changedKeyRanges(): number;
  stop(): void;
}

export function startEtcdProxy(upstream: string): EtcdProxy {
  let hold: { served: () => void; released: Promise<void> } | null = null;
  const watches = new Set<() => void>();
  let watchGate: Promise<void> = Promise.resolve();
  let timeOutTxn = false;
  let cut: Promise<void> | null = null;
  let changedKeyRanges = 0;
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    idleTimeout: 0,
    async fetch(request) {
      const path = new URL(request.url).pathname;
      const body = await request.arrayBuffer();
      const init = { method: request.method, headers: request.headers, body };
      if (path === "/v3/watch") {
        const answer = await fetch(`${upstream}${path}`, init);
        const reader = answer.body?.getReader();
        if (reader === undefined) return new Response(null, { status: answer.status });
        // Closed: ended here (breakWatches) or canceled by the client (its watch aborted); nothing more goes in.
        let closed = false;
        let close = (): void => undefined;
        const end = () => {
          closed = true;
          watches.delete(close);
          reader.cancel().catch(() => undefined);
        };
        const stream = new ReadableStream<Uint8Array>({
          start(controller) {
            close = () => {
              if (closed) return;
              end();
              controller.close();
            };
            watches.add(close);
          },
          async pull(controller) {
            const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
            await watchGate;
            if (closed) return;
            if (done) {
              end();
              controller.close();
            } else controller.enqueue(value);
          },
          cancel: end,
        });
        return new Response(stream, { status: answer.status, headers: { "content-type": "application/json" } });
      }
      if (cut !== null) {
        await cut;
        return new Response(null, { status: 504 });
      }
      const answer = await fetch(`${upstream}${path}`, init);
      const text = await answer.arrayBuffer();
      if (path === "/v3/kv/range" && "min_mod_revision" in (JSON.parse(new TextDecoder().decode(body)) as object)) changedKeyRanges++;
      if (path === "/v3/kv/txn" && timeOutTxn) {
        timeOutTxn = false;
        const error = "etcdserver: request timed out";
        return Response.json({ error, code: 14, message: error }, { status: 503 });
      }
      const held = path === "/v3/kv/range" ? hold : null;
      if (held !== null) {
        hold = null;
        held.served();
        await held.released;
      }
      return new Response(text, { status: answer.status, headers: { "content-type": "application/json" } });
    },
  });
  return {
    endpoint: `http://127.0.0.1:${server.port}`,
    holdNextRange() {
      let served!: () => void;
      let release!: () => void;
      const servedP = new Promise<void>((r) => (served = r));
      const released = new Promise<void>((r) => (release = r));
      hold = { served, released };
      return { served: servedP, release };
    },
    holdWatches() {
      let release!: () => void;
      watchGate = new Promise<void>((r) => (release = r));
      return { release };
    },
    breakWatches() {
      for (const end of [...watches]) end();
    },
    partition() {
      let heal!: () => void;
      cut = new Promise<void>((r) => (heal = r));
      return {
        heal() {
          cut = null;
          heal();
        },
      };
    },
    timeOutNextTxn() {
      timeOutTxn = true;
    },
    changedKeyRanges: () => changedKeyRanges,
    stop() {
      this.breakWatches();
      void server.stop(true);
    },
  };
}

/** More of a test node's store: endpoints tried after the proxy's, and options. */
export interface NodeOptions {
  readonly fallback?: readonly string[];
  readonly watchLagMs?: number;
}

/**
 * A node of the store tests that reaches etcd through a proxy: the proxy, its EtcdStateStore under `prefix`, and a
 * Gorb restored from it (not yet following the store's watch); `cleanups` stops the proxy and closes the store.
 * `options`: endpoints the store tries after the proxy's, and its watchLagMs.
 */
export async function proxiedNode(upstream: string, prefix: string, cleanups: (() => Promise<void> | void)[], options: NodeOptions = {}) {
  const proxy = startEtcdProxy(upstream);
  cleanups.push(() => proxy.stop());
  const store = new EtcdStateStore({
    endpoints: [proxy.endpoint, ...(options.fallback ?? [])],
    prefix,
    ...(options.watchLagMs === undefined ? {} : { watchLagMs: options.watchLagMs }),
  });
  cleanups.push(() => store.close());
  const node = makeGorb({ store });
  await node.gorb.restore((await store.load()).state);
  return { proxy, store, node };
}

/**
 * A node of the store tests on etcd directly (no proxy) under `prefix`: its EtcdStateStore (retrying every 100 ms)
 * and a Gorb restored from it and following its watch; `cleanups` closes the store.
 */
export async function directNode(endpoint: string, prefix: string, cleanups: (() => Promise<void> | void)[]) {
  const store = new EtcdStateStore({ endpoints: [endpoint], prefix, retryMs: 100 });
  const stack = makeGorb({ store });
  await stack.gorb.restore((await store.load()).state);
  store.sync(stack.gorb);
  cleanups.push(() => store.close());
  return { ...stack, store };
}

/**
 * proxiedNode following the store, serving service web (10.0.0.1:80) with backend b1; `states` gets the store's
 * state (ok, degraded) at each apply of what other nodes wrote.
 */
export async function servingNode(upstream: string, prefix: string, cleanups: (() => Promise<void> | void)[], options: NodeOptions = {}) {
  const { proxy, store, node } = await proxiedNode(upstream, prefix, cleanups, options);
  const states: string[] = [];
  const sink: RemoteSink = {
    applyRemote(read: () => { readonly state: SavedState; readonly ids: Iterable<string> }, onApplied?: (failed: ReadonlySet<string>) => void) {
      states.push(store.status().state);
      return node.gorb.applyRemote(read, onApplied);
    },
  };
  store.sync(sink);
  await node.gorb.createService("web", { host: "10.0.0.1", port: 80, method: "rr" });
  await node.gorb.createBackend("web", "b1", { host: "10.1.0.1", port: 80 });
  expect(await store.waitApplied(store.committedRevision, 5000)).toBe(true);
  return { proxy, store, node, states };
}

/** The membership of node "a" (lease TTL 2 s) over `store`, started; `cleanups` stops it. */
export async function memberA(
  store: EtcdStateStore,
  prefix: string,
  cleanups: (() => Promise<void> | void)[],
  onStale?: (reason: string) => void,
): Promise<Membership> {
  const member = new Membership({
    client: store.client,
    prefix,
    node: "a",
    address: "10.0.0.1:4672",
    version: "test",
    events: new EventBus(),
    status: () => store.status(),
    ...(onStale === undefined ? {} : { onStale }),
    ttlSeconds: 2,
  });
  await member.start();
  cleanups.push(() => member.stop());
  return member;
}
