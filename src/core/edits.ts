/**
 * The edits of the desired state that requests and applies are made of: create, change or delete a service or
 * a backend, or give one to a new owner. Each one checks what it must (conflicts through the indexes, no
 * scan), changes the desired state, and records in its Tx how to undo that, what to do once it is committed,
 * the rows it touched and the targets the reconciler must write. None of them writes IPVS; the only I/O is
 * the VIP claim of a new service (before anything is written, so a failure changes nothing).
 *
 * Log lines: services at info; backends at debug (a bulk load of thousands of backends would otherwise spend
 * more time formatting log lines than changing IPVS; the event stream carries every change). The changes of a
 * bulk run (Tx.bulk: an apply, which logs its own summary) log services at debug too.
 */
import { isIP } from "node:net";
import { describeDestination, describeService } from "../ipvs/address.ts";
import { destinationKeyId, serviceKeyId } from "./keys.ts";
import { isFwmarkKey, type ServiceKey } from "../ipvs/types.ts";
import { initialWeightState, nextWeight, type WeightPolicy, type WeightState } from "../health/weight.ts";
import { destinationKeyOfBackend, keepDestId, type BackendRecord, type DesiredState, type ServiceRecord } from "./desired-state.ts";
import { ConflictError, LimitError, ValidationError } from "./errors.ts";
import { overrideWeight, type DrainState } from "./drain.ts";
import type { MarkRange } from "./mark-range.ts";
import { checkUserFwmark } from "./probe-services.ts";
import type { EventBus } from "./events.ts";
import type { Exposure } from "./exposure.ts";
import { describeValue } from "../contract/json-values.ts";
import type { Fields } from "./fields.ts";
import { startingHealth, type BackendHealth, type HealthChecks } from "./health.ts";
import { debugOn, type Logger } from "../log.ts";
import type { BackendSpec, ServiceSpec } from "./model.ts";
import { DEFAULTS } from "../contract/fields.ts";
import { hookProblem, sorryKey, sorryKeyId } from "./failover.ts";
import type { SlowStart } from "./slow-start.ts";
import {
  BACKEND_IDENTITY_FIELDS,
  SERVICE_IDENTITY_FIELDS,
  checkForwardedPort,
  checkProbePort,
  checkSorryPort,
  normalizeBackendFields,
  normalizeServiceFields,
  patchBackendFields,
  patchServiceFields,
  sorryHostSent,
} from "./normalize.ts";
import { samePulse } from "./pulse.ts";
import { backendLiteral, resolveBackendAddress, resolveServiceKey, toDestinationConfig, toServiceConfig, type HostResolver, type ResolvedAddress } from "./resolve.ts";
import type { Source } from "./state.ts";
import type { Tx } from "./tx.ts";
import type { VipLedger } from "./vip-ledger.ts";

/** What the edits work on. */
export interface EditParts {
  readonly desired: DesiredState;
  readonly vips: VipLedger;
  readonly checks: HealthChecks;
  /** Registers a created service with discovery, withdraws a deleted one. */
  readonly exposure: Exposure;
  readonly events: EventBus;
  readonly log: Logger;
  readonly policy: WeightPolicy;
  readonly defaultAddress: string | null;
  /** The VIP interface's name (--vip-interface): a loopback VIP is accepted only on "lo". */
  readonly vipInterface: string | null;
  /** Most services and backends gorb holds (--max-services, --max-backends); null: unlimited. */
  readonly limits: { readonly services: number | null; readonly backends: number | null };
  /** Slow-start ramps (./slow-start.ts) and the clock they run on. */
  readonly slowStart?: SlowStart;
  readonly now?: () => number;
  /** Where quorum hooks must live (--hook-dir). @default DEFAULTS.hookDir */
  readonly hookDir?: string;
  /** gorb's firewall marks for checks through the VIP: a user fwmark service in the range is refused. */
  readonly probeMarks: MarkRange;
}

/** True when a service's failover changed (it is then written whole, so the sorry server follows). */
function failoverChanged(a: ServiceSpec, b: ServiceSpec): boolean {
  const facts = (s: ServiceSpec) => JSON.stringify([s.sorryServer, s.quorum, s.hysteresis]);
  return facts(a) !== facts(b);
}

const q = JSON.stringify;

/**
 * Checks through the VIP need the probe's source address to be the director's, on the route to the backend: so the
 * backend must be of the service's family (a 6in4 backend would need an IPv6 source the backend routes back).
 */
function checkViaFamily(spec: BackendSpec, family: string, serviceFamily: string): void {
  if (spec.pulse.via === "vip" && family !== serviceFamily) {
    throw new ValidationError("pulse.args.via", `"vip" needs a backend of the service's family (${serviceFamily}), this one is ${family}`);
  }
}

