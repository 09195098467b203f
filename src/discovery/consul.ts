/**
 * ConsulDiscovery registers gorb's virtual services with a Consul agent:
 *   PUT <consul>/v1/agent/service/register            {"ID","Name","Address","Port","Tags":["gorb",<protocol>]}
 *   PUT <consul>/v1/agent/service/deregister/<ID>      (empty body)
 * The ID is "<instance>-<service id>" so two gorbs on one agent do not overwrite each other (the original used
 * the service id alone); the Name is the service id, so Consul DNS answers <service id>.service.consul.
 *
 * Calls never fail the API request that caused them. Each service has at most one pending operation (the
 * latest wins: a remove replaces a pending expose); a failed call is retried in the background with
 * exponential back-off and logged. `close()` stops the retries and deregisters everything this instance
 * registered, one attempt each.
 */
import { type Logger, silentLogger } from "../log.ts";
import type { Discovery, ServiceRegistration } from "./discovery.ts";

/** Options of ConsulDiscovery. */
export interface ConsulDiscoveryOptions {
  /** Consul HTTP API base URL, e.g. "http://127.0.0.1:8500". A query string (?token=...) is kept on every call. */
  readonly url: string;
  /** Prefix of every Consul service ID, unique per gorb on an agent; e.g. the host name. */
  readonly instance: string;
  /** Sent as X-Consul-Token when given. */
  readonly token?: string;
  /** Per-call timeout in ms. @default 5000 */
  readonly timeoutMs?: number;
  /** Delay before the first retry in ms; doubles per failure. @default 1000 */
  readonly retryInitialMs?: number;
  /** Longest delay between retries in ms. @default 60000 */
  readonly retryMaxMs?: number;
  readonly logger?: Logger;
  /** The fetch to use (tests). @default globalThis.fetch */
  readonly fetch?: (input: string, init: RequestInit) => Promise<Response>;
}

type Operation =
  | { readonly kind: "register"; readonly registration: ServiceRegistration }
  | { readonly kind: "deregister" };

interface Pending {
  readonly id: string;
  readonly operation: Operation;
  attempts: number;
  /** Epoch ms before which it is not retried. */
  due: number;
}

/** Discovery through a Consul agent's HTTP API, with a background retry queue. */
export class ConsulDiscovery implements Discovery {
  readonly #base: URL;
  readonly #instance: string;
  readonly #token: string | undefined;
  readonly #timeoutMs: number;
  readonly #retryInitialMs: number;
  readonly #retryMaxMs: number;
  readonly #log: Logger;
  readonly #fetch: (input: string, init: RequestInit) => Promise<Response>;

  /** Pending operations by gorb service id, oldest first. */
  readonly #pending = new Map<string, Pending>();
  /** Service ids whose registration Consul accepted (and that were not deregistered since). */
  readonly #registered = new Set<string>();
  #draining = false;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #closed = false;
  #idleWaiters: (() => void)[] = [];

  constructor(options: ConsulDiscoveryOptions) {
    let base: URL;
    try {
      base = new URL(options.url);
    } catch {
      throw new TypeError(`consul: ${JSON.stringify(options.url)} is not a URL (it needs a scheme: http://host:8500)`);
    }
    if (base.protocol !== "http:" && base.protocol !== "https:") {
      throw new TypeError(`consul: ${JSON.stringify(options.url)} must be an http:// or https:// URL`);
    }
    this.#base = base;
    this.#instance = options.instance;
    this.#token = options.token;
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#retryInitialMs = options.retryInitialMs ?? 1000;
    this.#retryMaxMs = options.retryMaxMs ?? 60_000;
    this.#log = options.logger ?? silentLogger;
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
  }

  /** The Consul service ID of a gorb service id. */
  consulId(id: string): string {
    return `${this.#instance}-${id}`;
  }

