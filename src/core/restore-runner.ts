/**
 * Restore at start-up, the part with I/O (the pure part is ./restore.ts): read the kernel's table once, take
 * over the saved services and backends, deal with the destinations of gorb's services that the saved state does
 * not know (`--unknown-destinations`: report and leave serving, adopt, or remove), make the kernel match in one
 * batch without touching what already matches, put missing VIPs back and register the services with discovery
 * (those the kernel has: ./exposure.ts), start the health checks, and record the rows dropped or adopted. A fleet
 * node's kernel ledger (./kernel-ledger.ts) tells what this node created: a service, destination or VIP address it
 * holds that the shared state no longer has was deleted (by another node, while this one was down) and is removed,
 * not reported as unknown (a service whose row is there but does not read here was not: left as it is, and so is
 * an address a service left in the kernel uses); entries whose objects the kernel no longer has are pruned. Runs
 * on Gorb's lock before any other change. Every pass over the services or rows takes a turn of the event loop
 * whenever one Pacer says so (../pacer.ts): the API, health checks and signals are served during a restore of
 * 20,000 services (when only the rows' read-back was paced, the passes after it were one block of 100-300 ms).
 */
import { describeDestination, describeService } from "../ipvs/address.ts";
import type { IpvsDriver } from "../ipvs/driver.ts";
import { isFwmarkKey, type ServiceKey, type ServiceWithDestinations } from "../ipvs/types.ts";
import type { Logger } from "../log.ts";
import { Pacer } from "../pacer.ts";
import { ChangeTracker } from "./changes.ts";
import { errorMessage } from "./errors.ts";
import type { Exposure } from "./exposure.ts";
import type { DesiredState } from "./desired-state.ts";
import type { Drains } from "./drains.ts";
import type { Edits } from "./edits.ts";
import type { FailoverRunner } from "./failover-runner.ts";
import type { HealthChecks } from "./health.ts";
import type { KernelWriter } from "./kernel-writer.ts";
import { destinationKeyId, serviceKeyId } from "./keys.ts";
import type { MarkRange } from "./mark-range.ts";
import { isProbeKey } from "./probe-services.ts";
import { observedTablePaced, planOperations, planOperationsPaced, unknownDestinations } from "./reconcile.ts";
import type { ReconcileReport, Repairs } from "./repairs.ts";
import { adoptDestination, loadSavedState, unsavedCreations } from "./restore.ts";
import type { SavedState, StateStore } from "./state.ts";
import type { Transactions } from "./transactions.ts";
import type { UnknownDestinationMode } from "./unknown-destinations.ts";
import type { VipLedger } from "./vip-ledger.ts";
import type { KernelLedger } from "./kernel-ledger.ts";
import type { Creating } from "./state.ts";

/** What restore() did at start-up. */
export interface RestoreReport extends ReconcileReport {
  readonly services: number;
  readonly backends: number;
  /** Saved services and backends that could not be read back (removed from the state), with the reason. */
  readonly dropped: readonly string[];
  /**
   * Serving destinations of gorb's services that the saved state does not know, e.g. "10.1.0.9:80 in service
   * \"web\"": left alone ("report"), taken as backends ("adopt") or deleted ("remove").
   */
  readonly unknown: readonly string[];
  /** Services gorb was creating when it stopped, before it saved them, removed from IPVS ("tcp 10.0.0.1:80"). */
  readonly removedUnsaved: readonly string[];
  /**
   * Services and destinations this fleet node created (its kernel ledger) that the shared state no longer has,
   * removed from IPVS: "tcp 10.0.0.1:80", "10.1.0.9:80 in service \"web\"".
   */
  readonly removedDeleted: readonly string[];
}

