/**
 * What a service's card (./services.tsx) says about the service beyond its backends, as text: the kernel does not
 * have it (`in_kernel` false: refused at start-up, or lost and not put back by a reconcile), its sorry server serves,
 * or it is below quorum; and whether the card counts as degraded (outlined, listed first). The degraded line that
 * names the down backends stays in the card: it draws their ids (widgets.tsx `Id`).
 */
import type { ServiceView } from "./store.ts";

/** The card's status lines (`.why`), the most serious first; [] when the service serves as its backends allow. */
export function serviceNotes(s: ServiceView): string[] {
  const notes: string[] = [];
  if (s.in_kernel === false) notes.push("not in the kernel: IPVS does not have this service, so it serves nothing; each reconcile tries to add it");
  if (s.sorry === true) notes.push(`sorry server ${sorryText(s.options.sorry_server)} serves in place of the backends (${s.healthy ?? 0} healthy)`);
  else if (s.quorum_up === false) notes.push(`below quorum (${s.healthy ?? 0} healthy, quorum ${String(s.options.quorum ?? "")})`);
  return notes;
}

/** Degraded: a backend is down, or the kernel does not have the service. */
export function isDegraded(s: ServiceView): boolean {
  return s.in_kernel === false || s.backend_details.some((b) => b.metrics.state === "down");
}

/** "10.9.0.1:8080" from a service's `sorry_server` option. */
function sorryText(server: unknown): string {
  if (typeof server !== "object" || server === null) return "";
  const { host, port } = server as { host?: unknown; port?: unknown };
  return `${String(host ?? "")}:${String(port ?? "")}`;
}
