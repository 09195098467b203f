/**
 * The kernel ledger of a fleet node (`--store etcd://`): which IPVS services and destinations, and which VIP
 * addresses, this node put in its kernel (and on its VIP interface) from the shared desired state. A single host's
 * state (state.db) says what gorb created; a fleet node's desired state is shared, and another node may delete a
 * service or a backend while this one is down: at its restart the ledger tells an object gorb created and the
 * shared state no longer has (removed: it was deleted) from one gorb never created (an unknown destination,
 * left to `--unknown-destinations`; a service of another program, never touched).
 *
 * A service or destination is recorded durably before the kernel write that creates it (KernelWriter.run): a
 * crash after the write leaves it recorded. An address is noted once added (only the add tells whether the
 * interface had it) and recorded with that kernel write, in the same transaction (noteVip). It leaves the ledger once gorb removes it (or finds it already gone);
 * the record of an add the kernel refused (or did not take before the batch broke off, as the kernel read again
 * says) is taken back after the batch (a crash in between leaves an entry for
 * an object that is not there, pruned at the next start, or a destination another program made first, see
 * README). A record that cannot be written refuses the write (503), as the state store's does; taking one back
 * that cannot be written is logged, and written with the ledger's next write (a start prunes one still there once
 * its object is gone). gorb's
 * probe services (checks through the VIP) are kept out: restore knows them by their marks.
 *
 * The entries hold only while the shared state's history goes on from the one they were written following: the
 * ledger keeps the etcd cluster's id and the revision of the last restore. Another cluster (etcd replaced, or
 * restored from a backup, which gives it a new id) or a revision below that one (etcd lost writes) does not say
 * what was deleted: restore then removes nothing on the ledger's word and starts it again from what it serves.
 * Nor does a ledger that missed a run of its node: a start with --no-state, or with another state directory, changed
 * the kernel without it (it may have removed one of the ledger's objects, and a program re-added it by hand). Every
 * start records in the shared state the revision it restored (StateStore.restored); one that is not the ledger's
 * last restore says so.
 *
 * Core defines the port (LedgerStore); the store itself (SQLite, fleet-ledger.db in the state directory) lives in
 * src/state/.
 */
import { errorMessage, UnavailableError } from "./errors.ts";
import type { Logger } from "../log.ts";
import { destinationKeyId, serviceKeyId } from "./keys.ts";
import { PROBE_SERVICE_ID } from "./probe-services.ts";
import type { Pacer } from "../pacer.ts";
import type { ObservedTable, Operation, WantedService } from "./reconcile.ts";
import type { StateOrigin } from "./state.ts";

/** A destination in the ledger: its service's key id and its own (./keys.ts). */
export interface LedgerDestination {
  readonly service: string;
  readonly destination: string;
}

/** Entries of the ledger: service key ids, destinations, VIP addresses. */
export interface LedgerEntries {
  readonly services: readonly string[];
  readonly destinations: readonly LedgerDestination[];
  readonly vips: readonly string[];
}

/** The durable ledger (src/state/ledger-store.ts). Each call is one durable transaction; it throws when it cannot write. */
export interface LedgerStore {
  /** Where it lives, for messages ("/var/lib/gorb/fleet-ledger.db"). */
  readonly location: string;
  load(): LedgerEntries;
  record(entries: LedgerEntries): void | Promise<void>;
  /** Take entries out; a service's destinations go with it. */
  forget(entries: LedgerEntries): void | Promise<void>;
  /** The shared state the entries follow (null: none recorded yet). */
  origin(): StateOrigin | null;
  setOrigin(origin: StateOrigin): void | Promise<void>;
}

const NONE: LedgerEntries = { services: [], destinations: [], vips: [] };

function isEmpty(entries: LedgerEntries): boolean {
  return entries.services.length + entries.destinations.length + entries.vips.length === 0;
}

/** `a` and `b` together. */
function joined(a: LedgerEntries, b: LedgerEntries): LedgerEntries {
  if (isEmpty(a)) return b;
  return { services: [...a.services, ...b.services], destinations: [...a.destinations, ...b.destinations], vips: [...a.vips, ...b.vips] };
}

