/**
 * The executor of the reconciler's plans, and the only code that writes IPVS: it sends a plan's operations as
 * ONE driver batch (`driver.apply`, many requests per datagram) and keeps gorb's view of what the kernel has
 * for the services gorb manages (what it read at the last reconcile, plus every write that succeeded since).
 * Mutations plan against this view, so a change to one backend needs no table read.
 *
 * A delete of something already gone (ESRCH, ENOENT) counts as done: the object is not there, as wanted. A
 * destination's add that the kernel took into a service whose add failed in the same batch (a service gorb does
 * not manage already had that key) fails with the service's error, and is deleted again. Every
 * service add that succeeds is told to `onAdded` (with the gorb service id): Exposure (./exposure.ts) exposes a
 * service it held once a write, whichever, puts it in the kernel.
 *
 * A fleet node's kernel ledger (./kernel-ledger.ts) records the services and destinations a batch adds before the
 * batch is sent, and forgets what it removed once it ran (a batch that broke off: what the kernel, read again, no
 * longer has, and the adds it does not have); a batch whose adds cannot be recorded is not sent (each of its
 * operations fails with the ledger's 503).
 */
import { destinationKeyId, serviceKeyId } from "./keys.ts";
import type { KernelLedger, LedgerEntries } from "./kernel-ledger.ts";
import type { IpvsDriver } from "../ipvs/driver.ts";
import { IpvsError } from "../ipvs/errors.ts";
import type { DestinationConfig, IpvsOp, ServiceConfig, ServiceKey, ServiceWithDestinations } from "../ipvs/types.ts";
import type { Pacer } from "../pacer.ts";
import { observedService, type ObservedService, type ObservedTable, type Operation } from "./reconcile.ts";

/** The outcome of one operation. */
export interface OperationResult {
  readonly operation: Operation;
  /** null when it was done. */
  readonly error: Error | null;
  /** True for a delete of something that was already gone. */
  readonly gone: boolean;
  /** The destination as the view had it before (weight events), if any. */
  readonly before: DestinationConfig | undefined;
}

interface MutableService {
  config: ServiceConfig;
  readonly dests: Map<string, DestinationConfig>;
}

function alreadyGone(op: IpvsOp, error: Error): boolean {
  if (!(error instanceof IpvsError)) return false;
  if (op.op === "delete-service") return error.code === "ESRCH";
  if (op.op === "delete-destination") return error.code === "ENOENT" || error.code === "ESRCH";
  return false;
}

/** See the module comment. */
export class KernelWriter {
  readonly #driver: IpvsDriver;
  #view = new Map<string, MutableService>();
  readonly #onAdded: (service: string) => void;
  readonly #ledger: KernelLedger | null;

  constructor(driver: IpvsDriver, onAdded: (service: string) => void = () => undefined, ledger: KernelLedger | null = null) {
    this.#driver = driver;
    this.#onAdded = onAdded;
    this.#ledger = ledger;
  }

  /** What gorb believes the kernel has, for its own services. */
  get view(): ObservedTable {
    return this.#view as ReadonlyMap<string, ObservedService>;
  }

  /**
   * Take a table read as the view, for the service keys `managed` says are gorb's; with a `pacer`, a turn of the
   * event loop whenever it says so (a reconcile's or a restore's 20,000 services), else in one go. The new view is
   * built aside and taken whole: between turns, readers (GET /service, health updates) see the previous one.
   */
  async replace(table: readonly ServiceWithDestinations[], managed: (keyId: string, key: ServiceKey) => boolean, pacer: Pacer | null = null): Promise<void> {
    const view = new Map<string, MutableService>();
    for (const entry of table) {
      if (pacer?.due() === true) await pacer.turn();
      const id = serviceKeyId(entry.service.key);
      if (managed(id, entry.service.key)) view.set(id, observedService(entry));
    }
    this.#view = view;
  }

  /** Delete every IPVS service (gorb's and everyone else's): `gorb serve -f`. */
  async flush(): Promise<void> {
    await this.#driver.flush();
    this.#view.clear();
    await this.#ledger?.forgetKernel();
  }

