/**
 * gorb sends none of its own HTTP through a proxy. Bun's fetch takes a proxy from HTTP_PROXY, HTTPS_PROXY and
 * ALL_PROXY (either case) for every request, loopback included: `gorb status` with a proxy set sent its request, the
 * API token with it, to the proxy (which asked its own 127.0.0.1), and the daemon's requests to etcd and Consul
 * (their credentials too) went through it. The executable takes these variables out of its own environment first
 * thing (src/main.ts). The programs it starts keep theirs: exec checks and hooks get an environment of their own
 * (src/health/checkers/exec.ts, src/daemon/hooks.ts), and the health checks never used a proxy.
 */

/** The variables Bun's fetch reads a proxy from. */
const PROXY_VARIABLES = ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"] as const;

/** Take the proxy variables out of `env` (the process's own, which fetch reads at each request). */
export function dropProxyEnvironment(env: Record<string, string | undefined> = process.env): void {
  for (const name of PROXY_VARIABLES) delete env[name];
}
