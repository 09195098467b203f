/**
 * Drains, the stateful part: starting, cancelling and ending a backend's drain as changes under gorb's lock
 * (each one an edit of the desired state, written to the kernel and committed like a request), and the watcher
 * (./drain-watch.ts) that decides when one ends. The decisions themselves are pure (./drain.ts).
 */
import type { IpvsDriver } from "../ipvs/driver.ts";
import type { Logger } from "../log.ts";
import type { DesiredState } from "./desired-state.ts";
import { drainEvent, drainTargets } from "./drain-targets.ts";
import { DrainWatch, type DrainTarget } from "./drain-watch.ts";
import { drainView, sameDrain, startDrain, type ConnCounts, type DrainRequest, type DrainState, type DrainView } from "./drain.ts";
import type { Edits } from "./edits.ts";
import type { EventBus } from "./events.ts";
import type { Queries } from "./queries.ts";
import type { Transactions } from "./transactions.ts";
import type { Tx } from "./tx.ts";

/** What drains work with; `mutation` queues a change under gorb's lock (group commit). */
export interface DrainParts {
  readonly desired: DesiredState;
  readonly edits: Edits;
  readonly queries: Queries;
  readonly transactions: Transactions;
  readonly events: EventBus;
  readonly driver: IpvsDriver;
  readonly log: Logger;
  readonly now: () => number;
  /** A monotonic clock (ms), for how long this node has watched another node's drain. */
  readonly monotonic: () => number;
  /** This node's name in a fleet; null on one node. */
  readonly nodeId: string | null;
  /** The other nodes' counts for a drain (GorbOptions.drainPeers); null on one node. */
  readonly peers: ((service: string, backend: string, drain: DrainState) => Promise<ConnCounts | null>) | null;
  readonly pollMs: number;
  readonly mutation: <T>(section: (tx: Tx) => Promise<T>) => Promise<T>;
}

const q = JSON.stringify;

/** See the module comment. */
export class Drains {
  readonly #p: DrainParts;
  readonly #watch: DrainWatch;

  constructor(parts: DrainParts) {
    this.#p = parts;
    const peers = parts.peers;
    this.#watch = new DrainWatch({
      targets: () => drainTargets(parts.desired),
      read: (key) => parts.driver.listDestinations(key),
      finish: (target, decision, conns) => this.#finish(target, decision, conns),
      progress: (target, conns) => parts.events.publish("backend.drain", drainEvent(target.service, target.backend, target.drain, "progress", conns)),
      now: parts.now,
      monotonic: parts.monotonic,
      node: parts.nodeId,
      peers: peers === null ? null : (t) => peers(t.service, t.backend, t.drain),
      pollMs: parts.pollMs,
      log: parts.log,
    });
  }

  /** Look at the drains now (a restore, a remote change may have brought some). */
  kick(): void {
    this.#watch.kick();
  }

  stop(): void {
    this.#watch.stop();
  }

  /** The other nodes' counts last read for a drain this node started (DrainView.others). */
  othersRead(service: string, backend: string, drain: DrainState): ConnCounts | null | undefined {
    return this.#watch.othersRead(service, backend, drain);
  }

  /** "service/backend" of every backend whose drain waits for its connections (phase "draining"). */
  waiting(): Set<string> {
    return new Set(drainTargets(this.#p.desired).map((t) => `${t.service}/${t.backend}`));
  }

  /** Publish every drain's counts again at the next look (Gorb.announceDrainCounts). */
  announce(): void {
    this.#watch.announce();
  }

  /** Start (or replace) a backend's drain; the drain as GET shows it. */
  async start(serviceId: string, backendId: string, request: DrainRequest): Promise<DrainView> {
    const { edits, queries, events, log, transactions } = this.#p;
    const drain = await this.#p.mutation(async (tx) => {
      const service = queries.service(serviceId);
      const backend = queries.backend(service, backendId);
      const started = startDrain(request, this.#p.now(), this.#p.nodeId);
      edits.setDrain(tx, service, backend, started, () => {
        log.info(`draining backend ${q(backendId)} of service ${q(serviceId)} until ${new Date(started.deadline).toISOString()}, then ${started.then}`);
        events.publish("backend.drain", drainEvent(serviceId, backendId, started, "started", null));
      });
      await transactions.write(tx);
      return started;
    });
    this.#watch.kick();
    return drainView(drain, this.#p.now());
  }

  /** Cancel a backend's drain, or end a held one; nothing to cancel is no error. */
  cancel(serviceId: string, backendId: string): Promise<void> {
    const { edits, queries, events, log, transactions } = this.#p;
    return this.#p.mutation(async (tx) => {
      const service = queries.service(serviceId);
      const backend = queries.backend(service, backendId);
      const drain = backend.drain;
      if (drain === null) return;
      edits.setDrain(tx, service, backend, null, () => {
        log.info(`backend ${q(backendId)} of service ${q(serviceId)}: drain cancelled`);
        events.publish("backend.drain", drainEvent(serviceId, backendId, drain, "cancelled", null));
      });
      await transactions.write(tx);
    });
  }

  /** End a drain the watcher found drained or timed out, if it is still the same drain. */
  #finish(target: DrainTarget, decision: "drained" | "timeout", conns: ConnCounts | null): Promise<void> {
    const { desired, edits, events, log, transactions } = this.#p;
    return this.#p.mutation(async (tx) => {
      const service = desired.service(target.service);
      const backend = service?.backends.get(target.backend);
      if (service === undefined || backend === undefined || backend.drain === null || !sameDrain(backend.drain, target.drain)) return;
      const drain = backend.drain;
      const publish = () => {
        const left = conns === null ? "" : ` (${conns.active} active, ${conns.inactive} inactive connection(s) left)`;
        const how = decision === "drained" ? "drained" : `reached its drain deadline${left}`;
        log.info(`backend ${q(target.backend)} of service ${q(target.service)} ${how}; ${drain.then === "remove" ? "removing it" : "keeping it at weight 0"}`);
        events.publish("backend.drain", drainEvent(target.service, target.backend, drain, decision, conns));
      };
      if (drain.then === "remove") {
        tx.after(publish);
        edits.deleteBackend(tx, service, backend);
      } else {
        edits.setDrain(tx, service, backend, { ...drain, phase: "drained" }, publish);
      }
      await transactions.write(tx);
    });
  }
}
