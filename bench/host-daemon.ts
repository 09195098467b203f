/**
 * `bun bench/host-daemon.ts PORT STATE_DIR`: the daemon's stack as src/daemon/run.ts builds it (core, health
 * monitor, SQLite state, REST API, its log lines to stdout), but on the in-memory IPVS driver, so the host
 * (which has no IPVS) can measure gorb's own JavaScript: the kernel's share is what the rig's guest measures.
 * Started by bench/host-core.ts. Stops on SIGTERM.
 */
import { createConsola } from "consola/core";
import { daemonReporter } from "../src/daemon/log-lines.ts";
import { createApp } from "../src/api/app.ts";
import { EventBus } from "../src/core/events.ts";
import { Gorb } from "../src/core/gorb.ts";
import { HealthMonitor } from "../src/health/monitor.ts";
import { MemoryIpvsDriver } from "../src/ipvs/memory-driver.ts";
import { SqliteStateStore } from "../src/state/sqlite-store.ts";
import { startApiServer } from "../src/daemon/api-server.ts";
import { DEFAULT_MAX_CONNECTIONS } from "../src/config/daemon-options.ts";

const [portText, stateDir] = process.argv.slice(2);
if (portText === undefined || stateDir === undefined) throw new Error("usage: host-daemon.ts PORT STATE_DIR");
const log = createConsola({ level: 3, reporters: [daemonReporter()] }).withTag("gorb");
const store = SqliteStateStore.open(stateDir);
const events = new EventBus();
const gorb = new Gorb({
  driver: new MemoryIpvsDriver({ isRoutable: () => true }),
  events,
  health: (onUpdate) => new HealthMonitor({ onUpdate }),
  logger: log.withTag("core"),
  store,
});
await gorb.restore(store.load());
const app = createApp({ gorb, events, logger: log.withTag("api"), version: "bench", allow: [], allowOrigins: [], maxRequests: DEFAULT_MAX_CONNECTIONS, ui: false });
const api = startApiServer(app, { listen: { host: "127.0.0.1", port: Number(portText) }, tls: null, maxConnections: DEFAULT_MAX_CONNECTIONS, logger: log.withTag("api") });
log.success(`listening on ${api.shown}`);
process.on("SIGTERM", () => {
  void (async () => {
    events.close();
    await api.stop();
    await gorb.close();
    store.close();
    process.exit(0);
  })();
});
