import { describe, expect, test } from "bun:test";
import { createApp } from "../../../src/api/app.ts";
import { escapeLabel, metricsChunks, renderMetrics } from "../../../src/api/metrics.ts";
import { makeGorb } from "../core/fakes.ts";

async function scrape(app: ReturnType<typeof createApp>): Promise<{ status: number; type: string | null; lines: string[] }> {
  const reply = await app.handle(new Request("http://gorb.test/metrics"));
  return { status: reply.status, type: reply.headers.get("content-type"), lines: (await reply.text()).split("\n") };
}

/** The sample lines of one metric name. */
function samples(lines: readonly string[], name: string): string[] {
  return lines.filter((l) => l.startsWith(`${name}{`));
}

describe("GET /metrics", () => {
  test("the original's six gauges with its metric and label names; uptime really in seconds", async () => {
    const { gorb, health, logger } = makeGorb();
    const app = createApp({ gorb, logger });
    await gorb.createService("web", { port: 80 });
    await gorb.createBackend("web", "b1", { host: "10.1.0.1", weight: 10 });
    health.report("web", "b1", "up", { uptimeSeconds: 90 });
    await gorb.idle();
    const { status, type, lines } = await scrape(app);
    expect([status, type]).toEqual([200, "text/plain; version=0.0.4; charset=utf-8"]);
    expect(samples(lines, "gorb_service_health")).toEqual(['gorb_service_health{name="web",host="",port="80",protocol="tcp"} 1']);
    expect(samples(lines, "gorb_service_backends")).toEqual(['gorb_service_backends{name="web",host="",port="80",protocol="tcp"} 1']);
    const b = '{service_name="web",name="b1",host="10.1.0.1",port="80"}';
    expect(samples(lines, "gorb_service_backend_health")).toEqual([`gorb_service_backend_health${b} 1`]);
    expect(samples(lines, "gorb_service_backend_status")).toEqual([`gorb_service_backend_status${b} 0`]);
    expect(samples(lines, "gorb_service_backend_weight")).toEqual([`gorb_service_backend_weight${b} 10`]);
    expect(samples(lines, "gorb_service_backend_uptime_seconds")).toEqual([`gorb_service_backend_uptime_seconds${b} 90`]);
    expect(samples(lines, "gorb_service_backend_check_duration_seconds")).toEqual([
      `gorb_service_backend_check_duration_seconds${b} 0.003`,
    ]);
    expect(lines).toContain("# TYPE gorb_service_backend_weight gauge");
    expect(lines).toContain("# TYPE gorb_service_connections_total counter");
    expect(samples(lines, "gorb_service_connections_total")).toEqual([
      'gorb_service_connections_total{name="web",host="",port="80",protocol="tcp"} 0',
    ]);
    expect(samples(lines, "gorb_service_backend_active_connections")).toEqual([`gorb_service_backend_active_connections${b} 0`]);
  });

  test("a down backend: status 1, weight 0", async () => {
    const { gorb, health, logger } = makeGorb();
    const app = createApp({ gorb, logger });
    await gorb.createService("web", { host: "10.0.0.1", port: 80 });
    await gorb.createBackend("web", "b1", { host: "10.1.0.1" });
    health.report("web", "b1", "down");
    await gorb.idle();
    const { lines } = await scrape(app);
    expect(samples(lines, "gorb_service_backend_status")[0]?.endsWith(" 1")).toBe(true);
    expect(samples(lines, "gorb_service_backend_weight")[0]?.endsWith(" 0")).toBe(true);
    expect(samples(lines, "gorb_service_backend_configured_weight")[0]?.endsWith(" 100")).toBe(true);
  });

  test("a fwmark service's series carry its mark: it has no address, port or protocol of its own", async () => {
    const { gorb, logger } = makeGorb();
    const app = createApp({ gorb, logger });
    await gorb.createService("marked", { fwmark: 7, method: "rr" });
    await gorb.createService("web", { host: "10.0.0.1", port: 80 });
    const lines = samples((await scrape(app)).lines, "gorb_service_health");
    expect(lines).toEqual(['gorb_service_health{name="marked",host="",port="0",protocol="",fwmark="7"} 1', 'gorb_service_health{name="web",host="10.0.0.1",port="80",protocol="tcp"} 1']);
  });

  test("series of deleted services and backends are gone from the next scrape", async () => {
    const { gorb, logger } = makeGorb();
    const app = createApp({ gorb, logger });
    await gorb.createService("web", { host: "10.0.0.1", port: 80 });
    await gorb.createBackend("web", "b1", { host: "10.1.0.1" });
    await gorb.createBackend("web", "b2", { host: "10.1.0.2" });
    expect(samples((await scrape(app)).lines, "gorb_service_backend_weight")).toHaveLength(2);
    await gorb.deleteBackend("web", "b1");
    const after = (await scrape(app)).lines;
    expect(samples(after, "gorb_service_backend_weight").map((l) => l.includes('name="b2"'))).toEqual([true]);
    await gorb.deleteService("web");
    const none = (await scrape(app)).lines;
    // Only gorb's own totals are left.
    expect(none.filter((l) => l !== "" && !l.startsWith("#") && !l.startsWith("gorb_reconcile_"))).toEqual([]);
  });

  test("label values are escaped", () => {
    expect(escapeLabel('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
    const text = renderMetrics([
      {
        id: 'we"b',
        options: {
          host: "h\\1",
          port: 80,
          protocol: "tcp",
          method: "wrr",
          flags: "",
          persistent: false,
          persistence_timeout: 0,
          persistence_netmask: 32,
          fwmark: 0,
          family: "inet",
          pe: "",
          one_packet: false,
          panic_threshold: 0,
          announce_min_healthy: 1,
          hash_fallback: true,
          sorry_server: null,
          quorum: 0,
          hysteresis: 0,
          quorum_up: "",
          quorum_down: "",
          address: "10.0.0.1",
        },
        health: 1,
        backends: [],
        stats: null,
        backend_details: [],
      },
    ]);
    expect(text).toContain('gorb_service_health{name="we\\"b",host="h\\\\1",port="80",protocol="tcp"} 1\n');
    expect(text.endsWith("\n")).toBe(true);
  });
});

describe("GET /metrics of a large table", () => {
  test("is streamed in bounded chunks whose concatenation is the whole body", async () => {
    const { gorb, logger } = makeGorb();
    const app = createApp({ gorb, logger });
    await gorb.createService("big", { host: "10.9.0.1", port: 80 });
    for (let i = 0; i < 300; i++) await gorb.createBackend("big", `b${i}`, { host: `10.1.${Math.floor(i / 250)}.${(i % 250) + 1}` });
    const whole = renderMetrics(await gorb.listServicesDetail(), gorb.reconcileCounters());
    const chunks = [...metricsChunks(await gorb.listServicesDetail(), gorb.reconcileCounters())];
    expect(chunks.length).toBeGreaterThan(1);
    expect(Math.max(...chunks.map((c) => c.split("\n").length))).toBeLessThanOrEqual(2002);
    const reply = await app.handle(new Request("http://gorb.test/metrics"));
    const body = await reply.text();
    expect(body.split("\n").filter((l) => l.startsWith("gorb_service_backend_weight{")).length).toBe(300);
    expect(body).toBe(whole);
  });
});

describe("GET /metrics with a shared store", () => {
  test("the node label is escaped as the text format says, not as JSON (a host name with a tab or a quote)", async () => {
    // JSON.stringify wrote "lb\t1": \t is no escape of the Prometheus text format (only \\, \" and \n are), so a
    // parser refused the scrape or read a backslash and a t.
    const stack = makeGorb();
    const cluster = {
      node: 'lb\t"1"\\',
      committedRevision: () => 7,
      status: () => ({ state: "ok", appliedRevision: 7, changeRevision: 7, lastError: null, relists: 2, failed: [] }),
      waitApplied: () => Promise.resolve(true),
      members: () => Promise.resolve([]),
    };
    const { lines } = await scrape(createApp({ gorb: stack.gorb, logger: stack.logger, cluster }));
    expect(samples(lines, "gorb_store_up")).toEqual(['gorb_store_up{node="lb\t\\"1\\"\\\\"} 1']);
    expect(samples(lines, "gorb_store_relists_total")).toEqual(['gorb_store_relists_total{node="lb\t\\"1\\"\\\\"} 2']);
  });
});
