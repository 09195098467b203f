/**
 * Random fleet operations with restarts, with fixed seeds (a failure names its seed and step, and lists the steps
 * before it, so it reproduces): up to three nodes on one real etcd, each a real Gorb over its own in-memory IPVS
 * table and VIP interface ("lo"), its own state directory and kernel ledger, restoring from etcd and following it,
 * driven through the API. Steps: PUT, PATCH and DELETE of services (a few addresses, shared by services on other
 * ports and protocols, and fwmark services) and backends, and applies of declarative sets, through a random node
 * (or through every node at once, or while another node stops); a node stopped (its kernel and
 * interface kept) and started again on the same state directory, or with --no-state (no ledger); a service, an
 * address, or (while the node is down) a destination in one of gorb's services added to a node by hand; a node
 * replaced by a fresh one (empty kernel, interface and state directory) that joins the fleet.
 *
 * After each step, once every running node has applied the latest change, gorb's promises:
 *   - no request answers 5xx; no node lists a failed service; every node's API lists etcd's services;
 *   - every running node's kernel holds etcd's services with their backends (same scheduler on every node), and
 *     what was added by hand, untouched; nothing else, except what a --no-state start leaves in place (report
 *     mode: a service etcd no longer has, a destination its service does not name), which that start must leave
 *     (a service created later on the key of one so left is refused on that node, as on the key of any service
 *     gorb did not create: listed failed there);
 *   - every service of etcd has its address on the node's interface (unless fwmark), an address added by hand is
 *     never removed, and no other address is left, except on a node that once ran without its ledger (the
 *     addresses it found are never its own).
 *
 * GORB_FLEET_SEEDS=300 runs more seeds (about a minute; GORB_FLEET_FIRST_SEED the first, GORB_FLEET_STEPS the
 * steps of each); GORB_FLEET_TRACE=1 prints each step.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp } from "../../../src/api/app.ts";
import { EventBus } from "../../../src/core/events.ts";
import type { DestinationConfig, ServiceConfig, ServiceKey } from "../../../src/ipvs/types.ts";
import { MemoryIpvsDriver } from "../../../src/ipvs/memory-driver.ts";
import { SqliteLedgerStore } from "../../../src/state/ledger-store.ts";
import { EtcdStateStore } from "../../../src/store/etcd-store.ts";
import { MemoryVipManager } from "../../helpers/memory-vip.ts";
import { Draw, brokenSeeds, seedsWithFound } from "../../helpers/random.ts";
import { makeGorb } from "../core/fakes.ts";
import { etcdForFile } from "./etcd-process.ts";

const etcd = etcdForFile();
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const SEEDS = Number(process.env.GORB_FLEET_SEEDS ?? 30);
const FIRST_SEED = Number(process.env.GORB_FLEET_FIRST_SEED ?? 1);
const STEPS = Number(process.env.GORB_FLEET_STEPS ?? 40);
/**
 * Seeds run too: 20136 (an apply moves a service that holds a destination added by hand to another key and puts a
 * new service on the key it frees: the destination goes with its service, and the model once required it there);
 * 30195 and 30691 (another node's apply moved a service onto a key another of its services left, or a backend to
 * another port: failed on every other node); 30222 (a service a node failed to apply stayed in its `failed` list
 * once deleted); 40283 (an apply etcd refused after it deleted a service put it back without the destination added
 * by hand there); 50912 (the same when a new service of the apply took the key); 51282 (a service a --no-state
 * start left blocks one an apply moved, and so the one the apply put on the moved one's key: the model excuses both);
 * 50892 (the same block: the moved service stays at its old key). Seed 170054 with 250 steps found that a node started
 * with its ledger after a --no-state run removed a destination added by hand on the key of one its ledger recorded
 * before that run (fleet-ledger.test.ts has it now; it needs more steps than are run here).
 */
const FOUND = [20136, 30195, 30691, 30222, 40283, 50912, 51282, 50892];

const SERVICE_IDS = ["s1", "s2", "s3", "s4", "s5"];
const BACKEND_IDS = ["b1", "b2", "b3"];
const VIPS = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];
const BACKEND_HOSTS = ["10.1.0.1", "10.1.0.2", "10.1.0.3"];
/** Addresses of what the operator adds by hand: a destination may be a backend's (gorb takes it over then). */
const HAND_DEST_HOSTS = ["10.1.0.90", "10.1.0.91", "10.1.0.1"];
const HAND_SERVICE_HOSTS = ["10.0.9.1", "10.0.9.2"];
const HAND_ADDRESSES = [...VIPS, "10.0.9.9"];

