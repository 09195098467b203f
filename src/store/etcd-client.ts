/**
 * A small etcd v3 client over etcd's JSON gateway (`POST /v3/kv/range|put|txn|deleterange`, `/v3/watch`,
 * `/v3/lease/*`, `/v3/auth/authenticate`) with `fetch` only.
 *
 * Why not the npm `etcd3` package: it loads .proto files from disk when it is imported (which breaks
 * `bun build --compile`) and rides HTTP/2 streams, where Bun has had streaming regressions; a silent watch
 * stall is the worst failure for a reconciler. The gateway is plain HTTP/1.1 JSON, the same under `bun test`,
 * `bun run` and the compiled executable, and etcd 3.4 (Debian's) to 3.6 all serve it under `/v3/`.
 *
 * Gateway facts this code relies on: keys and values are base64; int64 fields (revisions, lease ids, TTLs) are
 * JSON strings; a watch answers a stream of newline-separated `{"result":{...}}` objects whose PUT events carry
 * no `type` (proto3 default) while deletes carry `"type":"DELETE"`; a watch from a compacted revision ends with
 * `{"result":{"canceled":true,"compact_revision":"N"}}`.
 *
 * Every request has a timeout (without quorum etcd holds requests instead of failing them). With several
 * endpoints, a request that cannot connect moves on to the next one; a write that timed out is not retried
 * elsewhere (it may have been applied), it fails with EtcdError kind "timeout"; a write etcd answered with gRPC
 * Unavailable ("request timed out", "leader changed": its proposal may still commit), or whose connection closed
 * after it was sent (a reset: the member may have it), fails with kind "unavailable". After any of those the client
 * moves on: the next request goes to the next endpoint. A watch has the same timeout to connect and send its first
 * message (etcd sends `created` at once); past it the watch fails with kind "timeout" and the client moves on.
 *
 * Every answer's header carries etcd's current revision: `revision` is the highest one seen, which tells how far
 * etcd has moved however quiet a watch is (EtcdStateStore compares it with what its watch delivered).
 *
 * With etcd authentication, requests carry the token of one login, shared by every request waiting for it; a token
 * etcd no longer takes (expired, the member restarted) is renewed by one login, however many requests it failed.
 */
import { errorCode } from "../errno.ts";
import { isRecord } from "../record.ts";

/** How a request to etcd failed. */
export type EtcdErrorKind = "unreachable" | "timeout" | "unavailable" | "rejected";

/**
 * EtcdError: `kind`, the endpoint, and the HTTP status and etcd's own error text (`reply`, as its gateway sent it:
 * "etcdserver: request is too large") when etcd answered with an error.
 */
export class EtcdError extends Error {
  override readonly name = "EtcdError";
  readonly kind: EtcdErrorKind;
  readonly endpoint: string;
  readonly status: number | null;
  readonly reply: string | null;

