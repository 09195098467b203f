/**
 * The tls checker and a certificate that has already expired, seen with `insecure` (verification would refuse it
 * as CERT_HAS_EXPIRED): its words say it expired, not "expires in -2 days", and `expiryDays` fails it with the
 * code verification gives it. The certificate is made by openssl at test time, its notAfter a day ago.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tlsChecker } from "../../../src/health/checkers/tls.ts";
import { type TlsProbe, parsePulseOptions } from "../../../src/health/options.ts";

const dir = mkdtempSync(join(tmpdir(), "gorb-tls-expired-"));
const keyPath = join(dir, "key.pem");
const freshPath = join(dir, "fresh.pem");
const certPath = join(dir, "cert.pem");

function openssl(args: string[]): void {
  const r = Bun.spawnSync(["openssl", ...args], { stdout: "ignore", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`openssl failed: ${r.stderr.toString()}`);
}
openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", keyPath, "-out", freshPath, "-days", "1", "-subj", "/CN=localhost"]);
// Re-signed valid for -1 days: notAfter is a day before now.
openssl(["x509", "-in", freshPath, "-signkey", keyPath, "-days", "-1", "-out", certPath]);

const server = Bun.listen({ hostname: "127.0.0.1", port: 0, tls: { cert: readFileSync(certPath, "utf8"), key: readFileSync(keyPath, "utf8") }, socket: { data() {}, error() {} } });
afterAll(() => {
  server.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

function tlsProbe(args: Record<string, unknown>): TlsProbe {
  const o = parsePulseOptions({ type: "tls", args });
  if (o.type !== "tls") throw new Error("not tls");
  return o.tls;
}
const target = () => ({ host: "127.0.0.1", port: server.port });

test("an expired certificate under insecure: the pass says it expired, expiryDays fails it as CERT_HAS_EXPIRED", async () => {
  const where = `127.0.0.1:${server.port}`;
  const pass = await tlsChecker(tlsProbe({ insecure: true })).check(target(), new AbortController().signal);
  expect(pass).toMatchObject({ ok: true, message: `tls ${where}: handshake ok, certificate expired 1 days ago` });
  const fail = await tlsChecker(tlsProbe({ insecure: true, expiryDays: 0 })).check(target(), new AbortController().signal);
  expect(fail).toMatchObject({ ok: false, code: "CERT_HAS_EXPIRED", message: `tls ${where}: certificate expired 1 days ago, wanted at least 0` });
});