function keyText(key: ServiceKey): string {
  return "fwmark" in key ? `fwmark ${key.family} ${key.fwmark}` : `${key.protocol} ${key.address}:${key.port}`;
}

/** A kernel table as "service key" -> sorted "address:port" of its destinations. */
type Table = Map<string, string[]>;

function table(driver: MemoryIpvsDriver): Table {
  return new Map(driver.peek().map((s) => [keyText(s.service.key), s.destinations.map((d) => `${d.address}:${d.port}`).sort()]));
}

/** What etcd has: each service's key, scheduler and destinations; "service key" -> ids of the services. */
interface Desired {
  readonly ids: string[];
  readonly services: Map<string, { id: string; key: ServiceKey; dests: string[] }>;
}

/** What the operator added to one host by hand. */
interface Hand {
  readonly addresses: Set<string>;
  /** Services: "service key" -> destinations (kept exactly). */
  readonly services: Map<string, string[]>;
  /** Destinations in gorb's services: "service key" -> destinations. */
  readonly dests: Map<string, Set<string>>;
  /** The id of the service etcd had on each key of `dests` when they were added (undefined: none). */
  readonly destOwners: Map<string, string | undefined>;
}

/** One machine: its state directory, kernel and interface (kept across restarts), and the node running on it. */
interface Host {
  readonly name: string;
  readonly dir: string;
  readonly driver: MemoryIpvsDriver;
  readonly vip: MemoryVipManager;
  node: Node | null;
  readonly hand: Hand;
  /** Left in the kernel by a start that could not tell them deleted: allowed, not required ("service" or "service|dest"). */
  readonly leftovers: Set<string>;
  /** The same, required at the check right after the start that left them. */
  fresh: Set<string>;
  /** Once it ran without a ledger: the addresses it found then are never its own. */
  tainted: boolean;
  readonly sticky: Set<string>;
}

type Node = Awaited<ReturnType<typeof startNode>>;

interface Planned {
  readonly method: string;
  readonly path: string;
  readonly body: unknown;
}

function newHost(name: string): Host {
  const dir = mkdtempSync(join(tmpdir(), "gorb-fleet-random-"));
  dirs.push(dir);
  return {
    name, dir, driver: new MemoryIpvsDriver(), vip: new MemoryVipManager(), node: null,
    hand: { addresses: new Set(), services: new Map(), dests: new Map(), destOwners: new Map() },
    leftovers: new Set(), fresh: new Set(), tainted: false, sticky: new Set(),
  };
}

/** Start a node on `h`: restore from etcd, follow it, answer the API. */
async function startNode(h: Host, prefix: string, noState: boolean) {
  const store = new EtcdStateStore({ endpoints: [etcd.endpoint], prefix, timeoutMs: 1000, retryMs: 100, node: h.name });
  const ledger = noState ? null : SqliteLedgerStore.open(h.dir, prefix);
  const stack = makeGorb({ store, ...(ledger === null ? {} : { ledger }), events: new EventBus(), driver: h.driver, vip: h.vip, vipInterface: "lo" });
  const report = await stack.gorb.restore((await store.load()).state);
  store.sync(stack.gorb);
  const app = createApp({ gorb: stack.gorb, logger: stack.logger });
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await app.handle(new Request(`http://gorb.test${path}`, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) }));
    return { status: response.status, text: await response.text(), revision: store.committedRevision };
  };
  const stop = async () => {
    await store.close();
    await stack.gorb.close();
    ledger?.close();
  };
  return { ...stack, store, report, call, stop, noState };
}

const HAND_SERVICE = (address: string): ServiceConfig => ({
  key: { family: "inet", protocol: "udp", address, port: 53 },
  scheduler: "rr",
  flags: { persistent: false, onePacket: false, sched1: false, sched2: false, sched3: false },
  timeout: 0,
  netmask: 32,
  pe: null,
});
const HAND_DEST = (address: string, port: number): DestinationConfig => ({
  family: "inet", address, port, forward: "nat", weight: 10, upperThreshold: 0, lowerThreshold: 0, tunnel: null,
});

/** One sequence: its hosts, etcd prefix, the latest revision written, and what it did so far. */
class Fleet {
  readonly hosts: Host[];
  readonly prefix: string;
  readonly draw: Draw;
  readonly checker: EtcdStateStore;
  latest = 0;
  /** The services of etcd at the last check, with their backends' ids. */
  known = new Map<string, string[]>();
  readonly problems: string[] = [];
  joined = 0;

