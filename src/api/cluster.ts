/**
 * The fleet routes, present when the daemon shares its desired state in etcd (`--store etcd://...`):
 *   GET /cluster                       every registered node (address, version, applied revision, store state,
 *                                      the services it could not apply), whether it has converged, and the
 *                                      backends whose health differs between nodes (up on one, down on another);
 *                                      while etcd does not answer, this node's store state and `nodes_error`
 *   GET /cluster/revision?wait=N       the etcd revision this node has applied; with wait, answers once it serves
 *                                      N: applied N, and no service whose change at or below N failed to apply
 *                                      (read-your-writes after a write that answered X-Gorb-Revision: N), or
 *                                      after timeout_ms (default 5000) with reached false and those services in
 *                                      `failed` (the server's idle timeout is lifted for that long)
 * Every successful mutation (PUT, PATCH, DELETE, POST /apply) carries X-Gorb-Revision: the etcd revision of this
 * node's latest commit, which includes the mutation, or of the latest change it applied from another node when
 * later (a write that found everything as asked commits nothing).
 *
 * The API layer sees the fleet through ClusterApi (the daemon adapts src/store to it).
 */
import { t } from "elysia";
import { ErrorBody } from "../contract/schemas.ts";
import { NotFoundError, UnavailableError } from "../core/errors.ts";
import { jsonResponse } from "./json.ts";
import { escapeLabel } from "./metrics.ts";

/** One node as it registered itself. */
export interface ClusterMember {
  readonly node: string;
  readonly address: string;
  readonly version: string;
  readonly startedAt: string;
  readonly appliedRevision: number;
  /** The revision of the latest change of services or backends the node has applied (absent: an older gorb). */
  readonly changeRevision?: number;
  readonly store: string;
  /** The services the node could not apply, each with the revision of its earliest change not applied. */
  readonly failed?: readonly FailedService[];
  readonly backends: Readonly<Record<string, string>>;
  /** The connections the node's kernel still has to each backend being drained, by "service/backend". */
  readonly drains?: Readonly<Record<string, { readonly deadline: string; readonly active: number; readonly inactive: number }>>;
}

/** A service whose change a node could not apply (its kernel refused it), from `revision` on. */
export interface FailedService {
  readonly service: string;
  readonly revision: number;
}

/** What the fleet routes need. */
export interface ClusterApi {
  /** This node's name. */
  readonly node: string;
  /** X-Gorb-Revision: this node's latest commit, or the latest change it applied from others when later. */
  committedRevision(): number;
  /** The shared store as this node sees it. */
  status(): {
    readonly state: string;
    readonly appliedRevision: number;
    readonly changeRevision: number;
    readonly lastError: string | null;
    readonly relists: number;
    readonly failed: readonly FailedService[];
  };
  /**
   * Resolves true once this node serves `revision`: it has applied it, and no service whose change at or below it
   * failed to apply (status().failed); false after `timeoutMs`.
   */
  waitApplied(revision: number, timeoutMs: number): Promise<boolean>;
  /** The registered nodes; an UnavailableError when they cannot be read (etcd does not answer). */
  members(): Promise<readonly ClusterMember[]>;
}

/**
 * `/metrics` with the shared store's lines after the others: gorb_store_up (0 while etcd cannot be reached:
 * the node keeps what it has and refuses writes), the applied revision and the relists.
 */
export function withStoreMetrics(metrics: ReadableStream<Uint8Array>, cluster: ClusterApi | undefined): ReadableStream<Uint8Array> {
  if (cluster === undefined) return metrics;
  const s = cluster.status();
  // Escaped as every label value of /metrics (./metrics.ts); JSON's escapes (\t, \u0001) are not the text format's.
  const node = `"${escapeLabel(cluster.node)}"`;
  const text =
    "# HELP gorb_store_up 1 when the shared store (etcd) answers, 0 while it does not (degraded: writes refused).\n" +
    "# TYPE gorb_store_up gauge\n" +
    `gorb_store_up{node=${node}} ${s.state === "ok" ? 1 : 0}\n` +
    "# HELP gorb_store_applied_revision The etcd revision this node's desired state and kernel have applied.\n" +
    "# TYPE gorb_store_applied_revision gauge\n" +
    `gorb_store_applied_revision{node=${node}} ${s.appliedRevision}\n` +
    "# HELP gorb_store_relists_total Full reads of the shared state after a broken watch or on the resync timer.\n" +
    "# TYPE gorb_store_relists_total counter\n" +
    `gorb_store_relists_total{node=${node}} ${s.relists}\n`;
  const reader = metrics.getReader();
  let done = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (done) return;
      const next = await reader.read();
      if (!next.done) {
        controller.enqueue(next.value);
        return;
      }
      done = true;
      controller.enqueue(new TextEncoder().encode(text));
      controller.close();
    },
  });
}

