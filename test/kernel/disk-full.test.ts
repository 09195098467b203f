// Disk full, then restart (issue 15 #6), against the real kernel: gorb's state lives on a tiny tmpfs that fills up
// under a stream of writes. While the state cannot be saved, changes answer 503 and the kernel is left as it was
// (or put back); once space is free again, changes are accepted. After a restart every destination the kernel
// served is still there, including one added by hand meanwhile (reported, not deleted). ipvsadm is the judge.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from "node:fs";
import { type Daemon, pollUntil, startDaemon } from "./helpers/daemon.ts";
import { assertInGuest } from "./helpers/guest.ts";
import { listIpvs, serviceByKey } from "./helpers/ipvsadm.ts";
import { type Backend, createBackends, destroyBackends, removeVip } from "./helpers/netns.ts";
import { ipvsadm, run } from "./helpers/sh.ts";

// NB: a VIP, backend indexes and an API port no other kernel test uses.
const API_PORT = 4684;
const FIRST_BACKEND = 51;
const VIP = "10.0.12.10";
const KEY = `TCP ${VIP}:80`;
const STATE = "/tmp/gorb-disk-full";
const FILLER = `${STATE}/filler`;
/** Writes sent while the disk is full. */
const STREAM = 24;

let daemon: Daemon | undefined;
let backends: Backend[] = [];
let mounted = false;

function api(): Daemon {
  if (daemon === undefined) throw new Error("no daemon is running (see the earlier failure)");
  return daemon;
}

async function start(): Promise<Daemon> {
  daemon = await startDaemon({ port: API_PORT, flags: ["--vip-interface", "lo", "-v", "--state-dir", STATE, "--reconcile-interval", "0"] });
  return daemon;
}

/** The destinations the kernel serves for the test's service, as "address:port weight". */
function served(): string[] {
  return serviceByKey(listIpvs(), KEY)
    .destinations.map((d) => `${d.address}:${d.port} w${d.weight}`)
    .sort();
}

/** Fill the tmpfs until the kernel says ENOSPC. */
function fillDisk(): void {
  const fd = openSync(FILLER, "w");
  const chunk = new Uint8Array(4096);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    if (!(error instanceof Error && "code" in error && error.code === "ENOSPC")) throw error;
  } finally {
    closeSync(fd);
  }
}

describe("disk full, then restart", () => {
  beforeAll(async () => {
    assertInGuest();
    ipvsadm("-C");
    removeVip(VIP);
    backends = await createBackends(2, { firstIndex: FIRST_BACKEND });
    mkdirSync(STATE, { recursive: true });
    // mode 0700: a new tmpfs is 1777, which gorb refuses for its state (others could plant links in it).
    run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", STATE]);
    mounted = true;
    await start();
  });

  afterAll(async () => {
    if (process.env.GORB_RIG !== "1") return;
    await daemon?.kill();
    ipvsadm("-C");
    await destroyBackends(backends);
    removeVip(VIP);
    if (mounted) run(["umount", STATE]);
    rmSync(STATE, { recursive: true, force: true });
  });

  test("writes answer 503 while the state cannot be saved; a restart keeps every serving destination", async () => {
    const [be1, be2] = backends as [Backend, Backend];
    const put = (path: string, body: unknown) => api().request("PUT", path, body);
    expect((await put("/service/web", { host: VIP, port: 80, method: "rr" })).status).toBe(200);
    for (const [id, b] of [["b1", be1], ["b2", be2]] as const) {
      expect((await put(`/service/web/${id}`, { host: b.address, port: 80, pulse: { type: "none" } })).status).toBe(200);
    }

    fillDisk();
    // A stream of writes while the disk is full: each one is either saved (200: it fit in space SQLite already
    // had) or refused with 503; none leaves the kernel and the state apart.
    const statuses: number[] = [];
    const codes = new Set<string>();
    for (let i = 0; i < STREAM; i++) {
      const res = await put(`/service/web/s${i}`, { host: be1.address, port: 8000 + i, pulse: { type: "none" } });
      statuses.push(res.status);
      if (res.status !== 200) codes.add((res.json as { code?: string }).code ?? res.text);
      const patch = await api().request("PATCH", "/service/web/b2", { weight: 50 + i });
      statuses.push(patch.status);
    }
    expect(statuses.filter((s) => s !== 200 && s !== 503)).toEqual([]);
    expect(statuses).toContain(503);
    expect([...codes]).toEqual(["UNAVAILABLE"]);
    // The kernel has exactly what gorb shows.
    const shown = (await api().request("GET", "/service/web")).json as { backends: string[] };
    expect(served()).toHaveLength(shown.backends.length);

    // Someone adds a destination by hand while gorb cannot save (as the old gorb did itself, answering 500).
    ipvsadm("-a", "-t", `${VIP}:80`, "-r", `${be2.address}:9000`, "-m", "-w", "7");
    const before = served();

    // Space again: the next write clears the refusal by itself.
    rmSync(FILLER);
    expect((await put("/service/web/after", { host: be1.address, port: 9100, pulse: { type: "none" } })).status).toBe(200);
    const table = served();
    expect(table).toEqual([...before, `${be1.address}:9100 w100`].sort());

    await api().kill();
    await start();
    await pollUntil("the restore to finish", () => (api().log().includes("restored ") ? true : undefined), {
      timeoutMs: 30_000,
      describe: () => api().tail(15),
    });
    expect(served()).toEqual(table);
    expect(api().log()).toContain(`${be2.address}:9000 in service "web", which the saved state does not know; leaving it`);
  });
});
