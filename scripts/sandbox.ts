/**
 * `npm run sandbox`: gorb on a real IPVS kernel to play with, from this machine (whose own kernel has no IPVS).
 *
 * Boots the rig guest (test/rig: Debian's cloud kernel under qemu) with `gorb serve -l 0.0.0.0:4672 --vip-interface lo`
 * inside and three demo backends in network namespaces (be1..be3 at 10.77.<i>.2, busybox httpd answering with their
 * name), forwards the API to 127.0.0.1:<port> and the virtual IP's port 80 to 127.0.0.1:<vip-port>, creates the demo
 * service `web` (10.0.0.20:80, backends be1 and be2) through the API, prints what to try, and runs until Ctrl-C, which
 * powers the guest off cleanly.
 *
 *   bun run scripts/sandbox.ts [--port 4672] [--vip-port 8080] [--compiled] [--verbose]
 *   bun run scripts/sandbox.ts --check [--compiled]   # boot, answer one `gorb status` from the host, print times, exit 0
 *
 * --compiled runs the single executable (built into dist/gorb first) instead of `bun src/main.ts` in the guest.
 * Times are measured from the start of this process (`performance.now()`), so they leave out npm's own start-up.
 *
 * The guest stops when the host closes a control connection (a third forward to `busybox nc` in the guest), so it
 * also powers off when this process dies without a chance to clean up.
 */
import { parseArgs } from "node:util";
import { buildGuestExecutable } from "../test/rig/compiled-exe.ts";
import type { GuestFile } from "../test/rig/initramfs.ts";
import { PROJECT_ROOT } from "../test/rig/paths.ts";
import { type GuestRunResult, RigError, runInGuest, tail } from "../test/rig/qemu.ts";

/** The demo service's virtual IP and the guest ports. */
const VIP = "10.0.0.20";
const GUEST_API_PORT = 4672;
const GUEST_CONTROL_PORT = 4699;
/** Demo backends created in the guest; the first two join `web`, the third is left for the user to add. */
const BACKENDS = [1, 2, 3] as const;
const DEMO_BACKENDS = [1, 2] as const;
/** Longest wait for the first API answer (the guest boots under software emulation). */
const FIRST_ANSWER_TIMEOUT_MS = 240_000;
/** Interactive runs end after this long even without Ctrl-C (qemu's timer; below setTimeout's 24.8-day cap). */
const INTERACTIVE_LIMIT_MS = 7 * 24 * 3600 * 1000;
/** Marker lines the guest script prints. */
const SERVE_EXITED = /GORB_SANDBOX_SERVE_EXITED=(\d+)/;
const BACKENDS_UP = "GORB_SANDBOX_BACKENDS_UP";
const GUEST_UPTIME = (marker: string): RegExp => new RegExp(`${marker} uptime=([\\d.]+)s`);

/** Checked command-line options. */
export interface SandboxOptions {
  readonly check: boolean;
  readonly compiled: boolean;
  readonly verbose: boolean;
  /** Host port of the API; 0 = any free port. */
  readonly port: number;
  /** Host port forwarded to the VIP's port 80; 0 = any free port. */
  readonly vipPort: number;
}

/** A bad command-line option. */
export class SandboxUsageError extends Error {
  override readonly name = "SandboxUsageError";
}

function portOption(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) throw new SandboxUsageError(`--${flag}: expected a port 0-65535, got ${JSON.stringify(value)}`);
  return Number(value);
}

/** Parses the command line; --check defaults both ports to free ones so it never clashes with a running sandbox. */
export function parseSandboxArgs(argv: readonly string[]): SandboxOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        check: { type: "boolean", default: false },
        compiled: { type: "boolean", default: false },
        verbose: { type: "boolean", short: "v", default: false },
        port: { type: "string" },
        "vip-port": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    throw new SandboxUsageError(error instanceof Error ? error.message : String(error));
  }
  if (parsed.values.help) throw new SandboxUsageError("");
  const check = parsed.values.check === true;
  return {
    check,
    compiled: parsed.values.compiled === true,
    verbose: parsed.values.verbose === true,
    port: portOption(parsed.values.port, "port", check ? 0 : 4672),
    vipPort: portOption(parsed.values["vip-port"], "vip-port", check ? 0 : 8080),
  };
}

/**
 * The guest's shell script: the daemon first (the API answers sooner), then the backends (one `ip -b` for the root
 * namespace and one per backend namespace: every process start is slow under emulation), then wait until the host
 * closes the control connection, stop the daemon and return (/init powers off).
 */
