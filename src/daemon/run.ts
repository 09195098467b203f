/**
 * The daemon's composition root: the only place that builds the real stack (kernel IPVS driver, rtnetlink
 * VIPs, health monitor, Consul, core, REST API) from DaemonOptions, and the only place that handles signals.
 *
 * Start-up: resolve IPVS (clear error when the kernel has none), read -i's first address, adopt or flush the
 * kernel table, then listen. Shutdown (SIGINT/SIGTERM): stop accepting requests, stop health checks,
 * deregister from Consul, leave the kernel table as it is (traffic keeps flowing while gorb restarts), exit 0.
 */
import { hostname } from "node:os";
import type { ConsolaInstance } from "consola";
import { createApp } from "../api/app.ts";
import { Gorb } from "../core/gorb.ts";
import type { VipManager } from "../core/vip.ts";
import { ConsulDiscovery } from "../discovery/consul.ts";
import type { Discovery } from "../discovery/discovery.ts";
import { NoDiscovery } from "../discovery/none.ts";
import { HealthMonitor } from "../health/monitor.ts";
import { KernelIpvsDriver } from "../ipvs/kernel-driver.ts";
import { InterfaceAddresses } from "../netif/interface-addresses.ts";
import { VERSION } from "../version.ts";
import type { DaemonOptions } from "./options.ts";
import { InterfaceVipManager } from "./vip-manager.ts";

const LOOPBACK = /^(127\.|::1$|localhost$)/;

/** runDaemon runs gorb's daemon until SIGINT or SIGTERM. */
export async function runDaemon(options: DaemonOptions, log: ConsolaInstance): Promise<void> {
  log.info(`starting gorb ${VERSION}`);
  const driver = new KernelIpvsDriver();
  const info = await driver.info();
  log.info(`IPVS ${info.version}, connection table size ${info.connTableSize}`);

  const addresses = new InterfaceAddresses();
  let defaultAddress: string | null = null;
  if (options.interface !== null) {
    const addrs = await addresses.list(options.interface);
    const first = addrs[0];
    if (!first) throw new Error(`interface ${options.interface} has no address to use as the default service host (-i)`);
    defaultAddress = first.address;
    log.info(`services without a host bind to ${defaultAddress} (first address of ${options.interface})`);
  }

  let vip: VipManager | undefined;
  if (options.vipInterface !== null) vip = new InterfaceVipManager(addresses, options.vipInterface);

  const discovery: Discovery =
    options.consulUrl !== null
      ? new ConsulDiscovery({ url: options.consulUrl, instance: hostname(), logger: log.withTag("consul") })
      : new NoDiscovery();

  const gorb = new Gorb({
    driver,
    health: (onUpdate) => new HealthMonitor({ onUpdate }),
    ...(vip ? { vip } : {}),
    discovery,
    defaultAddress,
    logger: log.withTag("core"),
  });

  const report = await gorb.adopt(options.flush);
  if (report.flushed) log.warn("flushed every IPVS service (-f)");
  for (const foreign of report.foreign) log.warn(`leaving alone a service gorb does not manage: ${foreign}`);

  if (options.token === null && !(options.listen.host !== null && LOOPBACK.test(options.listen.host))) {
    log.warn(
      `the API listens on ${options.listen.host ?? "every address"} without a token: anyone who can reach port ` +
        `${options.listen.port} can change the load balancer. Set --token (or GORB_TOKEN), or listen on 127.0.0.1.`,
    );
  }

  const app = createApp({
    gorb,
    logger: log.withTag("api"),
    ...(options.token !== null ? { token: options.token } : {}),
    bodyLimitBytes: options.bodyLimitBytes,
    version: VERSION,
  });
  app.listen({ port: options.listen.port, ...(options.listen.host !== null ? { hostname: options.listen.host } : {}) });
  const port = app.server?.port ?? options.listen.port;
  const shown = options.listen.host === null ? `:${port}` : options.listen.host.includes(":") ? `[${options.listen.host}]:${port}` : `${options.listen.host}:${port}`;
  log.success(`gorb is listening on ${shown}`);

  if (defaultAddress !== null && options.consulUrl !== null && port !== 0) {
    discovery.expose({ id: "gorb", address: defaultAddress, port, protocol: "tcp" });
  }

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info(`${signal}: stopping (the IPVS table is left as it is)`);
      void (async () => {
        await app.stop();
        await gorb.close();
        driver.close();
        addresses.close();
        resolve();
      })();
    };
    process.on("SIGINT", () => stop("SIGINT"));
    process.on("SIGTERM", () => stop("SIGTERM"));
  });
  log.info("gorb stopped");
}
