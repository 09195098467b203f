/**
 * GET /metrics in the Prometheus text format (0.0.4), recomputed from gorb's state and one IPVS table read
 * per scrape, so a deleted service or backend disappears from the next scrape (the original kept exporting
 * stale series until restart).
 *
 * The original's six gauges keep their names and labels:
 *   gorb_service_health, gorb_service_backends                      {name, host, port, protocol}
 *   gorb_service_backend_health, _status, _weight, _uptime_seconds  {service_name, name, host, port}
 * (a fwmark service's series add `fwmark`, its mark, beside host "", port "0" and protocol "")
 * where `host` is the host option as the client sent it ("" for a defaulted host), `_weight` is the weight
 * IPVS has (effective), `_status` is 0 up / 1 down, and `_uptime_seconds` is really seconds (the original's
 * was off by 1e9). gorb adds the IPVS counters and rates, connection counts, the configured weight and the
 * duration of the last health check, and the reconcile totals (gorb_reconcile_runs_total,
 * gorb_reconcile_repairs_total: differences between the kernel and gorb's state repaired, e.g. a service
 * deleted with ipvsadm; gorb_reconcile_failures_total: repairs the kernel refused).
 */
import type { ReconcileCounters } from "../core/repairs.ts";
import type { ServiceDetail, StatsView } from "../core/views.ts";
import type { BgpStatus } from "../bgp/controller.ts";

/** One metric family: its name, help, type and how to read its value from a row (undefined: no sample). */
interface FamilySpec<Row> {
  readonly name: string;
  readonly help: string;
  readonly type: "gauge" | "counter";
  readonly value: (row: Row) => number | null | undefined;
}

/** Escapes a label value: backslash, double quote and newline. */
export function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

/** The label set `{k="v",...}` of a row, escaped once per row. */
function labelText(labels: Readonly<Record<string, string>>): string {
  const parts: string[] = [];
  for (const key in labels) parts.push(`${key}="${escapeLabel(labels[key] ?? "")}"`);
  return `{${parts.join(",")}}`;
}

/** The IPVS stats fields exported, with metric name suffix, help text and type. */
const STATS: readonly { field: keyof StatsView; suffix: string; help: string; type: "gauge" | "counter" }[] = [
  { field: "conns", suffix: "connections_total", help: "Connections scheduled (IPVS counter).", type: "counter" },
  { field: "in_pkts", suffix: "in_packets_total", help: "Packets in (IPVS counter).", type: "counter" },
  { field: "out_pkts", suffix: "out_packets_total", help: "Packets out (IPVS counter).", type: "counter" },
  { field: "in_bytes", suffix: "in_bytes_total", help: "Bytes in (IPVS counter).", type: "counter" },
  { field: "out_bytes", suffix: "out_bytes_total", help: "Bytes out (IPVS counter).", type: "counter" },
  { field: "cps", suffix: "connections_per_second", help: "Connection rate (IPVS estimator).", type: "gauge" },
  { field: "in_pps", suffix: "in_packets_per_second", help: "Inbound packet rate (IPVS estimator).", type: "gauge" },
  { field: "out_pps", suffix: "out_packets_per_second", help: "Outbound packet rate (IPVS estimator).", type: "gauge" },
  { field: "in_bps", suffix: "in_bytes_per_second", help: "Inbound byte rate (IPVS estimator).", type: "gauge" },
  { field: "out_bps", suffix: "out_bytes_per_second", help: "Outbound byte rate (IPVS estimator).", type: "gauge" },
];

interface ServiceRow {
  readonly labels: string;
  readonly service: ServiceDetail;
}

interface BackendRow {
  readonly labels: string;
  readonly backend: ServiceDetail["backend_details"][number];
}

const SERVICE_FAMILIES: readonly FamilySpec<ServiceDetail>[] = [
  {
    name: "gorb_service_health",
    help: "Health of the service: mean health of its checked backends (1 when none).",
    type: "gauge",
    value: (s) => s.health,
  },
  { name: "gorb_service_backends", help: "Number of backends of the service.", type: "gauge", value: (s) => s.backends.length },
  {
    name: "gorb_service_panic",
    help: "1 while the service is in panic mode (more than panic_threshold percent of its backends down: weights kept), else 0.",
    type: "gauge",
    value: (s) => (s.panic === true ? 1 : 0),
  },
  {
    name: "gorb_service_quorum_up",
    help: "1 while the service is up by its quorum (always 1 without quorum, sorry server or quorum hook), 0 while it is down.",
    type: "gauge",
    value: (s) => (s.quorum_up === false ? 0 : 1),
  },
  {
    name: "gorb_service_sorry_active",
    help: "1 while the service's sorry server serves in place of its backends, else 0.",
    type: "gauge",
    value: (s) => (s.sorry === true ? 1 : 0),
  },
];