  constructor(seed: number) {
    this.draw = new Draw(seed);
    this.prefix = `/fleet-random-${seed}-${Date.now()}`;
    this.hosts = [newHost("A"), newHost("B"), newHost("C")];
    // The test's own view of etcd, not a node: given time (a loaded machine answered a read in more than 1 s, and
    // the model then ended with that error rather than a seed).
    this.checker = new EtcdStateStore({ endpoints: [etcd.endpoint], prefix: this.prefix, timeoutMs: 10_000, retryMs: 100 });
  }

  running(): Host[] {
    return this.hosts.filter((h) => h.node !== null);
  }

  async desired(): Promise<Desired> {
    const { state } = await this.checker.load();
    const services = new Map<string, { id: string; key: ServiceKey; dests: string[] }>();
    for (const row of state.services) {
      const port = "port" in row.key ? row.key.port : 0;
      const dests = state.backends
        .filter((b) => b.service === row.id)
        .map((b) => `${b.address.address}:${typeof b.fields["port"] === "number" ? b.fields["port"] : port}`)
        .sort();
      services.set(keyText(row.key), { id: row.id, key: row.key, dests });
    }
    this.known = new Map(state.services.map((s) => [s.id, state.backends.filter((b) => b.service === s.id).map((b) => b.id)]));
    return { ids: state.services.map((s) => s.id).sort(), services };
  }

  async start(h: Host, noState: boolean): Promise<string> {
    const before = table(h.driver);
    const addresses = h.vip.addresses();
    h.node = await startNode(h, this.prefix, noState);
    if (noState || h.tainted) {
      // Without a ledger (or with one that missed a run without it), what etcd lacks is reported and left in place.
      // Required at the next check after a start without a ledger; after one with a ledger that missed some
      // changes, allowed (it may know some of them for its own).
      const desired = await this.desired();
      const left = noState ? h.fresh : h.leftovers;
      for (const [service, dests] of before) {
        if (h.hand.services.has(service)) continue;
        const wanted = desired.services.get(service);
        if (wanted === undefined) {
          left.add(service);
          continue;
        }
        for (const d of dests) if (!wanted.dests.includes(d) && !h.hand.dests.get(service)?.has(d)) left.add(`${service}|${d}`);
      }
      for (const item of h.fresh) h.leftovers.add(item);
      for (const address of addresses) h.sticky.add(address);
    }
    if (noState) h.tainted = true;
    this.latest = Math.max(this.latest, h.node.store.committedRevision);
    return `start ${h.name}${noState ? " --no-state" : ""} (unknown: ${JSON.stringify(h.node.report.unknown)}, removed: ${JSON.stringify(h.node.report.removedDeleted)})`;
  }

  async stop(h: Host): Promise<string> {
    await h.node?.stop();
    h.node = null;
    return `stop ${h.name}`;
  }

  /** A random request. */
  plan(): Planned {
    const d = this.draw;
    const kind = d.int(11);
    if (kind === 10) return { method: "POST", path: "/apply", body: this.#applySet() };
    // Mostly a service (and backend) that exists, so that most requests change something.
    const existing = [...this.known.keys()];
    const service = kind >= 3 && existing.length > 0 && d.chance(0.8) ? d.pick(existing) : d.pick(SERVICE_IDS);
    const backends = this.known.get(service) ?? [];
    const backend = kind >= 8 && backends.length > 0 && d.chance(0.8) ? d.pick(backends) : d.pick(BACKEND_IDS);
    let method: string;
    let path: string;
    let body: unknown;
    if (kind < 3) {
      method = "PUT";
      path = `/service/${service}`;
      body = d.chance(0.15)
        ? { fwmark: d.pick([1, 2]) }
        : { host: d.pick(VIPS), port: d.pick([80, 443]), protocol: d.pick(["tcp", "tcp", "udp"]), ...(d.chance(0.3) ? { method: "rr" } : {}) };
    } else if (kind < 4) {
      method = "PATCH";
      path = `/service/${service}`;
      body = { method: d.pick(["rr", "wrr", "lc"]) };
    } else if (kind < 5) {
      method = "DELETE";
      path = `/service/${service}`;
    } else if (kind < 8) {
      method = "PUT";
      path = `/service/${service}/${backend}`;
      body = { host: d.pick(BACKEND_HOSTS), port: d.pick([80, 8080]) };
    } else if (kind < 9) {
      method = "PATCH";
      path = `/service/${service}/${backend}`;
      body = { weight: d.pick([0, 50, 100]) };
    } else {
      method = "DELETE";
      path = `/service/${service}/${backend}`;
    }
    return { method, path, body };
  }

  /** A declarative set: a few services (file-owned, or taking one of the API's over), each with a few backends. */
  #applySet(): unknown {
    const d = this.draw;
    const services: Record<string, unknown> = {};
    for (let i = d.int(3); i > 0; i--) {
      const backends: Record<string, unknown> = {};
      for (let j = d.int(3); j > 0; j--) backends[d.pick(BACKEND_IDS)] = { host: d.pick(BACKEND_HOSTS), port: d.pick([80, 8080]) };
      services[d.pick(["f1", "f2", "f1", "f2", ...SERVICE_IDS])] = { host: d.pick(VIPS), port: d.pick([80, 443]), backends };
    }
    return { services };
  }