/** `a` without the entries `b` names (a destination by its service and itself). */
function without(a: LedgerEntries, b: LedgerEntries): LedgerEntries {
  const services = new Set(b.services);
  const destinations = new Set(b.destinations.map((d) => `${d.service} ${d.destination}`));
  const vips = new Set(b.vips);
  return {
    services: a.services.filter((id) => !services.has(id)),
    destinations: a.destinations.filter((d) => !destinations.has(`${d.service} ${d.destination}`)),
    vips: a.vips.filter((address) => !vips.has(address)),
  };
}

/** See the module comment: the ledger in memory, written through to its store. */
export class KernelLedger {
  readonly #store: LedgerStore;
  readonly #log: Logger;
  readonly #services = new Set<string>();
  /** Destination key ids by service key id. */
  readonly #destinations = new Map<string, Set<string>>();
  readonly #vips = new Set<string>();
  /** Addresses gorb added to the VIP interface, to be recorded with the next write (noteVip). */
  readonly #pendingVips = new Set<string>();
  /**
   * Entries taken out in memory whose removal could not be written (a full disk): taken out of the store with the
   * ledger's next write. Left there, an object re-added by hand before the next start would read as gorb's there,
   * and be removed.
   */
  #unforgotten: LedgerEntries = NONE;

  constructor(store: LedgerStore, log: Logger) {
    this.#store = store;
    this.#log = log;
    const loaded = store.load();
    for (const id of loaded.services) this.#services.add(id);
    for (const d of loaded.destinations) this.#destinationsOf(d.service).add(d.destination);
    for (const address of loaded.vips) this.#vips.add(address);
  }

  get location(): string {
    return this.#store.location;
  }

  hasService(id: string): boolean {
    return this.#services.has(id);
  }

  hasDestination(service: string, destination: string): boolean {
    return this.#destinations.get(service)?.has(destination) ?? false;
  }

  hasVip(address: string): boolean {
    return this.#vips.has(address) || this.#pendingVips.has(address);
  }