/** A backend whose health differs between nodes. */
export interface HealthSplit {
  readonly service: string;
  readonly backend: string;
  readonly up: string[];
  readonly down: string[];
  readonly unknown: string[];
}

/**
 * GET /cluster's answer. `unread`: why the nodes' records could not be read (etcd does not answer), null when they
 * were; the answer then still says this node's store state (degraded, and why), with no nodes.
 */
function clusterView(self: string, status: ReturnType<ClusterApi["status"]>, members: readonly ClusterMember[], unread: string | null) {
  // Converged: the node has applied the latest change of services or backends any node knows of, and serves it
  // (no service it could not apply). Membership records move etcd's revision too, so comparing applied revisions
  // alone never settles.
  const latest = Math.max(status.changeRevision, ...members.map((m) => m.changeRevision ?? 0));
  // This node's own row says what it serves now: its record is written again only at its lease's renewal, so right
  // after a write through it, the record still had it behind the change it had just made.
  const live = (m: ClusterMember): ClusterMember =>
    m.node !== self
      ? m
      : { ...m, appliedRevision: status.appliedRevision, changeRevision: status.changeRevision, store: status.state, failed: status.failed };
  const byBackend = new Map<string, HealthSplit>();
  for (const m of members) {
    for (const [path, state] of Object.entries(m.backends)) {
      const slash = path.indexOf("/");
      let split = byBackend.get(path);
      if (split === undefined) {
        split = { service: path.slice(0, slash), backend: path.slice(slash + 1), up: [], down: [], unknown: [] };
        byBackend.set(path, split);
      }
      (state === "up" ? split.up : state === "down" ? split.down : split.unknown).push(m.node);
    }
  }
  return {
    node: self,
    store: status,
    revision: latest,
    nodes: members.map(live).map((m) => ({ ...m, converged: m.appliedRevision >= latest && (m.failed ?? []).length === 0 })),
    nodes_error: unread,
    health_splits: [...byBackend.values()].filter((s) => s.up.length > 0 && s.down.length > 0),
  };
}

const FailedView = t.Object({ service: t.String(), revision: t.Number() });
const MemberView = t.Object({
  node: t.String(),
  address: t.String(),
  version: t.String(),
  startedAt: t.String(),
  appliedRevision: t.Number(),
  changeRevision: t.Optional(t.Number()),
  store: t.String(),
  failed: t.Optional(t.Array(FailedView)),
  backends: t.Record(t.String(), t.String()),
  drains: t.Optional(t.Record(t.String(), t.Object({ deadline: t.String(), active: t.Number(), inactive: t.Number() }))),
  converged: t.Boolean(),
});
const StoreView = t.Object({
  state: t.String(),
  appliedRevision: t.Number(),
  changeRevision: t.Number(),
  lastError: t.Union([t.String(), t.Null()]),
  relists: t.Number(),
  failed: t.Array(FailedView),
});
const ClusterView = t.Object({
  node: t.String(),
  store: StoreView,
  revision: t.Number(),
  nodes: t.Array(MemberView),
  nodes_error: t.Union([t.String(), t.Null()]),
  health_splits: t.Array(
    t.Object({ service: t.String(), backend: t.String(), up: t.Array(t.String()), down: t.Array(t.String()), unknown: t.Array(t.String()) }),
  ),
});
/** A revision in decimal, up to 15 digits (an exact JavaScript number). */
const REVISION_PATTERN = "^(0|[1-9][0-9]{0,14})$";
/** 0-60000 in decimal. */
const TIMEOUT_MS_PATTERN = "^(0|[1-9][0-9]{0,3}|[1-5][0-9]{4}|60000)$";