  constructor(kind: EtcdErrorKind, endpoint: string, message: string, options: { status?: number; reply?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    this.endpoint = endpoint;
    this.status = options.status ?? null;
    this.reply = options.reply ?? null;
  }
}

/** TLS material for https endpoints (PEM text). */
export interface EtcdTls {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

export interface EtcdClientOptions {
  /** Base URLs, "http://127.0.0.1:2379"; tried in order, the last one that answered first. */
  readonly endpoints: readonly string[];
  /** Timeout of every unary request. @default 3000 */
  readonly timeoutMs?: number;
  readonly tls?: EtcdTls;
  /** etcd user and password: a token from /v3/auth/authenticate goes in every request's Authorization header. */
  readonly auth?: { readonly user: string; readonly password: string };
}

/** One key-value as etcd has it (key and value decoded as UTF-8). */
export interface KeyValue {
  /** The key; one whose bytes are not UTF-8 (another client wrote it) shows each byte above 0x7f as `\xNN`. */
  readonly key: string;
  /** True when the key's bytes are not UTF-8: `key` is not the key's text, and no text names it. */
  readonly binaryKey?: true;
  readonly value: string;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly lease: string;
}

/** One watch event. */
export interface WatchEvent {
  readonly type: "put" | "delete";
  readonly kv: KeyValue;
}

/**
 * A compare of a txn: of `key`, or with `rangeEnd` of every key in [key, rangeEnd), each of which must pass (an
 * empty range compares as one absent key: revisions 0). A range end is bytes, as prefixEnd and endBefore give it.
 */
export type Compare =
  | { readonly key: string; readonly rangeEnd?: string; readonly target: "create"; readonly op: "equal" | "greater" | "less"; readonly revision: number }
  | { readonly key: string; readonly rangeEnd?: string; readonly target: "mod"; readonly op: "equal" | "less"; readonly revision: number };

/** An operation of a txn. */
export type TxnOp =
  | { readonly put: { readonly key: string; readonly value: string; readonly lease?: string } }
  | { readonly deleteRange: { readonly key: string; readonly rangeEnd?: string } }
  | { readonly range: { readonly key: string; readonly rangeEnd?: string } };

/** Why a watch ended. */
export type WatchEnd =
  | { readonly kind: "compacted"; readonly compactRevision: number }
  | { readonly kind: "eof" }
  | { readonly kind: "error"; readonly error: unknown }
  | { readonly kind: "stopped" };

/** gRPC status codes the gateway puts in `code`. */
const GRPC_UNAVAILABLE = 14;
const GRPC_UNAUTHENTICATED = 16;

const enc = (text: string): string => Buffer.from(text, "utf8").toString("base64");
const dec = (b64: unknown): string => (typeof b64 === "string" ? Buffer.from(b64, "base64").toString("utf8") : "");
const int = (value: unknown): number => (typeof value === "string" || typeof value === "number" ? Number(value) : 0);

/** The end of the range of every key starting with `prefix` (its last byte plus one). */
export function prefixEnd(prefix: string): string {
  const bytes = Buffer.from(prefix, "utf8");
  for (let i = bytes.length - 1; i >= 0; i--) {
    const byte = bytes[i] ?? 0;
    if (byte < 0xff) {
      const out = Buffer.from(bytes.subarray(0, i + 1));
      out[i] = byte + 1;
      return out.toString("latin1");
    }
  }
  return "\0";
}

/** The end of a range that stops just before `key` (its UTF-8 bytes, as a range end is held). */
export function endBefore(key: string): string {
  return Buffer.from(key, "utf8").toString("latin1");
}

/** Base64 of a range end from prefixEnd or endBefore (its bytes held as latin1, not UTF-8 text). */
function encEnd(end: string): string {
  return Buffer.from(end, "latin1").toString("base64");
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** A key's text, or, for bytes that are not UTF-8, the bytes with each one above 0x7f as `\xNN`. */
function decKey(b64: unknown): { key: string; binaryKey?: true } {
  const bytes = Buffer.from(typeof b64 === "string" ? b64 : "", "base64");
  try {
    return { key: strictUtf8.decode(bytes) };
  } catch {
    let key = "";
    for (const byte of bytes) key += byte < 0x80 ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, "0")}`;
    return { key, binaryKey: true };
  }
}

function toKv(raw: unknown): KeyValue {
  const r = isRecord(raw) ? raw : {};
  return {
    ...decKey(r.key),
    value: dec(r.value),
    createRevision: int(r.create_revision),
    modRevision: int(r.mod_revision),
    lease: typeof r.lease === "string" ? r.lease : "0",
  };
}

function opJson(op: TxnOp): Record<string, unknown> {
  if ("put" in op) {
    const put: Record<string, unknown> = { key: enc(op.put.key), value: enc(op.put.value) };
    if (op.put.lease !== undefined) put.lease = op.put.lease;
    return { request_put: put };
  }
  if ("deleteRange" in op) {
    const del: Record<string, unknown> = { key: enc(op.deleteRange.key) };
    if (op.deleteRange.rangeEnd !== undefined) del.range_end = encEnd(op.deleteRange.rangeEnd);
    return { request_delete_range: del };
  }
  const range: Record<string, unknown> = { key: enc(op.range.key) };
  if (op.range.rangeEnd !== undefined) range.range_end = encEnd(op.range.rangeEnd);
  return { request_range: range };
}

function compareJson(c: Compare): Record<string, unknown> {
  const range = c.rangeEnd === undefined ? {} : { range_end: encEnd(c.rangeEnd) };
  const result = c.op.toUpperCase();
  if (c.target === "create") return { key: enc(c.key), ...range, target: "CREATE", result, create_revision: String(c.revision) };
  return { key: enc(c.key), ...range, target: "MOD", result, mod_revision: String(c.revision) };
}

function isTimeout(error: unknown): boolean {
  return error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
}

/**
 * Connection errors that can come after the request went out (the member crashed, or something between reset the
 * connection, before the answer): etcd may have it. Refused connections and failed lookups never sent anything.
 */
const CLOSED_AFTER_SEND: ReadonlySet<string> = new Set(["ECONNRESET", "EPIPE", "ECONNABORTED", "ConnectionClosed"]);

function closedAfterSend(error: unknown): boolean {
  return error instanceof Error && CLOSED_AFTER_SEND.has(errorCode(error));
}

/** See the module comment. */
export class EtcdClient {
  readonly #endpoints: readonly string[];
  readonly #timeoutMs: number;
  readonly #tls: EtcdTls | undefined;
  readonly #auth: { readonly user: string; readonly password: string } | undefined;
  #current = 0;
  #seen = 0;
  #token: string | null = null;
  /** The login in flight, which every request needing a token waits for (one login, not one per request). */
  #login: Promise<void> | null = null;

  constructor(options: EtcdClientOptions) {
    if (options.endpoints.length === 0) throw new Error("etcd: no endpoints");
    this.#endpoints = options.endpoints.map((e) => e.replace(/\/+$/, ""));
    this.#timeoutMs = options.timeoutMs ?? 3000;
    this.#tls = options.tls;
    this.#auth = options.auth;
  }

  get endpoints(): readonly string[] {
    return this.#endpoints;
  }

  /** The timeout of every unary request. */
  get timeoutMs(): number {
    return this.#timeoutMs;
  }

  /** The endpoint the next request (or watch) goes to. */
  get endpoint(): string {
    return this.#endpoint();
  }

  /** The highest store revision an answer's header carried (keepalives included; 0 before the first answer). */
  get revision(): number {
    return this.#seen;
  }

  /** Move on from `endpoint` when the next request would go to it (its watch went silent: see EtcdStateStore). */
  avoid(endpoint: string): void {
    if (this.#endpoint() === endpoint) this.#next();
  }

  /**
   * The keys in [key, rangeEnd) (or `key` alone), the store revision they were read at, and the id of the etcd
   * cluster that answered (a uint64 as a string; "" when the answer has none). `since`: only the keys changed at
   * or after that revision, without their values.
   */
  async range(key: string, rangeEnd?: string, since?: number): Promise<{ revision: number; clusterId: string; kvs: KeyValue[] }> {
    const body: Record<string, unknown> = { key: enc(key) };
    if (rangeEnd !== undefined) body.range_end = encEnd(rangeEnd);
    if (since !== undefined) Object.assign(body, { min_mod_revision: String(since), keys_only: true });
    const answer = await this.#call("kv/range", body, true);
    const kvs = Array.isArray(answer.kvs) ? answer.kvs.map(toKv) : [];
    const header = isRecord(answer.header) ? answer.header : {};
    return { revision: this.#revision(answer), clusterId: typeof header.cluster_id === "string" ? header.cluster_id : "", kvs };
  }

  /** The keys in [key, rangeEnd) as they were at store revision `revision` (fails once etcd compacted past it). */
  async rangeAt(key: string, rangeEnd: string, revision: number): Promise<KeyValue[]> {
    const answer = await this.#call("kv/range", { key: enc(key), range_end: encEnd(rangeEnd), revision: String(revision) }, true);
    return Array.isArray(answer.kvs) ? answer.kvs.map(toKv) : [];
  }

  /** Put one key; the revision it produced. */
  async put(key: string, value: string, lease?: string): Promise<number> {
    const body: Record<string, unknown> = { key: enc(key), value: enc(value) };
    if (lease !== undefined) body.lease = lease;
    return this.#revision(await this.#call("kv/put", body, false));
  }

  /** Delete one key or [key, rangeEnd); the revision and how many keys went. */
  async deleteRange(key: string, rangeEnd?: string): Promise<{ revision: number; deleted: number }> {
    const body: Record<string, unknown> = { key: enc(key) };
    if (rangeEnd !== undefined) body.range_end = encEnd(rangeEnd);
    const answer = await this.#call("kv/deleterange", body, false);
    return { revision: this.#revision(answer), deleted: int(answer.deleted) };
  }

  /** One transaction: `success` when every compare holds, else `failure`; the revision after it. */
  async txn(compare: readonly Compare[], success: readonly TxnOp[], failure: readonly TxnOp[] = []): Promise<{ succeeded: boolean; revision: number }> {
    const answer = await this.#call(
      "kv/txn",
      { compare: compare.map(compareJson), success: success.map(opJson), failure: failure.map(opJson) },
      false,
    );
    return { succeeded: answer.succeeded === true, revision: this.#revision(answer) };
  }

  /** Compact the key-value history up to `revision` (tests and operators). */
  async compact(revision: number): Promise<void> {
    await this.#call("kv/compaction", { revision: String(revision), physical: true }, false);
  }

  /** A lease of `ttlSeconds`; its id (an int64 as a string). */
  async leaseGrant(ttlSeconds: number): Promise<string> {
    const answer = await this.#call("lease/grant", { TTL: String(ttlSeconds) }, false);
    if (typeof answer.ID !== "string") throw new EtcdError("rejected", this.#endpoint(), "etcd granted no lease id");
    return answer.ID;
  }

  /** Renew a lease once; its remaining TTL (0 or less: the lease is gone). */
  async leaseKeepAlive(id: string): Promise<number> {
    const answer = await this.#call("lease/keepalive", { ID: id }, true);
    const result = isRecord(answer.result) ? answer.result : answer;
    return int(result.TTL);
  }

  /** Revoke a lease (its keys go at once). */
  async leaseRevoke(id: string): Promise<void> {
    await this.#call("lease/revoke", { ID: id }, false);
  }

  /**
   * Watch [key, rangeEnd) from `startRevision`: `onEvents` gets each batch with the revision it brings the
   * watcher to (progress notifications included, with no events). Resolves with why the watch ended; it never
   * rejects. `signal` stops it ("stopped").
   */
  async watch(
    key: string,
    rangeEnd: string,
    startRevision: number,
    onEvents: (events: readonly WatchEvent[], revision: number) => Promise<void> | void,
    signal: AbortSignal,
  ): Promise<WatchEnd> {
    const endpoint = this.#endpoint();
    // Until its first message: a member that accepts the connection and says nothing (a dead host behind a live
    // address, a partition) would otherwise hold the watch, and every change after it, for good.
    const connect = new AbortController();
    const timer = setTimeout(() => connect.abort(), this.#timeoutMs);
    const timedOut = (): WatchEnd => {
      this.#next();
      return { kind: "error", error: new EtcdError("timeout", endpoint, `the watch on ${endpoint} sent nothing within ${this.#timeoutMs} ms`) };
    };
    let response: Response;
    try {
      response = await fetch(`${endpoint}/v3/watch`, {
        ...this.#init(),
        body: JSON.stringify({
          create_request: { key: enc(key), range_end: encEnd(rangeEnd), start_revision: String(startRevision), progress_notify: true },
        }),
        signal: AbortSignal.any([signal, connect.signal]),
      } as RequestInit);
    } catch (error) {
      clearTimeout(timer);
      if (signal.aborted) return { kind: "stopped" };
      if (connect.signal.aborted) return timedOut();
      this.#next();
      return { kind: "error", error: new EtcdError("unreachable", endpoint, `cannot watch on ${endpoint}: ${String(error)}`, { cause: error }) };
    }
    if (!response.ok || response.body === null) {
      clearTimeout(timer);
      return { kind: "error", error: new EtcdError("rejected", endpoint, `watch answered HTTP ${response.status}`, { status: response.status }) };
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffered = "";
    try {
      for (;;) {
        const { done, value } = await reader.read();
        clearTimeout(timer);
        if (done) return signal.aborted ? { kind: "stopped" } : { kind: "eof" };
        buffered += decoder.decode(value, { stream: true });
        let newline: number;
        while ((newline = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line === "") continue;
          const message = JSON.parse(line) as unknown;
          if (!isRecord(message)) continue;
          if (isRecord(message.error)) {
            return { kind: "error", error: new EtcdError("rejected", endpoint, `watch: ${String(message.error.message ?? "error")}`) };
          }
          const result = isRecord(message.result) ? message.result : null;
          if (result === null) continue;
          if (result.canceled === true) {
            const compact = int(result.compact_revision);
            if (compact > 0) return { kind: "compacted", compactRevision: compact };
            return { kind: "error", error: new EtcdError("rejected", endpoint, `watch canceled: ${String(result.cancel_reason ?? "")}`) };
          }
          if (result.created === true) continue;
          const events: WatchEvent[] = Array.isArray(result.events)
            ? result.events.map((e: unknown) => {
                const ev = isRecord(e) ? e : {};
                return { type: ev.type === "DELETE" ? ("delete" as const) : ("put" as const), kv: toKv(ev.kv) };
              })
            : [];
          const header = isRecord(result.header) ? result.header : {};
          // A watch behind etcd gets what it missed in batches of at most 1,000 revisions, each with etcd's current
          // revision in its header: a batch with events brings the watcher to its last event, no further. (A live
          // watch's batch is one revision, its header's; a progress notification has no events.)
          const last = events.reduce((max, e) => Math.max(max, e.kv.modRevision), 0);
          await onEvents(events, events.length > 0 ? last : int(header.revision));
        }
      }
    } catch (error) {
      clearTimeout(timer);
      if (signal.aborted) return { kind: "stopped" };
      if (connect.signal.aborted) return timedOut();
      return { kind: "error", error };
    } finally {
      reader.cancel().catch(() => undefined);
    }
  }

  #endpoint(): string {
    return this.#endpoints[this.#current % this.#endpoints.length] ?? "";
  }