  /** Send `planned` through `h`'s node; what it did. */
  async send(h: Host, { method, path, body }: Planned): Promise<string> {
    const node = h.node;
    if (node === null) throw new Error("request through a stopped node");
    const reply = await node.call(method, path, body);
    const what = `${method} ${path} ${body === undefined ? "" : JSON.stringify(body)} via ${h.name}: ${reply.status}`;
    if (reply.status >= 500) this.problems.push(`${what} ${reply.text}`);
    if (reply.status < 400) this.latest = Math.max(this.latest, reply.revision);
    return what;
  }

  /** Something added by hand to a host (a destination only while its node is down: a reconcile may remove it otherwise). */
  async byHand(h: Host): Promise<string | null> {
    const d = this.draw;
    const kind = d.int(3);
    if (kind === 0) {
      const address = d.pick(HAND_ADDRESSES);
      if (h.vip.addresses().includes(address)) return null;
      await h.vip.add(address, "inet");
      h.hand.addresses.add(address);
      return `by hand on ${h.name}: address ${address}`;
    }
    if (kind === 1) {
      const config = HAND_SERVICE(d.pick(HAND_SERVICE_HOSTS));
      const key = keyText(config.key);
      if (!h.hand.services.has(key)) {
        await h.driver.addService(config);
        h.hand.services.set(key, []);
        return `by hand on ${h.name}: service ${key}`;
      }
      const dest = HAND_DEST(d.pick(HAND_DEST_HOSTS), 53);
      const dests = h.hand.services.get(key) ?? [];
      if (dests.includes(`${dest.address}:53`)) return null;
      await h.driver.addDestination(config.key, dest);
      h.hand.services.set(key, [...dests, `${dest.address}:53`].sort());
      return `by hand on ${h.name}: destination ${dest.address}:53 in ${key}`;
    }
    if (h.node !== null) return null;
    const gorbs = h.driver.peek().filter((s) => !h.hand.services.has(keyText(s.service.key)));
    if (gorbs.length === 0) return null;
    const target = d.pick(gorbs);
    const port = "port" in target.service.key ? target.service.key.port : 80;
    const dest = HAND_DEST(d.pick(HAND_DEST_HOSTS), port);
    const text = `${dest.address}:${port}`;
    if (target.destinations.some((x) => `${x.address}:${x.port}` === text)) return null;
    await h.driver.addDestination(target.service.key, dest);
    const key = keyText(target.service.key);
    if (!h.hand.dests.has(key)) h.hand.destOwners.set(key, (await this.desired()).services.get(key)?.id);
    h.hand.dests.set(key, new Set([...(h.hand.dests.get(key) ?? []), text]));
    return `by hand on ${h.name} (down): destination ${text} in ${key}`;
  }

