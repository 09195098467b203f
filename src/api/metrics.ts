/**
 * GET /metrics in the Prometheus text format (0.0.4), recomputed from gorb's state and one IPVS table read
 * per scrape, so a deleted service or backend disappears from the next scrape (the original kept exporting
 * stale series until restart).
 *
 * The original's six gauges keep their names and labels:
 *   gorb_service_health, gorb_service_backends                      {name, host, port, protocol}
 *   gorb_service_backend_health, _status, _weight, _uptime_seconds  {service_name, name, host, port}
 * where `host` is the host option as the client sent it ("" for a defaulted host), `_weight` is the weight
 * IPVS has (effective), `_status` is 0 up / 1 down, and `_uptime_seconds` is really seconds (the original's
 * was off by 1e9). gorb adds the IPVS counters and rates, connection counts, the configured weight, the
 * duration of the last health check, gorb_service_panic (1 while a service is in panic mode: more than its
 * panic_threshold percent of backends down, weights kept), and the reconcile totals (gorb_reconcile_runs_total,
 * gorb_reconcile_repairs_total: differences between the kernel and gorb's state repaired, e.g. a service
 * deleted with ipvsadm; gorb_reconcile_failures_total: repairs the kernel refused).
 */
import type { ReconcileCounters } from "../core/gorb.ts";
import type { ServiceDetail, StatsView } from "../core/views.ts";

type Labels = Readonly<Record<string, string>>;

interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: "gauge" | "counter";
  readonly samples: { labels: Labels; value: number }[];
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

function renderFamily(family: Family): string {
  const lines = [`# HELP ${family.name} ${family.help}`, `# TYPE ${family.name} ${family.type}`];
  for (const sample of family.samples) {
    const labels = Object.entries(sample.labels)
      .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
      .join(",");
    lines.push(`${family.name}${labels === "" ? "" : `{${labels}}`} ${formatValue(sample.value)}`);
  }
  return lines.join("\n");
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

/** The /metrics body for the services `gorb.listServicesDetail()` returned, and the reconcile totals. */
export function renderMetrics(services: readonly ServiceDetail[], reconcile?: ReconcileCounters): string {
  const family = (name: string, help: string, type: "gauge" | "counter" = "gauge"): Family => ({
    name,
    help,
    type,
    samples: [],
  });
  const serviceHealth = family("gorb_service_health", "Health of the service: mean health of its checked backends (1 when none).");
  const serviceBackends = family("gorb_service_backends", "Number of backends of the service.");
  const servicePanic = family(
    "gorb_service_panic",
    "1 while the service is in panic mode (more than panic_threshold percent of its backends down: weights kept), else 0.",
  );
  const backendHealth = family("gorb_service_backend_health", "Health of the backend: fraction of recent checks that passed.");
  const backendStatus = family("gorb_service_backend_status", "Status of the backend: 0 up (or not checked yet), 1 down.");
  const backendWeight = family("gorb_service_backend_weight", "Weight IPVS has for the backend (configured weight scaled by health).");
  const backendUptime = family("gorb_service_backend_uptime_seconds", "Seconds the backend has been continuously up.");
  const backendConfigured = family("gorb_service_backend_configured_weight", "Weight configured for the backend.");
  const checkDuration = family("gorb_service_backend_check_duration_seconds", "Duration of the last health check of the backend.");
  const active = family("gorb_service_backend_active_connections", "Active connections to the backend (IPVS).");
  const inactive = family("gorb_service_backend_inactive_connections", "Inactive connections to the backend (IPVS).");
  const persistent = family("gorb_service_backend_persistent_connections", "Persistence templates of the backend (IPVS).");
  const serviceStats = STATS.map((s) => ({ spec: s, family: family(`gorb_service_${s.suffix}`, s.help, s.type) }));
  const backendStats = STATS.map((s) => ({ spec: s, family: family(`gorb_service_backend_${s.suffix}`, s.help, s.type) }));

  for (const service of services) {
    const o = service.options;
    const labels: Labels = { name: service.id, host: o.host, port: String(o.port), protocol: o.protocol };
    serviceHealth.samples.push({ labels, value: service.health });
    serviceBackends.samples.push({ labels, value: service.backends.length });
    servicePanic.samples.push({ labels, value: service.panic === true ? 1 : 0 });
    const stats = service.stats;
    if (stats !== null) {
      for (const { spec, family: f } of serviceStats) f.samples.push({ labels, value: stats[spec.field] });
    }
    for (const backend of service.backend_details) {
      const b: Labels = {
        service_name: service.id,
        name: backend.id,
        host: backend.options.host,
        port: String(backend.options.port),
      };
      backendHealth.samples.push({ labels: b, value: backend.metrics.health });
      backendStatus.samples.push({ labels: b, value: backend.metrics.status });
      backendWeight.samples.push({ labels: b, value: backend.effective_weight });
      backendUptime.samples.push({ labels: b, value: backend.metrics.uptime });
      backendConfigured.samples.push({ labels: b, value: backend.options.weight });
      if (backend.metrics.last_check_ms !== null) {
        checkDuration.samples.push({ labels: b, value: backend.metrics.last_check_ms / 1000 });
      }
      if (backend.active_conns !== null) active.samples.push({ labels: b, value: backend.active_conns });
      if (backend.inactive_conns !== null) inactive.samples.push({ labels: b, value: backend.inactive_conns });
      if (backend.persistent_conns !== null) persistent.samples.push({ labels: b, value: backend.persistent_conns });
      const bstats = backend.stats;
      if (bstats !== null) {
        for (const { spec, family: f } of backendStats) f.samples.push({ labels: b, value: bstats[spec.field] });
      }
    }
  }
  const families = [
    serviceHealth,
    serviceBackends,
    backendUptime,
    backendHealth,
    backendStatus,
    backendWeight,
    backendConfigured,
    checkDuration,
    active,
    inactive,
    persistent,
    servicePanic,
    ...serviceStats.map((s) => s.family),
    ...backendStats.map((s) => s.family),
  ];
  if (reconcile !== undefined) {
    const counter = (name: string, help: string, value: number): Family => ({ ...family(name, help, "counter"), samples: [{ labels: {}, value }] });
    families.push(
      counter("gorb_reconcile_runs_total", "Reconciles of the kernel table with gorb's state (start-up, periodic, on demand).", reconcile.runs),
      counter("gorb_reconcile_repairs_total", "Differences between the kernel table and gorb's state that a reconcile repaired.", reconcile.repairs),
      counter("gorb_reconcile_failures_total", "Repairs the kernel refused.", reconcile.failures),
    );
  }
  return `${families.map(renderFamily).join("\n")}\n`;
}
