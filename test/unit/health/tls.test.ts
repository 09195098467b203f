/**
 * https with args.ca / args.serverName, the tls checker with a short-lived certificate made by openssl at test
 * time, and what messages never contain (response content, Location). Real servers on loopback.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CaConnector } from "../../../src/health/checkers/ca-file.ts";
import { httpChecker } from "../../../src/health/checkers/http.ts";
import { tlsChecker } from "../../../src/health/checkers/tls.ts";
import { type HttpProbe, type TlsProbe, parsePulseOptions } from "../../../src/health/options.ts";
import { TEST_CERT } from "./_tls-fixture.ts";

const live = () => new AbortController().signal;
const dir = mkdtempSync(join(tmpdir(), "gorb-tls-"));
const certPath = join(dir, "cert.pem");
const keyPath = join(dir, "key.pem");

/** A self-signed EC certificate for localhost and 127.0.0.1, valid `days` days, made now by openssl. */
function makeCert(days: number): void {
  const r = Bun.spawnSync(
    ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", keyPath, "-out", certPath,
      "-days", String(days), "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
    { stdout: "ignore", stderr: "pipe" },
  );
  if (r.exitCode !== 0) throw new Error(`openssl failed: ${r.stderr.toString()}`);
}

function httpsProbe(args: Record<string, unknown>): HttpProbe {
  const o = parsePulseOptions({ type: "https", args });
  if (o.http === null) throw new Error("not https");
  return o.http;
}
function tlsProbe(args: Record<string, unknown>): TlsProbe {
  const o = parsePulseOptions({ type: "tls", args });
  if (o.type !== "tls") throw new Error("not tls");
  return o.tls;
}

let server: ReturnType<typeof Bun.serve>;
let plain: ReturnType<typeof Bun.serve>;
const sni: string[] = [];
beforeAll(() => {
  makeCert(2); // expires in 2 days: "1 day left" after flooring
  const tls = { cert: readFileSync(certPath, "utf8"), key: readFileSync(keyPath, "utf8") };
  server = Bun.serve({ hostname: "127.0.0.1", port: 0, tls, fetch: (req) => {
    sni.push(req.headers.get("host") ?? "");
    return new Response("ok");
  } });
  plain = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (req) => {
      const path = new URL(req.url).pathname;
      if (path === "/redirect") return new Response(null, { status: 302, headers: { location: "http://10.0.0.5/admin?session=SECRET123" } });
      if (path === "/error") return new Response("db password SECRET123", { status: 500, statusText: "SECRET123" });
      return new Response("ok");
    },
  });
});
afterAll(() => {
  server.stop(true);
  plain.stop(true);
  rmSync(dir, { recursive: true, force: true });
});
const at = () => ({ host: "127.0.0.1", port: server.port as number });

