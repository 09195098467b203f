/**
 * GET /cluster as the Fleet panel (./panels.tsx) reads it (the view of src/api/cluster.ts), and what the panel says
 * of a node that has not converged because it could not apply some services (its kernel refused them): which ones,
 * and since which revision; the backends being drained and those whose health differs between nodes. Each line
 * draws an id through isolatedId, as the rest of the page does.
 */
import { isolatedId, visibleText } from "../contract/ids.ts";

/** A service a node could not apply, from `revision` on (GET /cluster's `failed` in a node's record). */
export interface FailedApply {
  readonly service: string;
  readonly revision: number;
}

/** One node's record in GET /cluster. */
export interface FleetNode {
  readonly node: string;
  readonly address: string;
  readonly version: string;
  readonly appliedRevision: number;
  readonly store: string;
  readonly converged: boolean;
  /** The services the node could not apply (absent: none, or an older gorb). */
  readonly failed?: readonly FailedApply[];
  /** The node's connections to each backend being drained, by "service/backend" (absent: none, or an older gorb). */
  readonly drains?: Readonly<Record<string, { readonly deadline: string; readonly active: number; readonly inactive: number }>>;
}

/** GET /cluster. */
export interface FleetView {
  readonly node: string;
  readonly revision: number;
  readonly store: { readonly state: string; readonly lastError: string | null };
  readonly nodes: readonly FleetNode[];
  /** Why the nodes' records could not be read (etcd does not answer); null (or absent, an older gorb) when they were. */
  readonly nodes_error?: string | null;
  readonly health_splits: readonly { readonly service: string; readonly backend: string; readonly up: readonly string[]; readonly down: readonly string[] }[];
}

/** The node's "converged" cell: "yes", "no", or "no: 2 services not applied". */
export function convergedText(n: FleetNode): string {
  if (n.converged) return "yes";
  const failed = n.failed?.length ?? 0;
  return failed === 0 ? "no" : `no: ${failed} service${failed === 1 ? "" : "s"} not applied`;
}

/** "web/b1", each id through isolatedId: an RTL service id does not pass for the backend, nor the reverse. */
function backendText(service: string, backend: string): string {
  return `${isolatedId(service)}/${isolatedId(backend)}`;
}

/** One line per service a node could not apply, node by node: "lb2: web, not applied since revision 7". */
export function failedLines(view: FleetView): string[] {
  return view.nodes.flatMap((n) => (n.failed ?? []).map((f) => `${visibleText(n.node)}: ${isolatedId(f.service)}, not applied since revision ${f.revision}`));
}

/**
 * One line per backend being drained, each node's connections left to it: "web/b1: lb1 0 active, 0 inactive; lb2 3
 * active, 1 inactive (until 2026-12-05T20:00:00.000Z)". The node that started the drain ends it once every node has
 * none left (a node with no counts for it keeps it waiting), or at the deadline.
 */
export function drainLines(view: FleetView): string[] {
  const byBackend = new Map<string, { deadline: string; parts: string[] }>();
  for (const n of view.nodes) {
    for (const [path, d] of Object.entries(n.drains ?? {})) {
      const entry = byBackend.get(path) ?? { deadline: d.deadline, parts: [] };
      entry.parts.push(`${visibleText(n.node)} ${d.active} active, ${d.inactive} inactive`);
      byBackend.set(path, entry);
    }
  }
  return [...byBackend].sort(([a], [b]) => a.localeCompare(b)).map(([path, e]) => {
    // An id holds no "/": the first one ends the service's.
    const slash = path.indexOf("/");
    const target = slash < 0 ? isolatedId(path) : backendText(path.slice(0, slash), path.slice(slash + 1));
    return `${target}: ${e.parts.join("; ")} (until ${e.deadline})`;
  });
}

/** One line per backend whose health differs between nodes: "web/b1: up on lb1; down on lb2". */
export function splitLines(view: FleetView): string[] {
  const nodes = (names: readonly string[]) => names.map(visibleText).join(", ");
  return view.health_splits.map((s) => `${backendText(s.service, s.backend)}: up on ${nodes(s.up)}; down on ${nodes(s.down)}`);
}
