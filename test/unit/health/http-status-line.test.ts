/** The http checker's reading of the status line: what is an HTTP/1 status line and what is malformed. */
import { afterAll, expect, test } from "bun:test";
import { httpChecker } from "../../../src/health/checkers/http.ts";
import { type HttpProbe, parsePulseOptions } from "../../../src/health/options.ts";

function httpProbe(): HttpProbe {
  const o = parsePulseOptions({ type: "http" });
  if (o.http === null) throw new Error("not an http probe");
  return o.http;
}

let reply = "";
const server = Bun.listen({
  hostname: "127.0.0.1",
  port: 0,
  socket: {
    data(s) {
      s.end(reply);
    },
    error() {},
  },
});
afterAll(() => server.stop(true));

async function codeOf(text: string): Promise<string | undefined> {
  reply = text;
  return (await httpChecker(httpProbe()).check({ host: "127.0.0.1", port: server.port }, new AbortController().signal)).code;
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
