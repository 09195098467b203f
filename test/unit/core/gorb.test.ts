import { describe, expect, test } from "bun:test";
import { ConflictError, GorbError, KernelError, NotFoundError, ValidationError } from "../../../src/core/errors.ts";
import { MemoryVipManager } from "../../helpers/memory-vip.ts";
import { MemoryIpvsDriver } from "../../../src/ipvs/memory-driver.ts";
import { NO_FLAGS } from "../../../src/ipvs/types.ts";
import { fieldsOf } from "../../../src/core/fields.ts";
import { makeGorb } from "./fakes.ts";

const WEB = { host: "10.0.0.1", port: 80 };
const KEY = { family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 } as const;

/** The GorbError `promise` rejects with. */
async function failure(promise: Promise<unknown>): Promise<GorbError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof GorbError) return error;
    throw error;
  }
  throw new Error("expected a GorbError");
}

/** The kernel's destinations of the only service, as address:port=weight. */
function weights(driver: MemoryIpvsDriver): string[] {
  return driver.peek().flatMap((s) => s.destinations.map((d) => `${d.address}:${d.port}=${d.weight}`));
}

describe("services", () => {
  test("create writes the kernel, adds the VIP, registers with discovery; GET shows GORB options with defaults", async () => {
    const { gorb, driver, vip, discovery } = makeGorb();
    await gorb.createService("web", WEB);
    expect(driver.peek().map((s) => s.service.key)).toEqual([KEY]);
    expect(driver.peek()[0]?.service.scheduler).toBe("wrr");
    expect(vip.addresses()).toEqual(["10.0.0.1"]);
    expect(discovery.calls).toEqual([["expose", { id: "web", address: "10.0.0.1", port: 80, protocol: "tcp" }]]);
    const info = await gorb.getService("web");
    expect(info).toEqual({
      options: {
        host: "10.0.0.1",
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
      stats: { conns: 0, in_pkts: 0, out_pkts: 0, in_bytes: 0, out_bytes: 0, cps: 0, in_pps: 0, out_pps: 0, in_bps: 0, out_bps: 0 },
      in_kernel: true,
      panic: false,
      quorum_up: true,
      sorry: false,
      healthy: 0,
    });
    expect(gorb.listServices()).toEqual(["web"]);
  });

  test("persistent really makes the kernel service persistent with a 300 s timeout", async () => {
    const { gorb, driver } = makeGorb();
    await gorb.createService("web", { ...WEB, persistent: true, flags: "sh-fallback|sh-port", method: "sh" });
    const service = driver.peek()[0]?.service;
    expect(service?.flags).toEqual({ persistent: true, onePacket: false, sched1: true, sched2: true, sched3: false });
    expect(service?.timeout).toBe(300);
  });

  test("without host the default address is used, and GET keeps host as sent", async () => {
    const { gorb, driver } = makeGorb();
    await gorb.createService("web", { port: 80 });
    expect(driver.peek()[0]?.service.key).toEqual({ ...KEY, address: "192.0.2.1" });
    const info = await gorb.getService("web");
    expect([info.options.host, info.options.address]).toEqual(["", "192.0.2.1"]);
  });

  test("DNS names resolve once, IPv4 preferred", async () => {
    const { gorb, driver } = makeGorb();
    await gorb.createService("web", { host: "web.example", port: 80 });
    expect(driver.peek()[0]?.service.key).toEqual({ ...KEY, address: "10.0.0.10" });
    expect((await gorb.getService("web")).options.host).toBe("web.example");
  });

  test("a name with several addresses, answered in turns (round-robin DNS), keeps the address it has while it still resolves to it", async () => {
    // Each lookup of a name answers its addresses in the other order, as a round-robin DNS server does.
    const turns = new Map<string, number>();
    const addresses: Record<string, readonly string[]> = { "vip.example": ["10.0.0.1", "10.0.0.2"], "app.example": ["10.1.0.1", "10.1.0.2"] };
    const resolver = async (host: string) => {
      const turn = turns.get(host) ?? 0;
      turns.set(host, turn + 1);
      const all = (addresses[host] ?? []).map((address) => ({ address, family: "inet" as const }));
      return turn % 2 === 0 ? all : all.reverse();
    };
    const { gorb, driver } = makeGorb({ resolver });
    const served = () => driver.peek().map((s) => `${"address" in s.service.key ? `${s.service.key.address}:${s.service.key.port}` : ""} ${s.destinations.map((d) => d.address).join(" ")}`);
    const set = [{ id: "web", fields: fieldsOf({ host: "vip.example", port: 80 }), backends: [{ id: "b1", fields: fieldsOf({ host: "app.example" }) }] }];
    expect((await gorb.apply(set)).ok).toBe(true);
    expect(served()).toEqual(["10.0.0.1:80 10.1.0.1"]);
    // The same set again changes nothing: it re-created the service on 10.0.0.2 with its backend on 10.1.0.2.
    expect((await gorb.apply(set)).changes).toEqual([]);
    expect(served()).toEqual(["10.0.0.1:80 10.1.0.1"]);
    // A PATCH that sends the host back (a client sending the whole object) is no move: it was a 400 every other time.
    await gorb.updateService("web", { host: "vip.example", method: "rr" });
    await gorb.updateBackend("web", "b1", { host: "app.example", weight: 5 });
    expect(driver.peek()[0]?.service.scheduler).toBe("rr");
    expect(driver.peek()[0]?.destinations.map((d) => [d.address, d.weight])).toEqual([["10.1.0.1", 5]]);
    // Once the name no longer has the address, an apply moves it (and puts the file's method and weight back).
    addresses["app.example"] = ["10.1.0.3"];
    expect((await gorb.apply(set)).changes.map((c) => [c.action, c.backend])).toEqual([["recreate", "b1"], ["update", null]]);
    expect(served()).toEqual(["10.0.0.1:80 10.1.0.3"]);
  });

  test("fwmark services: no VIP, no discovery", async () => {
    const { gorb, driver, vip, discovery } = makeGorb();
    await gorb.createService("marked", { fwmark: 7, method: "rr" });
    expect(driver.peek()[0]?.service.key).toEqual({ family: "inet", fwmark: 7 });
    expect(vip.addresses()).toEqual([]);
    expect(discovery.calls).toEqual([]);
    const info = await gorb.getService("marked");
    expect(info.options).toMatchObject({ fwmark: 7, port: 0, protocol: "", address: "" });
  });

  test("a second service with the same id or the same address is a 409 and changes nothing", async () => {
    const { gorb, driver } = makeGorb();
    await gorb.createService("web", WEB);
    const sameId = await failure(gorb.createService("web", { ...WEB, port: 81 }));
    expect(sameId).toBeInstanceOf(ConflictError);
    expect(sameId.message).toBe('service "web" already exists');
    const sameKey = await failure(gorb.createService("web2", WEB));
    expect(sameKey.message).toBe('service "web" already uses tcp 10.0.0.1:80');
    expect(driver.peek()).toHaveLength(1);
    expect(gorb.listServices()).toEqual(["web"]);
  });

  test("a service the kernel already has (not gorb's) is a 409 that says so; the VIP is rolled back", async () => {
    const { gorb, driver, vip } = makeGorb();
    await driver.addService({ key: KEY, scheduler: "rr", flags: NO_FLAGS, timeout: 0, netmask: 32, pe: null });
    const error = await failure(gorb.createService("web", WEB));
    expect(error.status).toBe(409);
    expect(error.message).toBe("service tcp 10.0.0.1:80 already exists in the kernel (not managed by gorb)");
    expect(vip.addresses()).toEqual([]);
    expect(gorb.listServices()).toEqual([]);
  });

  test("a service with a sorry server on the key of one the kernel already has (not gorb's) is a 409 that leaves that service as it was", async () => {
    const { gorb, driver, vip } = makeGorb();
    await driver.addService({ key: KEY, scheduler: "rr", flags: NO_FLAGS, timeout: 0, netmask: 32, pe: null });
    const before = driver.peek();
    // No backend yet: the sorry server serves at once, added in the same batch as the service.
    const error = await failure(gorb.createService("web", { ...WEB, sorry_server: { host: "10.9.0.1" } }));
    expect(error.status).toBe(409);
    expect(error.message).toBe("service tcp 10.0.0.1:80 already exists in the kernel (not managed by gorb)");
    await gorb.idle();
    expect(driver.peek()).toEqual(before);
    expect(vip.addresses()).toEqual([]);
    expect(gorb.listServices()).toEqual([]);
  });

  test("rollback: a failed kernel add records nothing, removes the VIP and registers nothing", async () => {
    const { gorb, driver, vip, discovery } = makeGorb();
    driver.failNext("add-service", "EPERM");
    const error = await failure(gorb.createService("web", WEB));
    expect(error).toBeInstanceOf(KernelError);
    expect((error as KernelError).errno).toBe("EPERM");
    expect(gorb.listServices()).toEqual([]);
    expect(vip.addresses()).toEqual([]);
    expect(discovery.calls).toEqual([]);
    expect(driver.peek()).toEqual([]);
    await gorb.createService("web", WEB); // and the id is free again
    expect(gorb.listServices()).toEqual(["web"]);
  });

  test("a VIP that cannot be added fails the create before the kernel is touched", async () => {
    const { gorb, driver, vip } = makeGorb();
    vip.failNext("add");
    const error = await failure(gorb.createService("web", WEB));
    expect([error.status, error.message]).toEqual([
      500,
      "cannot add VIP 10.0.0.1 to the VIP interface: cannot add the address: operation not permitted",
    ]);
    expect(driver.writes()).toEqual([]);
    expect(gorb.listServices()).toEqual([]);
  });

  test("a VIP the interface already had is never removed; a VIP shared by two services goes with the last", async () => {
    const vip = new MemoryVipManager(["10.0.0.9"]);
    const { gorb } = makeGorb({ vip });
    await gorb.createService("pre", { host: "10.0.0.9", port: 80 });
    await gorb.deleteService("pre");
    expect(vip.addresses()).toEqual(["10.0.0.9"]);
    await gorb.createService("http", { host: "10.0.0.1", port: 80 });
    await gorb.createService("https", { host: "10.0.0.1", port: 443 });
    await gorb.deleteService("http");
    expect(vip.addresses()).toEqual(["10.0.0.1", "10.0.0.9"]);
    await gorb.deleteService("https");
    expect(vip.addresses()).toEqual(["10.0.0.9"]);
  });

  // Found by test/unit/store/fleet-random.test.ts (seed 90): the VIP was removed, and on every node following the
  // apply in a fleet too.
  test("an apply that moves a service to another port of its address keeps the VIP; it goes with the service", async () => {
    const { gorb, driver, vip } = makeGorb();
    const on = (port: number) => [{ id: "web", fields: fieldsOf({ host: "10.0.0.1", port }), backends: [] }];
    expect((await gorb.apply(on(80))).ok).toBe(true);
    expect((await gorb.apply(on(443))).ok).toBe(true);
    expect(driver.peek().map((s) => s.service.key)).toEqual([{ ...KEY, port: 443 }]);
    expect(vip.addresses()).toEqual(["10.0.0.1"]);
    expect((await gorb.apply([])).ok).toBe(true);
    expect(vip.addresses()).toEqual([]);
  });

  test("delete: the kernel goes first; when it fails the service stays, with its backends and checks", async () => {
    const { gorb, driver, vip, health, discovery } = makeGorb();
    await gorb.createService("web", WEB);
    await gorb.createBackend("web", "b1", { host: "10.1.0.1" });
    driver.failNext("delete-service", "EBUSY");
    const error = await failure(gorb.deleteService("web"));
    expect((error as KernelError).errno).toBe("EBUSY");
    expect(gorb.listServices()).toEqual(["web"]);
    expect(driver.peek()).toHaveLength(1);
    expect(vip.addresses()).toEqual(["10.0.0.1"]);
    expect(health.targets.size).toBe(1);
    await gorb.deleteService("web");
    expect(gorb.listServices()).toEqual([]);
    expect(driver.peek()).toEqual([]);
    expect(vip.addresses()).toEqual([]);
    expect(health.targets.size).toBe(0);
    expect(discovery.calls.at(-1)).toEqual(["remove", "web"]);
    expect((await failure(gorb.getService("web"))).status).toBe(404);
  });

  test("delete of a service someone removed from the kernel behind gorb's back succeeds", async () => {
    const { gorb, driver, logger } = makeGorb();
    await gorb.createService("web", WEB);
    await driver.deleteService(KEY);
    await gorb.deleteService("web");
    expect(gorb.listServices()).toEqual([]);
    expect(logger.lines).toContain('warn service "web" (tcp 10.0.0.1:80) was already gone from IPVS');
  });

  test("unknown ids are 404; bad ids are 400", async () => {
    const { gorb } = makeGorb();
    expect(await failure(gorb.deleteService("nope"))).toBeInstanceOf(NotFoundError);
    expect((await failure(gorb.getService("nope"))).message).toBe('service "nope" not found');
    expect((await failure(gorb.updateService("nope", {}))).status).toBe(404);
    const bad = await failure(gorb.createService("a/b", WEB));
    expect([bad.status, bad.message]).toEqual([400, 'service: id must not contain "/", got "a/b"']);
    expect((await failure(gorb.createService("", WEB))).message).toBe("service: id must not be empty");
    expect((await failure(gorb.createService("x".repeat(257), WEB))).message).toBe(
      "service: id must be at most 256 characters, got 257",
    );
    expect((await failure(gorb.createService("a\u0000b", WEB))).message).toContain("control characters");
  });

  test("unicode ids work", async () => {
    const { gorb } = makeGorb();
    await gorb.createService("wéb-服务", WEB);
    await gorb.createBackend("wéb-服务", "бэкенд", { host: "10.1.0.1" });
    expect((await gorb.getService("wéb-服务")).backends).toEqual(["бэкенд"]);
  });

  test("a scheduler the kernel has no module for is a 400 on method", async () => {
    const driver = new MemoryIpvsDriver({ schedulers: ["rr", "wrr"] });
    const { gorb, vip } = makeGorb({ driver });
    const error = await failure(gorb.createService("web", { ...WEB, method: "mh" }));
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).field).toBe("method");
    expect(error.message).toBe('method: unknown scheduler "mh" (no ip_vs_mh module) for service tcp 10.0.0.1:80');
    expect(vip.addresses()).toEqual([]);
  });

  test("concurrent creates are serialised: one wins, the other is a 409", async () => {
    const { gorb, driver } = makeGorb();
    const results = await Promise.allSettled([gorb.createService("web", WEB), gorb.createService("web", WEB)]);
    expect(results.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
    expect(driver.peek()).toHaveLength(1);
  });
});

