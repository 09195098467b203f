/**
 * An EMFILE storm: a monitor in a child process with `ulimit -n 128` runs out of file descriptors while its
 * backends are healthy. Every check then fails locally; none may take a backend down.
 */
import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import { localErrorOf } from "../../../src/health/checker.ts";

const tcp = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
const http = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("ok") });
afterAll(() => {
  tcp.stop(true);
  http.stop(true);
});

test("out of file descriptors: checks are check errors, backends stay Up, no update is sent", async () => {
  const child = Bun.spawn(["sh", "-c", `ulimit -n 128 && exec "$0" "$@"`, process.execPath, join(import.meta.dir, "_emfile-child.ts"), String(tcp.port), String(http.port)], {
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  expect({ code, err: code === 0 ? "" : err }).toEqual({ code: 0, err: "" });
  const r = JSON.parse(out.trim().split("\n").at(-1) as string) as Record<string, unknown>;
  expect(r.held as number).toBeGreaterThan(0);
  expect(r.errors as number).toBeGreaterThanOrEqual(10);
  expect(r.updatesDuring).toEqual([]);
  expect(r.duringStatus).toEqual(["up", "up"]);
  expect(r.duringKinds).toEqual(["local-error", "local-error"]);
  expect(r.duringCodes).toEqual(["EMFILE", "EMFILE"]);
  expect(r.afterStatus).toEqual(["stopped", "up"]);
}, 30_000);

test("out of file descriptors while a backend's name is looked up: a check error for every probing type, not a name that does not exist", async () => {
  // glibc cannot open /etc/hosts nor a socket to the resolver then, and Bun said ENOTFOUND (or ESERVFAIL): the
  // backend failed, its name was forgotten, for gorb's own shortage.
  const child = Bun.spawn(["sh", "-c", `ulimit -n 64 && exec "$0" "$@"`, process.execPath, join(import.meta.dir, "_emfile-lookup-child.ts"), String(tcp.port)], {
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  expect({ code, err: code === 0 ? "" : err }).toEqual({ code: 0, err: "" });
  const local = ["local-error", "EMFILE"];
  expect(JSON.parse(out.trim().split("\n").at(-1) as string)).toEqual({ tcp: local, http: local, https: local, tls: local, udp: local, dns: local, after: ["pass", ""] });
}, 30_000);

test("a connect this host's own firewall forbids (EPERM: an OUTPUT rule that drops) is a check error, not the backend's failure", () => {
  expect(["EPERM", "EMFILE", "EADDRNOTAVAIL", "EAI_AGAIN"].map(localErrorOf)).toEqual(["EPERM", "EMFILE", "EADDRNOTAVAIL", "EAI_AGAIN"]);
  // What the backend's side says stays its failure (with descriptors to spare, a refusal is the backend's), EACCES
  // included: a remote IPv6 "administratively prohibited" arrives as EACCES.
  expect(["ECONNREFUSED", "ECONNRESET", "EHOSTUNREACH", "ETIMEDOUT", "ENOTFOUND", "EACCES"].map(localErrorOf)).toEqual(["", "", "", "", "", ""]);
});
