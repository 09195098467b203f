/**
 * Fakes for core and API tests: a health monitor driven by the test, a host resolver backed by a table, a
 * recording logger, and `makeGorb()` wiring them to a MemoryIpvsDriver and a MemoryVipManager; a driver whose
 * batch breaks off.
 */
import type { ApplyResult } from "../../../src/ipvs/driver.ts";
import { ERRNO, IpvsError } from "../../../src/ipvs/errors.ts";
import { MemoryIpvsDriver } from "../../../src/ipvs/memory-driver.ts";
import type { Destination, IpvsOp, ServiceKey } from "../../../src/ipvs/types.ts";
import { Gorb } from "../../../src/core/gorb.ts";
import type { GorbOptions } from "../../../src/core/gorb-options.ts";
import type { HealthChecks, HealthChecksFactory, HealthView } from "../../../src/core/health.ts";
import type { HealthBrief, HealthUpdate } from "../../../src/health/target-state.ts";
import type { ProbeTarget, PulseOptions } from "../../../src/health/options.ts";
import type { Logger } from "../../../src/log.ts";
import { MemoryVipManager } from "../../helpers/memory-vip.ts";
import type { HostResolver, ResolvedAddress } from "../../../src/core/resolve.ts";
import type { Discovery, ServiceRegistration } from "../../../src/discovery/discovery.ts";

/** One target the fake health checks were asked to watch. */
export interface FakeTarget {
  readonly id: string;
  backend: ProbeTarget;
  options: PulseOptions;
}

/**
 * HealthChecks driven by the test: `report()` sends an update as the real monitor would after a check.
 * Gorb's watch ids are "<service>/<backend>#<n>", so targets are found by service and backend id.
 */
export class FakeHealthChecks implements HealthChecks {
  readonly targets = new Map<string, FakeTarget>();
  readonly removed: string[] = [];
  readonly updated: string[] = [];
  stopped = false;
  /** What snapshot() returns per id; unset ids have no snapshot (Gorb then uses its own record). */
  readonly views = new Map<string, HealthView>();
  #onUpdate: ((update: HealthUpdate) => void) | null = null;
  #onCheckError: ((id: string, message: string) => void) | null = null;

  /** The factory to pass to Gorb as `health`. */
  readonly factory: HealthChecksFactory = (onUpdate, onCheckError) => {
    this.#onUpdate = onUpdate;
    this.#onCheckError = onCheckError;
    return this;
  };

  /** A check of a backend that could not run (a check error), as the real monitor reports it. */
  checkError(serviceId: string, backendId: string, message: string): void {
    if (this.#onCheckError === null) throw new Error("no listener");
    this.#onCheckError(this.target(serviceId, backendId).id, message);
  }

  add(id: string, backend: ProbeTarget, options: PulseOptions): void {
    if (this.stopped) throw new Error("health monitor is stopped");
    this.targets.set(id, { id, backend, options });
  }

  update(id: string, backend: ProbeTarget, options: PulseOptions): void {
    const target = this.targets.get(id);
    if (target === undefined) throw new Error(`no target ${id}`);
    target.backend = backend;
    target.options = options;
    this.updated.push(id);
  }

  remove(id: string): boolean {
    this.removed.push(id);
    return this.targets.delete(id);
  }

  snapshot(id: string): HealthView | undefined {
    return this.views.get(id);
  }

  brief(id: string): HealthBrief | undefined {
    const view = this.views.get(id);
    return view === undefined ? undefined : { status: view.status, health: view.health, message: view.lastCheck?.message ?? "" };
  }

  stop(): void {
    this.stopped = true;
    this.targets.clear();
  }

  /** The target watched for a backend; throws when none is. */
  target(serviceId: string, backendId: string): FakeTarget {
    for (const t of this.targets.values()) if (t.id.startsWith(`${serviceId}/${backendId}#`)) return t;
    throw new Error(`no watch for ${serviceId}/${backendId}`);
  }

  /** Send an update for a backend, as the real monitor would after a check. */
  report(serviceId: string, backendId: string, status: "up" | "down", facts: Partial<Facts> = {}): void {
    this.reportId(this.target(serviceId, backendId).id, status, facts);
  }

  /**
   * Send an update for a watch id (also a stale one). Defaults: a full window of 100 results, all passed when
   * up (streak 1), one failed when down.
   */
  reportId(id: string, status: "up" | "down", facts: Partial<Facts> = {}): void {
    if (this.#onUpdate === null) throw new Error("no listener");
    const samples = facts.samples ?? 100;
    const samplesOk = facts.samplesOk ?? (status === "up" ? samples : samples - 1);
    this.#onUpdate({
      id,
      status,
      previousStatus: "unknown",
      health: samples === 0 ? 0 : samplesOk / samples,
      samples,
      samplesOk,
      uptimeSeconds: facts.uptimeSeconds ?? 0,
      lastCheck: { ok: status === "up", durationMs: 3, message: status === "up" ? "connected" : "connection refused" },
      consecutiveOk: facts.consecutiveOk ?? (status === "up" ? 1 : 0),
      consecutiveFail: status === "down" ? 1 : 0,
    });
  }
}

