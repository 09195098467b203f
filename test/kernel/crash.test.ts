// `kill -9` in the middle of an apply, against the real kernel: gorb writes IPVS before it commits, and records the
// services it is about to create first, so whatever moment the kill lands at, the restarted gorb serves exactly the
// services its state holds (the ones the apply created and never saved are removed, with a warning), and the same
// apply sent again works. Before the record, the services created between the kernel write and the commit stayed in
// IPVS as services gorb does not manage, and the second apply failed on each with a 409. ipvsadm is the judge. The
// kill lands where it lands (in the runs of 2026-12-04 with 103 and 300 of the 300 services in IPVS); the invariant
// is checked either way, and without the record a kill inside the window failed it (orphans in IPVS).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { type ApiResponse, type Daemon, pollUntil, startDaemon } from "./helpers/daemon.ts";
import { assertInGuest } from "./helpers/guest.ts";
import { listIpvs } from "./helpers/ipvsadm.ts";
import { ipvsadm, run } from "./helpers/sh.ts";

// NB: addresses and an API port no other kernel test uses.
const API_PORT = 4693;
const SERVICES = 300;
const BACKENDS = 4;
const ROUTE = "10.96.0.0/16";

const vip = (i: number) => `10.0.${60 + Math.floor(i / 200)}.${(i % 200) + 1}`;
const keyOf = (i: number) => `TCP ${vip(i)}:80`;

/** The declared set: SERVICES NAT services of BACKENDS each, no health checks. */
function declared(): { services: Record<string, unknown> } {
  const services: Record<string, unknown> = {};
  for (let i = 0; i < SERVICES; i++) {
    const backends: Record<string, unknown> = {};
    for (let j = 0; j < BACKENDS; j++) {
      const n = i * BACKENDS + j;
      backends[`b${j}`] = { host: `10.96.${Math.floor(n / 250)}.${(n % 250) + 1}`, port: 8080, pulse: { type: "none" } };
    }
    services[`s${i}`] = { host: vip(i), port: 80, backends };
  }
  return { services };
}

/** The kernel's services of this test, as ipvsadm keys. */
function kernelServices(): string[] {
  return listIpvs()
    .services.map((s) => s.key)
    .filter((k) => k.startsWith("TCP 10.0.6"))
    .sort();
}

let stateDir = "";
let daemon: Daemon | undefined;

function start(): Promise<Daemon> {
  return startDaemon({ port: API_PORT, flags: ["-v", "--state-dir", stateDir, "--reconcile-interval", "0"] }).then((d) => (daemon = d));
}

describe("kill -9 during an apply", () => {
  beforeAll(() => {
    assertInGuest();
    ipvsadm("-C");
    run(["/usr/sbin/ip", "route", "replace", ROUTE, "dev", "lo"]);
    stateDir = mkdtempSync("/tmp/gorb-crash-");
  });
  afterAll(async () => {
    await daemon?.kill();
    ipvsadm("-C");
    run(["/usr/sbin/ip", "route", "del", ROUTE, "dev", "lo"]);
    rmSync(stateDir, { recursive: true, force: true });
  });

  test("the restarted gorb serves exactly what its state holds, and the same apply works again", async () => {
    const first = await start();
    let answer: ApiResponse | null = null;
    const applying = first.request("POST", "/apply", declared()).then(
      (r) => {
        answer = r;
      },
      () => undefined,
    );
    // The kill lands while the kernel batch is under way: the first of the apply's services is in IPVS.
    await pollUntil("the apply's first service in IPVS", () => (kernelServices().length > 0 ? true : undefined), {
      timeoutMs: 120_000,
      everyMs: 20,
      describe: () => `apply answer ${answer === null ? "none yet" : `${answer.status} ${answer.text.slice(0, 300)}`}\n${first.tail()}`,
    });
    await first.kill();
    await applying;
    const atKill = kernelServices().length;

    const second = await start();
    const listed = (await second.request("GET", "/service")).json as string[];
    // Exactly the saved services, in gorb and in the kernel: none left over as "not managed by gorb".
    expect(kernelServices()).toEqual(listed.map((id) => keyOf(Number(id.slice(1)))).sort());
    console.log(`kill -9 with ${atKill} of ${SERVICES} services in IPVS; the restarted gorb holds ${listed.length}`);
    if (listed.length < atKill) expect(second.log()).toContain("gorb was creating it when it stopped");

    const again = await second.request("POST", "/apply", declared());
    if (again.status !== 200) throw new Error(`the second apply answered ${again.status}: ${again.text.slice(0, 600)}\n--- log ---\n${second.tail()}`);
    expect((again.json as { ok: boolean }).ok).toBe(true);
    expect(kernelServices()).toHaveLength(SERVICES);
    await second.stop();
  });
});
