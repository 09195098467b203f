/**
 * The status query (Gorb.listServicesStatus, what GET /service as text renders) against the full views of
 * GET /service?detail=true: rendered by the same code, the two tables are the same text, for a table with every
 * state the table shows: up, down with its message, unchecked, partial health, maintenance, draining and drained,
 * a sorry server serving, a service without quorum, one the kernel does not have, fwmark services (IPv4 and IPv6), an IPv6 service, UDP, tunnels,
 * and kernel counters. The host has no IPVS: the counters come from a stand-in driver (the memory driver with
 * connection counts and rates set per destination); the rig's kernel tests read real ones.
 */
import { describe, expect, test } from "bun:test";
import { createApp } from "../../../src/api/app.ts";
import type { EventPayloads, GorbEvent } from "../../../src/core/events.ts";
import type { ServiceStatusView } from "../../../src/core/views.ts";
import { MemoryIpvsDriver } from "../../../src/ipvs/memory-driver.ts";
import type { Destination, ServiceKey, ServiceWithDestinations } from "../../../src/ipvs/types.ts";
import { draftStatusText, statusText } from "../../../src/render/status.ts";
import { makeGorb, type TestStack } from "./fakes.ts";

/**
 * The memory driver with counters: every service and destination of a table read gets connection counts and rates
 * from its position; the destination 10.1.0.4:80 keeps two connections, so its drain stays open.
 */
class CountingDriver extends MemoryIpvsDriver {
  reads = 0;
  override async listDestinations(service: ServiceKey): Promise<Destination[]> {
    return (await super.listDestinations(service)).map((d) => (d.address === "10.1.0.4" ? { ...d, activeConns: 2 } : d));
  }
  override async snapshot(): Promise<ServiceWithDestinations[]> {
    this.reads++;
    return (await super.snapshot()).map((entry, i) => ({
      service: { ...entry.service, stats: { ...entry.service.stats, conns: 1000 * i, cps: 1500 * i, inBps: 2_500_000 * i, outBps: 7 * i } },
      destinations: entry.destinations.map((d, j) => ({
        ...d,
        activeConns: j * 3,
        inactiveConns: j,
        stats: { ...d.stats, conns: j, cps: j * 1234.5, inBps: 10 ** (j + 2), outBps: 99.5 * j },
      })),
    }));
  }
}

function drainEvent(s: TestStack, backend: string, phase: EventPayloads["backend.drain"]["phase"]): Promise<unknown> {
  return new Promise((resolve) => {
    const sub = s.gorb.events.subscribe((event: GorbEvent) => {
      if (event.type !== "backend.drain" || event.data.backend !== backend || event.data.phase !== phase) return;
      sub.unsubscribe();
      resolve(event.data);
    });
  });
}

async function richTable(): Promise<TestStack & { counting: CountingDriver }> {
  const counting = new CountingDriver();
  // A fixed wall clock: a drain's seconds left do not change between the two reads compared.
  const s = makeGorb({ driver: counting, drainPollMs: 5, now: () => 1_780_000_000_000 });
  const { gorb, health } = s;
  await gorb.createService("web", { host: "10.0.0.1", port: 80, method: "wlc" });
  await gorb.createBackend("web", "up", { host: "10.1.0.1", pulse: { type: "tcp", interval: "1s" } });
  await gorb.createBackend("web", "down", { host: "10.1.0.2", pulse: { type: "tcp", interval: "1s" } });
  await gorb.createBackend("web", "maint", { host: "10.1.0.3", maintenance: true, pulse: { type: "tcp", interval: "1s" } });
  await gorb.createBackend("web", "draining", { host: "10.1.0.4", pulse: { type: "tcp", interval: "1s" } });
  await gorb.createBackend("web", "drained", { host: "10.1.0.5", weight: 7, pulse: { type: "tcp", interval: "1s" } });
  await gorb.createBackend("web", "new", { host: "10.1.0.6", port: 8080 });
  await gorb.createBackend("web", "half", { host: "10.1.0.7", method: "dr", pulse: { type: "tcp", interval: "1s" } });
  health.report("web", "up", "up");
  health.report("web", "down", "down");
  health.report("web", "maint", "up");
  health.report("web", "draining", "up");
  health.report("web", "drained", "up");
  health.report("web", "half", "up", { samples: 4, samplesOk: 2 });

  await gorb.createService("sorry", { host: "10.0.0.2", port: 443, sorry_server: { host: "10.9.0.1", port: 8443 } });
  await gorb.createBackend("sorry", "a", { host: "10.2.0.1", pulse: { type: "tcp", interval: "1s" } });
  health.report("sorry", "a", "down");

  await gorb.createService("quorum", { host: "10.0.0.3", port: 53, protocol: "udp", method: "rr", quorum: 2 });
  await gorb.createBackend("quorum", "q1", { host: "10.3.0.1", pulse: { type: "tcp", interval: "1s" } });
  await gorb.createBackend("quorum", "q2", { host: "10.3.0.2", pulse: { type: "tcp", interval: "1s" } });
  health.report("quorum", "q1", "up");
  health.report("quorum", "q2", "down");

  await gorb.createService("mark4", { fwmark: 7, method: "sh" });
  await gorb.createBackend("mark4", "t1", { host: "10.4.0.1", port: 80, method: "tunnel", tunnel_type: "gue", tunnel_port: 5555 });
  await gorb.createBackend("mark4", "t2", { host: "10.4.0.2", port: 80, method: "tunnel", tunnel_type: "gre" });
  await gorb.createBackend("mark4", "t3", { host: "10.4.0.3", port: 80, method: "ipip" });
  await gorb.createService("mark6", { fwmark: 9, family: "inet6" });
  await gorb.createBackend("mark6", "v6", { host: "2001:db8::20", port: 80 });
  await gorb.createService("six", { host: "2001:db8::1", port: 80 });
  await gorb.createBackend("six", "s1", { host: "2001:db8::10", port: 8080 });
  await gorb.createService("empty", { host: "10.0.0.9", port: 80 });
  // More destinations than the status query looks up by scanning: its by-key lookup, each with its own counters.
  await gorb.createService("big", { host: "10.0.0.10", port: 80 });
  for (let i = 0; i < 20; i++) await gorb.createBackend("big", `b${String(i).padStart(2, "0")}`, { host: `10.5.0.${20 - i}`, port: 8000 + (i % 3) });
  await gorb.idle();

  await gorb.drainBackend("web", "draining", { timeout: "1h" });
  const drained = drainEvent(s, "drained", "drained");
  await gorb.drainBackend("web", "drained", { then: "keep", timeout: "1h" });
  await drained;
  await gorb.idle();
  // A service the kernel lost and the reconcile cannot put back (in_kernel false): the kernel refuses its add.
  await gorb.createService("lost", { host: "10.0.0.11", port: 80 });
  await gorb.createBackend("lost", "l1", { host: "10.6.0.1" });
  await gorb.idle();
  const lost = counting.peek().find((e) => "address" in e.service.key && e.service.key.address === "10.0.0.11");
  if (lost === undefined) throw new Error("the lost service is not in the kernel to begin with");
  await counting.deleteService(lost.service.key);
  counting.failNext("add-service", "ENOMEM");
  await gorb.reconcile();
  return { ...s, counting };
}