const RevisionView = t.Object({ node: t.String(), applied: t.Number(), reached: t.Boolean(), failed: t.Array(FailedView) });

const ERRORS = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 500: ErrorBody, 503: ErrorBody };

/**
 * GET /cluster/revision's answer: this node, its applied revision, whether the wait is over, and the services it
 * could not apply from `wait` or before (all of them without a wait).
 */
function revisionView(cluster: ClusterApi, wait: number | null, reached: boolean) {
  const { appliedRevision, failed } = cluster.status();
  return { node: cluster.node, applied: appliedRevision, reached, failed: failed.filter((f) => wait === null || f.revision <= wait) };
}

/** The registered nodes, or (etcd not answering: an UnavailableError) none and why. */
async function readMembers(cluster: ClusterApi): Promise<{ readonly members: readonly ClusterMember[]; readonly unread: string | null }> {
  try {
    return { members: await cluster.members(), unread: null };
  } catch (error) {
    if (error instanceof UnavailableError) return { members: [], unread: error.message };
    throw error;
  }
}

/** Seconds a /cluster/revision?wait= connection may stay silent beyond its timeout_ms. */
const WAIT_MARGIN_S = 10;

/** What the /cluster/revision handler reads of Elysia's context (`server` is null under app.handle()). */
interface RevisionContext {
  readonly query: { wait?: string | undefined; timeout_ms?: string | undefined };
  readonly request: Request;
  readonly server: { timeout(request: Request, seconds: number): void } | null;
}

/**
 * The fleet routes' handlers and hooks; without a cluster (no shared store) they answer 404. `idleTimeoutS` is the
 * server's idle timeout, given back to a waiting request's connection once it is answered.
 */
export function clusterRoutes(fleet: ClusterApi | undefined, idleTimeoutS: number) {
  const need = (path: string): ClusterApi => {
    if (fleet === undefined) throw new NotFoundError(`no route for GET ${path}: this gorb does not share its state (gorb serve --store etcd://...)`);
    return fleet;
  };
  // Checked before the query is validated (Elysia's transform runs first): without a cluster there is no such
  // route, whatever the query says, as GET /cluster/revision without one answers.
  const present = (path: string) => () => {
    need(path);
  };
  return {
    view: {
      handler: async () => {
        const cluster = need("/cluster");
        const read = await readMembers(cluster);
        return jsonResponse(clusterView(cluster.node, cluster.status(), read.members, read.unread));
      },
      hook: { transform: present("/cluster"), response: { 200: ClusterView, ...ERRORS }, detail: { summary: "The fleet: every node, convergence, health that differs between nodes" } },
    },
    revision: {
      handler: async ({ query, request, server }: RevisionContext) => {
        const cluster = need("/cluster/revision");
        const timeoutMs = query.timeout_ms === undefined ? 5000 : Number(query.timeout_ms);
        if (query.wait === undefined) return jsonResponse(revisionView(cluster, null, true));
        // The wait may outlast the server's idle timeout (10 s), which would cut the connection before the answer:
        // this request gets the wait and a margin instead. Then the idle timeout is back for the connection's
        // keep-alive (Bun keeps a request's own timeout for the rest of its connection; set before the answer).
        server?.timeout(request, Math.ceil(timeoutMs / 1000) + WAIT_MARGIN_S);
        try {
          const wait = Number(query.wait);
          return jsonResponse(revisionView(cluster, wait, await cluster.waitApplied(wait, timeoutMs)));
        } finally {
          server?.timeout(request, idleTimeoutS);
        }
      },
      hook: {
        transform: present("/cluster/revision"),
        // Decimal digits only: a number parameter would take what JavaScript's Number() does ("0x10", "1e3", " 7",
        // 1e20). `x-field`: Elysia reports a failed parameter without its name (./errors.ts).
        query: t.Object({
          wait: t.Optional(t.String({ pattern: REVISION_PATTERN, error: "must be a revision (a whole number)", "x-field": "wait" })),
          timeout_ms: t.Optional(t.String({ pattern: TIMEOUT_MS_PATTERN, error: "must be 0-60000", "x-field": "timeout_ms" })),
        }),
        response: { 200: RevisionView, ...ERRORS },
        detail: { summary: "The etcd revision this node has applied; ?wait=N answers once it has applied N" },
      },
    },
  };
}
