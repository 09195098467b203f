/**
 * Declarative apply: the planning table (create / update in place / recreate / delete, ownership), conflicts
 * and errors that reject a set whole with its path, and running a plan through Gorb (SET in place, nothing
 * written twice, API-created and foreign services never touched, ownership surviving a restart).
 */
import { describe, expect, test } from "bun:test";
import type { ApplyReport } from "../../../src/core/apply.ts";
import { ConflictError, ValidationError } from "../../../src/core/errors.ts";
import type { DeclaredService } from "../../../src/core/plan.ts";
import { MemoryIpvsDriver } from "../../../src/ipvs/memory-driver.ts";
import { NO_FLAGS, type ServiceKey } from "../../../src/ipvs/types.ts";
import { makeGorb } from "./fakes.ts";
import { MemoryStateStore } from "./memory-store.ts";

/** A declared service from plain objects: { id: { ...fields, backends: { id: fields } } }. */
function declare(set: Record<string, Record<string, unknown>>): DeclaredService[] {
  return Object.entries(set).map(([id, { backends, ...fields }]) => ({
    id,
    fields: new Map(Object.entries(fields)),
    backends: Object.entries((backends ?? {}) as Record<string, Record<string, unknown>>).map(([bid, b]) => ({
      id: bid,
      fields: new Map(Object.entries(b)),
    })),
  }));
}

/** "action target: details" per change. */
function lines(report: ApplyReport): string[] {
  return report.changes.map(
    (c) => `${c.action} ${c.backend === null ? c.service : `${c.service}/${c.backend}`}: ${c.details.join("; ")}`,
  );
}

const FILE = {
  web: {
    host: "10.0.0.1",
    port: 80,
    method: "rr",
    backends: { b1: { host: "10.1.0.1", weight: 50 }, b2: { host: "10.1.0.2" } },
  },
  dns: { host: "10.0.0.53", port: 53, protocol: "udp", backends: { r1: { host: "10.1.0.53" } } },
  old: { host: "10.0.0.9", port: 9000 },
};

/** A gorb with FILE applied, an API-created service "manual", and a foreign IPVS service. */
async function applied() {
  const driver = new MemoryIpvsDriver();
  const store = new MemoryStateStore();
  const stack = makeGorb({ driver, store });
  expect((await stack.gorb.apply(declare(FILE))).ok).toBe(true);
  await stack.gorb.createService("manual", { host: "10.0.0.2", port: 80 });
  await stack.gorb.createBackend("web", "extra", { host: "10.1.0.77" }); // added over the API to a file service
  await driver.addService({ key: { family: "inet", protocol: "tcp", address: "10.0.0.200", port: 80 }, scheduler: "rr", flags: NO_FLAGS, timeout: 0, netmask: 32, pe: null });
  driver.clearWrites();
  return { ...stack, driver, store };
}