/**
 * True when panic mode keeps the backend's weight (./health-weights.ts): its service is in panic and it is down (a
 * "none" pulse never drains).
 */
export function panicKeeps(service: Pick<ServiceRecord, "panic">, spec: BackendSpec, health: BackendHealth): boolean {
  return service.panic && health.state === "down" && spec.pulse.type !== "none";
}

/**
 * The weight of a backend changed by a PATCH. One that panic mode keeps is not drained for its down state: the
 * policy steps it as a backend without a result, so it takes the new configured weight (a recovering one keeps its
 * partial weight, never above the configured one).
 */
function patchedWeight(service: ServiceRecord, previous: WeightState, spec: BackendSpec, health: BackendHealth, policy: WeightPolicy): WeightState {
  return stepWeight(previous, spec, panicKeeps(service, spec, health) ? { ...health, state: "unknown" } : health, policy);
}

/** One step of the weight policy for a backend with `spec` and the latest `health`. */
export function stepWeight(previous: WeightState, spec: BackendSpec, health: BackendHealth, policy: WeightPolicy): WeightState {
  return nextWeight(
    previous,
    {
      configured: spec.weight,
      pulseType: spec.pulse.type,
      status: health.state,
      samples: health.samples,
      samplesOk: health.samplesOk,
      consecutiveOk: health.consecutiveOk,
    },
    policy,
  );
}

/** A quorum hook must lie under the hook directory (the daemon checks the real path again when it runs it). */
function checkHooks(spec: Pick<ServiceSpec, "quorumUp" | "quorumDown">, dir: string): void {
  for (const [field, program] of [["quorum_up", spec.quorumUp], ["quorum_down", spec.quorumDown]] as const) {
    const problem = hookProblem(program, dir);
    if (problem !== null) throw new ValidationError(field, problem);
  }
}

/**
 * The sorry server's address must be of the service's family (known once the service's host is resolved). The
 * message quotes the host as the body has it (`fields`), not the spec's canonical form (::ffff:10.0.0.1 stays so).
 */
function checkSorryFamily(fields: Fields, family: "inet" | "inet6"): void {
  const host = sorryHostSent(fields);
  if (host === "" || (isIP(host) === 4) === (family === "inet")) return;
  throw new ValidationError("sorry_server.host", `must be an ${family} address like the service, got ${describeValue(host)}`);
}

/** The part of a service's key that an identity field sets (null: the key has no such part). */
function keyPart(key: ServiceKey, field: (typeof SERVICE_IDENTITY_FIELDS)[number]): string | number | null {
  if (field === "family") return key.family;
  if (isFwmarkKey(key)) return field === "fwmark" ? key.fwmark : null;
  return field === "host" ? key.address : field === "fwmark" ? null : key[field];
}

/** See the module comment. */
export class Edits {
  readonly #p: EditParts;
  #nextWatch = 1;

  constructor(parts: EditParts) {
    this.#p = parts;
  }

  /** A watch id unique per backend life. */
  watchId(service: string, backend: string): string {
    return `${service}/${backend}#${this.#nextWatch++}`;
  }