  /** One random step; what it did, or null when it drew something it could not do. */
  async step(): Promise<string | null> {
    const d = this.draw;
    const running = this.running();
    const stopped = this.hosts.filter((h) => h.node === null);
    const kind = d.int(100);
    if (running.length === 0) return this.start(d.pick(stopped), false);
    if (kind < 45) return this.send(d.pick(running), this.plan());
    if (kind < 50) {
      // Requests through different nodes at once.
      const sends = running.map((h) => this.send(h, this.plan()));
      return `at once: ${(await Promise.all(sends)).join(" | ")}`;
    }
    if (kind < 55) {
      // A node stopped while a change goes through another (before, while or after it applies it).
      if (running.length < 2) return null;
      const [via, stopping] = d.chance(0.5) ? running : [...running].reverse();
      if (via === undefined || stopping === undefined) return null;
      const [sent, stopped] = await Promise.all([this.send(via, this.plan()), this.stop(stopping)]);
      return `${sent}; at once ${stopped}`;
    }
    if (kind < 65) return running.length < 2 ? null : this.stop(d.pick(running));
    if (kind < 77) return stopped.length === 0 ? null : this.start(d.pick(stopped), false);
    if (kind < 83) {
      const h = d.pick(this.hosts);
      const stopping = h.node === null ? "" : `${await this.stop(h)}; `;
      return `${stopping}${await this.start(h, true)}`;
    }
    if (kind < 95) return this.byHand(d.pick(this.hosts));
    // A fresh machine in place of a stopped one.
    if (stopped.length === 0) return null;
    const old = d.pick(stopped);
    const h = newHost(`${old.name}${++this.joined}`);
    this.hosts[this.hosts.indexOf(old)] = h;
    return `replace ${old.name}: ${await this.start(h, false)}`;
  }

  /** The broken promises once every running node has applied the latest change. */
  async check(): Promise<string[]> {
    const problems = this.problems.splice(0);
    for (const h of this.running()) {
      const node = h.node;
      if (node === null) continue;
      if (!(await node.store.waitApplied(this.latest, 5000))) problems.push(`${h.name} did not apply revision ${this.latest} (${node.store.appliedRevision})`);
      await node.gorb.idle();
    }
    const desired = await this.desired();
    const schedulers = new Map<string, string>();
    for (const h of this.running()) {
      const node = h.node;
      if (node === null) continue;
      const failed = node.store.status().failed;
      // A service on the key of one a start without a ledger left in place (deleted while the node was down) is
      // refused there, as one on the key of any service gorb did not create is (a design question, see below); so
      // is one on the key such a refused service still holds there (an apply moved it onto the left one: seed 51282).
      const excused = new Set([...desired.services.keys()].filter((key) => h.leftovers.has(key)));
      const failing = new Set(failed.map((f) => f.service));
      const holds = new Map(node.gorb.managedServices().map((m) => [m.id, keyText(m.config.key)]));
      for (let grew = true; grew; ) {
        grew = false;
        for (const [key, { id }] of desired.services) {
          const old = holds.get(id);
          if (!excused.has(key) || !failing.has(id) || old === undefined || excused.has(old)) continue;
          excused.add(old);
          grew = true;
        }
      }
      const blocked = new Set([...desired.services].filter(([key]) => excused.has(key)).map(([, s]) => s.id));
      const failedIds = failed.map((f) => f.service).filter((id) => !blocked.has(id));
      if (failedIds.length > 0) problems.push(`${h.name} failed ${JSON.stringify(failed)}`);
      const listed = JSON.parse((await node.call("GET", "/service")).text) as string[];
      const ids = desired.ids.filter((id) => !blocked.has(id) || listed.includes(id));
      if (JSON.stringify([...listed].sort()) !== JSON.stringify(ids)) problems.push(`${h.name} lists ${JSON.stringify(listed)}, etcd has ${JSON.stringify(desired.ids)}`);
      problems.push(...this.#kernel(h, desired, excused));
      problems.push(...this.#addresses(h, desired));
      for (const s of h.driver.peek()) {
        const key = keyText(s.service.key);
        if (!desired.services.has(key) || excused.has(key)) continue;
        const other = schedulers.get(key);
        if (other !== undefined && other !== s.service.scheduler) problems.push(`${h.name}: ${key} has scheduler ${s.service.scheduler}, another node ${other}`);
        schedulers.set(key, s.service.scheduler);
      }
      h.fresh = new Set();
    }
    return problems;
  }

  /** `excused`: keys whose service may be refused on this node (see check()), beside the leftovers. */
  #kernel(h: Host, desired: Desired, excused: ReadonlySet<string>): string[] {
    const problems: string[] = [];
    const kernel = table(h.driver);
    const at = `${h.name}'s kernel`;
    // Destinations by hand go with their service: once another service holds the key (the apply or the node that
    // moved theirs re-created it elsewhere, and a new one took the key in the same batch), they may be gone.
    for (const [key, dests] of [...h.hand.dests]) {
      if (desired.services.get(key)?.id === h.hand.destOwners.get(key)) continue;
      for (const dest of dests) h.leftovers.add(`${key}|${dest}`);
      h.hand.dests.delete(key);
      h.hand.destOwners.delete(key);
    }
    for (const [key, wanted] of desired.services) {
      if (excused.has(key)) continue;
      const has = kernel.get(key);
      if (has === undefined) {
        problems.push(`${at} lacks ${key}`);
        continue;
      }
      const hand = h.hand.dests.get(key) ?? new Set();
      for (const dest of [...wanted.dests, ...hand]) if (!has.includes(dest)) problems.push(`${at} lacks ${dest} in ${key}${hand.has(dest) ? " (added by hand)" : ""}`);
      for (const dest of has) {
        if (wanted.dests.includes(dest) || hand.has(dest) || h.leftovers.has(`${key}|${dest}`)) continue;
        problems.push(`${at} serves ${dest} in ${key}, which etcd does not have`);
      }
    }
    for (const [key, dests] of kernel) {
      if (desired.services.has(key)) continue;
      const hand = h.hand.services.get(key);
      if (hand !== undefined) {
        if (JSON.stringify(hand) !== JSON.stringify(dests)) problems.push(`${at} changed ${key}, added by hand: ${JSON.stringify(dests)}, not ${JSON.stringify(hand)}`);
      } else if (!h.leftovers.has(key) && !excused.has(key)) problems.push(`${at} serves ${key} ${JSON.stringify(dests)}, which etcd does not have`);
    }
    for (const key of h.hand.services.keys()) if (!kernel.has(key)) problems.push(`${at} lost ${key}, added by hand`);
    for (const item of h.fresh) {
      const [key = "", dest] = item.split("|");
      const has = kernel.get(key);
      if (has === undefined || (dest !== undefined && !has.includes(dest))) problems.push(`${at} removed ${item} at a start that could not tell it deleted`);
    }
    // A destination by hand goes with its service, and is gorb's once a backend of its service is on it.
    for (const key of [...h.hand.dests.keys()]) {
      if (kernel.has(key)) continue;
      h.hand.dests.delete(key);
      h.hand.destOwners.delete(key);
    }
    for (const [key, dests] of h.hand.dests) for (const dest of dests) if (desired.services.get(key)?.dests.includes(dest) === true) dests.delete(dest);
    return problems;
  }

  #addresses(h: Host, desired: Desired): string[] {
    const problems: string[] = [];
    const on = h.vip.addresses();
    const at = `${h.name}'s interface`;
    const needed = new Set(h.hand.addresses);
    for (const [text, { key }] of desired.services) if (!("fwmark" in key) && !h.leftovers.has(text)) needed.add(key.address);
    for (const address of needed) if (!on.includes(address)) problems.push(`${at} lacks ${address}${h.hand.addresses.has(address) ? " (added by hand)" : ""}`);
    for (const address of on) {
      if (needed.has(address) || (h.tainted && h.sticky.has(address))) continue;
      problems.push(`${at} has ${address}, which no service uses`);
    }
    if (h.tainted) for (const address of on) h.sticky.add(address);
    return problems;
  }