/** Health facts of a fake update. */
export interface Facts {
  readonly samples: number;
  readonly samplesOk: number;
  readonly consecutiveOk: number;
  readonly uptimeSeconds: number;
}

/** A HostResolver over a fixed table; unknown names fail like getaddrinfo (also "__proto__" and "constructor"). */
export function tableResolver(table: Record<string, readonly ResolvedAddress[]>): HostResolver {
  return async (host) => {
    const found = Object.hasOwn(table, host) ? table[host] : undefined;
    if (found === undefined) throw new Error(`getaddrinfo ENOTFOUND ${host}`);
    return found;
  };
}

/** A Discovery that records calls. */
export class RecordingDiscovery implements Discovery {
  readonly calls: (["expose", ServiceRegistration] | ["remove", string] | ["close"])[] = [];
  expose(registration: ServiceRegistration): void {
    this.calls.push(["expose", registration]);
  }
  remove(id: string): void {
    this.calls.push(["remove", id]);
  }
  async close(): Promise<void> {
    this.calls.push(["close"]);
  }
}

/** A Logger that keeps every line as "<level> <message>". */
export class RecordingLogger implements Logger {
  readonly lines: string[] = [];
  debug(message: string): void {
    this.lines.push(`debug ${message}`);
  }
  info(message: string): void {
    this.lines.push(`info ${message}`);
  }
  warn(message: string): void {
    this.lines.push(`warn ${message}`);
  }
  error(message: string): void {
    this.lines.push(`error ${message}`);
  }
}

/** Everything a test needs around one Gorb. */
export interface TestStack {
  readonly gorb: Gorb;
  readonly driver: MemoryIpvsDriver;
  readonly vip: MemoryVipManager;
  readonly health: FakeHealthChecks;
  readonly discovery: RecordingDiscovery;
  readonly logger: RecordingLogger;
}

/** A Gorb over a MemoryIpvsDriver, a MemoryVipManager, the fake monitor and a table resolver. */
export function makeGorb(overrides: Partial<GorbOptions> = {}): TestStack {
  const driver = new MemoryIpvsDriver();
  const vip = new MemoryVipManager();
  const health = new FakeHealthChecks();
  const discovery = new RecordingDiscovery();
  const logger = new RecordingLogger();
  const gorb = new Gorb({
    driver,
    health: health.factory,
    vip,
    discovery,
    logger,
    defaultAddress: "192.0.2.1",
    resolver: tableResolver({
      localhost: [{ address: "127.0.0.1", family: "inet" }],
      "web.example": [
        { address: "2001:db8::10", family: "inet6" },
        { address: "10.0.0.10", family: "inet" },
      ],
      "v6only.example": [{ address: "2001:db8::20", family: "inet6" }],
    }),
    ...overrides,
  });
  return {
    gorb,
    driver: (overrides.driver as MemoryIpvsDriver | undefined) ?? driver,
    vip: (overrides.vip as MemoryVipManager | undefined) ?? vip,
    health,
    discovery,
    logger,
  };
}

/**
 * The memory driver, with connection counts per "address:port" set by the test: the host has no IPVS, so this
 * stands in for the kernel's ActiveConn/InActConn of draining backends (test/kernel/drain.test.ts has the real ones).
 */
export class ConnsDriver extends MemoryIpvsDriver {
  readonly conns = new Map<string, { active: number; inactive: number }>();
  override async listDestinations(service: ServiceKey): Promise<Destination[]> {
    return (await super.listDestinations(service)).map((d) => {
      const c = this.conns.get(`${d.address}:${d.port}`);
      return c === undefined ? d : { ...d, activeConns: c.active, inactiveConns: c.inactive };
    });
  }
}

/** The memory driver, whose next batch runs its first `n` operations and then throws as a netlink timeout does. */
export class BreakingDriver extends MemoryIpvsDriver {
  #cut: number | null = null;
  breakNextAfter(n: number): void {
    this.#cut = n;
  }
  override async apply(ops: readonly IpvsOp[]): Promise<ApplyResult> {
    const n = this.#cut;
    if (n === null) return super.apply(ops);
    this.#cut = null;
    await super.apply(ops.slice(0, n));
    throw new IpvsError("apply", ERRNO.ETIMEDOUT, "IPVS did not answer within the netlink timeout (apply); the socket was reset");
  }
}
