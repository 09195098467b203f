/**
 * `insecure: true` skips certificate verification, the name check included. Bun reports a completed handshake
 * whose certificate does not name the SNI name as not successful even without verification, so an https or tls
 * check with insecure and a hostHeader, serverName or host name the (self-signed) certificate does not name failed
 * every time, and the backend was never up. A handshake that did not complete (not TLS at all) still fails.
 */
import { afterAll, expect, test } from "bun:test";
import { httpChecker } from "../../../src/health/checkers/http.ts";
import { tlsChecker } from "../../../src/health/checkers/tls.ts";
import { parsePulseOptions } from "../../../src/health/options.ts";
import { TEST_CERT, TEST_KEY } from "./_tls-fixture.ts";

const live = () => new AbortController().signal;
/** Serves TEST_CERT (localhost, 127.0.0.1, ::1), which nothing trusts. */
const server = Bun.serve({ hostname: "127.0.0.1", port: 0, tls: { cert: TEST_CERT, key: TEST_KEY }, fetch: () => new Response("ok") });
const notTls = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { open(s) { s.end("HTTP/1.1 200 OK\r\n\r\n"); }, data() {} } });
afterAll(() => {
  server.stop(true);
  notTls.stop(true);
});

async function check(pulse: Record<string, unknown>, host = "127.0.0.1", port = server.port as number): Promise<[boolean, string | undefined]> {
  const o = parsePulseOptions(pulse);
  const checker = o.type === "tls" ? tlsChecker(o.tls) : o.http !== null ? httpChecker(o.http) : null;
  if (checker === null) throw new Error("not https or tls");
  const r = await checker.check({ host, port }, live());
  return [r.ok, r.code];
}

test("https with insecure: a hostHeader or serverName the certificate does not name still passes", async () => {
  expect(await check({ type: "https", args: { insecure: true, hostHeader: "api.example.org" } })).toEqual([true, "200"]);
  expect(await check({ type: "https", args: { insecure: true, serverName: "api.example.org" } })).toEqual([true, "200"]);
  // Verified, the name must match.
  expect((await check({ type: "https", args: { hostHeader: "api.example.org" } }))[0]).toBe(false);
});

test("tls with insecure: a serverName the certificate does not name still passes", async () => {
  expect((await check({ type: "tls", args: { insecure: true, serverName: "api.example.org" } }))[0]).toBe(true);
});

test("with insecure, a server that does not speak TLS still fails", async () => {
  expect((await check({ type: "https", args: { insecure: true, hostHeader: "api.example.org" } }, "127.0.0.1", notTls.port))[0]).toBe(false);
  expect((await check({ type: "tls", args: { insecure: true, serverName: "api.example.org" } }, "127.0.0.1", notTls.port))[0]).toBe(false);
});