/** What a restore works with (Gorb's parts). */
export interface RestoreParts {
  readonly driver: IpvsDriver;
  readonly desired: DesiredState;
  readonly edits: Edits;
  readonly writer: KernelWriter;
  readonly vips: VipLedger;
  /** A fleet node's kernel ledger; null elsewhere. */
  readonly ledger: KernelLedger | null;
  readonly checks: HealthChecks;
  readonly probeMarks: MarkRange;
  readonly exposure: Exposure;
  readonly failover: FailoverRunner;
  readonly repairs: Repairs;
  readonly transactions: Transactions;
  readonly drains: Drains;
  readonly store: StateStore | null;
  readonly log: Logger;
  /** Runs a driver call, turning its failure into a GorbError. */
  readonly kernel: <T>(call: () => Promise<T>) => Promise<T>;
}

const q = JSON.stringify;

/** See the module comment. The desired state must be empty. */
export async function runRestore(p: RestoreParts, state: SavedState, mode: UnknownDestinationMode): Promise<RestoreReport> {
  const { desired, edits, writer, log } = p;
  const pacer = new Pacer();
  const table = await p.kernel(() => p.driver.snapshot());
  const tracker = new ChangeTracker();
  // By key: every destination in a map, built once for the whole restore.
  const observed = await observedTablePaced(table, pacer);
  const loaded = await loadSavedState(state, observed, (s, b) => edits.watchId(s, b), pacer);
  for (const record of loaded.services) {
    if (pacer.due()) await pacer.turn();
    desired.addService(record);
  }
  const ledger = p.ledger;
  // A shared row is not this node's to remove: other nodes may serve it (they run another version, or the row
  // lost an address race here); it stays, and this node leaves it out.
  const shared = p.store?.shared === true;
  // A shared row's VIP flag is the fact of the node that wrote it last: a fleet node's own claims are its ledger's
  // (and the addresses it adds below, claimFleetAddresses).
  for (const record of ledger === null && !shared ? loaded.vips : []) {
    if (pacer.due()) await pacer.turn();
    p.vips.remember(record.id, record.config.key);
  }
  // The ledger says what was deleted only while the shared state goes on from the history it followed.
  let follows = true;
  if (ledger !== null) {
    const mismatch = state.origin === undefined ? null : ledger.mismatch(state.origin);
    if (mismatch !== null) {
      log.error(
        `restore: ${mismatch}. What this node created and that state lacks is not removed on its kernel ledger's word (--unknown-destinations ${mode} applies), and the ledger starts again from what this node serves now`,
      );
      follows = await ledger.forgetAll();
    }
    // Entries whose objects the kernel does not have are over; the addresses this node added are its claims.
    await ledger.prune(observed);
    for (const record of loaded.services) {
      if (pacer.due()) await pacer.turn();
      const key = record.config.key;
      if (!isFwmarkKey(key) && ledger.hasVip(key.address)) p.vips.remember(record.id, key);
    }
  }
  // This node's own rows are set aside in the store (kept verbatim, never read back), or deleted by a store that
  // cannot, or when setting them aside fails.
  let where = "left in the shared state; not served by this node";
  if (!shared && loaded.drop.length > 0) {
    const store = p.store;
    let setAside = false;
    if (store?.setAside !== undefined) {
      try {
        await store.setAside(loaded.drop);
        setAside = true;
      } catch (error) {
        log.error(`restore: cannot set aside the rows it cannot read in ${store.location} (${errorMessage(error)}); removing them`);
      }
    }
    if (setAside) where = `set aside in ${store?.location ?? "the saved state"} (table set_aside), not restored`;
    else {
      where = "removed from the saved state";
      for (const row of loaded.drop) tracker.touch(row.service, row.backend ?? undefined);
    }
  }
  for (const d of loaded.dropped) log.error(`cannot restore ${d.what} (${where}): ${d.why}`);
  for (const w of loaded.portWarnings) log.warn(`restore: ${w.what}: ${w.why}; kept as it is`);
  // Services gorb was creating when it stopped, for a change it never saved nor answered: gorb's, not foreign.
  const unsaved = unsavedCreations(state.creating ?? [], observed, (id) => desired.hasKeyId(id));
  // Services this fleet node created that the shared state no longer has: deleted while it was down. One whose row
  // does not read here (it has a row, or a claim) was not: it is left as it is.
  const held = new Set(state.claimed ?? []);
  for (const row of state.services) held.add(serviceKeyId(row.key));
  const deleted = ledger === null ? [] : deletedServices(ledger, table, (id, key) => desired.hasKeyId(id) || held.has(id) || isProbeKey(p.probeMarks, key));
  const removing = new Set([...unsaved, ...deleted].map((entry) => serviceKeyId(entry.key)));
  await writer.replace(table, (id, key) => desired.hasKeyId(id) || removing.has(id) || isProbeKey(p.probeMarks, key), pacer);
  const gone = new Set<string>();
  const removedUnsaved = await removeServices(p, unsaved, "gorb was creating it when it stopped, before saving it (the change was never answered)", gone);
  const removedDeleted = await removeServices(p, deleted, "this node created it and the shared state no longer has it (deleted while this node was down)", gone);
  // The addresses this node added that no service it restores claims (their services were deleted meanwhile), and
  // that no service left in the kernel uses (one whose row does not read here, another program's).
  const inUse = new Set<string>();
  for (const { service } of table) if (!isFwmarkKey(service.key) && !gone.has(serviceKeyId(service.key))) inUse.add(service.key.address);
  for (const address of ledger?.vips() ?? []) {
    if (inUse.has(address)) continue;
    if (await p.vips.dropUnclaimed(address)) log.warn(`restore: removed VIP ${address}, which this node added for a service the shared state no longer has`);
  }

  const unknown: string[] = [];
  // Service by service: an adopted destination changes its own service's backends only.
  for (const service of [...desired.services()]) {
    if (pacer.due()) await pacer.turn();
    for (const { dest } of unknownDestinations([desired.wanted(service)], writer.view)) {
      // A destination kept already is a backend row that no longer reads (logged with it): left alone.
      if (service.keep.has(destinationKeyId(dest))) continue;
      const text = `${describeDestination(dest)} in service ${q(service.id)}`;
      if (ledger?.hasDestination(serviceKeyId(service.config.key), destinationKeyId(dest)) === true) {
        // This node created it, and the shared state no longer has it: deleted meanwhile. The repairs remove it.
        removedDeleted.push(text);
        log.warn(`restore: IPVS serves ${text}, which this node created and the shared state no longer has (deleted while this node was down); removing it`);
        continue;
      }
      unknown.push(text);
      if (mode === "report") {
        service.keep.add(destinationKeyId(dest));
        log.warn(`restore: IPVS serves ${text}, which the saved state does not know; leaving it (--unknown-destinations report)`);
      } else if (mode === "adopt") {
        const refused = adoptDestination(desired, service, dest, (s, b) => edits.watchId(s, b), tracker);
        if (refused === null) log.warn(`restore: IPVS serves ${text}, which the saved state does not know; adopted it as an API backend`);
        else log.error(`restore: cannot adopt ${text}: ${refused}; leaving it`);
      } else {
        log.warn(`restore: IPVS serves ${text}, which the saved state does not know; removing it (--unknown-destinations remove)`);
      }
    }
  }

  const quorumChanges = await p.failover.restoreStates(pacer);
  const { reports: repairs } = await p.repairs.run(await planOperationsPaced(desired.wantedEach(), writer.view, pacer), { pacer });
  // What gorb now serves is this node's, even when it was in the kernel before the ledger was (an upgrade).
  await ledger?.recordServed(desired.wantedEach(), writer.view, pacer);
  if (ledger !== null && state.origin !== undefined && follows) await ledger.follow(state.origin);
  // Every start says which revision it restored, with its ledger or without: a later start with a ledger that
  // followed another one knows it missed this run (KernelLedger.mismatch).
  if (state.origin !== undefined && p.store?.restored !== undefined) {
    await p.store.restored(state.origin).catch((error: unknown) => log.error(`restore: cannot record in the shared state which revision this node restored: ${errorMessage(error)}`));
  }
  for (const change of quorumChanges) {
    if (pacer.due()) await pacer.turn();
    p.failover.quorumChanged(change);
  }
  if (shared) await claimFleetAddresses(p, pacer);
  // At start-up a missing VIP is expected (the interface may have been reset with the host): not a repair. A
  // service the kernel refused is neither given its VIP nor registered (./exposure.ts): a reconcile does that.
  await p.exposure.sync(pacer);
  let backends = 0;
  for (const record of desired.services()) {
    for (const backend of record.backends.values()) {
      if (pacer.due()) await pacer.turn();
      p.checks.add(backend.watchId, { host: backend.address.address, port: backend.spec.port }, backend.spec.pulse);
      backends++;
    }
    if (pacer.due()) await pacer.turn();
    p.exposure.exposeRestored(record);
  }
  // Rows dropped or adopted, and the record of services being created cleared; a failure is logged and refuses
  // changes until the disk takes writes again.
  await p.transactions.commitTracked(tracker).catch(() => undefined);
  log.info(
    `restored ${desired.size} service(s) and ${backends} backend(s) from ${p.store?.location ?? "the saved state"}` +
      (repairs.length === 0 ? "; the kernel already matched" : `; ${repairs.length} repair(s)`),
  );
  p.drains.kick(); // drains saved before the restart carry on, against their saved deadline
  return {
    services: desired.size,
    backends: loaded.backends,
    dropped: loaded.dropped.map((d) => `${d.what}: ${d.why}`),
    repairs,
    unknown,
    removedUnsaved,
    removedDeleted,
  };
}