describe("https: args.ca and args.serverName", () => {
  test("the CA bundle from args.ca verifies the server", async () => {
    const r = await httpChecker(httpsProbe({ ca: certPath })).check(at(), live());
    expect(r).toMatchObject({ ok: true, code: "200" });
  });

  test("without it the self-signed certificate fails verification, with its code", async () => {
    const r = await httpChecker(httpsProbe({})).check(at(), live());
    expect(r).toMatchObject({ ok: false, kind: "fail" });
    expect(r.code).toMatch(/SELF_SIGNED|UNABLE_TO|CERT/);
  });

  test("serverName must match the certificate; it defaults to hostHeader (without a port)", async () => {
    expect((await httpChecker(httpsProbe({ ca: certPath, serverName: "localhost" })).check(at(), live())).ok).toBe(true);
    const wrong = await httpChecker(httpsProbe({ ca: certPath, serverName: "wrong.example" })).check(at(), live());
    expect(wrong).toMatchObject({ ok: false, code: "ERR_TLS_CERT_ALTNAME_INVALID" });
    const byHost = await httpChecker(httpsProbe({ ca: certPath, hostHeader: "wrong.example:8443" })).check(at(), live());
    expect(byHost).toMatchObject({ ok: false, code: "ERR_TLS_CERT_ALTNAME_INVALID" });
    expect((await httpChecker(httpsProbe({ ca: certPath, hostHeader: "localhost:8443" })).check(at(), live())).ok).toBe(true);
    expect(sni.at(-1)).toBe("localhost:8443");
  });

  test("a host name target is looked up, connected at its address, and still the name the certificate must match", async () => {
    const byName = { host: "localhost", port: server.port as number };
    expect(await httpChecker(httpsProbe({ ca: certPath })).check(byName, live())).toMatchObject({ ok: true, code: "200" });
    expect(sni.at(-1)).toBe(`localhost:${server.port}`);
    const wrong = await httpChecker(httpsProbe({ ca: certPath, serverName: "wrong.example" })).check(byName, live());
    expect(wrong).toMatchObject({ ok: false, code: "ERR_TLS_CERT_ALTNAME_INVALID" });
    expect(await tlsChecker(tlsProbe({ ca: certPath })).check(byName, live())).toMatchObject({ ok: true });
  });

  test("an unreadable CA file is a check error, not a failure of the backend", async () => {
    const r = await httpChecker(httpsProbe({ ca: join(dir, "missing.pem") })).check(at(), live());
    expect(r).toMatchObject({ ok: false, kind: "local-error", code: "ENOENT" });
  });

  test("a CA file that cannot be read yet is read again at the next check: once it is there, the same checker verifies with it", async () => {
    const later = join(dir, "later.pem");
    const https = httpChecker(httpsProbe({ ca: later }));
    const tls = tlsChecker(tlsProbe({ ca: later }));
    expect(await https.check(at(), live())).toMatchObject({ ok: false, kind: "local-error", code: "ENOENT" });
    expect(await tls.check(at(), live())).toMatchObject({ ok: false, kind: "local-error", code: "ENOENT" });
    writeFileSync(later, readFileSync(certPath, "utf8"));
    expect(await https.check(at(), live())).toMatchObject({ ok: true, code: "200" });
    expect(await tls.check(at(), live())).toMatchObject({ ok: true, kind: "pass" });
  });

  test("a rotated CA file is used from the next check on: a file renamed over it, one rewritten in place, one removed", async () => {
    // TEST_CERT is another CA (it did not sign the server's certificate); certPath is the server's own.
    const rotated = join(dir, "rotated.pem");
    writeFileSync(rotated, TEST_CERT);
    const https = httpChecker(httpsProbe({ ca: rotated }));
    const tls = tlsChecker(tlsProbe({ ca: rotated }));
    const unverified = { ok: false, kind: "fail", code: expect.stringMatching(/SELF_SIGNED|UNABLE_TO|CERT/) };
    expect(await https.check(at(), live())).toMatchObject(unverified);
    expect(await tls.check(at(), live())).toMatchObject(unverified);
    // Replaced the way an operator (or a config manager) does: a new file renamed over the old one.
    writeFileSync(`${rotated}.new`, readFileSync(certPath, "utf8"));
    renameSync(`${rotated}.new`, rotated);
    expect(await https.check(at(), live())).toMatchObject({ ok: true, code: "200" });
    expect(await tls.check(at(), live())).toMatchObject({ ok: true, kind: "pass" });
    // Rewritten in place (same inode).
    writeFileSync(rotated, TEST_CERT);
    expect(await https.check(at(), live())).toMatchObject(unverified);
    expect(await tls.check(at(), live())).toMatchObject(unverified);
    // Removed: what the file holds now counts, so a check error (the backend's state does not move).
    rmSync(rotated);
    expect(await https.check(at(), live())).toMatchObject({ ok: false, kind: "local-error", code: "ENOENT" });
    expect(await tls.check(at(), live())).toMatchObject({ ok: false, kind: "local-error", code: "ENOENT" });
  });

  test("an unchanged CA file is not read again: its connector is kept from check to check", () => {
    const kept = join(dir, "kept.pem");
    writeFileSync(kept, readFileSync(certPath, "utf8"));
    const made: (string | null)[] = [];
    const connectors = new CaConnector(kept, (ca) => {
      made.push(ca);
      return { ca };
    });
    const first = connectors.get().connector;
    expect(first).not.toBeNull();
    expect(connectors.get().connector).toBe(first);
    expect(connectors.get().connector).toBe(first);
    expect(made).toHaveLength(1);
    writeFileSync(kept, TEST_CERT);
    expect(connectors.get().connector).toEqual({ ca: TEST_CERT });
    expect(made).toHaveLength(2);
  });

  test("a CA path that is not a regular file (/dev/zero, a FIFO) or is over 4 MiB is refused unread: a check error", async () => {
    // An API client names the path and the daemon runs as root: reading /dev/zero grew memory without end, and a
    // FIFO blocked the event loop for good. /dev/null stands for them here (the same check refuses every file that
    // is not regular), so that code without the check fails this test instead of hanging the run.
    const huge = join(dir, "huge.pem");
    expect(Bun.spawnSync(["truncate", "-s", String(4 * 1024 * 1024 + 1), huge]).exitCode).toBe(0);
    for (const [ca, code, problem] of [
      ["/dev/null", "EINVAL", "is not a regular file (a character device)"],
      [huge, "EFBIG", "is 4194305 bytes, over the limit of 4 MiB"],
    ] as const) {
      const viaHttps = await httpChecker(httpsProbe({ ca })).check(at(), live());
      expect(viaHttps).toMatchObject({ ok: false, kind: "local-error", code });
      expect(viaHttps.message).toEndWith(`cannot read CA file ${ca}: ${problem}`);
      expect(await tlsChecker(tlsProbe({ ca })).check(at(), live())).toMatchObject({ ok: false, kind: "local-error", code });
    }
  });

  test("a CA file the TLS library cannot use (empty, the key instead of the certificate, a corrupt certificate) is a check error, not a failure of the backend", async () => {
    const empty = join(dir, "empty.pem");
    const corrupt = join(dir, "corrupt.pem");
    writeFileSync(empty, "");
    writeFileSync(corrupt, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    for (const [ca, problem] of [
      [empty, "holds no PEM certificate"],
      [keyPath, "holds no PEM certificate"],
      [corrupt, "is not a bundle of PEM certificates the TLS library can read"],
    ] as const) {
      const viaHttps = await httpChecker(httpsProbe({ ca })).check(at(), live());
      expect(viaHttps).toMatchObject({ ok: false, kind: "local-error", code: "EINVAL" });
      expect(viaHttps.message).toEndWith(`cannot read CA file ${ca}: ${problem}`);
      expect(await tlsChecker(tlsProbe({ ca })).check(at(), live())).toMatchObject({ ok: false, kind: "local-error", code: "EINVAL" });
    }
    // A bundle with text around its certificates (comments, as in the system's bundle) is fine.
    const commented = join(dir, "commented.pem");
    writeFileSync(commented, `# the test CA\n${readFileSync(certPath, "utf8")}\n# end\n`);
    expect(await httpChecker(httpsProbe({ ca: commented })).check(at(), live())).toMatchObject({ ok: true, code: "200" });
  });

  test("bad values name their field", () => {
    expect(() => parsePulseOptions({ type: "https", args: { ca: "relative.pem" } })).toThrow("pulse.args.ca: must be the absolute path of a PEM file");
    expect(() => parsePulseOptions({ type: "https", args: { serverName: "bad name" } })).toThrow("pulse.args.serverName: must be a DNS name");
  });
});

describe("messages report status codes and error kinds, never response content", () => {
  const plainAt = () => ({ host: "127.0.0.1", port: plain.port as number });
  const probe = (path: string) => {
    const o = parsePulseOptions({ type: "http", args: { path } });
    if (o.http === null) throw new Error("not http");
    return o.http;
  };

  test("a redirect's Location is not shown", async () => {
    const r = await httpChecker(probe("/redirect")).check(plainAt(), live());
    expect(r.message).toBe(`GET http://127.0.0.1:${plain.port}/redirect: 302, expected 200 (redirect not followed)`);
    expect(JSON.stringify(r)).not.toContain("SECRET123");
  });

  test("neither the body nor the reason phrase of an error is shown", async () => {
    const r = await httpChecker(probe("/error")).check(plainAt(), live());
    expect(r).toMatchObject({ ok: false, code: "500", message: `GET http://127.0.0.1:${plain.port}/error: 500, expected 200` });
    expect(JSON.stringify(r)).not.toContain("SECRET123");
  });
});

describe("probes never use a proxy", () => {
  test("with HTTP_PROXY pointing at a proxy that answers 200 to everything, a dead backend is still Down", async () => {
    let proxied = 0;
    const proxy = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => {
      proxied++;
      return new Response("proxy says ok");
    } });
    const dead = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = dead.port;
    dead.stop(true);
    const saved = { HTTP_PROXY: process.env.HTTP_PROXY, http_proxy: process.env.http_proxy };
    process.env.HTTP_PROXY = `http://127.0.0.1:${proxy.port}`;
    process.env.http_proxy = `http://127.0.0.1:${proxy.port}`;
    try {
      // The trap is real: fetch goes through the proxy and sees 200 for the dead backend.
      expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(200);
      expect(proxied).toBe(1);
      const o = parsePulseOptions({ type: "http" });
      if (o.http === null) throw new Error("not http");
      const r = await httpChecker(o.http).check({ host: "127.0.0.1", port }, live());
      expect(r).toMatchObject({ ok: false, code: "ECONNREFUSED" });
      expect(proxied).toBe(1);
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      proxy.stop(true);
    }
  });
});

