/**
 * What `gorb serve` warns about at start, from its options alone: settings that work but leave the load balancer
 * or a secret open to the network. A pure function, so each rule is tested without starting a daemon.
 */
import { type DaemonOptions, isLoopbackHost, isLoopbackListen } from "../config/daemon-options.ts";

/** The host part of an endpoint URL ("http://10.0.0.1:2379" -> "10.0.0.1", "http://[::1]:2379" -> "::1"). */
function endpointHost(endpoint: string): string {
  return new URL(endpoint).hostname.replace(/^\[(.*)\]$/, "$1");
}

type WarningOptions = Pick<DaemonOptions, "token" | "tls" | "listen" | "allow" | "sharedStore">;

/** The start-up warnings for `options`, in the order they are logged. */
export function startupWarnings(options: WarningOptions): string[] {
  const warnings: string[] = [];
  if (options.token === null && !isLoopbackListen(options.listen)) {
    const who = options.allow.length > 0 ? `any host in ${options.allow.map((n) => n.text).join(", ")}` : "anyone";
    warnings.push(
      `the API listens on ${options.listen.host ?? "every address"} without a token: ${who} who can reach port ` +
        `${options.listen.port} can change the load balancer. Set --token-file (or GORB_TOKEN), restrict peers ` +
        "with --allow, or listen on 127.0.0.1.",
    );
  }
  if (options.token !== null && options.tls === null && !isLoopbackListen(options.listen)) {
    warnings.push("the API token crosses the network in clear text: serve the API over HTTPS with --tls-cert and --tls-key");
  }
  const store = options.sharedStore;
  if (store !== null && store.user !== null) {
    const clear = store.endpoints.filter((e) => e.startsWith("http://") && !isLoopbackHost(endpointHost(e)));
    if (clear.length > 0) {
      warnings.push(
        `the etcd password of --etcd-user crosses the network in clear text to ${clear.join(", ")}: use etcds:// ` +
          "(with --etcd-ca) for members that are not on this machine",
      );
    }
  }
  return warnings;
}
