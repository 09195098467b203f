/**
 * A real etcd (Debian's etcd-server, `etcd` on PATH) on loopback for the store tests: one member in a
 * temporary directory, on free ports. Missing etcd is a failure, not a skip (.ci/rig-deps.sh installs it).
 */
import { afterAll, afterEach, beforeAll } from "bun:test";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { type Server, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface EtcdProcess {
  readonly endpoint: string;
  /** SIGKILL the member, keeping its data. */
  kill(): Promise<void>;
  /** Start the killed member again on the same ports and data; resolves once it answers. */
  restart(): Promise<void>;
  /** SIGKILL it, delete its data and start it again empty (same ports and cluster id); resolves once it answers. */
  wipe(): Promise<void>;
  /** Stop it cleanly (SIGTERM), copy its data directory aside, and start it again; resolves once it answers. */
  backup(): Promise<void>;
  /** SIGKILL it, put back the data directory backup() copied, and start it again; resolves once it answers. */
  restoreBackup(): Promise<void>;
  /** SIGSTOP it (requests hang, as without quorum); resume() goes on. */
  pause(): void;
  resume(): void;
  /** SIGKILL it and delete its data. */
  stop(): Promise<void>;
}

/**
 * `count` distinct free loopback ports: each is held bound until all are known, then all are released. Taken one at a
 * time (bound, released, the next bound), two could be the same port, and etcd's peer and client listeners collided.
 */
async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, "127.0.0.1", resolve);
      });
    }
    return servers.map((server) => {
      const address = server.address();
      return typeof address === "object" && address !== null ? address.port : 0;
    });
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
}

/**
 * Start one etcd member (with `flags` added to its command line); resolves once its gateway answers a range.
 * Throws when `etcd` is not installed.
 */
export async function startEtcd(flags: readonly string[] = []): Promise<EtcdProcess> {
  const binary = Bun.which("etcd") ?? Bun.which("etcd", { PATH: "/usr/bin:/usr/sbin" });
  if (binary === null) throw new Error("etcd is not installed: apt-get install -y etcd-server (see .ci/rig-deps.sh)");
  const dir = mkdtempSync(join(tmpdir(), "gorb-etcd-"));
  const [client, peer] = (await freePorts(2)) as [number, number];
  const endpoint = `http://127.0.0.1:${client}`;
  const spawn = () =>
    Bun.spawn(
      [
        binary,
        "--name", "t1",
        "--data-dir", join(dir, "data"),
        "--listen-client-urls", endpoint,
        "--advertise-client-urls", endpoint,
        "--listen-peer-urls", `http://127.0.0.1:${peer}`,
        "--initial-advertise-peer-urls", `http://127.0.0.1:${peer}`,
        "--initial-cluster", `t1=http://127.0.0.1:${peer}`,
        "--heartbeat-interval", "50",
        "--election-timeout", "500",
        "--logger", "zap",
        "--log-outputs", join(dir, "etcd.log"),
        ...flags,
      ],
      { stdout: "ignore", stderr: "ignore" },
    );
  const ready = async (proc: ReturnType<typeof spawn>) => {
    // Poll the gateway until the member has elected itself (each attempt is a real request, bounded).
    for (let i = 0; ; i++) {
      if (proc.exitCode !== null) throw new Error(`etcd exited with ${proc.exitCode}; see ${join(dir, "etcd.log")}`);
      try {
        const response = await fetch(`${endpoint}/v3/kv/range`, { method: "POST", body: JSON.stringify({ key: "eA==" }), signal: AbortSignal.timeout(1000) });
        if (response.ok) return;
      } catch {
        // not listening yet
      }
      if (i > 200) throw new Error("etcd did not answer within 20 s");
      await Bun.sleep(100);
    }
  };
  let proc = spawn();
  await ready(proc);
  return {
    endpoint,
    async kill() {
      proc.kill("SIGKILL");
      await proc.exited;
    },
    async restart() {
      proc = spawn();
      await ready(proc);
    },
    async wipe() {
      proc.kill("SIGKILL");
      await proc.exited;
      rmSync(join(dir, "data"), { recursive: true, force: true });
      proc = spawn();
      await ready(proc);
    },
    async backup() {
      proc.kill("SIGTERM");
      await proc.exited;
      rmSync(join(dir, "backup"), { recursive: true, force: true });
      cpSync(join(dir, "data"), join(dir, "backup"), { recursive: true });
      proc = spawn();
      await ready(proc);
    },
    async restoreBackup() {
      proc.kill("SIGKILL");
      await proc.exited;
      rmSync(join(dir, "data"), { recursive: true, force: true });
      cpSync(join(dir, "backup"), join(dir, "data"), { recursive: true });
      proc = spawn();
      await ready(proc);
    },
    pause() {
      proc.kill("SIGSTOP");
    },
    resume() {
      proc.kill("SIGCONT");
    },
    async stop() {
      proc.kill("SIGKILL");
      await proc.exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * One etcd member (with `flags` added to its command line) for the calling test file: started in its beforeAll,
 * stopped in its afterAll. The object stands for the member (its endpoint and controls), usable once the file's
 * tests run.
 */
export function etcdForFile(flags: readonly string[] = []): EtcdProcess {
  let member: EtcdProcess | undefined;
  beforeAll(async () => {
    member = await startEtcd(flags);
  });
  afterAll(async () => {
    await member?.stop();
  });
  const started = (): EtcdProcess => {
    if (member === undefined) throw new Error("the file's etcd is used before its beforeAll started it");
    return member;
  };
  return {
    get endpoint() {
      return started().endpoint;
    },
    kill: () => started().kill(),
    restart: () => started().restart(),
    wipe: () => started().wipe(),
    backup: () => started().backup(),
    restoreBackup: () => started().restoreBackup(),
    pause: () => started().pause(),
    resume: () => started().resume(),
    stop: () => started().stop(),
  };
}

/** A list of cleanups the calling test file fills; after each test they run, the last added first. */
export function cleanupsAfterEach(): (() => Promise<void> | void)[] {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  return cleanups;
}

/** Turns authentication on in the member at `endpoint` with one user, root, holding `password`. */
export async function enableRootAuth(endpoint: string, password: string): Promise<void> {
  for (const [path, body] of [
    ["auth/user/add", { name: "root", password }],
    ["auth/user/grant", { user: "root", role: "root" }],
    ["auth/enable", {}],
  ] as const) {
    const response = await fetch(`${endpoint}/v3/${path}`, { method: "POST", body: JSON.stringify(body) });
    if (response.status !== 200) throw new Error(`etcd ${path}: ${response.status} ${await response.text()}`);
  }
}

/** Polls `check` (what etcd holds, read back) until it is true or `ms` pass; whether it became true. */
export async function waitFor(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await Bun.sleep(100);
  }
  return false;
}
