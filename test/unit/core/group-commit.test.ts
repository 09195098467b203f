/**
 * Group commit and a store that cannot write (issue 15 #6): requests queued together share one commit; a
 * failed commit undoes every request of the group in memory and in the kernel and answers 503; while the
 * store cannot write, requests are refused with 503 before the kernel is touched; once it writes again they
 * are accepted.
 */
import { describe, expect, test } from "bun:test";
import { GorbError, UnavailableError } from "../../../src/core/errors.ts";
import { makeGorb } from "./fakes.ts";
import { MemoryStateStore } from "./memory-store.ts";

async function outcome(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "ok";
  } catch (error) {
    return error instanceof GorbError ? `${error.status} ${error.code}` : String(error);
  }
}

async function withWeb() {
  const store = new MemoryStateStore();
  const stack = makeGorb({ store });
  await stack.gorb.createService("web", { host: "10.0.0.1", port: 80 });
  await stack.gorb.createBackend("web", "b0", { host: "10.1.0.100" });
  stack.driver.clearWrites();
  return { ...stack, store };
}

const hosts = [1, 2, 3, 4, 5].map((i) => `10.1.0.${i}`);

describe("group commit", () => {
  test("concurrent requests share one commit, and each is on disk before it is answered", async () => {
    const { gorb, store, driver } = await withWeb();
    const before = store.commits.length;
    const results = await Promise.all(hosts.map((host, i) => outcome(gorb.createBackend("web", `b${i + 1}`, { host }))));
    expect(results).toEqual(["ok", "ok", "ok", "ok", "ok"]);
    expect(store.commits.length).toBe(before + 1);
    expect(store.commits.at(-1)?.putBackends.map((b) => b.id)).toEqual(["b1", "b2", "b3", "b4", "b5"]);
    expect(driver.writes()).toHaveLength(5);
  });

  test("a refused request in a group gets its own error; the others are committed", async () => {
    const { gorb, store } = await withWeb();
    const before = store.commits.length;
    const results = await Promise.all([
      outcome(gorb.createBackend("web", "b1", { host: "10.1.0.1" })),
      outcome(gorb.createBackend("web", "b2", { host: "10.1.0.1" })), // same destination: 409
      outcome(gorb.createBackend("nope", "b3", { host: "10.1.0.3" })),
      outcome(gorb.updateBackend("web", "b0", { weight: 5 })),
    ]);
    expect(results).toEqual(["ok", "409 CONFLICT", "404 NOT_FOUND", "ok"]);
    expect(store.commits.length).toBe(before + 1);
    expect(store.backends.get("web/b0")?.fields).toEqual({ host: "10.1.0.100", weight: 5 });
  });

  test("a failed commit answers 503 to every request of the group and leaves memory and kernel as they were", async () => {
    const { gorb, store, driver, health } = await withWeb();
    const kernelBefore = driver.peek();
    const viewBefore = await gorb.listServicesDetail();
    store.failNext("No space left on device");
    const results = await Promise.all([
      outcome(gorb.createBackend("web", "b1", { host: "10.1.0.1" })),
      outcome(gorb.updateBackend("web", "b0", { weight: 3, method: "dr" })),
      outcome(gorb.deleteBackend("web", "b0")),
      outcome(gorb.createService("api", { host: "10.0.0.2", port: 443 })),
    ]);
    expect(results).toEqual(["503 UNAVAILABLE", "503 UNAVAILABLE", "503 UNAVAILABLE", "503 UNAVAILABLE"]);
    expect(driver.peek()).toEqual(kernelBefore);
    expect(await gorb.listServicesDetail()).toEqual(viewBefore);
    expect([...health.targets.keys()].map((id) => id.replace(/#\d+$/, ""))).toEqual(["web/b0"]);
  });

  test("while the store cannot write, requests are refused with 503 before the kernel is touched; then it clears itself", async () => {
    const { gorb, store, driver } = await withWeb();
    store.broken = "No space left on device";
    expect(await outcome(gorb.createBackend("web", "b1", { host: "10.1.0.1" }))).toBe("503 UNAVAILABLE");
    driver.clearWrites();
    const error = await gorb.createBackend("web", "b2", { host: "10.1.0.2" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnavailableError);
    expect((error as UnavailableError).part).toBe("state");
    expect((error as Error).message).toBe(
      "gorb cannot save its state to memory:state (No space left on device); changes are refused until it can",
    );
    expect(await outcome(gorb.deleteService("web"))).toBe("503 UNAVAILABLE");
    expect(driver.writes()).toEqual([]);
    expect(store.probes).toBe(2);
    store.broken = null;
    expect(await outcome(gorb.createBackend("web", "b2", { host: "10.1.0.2" }))).toBe("ok");
    expect(store.backends.has("web/b2")).toBe(true);
    expect(driver.writes().map((w) => w.op)).toEqual(["add-destination"]);
  });

  test("health updates go on while the store cannot write (they are not saved)", async () => {
    const { gorb, store, driver, health } = await withWeb();
    store.broken = "No space left on device";
    health.report("web", "b0", "down");
    await gorb.idle();
    expect(driver.peek()[0]?.destinations.map((d) => d.weight)).toEqual([0]);
  });
});

describe("apply and the store", () => {
  const declared = [
    {
      id: "api",
      fields: new Map<string, unknown>([["host", "10.0.0.2"], ["port", 443]]),
      backends: [{ id: "a1", fields: new Map<string, unknown>([["host", "10.1.0.21"]]) }],
    },
  ];

  test("an apply whose commit fails answers 503 and leaves the kernel and gorb as they were", async () => {
    const { gorb, store, driver } = await withWeb();
    const before = driver.peek();
    store.failNext("No space left on device");
    expect(await outcome(gorb.apply(declared))).toBe("503 UNAVAILABLE");
    expect(driver.peek()).toEqual(before);
    expect(gorb.listServices()).toEqual(["web"]);
    // The store writes again: the same apply goes through.
    expect((await gorb.apply(declared)).ok).toBe(true);
    expect(store.services.get("api")?.source).toBe("file");
  });

  test("while the store cannot write, an apply is refused before the kernel is touched (a dry run still plans)", async () => {
    const { gorb, store, driver } = await withWeb();
    store.failNext("No space left on device");
    expect(await outcome(gorb.deleteBackend("web", "b0"))).toBe("503 UNAVAILABLE");
    store.broken = "No space left on device";
    driver.clearWrites();
    expect(await outcome(gorb.apply(declared))).toBe("503 UNAVAILABLE");
    expect(driver.writes()).toEqual([]);
    expect((await gorb.apply(declared, { dryRun: true })).changes.map((c) => c.action)).toEqual(["create", "create"]);
  });
});

describe("health updates", () => {
  test("updates that arrive together are written as one kernel batch", async () => {
    const { gorb, driver, health } = await withWeb();
    for (const host of hosts) await gorb.createBackend("web", host, { host });
    let batches = 0;
    const apply = driver.apply.bind(driver);
    driver.apply = (ops) => {
      batches++;
      return apply(ops);
    };
    for (const host of hosts) health.report("web", host, "down");
    await gorb.idle();
    expect(batches).toBe(1);
    expect(driver.peek()[0]?.destinations.filter((d) => d.weight === 0)).toHaveLength(5);
  });
});
