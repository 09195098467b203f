/**
 * What the core facade (./gorb.ts) is built from: the driver and the health checks, and every optional part with
 * its default. The daemon (src/daemon/run.ts) fills it from its flags and configuration file.
 */
import type { Discovery } from "../discovery/discovery.ts";
import type { MonitorClock } from "../health/clock.ts";
import type { WeightPolicy } from "../health/weight.ts";
import type { IpvsDriver } from "../ipvs/driver.ts";
import type { Logger } from "../log.ts";
import type { EventBus } from "./events.ts";
import type { ConnCounts, DrainState } from "./drain.ts";
import type { QuorumHookRunner } from "./failover.ts";
import type { HealthChecksFactory } from "./health.ts";
import type { MarkRange } from "./mark-range.ts";
import type { HostResolver } from "./resolve.ts";
import type { LedgerStore } from "./kernel-ledger.ts";
import type { StateStore } from "./state.ts";
import type { VipManager } from "./vip.ts";

/** What Gorb is built from. Only `driver` and `health` are required. */
export interface GorbOptions {
  readonly driver: IpvsDriver;
  /** Builds the health checks, given Gorb's update listener: `(onUpdate) => new HealthMonitor({ onUpdate })`. */
  readonly health: HealthChecksFactory;
  /** Tunes the recovery ramp. @default DEFAULT_WEIGHT_POLICY (full weight after 10 passes in a row) */
  readonly weightPolicy?: WeightPolicy;
  /** Adds/removes service addresses on the VIP interface. @default NoVipManager */
  readonly vip?: VipManager;
  /** Registers services with Consul. @default NoDiscovery */
  readonly discovery?: Discovery;
  /** Looks up DNS names. @default dnsResolver() */
  readonly resolver?: HostResolver;
  /** How long a DNS lookup may take before the request is refused (400 on "host"). @default 2000 */
  readonly resolveTimeoutMs?: number;
  /** Address for services created without `host` (the first address of the -i interface). @default null */
  readonly defaultAddress?: string | null;
  /** The VIP interface's name (--vip-interface): a loopback VIP is accepted only on "lo". @default null */
  readonly vipInterface?: string | null;
  /** Most services gorb holds (--max-services); a create beyond it is a 409 LIMIT. @default unlimited */
  readonly maxServices?: number | null;
  /** Most backends gorb holds, over all services (--max-backends). @default unlimited */
  readonly maxBackends?: number | null;
  readonly logger?: Logger;
  /** Keeps every accepted change on disk (see ./state.ts). @default none: nothing survives a restart */
  readonly store?: StateStore;
  /**
   * A fleet node's kernel ledger (./kernel-ledger.ts): what this node put in its kernel and on its VIP interface,
   * so a restart removes what another node deleted meanwhile. @default none (a single host's state says it)
   */
  readonly ledger?: LedgerStore;
  /** Where changes are published. @default a private bus */
  readonly events?: EventBus;
  /** This node's name in a fleet (--store etcd://): drains record who started them. @default null (one node) */
  readonly nodeId?: string | null;
  /**
   * A fleet node's view of the other live nodes' connections to a draining backend, summed (null: one of them has
   * not said): the node that started a drain ends it only once they too have none (./drain.ts). @default none (the
   * node's own counts decide)
   */
  readonly drainPeers?: (service: string, backend: string, drain: DrainState) => Promise<ConnCounts | null>;
  /** Milliseconds between two reads of draining backends' connection counts. @default 1000 */
  readonly drainPollMs?: number;
  /** The wall clock (epoch ms) drains are timed with. @default Date.now */
  readonly now?: () => number;
  /** Runs quorum_up / quorum_down hooks (./failover.ts). @default none: hooks are logged, not run */
  readonly hooks?: QuorumHookRunner;
  /** Where quorum hooks must live (--hook-dir). @default DEFAULTS.hookDir */
  readonly hookDir?: string;
  /** The clock slow-start ramps run on, and how long another fleet node's drain was watched. @default systemClock */
  readonly clock?: MonitorClock;
  /** Firewall marks for checks through the VIP (--probe-marks); default DEFAULT_PROBE_MARKS. */
  readonly probeMarks?: MarkRange;
}