describe("the status query", () => {
  test("renders the same table as the full views, for every state the table shows", async () => {
    const s = await richTable();
    const fromViews = statusText(await s.gorb.listServicesDetail());
    const fromStatus = statusText(await s.gorb.listServicesStatus());
    expect(fromStatus).toBe(fromViews);
    // The table really holds what was set up (so the comparison above compares something).
    for (const part of [
      "NAME",
      "tcp 10.0.0.1:80",
      "udp 10.0.0.3:53",
      "fwmark 7",
      "fwmark 9 inet6",
      "tcp [2001:db8::1]:80",
      "[2001:db8::10]:8080",
      "gue:5555",
      "gre",
      "tunnel",
      "up maint",
      "up draining 3600s>remove",
      "up drained",
      "connection refused",
      "SORRY 10.9.0.1:8443",
      "NO QUORUM",
      "0.50",
      "unchecked",
      "2.5M",
      "1.2k",
      "10.5.0.1:8001",
      "57/19",
    ]) {
      expect(fromStatus).toContain(part);
    }
    // The service the kernel does not have says so; those it has do not.
    expect(fromStatus).toMatch(/^lost +tcp 10\.0\.0\.11:80 +wrr +1\.00 +1 unchecked, NOT IN KERNEL +0\/0 +- +- +-$/m);
    expect(fromStatus.match(/NOT IN KERNEL/g)?.length).toBe(1);
    await s.gorb.close();
  });

  test("reads the kernel once; without a kernel read the counters are dashes in both", async () => {
    const s = await richTable();
    const before = s.counting.reads;
    await s.gorb.listServicesStatus();
    expect(s.counting.reads).toBe(before + 1);
    s.counting.failNext("list-services", "EIO");
    const fromStatus = statusText(await s.gorb.listServicesStatus());
    s.counting.failNext("list-services", "EIO");
    expect(fromStatus).toBe(statusText(await s.gorb.listServicesDetail()));
    expect(fromStatus).toMatch(/^└ up +10\.1\.0\.1:80 +nat +100 +100 +1\.00 +up +- +- +- +-$/m);
    expect(s.logger.lines.filter((l) => l.startsWith("warn cannot read the IPVS table")).length).toBe(2);
    await s.gorb.close();
  });

  test("GET /service as text is the status query's table", async () => {
    const s = await richTable();
    const app = createApp({ gorb: s.gorb, logger: s.logger });
    const reply = await app.handle(new Request("http://gorb.test/service?detail=true", { headers: { accept: "text/plain" } }));
    expect(reply.headers.get("content-type")).toStartWith("text/plain");
    expect(await reply.text()).toBe(statusText(await s.gorb.listServicesDetail()));
    await s.gorb.close();
  });

  test("drafted before the counters are in and finished after, the table is the one of the finished views", async () => {
    const s = await richTable();
    const whole = await s.gorb.listServicesStatus();
    // The same views as the daemon has them when it drafts: every counter still null.
    const views: ServiceStatusView[] = whole.map((v) => ({
      ...v,
      stats: null,
      backend_details: v.backend_details.map((b) => ({ ...b, stats: null, active_conns: null, inactive_conns: null })),
    }));
    const table = draftStatusText(views);
    // Then the read comes back: the counters go into those same views, as Queries.readServicesStatus fills them.
    whole.forEach((v, i) => {
      const view = views[i];
      if (view === undefined) return;
      Object.assign(view, { stats: v.stats });
      v.backend_details.forEach((b, j) => Object.assign(view.backend_details[j] ?? {}, { stats: b.stats, active_conns: b.active_conns, inactive_conns: b.inactive_conns }));
    });
    const text = table.finish();
    expect(text).toBe(statusText(whole));
    // Counters that widen their columns (57/19, 2.5M) were only known at finish.
    expect(text).toContain("57/19");
    expect(text).toContain("2.5M");
    await s.gorb.close();
  });

  test("the two steps of the status query: the views first, their counters once the kernel read is back", async () => {
    const s = await richTable();
    const read = await s.gorb.readServicesStatus();
    await read.counters;
    expect(statusText(read.views)).toBe(statusText(await s.gorb.listServicesDetail()));
    await s.gorb.close();
  });
});
