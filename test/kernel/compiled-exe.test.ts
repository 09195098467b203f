// The single executable (dist/gorb, at /usr/bin/gorb in the guest) on a machine without libnl: its daemon and client
// commands against the real kernel, cross-checked with ipvsadm (which gets the hidden libnl through LD_LIBRARY_PATH)
// and with traffic through the virtual IP. kernel-suite.ts builds the executable before the guest boots.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { countResponses } from "./helpers/client.ts";
import {
  GUEST_EXECUTABLE,
  HIDDEN_LIBNL_DIR,
  type ServeProcess,
  gorbExe,
  hideLibnl,
  ipvsadmWithHiddenLibnl,
  libnlInLibraryPaths,
  listIpvsWithHiddenLibnl,
  startServe,
} from "./helpers/executable.ts";
import { assertInGuest } from "./helpers/guest.ts";
import { serviceByKey } from "./helpers/ipvsadm.ts";
import { createBackends, destroyBackends, removeVip, type Backend } from "./helpers/netns.ts";
import { CommandError, IPVSADM, ip, run } from "./helpers/sh.ts";

const VIP = "10.0.0.20";
const SERVICE_KEY = `TCP ${VIP}:80`;
const API = "http://127.0.0.1:4672";
const REQUESTS = 20;

/** The non-empty lines of `gorb status` / `service ls` output, split into cells (tree marks dropped). */
function rows(text: string): string[][] {
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => line.replace(/^[├└│]/, "").trim().split(/\s+/));
}

/** Expects a successful run and returns stdout + stderr (consola prints its success lines on either). */
function ok(run: { code: number; stdout: string; stderr: string }, what: string): string {
  if (run.code !== 0) throw new Error(`${what} exited ${run.code}:\n${run.stdout}${run.stderr}`);
  return run.stdout + run.stderr;
}