export function guestScript(gorb: string): string {
  const rootBatch = BACKENDS.flatMap((i) => [
    `netns add be${i}`,
    `link add veth-be${i} type veth peer name eth0 netns be${i}`,
    `addr add 10.77.${i}.1/24 dev veth-be${i}`,
    `link set veth-be${i} up`,
  ]).join("\n");
  return `set -e
IP=/usr/sbin/ip
( ${gorb} serve -l 0.0.0.0:${GUEST_API_PORT} --vip-interface lo &
  echo $! > /tmp/gorb.pid
  rc=0; wait $! || rc=$?
  echo "GORB_SANDBOX_SERVE_EXITED=$rc" ) &
watcher=$!
$IP -b - <<EOF
${rootBatch}
EOF
for i in ${BACKENDS.join(" ")}; do
  $IP -n be$i -b - <<EOF
link set lo up
addr add 10.77.$i.2/24 dev eth0
link set eth0 up
route add default via 10.77.$i.1
EOF
  mkdir -p /tmp/www/be$i
  echo "be$i" > /tmp/www/be$i/index.html
  $IP netns exec be$i /bin/busybox httpd -p 10.77.$i.2:80 -h /tmp/www/be$i
done
echo "${BACKENDS_UP} uptime=$(cut -d" " -f1 /proc/uptime)s"
# The host holds a connection open on the control port; when it closes (Ctrl-C, or the host process died), stop.
printf '#!/bin/sh\\necho ready\\nexec /bin/busybox cat >/dev/null\\n' > /tmp/control.sh
chmod +x /tmp/control.sh
/bin/busybox nc -l -p ${GUEST_CONTROL_PORT} -e /tmp/control.sh
echo "GORB_SANDBOX_STOPPING"
kill -TERM "$(cat /tmp/gorb.pid)" 2>/dev/null || true
wait $watcher || true
`;
}

/** A free TCP port on 127.0.0.1 (asked from the kernel; free when returned). */
function freePort(): number {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = server.port;
  server.stop(true);
  return port;
}

/** Throws naming the flag when a host port is taken (qemu would fail later with a vaguer message). */
function assertPortFree(port: number, flag: string): void {
  try {
    const server = Bun.listen({ hostname: "127.0.0.1", port, socket: { data() {} } });
    server.stop(true);
  } catch {
    throw new SandboxUsageError(`--${flag}: 127.0.0.1:${port} is in use on this machine; pick another with --${flag} <port>`);
  }
}