describe("PATCH service", () => {
  test("changes the scheduler, flags and persistence in place with SET_SERVICE", async () => {
    const { gorb, driver } = makeGorb();
    await gorb.createService("web", WEB);
    driver.clearWrites();
    await gorb.updateService("web", { method: "RR", persistent: true, persistence_timeout: 60, Flags: "flag-3" });
    expect(driver.writes().map((w) => w.op)).toEqual(["update-service"]);
    const service = driver.peek()[0]?.service;
    expect([service?.scheduler, service?.timeout, service?.flags.persistent, service?.flags.sched3]).toEqual([
      "rr",
      60,
      true,
      true,
    ]);
    const options = (await gorb.getService("web")).options;
    expect([options.method, options.persistent, options.persistence_timeout, options.host]).toEqual(["rr", true, 60, "10.0.0.1"]);
  });

  test("changing the identity is a 400 and writes nothing; repeating it unchanged is fine", async () => {
    const { gorb, driver } = makeGorb();
    await gorb.createService("web", WEB);
    driver.clearWrites();
    const error = await failure(gorb.updateService("web", { port: 81 }));
    expect([error.status, (error as ValidationError).field]).toEqual([400, "port"]);
    expect(error.message).toBe(
      'port: cannot move service "web" from tcp 10.0.0.1:80 to tcp 10.0.0.1:81; delete it and create it again',
    );
    expect((await failure(gorb.updateService("web", { protocol: "udp" }))).status).toBe(400);
    expect((await failure(gorb.updateService("web", { fwmark: 3 }))).message).toBe(
      'fwmark: cannot turn service "web" (tcp 10.0.0.1:80) into a fwmark service; delete it and create it again',
    );
    expect(driver.writes()).toEqual([]);
    await gorb.updateService("web", { host: "10.0.0.1", port: 80, method: "lc" });
    expect(driver.peek()[0]?.service.scheduler).toBe("lc");
  });

  test("a failed SET_SERVICE changes nothing", async () => {
    const { gorb, driver } = makeGorb();
    await gorb.createService("web", WEB);
    driver.failNext("update-service", "ENOMEM");
    expect((await failure(gorb.updateService("web", { method: "rr" }))).status).toBe(500);
    expect((await gorb.getService("web")).options.method).toBe("wrr");
    expect(driver.peek()[0]?.service.scheduler).toBe("wrr");
  });

  test("invalid values are 400 naming the field", async () => {
    const { gorb } = makeGorb();
    await gorb.createService("web", WEB);
    expect((await failure(gorb.updateService("web", { persistence_timeout: 5 }))).message).toBe(
      "persistence_timeout: needs persistent: true",
    );
  });
});

