/**
 * A resolver outage is gorb's problem, not the backend's: a check of a backend given by name whose lookup fails
 * with EAI_AGAIN (resolver unreachable, timed out, SERVFAIL) is a check error, which changes no state. The child
 * runs in a mount namespace of its own (`unshare -rm`) whose /etc/resolv.conf names a resolver that refuses
 * every query; where unshare is not allowed the test is skipped.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const dir = mkdtempSync(join(tmpdir(), "gorb-resolver-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const canUnshare = Bun.spawnSync(["unshare", "-rm", "true"], { stdout: "ignore", stderr: "ignore" }).exitCode === 0;

test.skipIf(!canUnshare)("a lookup the resolver cannot answer (EAI_AGAIN) is a check error for every probing type", async () => {
  const conf = join(dir, "resolv.conf");
  writeFileSync(conf, "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n");
  const script = `mount --bind "$1" /etc/resolv.conf && shift && exec "$@"`;
  const child = Bun.spawn(["unshare", "-rm", "sh", "-c", script, "sh", conf, process.execPath, join(import.meta.dir, "_resolver-outage-child.ts")], {
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  expect({ code, err: code === 0 ? "" : err }).toEqual({ code: 0, err: "" });
  const local = ["local-error", "EAI_AGAIN"];
  expect(JSON.parse(out.trim().split("\n").at(-1) as string)).toEqual({ tcp: local, http: local, https: local, tls: local, udp: local, dns: local });
}, 20_000);
