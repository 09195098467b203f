/**
 * ConsulDiscovery registers gorb's virtual services with a Consul agent:
 *   PUT <consul>/v1/agent/service/register            {"ID","Name","Address","Port","Tags":["gorb",<protocol>]}
 *   PUT <consul>/v1/agent/service/deregister/<ID>      (empty body)
 *   GET <consul>/v1/agent/services                     (at start: find this instance's stale registrations; then
 *                                                       every minute: find registrations the agent lost)
 * The ID is "<instance>-<service id>" so two gorbs on one agent do not overwrite each other (the original used
 * the service id alone); the Name is the service id, so Consul DNS answers <service id>.service.consul.
 * The daemon's own API registers under the reserved ID "gorb:<instance>" (Name "gorb", tag "gorb-api"): no
 * service's ID can take that form (the instance, a host name, has no ":", so a service ID's first ":" always
 * follows a "-"), so a user service named "gorb" no longer overwrites it.
 *
 * Restarts: registrations are NOT withdrawn at shutdown. IPVS keeps serving while gorb restarts, so Consul DNS
 * must keep answering too; at start gorb registers every service again (a register of an existing ID replaces it
 * in place, so there is no gap) and prune() withdraws only this instance's registrations of services it no longer
 * has. A TTL check was the alternative; it was not chosen because it marks every service critical whenever gorb
 * is stopped or slow for longer than the TTL, which is exactly the outage this avoids (and it adds a heartbeat).
 * A decommissioned host's registrations go with its Consul agent. `deregisterOnClose` restores the old behaviour.
 * The daemon's own API is the exception: nothing serves it while gorb is stopped, so close() withdraws it (one
 * attempt), and the next start registers it again.
 *
 * An agent that restarts without its data directory (a `-dev` agent, a lost disk) forgets every registration, and
 * nothing would tell gorb: every `resyncIntervalMs` gorb lists the agent's services and registers again those of its
 * own that are missing (resync()).
 *
 * Calls never fail the API request that caused them. Each service has at most one pending operation (the latest
 * wins: a remove replaces a pending expose); operations on different services go out in parallel, at most
 * `concurrency` at once, each with its own timeout; a failed call is retried in the background with exponential
 * back-off and logged.
 */
import { type Logger, silentLogger } from "../log.ts";
import type { Discovery, ServiceRegistration } from "./discovery.ts";

/** Options of ConsulDiscovery. */
export interface ConsulDiscoveryOptions {
  /** Consul HTTP API base URL, e.g. "http://127.0.0.1:8500". A query string (?token=...) is kept on every call. */
  readonly url: string;
  /** Prefix of every Consul service ID, unique per gorb on an agent: the host name (no ":"). */
  readonly instance: string;
  /** Consul ACL token, sent as X-Consul-Token when given. */
  readonly token?: string;
  /** Per-call timeout in ms. @default 5000 */
  readonly timeoutMs?: number;
  /** Most calls in flight at once. @default 8 */
  readonly concurrency?: number;
  /** Withdraw every registration in close() (the old behaviour). @default false */
  readonly deregisterOnClose?: boolean;
  /** Delay before the first retry in ms; doubles per failure. @default 1000 */
  readonly retryInitialMs?: number;
  /** Longest delay between retries in ms. @default 60000 */
  readonly retryMaxMs?: number;
  /** How often the agent's services are checked for registrations it lost (resync()), in ms; 0: never. @default 60000 */
  readonly resyncIntervalMs?: number;
  readonly logger?: Logger;
  /** The fetch to use (tests). @default globalThis.fetch */
  readonly fetch?: (input: string, init: RequestInit) => Promise<Response>;
}

/** The body of a Consul service registration. */
interface ConsulService {
  readonly ID: string;
  readonly Name: string;
  readonly Address: string;
  readonly Port: number;
  readonly Tags: readonly string[];
}

type Operation = { readonly kind: "register"; readonly service: ConsulService } | { readonly kind: "deregister"; readonly consulId: string };

interface Pending {
  readonly key: string;
  readonly operation: Operation;
  attempts: number;
  /** Epoch ms before which it is not retried. */
  due: number;
}

