/**
 * Backend hosts for kernel tests, inside the rig guest: each backend is a network namespace `be<i>` joined to the
 * root namespace by a veth pair (10.77.<i>.1/24 on the root side, 10.77.<i>.2/24 inside, default route back through
 * the root side) running `busybox httpd` on port 80 with a page whose body is the backend's name.
 *
 * NB: with only `lo` up the kernel rejects NAT destinations ("address not unicast", EINVAL); the veth subnets give
 * every backend address a real route, which is what IPVS checks.
 *
 * With `ipv6: true` a backend also gets fd77:<i>::2/64 inside (fd77:<i>::1/64 on the root side, default IPv6 route
 * back through it; both without duplicate address detection, so they are usable at once) and its server listens on
 * every address of the namespace, IPv4 and IPv6 alike.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { IP, ip, run } from "./sh.ts";

/** Directory holding each backend's document root. */
const WWW_ROOT = "/tmp/gorb-rig-www";

/** How long a started server gets to accept connections. */
const SERVER_START_TIMEOUT_MS = 15_000;

/** One backend host in its own network namespace. */
export interface Backend {
  /** 1-based index; the backend's subnet is 10.77.<index>.0/24. */
  readonly index: number;
  /** Network namespace name and the body its server answers with, e.g. `be1`. */
  readonly name: string;
  /** Address inside the namespace (the IPVS destination), e.g. `10.77.1.2`. */
  readonly address: string;
  /** Address of the root-namespace end of the veth pair, e.g. `10.77.1.1`. */
  readonly gateway: string;
  /** HTTP port the server listens on. */
  readonly port: number;
  /** IPv6 address inside the namespace, e.g. `fd77:1::2`; null unless created with `ipv6: true`. */
  readonly address6: string | null;
  /** IPv6 address of the root-namespace end of the veth pair, e.g. `fd77:1::1`; null without IPv6. */
  readonly gateway6: string | null;
  /** Directory the server serves: a file written here (e.g. `health`) is served at `/<file name>`. */
  readonly docroot: string;
  /** True while the HTTP server runs. */
  readonly serving: boolean;
  /** Starts the HTTP server and waits until it accepts connections. No-op when already serving. */
  start(): Promise<void>;
  /** Stops the HTTP server; connections are then refused. No-op when stopped. */
  stop(): Promise<void>;
}

class NetnsBackend implements Backend {
  readonly name: string;
  readonly address: string;
  readonly gateway: string;
  readonly address6: string | null;
  readonly gateway6: string | null;
  private server: ReturnType<typeof Bun.spawn<"ignore", "ignore", "pipe">> | undefined;

  constructor(
    readonly index: number,
    readonly port: number,
    ipv6: boolean,
  ) {
    this.name = `be${index}`;
    this.address = `10.77.${index}.2`;
    this.gateway = `10.77.${index}.1`;
    this.address6 = ipv6 ? `fd77:${index}::2` : null;
    this.gateway6 = ipv6 ? `fd77:${index}::1` : null;
  }

  get serving(): boolean {
    return this.server !== undefined;
  }

  get docroot(): string {
    return `${WWW_ROOT}/${this.name}`;
  }

