/**
 * `bun test/kernel/helpers/ns-client.ts <host> <port> <requests> [timeout ms]`: countResponses from wherever it is started
 * (kernel tests start it inside a client network namespace with `ip netns exec`), printed as one JSON line.
 */
import { countResponses } from "./client.ts";

const [host, port, requests, timeoutMs] = process.argv.slice(2);
if (host === undefined || port === undefined || requests === undefined) {
  console.error("usage: ns-client.ts <host> <port> <requests>");
  process.exit(2);
}
const result = await countResponses({ host, port: Number(port), requests: Number(requests), concurrency: 4, timeoutMs: timeoutMs === undefined ? 5_000 : Number(timeoutMs) });
console.log(JSON.stringify(result));