describe("backends", () => {
  test("create: port defaults to the service's, weight 100, nat; the backend is watched", async () => {
    const { gorb, driver, health } = makeGorb();
    await gorb.createService("web", WEB);
    await gorb.createBackend("web", "b1", { host: "10.1.0.1" });
    expect(driver.peek()[0]?.destinations).toMatchObject([
      { address: "10.1.0.1", port: 80, weight: 100, forward: "nat", upperThreshold: 0, lowerThreshold: 0 },
    ]);
    const target = health.target("web", "b1");
    expect(target.backend).toEqual({ host: "10.1.0.1", port: 80 });
    expect(target.options.type).toBe("tcp");
    const info = await gorb.getBackend("web", "b1");
    expect(info.options).toMatchObject({ host: "10.1.0.1", port: 80, weight: 100, method: "nat", vsid: "web" });
    expect(info.options.pulse).toEqual({ type: "tcp", interval: "1m", args: null });
    expect(info.metrics).toEqual({ status: 0, state: "unknown", health: 0, uptime: 0, last_check_ms: null, message: "" });
    expect([info.effective_weight, info.active_conns, info.inactive_conns, info.persistent_conns]).toEqual([100, 0, 0, 0]);
  });

  test("weight 0 creates a drained backend", async () => {
    const { gorb, driver } = makeGorb();
    await gorb.createService("web", WEB);
    await gorb.createBackend("web", "b1", { host: "10.1.0.1", weight: 0 });
    expect(weights(driver)).toEqual(["10.1.0.1:80=0"]);
  });

  test("backend ids are per service: the same id under two services is two backends", async () => {
    const { gorb, driver } = makeGorb();
    await gorb.createService("a", WEB);
    await gorb.createService("b", { ...WEB, port: 443 });
    await gorb.createBackend("a", "node1", { host: "10.1.0.1" });
    await gorb.createBackend("b", "node1", { host: "10.1.0.1" });
    expect(driver.peek().map((s) => s.destinations.length)).toEqual([1, 1]);
    await gorb.deleteBackend("a", "node1");
    expect((await gorb.getBackend("b", "node1")).options.port).toBe(443);
    expect((await failure(gorb.getBackend("a", "node1"))).message).toBe('backend "node1" of service "a" not found');
  });

  test("409 for the same id or the same address in one service; 404 for a missing service", async () => {
    const { gorb } = makeGorb();
    await gorb.createService("web", WEB);
    await gorb.createBackend("web", "b1", { host: "10.1.0.1" });
    expect((await failure(gorb.createBackend("web", "b1", { host: "10.1.0.2" }))).message).toBe(
      'backend "b1" of service "web" already exists',
    );
    expect((await failure(gorb.createBackend("web", "b2", { host: "10.1.0.1", port: 80 }))).message).toBe(
      'backend "b1" of service "web" already uses 10.1.0.1:80',
    );
    expect((await failure(gorb.createBackend("nope", "b1", { host: "10.1.0.1" }))).status).toBe(404);
  });

  test("a backend of another family is a 400 unless tunnelled", async () => {
    const { gorb } = makeGorb();
    await gorb.createService("web", WEB);
    const error = await failure(gorb.createBackend("web", "b6", { host: "2001:db8::1" }));
    expect(error.message).toBe('host: "2001:db8::1" is an inet6 address, expected inet');
    await gorb.createBackend("web", "b6", { host: "2001:db8::1", method: "tunnel" });
  });

  test("rollback: a failed kernel add records nothing and starts no check", async () => {
    const { gorb, driver, health } = makeGorb();
    await gorb.createService("web", WEB);
    driver.failNext("add-destination", "ENOMEM");
    expect((await failure(gorb.createBackend("web", "b1", { host: "10.1.0.1" }))).status).toBe(500);
    expect((await gorb.getService("web")).backends).toEqual([]);
    expect(health.targets.size).toBe(0);
  });

  test("an address the kernel refuses is a 400 naming host (from the error's attribute)", async () => {
    const { gorb } = makeGorb();
    await gorb.createService("web6", { host: "2001:db8::1", port: 80 });
    const error = await failure(gorb.createBackend("web6", "b1", { host: "fe80::1" }));
    expect([error.status, (error as ValidationError).field]).toEqual([400, "host"]);
    expect(error.message).toContain("not a unicast or local address");
  });

  test("a multicast backend is refused by gorb before the kernel sees it", async () => {
    const { gorb, driver } = makeGorb();
    await gorb.createService("web", WEB);
    const error = await failure(gorb.createBackend("web", "b1", { host: "224.0.0.1" }));
    expect([error.status, (error as ValidationError).field, error.message]).toEqual([
      400,
      "host",
      "host: 224.0.0.1 is a multicast address; a backend must be one host's unicast address",
    ]);
    expect(driver.peek()[0]?.destinations).toEqual([]);
  });

  test("delete: kernel first; a failure keeps the backend and its check; a vanished destination counts as deleted", async () => {
    const { gorb, driver, health } = makeGorb();
    await gorb.createService("web", WEB);
    await gorb.createBackend("web", "b1", { host: "10.1.0.1" });
    driver.failNext("delete-destination", "EBUSY");
    expect((await failure(gorb.deleteBackend("web", "b1"))).status).toBe(500);
    expect((await gorb.getService("web")).backends).toEqual(["b1"]);
    expect(health.targets.size).toBe(1);
    await driver.deleteDestination(KEY, { family: "inet", address: "10.1.0.1", port: 80 });
    await gorb.deleteBackend("web", "b1");
    expect((await gorb.getService("web")).backends).toEqual([]);
    expect(health.targets.size).toBe(0);
  });
});