  async start(): Promise<void> {
    if (this.server) return;
    // An IPv6 backend listens on every address of its namespace (busybox binds :: dual-stack); others on the IPv4 one.
    const listen = this.address6 === null ? `${this.address}:${this.port}` : String(this.port);
    const argv = [IP, "netns", "exec", this.name, "/bin/busybox", "httpd", "-f", "-p", listen, "-h", this.docroot];
    const proc = Bun.spawn(argv, { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
    proc.unref(); // a test that forgets destroyBackends must not keep bun alive
    this.server = proc;
    const deadline = Date.now() + SERVER_START_TIMEOUT_MS;
    for (;;) {
      if (proc.exitCode !== null) {
        this.server = undefined;
        const stderr = await new Response(proc.stderr).text();
        throw new Error(`${this.name}: httpd exited with ${proc.exitCode} on start: ${stderr.trim() || "no output"}`);
      }
      if (await accepts(this.address, this.port)) return;
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(`${this.name}: httpd did not accept connections on ${this.address}:${this.port} within ${SERVER_START_TIMEOUT_MS} ms`);
      }
      await Bun.sleep(50);
    }
  }

  async stop(): Promise<void> {
    const proc = this.server;
    if (!proc) return;
    this.server = undefined;
    proc.kill("SIGKILL");
    await proc.exited;
  }
}

/** True when a TCP connection to address:port succeeds. */
async function accepts(address: string, port: number): Promise<boolean> {
  try {
    const socket = await Bun.connect({ hostname: address, port, socket: { data() {} } });
    socket.end();
    return true;
  } catch {
    return false;
  }
}

/** Removes a backend's veth pair and namespace if present (deleting either end of a veth pair deletes both). */
function removeBackendNetwork(index: number): void {
  const name = `be${index}`;
  const veth = `veth-${name}`;
  if (run([IP, "-o", "link", "show"]).includes(` ${veth}@`)) {
    try {
      ip("link", "del", veth);
    } catch (err) {
      // Deleting the namespace removes the pair asynchronously: it may vanish between the listing and the delete.
      if (!(err instanceof Error && err.message.includes("Cannot find device"))) throw err;
    }
  }
  if (ip("netns", "list").split("\n").some((l) => l.split(" ")[0] === name)) ip("netns", "del", name);
}

/**
 * Creates `count` backends `be1`..`be<count>` (or from `firstIndex`), each with a running HTTP server.
 * Leftovers with the same names are removed first. `ipv6: true` also gives each one an IPv6 address (see above).
 */
export async function createBackends(
  count: number,
  opts: { port?: number; firstIndex?: number; ipv6?: boolean } = {},
): Promise<Backend[]> {
  const first = opts.firstIndex ?? 1;
  const port = opts.port ?? 80;
  if (!Number.isInteger(count) || count < 1) throw new Error(`count must be a positive integer, got ${count}`);
  if (!Number.isInteger(first) || first < 1 || first + count - 1 > 254) {
    throw new Error(`backend indexes ${first}..${first + count - 1} must lie within 1..254 (they name 10.77.<i>.0/24)`);
  }
  const backends: NetnsBackend[] = [];
  for (let i = first; i < first + count; i++) {
    removeBackendNetwork(i);
    const backend = new NetnsBackend(i, port, opts.ipv6 ?? false);
    const veth = `veth-${backend.name}`;
    ip("netns", "add", backend.name);
    ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", backend.name);
    ip("addr", "add", `${backend.gateway}/24`, "dev", veth);
    ip("link", "set", veth, "up");
    ip("-n", backend.name, "link", "set", "lo", "up");
    ip("-n", backend.name, "addr", "add", `${backend.address}/24`, "dev", "eth0");
    ip("-n", backend.name, "link", "set", "eth0", "up");
    ip("-n", backend.name, "route", "add", "default", "via", backend.gateway);
    if (backend.address6 !== null && backend.gateway6 !== null) {
      ip("addr", "add", `${backend.gateway6}/64`, "dev", veth, "nodad");
      ip("-n", backend.name, "addr", "add", `${backend.address6}/64`, "dev", "eth0", "nodad");
      ip("-n", backend.name, "-6", "route", "add", "default", "via", backend.gateway6);
    }
    mkdirSync(backend.docroot, { recursive: true });
    writeFileSync(`${backend.docroot}/index.html`, `${backend.name}\n`);
    backends.push(backend);
  }
  await Promise.all(backends.map((b) => b.start()));
  return backends;
}

/** Stops the servers and deletes the namespaces and veth pairs of `backends`. */
export async function destroyBackends(backends: readonly Backend[]): Promise<void> {
  for (const backend of backends) {
    await backend.stop();
    removeBackendNetwork(backend.index);
    rmSync(`${WWW_ROOT}/${backend.name}`, { recursive: true, force: true });
  }
}

/** Adds `address` (IPv4 or IPv6) to `lo` as a host address, for use as a virtual IP. Idempotent. */
export function addVip(address: string): void {
  const prefix = address.includes(":") ? 128 : 32;
  const shown = ip("-o", "addr", "show", "dev", "lo");
  if (shown.includes(` ${address}/${prefix} `)) return;
  ip("addr", "add", `${address}/${prefix}`, "dev", "lo");
}

/** Removes a virtual IP added with {@link addVip}. Idempotent. */
export function removeVip(address: string): void {
  const prefix = address.includes(":") ? 128 : 32;
  const shown = ip("-o", "addr", "show", "dev", "lo");
  if (!shown.includes(` ${address}/${prefix} `)) return;
  ip("addr", "del", `${address}/${prefix}`, "dev", "lo");
}
