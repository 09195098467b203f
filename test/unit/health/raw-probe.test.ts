/**
 * The raw-socket path of the tcp and http checkers (src/health/checkers/conn.ts, poller.ts, ffi/probe-socket.ts)
 * on what checkers.test.ts does not reach: a status line that arrives in pieces (the edge-triggered read must
 * come back for the rest), a peer that closes without answering, a connect that completes only after connect()
 * returned (the request is sent when the socket turns writable: the path of every backend across a wire), a
 * host name (looked up first, then probed at its address), and a cancel while the result waits for the poller.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { CheckResult } from "../../../src/health/checker.ts";
import { httpChecker } from "../../../src/health/checkers/http.ts";
import { tcpChecker } from "../../../src/health/checkers/tcp.ts";
import { type HttpProbe, parsePulseOptions } from "../../../src/health/options.ts";

const live = () => new AbortController().signal;

function httpProbe(args: Record<string, unknown> = {}): HttpProbe {
  const o = parsePulseOptions({ type: "http", args });
  if (o.http === null) throw new Error("not an http probe");
  return o.http;
}

describe("raw probe sockets", () => {
  // Answers per connection: "split" sends the status line in two writes 30 ms apart; "hangup" closes at once.
  let mode: "split" | "hangup" = "split";
  const server = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(s) {
        if (mode === "hangup") {
          s.end();
          return;
        }
        s.write("HTTP/1.1 2");
        s.flush();
        setTimeout(() => s.end("04 No Content\r\nContent-Length: 0\r\n\r\n"), 30);
      },
    },
  });
  afterAll(() => server.stop(true));
  const at = () => ({ host: "127.0.0.1", port: server.port });

  test("a status line that arrives in two segments is read whole", async () => {
    mode = "split";
    const r = await httpChecker(httpProbe({ expect: 204 })).check(at(), live());
    expect(r).toMatchObject({ ok: true, code: "204", message: `GET http://127.0.0.1:${server.port}/: 204` });
  });

  test("a peer that closes without a status line fails the check", async () => {
    mode = "hangup";
    const r = await httpChecker(httpProbe()).check(at(), live());
    expect(r).toMatchObject({ ok: false, kind: "fail", code: "ECONNRESET" });
  });

  test("a host name is looked up, then probed at its address the same way", async () => {
    mode = "split";
    const r = await httpChecker(httpProbe({ expect: 204 })).check({ host: "localhost", port: server.port }, live());
    expect(r).toMatchObject({ ok: true, code: "204" });
  });

  test("a tcp check cancelled before the poller delivers its result reports nothing and releases its slot once", async () => {
    const checker = tcpChecker();
    const run = checker.run;
    if (run === undefined) throw new Error("tcp checker without run");
    let done = 0;
    const released = Promise.withResolvers<void>();
    let releases = 0;
    const cancel = run(at(), () => done++, () => {
      releases++;
      released.resolve();
    });
    cancel();
    await released.promise;
    // One more check proves the poller has run past the cancelled result (results are delivered in order).
    await checker.check(at(), live());
    expect({ done, releases }).toEqual({ done: 0, releases: 1 });
  });
});

test("a connect that completes after connect() returned: the request goes out once the socket is writable", async () => {
  // Needs root for a private network namespace (unshare -n) and tc's tbf qdisc, as the rig and CI have.
  const setup = "ip link set lo up && ip link set lo mtu 1500 && tc qdisc add dev lo root tbf rate 100kbit burst 1600 latency 5s";
  const child = Bun.spawn(["unshare", "-n", "sh", "-c", `${setup} && exec "$0" "$@"`, process.execPath, join(import.meta.dir, "_slow-link-child.ts")], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, PATH: `/usr/sbin:/sbin:${process.env.PATH ?? "/usr/bin:/bin"}` },
  });
  const [out, err, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  expect({ code, err: code === 0 ? "" : err }).toEqual({ code: 0, err: "" });
  const r = JSON.parse(out.trim().split("\n").at(-1) as string) as { http: CheckResult; tcp: CheckResult };
  expect(r.http).toMatchObject({ ok: true, kind: "pass", code: "200" });
  expect(r.tcp).toMatchObject({ ok: true, kind: "pass" });
}, 20_000);
