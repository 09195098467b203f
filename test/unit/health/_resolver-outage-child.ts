/**
 * Child process of resolver-outage.test.ts, run where /etc/resolv.conf names a resolver that refuses every query
 * (127.0.0.1, port 53 closed): checks every probing type of a backend given by name and prints one JSON line,
 * type -> [kind, code].
 */
import { checkerFor } from "../../../src/health/checkers/for-options.ts";
import { parsePulseOptions } from "../../../src/health/options.ts";

const target = { host: "backend.gorb.test", port: 8080 };
const pulses = [{ type: "tcp" }, { type: "http" }, { type: "https" }, { type: "tls" }, { type: "udp", args: { send: "ping" } }, { type: "dns", args: { name: "gorb.test" } }];
const out: Record<string, [string | undefined, string | undefined]> = {};
for (const pulse of pulses) {
  const r = await checkerFor(parsePulseOptions(pulse)).check(target, new AbortController().signal);
  out[pulse.type] = [r.kind, r.code];
}
console.log(JSON.stringify(out));