describe("PATCH backend", () => {
  test("an omitted weight does not drain; other fields change in place with SET_DEST", async () => {
    const { gorb, driver } = makeGorb();
    await gorb.createService("web", WEB);
    await gorb.createBackend("web", "b1", { host: "10.1.0.1", weight: 30 });
    driver.clearWrites();
    await gorb.updateBackend("web", "b1", {});
    await gorb.updateBackend("web", "b1", { upper_threshold: 100, lower_threshold: 10, method: "dr" });
    // The empty PATCH changes nothing, so nothing is written (matching entries are never rewritten).
    expect(driver.writes().map((w) => w.op)).toEqual(["update-destination"]);
    expect(driver.peek()[0]?.destinations[0]).toMatchObject({
      weight: 30,
      forward: "dr",
      upperThreshold: 100,
      lowerThreshold: 10,
    });
  });

  test("weight 0 drains (sky-uk/feed's PATCH {weight:0}); a failed SET_DEST keeps the old weight", async () => {
    const { gorb, driver } = makeGorb();
    await gorb.createService("web", WEB);
    await gorb.createBackend("web", "b1", { host: "10.1.0.1" });
    await gorb.updateBackend("web", "b1", { Weight: 0 });
    expect(weights(driver)).toEqual(["10.1.0.1:80=0"]);
    driver.failNext("update-destination", "ENOMEM");
    expect((await failure(gorb.updateBackend("web", "b1", { weight: 5 }))).status).toBe(500);
    expect((await gorb.getBackend("web", "b1")).options.weight).toBe(0);
    expect(weights(driver)).toEqual(["10.1.0.1:80=0"]);
  });

  test("moving the backend is a 400", async () => {
    const { gorb } = makeGorb();
    await gorb.createService("web", WEB);
    await gorb.createBackend("web", "b1", { host: "10.1.0.1" });
    const error = await failure(gorb.updateBackend("web", "b1", { host: "10.1.0.2" }));
    expect(error.message).toBe('host: cannot move backend "b1" from 10.1.0.1:80 to 10.1.0.2:80; delete it and create it again');
    expect((await failure(gorb.updateBackend("web", "b1", { port: 8080 }))).status).toBe(400);
    await gorb.updateBackend("web", "b1", { host: "10.1.0.1", port: 80, weight: 7 });
    expect((await gorb.getBackend("web", "b1")).options.weight).toBe(7);
  });

  test("a new pulse updates the check in place; an unchanged one does not", async () => {
    const { gorb, health } = makeGorb();
    await gorb.createService("web", WEB);
    await gorb.createBackend("web", "b1", { host: "10.1.0.1" });
    await gorb.updateBackend("web", "b1", { weight: 50 });
    expect(health.updated).toEqual([]);
    await gorb.updateBackend("web", "b1", { pulse: { type: "http", interval: "5s", args: { path: "/health" } } });
    const target = health.target("web", "b1");
    expect(health.updated).toEqual([target.id]);
    expect(target.options.type).toBe("http");
    expect((await gorb.getBackend("web", "b1")).options.pulse).toEqual({
      type: "http",
      interval: "5s",
      args: { path: "/health" },
    });
  });

  test("a new probe resets the recorded health to unknown", async () => {
    const { gorb, driver, health } = makeGorb();
    await gorb.createService("web", WEB);
    await gorb.createBackend("web", "b1", { host: "10.1.0.1" });
    health.report("web", "b1", "down");
    await gorb.idle();
    expect(weights(driver)).toEqual(["10.1.0.1:80=0"]);
    // A different probe (http instead of tcp) starts over at "unknown"; a recovering backend keeps its weight.
    await gorb.updateBackend("web", "b1", { pulse: { type: "http" } });
    expect((await gorb.getBackend("web", "b1")).metrics.state).toBe("unknown");
    expect(weights(driver)).toEqual(["10.1.0.1:80=0"]);
    // Type none: the weight is the configured one whatever the health.
    await gorb.updateBackend("web", "b1", { pulse: { type: "none" } });
    expect(weights(driver)).toEqual(["10.1.0.1:80=100"]);
  });
});