  /** The VIP addresses recorded (or noted, see noteVip). */
  vips(): string[] {
    return [...this.#vips, ...this.#pendingVips];
  }

  /**
   * Record durably the services and destinations `operations` add that are not recorded yet (not gorb's probe
   * services), before they run. Returns what it recorded. Throws UnavailableError when it cannot (nothing recorded).
   */
  async recordAdds(operations: readonly Operation[]): Promise<LedgerEntries> {
    let services: string[] | null = null;
    let destinations: LedgerDestination[] | null = null;
    for (const { op, service, foreign } of operations) {
      if (service === PROBE_SERVICE_ID || foreign === true) continue;
      if (op.op === "add-service") {
        const id = serviceKeyId(op.service.key);
        if (!this.#services.has(id)) (services ??= []).push(id);
      } else if (op.op === "add-destination") {
        const entry = { service: serviceKeyId(op.service), destination: destinationKeyId(op.destination) };
        if (!this.hasDestination(entry.service, entry.destination)) (destinations ??= []).push(entry);
      }
    }
    const entries = { services: services ?? [], destinations: destinations ?? [], vips: [] };
    await this.#record(entries);
    return entries;
  }

  /**
   * Note an address gorb has just added to the VIP interface: it is recorded with the ledger's next write (the
   * kernel batch that follows a claim records its adds first: recordAdds) or by flushVips(). A record of its own
   * would be a disk sync per address: a fleet apply of 1,000 services with VIPs took 1.5 s more. A crash before
   * the record leaves the address unrecorded, as one between the add and its own record did: left on the
   * interface by the next start, never removed.
   */
  noteVip(address: string): void {
    if (!this.#vips.has(address)) this.#pendingVips.add(address);
  }

  /** Record the addresses noted and not recorded yet; a failure is logged (they stay noted). */
  async flushVips(): Promise<void> {
    await this.#record(NONE).catch((error: unknown) => this.#log.error(errorMessage(error)));
  }

  /**
   * After a batch ran: forget what its deletes removed (or found gone), and the records `recorded` made for adds
   * that failed. `done[i]` says whether operations[i] took effect.
   */
  async settle(operations: readonly Operation[], done: readonly boolean[], recorded: LedgerEntries): Promise<void> {
    const refused = new Set<string>();
    for (const id of recorded.services) refused.add(id);
    for (const d of recorded.destinations) refused.add(`${d.service} ${d.destination}`);
    const services: string[] = [];
    const destinations: LedgerDestination[] = [];
    for (const [i, { op, service }] of operations.entries()) {
      if (service === PROBE_SERVICE_ID) continue;
      const ok = done[i] === true;
      if (op.op === "delete-service" && ok) services.push(serviceKeyId(op.key));
      else if (op.op === "delete-destination" && ok) destinations.push({ service: serviceKeyId(op.service), destination: destinationKeyId(op.destination) });
      else if (op.op === "add-service" && !ok && refused.has(serviceKeyId(op.service.key))) services.push(serviceKeyId(op.service.key));
      else if (op.op === "add-destination" && !ok) {
        const entry = { service: serviceKeyId(op.service), destination: destinationKeyId(op.destination) };
        if (refused.has(`${entry.service} ${entry.destination}`)) destinations.push(entry);
      }
    }
    await this.forget({ services, destinations, vips: [] });
  }

  /** Forget entries (a service's destinations with it); a failure to write is logged. */
  async forget(entries: LedgerEntries): Promise<void> {
    const services = entries.services.filter((id) => this.#services.has(id) || this.#destinations.has(id));
    const destinations = entries.destinations.filter((d) => this.hasDestination(d.service, d.destination));
    // A noted address not recorded yet needs no write to forget.
    for (const address of entries.vips) this.#pendingVips.delete(address);
    const vips = entries.vips.filter((address) => this.#vips.has(address));
    const taken = { services, destinations, vips };
    if (isEmpty(taken)) return;
    for (const id of services) {
      this.#services.delete(id);
      this.#destinations.delete(id);
    }
    for (const d of destinations) this.#destinations.get(d.service)?.delete(d.destination);
    for (const address of vips) this.#vips.delete(address);
    this.#unforgotten = joined(this.#unforgotten, taken);
    await this.#writeForgotten();
  }

  /** Take the entries forgotten in memory out of the store (#unforgotten); a failure is logged, and they wait. */
  async #writeForgotten(): Promise<void> {
    const pending = this.#unforgotten;
    if (isEmpty(pending)) return;
    try {
      await this.#store.forget(pending);
      if (this.#unforgotten === pending) this.#unforgotten = NONE;
    } catch (error) {
      this.#log.error(`cannot take removed objects out of the kernel ledger ${this.#store.location}: ${errorMessage(error)} (tried again with its next write)`);
    }
  }

  /**
   * At start-up, once the kernel matches: record the services and destinations the shared state wants that the
   * kernel (`view`) has, which gorb now serves as its own whoever put them there (a node that ran before it kept a
   * ledger, or one that crashed before recording). A failure is logged: they stay unrecorded (reported, not
   * removed, should they be deleted while this node is down).
   */
  async recordServed(wanted: Iterable<WantedService>, view: ObservedTable, pacer: Pacer): Promise<void> {
    const services: string[] = [];
    const destinations: LedgerDestination[] = [];
    for (const w of wanted) {
      if (pacer.due()) await pacer.turn();
      if (w.config === null) continue;
      const id = serviceKeyId(w.config.key);
      const observed = view.get(id);
      if (observed === undefined) continue;
      if (!this.#services.has(id)) services.push(id);
      for (const { dest } of w.backends) {
        if (dest === null) continue;
        const destination = destinationKeyId(dest);
        if (observed.dests.has(destination) && !this.hasDestination(id, destination)) destinations.push({ service: id, destination });
      }
    }
    await this.#record({ services, destinations, vips: [] }).catch((error: unknown) => this.#log.error(errorMessage(error)));
  }

  /**
   * Why the shared state read at `origin` cannot tell this node's entries deleted from merely absent, or null when
   * it can (or the entries follow no state yet). See the module comment.
   */
  mismatch(origin: StateOrigin): string | null {
    const followed = this.#store.origin();
    if (followed === null) return null;
    if (followed.clusterId !== "" && origin.clusterId !== "" && followed.clusterId !== origin.clusterId) {
      return `the shared state comes from another etcd cluster (id ${origin.clusterId}) than the one this node's kernel ledger followed (id ${followed.clusterId}): etcd was replaced or restored from a backup`;
    }
    if (origin.revision < followed.revision) {
      return `etcd's revision ${origin.revision} is below the revision ${followed.revision} this node restored at last time: etcd lost writes`;
    }
    if (origin.lastRestore !== undefined && origin.lastRestore !== followed.revision) {
      return (
        `this node's last start restored revision ${origin.lastRestore}, not the revision ${followed.revision} its kernel ledger followed: ` +
        "it ran without this ledger since (--no-state, or another --state-dir), which may have changed the kernel"
      );
    }
    return null;
  }

  /** Forget every entry (they follow another history); false when that could not be written (logged). */
  async forgetAll(): Promise<boolean> {
    const entries = { services: [...new Set([...this.#services, ...this.#destinations.keys()])], destinations: [], vips: [...this.#vips] };
    this.#services.clear();
    this.#destinations.clear();
    this.#vips.clear();
    try {
      await this.#store.forget(entries);
      return true;
    } catch (error) {
      this.#log.error(`cannot empty the kernel ledger ${this.#store.location}: ${errorMessage(error)}`);
      return false;
    }
  }

  /** Record that the entries now follow the shared state read at `origin`; a failure is logged. */
  async follow(origin: StateOrigin): Promise<void> {
    try {
      await this.#store.setOrigin(origin);
    } catch (error) {
      this.#log.error(`cannot record in the kernel ledger ${this.#store.location} the shared state it follows: ${errorMessage(error)}`);
    }
  }

  /** Forget every service and destination (gorb serve -f deleted every IPVS service). */
  async forgetKernel(): Promise<void> {
    await this.forget({ services: [...this.#services, ...this.#destinations.keys()], destinations: [], vips: [] });
  }

  /** Forget the services and destinations the kernel's table (read at start) does not have: they are gone. */
  async prune(table: ObservedTable): Promise<void> {
    const services: string[] = [];
    const destinations: LedgerDestination[] = [];
    for (const id of new Set([...this.#services, ...this.#destinations.keys()])) {
      const observed = table.get(id);
      if (observed === undefined) {
        services.push(id);
        continue;
      }
      for (const destination of this.#destinations.get(id) ?? []) {
        if (!observed.dests.has(destination)) destinations.push({ service: id, destination });
      }
    }
    await this.forget({ services, destinations, vips: [] });
  }

  /** Write `entries` with the addresses noted (noteVip) in one transaction. */
  async #record(given: LedgerEntries): Promise<void> {
    const noted = [...this.#pendingVips];
    const entries = noted.length === 0 ? given : { ...given, vips: [...given.vips, ...noted] };
    if (isEmpty(entries)) return;
    // What is recorded again is no longer to be taken out; the rest is, first.
    if (!isEmpty(this.#unforgotten)) {
      this.#unforgotten = without(this.#unforgotten, entries);
      await this.#writeForgotten();
    }
    try {
      await this.#store.record(entries);
    } catch (error) {
      throw new UnavailableError(
        "ledger",
        `cannot record in the kernel ledger ${this.#store.location} what gorb is about to create (${errorMessage(error)}); nothing was changed`,
        { cause: error },
      );
    }
    for (const id of entries.services) this.#services.add(id);
    for (const d of entries.destinations) this.#destinationsOf(d.service).add(d.destination);
    for (const address of entries.vips) this.#vips.add(address);
    for (const address of noted) this.#pendingVips.delete(address);
  }

  #destinationsOf(service: string): Set<string> {
    let set = this.#destinations.get(service);
    if (set === undefined) this.#destinations.set(service, (set = new Set()));
    return set;
  }
}