/** The services of `table` this node's ledger holds that `kept` says are neither restored nor gorb's probes. */
function deletedServices(ledger: KernelLedger, table: readonly ServiceWithDestinations[], kept: (id: string, key: ServiceKey) => boolean): Creating[] {
  const out: Creating[] = [];
  for (const { service } of table) {
    const id = serviceKeyId(service.key);
    if (ledger.hasService(id) && !kept(id, service.key)) out.push({ key: service.key, vip: false });
  }
  return out;
}

/**
 * Remove from IPVS the services of `entries` (gorb's, found at start-up and not restored), with their destinations,
 * logging each with `why`; returns those removed ("tcp 10.0.0.1:80"), and adds their key ids to `gone`. The address
 * gorb put on the VIP interface for one (`vip`) goes too, unless a restored service claims it.
 */
async function removeServices(p: RestoreParts, entries: readonly Creating[], why: string, gone: Set<string>): Promise<string[]> {
  const removed: string[] = [];
  if (entries.length === 0) return removed;
  const wanted = entries.map(({ key }) => ({ id: describeService(key), config: null, key, backends: [] }));
  for (const r of await p.transactions.run(planOperations(wanted, p.writer.view))) {
    if (r.error !== null) {
      p.log.error(`restore: cannot remove ${r.operation.service} (${why}): ${r.error.message}; IPVS keeps it`);
    } else {
      if (r.operation.op.op === "delete-service") gone.add(serviceKeyId(r.operation.op.key));
      removed.push(r.operation.service);
      p.log.warn(`restore: removed ${r.operation.service} from IPVS: ${why}`);
    }
  }
  for (const { key, vip } of entries) {
    if (vip && !isFwmarkKey(key) && (await p.vips.dropUnclaimed(key.address))) p.log.warn(`restore: removed VIP ${key.address}, which gorb added for ${describeService(key)}`);
  }
  return removed;
}

/**
 * A fleet node's addresses on the VIP interface for the services it restored: those its ledger names are its claims
 * already (put back by Exposure.sync when missing); any other is claimed once the kernel has its service
 * (VipLedger.claimWhenServing: Exposure.sync, right after, for those it has now; a write or a reconcile for one it
 * refused): added when missing, as a service created through the API would have it added, and then this node's (a
 * node joining the fleet, or whose ledger starts again); one already there is not gorb's and is never removed.
 */
async function claimFleetAddresses(p: RestoreParts, pacer: Pacer): Promise<void> {
  for (const record of p.desired.services()) {
    if (pacer.due()) await pacer.turn();
    const key = record.config.key;
    // Claimed by Exposure.sync, next (VipLedger.restoreMissing), for those the kernel has; later for the others.
    if (!isFwmarkKey(key) && !p.vips.holds(record.id, key)) p.vips.claimWhenServing(record.id, key);
  }
}
