// The Debian package on a real IPVS kernel: its files (unpacked by the rig at /opt/gorb-deb; the executable is
// /usr/bin/gorb, the same bytes) installed where the package puts them, its postinst run as dpkg would (there is
// no systemd in the guest), then gorb started with the unit's own ExecStart and reloaded with its ExecReload. What
// it programs is checked with ipvsadm. kernel-suite.ts builds the executable and the package before the boot.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { EXECUTABLE_ENV, GUEST_EXECUTABLE, GUEST_PACKAGE_ROOT, gorbExe } from "./helpers/executable.ts";
import { assertInGuest } from "./helpers/guest.ts";
import { parseIpvsadmList, serviceByKey } from "./helpers/ipvsadm.ts";
import { createBackends, destroyBackends, type Backend } from "./helpers/netns.ts";
import { IPVSADM, run } from "./helpers/sh.ts";

const UNIT = `${GUEST_PACKAGE_ROOT}/lib/systemd/system/gorb.service`;
const CONFIG = "/etc/gorb/gorb.yaml";
const STATE_DIR = "/var/lib/gorb";
const API = "http://127.0.0.1:4672"; // the packaged config's listen
const API_VIP = "10.0.0.40";
const FILE_VIP = "10.0.0.41";

/** The value of a unit's `key=` line, without systemd's command prefixes ("-", "+", "@", ":", "!"). */
function unitCommand(unit: string, key: string): string[] {
  const line = unit.split("\n").find((l) => l.startsWith(`${key}=`));
  if (line === undefined) throw new Error(`the unit has no ${key}=`);
  return line.slice(key.length + 1).replace(/^[-+@:!]+/, "").split(" ");
}

function ipvs() {
  return parseIpvsadmList(run([IPVSADM, "-L", "-n"]));
}