  expose(registration: ServiceRegistration): void {
    if (this.#closed) return;
    this.#enqueue(registration.id, { kind: "register", registration: { ...registration } });
  }

  remove(id: string): void {
    if (this.#closed) return;
    this.#enqueue(id, { kind: "deregister" });
  }

  /** Number of operations waiting to be sent or retried. */
  pendingCount(): number {
    return this.#pending.size;
  }

  /** Resolves once no operation is pending (every call succeeded). For tests and orderly shutdown. */
  whenIdle(): Promise<void> {
    if (this.#pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    // A registration still pending may have reached Consul on an attempt that timed out: withdraw it too.
    const ids = new Set(this.#registered);
    for (const pending of this.#pending.values()) {
      if (pending.operation.kind === "register" && pending.attempts > 0) ids.add(pending.id);
    }
    this.#pending.clear();
    await Promise.all(
      [...ids].map(async (id) => {
        try {
          await this.#send(id, { kind: "deregister" });
          this.#registered.delete(id);
        } catch (error) {
          this.#log.warn(`consul: could not deregister ${this.consulId(id)} on shutdown: ${reason(error)}`);
        }
      }),
    );
    this.#wakeIdle();
  }

  #enqueue(id: string, operation: Operation): void {
    this.#pending.delete(id); // re-insert at the end: operations go out in the order they were asked for
    this.#pending.set(id, { id, operation, attempts: 0, due: 0 });
    void this.#drain();
  }

  /** Send every due operation, one at a time; then sleep until the next retry is due. */
  async #drain(): Promise<void> {
    if (this.#draining || this.#closed) return;
    this.#draining = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    try {
      for (;;) {
        const now = Date.now();
        const next = [...this.#pending.values()].find((p) => p.due <= now);
        if (next === undefined) break;
        try {
          await this.#send(next.id, next.operation);
          if (next.operation.kind === "register") this.#registered.add(next.id);
          else this.#registered.delete(next.id);
          if (this.#pending.get(next.id) === next) this.#pending.delete(next.id);
        } catch (error) {
          next.attempts++;
          const delay = Math.min(this.#retryMaxMs, this.#retryInitialMs * 2 ** (next.attempts - 1));
          next.due = Date.now() + delay;
          const what = next.operation.kind === "register" ? "register" : "deregister";
          this.#log.warn(
            `consul: could not ${what} ${this.consulId(next.id)} (attempt ${next.attempts}): ${reason(error)}; ` +
              `retrying in ${delay} ms`,
          );
        }
        if (this.#closed) return;
      }
    } finally {
      this.#draining = false;
    }
    this.#schedule();
    this.#wakeIdle();
  }

  #schedule(): void {
    if (this.#closed || this.#pending.size === 0) return;
    const due = Math.min(...[...this.#pending.values()].map((p) => p.due));
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#drain();
    }, Math.max(0, due - Date.now()));
  }

  #wakeIdle(): void {
    if (this.#pending.size !== 0 && !this.#closed) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const wake of waiters) wake();
  }

  #url(path: string): string {
    const url = new URL(this.#base.href);
    url.pathname = path;
    return url.href;
  }

  async #send(id: string, operation: Operation): Promise<void> {
    const consulId = this.consulId(id);
    const headers: Record<string, string> = {};
    if (this.#token !== undefined) headers["X-Consul-Token"] = this.#token;
    let url: string;
    let body: string | undefined;
    if (operation.kind === "register") {
      const r = operation.registration;
      url = this.#url("/v1/agent/service/register");
      headers["Content-Type"] = "application/json";
      body = JSON.stringify({ ID: consulId, Name: r.id, Address: r.address, Port: r.port, Tags: ["gorb", r.protocol] });
    } else {
      url = this.#url(`/v1/agent/service/deregister/${encodeURIComponent(consulId)}`);
    }
    const init: RequestInit = { method: "PUT", headers, signal: AbortSignal.timeout(this.#timeoutMs) };
    if (body !== undefined) init.body = body;
    const response = await this.#fetch(url, init);
    const text = await response.text().catch(() => "");
    if (!response.ok) {
      throw new Error(`HTTP ${response.status}${text === "" ? "" : `: ${text.trim().slice(0, 200)}`}`);
    }
    this.#log.debug(`consul: ${operation.kind === "register" ? "registered" : "deregistered"} ${consulId}`);
  }
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
