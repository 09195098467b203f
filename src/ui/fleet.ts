/**
 * GET /cluster as the Fleet panel (./panels.tsx) reads it (the view of src/api/cluster.ts), and what the panel says
 * of a node that has not converged because it could not apply some services (its kernel refused them): which ones,
 * and since which revision.
 */
import { visibleText } from "./ids.ts";

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
}

/** GET /cluster. */
export interface FleetView {
  readonly node: string;
  readonly revision: number;
  readonly store: { readonly state: string; readonly lastError: string | null };
  readonly nodes: readonly FleetNode[];
  readonly health_splits: readonly { readonly service: string; readonly backend: string; readonly up: readonly string[]; readonly down: readonly string[] }[];
}

/** The node's "converged" cell: "yes", "no", or "no: 2 services not applied". */
export function convergedText(n: FleetNode): string {
  if (n.converged) return "yes";
  const failed = n.failed?.length ?? 0;
  return failed === 0 ? "no" : `no: ${failed} service${failed === 1 ? "" : "s"} not applied`;
}

/** One line per service a node could not apply, node by node: "lb2: web, not applied since revision 7". */
export function failedLines(view: FleetView): string[] {
  return view.nodes.flatMap((n) => (n.failed ?? []).map((f) => `${visibleText(n.node)}: ${visibleText(f.service)}, not applied since revision ${f.revision}`));
}
