/**
 * Child process of local-errors.test.ts, started under `ulimit -n 128`: a monitor checks a TCP and an HTTP
 * backend (the parent's servers) every 100ms; once both are Up, every free file descriptor is taken, so each
 * connect fails with EMFILE (which Bun reports as ECONNREFUSED). Prints one JSON line with what happened in the
 * ten check errors after each backend's first.
 */
import { closeSync, openSync } from "node:fs";
import { HealthMonitor } from "../../../src/health/monitor.ts";
import type { HealthUpdate } from "../../../src/health/target-state.ts";
import { parsePulseOptions } from "../../../src/health/options.ts";

const [tcpPort, httpPort] = [Number(process.argv[2]), Number(process.argv[3])];
const updates: HealthUpdate[] = [];
let errors = 0;
const errored = new Set<string>();
const monitor = new HealthMonitor({
  onUpdate: (u) => updates.push(u),
  onCheckError: (id) => {
    errors++;
    errored.add(id);
  },
});
monitor.add("tcp", { host: "127.0.0.1", port: tcpPort }, parsePulseOptions({ type: "tcp", interval: "100ms" }));
monitor.add("http", { host: "127.0.0.1", port: httpPort }, parsePulseOptions({ type: "http", interval: "100ms" }));
const upBoth = () => monitor.snapshot("tcp")?.status === "up" && monitor.snapshot("http")?.status === "up";
while (!upBoth()) await Bun.sleep(10);

const held: number[] = [];
const takeAll = () => {
  try {
    for (;;) held.push(openSync("/dev/null", "r"));
  } catch {
    // EMFILE: every descriptor is taken
  }
};
takeAll();
// A check that had its socket when the descriptors were taken may still pass, and free its descriptor on closing:
// taken again at once. The window starts once each backend's check has failed for want of one: from then on no
// check holds a socket, so none frees a descriptor.
while (errored.size < 2) {
  takeAll();
  await Bun.sleep(10);
}
const seen = updates.length;
const before = errors;
while (errors < before + 10) await Bun.sleep(10);
const during = updates.slice(seen);
const snapshots = { tcp: monitor.snapshot("tcp"), http: monitor.snapshot("http") };
for (const fd of held) closeSync(fd);
const after = updates.length;
while (updates.slice(after).filter((u) => u.lastCheck.ok).length < 2) await Bun.sleep(10);
monitor.stop();
console.log(
  JSON.stringify({
    held: held.length,
    errors,
    updatesDuring: during.map((u) => [u.id, u.status, u.lastCheck.message]),
    duringStatus: [snapshots.tcp?.status, snapshots.http?.status],
    duringKinds: [snapshots.tcp?.lastCheck?.kind, snapshots.http?.lastCheck?.kind],
    duringCodes: [snapshots.tcp?.lastCheck?.code, snapshots.http?.lastCheck?.code],
    afterStatus: [monitor.snapshot("tcp")?.status ?? "stopped", updates.at(-1)?.status],
  }),
);
process.exit(0);