type Backend = BackendRow["backend"];

const BACKEND_FAMILIES: readonly FamilySpec<Backend>[] = [
  {
    name: "gorb_service_backend_uptime_seconds",
    help: "Seconds the backend has been continuously up.",
    type: "gauge",
    value: (b) => b.metrics.uptime,
  },
  {
    name: "gorb_service_backend_health",
    help: "Health of the backend: fraction of recent checks that passed.",
    type: "gauge",
    value: (b) => b.metrics.health,
  },
  {
    name: "gorb_service_backend_status",
    help: "Status of the backend: 0 up (or not checked yet), 1 down.",
    type: "gauge",
    value: (b) => b.metrics.status,
  },
  {
    name: "gorb_service_backend_weight",
    help: "Weight IPVS has for the backend (configured weight scaled by health).",
    type: "gauge",
    value: (b) => b.effective_weight,
  },
  {
    name: "gorb_service_backend_configured_weight",
    help: "Weight configured for the backend.",
    type: "gauge",
    value: (b) => b.options.weight,
  },
  {
    name: "gorb_service_backend_check_duration_seconds",
    help: "Duration of the last health check of the backend.",
    type: "gauge",
    value: (b) => (b.metrics.last_check_ms === null ? null : b.metrics.last_check_ms / 1000),
  },
  {
    name: "gorb_service_backend_active_connections",
    help: "Active connections to the backend (IPVS).",
    type: "gauge",
    value: (b) => b.active_conns,
  },
  {
    name: "gorb_service_backend_inactive_connections",
    help: "Inactive connections to the backend (IPVS).",
    type: "gauge",
    value: (b) => b.inactive_conns,
  },
  {
    name: "gorb_service_backend_persistent_connections",
    help: "Persistence templates of the backend (IPVS).",
    type: "gauge",
    value: (b) => b.persistent_conns,
  },
  {
    name: "gorb_service_backend_maintenance",
    help: "1 while the backend is in maintenance (weight 0 whatever its health), else 0.",
    type: "gauge",
    value: (b) => (b.options.maintenance === true ? 1 : 0),
  },
  {
    name: "gorb_service_backend_draining",
    help: "1 while a drain waits for the backend's connections to end, 2 once drained and held at weight 0, else 0.",
    type: "gauge",
    value: (b) => (b.drain === undefined || b.drain === null ? 0 : b.drain.state === "draining" ? 1 : 2),
  },
  {
    name: "gorb_service_backend_drain_seconds_left",
    help: "Seconds until the deadline of the backend's drain (absent without a drain).",
    type: "gauge",
    value: (b) => (b.drain === undefined || b.drain === null ? null : b.drain.seconds_left),
  },
];

const SERVICE_STATS: readonly FamilySpec<ServiceDetail>[] = STATS.map((s) => ({
  name: `gorb_service_${s.suffix}`,
  help: s.help,
  type: s.type,
  value: (svc: ServiceDetail) => svc.stats?.[s.field],
}));

const BACKEND_STATS: readonly FamilySpec<Backend>[] = STATS.map((s) => ({
  name: `gorb_service_backend_${s.suffix}`,
  help: s.help,
  type: s.type,
  value: (b: Backend) => b.stats?.[s.field],
}));

/** Samples rendered between two yields of metricsChunks (bounds the time one chunk holds the event loop). */
const LINES_PER_CHUNK = 2000;

/**
 * The /metrics body in chunks of at most about LINES_PER_CHUNK lines, families in a fixed order, each with its
 * HELP and TYPE lines and every sample. The route streams these chunks and lets the event loop run between
 * them, so a scrape of 10,000 backends never holds the loop for the whole render.
 */
