/**
 * A resolver outage is gorb's problem, not the backend's: a check of a backend given by name whose lookup fails
 * with EAI_AGAIN (resolver unreachable, timed out, SERVFAIL), or is still running when the check's timeout comes,
 * is a check error, which changes no state; a name that resolved once is still checked at its address. The child
 * runs in namespaces of its own (`unshare -rmn`: its own /etc/resolv.conf and /etc/hosts, its own loopback for a
 * resolver on port 53), as the other namespace tests here; where `unshare` is not allowed they fail with its error.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const dir = mkdtempSync(join(tmpdir(), "gorb-resolver-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the child in `mode` and gives its JSON line. */
async function child(mode: string): Promise<unknown> {
  const conf = join(dir, `resolv-${mode}.conf`);
  const hosts = join(dir, `hosts-${mode}`);
  writeFileSync(conf, "nameserver 127.0.0.1\noptions timeout:2 attempts:1\n");
  writeFileSync(hosts, "127.0.0.1 localhost\n127.0.0.1 backend.gorb.test\n");
  const script = `ip link set lo up && mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/hosts && shift 2 && exec "$@"`;
  const argv = ["unshare", "-rmn", "sh", "-c", script, "sh", conf, hosts, process.execPath, join(import.meta.dir, "_resolver-outage-child.ts"), mode, hosts];
  const proc = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  expect({ code, err: code === 0 ? "" : err }).toEqual({ code: 0, err: "" });
  return JSON.parse(out.trim().split("\n").at(-1) as string);
}

test("a lookup the resolver cannot answer (EAI_AGAIN) is a check error for every probing type", async () => {
  const local = ["local-error", "EAI_AGAIN"];
  expect(await child("refused")).toEqual({ tcp: local, http: local, https: local, tls: local, udp: local, dns: local });
}, 20_000);

test("a lookup still running at the timeout is a check error; a name known before is checked at its address", async () => {
  const local = ["local-error", "EAI_AGAIN"];
  expect(await child("silent")).toEqual({
    tcp: local,
    http: local,
    https: local,
    tls: local,
    udp: local,
    dns: local,
    monitor: { updates: 0, status: "unknown", kind: "local-error", timedOut: 0 },
    known: ["pass", ""],
    stale: ["pass", ""],
  });
}, 20_000);
