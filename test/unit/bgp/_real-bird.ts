/**
 * A real BIRD 2 (Debian's bird2, /usr/sbin/bird) for the announcer tests: its own bird.conf, control socket and pid
 * file in a temporary directory, no kernel protocol (nothing reaches this host's routing table), and the
 * wildcard include line of docs/bird.conf for the file gorb writes. Missing BIRD is a failure, not a skip
 * (.ci/debian-packages installs bird2).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, basename, join } from "node:path";

export interface RealBird {
  /** The control socket. */
  readonly socket: string;
  /** Its bird.conf. */
  readonly conf: string;
  /** The routes BIRD has from gorb's static protocols gorb_vips and gorb_vips6, best or not (sorted). */
  routes(): Promise<string[]>;
  /** SIGKILL it; the control socket file stays, as after a crash. */
  kill(): Promise<void>;
  /** Starts it again on the same configuration; resolves once its control socket answers. */
  start(): Promise<void>;
  /** Kills it and deletes its directory. */
  stop(): Promise<void>;
}

const BIRD = "/usr/sbin/bird";
const BIRDC = "/usr/sbin/birdc";

/** Polls `condition` every 10 ms until it holds; throws `what` after `ms`. */
export async function until(what: string, condition: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function birdc(socket: string, command: string): Promise<{ code: number; out: string }> {
  const proc = Bun.spawn([BIRDC, "-s", socket, command], { stdout: "pipe", stderr: "pipe" });
  const out = await new Response(proc.stdout).text();
  return { code: await proc.exited, out };
}

/**
 * Starts BIRD including `include` (a wildcard on its directory and name, as docs/bird.conf does; `include: null`:
 * a bird.conf without the include line), then `extra`.
 */
export async function startBird(include: string | null, extra = ""): Promise<RealBird> {
  if (!existsSync(BIRD) || !existsSync(BIRDC)) throw new Error(`${BIRD} or ${BIRDC} missing: apt-get install -y bird2 (see .ci/debian-packages)`);
  const dir = mkdtempSync(join(tmpdir(), "gorb-bird-"));
  const socket = join(dir, "bird.ctl");
  const pidFile = join(dir, "bird.pid");
  const conf = join(dir, "bird.conf");
  const line = include === null ? "" : `include "${join(`${dirname(include)}*`, basename(include).replace(/\.conf$/, "*.conf"))}";\n`;
  writeFileSync(conf, `router id 192.0.2.1;\nprotocol device {}\n${line}${extra}`);

  const start = async () => {
    const proc = Bun.spawn([BIRD, "-c", conf, "-s", socket, "-P", pidFile], { stdout: "pipe", stderr: "pipe" });
    const code = await proc.exited; // bird forks into the background once the configuration is read
    if (code !== 0) throw new Error(`bird exited ${code}: ${await new Response(proc.stderr).text()}`);
    await until("BIRD's control socket", async () => (await birdc(socket, "show status")).code === 0);
  };
  const pid = () => Number(readFileSync(pidFile, "utf8").trim());
  /** Running: a zombie (killed, not yet reaped by whoever adopted the daemon) counts as gone. */
  const alive = (p: number) => {
    try {
      return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${p}/stat`, "utf8"));
    } catch {
      return false;
    }
  };
  const kill = async () => {
    const p = pid();
    process.kill(p, "SIGKILL");
    await until(`BIRD ${p} to exit`, () => !alive(p));
  };
  await start();
  return {
    socket,
    conf,
    routes: async () => {
      const out = (await birdc(socket, "show route protocol gorb_vips")).out + (await birdc(socket, "show route protocol gorb_vips6")).out;
      return [...out.matchAll(/^\s*(\S+\/\d+)\s+blackhole/gm)].map((m) => m[1] ?? "").sort();
    },
    kill,
    start,
    stop: async () => {
      if (existsSync(pidFile) && alive(pid())) await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