  async close(): Promise<void> {
    for (const h of this.hosts) await h.node?.stop();
    await this.checker.close();
  }
}

/** Runs one sequence; the first broken promise (with the steps that led to it), or null. */
async function runSequence(seed: number): Promise<string | null> {
  const fleet = new Fleet(seed);
  const done: string[] = [];
  try {
    await fleet.start(fleet.hosts[0] as Host, false);
    await fleet.start(fleet.hosts[1] as Host, false);
    for (let step = 0; step < STEPS; step++) {
      const what = await fleet.step();
      if (what === null) continue;
      done.push(`${step}: ${what}`);
      if (process.env.GORB_FLEET_TRACE !== undefined) console.log(`seed ${seed} ${done.at(-1)}`);
      const problems = await fleet.check();
      if (problems.length > 0) return `seed ${seed} step ${step}: ${what}\n  ${problems.join("\n  ")}\nsteps:\n  ${done.join("\n  ")}`;
    }
    return null;
  } finally {
    await fleet.close();
  }
}

describe("random fleet operations with restarts (fixed seeds)", () => {
  test(`${SEEDS} sequences of ${STEPS} steps (and the seeds in FOUND) keep every promise`, async () => {
    expect(await brokenSeeds(seedsWithFound(FIRST_SEED, SEEDS, FOUND), runSequence)).toEqual([]);
  }, 20_000 + SEEDS * STEPS * 300);
});