  async createService(tx: Tx, id: string, fields: Fields, source: Source, resolver: HostResolver): Promise<void> {
    const { desired } = this.#p;
    // The body first (400 naming its field), then what exists (409) and the limit: bad input is bad whatever exists.
    const spec = normalizeServiceFields(fields);
    checkHooks(spec, this.#p.hookDir ?? DEFAULTS.hookDir);
    checkUserFwmark(this.#p.probeMarks, spec.fwmark);
    const key = await resolveServiceKey(spec, resolver, this.#p.defaultAddress, this.#p.vipInterface);
    checkSorryFamily(fields, key.family);
    const config = toServiceConfig(spec, key);
    if (desired.service(id) !== undefined) throw new ConflictError(`service ${q(id)} already exists`);
    const max = this.#p.limits.services;
    if (max !== null && desired.size >= max) throw new LimitError("services", max);
    const other = desired.serviceIdByKey(key);
    if (other !== undefined) throw new ConflictError(`service ${q(other)} already uses ${describeService(key)}`);
    if (await this.#p.vips.claim(id, key)) tx.onRollback(() => this.#p.vips.release(id, key));
    const record: ServiceRecord = { id, source, fields, spec, config, backends: new Map(), byDest: new Map(), keep: new Set(), panic: false };
    desired.addService(record);
    tx.undo(() => desired.removeService(id));
    tx.touch(id);
    tx.target({ service: id, key, backends: null });
    tx.after(() => {
      this.#p.exposure.expose(record);
      this.#info(tx, () => `created service ${q(id)}: ${describeService(key)} (${config.scheduler})`);
      this.#p.events.publish("service.created", { service: id, source });
    });
  }

  /** Change a service in place; `patch` holds the fields sent (null resets one). */
  async updateService(tx: Tx, record: ServiceRecord, patch: Fields, resolver: HostResolver): Promise<void> {
    if (patch.has("fwmark") && patch.get("fwmark") !== null && record.spec.fwmark === null) {
      throw new ValidationError(
        "fwmark",
        `cannot turn service ${q(record.id)} (${describeService(record.config.key)}) into a fwmark service; delete it and create it again`,
      );
    }
    const fields = patchServiceFields(record.fields, patch);
    const spec = normalizeServiceFields(fields);
    checkHooks(spec, this.#p.hookDir ?? DEFAULTS.hookDir);
    // A sorry server is checked where it changes (a saved one, or another node's, stays as it was).
    if (JSON.stringify(spec.sorryServer) !== JSON.stringify(record.spec.sorryServer)) checkSorryPort(spec);
    checkSorryFamily(fields, record.config.key.family);
    const sorryDest = sorryKey(spec, record.config.key.family);
    const sorry = sorryDest === null ? null : destinationKeyId(sorryDest);
    const taken = sorry === null ? undefined : record.byDest.get(sorry);
    if (taken !== undefined) throw new ConflictError(`sorry_server: backend ${q(taken)} of service ${q(record.id)} already uses it`);
    // A destination found at start-up and left serving: as the sorry server it would be deleted whenever the service
    // is up, which is removing a serving destination nobody asked gorb to remove.
    if (sorryDest !== null && sorry !== null && record.keep.has(sorry)) {
      throw new ConflictError(
        `sorry_server: IPVS serves ${describeDestination(sorryDest)} in service ${q(record.id)}, a destination gorb found at ` +
          "start-up and leaves alone; remove it from IPVS, or create a backend on it, first",
      );
    }
    const touchesIdentity = SERVICE_IDENTITY_FIELDS.filter((f) => patch.has(f));
    let key = record.config.key;
    if (touchesIdentity.length > 0) {
      const next = await resolveServiceKey(spec, resolver, this.#p.defaultAddress, this.#p.vipInterface, key);
      if (serviceKeyId(next) !== serviceKeyId(key)) {
        // The field whose value moves it: {"host": <the same>, "port": 81} is about port.
        throw new ValidationError(
          touchesIdentity.find((f) => keyPart(next, f) !== keyPart(key, f)) ?? touchesIdentity[0] ?? "host",
          `cannot move service ${q(record.id)} from ${describeService(key)} to ${describeService(next)}; delete it and create it again`,
        );
      }
      key = next;
    }
    const config = toServiceConfig(spec, key);
    const before = { fields: record.fields, spec: record.spec, config: record.config };
    record.fields = fields;
    record.spec = spec;
    record.config = config;
    tx.undo(() => Object.assign(record, before));
    tx.touch(record.id);
    tx.target({ service: record.id, key, backends: failoverChanged(before.spec, spec) ? null : [] });
    tx.after(() => {
      this.#info(tx, () => `updated service ${q(record.id)}: ${describeService(key)} (${config.scheduler})`);
      this.#p.events.publish("service.changed", { service: record.id });
    });
  }

  deleteService(tx: Tx, record: ServiceRecord): void {
    const { desired } = this.#p;
    const key = record.config.key;
    desired.removeService(record.id);
    tx.undo(() => desired.addService(record));
    tx.touch(record.id);
    // Its backends' rows too: a service created again in the same change (an apply's re-create) has only the
    // backends it re-adds, and the rows of the others must go.
    for (const id of record.backends.keys()) tx.touch(record.id, id);
    tx.target({ service: record.id, key, backends: null });
    tx.after(async () => {
      for (const backend of record.backends.values()) this.#p.checks.remove(backend.watchId);
      await this.#p.vips.release(record.id, key);
      this.#p.exposure.withdraw(record.id, key);
      this.#info(tx, () => `deleted service ${q(record.id)} (${describeService(key)})`);
      this.#p.events.publish("service.deleted", { service: record.id });
    });
  }

  /** Create a backend; `known` is its address when the caller resolved it already for this service (an apply's plan). */
  async createBackend(
    tx: Tx,
    service: ServiceRecord,
    id: string,
    fields: Fields,
    source: Source,
    resolver: HostResolver,
    known?: ResolvedAddress,
  ): Promise<void> {
    const { desired } = this.#p;
    // The body first (400 naming its field), then what exists (409) and the limit: bad input is bad whatever exists.
    const spec = normalizeBackendFields(fields, service.spec);
    checkProbePort(spec);
    const key = service.config.key;
    const address = known ?? backendLiteral(spec, key) ?? (await resolveBackendAddress(spec, key, resolver));
    checkViaFamily(spec, address.family, key.family);
    const weight = initialWeightState(spec.weight);
    const dest = toDestinationConfig(spec, address, key, overrideWeight(spec, null, weight.effective));
    if (service.backends.has(id)) throw new ConflictError(`backend ${q(id)} of service ${q(service.id)} already exists`);
    const max = this.#p.limits.backends;
    if (max !== null && desired.backendCount >= max) throw new LimitError("backends", max);
    const destId = destinationKeyId(dest);
    const other = desired.backendIdByDestId(service, destId);
    if (other !== undefined) {
      throw new ConflictError(`backend ${q(other)} of service ${q(service.id)} already uses ${describeDestination(dest)}`);
    }
    if (sorryKeyId(service.spec, key.family) === destId) {
      throw new ConflictError(`the sorry server of service ${q(service.id)} already uses ${describeDestination(dest)}`);
    }
    const backend: BackendRecord = { id, source, watchId: this.watchId(service.id, id), fields, spec, address, health: startingHealth(spec.pulse), weight, drain: null };
    keepDestId(backend, destId);
    const slowStart = this.#p.slowStart;
    // A new backend without a slow start has no ramp to start (nor to stop): no clock reading for it.
    if (spec.slowStartMs > 0 && slowStart?.start(service, backend, this.#p.now?.() ?? 0) === true) tx.undo(() => slowStart.stop(backend));
    this.#adoptKept(tx, service, destId);
    desired.addBackend(service, backend);
    tx.undo(() => desired.removeBackend(service, id));
    tx.touch(service.id, id);
    tx.target({ service: service.id, key, backends: [{ id, key: dest }] });
    tx.after(() => {
      this.#p.checks.add(backend.watchId, { host: address.address, port: spec.port }, spec.pulse);
      const log = this.#p.log;
      if (debugOn(log)) log.debug(`created backend ${q(id)} of service ${q(service.id)}: ${describeDestination(dest)} weight ${spec.weight}`);
      if (spec.slowStartMs > 0 && (service.spec.method === "sh" || service.spec.method === "mh")) {
        this.#p.log.warn(`backend ${q(id)} of service ${q(service.id)}: slow start on a ${service.spec.method} service remaps new flows at every step`);
      }
      this.#p.events.publish("backend.created", { service: service.id, backend: id, source, health: backend.health.state });
    });
  }

  /** Change a backend in place; `patch` holds the fields sent (null resets one). */
  async updateBackend(tx: Tx, service: ServiceRecord, backend: BackendRecord, patch: Fields, resolver: HostResolver): Promise<void> {
    const fields = patchBackendFields(backend.fields, patch);
    const spec = normalizeBackendFields(fields, service.spec);
    if (patch.has("pulse") || patch.has("port")) checkProbePort(spec);
    // Where the method changes (the port cannot): a saved backend, or another node's, stays as it was.
    if (spec.method !== backend.spec.method) checkForwardedPort(spec, service.spec);
    const key = service.config.key;
    let address = backend.address;
    const touchesIdentity = BACKEND_IDENTITY_FIELDS.filter((f) => patch.has(f));
    if (touchesIdentity.length > 0) address = await resolveBackendAddress(spec, key, resolver, backend.address);
    checkViaFamily(spec, address.family, key.family);
    const from = destinationKeyOfBackend(backend);
    if (address.address !== backend.address.address || spec.port !== backend.spec.port) {
      const to = describeDestination({ family: address.family, address: address.address, port: spec.port });
      const moved = touchesIdentity.find((f) => (f === "host" ? address.address !== backend.address.address : spec.port !== backend.spec.port));
      throw new ValidationError(
        moved ?? touchesIdentity[0] ?? "host",
        `cannot move backend ${q(backend.id)} from ${describeDestination(from)} to ${to}; delete it and create it again`,
      );
    }
    const pulseChanged = !samePulse(spec.pulse, backend.spec.pulse);
    // A different probe starts the health history over (the monitor's rule); timing changes keep it.
    const probeChanged = spec.pulse.probeKey !== backend.spec.pulse.probeKey;
    const health = probeChanged ? startingHealth(spec.pulse) : backend.health;
    const weight = patchedWeight(service, backend.weight, spec, health, this.#p.policy);
    toDestinationConfig(spec, address, key, weight.effective); // checks the family rule
    const before = { fields: backend.fields, spec: backend.spec, health: backend.health, weight: backend.weight, ramp: backend.ramp ?? null };
    Object.assign(backend, { fields, spec, health, weight });
    tx.undo(() => Object.assign(backend, before));
    // Given a weight again after a drain to 0, or out of maintenance: the slow start ramps it up (a ramp started
    // before the hold ran on under it). Mid-ramp, the cap follows the new spec.
    const released = (before.spec.weight === 0 && spec.weight > 0) || (before.spec.maintenance && !spec.maintenance);
    if (released) this.#p.slowStart?.start(service, backend, this.#p.now?.() ?? 0);
    else if (before.ramp !== null) this.#p.slowStart?.refresh(backend, this.#p.now?.() ?? 0);
    tx.touch(service.id, backend.id);
    tx.target({ service: service.id, key, backends: [{ id: backend.id, key: from }] });
    const maintenance = spec.maintenance !== before.spec.maintenance;
    tx.after(() => {
      // Checked through the VIP: its probe service follows the backend's method and tunnel (same probe, history kept).
      if (pulseChanged || spec.pulse.via === "vip") this.#p.checks.update(backend.watchId, { host: address.address, port: spec.port }, spec.pulse);
      if (maintenance) {
        this.#p.log.info(`backend ${q(backend.id)} of service ${q(service.id)}: maintenance ${spec.maintenance ? "on" : "off"}`);
        this.#p.events.publish("backend.maintenance", { service: service.id, backend: backend.id, on: spec.maintenance });
      }
      this.#p.log.debug(`updated backend ${q(backend.id)} of service ${q(service.id)}: weight ${spec.weight} (effective ${weight.effective})`);
      this.#p.events.publish("backend.changed", { service: service.id, backend: backend.id });
      // A new probe starts the health over (unknown, or up for none): a change of state no check will announce.
      if (health.state !== before.health.state) {
        this.#p.events.publish("backend.health", { service: service.id, backend: backend.id, from: before.health.state, to: health.state, message: health.message });
      }
    });
  }

  deleteBackend(tx: Tx, service: ServiceRecord, backend: BackendRecord): void {
    const { desired } = this.#p;
    desired.removeBackend(service, backend.id);
    tx.undo(() => desired.addBackend(service, backend));
    tx.touch(service.id, backend.id);
    tx.target({ service: service.id, key: service.config.key, backends: [{ id: backend.id, key: destinationKeyOfBackend(backend) }] });
    tx.after(() => {
      this.#p.checks.remove(backend.watchId);
      this.#p.log.debug(`deleted backend ${q(backend.id)} of service ${q(service.id)}`);
      this.#p.events.publish("backend.deleted", { service: service.id, backend: backend.id });
    });
  }

  /**
   * Start, change, end or cancel a backend's drain (null: none). The weight override follows from it
   * (./drain.ts); `event` is published once the change is committed.
   */
  setDrain(tx: Tx, service: ServiceRecord, backend: BackendRecord, drain: DrainState | null, event: (() => void) | null): void {
    const before = backend.drain;
    const ramp = backend.ramp ?? null;
    backend.drain = drain;
    tx.undo(() => {
      backend.drain = before;
      backend.ramp = ramp;
    });
    // Given traffic again (undrained): the slow start ramps it up, as after maintenance.
    if (before !== null && drain === null) this.#p.slowStart?.start(service, backend, this.#p.now?.() ?? 0);
    tx.touch(service.id, backend.id);
    tx.target({ service: service.id, key: service.config.key, backends: [{ id: backend.id, key: destinationKeyOfBackend(backend) }] });
    if (event !== null) tx.after(event);
  }

  /** Give a service (backend null) or one backend to a new owner. */
  setSource(tx: Tx, service: ServiceRecord, backend: BackendRecord | null, source: Source): void {
    const target = backend ?? service;
    const before = target.source;
    target.source = source;
    tx.undo(() => {
      target.source = before;
    });
    tx.touch(service.id, backend?.id);
  }

  /** An info line, at debug for a change of a bulk run (see the module comment). */
  #info(tx: Tx, text: () => string): void {
    const log = this.#p.log;
    if (!tx.bulk) log.info(text());
    else if (debugOn(log)) log.debug(text());
  }

  /** A destination reported at start-up and left alone becomes the new backend's (it is no longer foreign). */
  #adoptKept(tx: Tx, service: ServiceRecord, destId: string): void {
    if (!service.keep.delete(destId)) return;
    tx.undo(() => service.keep.add(destId));
  }
}