describe("health-driven weights", () => {
  test("effective weight follows the policy; SET_DEST only when it changes", async () => {
    const { gorb, driver, health } = makeGorb();
    await gorb.createService("web", WEB);
    await gorb.createBackend("web", "b1", { host: "10.1.0.1", weight: 10 });
    driver.clearWrites();
    health.report("web", "b1", "up");
    await gorb.idle();
    expect(driver.writes()).toEqual([]); // 10 -> 10: nothing to write
    health.report("web", "b1", "down");
    health.report("web", "b1", "down");
    await gorb.idle();
    expect(weights(driver)).toEqual(["10.1.0.1:80=0"]);
    expect(driver.writes()).toHaveLength(1);
    health.report("web", "b1", "up", { samplesOk: 50, consecutiveOk: 1 });
    await gorb.idle();
    expect(weights(driver)).toEqual(["10.1.0.1:80=5"]); // 10 x 50/100
    health.report("web", "b1", "up", { samplesOk: 55, consecutiveOk: 2 });
    await gorb.idle();
    expect(driver.writes()).toHaveLength(2); // floor(5.5) = 5: unchanged, nothing written
    health.report("web", "b1", "up", { samplesOk: 100 });
    await gorb.idle();
    expect(weights(driver)).toEqual(["10.1.0.1:80=10"]);
    expect(driver.writes()).toHaveLength(3);
    const info = await gorb.getBackend("web", "b1");
    expect([info.options.weight, info.effective_weight, info.metrics.status, info.metrics.state]).toEqual([10, 10, 0, "up"]);
  });

  test("a failure while recovering zeroes the weight again (the original kept the partial weight)", async () => {
    const { gorb, driver, health } = makeGorb();
    await gorb.createService("web", WEB);
    await gorb.createBackend("web", "b1", { host: "10.1.0.1" });
    health.report("web", "b1", "down", { samples: 1, samplesOk: 0 });
    health.report("web", "b1", "up", { samples: 2, samplesOk: 1 });
    await gorb.idle();
    expect(weights(driver)).toEqual(["10.1.0.1:80=50"]);
    health.report("web", "b1", "down", { samples: 3, samplesOk: 1 });
    await gorb.idle();
    expect(weights(driver)).toEqual(["10.1.0.1:80=0"]);
  });

  test("a none pulse never changes the weight", async () => {
    const { gorb, driver, health } = makeGorb();
    await gorb.createService("web", WEB);
    await gorb.createBackend("web", "b1", { host: "10.1.0.1", pulse: { type: "none" } });
    health.report("web", "b1", "down");
    await gorb.idle();
    expect(weights(driver)).toEqual(["10.1.0.1:80=100"]);
  });

  test("PATCH weight while down keeps the backend at 0; recovery ramps to the new configured weight", async () => {
    const { gorb, driver, health } = makeGorb();
    await gorb.createService("web", WEB);
    await gorb.createBackend("web", "b1", { host: "10.1.0.1", weight: 10 });
    health.report("web", "b1", "down");
    await gorb.idle();
    await gorb.updateBackend("web", "b1", { weight: 40 });
    expect(weights(driver)).toEqual(["10.1.0.1:80=0"]);
    const down = await gorb.getBackend("web", "b1");
    expect([down.options.weight, down.effective_weight, down.metrics.status]).toEqual([40, 0, 1]);
    health.report("web", "b1", "up", { samplesOk: 50, consecutiveOk: 1 });
    await gorb.idle();
    expect(weights(driver)).toEqual(["10.1.0.1:80=20"]);
    await gorb.updateBackend("web", "b1", { weight: 80 }); // while recovering: the ramp applies to the new weight
    expect(weights(driver)).toEqual(["10.1.0.1:80=40"]);
  });

  test("updates for a deleted backend are ignored, also when the name is reused", async () => {
    const { gorb, driver, health } = makeGorb();
    await gorb.createService("web", WEB);
    await gorb.createBackend("web", "b1", { host: "10.1.0.1" });
    const old = health.target("web", "b1").id;
    await gorb.deleteBackend("web", "b1");
    await gorb.createBackend("web", "b1", { host: "10.1.0.1" });
    expect(health.target("web", "b1").id).not.toBe(old);
    driver.clearWrites();
    health.reportId(old, "down");
    await gorb.idle();
    expect(driver.writes()).toEqual([]);
    expect(weights(driver)).toEqual(["10.1.0.1:80=100"]);
  });

  test("a failed weight write is logged and retried on the next update", async () => {
    const { gorb, driver, health, logger } = makeGorb();
    await gorb.createService("web", WEB);
    await gorb.createBackend("web", "b1", { host: "10.1.0.1" });
    driver.failNext("update-destination", "ENOMEM");
    health.report("web", "b1", "down");
    await gorb.idle();
    expect(weights(driver)).toEqual(["10.1.0.1:80=100"]);
    expect(logger.lines.some((l) => l.startsWith('error cannot set the weight of backend "b1"'))).toBe(true);
    health.report("web", "b1", "down");
    await gorb.idle();
    expect(weights(driver)).toEqual(["10.1.0.1:80=0"]);
  });

  test("service health is the mean of checked backends; unchecked ones do not count; none -> 1", async () => {
    const { gorb, health } = makeGorb();
    await gorb.createService("web", WEB);
    expect((await gorb.getService("web")).health).toBe(1);
    await gorb.createBackend("web", "b1", { host: "10.1.0.1" });
    await gorb.createBackend("web", "b2", { host: "10.1.0.2" });
    await gorb.createBackend("web", "b3", { host: "10.1.0.3" });
    expect((await gorb.getService("web")).health).toBe(1);
    health.report("web", "b1", "up");
    health.report("web", "b2", "down", { samplesOk: 50 });
    await gorb.idle();
    expect((await gorb.getService("web")).health).toBe(0.75);
  });

  test("GET shows the monitor's live view when it has one (uptime grows between checks)", async () => {
    const { gorb, health } = makeGorb();
    await gorb.createService("web", WEB);
    await gorb.createBackend("web", "b1", { host: "10.1.0.1" });
    const id = health.target("web", "b1").id;
    health.views.set(id, {
      status: "up",
      health: 1,
      uptimeSeconds: 42,
      lastCheck: { ok: true, durationMs: 7, message: "ok" },
      samples: 3,
      samplesOk: 3,
      consecutiveOk: 3,
    });
    expect((await gorb.getBackend("web", "b1")).metrics).toEqual({
      status: 0,
      state: "up",
      health: 1,
      uptime: 42,
      last_check_ms: 7,
      message: "ok",
    });
  });
});

