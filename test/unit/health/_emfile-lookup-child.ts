/**
 * Child process of local-errors.test.ts, started under `ulimit -n 64`: every free file descriptor is taken, then each
 * probing type checks a backend given by name (`localhost`, never looked up before in this process), so the lookup
 * itself runs out of descriptors. Then the descriptors are given back and the tcp check runs once more (the parent's
 * server listens on that port). Prints one JSON line: [kind, code] per type, and the last check's.
 */
import { closeSync, openSync } from "node:fs";
import { checkerFor } from "../../../src/health/checkers/for-options.ts";
import { parsePulseOptions } from "../../../src/health/options.ts";

const port = Number(process.argv[2]);
const pulses = [{ type: "tcp" }, { type: "http" }, { type: "https" }, { type: "tls" }, { type: "udp", args: { send: "ping" } }, { type: "dns", args: { name: "gorb.test" } }];
const check = async (pulse: Record<string, unknown>): Promise<[string | undefined, string | undefined]> => {
  const r = await checkerFor(parsePulseOptions(pulse)).check({ host: "localhost", port }, new AbortController().signal);
  return [r.kind, r.code];
};

const held: number[] = [];
try {
  for (;;) held.push(openSync("/dev/null", "r"));
} catch {
  // EMFILE: every descriptor is taken
}
const out: Record<string, unknown> = {};
for (const pulse of pulses) out[pulse.type] = await check(pulse);
for (const fd of held) closeSync(fd);
out.after = await check({ type: "tcp" });
console.log(JSON.stringify(out));
