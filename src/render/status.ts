/**
 * The status table of `gorb status` from the daemon's view (GET /service?detail=true): one block per service with
 * its backends. Shared by the CLI, which renders it for `gorb service show` and an older daemon, and the daemon,
 * which serves it rendered (GET /service with Accept: text/plain) so `gorb status` only prints it.
 */
import type { BackendStatusView, ServiceStatusView } from "../core/views.ts";
import { hostPort } from "../ipv6-text.ts";
import { type StatusBackend, type StatusService, draftStatusTable, statusTable } from "./format.ts";

type ServiceOptions = ServiceStatusView["options"];
type BackendOptions = BackendStatusView["options"];
/** The part of a service's view its line's markers come from (a GET /service/:id answer has it too). */
type ServiceMarkerView = Pick<ServiceStatusView, "options" | "in_kernel" | "quorum_up" | "sorry">;

/** serviceAddress: "tcp 10.0.0.1:80", "udp [2001:db8::1]:53", "fwmark 7" or "fwmark 7 inet6". */
export function serviceAddress(o: ServiceOptions): string {
  if (o.fwmark > 0) return o.family === "inet6" ? `fwmark ${o.fwmark} inet6` : `fwmark ${o.fwmark}`;
  const address = o.address !== "" ? o.address : o.host;
  return `${o.protocol} ${hostPort(address, o.port)}`;
}

/** backendTarget: "10.1.0.1:8080". */
export function backendTarget(o: BackendOptions): string {
  return hostPort(o.address !== "" ? o.address : o.host, o.port);
}

/** The forwarding method as the tables show it: nat, dr, local, tunnel (ipip), gue:PORT or gre. */
export function forwardText(o: BackendOptions): string {
  if (o.method !== "tunnel" && o.method !== "ipip") return o.method;
  if (o.tunnel_type === "" || o.tunnel_type === "ipip") return "tunnel";
  return o.tunnel_type === "gue" ? `gue:${o.tunnel_port}` : o.tunnel_type;
}

/** What holds a backend at weight 0 besides health, for the state column: " maint", " draining 42s>remove", " drained". */
function overrideText(b: Omit<BackendStatusView, "id">): string {
  let text = b.options.maintenance === true ? " maint" : "";
  const drain = b.drain;
  if (drain !== undefined && drain !== null) {
    text += drain.state === "drained" ? " drained" : ` draining ${drain.seconds_left}s>${drain.then}`;
  }
  return text;
}

/** "sorry 10.9.0.1:80" while the sorry server serves, "no quorum" while down without one; null otherwise. */
function failoverText(info: ServiceMarkerView): string | null {
  const sorry = info.options.sorry_server;
  if (info.sorry === true && sorry != null) return `sorry ${hostPort(sorry.host, sorry.port)}`;
  return info.quorum_up === false ? "no quorum" : null;
}

/**
 * What the service's line adds to its state: "not in kernel" while IPVS does not have it (`in_kernel` false: its
 * counters are dashes then, which alone would read as an unreadable kernel), then its failover state.
 */
export function serviceMarkers(info: ServiceMarkerView): string[] {
  const markers = info.in_kernel === false ? ["not in kernel"] : [];
  const failover = failoverText(info);
  if (failover !== null) markers.push(failover);
  return markers;
}

/** The status line of one backend from its GET answer (or the status query's part of it). */
export function statusBackend(id: string, b: Omit<BackendStatusView, "id">): StatusBackend {
  return {
    name: id,
    target: backendTarget(b.options),
    forward: forwardText(b.options),
    weight: b.options.weight,
    live: b.effective_weight,
    health: b.metrics.state === "unknown" ? null : b.metrics.health,
    state: b.metrics.state + overrideText(b),
    active: b.active_conns,
    inactive: b.inactive_conns,
    stats: b.stats,
    message: b.metrics.message,
  };
}

/** The status block of one service from GET /service?detail=true (or the status query, which has only its part). */
function statusService(d: ServiceStatusView): StatusService {
  return {
    name: d.id,
    address: serviceAddress(d.options),
    scheduler: d.options.method,
    health: d.health,
    stats: d.stats,
    backends: d.backend_details.map((b) => statusBackend(b.id, b)),
    markers: serviceMarkers(d),
  };
}

/** The status table of every service, as `gorb status` prints it. */
export function statusText(details: readonly ServiceStatusView[]): string {
  return statusTable(details.map(statusService));
}

/** A status line whose counters are set after it is made. */
type Counted<T> = { -readonly [K in keyof T]: T[K] };

/**
 * statusText in two steps, for the daemon: drafted from views whose kernel counters are not in yet (everything but
 * the counter columns is laid out then), finished once they are (see Queries.readServicesStatus): finish() takes
 * the counters from the same views.
 */
export function draftStatusText(views: readonly ServiceStatusView[]): { finish(): string } {
  // Fresh objects of statusService's: their counters are set in place at finish.
  const services: Counted<StatusService>[] = views.map(statusService);
  const drafted = draftStatusTable(services);
  return {
    finish() {
      views.forEach((v, i) => {
        const s = services[i];
        if (s === undefined) return;
        s.stats = v.stats;
        v.backend_details.forEach((b, j) => {
          const line: Counted<StatusBackend> | undefined = s.backends[j];
          if (line === undefined) return;
          line.active = b.active_conns;
          line.inactive = b.inactive_conns;
          line.stats = b.stats;
        });
      });
      return drafted.finish();
    },
  };
}
