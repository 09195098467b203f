/**
 * gorb serve binds its API address before it changes anything in the kernel: an address it cannot bind (taken by
 * another gorb, one no interface has) stops the start with the IPVS table and sysctls as they were, and while the
 * saved services are restored every request is answered 503 UNAVAILABLE saying so, with Retry-After.
 * The daemon runs on the memory driver, a sysctl recorder and signals of its own (DaemonHost).
 */
import { afterEach, expect, test } from "bun:test";
import { EventEmitter } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createConsola, type ConsolaReporter } from "consola";
import { parseDaemonOptions } from "../../../src/config/daemon-options.ts";
import type { SavedService } from "../../../src/core/state.ts";
import { runDaemon, type DaemonHost } from "../../../src/daemon/run.ts";
import { MemoryIpvsDriver } from "../../../src/ipvs/memory-driver.ts";
import type { ServiceWithDestinations } from "../../../src/ipvs/types.ts";
import { SqliteStateStore } from "../../../src/state/sqlite-store.ts";
import { closedPort } from "../cli/_harness.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const WEB: SavedService = {
  id: "web",
  source: "api",
  fields: { host: "10.0.0.1", port: 80, method: "rr" },
  key: { family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 },
  vip: false,
};

/** A state directory holding service web, which a restore adds to an empty kernel. */
function stateDirWithWeb(): string {
  const dir = mkdtempSync(join(tmpdir(), "gorb-start-listen-"));
  dirs.push(dir);
  const store = SqliteStateStore.open(dir);
  store.commit({ putServices: [WEB], deleteServices: [], putBackends: [], deleteBackends: [] });
  store.close();
  return dir;
}

/** The memory driver, whose snapshot (the restore's read of the table) waits until `release`. */
class HeldDriver extends MemoryIpvsDriver {
  readonly asked = Promise.withResolvers<void>();
  readonly #held = Promise.withResolvers<void>();

  override async snapshot(): Promise<ServiceWithDestinations[]> {
    this.asked.resolve();
    await this.#held.promise;
    return super.snapshot();
  }

  release(): void {
    this.#held.resolve();
  }

  onFamilyChange(): void {}
}

/** A host of `driver`, recording the sysctl writes asked for; its signals are an emitter the test fires. */
function fakeHost(driver: HeldDriver) {
  const sysctlCalls: boolean[] = [];
  const signals = new EventEmitter();
  const host: DaemonHost = {
    openDriver: () => driver,
    applySysctls: (set) => {
      sysctlCalls.push(set);
      return { values: { expire_nodest_conn: 1 }, warnings: [] };
    },
    signals,
  };
  return { host, sysctlCalls, signals };
}

/** A logger that drops everything but resolves `ready` at the daemon's "gorb is listening" line. */
function readyLogger() {
  const ready = Promise.withResolvers<void>();
  const reporter: ConsolaReporter = {
    log: (record) => {
      if (String(record.args[0]).startsWith("gorb is listening on ")) ready.resolve();
    },
  };
  return { log: createConsola({ level: 5, reporters: [reporter] }), ready: ready.promise };
}

for (const [what, listen, code] of [
  ["taken by another program", null, "EADDRINUSE"],
  ["that no interface has (TEST-NET-1)", "192.0.2.77:0", "EADDRNOTAVAIL"],
] as const) {
  test(`a listen address ${what} stops the start before the kernel is changed: no IPVS write, no sysctl set`, async () => {
    const other = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("other") });
    try {
      const driver = new HeldDriver();
      driver.release();
      const { host, sysctlCalls } = fakeHost(driver);
      const options = parseDaemonOptions({ stateDir: stateDirWithWeb(), listen: listen ?? `127.0.0.1:${other.port}`, reconcileInterval: "0" });
      const error = await runDaemon(options, createConsola({ level: -999 }), host).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toMatchObject({ name: "ListenError", code });
      expect(driver.writes()).toEqual([]);
      expect(driver.peek()).toEqual([]);
      expect(sysctlCalls).toEqual([]);
    } finally {
      other.stop(true);
    }
  });
}

test("while the saved services are restored, requests are answered 503 UNAVAILABLE saying so; then served", async () => {
  const driver = new HeldDriver();
  const { host, sysctlCalls, signals } = fakeHost(driver);
  const port = closedPort();
  const url = `http://127.0.0.1:${port}`;
  const { log, ready } = readyLogger();
  const options = parseDaemonOptions({ stateDir: stateDirWithWeb(), listen: `127.0.0.1:${port}`, reconcileInterval: "0" });
  const running = runDaemon(options, log, host);
  await driver.asked.promise;

  // The sysctls are set once the address is bound; the restore waits on the table read.
  expect(sysctlCalls).toEqual([true]);
  for (const path of ["/service", "/metrics", "/service/web"]) {
    const starting = await fetch(`${url}${path}`);
    expect(starting.status).toBe(503);
    expect(starting.headers.get("retry-after")).toBe("1");
    expect(await starting.json()).toEqual({ error: "gorb is starting: restoring 1 saved service(s); try again shortly", code: "UNAVAILABLE" });
  }
  expect(driver.peek()).toEqual([]);

  driver.release();
  await ready;
  const served = await fetch(`${url}/service`);
  expect(served.status).toBe(200);
  expect(await served.json()).toEqual(["web"]);
  expect(driver.peek().map((s) => s.service.key)).toEqual([WEB.key]);

  signals.emit("SIGTERM");
  await running;
});
