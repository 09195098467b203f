/** The http checker's reading of the status line: what is an HTTP/1 status line and what is malformed. */
import { afterAll, expect, test } from "bun:test";
import { httpChecker } from "../../../src/health/checkers/http.ts";
import { type HttpProbe, parsePulseOptions } from "../../../src/health/options.ts";
import { TEST_CERT, TEST_KEY } from "./_tls-fixture.ts";

function httpProbe(type: "http" | "https" = "http"): HttpProbe {
  const o = parsePulseOptions({ type, args: type === "https" ? { insecure: true } : {} });
  if (o.http === null) throw new Error("not an http probe");
  return o.http;
}

let reply = "";
const socket = {
  data(s: { end(text: string): void }) {
    s.end(reply);
  },
  error() {},
};
const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket });
/** The same over TLS: the reply arrives in one record, not in the raw path's 64-byte reads. */
const tls = Bun.listen({ hostname: "127.0.0.1", port: 0, tls: { cert: TEST_CERT, key: TEST_KEY }, socket });
afterAll(() => {
  server.stop(true);
  tls.stop(true);
});

async function codeOf(text: string, type: "http" | "https" = "http"): Promise<string | undefined> {
  reply = text;
  const port = type === "http" ? server.port : tls.port;
  return (await httpChecker(httpProbe(type)).check({ host: "127.0.0.1", port }, new AbortController().signal)).code;
}

test("HTTP/1.0 and HTTP/1.1, with or without a reason phrase, bare LF: the status is read", async () => {
  expect(await codeOf("HTTP/1.0 200 OK\r\n\r\n")).toBe("200");
  expect(await codeOf("HTTP/1.1 200\r\n\r\n")).toBe("200");
  expect(await codeOf("HTTP/1.1 200 OK\n\n")).toBe("200");
});

test("a version that is not HTTP/1.<digit>, a status that is not three digits, a leading blank line: malformed", async () => {
  for (const text of ["HTTP/1.x 200 OK\r\n", "HTTP/1.  200 OK\r\n", "HTTP/1.12 200 OK\r\n", "HTTP/1.1 2000 OK\r\n", "http/1.1 200 OK\r\n", "\r\nHTTP/1.1 200 OK\r\n", "HTTP/1.1 099 Low\r\n"]) {
    expect({ text, code: await codeOf(text) }).toEqual({ text, code: "BAD_RESPONSE" });
  }
});

test("a status line longer than 1024 bytes is malformed however it arrives: in pieces (http) or whole in one TLS record (https)", async () => {
  const long = `HTTP/1.1 200 ${"x".repeat(2000)}\r\n\r\n`;
  expect(await codeOf(long)).toBe("BAD_RESPONSE");
  expect(await codeOf(long, "https")).toBe("BAD_RESPONSE");
  const fits = `HTTP/1.1 200 ${"x".repeat(1000)}\r\n\r\n`;
  expect(await codeOf(fits)).toBe("200");
  expect(await codeOf(fits, "https")).toBe("200");
});
