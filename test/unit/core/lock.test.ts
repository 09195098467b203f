/**
 * What runs under gorb's lock and what does not (issue 15 #7, #8): an apply is planned and run under the lock,
 * so a backend added over the API meanwhile survives it; DNS lookups happen before the lock, with a timeout,
 * so a health-driven drain never waits behind a request whose name does not resolve.
 */
import { describe, expect, test } from "bun:test";
import { ValidationError } from "../../../src/core/errors.ts";
import type { DeclaredService } from "../../../src/core/plan.ts";
import { ResolveTimeoutError, type HostResolver } from "../../../src/core/resolve.ts";
import { makeGorb } from "./fakes.ts";

function declare(port: number): DeclaredService[] {
  return [{ id: "web", fields: new Map<string, unknown>([["host", "web.example"], ["port", port]]), backends: [{ id: "b1", fields: new Map([["host", "10.1.0.1"]]) }] }];
}

/** A resolver the test can hold per name (lookups wait until release(name)); "never.example" never answers. */
function gatedResolver() {
  const gates = new Map<string, { promise: Promise<void>; open: () => void }>();
  const addresses: Record<string, string> = { "web.example": "10.0.0.10", "extra.example": "10.1.0.77" };
  const resolver: HostResolver = async (host) => {
    if (host === "never.example") return new Promise(() => undefined);
    await gates.get(host)?.promise;
    return [{ address: addresses[host] ?? "10.9.9.9", family: "inet" }];
  };
  return {
    resolver,
    hold: (host: string) => {
      let open: () => void = () => undefined;
      const promise = new Promise<void>((resolve) => {
        open = resolve;
      });
      gates.set(host, { promise, open });
    },
    release: (host: string) => gates.get(host)?.open(),
  };
}

describe("apply under the lock", () => {
  test("a backend added over the API while an apply re-creates its service is kept (on the new service)", async () => {
    const dns = gatedResolver();
    const { gorb, driver } = makeGorb({ resolver: dns.resolver });
    expect((await gorb.apply(declare(80))).ok).toBe(true);
    // The apply (port 80 -> 8080: a re-create) and an API backend both wait for their lookups; the apply's
    // answer comes first, the API's while the apply runs.
    dns.hold("web.example");
    dns.hold("extra.example");
    // The apply reads the kernel's service list just before it plans: that is when the API's answer comes.
    let reading: () => void = () => undefined;
    const planning = new Promise<void>((resolve) => {
      reading = resolve;
    });
    for (const name of ["listServices", "snapshot"] as const) {
      const original = driver[name].bind(driver) as () => Promise<never>;
      driver[name] = () => {
        reading();
        return original();
      };
    }
    const applying = gorb.apply(declare(8080));
    const adding = gorb.createBackend("web", "extra", { host: "extra.example" });
    dns.release("web.example");
    await planning;
    dns.release("extra.example");
    expect((await applying).ok).toBe(true);
    await adding;
    expect((await gorb.getService("web")).backends).toEqual(["b1", "extra"]);
    expect(driver.peek().map((s) => ["port" in s.service.key ? s.service.key.port : 0, s.destinations.map((d) => d.address)])).toEqual([
      [8080, ["10.1.0.1", "10.1.0.77"]],
    ]);
  });

  test("an apply is one kernel batch", async () => {
    const { gorb, driver } = makeGorb();
    let batches = 0;
    const apply = driver.apply.bind(driver);
    driver.apply = (ops) => {
      batches++;
      return apply(ops);
    };
    const many: DeclaredService[] = Array.from({ length: 20 }, (_, i) => ({
      id: `s${i}`,
      fields: new Map<string, unknown>([["host", `10.0.1.${i}`], ["port", 80]]),
      backends: Array.from({ length: 5 }, (_, j) => ({ id: `b${j}`, fields: new Map([["host", `10.2.${i}.${j}`]]) })),
    }));
    expect((await gorb.apply(many)).changes).toHaveLength(120);
    expect(batches).toBe(1);
    expect(driver.peek().flatMap((s) => s.destinations)).toHaveLength(100);
  });
});

describe("DNS outside the lock", () => {
  test("a drain is written while a request waits for a name that never resolves; the request gets 400 host", async () => {
    const dns = gatedResolver();
    const { gorb, driver, health } = makeGorb({ resolver: dns.resolver, resolveTimeoutMs: 50 });
    await gorb.createService("web", { host: "10.0.0.1", port: 80 });
    await gorb.createBackend("web", "b1", { host: "10.1.0.1" });
    let settled = false;
    const slow = gorb.createBackend("web", "b2", { host: "never.example" }).finally(() => {
      settled = true;
    });
    health.report("web", "b1", "down");
    await gorb.idle();
    expect(driver.peek()[0]?.destinations.map((d) => d.weight)).toEqual([0]);
    expect(settled).toBe(false);
    const error = await slow.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).field).toBe("host");
    expect((error as Error).message).toBe('host: cannot resolve "never.example": did not resolve within 50ms');
    expect((await gorb.getService("web")).backends).toEqual(["b1"]);
  });

  test("the default limit is 2 s, and says so", () => {
    expect(new ResolveTimeoutError(2000).message).toBe("did not resolve within 2s");
  });
});