describe("tls checker", () => {
  test("a verified handshake passes and reports the days left", async () => {
    const r = await tlsChecker(tlsProbe({ ca: certPath, serverName: "localhost" })).check(at(), live());
    expect(r).toMatchObject({ ok: true, kind: "pass", message: `tls 127.0.0.1:${server.port}: handshake ok, certificate expires in 1 days` });
  });

  test("expiryDays: a certificate expiring within N days fails", async () => {
    expect((await tlsChecker(tlsProbe({ ca: certPath, expiryDays: 1 })).check(at(), live())).ok).toBe(true);
    const soon = await tlsChecker(tlsProbe({ ca: certPath, expiryDays: 14 })).check(at(), live());
    expect(soon).toMatchObject({ ok: false, code: "CERT_EXPIRES_SOON", message: `tls 127.0.0.1:${server.port}: certificate expires in 1 days, wanted at least 14` });
  });

  test("verification is on by default; insecure skips it but still checks expiry", async () => {
    expect((await tlsChecker(tlsProbe({})).check(at(), live())).ok).toBe(false);
    expect((await tlsChecker(tlsProbe({ insecure: true })).check(at(), live())).ok).toBe(true);
    expect((await tlsChecker(tlsProbe({ insecure: true, expiryDays: 30 })).check(at(), live())).code).toBe("CERT_EXPIRES_SOON");
  });

  test("a plain TCP server that speaks no TLS fails", async () => {
    const raw = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { open(s) { s.end("not tls\r\n"); }, data() {} } });
    const r = await tlsChecker(tlsProbe({ insecure: true })).check({ host: "127.0.0.1", port: raw.port }, live());
    raw.stop(true);
    expect(r.ok).toBe(false);
    expect(r.message).not.toContain("not tls");
  });
});