describe("the Debian package's unit, config and postinst, on a real IPVS kernel", () => {
  let unit = "";
  let backends: Backend[] = [];
  let daemon: ReturnType<typeof Bun.spawn> | undefined;
  let log = "";

  beforeAll(async () => {
    assertInGuest();
    if (!existsSync(UNIT)) throw new Error(`${UNIT} is missing: run this file through test/rig/kernel-suite.ts, which unpacks the package for compiled*.test.ts`);
    unit = readFileSync(UNIT, "utf8");
    run([IPVSADM, "-C"]);
    backends = await createBackends(1);
  });

  afterAll(async () => {
    if (process.env.GORB_RIG !== "1") return;
    if (daemon !== undefined && daemon.exitCode === null) {
      daemon.kill("SIGKILL");
      await daemon.exited;
    }
    run([IPVSADM, "-C"]);
    await destroyBackends(backends);
    rmSync("/etc/gorb", { recursive: true, force: true });
    rmSync(STATE_DIR, { recursive: true, force: true });
  });

  test("installed as dpkg would: the conffile in /etc/gorb, postinst configure makes the state directory", () => {
    mkdirSync("/etc/gorb", { recursive: true });
    copyFileSync(`${GUEST_PACKAGE_ROOT}${CONFIG}`, CONFIG);
    rmSync(STATE_DIR, { recursive: true, force: true });
    run(["sh", `${GUEST_PACKAGE_ROOT}/DEBIAN/postinst`, "configure"]);
    expect(statSync(STATE_DIR).mode & 0o777).toBe(0o700);
  });

  test("the unit's ExecStartPre and ExecStart start gorb on the packaged config", async () => {
    const pre = unitCommand(unit, "ExecStartPre");
    expect(pre.slice(0, 2)).toEqual(["/sbin/modprobe", "-a"]);
    // "-" in the unit: a failure is ignored (ip_vs may be built in); here it is loaded already, so it must succeed.
    run(pre);
    const start = unitCommand(unit, "ExecStart");
    expect(start).toEqual([GUEST_EXECUTABLE, "serve", "--config", CONFIG]);
    const proc = Bun.spawn(start, { env: { ...EXECUTABLE_ENV }, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    daemon = proc;
    const decoder = new TextDecoder();
    const pump = async (stream: ReadableStream<Uint8Array>) => {
      for await (const chunk of stream) log += decoder.decode(chunk, { stream: true });
    };
    void pump(proc.stdout);
    void pump(proc.stderr);
    const deadline = Date.now() + 90_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`${start.join(" ")} exited ${proc.exitCode}:\n${log}`);
      try {
        const res = await fetch(`${API}/service`, { signal: AbortSignal.timeout(2_000) });
        if (res.ok && (await res.json()) !== null) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`${start.join(" ")} did not answer within 90 s:\n${log}`);
      await Bun.sleep(100);
    }
    expect(log).toContain("gorb is listening on 127.0.0.1:4672");
  });

  test("the installed CLI programs a service and a backend; ipvsadm sees them; the state is in the StateDirectory", async () => {
    const be = backends[0] as Backend;
    for (const args of [
      ["service", "add", "pkgweb", "--host", API_VIP, "--port", "80"],
      ["backend", "add", "pkgweb", "b1", "--host", be.address, "--pulse", "none"],
    ]) {
      const r = await gorbExe(args);
      expect([r.code, r.stderr.includes("error")]).toEqual([0, false]);
    }
    const svc = serviceByKey(ipvs(), `TCP ${API_VIP}:80`);
    expect(svc.destinations.map((d) => [d.address, d.port, d.forward, d.weight])).toEqual([[be.address, 80, "Masq", 100]]);
    expect(existsSync(`${STATE_DIR}/state.db`)).toBe(true);
  });

  test("ExecReload (SIGHUP) re-reads the config and applies its services", async () => {
    const reload = unitCommand(unit, "ExecReload");
    expect(reload).toEqual(["/bin/kill", "-HUP", "$MAINPID"]);
    const be = backends[0] as Backend;
    writeFileSync(
      CONFIG,
      `${readFileSync(CONFIG, "utf8")}\nservices:\n  declared:\n    host: ${FILE_VIP}\n    port: 80\n    backends:\n      d1: { host: ${be.address}, weight: 7, pulse: { type: none } }\n`,
    );
    const pid = String(daemon?.pid);
    // The guest's kill is busybox's; /bin/kill is where Debian's procps puts it.
    run([existsSync("/bin/kill") ? "/bin/kill" : "kill", "-HUP", pid]);
    // No event reaches this process from a SIGHUP: poll the kernel, with a deadline.
    const deadline = Date.now() + 60_000;
    while (!ipvs().services.some((s) => s.address === FILE_VIP)) {
      if (Date.now() > deadline) throw new Error(`no ${FILE_VIP}:80 in IPVS 60 s after SIGHUP:\n${log}`);
      await Bun.sleep(200);
    }
    expect(serviceByKey(ipvs(), `TCP ${FILE_VIP}:80`).destinations.map((d) => [d.address, d.weight])).toEqual([[be.address, 7]]);
    expect(serviceByKey(ipvs(), `TCP ${API_VIP}:80`).destinations.length).toBe(1); // the API's service is left alone
    // The daemon's output is read by this process's event loop, which spawnSync (ipvsadm) blocks: let it catch up.
    const logBy = Date.now() + 15_000;
    while (!log.includes("SIGHUP: re-read /etc/gorb/gorb.yaml")) {
      if (Date.now() > logBy) throw new Error(`no "SIGHUP: re-read /etc/gorb/gorb.yaml" in the daemon's log:\n${log}`);
      await Bun.sleep(100);
    }
  });

  test("SIGTERM (systemctl stop) exits 0 and leaves the kernel table serving", async () => {
    const proc = daemon;
    if (proc === undefined) throw new Error("gorb did not start (see the earlier test)");
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    expect(ipvs().services.map((s) => s.address).sort()).toEqual([API_VIP, FILE_VIP]);
  });
});