/** The pending-queue key of the daemon's own registration ("/" is never in a service id). */
const SELF_KEY = "/gorb";
/** The tag of every service registration gorb makes (and of nothing else it registers). */
const SERVICE_TAG = "gorb";
/** Default of ConsulDiscoveryOptions.resyncIntervalMs. */
const DEFAULT_RESYNC_MS = 60_000;

/** Discovery through a Consul agent's HTTP API, with a background retry queue. */
export class ConsulDiscovery implements Discovery {
  readonly #base: URL;
  readonly #instance: string;
  readonly #token: string | undefined;
  readonly #timeoutMs: number;
  readonly #concurrency: number;
  readonly #deregisterOnClose: boolean;
  readonly #retryInitialMs: number;
  readonly #retryMaxMs: number;
  readonly #log: Logger;
  readonly #fetch: (input: string, init: RequestInit) => Promise<Response>;

  /** Pending operations by key (the gorb service id, or SELF_KEY), oldest first. */
  readonly #pending = new Map<string, Pending>();
  /** Keys with a call in flight (one at a time per key, so a service's calls stay in order). */
  readonly #inFlight = new Set<string>();
  /** Keys whose registration Consul accepted (and that were not deregistered since), with what was registered. */
  readonly #registered = new Map<string, ConsulService>();
  #timer: ReturnType<typeof setTimeout> | null = null;
  #resyncTimer: ReturnType<typeof setInterval> | null = null;
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
    if (options.instance === "" || options.instance.includes(":") || options.instance.includes("/")) {
      throw new TypeError(`consul: instance ${JSON.stringify(options.instance)} must be a host name (no ":" or "/")`);
    }
    this.#base = base;
    this.#instance = options.instance;
    this.#token = options.token;
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#concurrency = Math.max(1, options.concurrency ?? 8);
    this.#deregisterOnClose = options.deregisterOnClose ?? false;
    this.#retryInitialMs = options.retryInitialMs ?? 1000;
    this.#retryMaxMs = options.retryMaxMs ?? 60_000;
    this.#log = options.logger ?? silentLogger;
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
    const resyncMs = options.resyncIntervalMs ?? DEFAULT_RESYNC_MS;
    if (resyncMs > 0) {
      this.#resyncTimer = setInterval(() => void this.resync(), resyncMs);
      this.#resyncTimer.unref(); // the daemon's life is not this timer's to decide
    }
  }

  /** The Consul service ID of a gorb service id. */
  consulId(id: string): string {
    return `${this.#instance}-${id}`;
  }

  /** The reserved Consul service ID of the daemon's own API. */
  selfId(): string {
    return `gorb:${this.#instance}`;
  }

  expose(registration: ServiceRegistration): void {
    if (this.#closed) return;
    const r = registration;
    const service = { ID: this.consulId(r.id), Name: r.id, Address: r.address, Port: r.port, Tags: [SERVICE_TAG, r.protocol] };
    this.#enqueue(r.id, { kind: "register", service });
  }

  remove(id: string): void {
    if (this.#closed) return;
    this.#enqueue(id, { kind: "deregister", consulId: this.consulId(id) });
  }

  /** Register the daemon's REST API (Name "gorb", as the original) under its reserved ID. */
  exposeSelf(endpoint: { readonly address: string; readonly port: number }): void {
    if (this.#closed) return;
    const service = { ID: this.selfId(), Name: "gorb", Address: endpoint.address, Port: endpoint.port, Tags: ["gorb-api"] };
    this.#enqueue(SELF_KEY, { kind: "register", service });
  }

  /**
   * Withdraw this instance's service registrations whose service gorb no longer has (deleted while gorb was
   * stopped): the agent's services with this instance's ID prefix and the "gorb" tag, minus `keep`, anything
   * queued and anything registered since start. One attempt to list; a failure is logged and the next start tries
   * again. Resolves when queued.
   */
  async prune(keep: Iterable<string>): Promise<void> {
    const kept = new Set(keep);
    const listed = await this.#listAgent("to withdraw stale ones");
    if (listed === null) return;
    const prefix = `${this.#instance}-`;
    for (const s of listed) {
      if (typeof s.Service !== "string" || !Array.isArray(s.Tags)) continue;
      if (!s.ID.startsWith(prefix) || !s.Tags.includes(SERVICE_TAG) || s.ID !== this.consulId(s.Service)) continue;
      // Registered since start: created (and registered) while the list was on its way, not stale.
      if (kept.has(s.Service) || this.#pending.has(s.Service) || this.#registered.has(s.Service)) continue;
      this.#log.info(`consul: withdrawing ${s.ID}: gorb no longer has service ${JSON.stringify(s.Service)}`);
      this.remove(s.Service);
    }
  }

  /**
   * Register again what the agent lost: each registration Consul accepted earlier (and nothing pending replaces)
   * whose ID the agent no longer lists. One attempt to list; a failure is logged and the next round tries again.
   * Resolves with the number queued.
   */
  async resync(): Promise<number> {
    if (this.#closed || this.#registered.size === 0) return 0;
    const listed = await this.#listAgent("to find registrations it lost");
    if (listed === null || this.#closed) return 0;
    const present = new Set(listed.map((s) => s.ID));
    let queued = 0;
    for (const [key, service] of this.#registered) {
      if (present.has(service.ID) || this.#pending.has(key) || this.#inFlight.has(key)) continue;
      this.#log.warn(`consul: the agent no longer has ${service.ID} (restarted without its data?); registering it again`);
      this.#enqueue(key, { kind: "register", service });
      queued++;
    }
    return queued;
  }

  /** The agent's services (GET /v1/agent/services), each with a string ID; null when they cannot be read (logged). */
  async #listAgent(why: string): Promise<{ readonly ID: string; readonly Service?: unknown; readonly Tags?: unknown }[] | null> {
    let listed: unknown;
    try {
      const response = await this.#fetch(this.#url("/v1/agent/services"), {
        method: "GET",
        headers: this.#headers(),
        redirect: "manual",
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      listed = await response.json();
    } catch (error) {
      this.#log.warn(`consul: could not list the agent's services ${why}: ${reason(error)}`);
      return null;
    }
    if (typeof listed !== "object" || listed === null) return null;
    const out: { ID: string; Service?: unknown; Tags?: unknown }[] = [];
    for (const entry of Object.values(listed as Record<string, unknown>)) {
      // Whatever answered may not be an agent: an entry that is not an object is not one of ours.
      if (typeof entry !== "object" || entry === null) continue;
      const s = entry as { ID?: unknown; Service?: unknown; Tags?: unknown };
      if (typeof s.ID === "string") out.push({ ID: s.ID, Service: s.Service, Tags: s.Tags });
    }
    return out;
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

  /**
   * Stop retrying. Registrations stay in Consul (see the module comment) unless `deregisterOnClose`; then every
   * registration this instance made, and any register that may have reached Consul, is withdrawn, one attempt each.
   * The daemon's own API's is withdrawn either way.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#resyncTimer !== null) clearInterval(this.#resyncTimer);
    this.#resyncTimer = null;
    const withdraw = new Map([...this.#registered].map(([key, service]) => [key, service.ID] as const));
    for (const pending of this.#pending.values()) {
      if (pending.operation.kind === "register" && (pending.attempts > 0 || this.#inFlight.has(pending.key))) {
        withdraw.set(pending.key, pending.operation.service.ID);
      }
    }
    this.#pending.clear();
    const withdrawn = this.#deregisterOnClose ? [...withdraw] : [...withdraw].filter(([key]) => key === SELF_KEY);
    if (withdrawn.length > 0) {
      await this.#inParallel(withdrawn, async ([key, consulId]) => {
        try {
          await this.#send({ kind: "deregister", consulId });
          this.#registered.delete(key);
        } catch (error) {
          this.#log.warn(`consul: could not deregister ${consulId} on shutdown: ${reason(error)}`);
        }
      });
    }
    this.#wakeIdle();
  }

  #enqueue(key: string, operation: Operation): void {
    this.#pending.delete(key); // re-insert at the end: operations go out in the order they were asked for
    this.#pending.set(key, { key, operation, attempts: 0, due: 0 });
    this.#pump();
  }

  /** Start every due operation that may start now (one per key, at most `concurrency`); else sleep until one is due. */
  #pump(): void {
    if (this.#closed) return;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    const now = Date.now();
    for (const pending of this.#pending.values()) {
      if (this.#inFlight.size >= this.#concurrency) break;
      if (pending.due > now || this.#inFlight.has(pending.key)) continue;
      this.#inFlight.add(pending.key);
      void this.#attempt(pending).finally(() => {
        this.#inFlight.delete(pending.key);
        this.#pump();
      });
    }
    if (this.#inFlight.size === 0 && this.#pending.size > 0) {
      const due = Math.min(...[...this.#pending.values()].map((p) => p.due));
      this.#timer = setTimeout(() => {
        this.#timer = null;
        this.#pump();
      }, Math.max(0, due - Date.now()));
    }
    this.#wakeIdle();
  }

  async #attempt(pending: Pending): Promise<void> {
    const { operation } = pending;
    const consulId = operation.kind === "register" ? operation.service.ID : operation.consulId;
    try {
      await this.#send(operation);
      if (operation.kind === "register") this.#registered.set(pending.key, operation.service);
      else this.#registered.delete(pending.key);
      if (this.#pending.get(pending.key) === pending) this.#pending.delete(pending.key);
    } catch (error) {
      if (this.#closed) return;
      pending.attempts++;
      const delay = Math.min(this.#retryMaxMs, this.#retryInitialMs * 2 ** (pending.attempts - 1));
      pending.due = Date.now() + delay;
      this.#log.warn(
        `consul: could not ${operation.kind} ${consulId} (attempt ${pending.attempts}): ${reason(error)}; ` +
          `retrying in ${delay} ms`,
      );
    }
  }

  async #inParallel<T>(items: readonly T[], run: (item: T) => Promise<void>): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < items.length) {
        const item = items[next++] as T;
        await run(item);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, items.length) }, worker));
  }

  #wakeIdle(): void {
    if (this.#pending.size !== 0 && !this.#closed) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const wake of waiters) wake();
  }

  /**
   * `path` (/v1/...) under the base URL's own path (a Consul behind a proxy at http://proxy/consul stays there), with
   * its query (?dc=east).
   */
  #url(path: string): string {
    const url = new URL(this.#base.href);
    url.pathname = `${url.pathname.replace(/\/+$/, "")}${path}`;
    return url.href;
  }

  #headers(): Record<string, string> {
    return this.#token !== undefined ? { "X-Consul-Token": this.#token } : {};
  }

  async #send(operation: Operation): Promise<void> {
    const headers = this.#headers();
    let url: string;
    let body: string | undefined;
    let consulId: string;
    if (operation.kind === "register") {
      consulId = operation.service.ID;
      url = this.#url("/v1/agent/service/register");
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(operation.service);
    } else {
      consulId = operation.consulId;
      url = this.#url(`/v1/agent/service/deregister/${encodeURIComponent(consulId)}`);
    }
    // No redirects: fetch would send X-Consul-Token to wherever one points (it only drops Authorization), and
    // the agent's API never redirects. A 3xx is a failed call.
    const init: RequestInit = { method: "PUT", headers, redirect: "manual", signal: AbortSignal.timeout(this.#timeoutMs) };
    if (body !== undefined) init.body = body;
    const response = await this.#fetch(url, init);
    const text = await response.text().catch(() => "");
    // The agent answers 404 "Unknown service ID" to a deregister of an ID it does not have (a service deleted
    // before its registration went through, or withdrawn by hand): what the deregister wants already holds.
    if (operation.kind === "deregister" && response.status === 404) {
      this.#log.debug(`consul: ${consulId} was not registered`);
      return;
    }
    if (!response.ok) {
      throw new Error(`HTTP ${response.status}${text === "" ? "" : `: ${text.trim().slice(0, 200)}`}`);
    }
    this.#log.debug(`consul: ${operation.kind === "register" ? "registered" : "deregistered"} ${consulId}`);
  }
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