describe("compiled gorb without libnl on a real IPVS kernel", () => {
  let restoreLibnl: (() => void) | undefined;
  let backends: Backend[] = [];
  let be1: Backend;
  let be2: Backend;
  let serve: ServeProcess | undefined;

  beforeAll(async () => {
    assertInGuest();
    if (!existsSync(GUEST_EXECUTABLE)) {
      throw new Error(`${GUEST_EXECUTABLE} is missing: run this file through test/rig/kernel-suite.ts, which builds dist/gorb for compiled*.test.ts`);
    }
    run([IPVSADM, "-C"]);
    backends = await createBackends(2);
    [be1, be2] = backends as [Backend, Backend];
    restoreLibnl = hideLibnl();
  });

  afterAll(async () => {
    if (process.env.GORB_RIG !== "1") return; // beforeAll already failed with directions; nothing to undo
    try {
      if (serve) await serve.stop();
    } finally {
      restoreLibnl?.();
      run([IPVSADM, "-C"]);
      await destroyBackends(backends);
      removeVip(VIP);
    }
  });

  test("libnl is in no library path: plain ipvsadm cannot start, the hidden copy serves it", () => {
    expect(libnlInLibraryPaths()).toEqual([]);
    let failure: unknown;
    try {
      run([IPVSADM, "-Ln"]);
    } catch (error) {
      failure = error;
    }
    expect(failure).toBeInstanceOf(CommandError);
    expect((failure as CommandError).stderr).toContain("libnl");
    expect(ipvsadmWithHiddenLibnl("-Ln")).toContain("IP Virtual Server version");
    expect(existsSync(`${HIDDEN_LIBNL_DIR}/libnl-genl-3.so.200`)).toBe(true);
  });

  test("gorb serve starts on the embedded libnl and answers", async () => {
    serve = await startServe(["-v", "-l", "127.0.0.1:4672", "--vip-interface", "lo"], API);
    const out = serve.output();
    expect(out).toMatch(/libnl: embedded:memfd/); // memory files, never a directory (README: Native libraries)
    expect(out).toContain("gorb is listening on 127.0.0.1:4672");
    expect(listIpvsWithHiddenLibnl().services).toEqual([]);
  });

  test("service add creates the kernel service and the VIP on lo", async () => {
    expect(ok(await gorbExe(["service", "add", "web", "--host", VIP, "--port", "80"]), "gorb service add")).toContain("service web created");
    const svc = serviceByKey(listIpvsWithHiddenLibnl(), SERVICE_KEY);
    expect(svc).toMatchObject({ protocol: "TCP", address: VIP, port: 80, scheduler: "wrr", persistence: null });
    expect(svc.destinations).toEqual([]);
    expect(ip("-o", "addr", "show", "dev", "lo")).toContain(` ${VIP}/32 `);
  });

  test("backend add (port from the service) adds NAT destinations", async () => {
    expect(ok(await gorbExe(["backend", "add", "web", "b1", "--host", be1.address, "--pulse", "http"]), "gorb backend add b1")).toContain(
      "backend web/b1 added",
    );
    expect(serviceByKey(listIpvsWithHiddenLibnl(), SERVICE_KEY).destinations).toEqual([
      { family: "inet", address: be1.address, port: 80, forward: "Masq", weight: 100, activeConns: 0, inactiveConns: 0 },
    ]);
    ok(await gorbExe(["backend", "add", "web", "b2", "--host", be2.address, "--pulse", "http"]), "gorb backend add b2");
    const dests = serviceByKey(listIpvsWithHiddenLibnl(), SERVICE_KEY).destinations;
    expect(dests.map((d) => [d.address, d.port, d.forward, d.weight])).toEqual([
      [be1.address, 80, "Masq", 100],
      [be2.address, 80, "Masq", 100],
    ]);
  });

  test("status, status --json and service ls show what the kernel has", async () => {
    const status = ok(await gorbExe(["status"]), "gorb status");
    const table = rows(status);
    expect(table[0]?.slice(0, 4)).toEqual(["NAME", "ADDRESS", "MODE", "WEIGHT"]);
    expect(table.slice(1).map((r) => r.slice(0, 3))).toEqual([
      ["web", "tcp", `${VIP}:80`],
      ["b1", `${be1.address}:80`, "nat"],
      ["b2", `${be2.address}:80`, "nat"],
    ]);

    const json = JSON.parse((await gorbExe(["status", "--json"])).stdout) as unknown;
    expect(json).toMatchObject([
      {
        id: "web",
        options: { host: VIP, port: 80, protocol: "tcp", method: "wrr", address: VIP },
        backends: ["b1", "b2"],
        backend_details: [
          { id: "b1", options: { host: be1.address, port: 80, weight: 100, method: "nat", pulse: { type: "http" } } },
          { id: "b2", options: { host: be2.address, port: 80, weight: 100, method: "nat", pulse: { type: "http" } } },
        ],
      },
    ]);

    const ls = rows(ok(await gorbExe(["service", "ls"]), "gorb service ls"));
    expect(ls.slice(1)).toEqual([["web", "tcp", `${VIP}:80`, "wrr", "-", "2", "1.00"]]);
  });

  test(`${REQUESTS} requests through the VIP are answered by both backends`, async () => {
    const result = await countResponses({ host: VIP, port: 80, requests: REQUESTS });
    expect(result.failures).toEqual([]);
    expect(Object.keys(result.counts).sort()).toEqual([be1.name, be2.name]);
    expect((result.counts[be1.name] ?? 0) + (result.counts[be2.name] ?? 0)).toBe(REQUESTS);
  });

  test("status then shows the kernel's connection counts, read by the daemon's dump thread (an embedded worker)", async () => {
    // ACT/INACT of each backend as `ipvsadm -Ln` has them: the connections just made linger as inactive (TIME_WAIT).
    const kernel = serviceByKey(listIpvsWithHiddenLibnl(), SERVICE_KEY).destinations;
    const table = rows(ok(await gorbExe(["status"]), "gorb status"));
    const counts = (name: string) => table.find((r) => r[0] === name)?.find((cell) => /^\d+\/\d+$/.test(cell));
    const expected = (address: string) => {
      const d = kernel.find((x) => x.address === address);
      return d === undefined ? undefined : `${d.activeConns ?? "?"}/${d.inactiveConns ?? "?"}`;
    };
    expect([counts("b1"), counts("b2")]).toEqual([expected(be1.address), expected(be2.address)]);
    const total = kernel.reduce((sum, d) => sum + (d.activeConns ?? 0) + (d.inactiveConns ?? 0), 0);
    expect(total).toBeGreaterThan(0);
  });

  test("backend rm removes the destination; traffic goes to the one left", async () => {
    expect(ok(await gorbExe(["backend", "rm", "web", "b2"]), "gorb backend rm")).toContain("backend web/b2 removed");
    expect(serviceByKey(listIpvsWithHiddenLibnl(), SERVICE_KEY).destinations.map((d) => d.address)).toEqual([be1.address]);
    const result = await countResponses({ host: VIP, port: 80, requests: 4 });
    expect([result.failures, result.counts]).toEqual([[], { [be1.name]: 4 }]);
  });

  test("status --direct reads the kernel table itself, on the embedded libnl", async () => {
    const direct = await gorbExe(["status", "--direct"]);
    const table = rows(ok(direct, "gorb status --direct"));
    expect(table.slice(1).map((r) => r[0])).toEqual([`tcp:${VIP}:80`, `${be1.address}:80`]);
    expect(table[2]?.slice(0, 3)).toEqual([`${be1.address}:80`, `${be1.address}:80`, "nat"]);
  });

  test("SIGTERM stops the daemon with exit 0 and leaves the kernel table as it is", async () => {
    const running = serve;
    if (!running) throw new Error("gorb serve did not start (see the earlier test)");
    serve = undefined;
    expect(await running.stop()).toBe(0);
    expect(running.output()).toContain("gorb stopped");
    expect(serviceByKey(listIpvsWithHiddenLibnl(), SERVICE_KEY).destinations.map((d) => d.address)).toEqual([be1.address]);
  });
});