describe("start-up, detail and shutdown", () => {
  test("adopt(false) reports services gorb does not manage and leaves them alone", async () => {
    const { gorb, driver, logger } = makeGorb();
    await driver.addService({
      key: { ...KEY, address: "10.9.9.9" },
      scheduler: "rr",
      flags: NO_FLAGS,
      timeout: 0,
      netmask: 32,
      pe: null,
    });
    await gorb.createService("web", WEB);
    const report = await gorb.adopt(false);
    expect(report).toEqual({ flushed: false, foreign: ["tcp 10.9.9.9:80 (0 destinations)"] });
    expect(driver.peek()).toHaveLength(2);
    expect(logger.lines).toContain("warn IPVS has service tcp 10.9.9.9:80 (0 destinations) that gorb does not manage; leaving it alone");
  });

  test("adopt(true) flushes the table", async () => {
    const { gorb, driver } = makeGorb();
    await driver.addService({
      key: KEY,
      scheduler: "rr",
      flags: NO_FLAGS,
      timeout: 0,
      netmask: 32,
      pe: null,
    });
    expect(await gorb.adopt(true)).toEqual({ flushed: true, foreign: [] });
    expect(driver.peek()).toEqual([]);
    driver.failNext("flush", "EPERM");
    expect((await failure(gorb.adopt(true))).status).toBe(500);
  });

  test("listServicesDetail returns every service with backends, health and counters from one table read", async () => {
    const { gorb, health } = makeGorb();
    await gorb.createService("b", { ...WEB, port: 443 });
    await gorb.createService("a", WEB);
    await gorb.createBackend("a", "x", { host: "10.1.0.1", weight: 3 });
    health.report("a", "x", "up");
    await gorb.idle();
    const detail = await gorb.listServicesDetail();
    expect(detail.map((d) => d.id)).toEqual(["a", "b"]);
    expect(detail[0]?.backends).toEqual(["x"]);
    expect(detail[0]?.backend_details.map((b) => [b.id, b.effective_weight, b.metrics.state])).toEqual([["x", 3, "up"]]);
    expect(detail[0]?.stats?.conns).toBe(0);
    expect(detail[1]?.backend_details).toEqual([]);
  });

  test("close stops the checks and discovery, leaves the kernel as it is, and refuses later changes", async () => {
    const { gorb, driver, health, discovery } = makeGorb();
    await gorb.createService("web", WEB);
    await gorb.createBackend("web", "b1", { host: "10.1.0.1" });
    driver.clearWrites();
    await gorb.close();
    expect(health.stopped).toBe(true);
    expect(discovery.calls.at(-1)).toEqual(["close"]);
    expect(driver.writes()).toEqual([]);
    expect(driver.peek()).toHaveLength(1);
    expect((await failure(gorb.createService("x", { ...WEB, port: 1 }))).message).toBe("gorb is shutting down");
  });
});