describe("planning", () => {
  test("a first apply creates everything, services before their backends", async () => {
    const { gorb, driver } = makeGorb();
    const plan = await gorb.apply(declare(FILE), { dryRun: true });
    expect(lines(plan)).toEqual([
      "create web: tcp 10.0.0.1:80, rr, 2 backends",
      "create dns: udp 10.0.0.53:53, wrr, 1 backend",
      "create old: tcp 10.0.0.9:9000, wrr, 0 backends",
      "create web/b1: 10.1.0.1:80, nat, weight 50",
      "create web/b2: 10.1.0.2:80, nat, weight 100",
      "create dns/r1: 10.1.0.53:53, nat, weight 100",
    ]);
    expect(plan.changes.every((c) => c.status === "planned")).toBe(true);
    expect(driver.writes()).toEqual([]);
    expect(gorb.listServices()).toEqual([]);
  });

  test("the same set again changes nothing", async () => {
    const { gorb, driver } = await applied();
    expect((await gorb.apply(declare(FILE))).changes).toEqual([]);
    expect(driver.writes()).toEqual([]);
  });

  test("an IPv6 address spelled another way (zeros, upper case) changes nothing; another address still does", async () => {
    const { gorb, driver } = makeGorb();
    const v6 = (service: string, backend: string) => declare({ web6: { host: service, port: 80, backends: { b1: { host: backend } } } });
    expect((await gorb.apply(v6("2001:db8::1", "2001:db8::10"))).ok).toBe(true);
    driver.clearWrites();
    expect((await gorb.apply(v6("2001:0DB8:0:0::1", "2001:DB8:0::0010"))).changes).toEqual([]);
    expect(driver.writes()).toEqual([]);
    // What changes is shown as the file spells it.
    expect(lines(await gorb.apply(v6("2001:0DB8:0:0::1", "2001:DB8::11"), { dryRun: true }))).toEqual([
      'recreate web6/b1: host: "2001:db8::10" -> "2001:DB8::11"; [2001:db8::10]:80 -> [2001:db8::11]:80: a new IPVS destination',
    ]);
  });

  test("a new address literal is one host line: the address it resolves to is not said twice", async () => {
    const { gorb } = await applied();
    const moved = declare({ ...FILE, web: { ...FILE.web, host: "10.0.0.3" } });
    const changes = lines(await gorb.apply(moved, { dryRun: true })).filter((l) => l.startsWith("recreate"));
    expect(changes).toEqual([
      'recreate web: host: "10.0.0.1" -> "10.0.0.3"; tcp 10.0.0.1:80 -> tcp 10.0.0.3:80: a new IPVS service',
    ]);
  });

  test("every kind of change, each in the order it must run; what the file does not own is kept", async () => {
    const { gorb } = await applied();
    const next = declare({
      // web: scheduler changes in place; b1's weight changes in place; b2 moves (recreate); b3 is new;
      // "extra" (added over the API) is kept although the file does not list it.
      web: {
        host: "10.0.0.1",
        port: 80,
        method: "wrr",
        backends: { b1: { host: "10.1.0.1", weight: 60 }, b2: { host: "10.1.0.2", port: 8080 }, b3: { host: "10.1.0.3" } },
      },
      // dns: its port changes, so it is a new IPVS service (recreate) and its backends are added again.
      dns: { host: "10.0.0.53", port: 5353, protocol: "udp", backends: { r1: { host: "10.1.0.53" } } },
      // old: no longer declared -> deleted. manual: created over the API, declared now -> taken over.
      manual: { host: "10.0.0.2", port: 80 },
    });
    expect(lines(await gorb.apply(next, { dryRun: true }))).toEqual([
      "delete old: tcp 10.0.0.9:9000, wrr, 0 backends; no longer declared",
      "recreate dns: port: 53 -> 5353; udp 10.0.0.53:53 -> udp 10.0.0.53:5353: a new IPVS service",
      "recreate web/b2: port: 80 -> 8080; 10.1.0.2:80 -> 10.1.0.2:8080: a new IPVS destination",
      'update web: method: "rr" -> "wrr"',
      "update manual: taken over by the file (it was created over the API)",
      "update web/b1: weight: 50 -> 60",
      "create web/b3: 10.1.0.3:80, nat, weight 100",
      "create dns/r1: 10.1.0.53:5353, nat, weight 100; re-added to the re-created service",
    ]);
  });

  test("a set that reuses a key taken by something kept is refused whole, naming the path", async () => {
    const { gorb, driver } = await applied();
    const cases: [Record<string, Record<string, unknown>>, string][] = [
      [{ a: { host: "10.0.0.5", port: 80 }, b: { host: "10.0.0.5", port: 80 } }, "services.b: tcp 10.0.0.5:80 is also the address of services.a"],
      [{ x: { host: "10.0.0.2", port: 80 } }, 'services.x: tcp 10.0.0.2:80 is already used by service "manual" (created over the API)'],
      [{ x: { host: "10.0.0.200", port: 80 } }, "services.x: tcp 10.0.0.200:80 is already used by a service in IPVS that gorb does not manage"],
      [
        { ...FILE, web: { ...FILE.web, backends: { b1: { host: "10.1.0.77" } } } },
        'services.web.backends.b1: 10.1.0.77:80 is also the address of backend "extra" (created over the API)',
      ],
      [
        { ...FILE, web: { ...FILE.web, backends: { b1: { host: "10.1.0.1" }, b9: { host: "10.1.0.1" } } } },
        "services.web.backends.b9: 10.1.0.1:80 is also the address of services.web.backends.b1",
      ],
    ];
    for (const [set, message] of cases) {
      const error = await gorb.apply(declare(set)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConflictError);
      expect((error as Error).message).toBe(message);
    }
    expect(driver.writes()).toEqual([]);
  });

  test("bad fields and names that do not resolve are refused whole with their path", async () => {
    const { gorb, driver } = await applied();
    const cases: [Record<string, Record<string, unknown>>, string][] = [
      [{ web: { port: 80, host: "nowhere.example" } }, 'services.web.host: cannot resolve "nowhere.example": getaddrinfo ENOTFOUND nowhere.example'],
      [{ web: { port: 80, host: "10.0.0.1", backends: { b1: { host: "2001:db8::1" } } } }, 'services.web.backends.b1.host: "2001:db8::1" is an inet6 address, expected inet'],
      [{ web: { port: 80, host: "10.0.0.1", backends: { b1: { host: "10.1.0.1", pulse: { interval: "soon" } } } } }, 'services.web.backends.b1.pulse.interval: invalid interval "soon", use e.g. 500ms, 5s, 1m, 2h'],
      [{ "odd id": { port: 0 } }, 'services["odd id"].port: must be 1-65535, got 0'],
    ];
    for (const [set, message] of cases) {
      const error = await gorb.apply(declare({ ...FILE, ...set })).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as Error).message).toBe(message);
    }
    expect(driver.writes()).toEqual([]);
  });
});