  #next(): void {
    this.#current = (this.#current + 1) % this.#endpoints.length;
  }

  #init(): RequestInit {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (this.#token !== null) headers.authorization = this.#token;
    // No redirects: fetch would send the body (the password of /v3/auth/authenticate, every write) to wherever a
    // 307 points, and take that host's answers as etcd's. The gateway never redirects; a 3xx is a failed call.
    const init: RequestInit & { tls?: EtcdTls } = { method: "POST", headers, redirect: "manual" };
    if (this.#tls !== undefined) init.tls = this.#tls;
    return init;
  }

  #revision(answer: Record<string, unknown>): number {
    const header = isRecord(answer.header) ? answer.header : {};
    return int(header.revision);
  }

  /** Note etcd's revision from an answer's header (a keepalive's is in its `result`). */
  #saw(answer: Record<string, unknown>): void {
    const result = isRecord(answer.result) ? answer.result : {};
    this.#seen = Math.max(this.#seen, this.#revision(answer), this.#revision(result));
  }

  /** Log in at `endpoint`, or wait for the login already in flight. */
  #logIn(endpoint: string): Promise<void> {
    this.#login ??= this.#authenticate(endpoint).finally(() => {
      this.#login = null;
    });
    return this.#login;
  }

  async #authenticate(endpoint: string): Promise<void> {
    const auth = this.#auth;
    if (auth === undefined) return;
    const response = await fetch(`${endpoint}/v3/auth/authenticate`, {
      ...this.#init(),
      body: JSON.stringify({ name: auth.user, password: auth.password }),
      signal: AbortSignal.timeout(this.#timeoutMs),
    } as RequestInit);
    if (response.status >= 300 && response.status < 400) {
      throw new EtcdError("rejected", endpoint, `etcd at ${endpoint} answered HTTP ${response.status}, a redirect (not followed)`, { status: response.status });
    }
    const answer = (await response.json()) as unknown;
    if (!response.ok || !isRecord(answer) || typeof answer.token !== "string") {
      throw new EtcdError("rejected", endpoint, `etcd refused user ${JSON.stringify(auth.user)}`, { status: response.status });
    }
    this.#token = answer.token;
  }

  /**
   * POST one request; moves to the next endpoint when one cannot be reached (and, for `idempotent` requests,
   * when one timed out). Throws EtcdError.
   */
  async #call(path: string, body: Record<string, unknown>, idempotent: boolean): Promise<Record<string, unknown>> {
    let last: EtcdError | null = null;
    // A token etcd no longer takes (its TTL ran out, its user's password changed, the member restarted): renewed
    // once, on the same endpoint, without using up an attempt (with one endpoint there is no other). Only the token
    // this request sent is dropped: another request may have got a new one meanwhile, which it then uses.
    let renewed = false;
    for (let attempt = 0; attempt < this.#endpoints.length; attempt++) {
      const endpoint = this.#endpoint();
      let response: Response;
      if (this.#auth !== undefined && this.#token === null) {
        try {
          await this.#logIn(endpoint);
        } catch (error) {
          if (error instanceof EtcdError) throw error;
          // The login writes nothing: whatever became of it (no answer in time, a reset), the request was not sent,
          // so it goes to the next endpoint as when this one cannot be reached, a write too.
          last = new EtcdError("unreachable", endpoint, `cannot log in to etcd at ${endpoint}: ${String(error)}`, { cause: error });
          this.#next();
          continue;
        }
      }
      const sent = this.#token;
      try {
        response = await fetch(`${endpoint}/v3/${path}`, {
          ...this.#init(),
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(this.#timeoutMs),
        } as RequestInit);
      } catch (error) {
        if (error instanceof EtcdError) throw error;
        // Either way this member did not serve it: the next request goes to the next one (a member without quorum,
        // or a dead host that drops packets, would otherwise take every write after this one too).
        if (isTimeout(error)) {
          last = new EtcdError("timeout", endpoint, `etcd at ${endpoint} did not answer within ${this.#timeoutMs} ms`, { cause: error });
          if (!idempotent) {
            this.#next();
            throw last;
          }
        } else if (closedAfterSend(error) && !idempotent) {
          // A write may have been applied: not sent again elsewhere (it would fail its own compares), and not known to have failed.
          this.#next();
          throw new EtcdError("unavailable", endpoint, `etcd at ${endpoint} closed the connection before answering: ${String(error)}`, { cause: error });
        } else {
          last = new EtcdError("unreachable", endpoint, `cannot reach etcd at ${endpoint}: ${String(error)}`, { cause: error });
        }
        this.#next();
        continue;
      }
      // The body comes after the headers, under the same timeout: cut short (not whole in time, or the connection
      // closed), it is no answer, as above; only a whole body that is not JSON is etcd's answer.
      let text: string;
      try {
        text = await response.text();
      } catch (error) {
        this.#next();
        const cut = isTimeout(error)
          ? new EtcdError("timeout", endpoint, `etcd at ${endpoint} did not finish its answer within ${this.#timeoutMs} ms`, { cause: error })
          : new EtcdError(idempotent ? "unreachable" : "unavailable", endpoint, `etcd at ${endpoint} closed the connection while answering: ${String(error)}`, { cause: error });
        // A write may have been applied: not sent again elsewhere, and not known to have failed.
        if (!idempotent) throw cut;
        last = cut;
        continue;
      }
      let answer: unknown;
      try {
        answer = JSON.parse(text);
      } catch (error) {
        throw new EtcdError("rejected", endpoint, `etcd answered HTTP ${response.status} without JSON`, { status: response.status, cause: error });
      }
      if (!isRecord(answer)) throw new EtcdError("rejected", endpoint, `etcd answered HTTP ${response.status} with a non-object`);
      if (!response.ok || (typeof answer.error === "string" && answer.code !== undefined)) {
        const text = typeof answer.error === "string" ? answer.error : typeof answer.message === "string" ? answer.message : "";
        const code = int(answer.code);
        if (code === GRPC_UNAUTHENTICATED && this.#auth !== undefined && !renewed) {
          if (this.#token === sent) this.#token = null;
          renewed = true;
          attempt--;
          continue;
        }
        // No leader / not enough members: another member may do better.
        if (code === GRPC_UNAVAILABLE && idempotent) {
          last = new EtcdError("unreachable", endpoint, `etcd at ${endpoint}: ${text}`, { status: response.status });
          this.#next();
          continue;
        }
        // A write: etcd may have proposed it already, and the proposal may still commit. The next request tries the
        // next member (this one may have lost its quorum).
        if (code === GRPC_UNAVAILABLE) {
          this.#next();
          throw new EtcdError("unavailable", endpoint, `etcd at ${endpoint}: ${text}`, { status: response.status });
        }
        throw new EtcdError("rejected", endpoint, `etcd at ${endpoint}: ${text || `HTTP ${response.status}`}`, { status: response.status, reply: text });
      }
      this.#saw(answer);
      return answer;
    }
    throw last ?? new EtcdError("unreachable", this.#endpoint(), "etcd: no endpoint answered");
  }
}
