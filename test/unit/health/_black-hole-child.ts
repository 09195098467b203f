/**
 * Child of black-hole.test.ts, run in a private network namespace where 10.66.0.2 is a black hole (a veth
 * pair with a static neighbour entry whose MAC nobody owns: SYNs leave, nothing answers). Checks it with tcp
 * and http every 200ms (timeout 150ms) for `argv[2]` ms, sampling descriptors; prints one JSON line.
 */
import { readdirSync } from "node:fs";
import { HealthMonitor } from "../../../src/health/monitor.ts";
import type { HealthUpdate } from "../../../src/health/target-state.ts";
import { parsePulseOptions } from "../../../src/health/options.ts";

const ms = Number(process.argv[2]);
const fds = () => readdirSync("/proc/self/fd").length;
const updates: HealthUpdate[] = [];
const monitor = new HealthMonitor({ onUpdate: (u) => updates.push(u) });
const baseline = fds();
monitor.add("tcp", { host: "10.66.0.2", port: 80 }, parsePulseOptions({ type: "tcp", interval: "200ms", args: { timeout: "150ms" } }));
monitor.add("http", { host: "10.66.0.2", port: 8080 }, parsePulseOptions({ type: "http", interval: "200ms", args: { timeout: "150ms" } }));
let maxFds = 0;
let maxInFlight = 0;
const end = performance.now() + ms;
while (performance.now() < end) {
  await Bun.sleep(50);
  maxFds = Math.max(maxFds, fds() - baseline);
  maxInFlight = Math.max(maxInFlight, monitor.stats().inFlight);
}
const stats = monitor.stats();
monitor.stop();
console.log(JSON.stringify({ timedOut: stats.timedOut, maxFds, maxInFlight, kinds: [...new Set(updates.map((u) => `${u.status}/${u.lastCheck.kind}`))] }));
process.exit(0);
