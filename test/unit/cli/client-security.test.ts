/**
 * The CLI client against a daemon served over HTTPS (a certificate made by openssl at test time): the certificate
 * is verified, --ca / GORB_CA name the one to trust; --token-file / GORB_TOKEN_FILE, refused unless private.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createApp } from "../../../src/api/app.ts";
import { startApiServer } from "../../../src/daemon/api-server.ts";
import { makeGorb } from "../core/fakes.ts";
import { makeCertificate } from "../daemon/_openssl-cert.ts";
import { runGorb } from "./_harness.ts";

const tls = makeCertificate();
const stack = makeGorb();
const app = createApp({ gorb: stack.gorb, logger: stack.logger, token: "s3cret", https: true });
const server = startApiServer(app, { listen: { host: "127.0.0.1", port: 0 }, tls: { certFile: tls.cert, keyFile: tls.key } });
const url = `https://127.0.0.1:${server.port}`;
const tokenFile = join(tls.dir, "token");
writeFileSync(tokenFile, "s3cret\n", { mode: 0o600 });
afterAll(async () => {
  await server.stop(0);
  tls.remove();
});

describe("HTTPS", () => {
  test("--ca trusts the daemon's certificate; without it the certificate is refused and the error says --ca", async () => {
    const trusted = await runGorb(["service", "ls", "--server", url, "--ca", tls.cert, "--token", "s3cret"]);
    expect([trusted.code, trusted.stderr]).toEqual([0, ""]);
    const untrusted = await runGorb(["service", "ls", "--server", url, "--token", "s3cret"]);
    expect(untrusted.code).toBe(3);
    expect(untrusted.stderr).toContain("TLS: DEPTH_ZERO_SELF_SIGNED_CERT; the daemon's certificate is not trusted: pass its CA with --ca or GORB_CA");
  });

  test("GORB_CA works like --ca; a file that is not a certificate is a usage error", async () => {
    const run = await runGorb(["service", "ls", "--token", "s3cret"], { GORB_SERVER: url, GORB_CA: tls.cert });
    expect([run.code, run.stderr]).toEqual([0, ""]);
    const bad = await runGorb(["service", "ls", "--server", url, "--ca", tokenFile]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toStartWith(`error: --ca: ${tokenFile}: not a PEM certificate file\n`);
    // A device is not read (/dev/zero would be read without end).
    const device = await runGorb(["service", "ls", "--server", url, "--ca", "/dev/null"]);
    expect(device.code).toBe(2);
    expect(device.stderr).toStartWith("error: --ca: /dev/null: is not a regular file (a character device)\n");
  });
});

describe("token file", () => {
  test("--token-file and GORB_TOKEN_FILE send the file's token", async () => {
    const withFlag = await runGorb(["service", "ls", "--server", url, "--ca", tls.cert, "--token-file", tokenFile]);
    expect([withFlag.code, withFlag.stderr]).toEqual([0, ""]);
    const withEnv = await runGorb(["service", "ls"], { GORB_SERVER: url, GORB_CA: tls.cert, GORB_TOKEN_FILE: tokenFile });
    expect([withEnv.code, withEnv.stderr]).toEqual([0, ""]);
  });

  test("a token file others may read is refused, naming the file and the fix", async () => {
    const open = join(tls.dir, "open-token");
    writeFileSync(open, "s3cret\n");
    chmodSync(open, 0o644);
    const run = await runGorb(["service", "ls", "--server", url, "--ca", tls.cert, "--token-file", open]);
    expect(run.code).toBe(2);
    expect(run.stderr).toStartWith(
      `error: --token-file: ${open}: holds a secret but its mode is 0644 (group or others may read it); run: chmod 600 ${open}\n`,
    );
  });
  test("a token file owned by another user is refused, though private: they could change the token", async () => {
    const theirs = join(tls.dir, "their-token");
    writeFileSync(theirs, "s3cret\n", { mode: 0o600 });
    chownSync(theirs, 65534, 65534);
    const run = await runGorb(["service", "ls", "--server", url, "--ca", tls.cert, "--token-file", theirs]);
    expect(run.code).toBe(2);
    expect(run.stderr).toStartWith(
      `error: --token-file: ${theirs}: holds a secret but is owned by uid 65534 (not root), who could change it; run: chown root ${theirs}\n`,
    );
  });
});

describe("an unreadable token file", () => {
  test("is a usage error naming the file and why, not an unexpected error", async () => {
    // Private and regular, but not readable: what a root-owned 0600 token is to a user's CLI (EACCES). As root,
    // /proc/self/mem (0600, a regular file of size 0 whose read at offset 0 fails with EIO) stands in for it.
    const unreadable = "/proc/self/mem";
    for (const [args, env, source] of [
      [["--token-file", unreadable], {}, "--token-file"],
      [[], { GORB_TOKEN_FILE: unreadable }, "GORB_TOKEN_FILE"],
    ] as const) {
      const run = await runGorb(["service", "ls", "--server", url, ...args], env);
      expect([run.code, run.stderr]).toEqual([2, expect.stringMatching(new RegExp(`^error: ${source}: ${unreadable}: cannot read it \\(E[A-Z]+\\)\n`))]);
    }
  });
});

describe("secrets given where they do not belong", () => {
  test("a user and password in --server or GORB_SERVER are refused as usage, and never printed", async () => {
    for (const [args, env, source] of [
      [["service", "ls", "--server", "http://admin:hunter2@127.0.0.1:1"], {}, "--server"],
      [["service", "ls"], { GORB_SERVER: "http://admin:hunter2@127.0.0.1:1" }, "GORB_SERVER"],
    ] as const) {
      const run = await runGorb([...args], { ...env });
      expect(run.code).toBe(2);
      expect(run.stderr).toStartWith(`error: ${source}: must not hold a user or password (gorb authenticates with --token or --token-file)`);
      expect(run.stdout + run.stderr).not.toContain("hunter2");
    }
  });

  test("a --token or GORB_TOKEN with a control character (a pasted line break) is a usage error naming it, not 'cannot reach'", async () => {
    const flag = await runGorb(["service", "ls", "--server", url, "--ca", tls.cert, "--token", "s3\r\ncret"]);
    expect([flag.code, flag.stderr]).toEqual([2, expect.stringContaining("error: --token: must be one token without whitespace or control characters")]);
    const env = await runGorb(["service", "ls", "--server", url, "--ca", tls.cert], { GORB_TOKEN: "s3\ncret" });
    expect([env.code, env.stderr]).toEqual([2, expect.stringContaining("error: GORB_TOKEN: must be one token without whitespace or control characters")]);
  });
});