export function* metricsChunks(
  services: readonly ServiceDetail[],
  reconcile?: ReconcileCounters,
  bgp?: BgpStatus,
  sysctls?: Readonly<Record<string, number | null>>,
): Generator<string> {
  const serviceRows: ServiceRow[] = [];
  const backendRows: BackendRow[] = [];
  for (const service of services) {
    const o = service.options;
    // A fwmark service has no address, port or protocol of its own: its mark says which it is.
    const labels = { name: service.id, host: o.host, port: String(o.port), protocol: o.protocol, ...(o.fwmark > 0 ? { fwmark: String(o.fwmark) } : {}) };
    serviceRows.push({ service, labels: labelText(labels) });
    for (const backend of service.backend_details) {
      backendRows.push({
        backend,
        labels: labelText({ service_name: service.id, name: backend.id, host: backend.options.host, port: String(backend.options.port) }),
      });
    }
  }
  let lines: string[] = [];
  function* family<Row>(spec: FamilySpec<Row>, rows: readonly { labels: string; row: Row }[]): Generator<string> {
    lines.push(`# HELP ${spec.name} ${spec.help}`, `# TYPE ${spec.name} ${spec.type}`);
    for (const { labels, row } of rows) {
      const value = spec.value(row);
      if (value === null || value === undefined) continue;
      lines.push(`${spec.name}${labels} ${formatValue(value)}`);
      if (lines.length >= LINES_PER_CHUNK) {
        yield `${lines.join("\n")}\n`;
        lines = [];
      }
    }
  }
  const svc = serviceRows.map((r) => ({ labels: r.labels, row: r.service }));
  const be = backendRows.map((r) => ({ labels: r.labels, row: r.backend }));
  for (const spec of SERVICE_FAMILIES) yield* family(spec, svc);
  for (const spec of BACKEND_FAMILIES) yield* family(spec, be);
  for (const spec of SERVICE_STATS) yield* family(spec, svc);
  for (const spec of BACKEND_STATS) yield* family(spec, be);
  if (reconcile !== undefined) {
    const counters: [string, string, number][] = [
      ["gorb_reconcile_runs_total", "Reconciles of the kernel table with gorb's state (start-up, periodic, on demand).", reconcile.runs],
      ["gorb_reconcile_repairs_total", "Differences between the kernel table and gorb's state that a reconcile repaired.", reconcile.repairs],
      ["gorb_reconcile_failures_total", "Repairs the kernel refused.", reconcile.failures],
    ];
    for (const [name, help, value] of counters) lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`, `${name} ${formatValue(value)}`);
  }
  if (bgp !== undefined) {
    const vips = bgp.vips.map((v) => ({ labels: labelText({ vip: v.vip, prefix: v.prefix }), row: v }));
    type Vip = BgpStatus["vips"][number];
    yield* family<Vip>({ name: "gorb_bgp_vip_wanted", help: "1 while gorb wants this node to announce the VIP over BGP, else 0.", type: "gauge", value: (v) => (v.wanted ? 1 : 0) }, vips);
    yield* family<Vip>({ name: "gorb_bgp_vip_confirmed", help: "1 while BIRD has the VIP's route as its best for the prefix (read back with show route), else 0.", type: "gauge", value: (v) => (v.confirmed ? 1 : 0) }, vips);
    lines.push("# HELP gorb_bgp_speaker_up 1 while BIRD's control socket answers, else 0.", "# TYPE gorb_bgp_speaker_up gauge", `gorb_bgp_speaker_up ${bgp.speaker.reachable ? 1 : 0}`);
  }
  if (sysctls !== undefined) {
    const name = "gorb_ipvs_sysctl";
    lines.push(`# HELP ${name} IPVS sysctls of gorb's network namespace (net.ipv4.vs.NAME), as read at start.`, `# TYPE ${name} gauge`);
    for (const [key, value] of Object.entries(sysctls)) if (value !== null) lines.push(`${name}${labelText({ name: key })} ${formatValue(value)}`);
  }
  if (lines.length > 0) yield `${lines.join("\n")}\n`;
}

/** The whole /metrics body at once (tests, small tables). */
export function renderMetrics(services: readonly ServiceDetail[], reconcile?: ReconcileCounters, bgp?: BgpStatus): string {
  let text = "";
  for (const chunk of metricsChunks(services, reconcile, bgp)) text += chunk;
  return text;
}

/**
 * The /metrics body as a stream: one chunk per pull, so the event loop serves other requests (and health
 * checks) between chunks of a large scrape.
 */
export function metricsStream(
  services: readonly ServiceDetail[],
  reconcile?: ReconcileCounters,
  bgp?: BgpStatus,
  sysctls?: Readonly<Record<string, number | null>>,
): ReadableStream<Uint8Array> {
  const chunks = metricsChunks(services, reconcile, bgp, sysctls);
  const encoder = new TextEncoder();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      // Let other work run before each chunk: a scrape never holds the loop for more than one chunk's render.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const next = chunks.next();
      if (next.done === true) controller.close();
      else controller.enqueue(encoder.encode(next.value));
    },
  });
}
