/**
 * Child process of resolver-outage.test.ts, run in namespaces of its own where /etc/resolv.conf names 127.0.0.1 and
 * /etc/hosts names backend.gorb.test (127.0.0.1). Mode "refused": nothing listens on port 53, so every lookup fails
 * at once (EAI_AGAIN). Mode "silent": a resolver that never answers listens there, so lookups outlast the checks.
 * Prints one JSON line with what happened.
 */
import { writeFileSync } from "node:fs";
import { checkerFor } from "../../../src/health/checkers/for-options.ts";
import { ageNames } from "../../../src/health/checkers/names.ts";
import { HealthMonitor } from "../../../src/health/monitor.ts";
import { parsePulseOptions } from "../../../src/health/options.ts";
import type { HealthUpdate } from "../../../src/health/target-state.ts";

const [mode, hostsFile] = process.argv.slice(2) as [string, string];
const backend = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
/** The check of `host` with `pulse`, cancelled after `ms` as the monitor's timeout would: [kind, code]. */
async function check(pulse: Record<string, unknown>, host: string, ms: number): Promise<[string | undefined, string | undefined]> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(new Error("timed out")), ms);
  const r = await checkerFor(parsePulseOptions(pulse)).check({ host, port: backend.port }, ctl.signal);
  clearTimeout(timer);
  return [r.kind, r.code];
}
const pulses = [{ type: "tcp" }, { type: "http" }, { type: "https" }, { type: "tls" }, { type: "udp", args: { send: "ping" } }, { type: "dns", args: { name: "gorb.test" } }];

if (mode === "refused") {
  const out: Record<string, unknown> = {};
  for (const pulse of pulses) out[pulse.type] = await check(pulse, "outage.gorb.test", 5_000);
  console.log(JSON.stringify(out));
} else {
  const silent = await Bun.udpSocket({ hostname: "127.0.0.1", port: 53, socket: { data() {} } });
  const out: Record<string, unknown> = {};
  for (const pulse of pulses) out[pulse.type] = await check(pulse, "slow.gorb.test", 300);
  // A monitor checking a backend by a name the resolver does not answer for: check errors, no update, no state.
  const updates: HealthUpdate[] = [];
  let errors = 0;
  const monitor = new HealthMonitor({ onUpdate: (u) => updates.push(u), onCheckError: () => errors++, random: () => 0 });
  monitor.add("b", { host: "10.0.0.1", port: backend.port }, parsePulseOptions({ type: "tcp", interval: "200ms", args: { host: "slow2.gorb.test", timeout: "150ms" } }));
  while (errors < 3) await Bun.sleep(20);
  out.monitor = { updates: updates.length, status: monitor.snapshot("b")?.status, kind: monitor.snapshot("b")?.lastCheck?.kind, timedOut: monitor.stats().timedOut };
  monitor.stop();
  // A name that resolved once keeps being checked at its address while the resolver is gone.
  out.known = await check({ type: "tcp" }, "backend.gorb.test", 300);
  writeFileSync(hostsFile, "127.0.0.1 localhost\n");
  ageNames();
  out.stale = await check({ type: "tcp" }, "backend.gorb.test", 300);
  silent.close();
  console.log(JSON.stringify(out));
}
backend.stop(true);
