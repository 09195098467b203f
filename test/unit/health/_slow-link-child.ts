/**
 * Child of raw-probe.test.ts, run in a private network namespace whose loopback is paced by a token bucket
 * (tc tbf): after two large datagrams have used up the bucket, every packet waits in the qdisc, so a connect()
 * returns before the handshake is done and the check's first send says EAGAIN (the path of every backend across
 * a wire). Runs one http and one tcp check against a local server and prints their results as one JSON line.
 */
import dgram from "node:dgram";
import { httpChecker } from "../../../src/health/checkers/http.ts";
import { tcpChecker } from "../../../src/health/checkers/tcp.ts";
import { parsePulseOptions } from "../../../src/health/options.ts";

const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("ok") });
const target = { host: "127.0.0.1", port: server.port as number };
const udp = dgram.createSocket("udp4");
async function drainBucket(): Promise<void> {
  for (let i = 0; i < 2; i++) await new Promise<void>((resolve) => udp.send(Buffer.alloc(1400), 9, "127.0.0.1", () => resolve()));
}
const http = parsePulseOptions({ type: "http", args: { timeout: "5s" } }).http;
if (http === null) throw new Error("not an http probe");
await drainBucket();
const httpResult = await httpChecker(http).check(target, AbortSignal.timeout(5_000));
await drainBucket();
const tcpResult = await tcpChecker().check(target, AbortSignal.timeout(5_000));
console.log(JSON.stringify({ http: httpResult, tcp: tcpResult }));
udp.close();
server.stop(true);
process.exit(0);
