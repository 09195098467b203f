/**
 * Interim (1xx) responses before the final one: RFC 9110 (15.2) says a client must accept them even unasked, and
 * servers send 103 Early Hints on their own. The http checker skips them and compares the final status; 101 is
 * final (gorb never asks for an upgrade); interim responses without end fail the check instead of being read on.
 */
import { afterAll, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { httpChecker } from "../../../src/health/checkers/http.ts";
import { type HttpProbe, parsePulseOptions } from "../../../src/health/options.ts";
import { TEST_CERT, TEST_KEY } from "./_tls-fixture.ts";

const live = () => new AbortController().signal;

function httpProbe(args: Record<string, unknown> = {}, type: "http" | "https" = "http"): HttpProbe {
  const o = parsePulseOptions({ type, args });
  if (o.http === null) throw new Error("not an http probe");
  return o.http;
}

const HINTS = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\nLink: </app.js>; rel=preload\r\n\r\n";
const OK = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

describe("http checker and interim responses", () => {
  // What the servers answer to a request, as segments written one after the other (a few ms apart).
  let reply: string[] = [];
  const socket = {
    open(s: Socket<{ sent: boolean }>) {
      s.data = { sent: false };
    },
    data(s: Socket<{ sent: boolean }>) {
      if (s.data.sent) return;
      s.data.sent = true;
      const segments = [...reply];
      const next = () => {
        const segment = segments.shift();
        if (segment === undefined) return;
        s.write(segment);
        s.flush();
        setTimeout(next, 2);
      };
      next();
    },
    error() {},
  };
  const server = Bun.listen<{ sent: boolean }>({ hostname: "127.0.0.1", port: 0, socket });
  const tls = Bun.listen<{ sent: boolean }>({ hostname: "127.0.0.1", port: 0, tls: { cert: TEST_CERT, key: TEST_KEY }, socket });
  afterAll(() => {
    server.stop(true);
    tls.stop(true);
  });
  const at = (host = "127.0.0.1") => ({ host, port: server.port });

  test("103 Early Hints, then 200: the final status decides", async () => {
    reply = [HINTS + OK];
    expect(await httpChecker(httpProbe()).check(at(), live())).toMatchObject({ ok: true, code: "200", message: `GET http://127.0.0.1:${server.port}/: 200` });
    reply = [HINTS + "HTTP/1.1 503 Service Unavailable\r\n\r\n"];
    expect(await httpChecker(httpProbe()).check(at(), live())).toMatchObject({ ok: false, kind: "fail", code: "503" });
  });

  test("interim responses arriving in pieces, bare LF line ends, two of them: still the final status", async () => {
    const text = "HTTP/1.1 100 Continue\n\n" + HINTS + OK;
    // Cut everywhere a reader could go wrong: inside the status lines, between CR and LF, inside the empty line.
    reply = [];
    for (let i = 0; i < text.length; i += 7) reply.push(text.slice(i, i + 7));
    expect(await httpChecker(httpProbe()).check(at(), live())).toMatchObject({ ok: true, code: "200" });
  });

  test("the same for a host name, and through Bun.connect (https)", async () => {
    reply = [HINTS, OK];
    expect(await httpChecker(httpProbe()).check(at("localhost"), live())).toMatchObject({ ok: true, code: "200" });
    const r = await httpChecker(httpProbe({ insecure: true }, "https")).check({ host: "127.0.0.1", port: tls.port }, live());
    expect(r).toMatchObject({ ok: true, code: "200" });
  });

  test("101 is final: compared with expect", async () => {
    reply = ["HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"];
    expect(await httpChecker(httpProbe()).check(at(), live())).toMatchObject({ ok: false, code: "101" });
  });

  test("interim responses without end fail as malformed once past 64 KiB, before any timeout", async () => {
    reply = ["HTTP/1.1 103 Early Hints\r\n", ...Array.from({ length: 40 }, () => `Link: <${"x".repeat(2000)}>\r\n`)];
    const r = await httpChecker(httpProbe()).check(at(), live());
    expect(r).toMatchObject({ ok: false, kind: "fail", code: "BAD_RESPONSE" });
    reply = Array.from({ length: 30 }, () => "HTTP/1.1 100 Continue\r\n\r\n".repeat(100));
    expect(await httpChecker(httpProbe()).check(at(), live())).toMatchObject({ ok: false, kind: "fail", code: "BAD_RESPONSE" });
  });
});
