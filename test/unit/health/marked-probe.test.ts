/**
 * Checks through the VIP, socket side: a target with a mark is probed over a socket made through
 * ffi/marked-socket.ts (SO_MARK, bound to the source the route to `sourceFor` gives), its connect polled and then
 * handed to Bun. Real sockets on loopback; SO_MARK needs CAP_NET_ADMIN, which the test host (root) has. That the
 * mark makes IPVS pick the backend is the rig's forwarding test.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import net from "node:net";
import { httpChecker } from "../../../src/health/checkers/http.ts";
import { tcpChecker } from "../../../src/health/checkers/tcp.ts";
import { parsePulseOptions } from "../../../src/health/options.ts";

let server: net.Server;
let port = 0;
let closedPort = 0;
const sources: string[] = [];

beforeAll(async () => {
  server = net.createServer((c) => {
    sources.push(c.remoteAddress ?? "");
    c.on("data", () => c.end("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"));
    c.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as net.AddressInfo).port;
  const other = net.createServer();
  await new Promise<void>((resolve) => other.listen(0, "127.0.0.1", resolve));
  closedPort = (other.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => other.close(() => resolve()));
});

afterAll(() => {
  server.close();
});

const fds = () => readdirSync("/proc/self/fd").length;

describe("marked probes", () => {
  test("tcp and http pass over a marked socket from the route's source; a refused port fails with ECONNREFUSED", async () => {
    const target = { host: "127.0.0.1", port, mark: 0x3000, sourceFor: "127.0.0.1" };
    const tcp = await tcpChecker().check(target, AbortSignal.timeout(5_000));
    expect([tcp.ok, tcp.kind]).toEqual([true, "pass"]);
    const o = parsePulseOptions({ type: "http", args: { via: "vip", expect: 204 } });
    if (o.type !== "http") throw new Error("http options expected");
    const http = await httpChecker(o.http).check(target, AbortSignal.timeout(5_000));
    expect([http.ok, http.code]).toEqual([true, "204"]);
    expect(sources.every((s) => s === "127.0.0.1")).toBe(true);
    const refused = await tcpChecker().check({ ...target, port: closedPort }, AbortSignal.timeout(5_000));
    expect([refused.ok, refused.kind, refused.code]).toEqual([false, "fail", "ECONNREFUSED"]);
  });

  test("a marked probe cancelled while connecting leaves no descriptor behind", async () => {
    const before = fds();
    // 192.0.2.1 (TEST-NET-1) may answer at once on some hosts; either way the descriptor must be gone after.
    const results = await Promise.all(
      Array.from({ length: 20 }, () => tcpChecker().check({ host: "192.0.2.1", port: 9, mark: 0x3001 }, AbortSignal.timeout(1))),
    );
    expect(results).toHaveLength(20);
    for (let i = 0; i < 50 && fds() > before; i++) await Bun.sleep(10);
    expect(fds()).toBeLessThanOrEqual(before);
  });

  test("without CAP_NET_ADMIN the mark cannot be set: a check error (changes nothing), not a failed backend", async () => {
    const script = `
      const { tcpChecker } = await import(${JSON.stringify(new URL("../../../src/health/checkers/tcp.ts", import.meta.url).pathname)});
      console.log(JSON.stringify(await tcpChecker().check({ host: "127.0.0.1", port: 9, mark: 0x3000 }, AbortSignal.timeout(2000))));
    `;
    // As root the probe runs in a child without privileges (user nobody); otherwise this process has none already.
    const argv = process.getuid?.() === 0
      ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, "-e", script]
      : [process.execPath, "-e", script];
    const proc = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
    const result = JSON.parse(proc.stdout.toString().trim()) as { kind: string; code: string; message: string };
    expect([result.kind, result.code]).toEqual(["local-error", "EPERM"]);
    expect(result.message).toContain("SO_MARK needs CAP_NET_ADMIN");
  });
});
