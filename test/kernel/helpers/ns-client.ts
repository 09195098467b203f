/**
 * `bun test/kernel/helpers/ns-client.ts <host> <port> <requests>`: countResponses from wherever it is started
 * (kernel tests start it inside a client network namespace with `ip netns exec`), printed as one JSON line.
 */
import { countResponses } from "./client.ts";

const [host, port, requests] = process.argv.slice(2);
if (host === undefined || port === undefined || requests === undefined) {
  console.error("usage: ns-client.ts <host> <port> <requests>");
  process.exit(2);
}
const result = await countResponses({ host, port: Number(port), requests: Number(requests), concurrency: 4, timeoutMs: 5_000 });
console.log(JSON.stringify(result));