describe("applying", () => {
  test("in-place changes are SET_SERVICE / SET_DEST; only identity changes delete and add", async () => {
    const { gorb, driver } = await applied();
    const next = declare({
      ...FILE,
      web: { ...FILE.web, method: "wrr", backends: { b1: { host: "10.1.0.1", weight: 60 }, b2: { host: "10.1.0.2", port: 8080 } } },
    });
    const report = await gorb.apply(next);
    expect(report.ok).toBe(true);
    expect(driver.writes().map((w) => `${w.op}${"destination" in w ? ` ${w.destination.address}:${w.destination.port}` : ""}`)).toEqual([
      "update-service",
      "delete-destination 10.1.0.2:80",
      "add-destination 10.1.0.2:8080",
      "update-destination 10.1.0.1:80",
    ]);
    expect((await gorb.getService("web")).options.method).toBe("wrr");
    expect((await gorb.getBackend("web", "b1")).options.weight).toBe(60);
    // The backend added over the API is still there.
    expect((await gorb.getService("web")).backends).toEqual(["b1", "b2", "extra"]);
  });

  test("an apply logs one summary line at info, each created service at debug; a request's create is at info", async () => {
    const { gorb, logger } = makeGorb();
    await gorb.apply(declare(FILE));
    const info = logger.lines.filter((l) => l.startsWith("info "));
    expect(info).toEqual(["info applied the declarative set: 6 change(s) done, 0 failed"]);
    expect(logger.lines).toContain('debug created service "web": tcp 10.0.0.1:80 (rr)');
    await gorb.createService("manual", { host: "10.0.0.2", port: 80 });
    expect(logger.lines.at(-1)).toBe('info created service "manual": tcp 10.0.0.2:80 (wrr)');
  });

  test("an empty set deletes what the file created and nothing else", async () => {
    const { gorb, driver } = await applied();
    const report = await gorb.apply([]);
    expect(lines(report)).toEqual([
      "delete web: tcp 10.0.0.1:80, rr, 3 backends; no longer declared",
      "delete dns: udp 10.0.0.53:53, wrr, 1 backend; no longer declared",
      "delete old: tcp 10.0.0.9:9000, wrr, 0 backends; no longer declared",
    ]);
    expect(gorb.listServices()).toEqual(["manual"]);
    expect(driver.peek().map((s) => ("address" in s.service.key ? s.service.key.address : ""))).toEqual(["10.0.0.2", "10.0.0.200"]);
  });

  test("a change the kernel refuses is reported; the others still run; applying again finishes the job", async () => {
    const { gorb, driver } = await applied();
    const next = declare({ ...FILE, api: { host: "10.0.0.3", port: 443 }, ftp: { host: "10.0.0.4", port: 21 } });
    driver.failNext("add-service", "ENOMEM");
    const report = await gorb.apply(next);
    expect(report.ok).toBe(false);
    expect(report.changes.map((c) => [c.service, c.status])).toEqual([["api", "failed"], ["ftp", "done"]]);
    expect(report.changes[0]?.error).toContain("ENOMEM");
    expect(lines(await gorb.apply(next))).toEqual(["create api: tcp 10.0.0.3:443, wrr, 0 backends"]);
  });

  test("who owns what survives a restart: the next apply still deletes what the file created", async () => {
    const { gorb, driver, store } = await applied();
    await gorb.close();
    const again = makeGorb({ driver, store });
    await again.gorb.restore(store.load());
    expect(store.services.get("manual")?.source).toBe("api");
    expect(store.services.get("web")?.source).toBe("file");
    expect(store.backends.get("web/extra")?.source).toBe("api");
    const report = await again.gorb.apply(declare({ web: FILE.web }), { dryRun: true });
    expect(lines(report)).toEqual([
      "delete dns: udp 10.0.0.53:53, wrr, 1 backend; no longer declared",
      "delete old: tcp 10.0.0.9:9000, wrr, 0 backends; no longer declared",
    ]);
  });

  test("a service created over the API and taken over by the file is the file's from then on", async () => {
    const { gorb, store } = await applied();
    await gorb.apply(declare({ ...FILE, manual: { host: "10.0.0.2", port: 80 } }));
    expect(store.services.get("manual")?.source).toBe("file");
    expect(lines(await gorb.apply(declare(FILE), { dryRun: true }))).toEqual([
      "delete manual: tcp 10.0.0.2:80, wrr, 0 backends; no longer declared",
    ]);
  });

  test("a service renamed keeping its address stays in IPVS, changed in place to what the new one declares", async () => {
    const { gorb, driver } = await applied();
    const { old: _old, ...rest } = FILE;
    const report = await gorb.apply(declare({ ...rest, legacy: { host: "10.0.0.9", port: 9000, method: "rr", backends: { l1: { host: "10.1.0.9" } } } }));
    expect(lines(report)).toEqual([
      "delete old: tcp 10.0.0.9:9000, wrr, 0 backends; no longer declared",
      "create legacy: tcp 10.0.0.9:9000, rr, 1 backend",
      "create legacy/l1: 10.1.0.9:9000, nat, weight 100",
    ]);
    expect(report.ok).toBe(true);
    expect(driver.writes().map((w) => w.op)).toEqual(["update-service", "add-destination"]);
    const held = driver.peek().find((s) => "address" in s.service.key && s.service.key.address === "10.0.0.9");
    expect(held?.service.scheduler).toBe("rr");
    expect(held?.destinations.map((d) => d.address)).toEqual(["10.1.0.9"]);
    expect((await gorb.reconcile()).repairs).toEqual([]);
  });

  test("services and backends that swap addresses, or take one another frees, are applied in one apply", async () => {
    const { gorb, driver } = makeGorb();
    const first = {
      a: { host: "10.0.0.1", port: 80, backends: { x: { host: "10.1.0.1" }, y: { host: "10.1.0.2", weight: 20 } } },
      b: { host: "10.0.0.2", port: 80, backends: { z: { host: "10.1.0.3" } } },
      c: { host: "10.0.0.3", port: 80 },
    };
    expect((await gorb.apply(declare(first))).ok).toBe(true);
    // a takes b's address, b takes c's, c takes a's (a cycle of three); c's backends x and y swap destinations.
    const next = declare({
      a: { host: "10.0.0.2", port: 80, backends: { x: { host: "10.1.0.1" }, y: { host: "10.1.0.2", weight: 20 } } },
      b: { host: "10.0.0.3", port: 80, backends: { z: { host: "10.1.0.3" } } },
      c: { host: "10.0.0.1", port: 80, backends: { x: { host: "10.1.0.2" }, y: { host: "10.1.0.1" } } },
    });
    const planned = await gorb.apply(next, { dryRun: true });
    const report = await gorb.apply(next);
    expect(report.changes.map((c) => [c.action, c.service, c.backend, c.status])).toEqual(
      planned.changes.map((c) => [c.action, c.service, c.backend, "done"]),
    );
    expect((await gorb.apply(next)).changes).toEqual([]);
    expect((await gorb.reconcile()).repairs).toEqual([]);
    const table = driver.peek().map((s) => ["address" in s.service.key ? s.service.key.address : "", s.destinations.map((d) => `${d.address}/${d.weight}`).sort()]);
    expect(table).toEqual([
      ["10.0.0.1", ["10.1.0.1/100", "10.1.0.2/100"]],
      ["10.0.0.2", ["10.1.0.1/100", "10.1.0.2/20"]],
      ["10.0.0.3", ["10.1.0.3/100"]],
    ]);

    const { gorb: other } = makeGorb();
    const pair = { x: { host: "10.1.0.1" }, y: { host: "10.1.0.2" } };
    await other.apply(declare({ a: { host: "10.0.0.1", port: 80, backends: pair } }));
    const swapped = declare({ a: { host: "10.0.0.1", port: 80, backends: { x: pair.y, y: pair.x } } });
    expect((await other.apply(swapped)).changes.map((c) => `${c.action} ${c.backend} ${c.status}`)).toEqual(["recreate x done", "recreate y done"]);
    expect((await other.getBackend("a", "x")).options.host).toBe("10.1.0.2");
    expect((await other.apply(swapped)).changes).toEqual([]);
  });

  test("services that swap addresses fail together when the kernel refuses one of them, and nothing is lost", async () => {
    const { gorb, driver } = makeGorb();
    const first = {
      a: { host: "10.0.0.1", port: 80, method: "rr", backends: { x: { host: "10.1.0.1" } } },
      b: { host: "10.0.0.2", port: 80, backends: { y: { host: "10.1.0.2" } } },
    };
    await gorb.apply(declare(first));
    const next = declare({ a: { ...first.a, host: "10.0.0.2" }, b: { ...first.b, host: "10.0.0.1" }, d: { host: "10.0.0.4", port: 80 } });
    driver.failNext("update-service", "ENOMEM"); // a's scheduler on the address it takes
    const report = await gorb.apply(next);
    expect(report.changes.filter((c) => c.backend === null).map((c) => `${c.action} ${c.service} ${c.status}`)).toEqual([
      "recreate a failed",
      "recreate b failed",
      "create d done",
    ]);
    expect(report.changes[0]?.error).toContain("ENOMEM");
    expect(report.changes[1]?.error).toStartWith("not applied: it goes with the recreate of a, which failed: ");
    // Their re-added backends with them: they were re-added to the re-creations that failed.
    expect(report.changes.filter((c) => c.backend !== null).map((c) => `${c.service}/${c.backend} ${c.status}`)).toEqual(["a/x failed", "b/y failed"]);
    expect((await gorb.getService("a")).options.host).toBe("10.0.0.1");
    expect((await gorb.reconcile()).repairs).toEqual([]);
    expect((await gorb.apply(next)).ok).toBe(true);
    expect((await gorb.getService("a")).options.host).toBe("10.0.0.2");
    expect((await gorb.reconcile()).repairs).toEqual([]);
  });

  test("a new service on the address a re-created one leaves fails with it (with its backends): no two services on one address", async () => {
    const driver = new MemoryIpvsDriver();
    const store = new MemoryStateStore();
    const { gorb } = makeGorb({ driver, store });
    await gorb.apply(declare({ a: { host: "10.0.0.1", port: 443, backends: { x: { host: "10.1.0.1" } } } }));
    const next = declare({ a: { fwmark: 3 }, b: { host: "10.0.0.1", port: 443, backends: { y: { host: "10.1.0.2" } } }, d: { host: "10.0.0.4", port: 80 } });
    driver.failNext("add-service", "EPERM"); // a's new key (fwmark 3): a stays on 10.0.0.1:443
    const report = await gorb.apply(next);
    expect(report.changes.map((c) => `${c.action} ${c.backend === null ? c.service : `${c.service}/${c.backend}`} ${c.status}`)).toEqual([
      "recreate a failed",
      "create b failed",
      "create d done",
      "create b/y failed",
    ]);
    expect(report.changes[1]?.error).toStartWith("not applied: it goes with the recreate of a, which failed: ");
    expect(gorb.listServices().sort()).toEqual(["a", "d"]);
    expect((await gorb.getService("a")).options.host).toBe("10.0.0.1");
    expect(driver.peek().map((s) => s.destinations.map((d) => d.address))).toEqual([["10.1.0.1"], []]);
    expect((await gorb.reconcile()).repairs).toEqual([]);
    // What a restart reads: the same, every service restored.
    await gorb.close();
    const again = makeGorb({ driver, store });
    expect((await again.gorb.restore(store.load())).dropped).toEqual([]);
    expect(again.gorb.listServices().sort()).toEqual(["a", "d"]);
    expect((await again.gorb.apply(next)).ok).toBe(true);
    expect((await again.gorb.getService("b")).options.host).toBe("10.0.0.1");
    await again.gorb.close();
  });

  test("a refused change of a service fails that change, not a change of one of its backends planned before it", async () => {
    const driver = new MemoryIpvsDriver();
    const store = new MemoryStateStore();
    const { gorb } = makeGorb({ driver, store });
    await gorb.apply(declare({ a: { host: "10.0.0.1", port: 80, method: "wrr", backends: { x: { host: "10.1.0.1" }, w: { host: "10.1.0.3" } } } }));
    // x's delete is planned before a's update; the kernel refuses a's update (SET_SERVICE).
    const next = declare({ a: { host: "10.0.0.1", port: 80, method: "rr", backends: { w: { host: "10.1.0.3" }, y: { host: "10.1.0.1" } } } });
    driver.failNext("update-service", "EPERM");
    const report = await gorb.apply(next);
    expect(report.changes.map((c) => `${c.action} ${c.backend === null ? c.service : `${c.service}/${c.backend}`} ${c.status}`)).toEqual([
      "delete a/x done",
      "update a failed",
      "create a/y done",
    ]);
    expect((await gorb.getService("a")).options.method).toBe("wrr");
    expect((await gorb.getService("a")).backends.sort()).toEqual(["w", "y"]);
    expect(driver.peek()[0]?.service.scheduler).toBe("wrr");
    expect(driver.peek()[0]?.destinations.map((d) => d.address)).toEqual(["10.1.0.1", "10.1.0.3"]);
    expect((await gorb.reconcile()).repairs).toEqual([]);
    // Applying again finishes the job, and does not take y's destination away.
    expect((await gorb.apply(next)).changes.map((c) => `${c.action} ${c.service} ${c.status}`)).toEqual(["update a done"]);
    expect(driver.peek()[0]?.service.scheduler).toBe("rr");
    expect(driver.peek()[0]?.destinations.map((d) => d.address)).toEqual(["10.1.0.1", "10.1.0.3"]);
    await gorb.close();
  });

  test("a new service whose only backend the kernel refuses is created without it: the backend's change alone fails", async () => {
    const driver = new MemoryIpvsDriver();
    const { gorb } = makeGorb({ driver, store: new MemoryStateStore() });
    driver.failNext("add-destination", "EPERM");
    const report = await gorb.apply(declare({ a: { host: "10.0.0.1", port: 443, backends: { x: { host: "10.1.0.2", port: 8080 } } } }));
    expect(report.changes.map((c) => `${c.action} ${c.backend === null ? c.service : `${c.service}/${c.backend}`} ${c.status}`)).toEqual(["create a done", "create a/x failed"]);
    expect(driver.peek().map((s) => [s.service.key, s.destinations.length])).toEqual([[{ family: "inet", protocol: "tcp", address: "10.0.0.1", port: 443 }, 0]]);
    expect((await gorb.getService("a")).in_kernel).toBe(true);
    expect((await gorb.reconcile()).repairs).toEqual([]);
    await gorb.close();
  });

  test("a new backend on the destination a re-created backend leaves fails with it: no two backends on one destination", async () => {
    const driver = new MemoryIpvsDriver();
    const store = new MemoryStateStore();
    const { gorb } = makeGorb({ driver, store });
    await gorb.apply(declare({ a: { host: "10.0.0.1", port: 80, backends: { x: { host: "10.1.0.1", weight: 5 } } } }));
    const next = declare({ a: { host: "10.0.0.1", port: 80, backends: { x: { host: "10.1.0.2" }, y: { host: "10.1.0.1" }, z: { host: "10.1.0.3" } } } });
    driver.failNext("add-destination", "EPERM"); // x's new destination: x stays on 10.1.0.1
    const report = await gorb.apply(next);
    expect(report.changes.map((c) => `${c.action} ${c.backend === null ? c.service : `${c.service}/${c.backend}`} ${c.status}`)).toEqual([
      "recreate a/x failed",
      "create a/y failed",
      "create a/z done",
    ]);
    expect(report.changes[1]?.error).toStartWith("not applied: it goes with the recreate of a/x, which failed: ");
    expect((await gorb.getService("a")).backends.sort()).toEqual(["x", "z"]);
    expect((await gorb.getBackend("a", "x")).options.host).toBe("10.1.0.1");
    expect(driver.peek()[0]?.destinations.map((d) => `${d.address}/${d.weight}`)).toEqual(["10.1.0.1/5", "10.1.0.3/100"]);
    expect((await gorb.reconcile()).repairs).toEqual([]);
    expect((await gorb.apply(next)).ok).toBe(true);
    expect(driver.peek()[0]?.destinations.map((d) => d.address)).toEqual(["10.1.0.1", "10.1.0.2", "10.1.0.3"]);
    await gorb.close();
  });

  test("a re-created service and its re-added backends fail together: the saved rows and the state agree after a refusal", async () => {
    const driver = new MemoryIpvsDriver();
    const store = new MemoryStateStore();
    const { gorb } = makeGorb({ driver, store });
    const first = { a: { host: "10.0.0.1", port: 80, backends: { x: { host: "10.1.0.1", weight: 50 } } } };
    await gorb.apply(declare(first));
    const next = declare({ a: { host: "10.0.0.5", port: 80, backends: { x: { host: "10.1.0.1", weight: 70 } } } });
    driver.failNext("add-service", "ENOMEM"); // the re-created service's address
    const report = await gorb.apply(next);
    expect(report.changes.map((c) => `${c.action} ${c.backend === null ? c.service : `${c.service}/${c.backend}`} ${c.status}`)).toEqual([
      "recreate a failed",
      "create a/x failed",
    ]);
    expect(report.changes[1]?.error).toStartWith("not applied: it goes with the recreate of a, which failed: ");
    // As before the apply, in gorb, in the kernel and in the saved rows (what a restart reads).
    expect([(await gorb.getService("a")).options.host, (await gorb.getBackend("a", "x")).options.weight]).toEqual(["10.0.0.1", 50]);
    expect((await gorb.reconcile()).repairs).toEqual([]);
    await gorb.close();
    const again = makeGorb({ driver, store });
    await again.gorb.restore(store.load());
    expect([(await again.gorb.getService("a")).options.host, (await again.gorb.getBackend("a", "x")).options.weight]).toEqual(["10.0.0.1", 50]);
    expect((await again.gorb.apply(next)).ok).toBe(true);
    expect((await again.gorb.getBackend("a", "x")).options.weight).toBe(70);
  });

  test("a fwmark service turned into an address service is re-created", async () => {
    const { gorb } = makeGorb();
    await gorb.apply(declare({ m: { fwmark: 5 } }));
    const key: ServiceKey = { family: "inet", protocol: "tcp", address: "10.0.0.5", port: 80 };
    expect(lines(await gorb.apply(declare({ m: { host: key.address, port: 80 } }), { dryRun: true }))[0]).toStartWith(
      "recreate m: ",
    );
    expect((await gorb.apply(declare({ m: { host: key.address, port: 80 } }))).ok).toBe(true);
    expect((await gorb.getService("m")).options.address).toBe("10.0.0.5");
  });
});