/** Seconds between two `<marker> uptime=<s>s` lines of the guest, by its clock; "?" when one is missing. */
function guestSpan(transcript: string, from: string, to: string): string {
  const a = GUEST_UPTIME(from).exec(transcript)?.[1];
  const b = GUEST_UPTIME(to).exec(transcript)?.[1];
  return a === undefined || b === undefined ? "?" : `${(Number(b) - Number(a)).toFixed(1)} s`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/**
 * Polls GET <api>/service until it answers (any HTTP status from gorb counts, but 503: a daemon still starting
 * answers that); resolves with the time.
 */
async function firstAnswer(api: string, stopped: () => string | null): Promise<number> {
  const deadline = performance.now() + FIRST_ANSWER_TIMEOUT_MS;
  for (;;) {
    const why = stopped();
    if (why !== null) throw new Error(why);
    try {
      const response = await fetch(`${api}/service`, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      if (response.status !== 503) return performance.now();
    } catch {
      // Before the guest listens, qemu accepts and then closes the connection: try again.
    }
    if (performance.now() > deadline) throw new Error(`no answer from ${api}/service within ${FIRST_ANSWER_TIMEOUT_MS / 1000} s`);
    await Bun.sleep(100);
  }
}

/** Opens the control connection once the guest listens on it (it greets with "ready"); retries until then. */
async function openControl(port: number, stopped: () => string | null): Promise<{ close(): void }> {
  const deadline = performance.now() + FIRST_ANSWER_TIMEOUT_MS;
  for (;;) {
    const why = stopped();
    if (why !== null) throw new Error(why);
    const greeted = Promise.withResolvers<boolean>();
    let socket: Awaited<ReturnType<typeof Bun.connect>> | undefined;
    try {
      socket = await Bun.connect({
        hostname: "127.0.0.1",
        port,
        socket: {
          data: (_s, data) => greeted.resolve(new TextDecoder().decode(data).includes("ready")),
          close: () => greeted.resolve(false),
          error: () => greeted.resolve(false),
        },
      });
      const timer = setTimeout(() => greeted.resolve(false), 5_000);
      const ok = await greeted.promise;
      clearTimeout(timer);
      if (ok) {
        const open = socket;
        return { close: () => open.end() };
      }
    } catch {
      // refused: qemu not listening yet
    }
    socket?.end();
    if (performance.now() > deadline) throw new Error(`the guest's control port did not answer within ${FIRST_ANSWER_TIMEOUT_MS / 1000} s`);
    await Bun.sleep(200);
  }
}

/** Runs the CLI from source on the host against the forwarded API; returns its output, throws when it fails. */
async function hostGorb(api: string, args: readonly string[]): Promise<string> {
  const proc = Bun.spawn([process.execPath, `${PROJECT_ROOT}/src/main.ts`, ...args], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, GORB_SERVER: api, NO_COLOR: "1" },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`gorb ${args.join(" ")} exited ${code}: ${(stderr || stdout).trim()}`);
  return stdout + stderr;
}

function banner(o: { api: string; apiPort: number; vipPort: number; firstAnswerMs: number; readyMs: number; compiled: boolean }): string {
  const server = o.apiPort === 4672 ? "" : ` --server ${o.api}`;
  // Bun comes from npm (node_modules/.bin), so it need not be on PATH.
  const gorb = "./node_modules/.bin/bun src/main.ts";
  const tries: [command: string, note: string][] = [
    [`${gorb} status${server}`, "or dist/gorb status (npm run build)"],
    [`curl -s http://127.0.0.1:${o.vipPort}/`, "answered by be1 or be2, through IPVS"],
    [`${gorb} backend add web b3 --host 10.77.3.2 --pulse http${server}`, "add the spare backend"],
    [`${gorb} backend set web b1 --weight 0${server}`, "drain be1"],
    [`${gorb} status --watch 2${server}`, "live weights, health and rates"],
    [`curl -s ${o.api}/service/web`, "the REST API itself"],
    [`${o.api}/ui`, "the web UI, in a browser on this machine"],
  ];
  const width = Math.max(...tries.map(([command]) => command.length));
  return [
    "",
    `gorb sandbox is up: first API answer ${seconds(o.firstAnswerMs)} after start, demo ready at ${seconds(o.readyMs)}`,
    `  daemon   gorb serve -l 0.0.0.0:${GUEST_API_PORT} --vip-interface lo (${o.compiled ? "compiled executable" : "from source"}) in a qemu guest with real IPVS`,
    `  API      ${o.api}  (forwarded into the guest)`,
    `  VIP      http://127.0.0.1:${o.vipPort}  ->  ${VIP}:80 in the guest (IPVS NAT to the backends)`,
    `  backends be1 10.77.1.2, be2 10.77.2.2 (in service web), be3 10.77.3.2 (spare): busybox httpd answering its name`,
    "",
    "Try, from another terminal in this directory:",
    ...tries.map(([command, note]) => `  ${command.padEnd(width)}  # ${note}`),
    "",
    "Ctrl-C powers the guest off.",
    "",
  ].join("\n");
}

/** Runs the sandbox; resolves with the process exit code. */
export async function runSandbox(o: SandboxOptions): Promise<number> {
  const apiPort = o.port === 0 ? freePort() : o.port;
  const vipPort = o.vipPort === 0 ? freePort() : o.vipPort;
  const controlPort = freePort();
  assertPortFree(apiPort, "port");
  assertPortFree(vipPort, "vip-port");
  const api = `http://127.0.0.1:${apiPort}`;
  const say = (line: string): void => console.error(`sandbox: ${line}`);

  let extraFiles: GuestFile[] = [];
  if (o.compiled) extraFiles = [buildGuestExecutable(say)];
  const gorb = o.compiled ? "/usr/bin/gorb" : "/usr/bin/bun src/main.ts";

  let transcript = "";
  let pending = "";
  /** When the daemon's "gorb is listening" line reached us over the serial console. */
  let listeningAt: number | undefined;
  let serveExit: string | null = null;
  let guestDone: string | null = null;
  let streaming = o.verbose;
  let control: { close(): void } | undefined;

  const guestStartedAt = performance.now();
  say(`booting the rig guest (${o.compiled ? "compiled executable" : "gorb from source"}); API on ${api}, VIP on 127.0.0.1:${vipPort}`);
  const guest = runInGuest({
    script: guestScript(gorb),
    timeoutMs: o.check ? 600_000 : INTERACTIVE_LIMIT_MS,
    hostForwards: [
      { host: apiPort, guest: GUEST_API_PORT },
      { host: vipPort, guest: 80, guestAddress: VIP },
      { host: controlPort, guest: GUEST_CONTROL_PORT },
    ],
    extraFiles,
    log: say,
    onOutput: (chunk) => {
      transcript += chunk;
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        if (listeningAt === undefined && line.includes("gorb is listening on")) listeningAt = performance.now();
        const exited = SERVE_EXITED.exec(line);
        if (exited && serveExit === null) serveExit = `gorb serve exited in the guest with status ${exited[1]}`;
        if (streaming && !/GORB_(RIG|SANDBOX)_/.test(line)) process.stdout.write(`guest | ${line}\n`);
      }
    },
    onInterrupt: () => {
      if (control === undefined) {
        say("interrupted before the guest was up: stopping qemu");
        process.exit(130); // runInGuest kills qemu on exit
      }
      say("Ctrl-C: powering the guest off (Ctrl-C again to kill it)");
      control.close();
    },
  });
  const settled: Promise<GuestRunResult> = guest.then(
    (result) => {
      guestDone = `the guest stopped (script exit ${result.exitCode})`;
      return result;
    },
    (error: unknown) => {
      guestDone = error instanceof Error ? error.message : String(error);
      throw error;
    },
  );
  settled.catch(() => {}); // observed below
  const stopped = (): string | null => serveExit ?? guestDone;

  try {
    const firstAt = await firstAnswer(api, stopped);
    say(`first API answer ${seconds(firstAt)} after start (GET /service)`);
    control = await openControl(controlPort, stopped);
    while (!transcript.includes(BACKENDS_UP)) {
      const why = stopped();
      if (why !== null) throw new Error(why);
      await Bun.sleep(50);
    }
    await hostGorb(api, ["service", "add", "web", "--host", VIP, "--port", "80"]);
    for (const i of DEMO_BACKENDS) await hostGorb(api, ["backend", "add", "web", `b${i}`, "--host", `10.77.${i}.2`, "--pulse", "http"]);
    const readyAt = performance.now();

    if (o.check) {
      const status = await hostGorb(api, ["status"]);
      const statusAt = performance.now();
      process.stdout.write(status);
      if (!/^web\s/m.test(status) || !status.includes("10.77.1.2:80") || !status.includes("10.77.2.2:80")) {
        throw new Error(`gorb status does not show the demo service web with be1 and be2:\n${status}`);
      }
      const viaVip = await fetch(`http://127.0.0.1:${vipPort}/`, { headers: { Connection: "close" }, signal: AbortSignal.timeout(10_000) });
      const body = (await viaVip.text()).trim();
      if (viaVip.status !== 200 || !/^be[12]$/.test(body)) throw new Error(`a request through the VIP forward got HTTP ${viaVip.status} ${JSON.stringify(body)}`);
      console.log(
        `sandbox check: daemon said "listening" ${listeningAt === undefined ? "?" : seconds(listeningAt)}, first API answer ${seconds(firstAt)}, demo ready ${seconds(readyAt)}, gorb status answered ${seconds(statusAt)} ` +
          `after start; VIP answered by ${body} (${o.compiled ? "compiled" : "source"})`,
      );
      console.log(`SANDBOX_FIRST_ANSWER_MS=${Math.round(firstAt)}`);
      control.close();
      const result = await settled;
      if (result.exitCode !== 0) throw new Error(`the guest script exited ${result.exitCode}`);
      const t = result.timings;
      say(
        `guest powered off after ${seconds(performance.now())}; rig build ${seconds(t.buildMs)}, boot (qemu start to guest ready) ` +
          `${seconds(t.bootMs)}, guest ready to first API answer ${seconds(firstAt - (guestStartedAt + t.buildMs + t.bootMs))}` +
          `; backends up ${guestSpan(transcript, "GORB_RIG_READY", BACKENDS_UP)} after guest ready (guest clock, concurrent with the daemon's start)`,
      );
      return 0;
    }

    process.stdout.write(banner({ api, apiPort, vipPort, firstAnswerMs: firstAt, readyMs: readyAt, compiled: o.compiled }));
    streaming = true; // from now on, show what gorb logs in the guest
    const result = await settled;
    if (serveExit !== null && !transcript.includes("GORB_SANDBOX_STOPPING")) {
      say(`${serveExit} while the sandbox was running:\n${tail(transcript, 30)}`);
      return 1;
    }
    say(`guest powered off (script exit ${result.exitCode})`);
    return result.exitCode === 0 ? 0 : 1;
  } catch (error) {
    control?.close();
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof RigError) {
      say(`the rig failed: ${message}`);
    } else {
      say(`FAILED: ${message}\n${tail(transcript, 40)}`);
    }
    return 1;
  }
}

if (import.meta.main) {
  let options: SandboxOptions;
  try {
    options = parseSandboxArgs(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof SandboxUsageError)) throw error;
    if (error.message !== "") console.error(`sandbox: ${error.message}`);
    console.error("usage: bun run scripts/sandbox.ts [--check] [--compiled] [--port 4672] [--vip-port 8080] [--verbose]");
    process.exit(error.message === "" ? 0 : 2);
  }
  process.exit(await runSandbox(options));
}