  /**
   * Run the operations as one batch, in order; a failed one does not stop the others. With a `pacer`, the results
   * are recorded in the view with a turn of the event loop whenever it says so (a restore's or a reconcile's 20,000
   * repairs).
   */
  async run(operations: readonly Operation[], pacer: Pacer | null = null): Promise<OperationResult[]> {
    if (operations.length === 0) return [];
    let recorded: LedgerEntries | null = null;
    if (this.#ledger !== null) {
      try {
        recorded = await this.#ledger.recordAdds(operations);
      } catch (error) {
        // Nothing was sent: what the batch would create could not be recorded as gorb's.
        const failure = error instanceof Error ? error : new Error(String(error));
        return operations.map((operation) => ({ operation, error: failure, gone: false, before: undefined }));
      }
    }
    let errors: (Error | null)[];
    try {
      errors = await this.#driver.apply(operations.map((o) => o.op));
    } catch (error) {
      const failure = error instanceof Error ? error : new Error(String(error));
      // The batch broke off (a transport failure): the kernel may have taken any part of it. The view of the services
      // it concerned is read again, so a rollback planned against it undoes what was taken, and the ledger keeps what
      // the kernel has: an add it did not take is no object of gorb's (one made later by hand is not gorb's either).
      await this.#readAgain(operations);
      if (this.#ledger !== null && recorded !== null) await this.#ledger.settle(operations, operations.map((o) => this.#took(o.op)), recorded);
      return operations.map((operation) => ({ operation, error: failure, gone: false, before: undefined }));
    }
    // A batch names one service for all of its destinations in a row (the same key object): looked up once.
    let lastKey: ServiceKey | null = null;
    let lastEntry: MutableService | undefined;
    const entryOf = (key: ServiceKey): MutableService | undefined => {
      if (key !== lastKey) {
        lastKey = key;
        lastEntry = this.#view.get(serviceKeyId(key));
      }
      return lastEntry;
    };
    const results: OperationResult[] = [];
    /** The services whose add this batch the kernel refused, with its error (keyed by serviceKeyId). */
    let refusedAdds: Map<string, Error> | null = null;
    /** Destinations the kernel added to a service this batch failed to create: someone else's (see below). */
    let stray: IpvsOp[] | null = null;
    for (let i = 0; i < operations.length; i++) {
      if (pacer?.due() === true) await pacer.turn();
      const operation = operations[i] as Operation;
      const op = operation.op;
      let error = errors[i] ?? null;
      const gone = error !== null && alreadyGone(op, error);
      if (gone) error = null;
      if (!("destination" in op)) {
        if (error === null) {
          this.#record(op);
          lastKey = null; // the service's entry may have changed
          if (op.op === "add-service") this.#onAdded(operation.service);
        } else if (op.op === "add-service") (refusedAdds ??= new Map()).set(serviceKeyId(op.service.key), error);
        results.push({ operation, error, gone, before: undefined });
        continue;
      }
      const entry = entryOf(op.service);
      const destKey = destinationKeyId(op.destination);
      const before = entry?.dests.get(destKey);
      if (error === null && entry !== undefined) {
        if (op.op === "delete-destination") entry.dests.delete(destKey);
        else entry.dests.set(destKey, op.destination);
      }
      // The batch goes on past a failed op: when the service's add failed because the kernel has a service on that
      // key that is not gorb's (EEXIST), the destination's add that followed went into that service. It fails with
      // the service's error, and is taken out again below, so a refused change leaves the other service as it was.
      const refused = error === null && entry === undefined && op.op === "add-destination" ? refusedAdds?.get(serviceKeyId(op.service)) : undefined;
      if (refused !== undefined) {
        (stray ??= []).push({ op: "delete-destination", service: op.service, destination: op.destination });
        error = refused;
      }
      results.push({ operation, error, gone, before });
    }
    // Best effort: one that cannot be taken out stays in that service, which gorb never touches otherwise.
    if (stray !== null) await this.#driver.apply(stray).catch(() => undefined);
    if (this.#ledger !== null && recorded !== null) {
      await this.#ledger.settle(operations, results.map((r) => r.error === null), recorded);
    }
    return results;
  }

  /**
   * Read the services `operations` concern from the kernel into the view (gone: out of it). One that cannot be read
   * keeps its entry, and so do the rest: a kernel that does not answer one read would make each of them wait out
   * the netlink timeout under gorb's lock. The periodic reconcile reads the whole table again.
   */
  async #readAgain(operations: readonly Operation[]): Promise<void> {
    const keys = new Map<string, ServiceKey>();
    for (const { op } of operations) {
      const key = op.op === "add-service" || op.op === "update-service" ? op.service.key : op.op === "delete-service" ? op.key : op.service;
      keys.set(serviceKeyId(key), key);
    }
    for (const [id, key] of keys) {
      try {
        const config = await this.#driver.getService(key);
        const dests = new Map<string, DestinationConfig>();
        for (const d of await this.#driver.listDestinations(key)) dests.set(destinationKeyId(d), d);
        this.#view.set(id, { config, dests });
      } catch (error) {
        if (!(error instanceof IpvsError && error.code === "ESRCH")) return;
        this.#view.delete(id);
      }
    }
  }

  /** Whether the view has what `op` makes (an add's object there, a delete's gone); false for an update. */
  #took(op: IpvsOp): boolean {
    switch (op.op) {
      case "add-service":
        return this.#view.has(serviceKeyId(op.service.key));
      case "delete-service":
        return !this.#view.has(serviceKeyId(op.key));
      case "add-destination":
        return this.#view.get(serviceKeyId(op.service))?.dests.has(destinationKeyId(op.destination)) === true;
      case "delete-destination":
        return this.#view.get(serviceKeyId(op.service))?.dests.has(destinationKeyId(op.destination)) !== true;
      default:
        return false;
    }
  }

  /** Update the view after a write to a service succeeded (run() records the destinations' itself). */
  #record(op: Exclude<IpvsOp, { readonly destination: unknown }>): void {
    switch (op.op) {
      case "add-service":
      case "update-service": {
        const id = serviceKeyId(op.service.key);
        const found = this.#view.get(id);
        if (found === undefined) this.#view.set(id, { config: op.service, dests: new Map() });
        else found.config = op.service;
        return;
      }
      case "delete-service":
        this.#view.delete(serviceKeyId(op.key));
        return;
    }
  }
}
