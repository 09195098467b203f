/**
 * Boots the rig kernel under qemu (software emulation) and runs one shell script inside it.
 *
 * The guest's /init (test/rig/init.sh) prints marker lines on the serial console, which qemu connects to our stdout:
 * `GORB_RIG_READY` once setup is done, `GORB_RIG_EXIT=<rc>` after the script, or `GORB_RIG_SETUP_FAILED: <what>`.
 * Anything else that goes wrong (qemu cannot start, the guest dies or hangs) rejects with a {@link RigError} that
 * says what happened and quotes the end of the console transcript.
 */
import { buildInitramfs, type GuestFile } from "./initramfs.ts";
import { requireTool } from "./host-exec.ts";
import { prepareKernel } from "./kernel.ts";

/** One TCP port forward from 127.0.0.1:host on the host to guest on the guest's eth0 (10.0.2.15). */
export interface HostForward {
  readonly host: number;
  readonly guest: number;
  /**
   * Guest address to connect to instead of eth0's 10.0.2.15, e.g. a virtual IP on the guest's `lo`: qemu sends the
   * connection over eth0 to that address, so IPVS in the guest sees it arrive from 10.0.2.2.
   */
  readonly guestAddress?: string;
}

/** Options of {@link runInGuest}. */
export interface GuestRunOptions {
  /** Shell script (busybox sh) run as root with cwd /gorb, HOME=/tmp and GORB_RIG=1. */
  readonly script: string;
  /** Upper bound for the whole guest run, from qemu start to power-off; qemu is killed when it passes. */
  readonly timeoutMs: number;
  /** Guest memory; default 2048. */
  readonly memoryMb?: number;
  /** Guest CPUs; default 2 (GORB_RIG_CPUS overrides). */
  readonly cpus?: number;
  /** TCP ports forwarded from the host's loopback into the guest; the guest then configures eth0. */
  readonly hostForwards?: readonly HostForward[];
  /** Receives the console output as it arrives (carriage returns removed). */
  readonly onOutput?: (chunk: string) => void;
  /** Receives rig progress lines (building, cache hits); default: stderr. */
  readonly log?: (line: string) => void;
  /** Host files added to the guest for this run (see {@link GuestFile}), e.g. the compiled executable. */
  readonly extraFiles?: readonly GuestFile[];
  /**
   * Called on the first SIGINT/SIGTERM instead of killing qemu: the caller asks the guest to finish (its script
   * exits, /init powers off) and the run resolves as usual. qemu then runs in its own process group, so a terminal's
   * Ctrl-C reaches only us. A second signal kills qemu. Without it, a signal kills qemu and exits the process.
   */
  readonly onInterrupt?: (signal: NodeJS.Signals) => void;
}

/** Where the time of one guest run went, in milliseconds. */
export interface GuestRunTimings {
  /** Preparing the kernel and initramfs on the host. */
  readonly buildMs: number;
  /** From qemu start to the guest's `GORB_RIG_READY`. */
  readonly bootMs: number;
  /** From qemu start to the first console line the script printed. */
  readonly firstScriptOutputMs: number | undefined;
  /** From `GORB_RIG_READY` to `GORB_RIG_EXIT`. */
  readonly scriptMs: number;
  /** Everything, build included. */
  readonly totalMs: number;
}

/** Result of a guest run that reached the exit marker. */
export interface GuestRunResult {
  /** Exit status of the script inside the guest. */
  readonly exitCode: number;
  /** The whole serial console transcript. */
  readonly transcript: string;
  readonly timings: GuestRunTimings;
  /** True when the cached base initramfs was reused. */
  readonly baseCached: boolean;
}

/** The guest did not report an exit code: qemu failed, setup failed, the guest crashed or timed out. */
export class RigError extends Error {
  /** The whole console transcript (not enumerable, so printing the error shows only the message's tail). */
  declare readonly transcript: string;

  constructor(message: string, transcript: string) {
    super(message);
    this.name = "RigError";
    Object.defineProperty(this, "transcript", { value: transcript, enumerable: false });
  }
}

const TAIL_LINES = 60;
/** Not anchored: a kernel message may share the console line with it. */
const EXIT_MARKER = /GORB_RIG_EXIT=(\d+)\s*$/;
const READY_MARKER = /^GORB_RIG_READY(?:\s.*)?$/;
const SETUP_FAILED_MARKER = /^GORB_RIG_SETUP_FAILED: (.*)$/;
/** After the exit marker, how long qemu gets to power off before it is killed. */
const POWEROFF_GRACE_MS = 15_000;

/** The last `n` lines of `text`, indented, for error messages. */
export function tail(text: string, n = TAIL_LINES): string {
  const lines = text.replace(/\n+$/, "").split("\n");
  const shown = lines.slice(-n);
  const header = lines.length > n ? `last ${n} of ${lines.length} console lines` : `console (${lines.length} lines)`;
  return `--- ${header} ---\n${shown.join("\n")}\n--- end of console ---`;
}

const IPV4_ADDRESS = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function validatePort(value: number, field: string): void {
  if (!Number.isInteger(value) || value < 1 || value > 65535) {
    throw new Error(`${field} must be an integer port 1-65535, got ${value}`);
  }
}

/** The qemu command line for one run. */
export function qemuArgs(o: {
  vmlinuz: string;
  initrd: string;
  memoryMb: number;
  cpus: number;
  hostForwards: readonly HostForward[];
  /** Show all kernel messages on the console (GORB_RIG_VERBOSE=1). */
  verboseKernel?: boolean;
}): string[] {
  const args = [
    "qemu-system-x86_64",
    "-accel", "tcg",
    "-cpu", "max", // the Bun executable needs AVX2; qemu64 dies with "Illegal instruction"
    "-m", String(o.memoryMb),
    "-smp", String(o.cpus),
    "-nodefaults",
    "-no-user-config",
    "-display", "none",
    "-serial", "stdio",
    "-monitor", "none",
    "-no-reboot",
    "-kernel", o.vmlinuz,
    "-initrd", o.initrd,
    "-append", `console=ttyS0 panic=-1 ${o.verboseKernel ? "" : "quiet loglevel=4 "}random.trust_cpu=on`,
  ];
  if (o.hostForwards.length > 0) {
    const fwds = o.hostForwards.map((f) => `hostfwd=tcp:127.0.0.1:${f.host}-${f.guestAddress ?? ""}:${f.guest}`).join(",");
    // NB: restrict=on would isolate the guest but (measured, qemu 7.2) also breaks the forwards; instead the guest
    // gets no default route (see init.sh), so it can only answer the host.
    args.push("-netdev", `user,id=n0,${fwds}`, "-device", "virtio-net-pci,netdev=n0,romfile=");
  }
  return args;
}

/**
 * Builds the rig (cached where possible), boots it, runs `script` and resolves with its exit code and the console
 * transcript. Rejects with {@link RigError} when the guest never reports an exit code.
 */
export async function runInGuest(opts: GuestRunOptions): Promise<GuestRunResult> {
  const started = performance.now();
  if (!Number.isFinite(opts.timeoutMs) || opts.timeoutMs <= 0) throw new Error(`timeoutMs must be a positive number, got ${opts.timeoutMs}`);
  const forwards = opts.hostForwards ?? [];
  forwards.forEach((f, i) => {
    validatePort(f.host, `hostForwards[${i}].host`);
    validatePort(f.guest, `hostForwards[${i}].guest`);
    if (f.guestAddress !== undefined && !IPV4_ADDRESS.test(f.guestAddress)) {
      throw new Error(`hostForwards[${i}].guestAddress must be an IPv4 address, got ${JSON.stringify(f.guestAddress)}`);
    }
  });
  const cpus = opts.cpus ?? Number(process.env.GORB_RIG_CPUS ?? 2);
  if (!Number.isInteger(cpus) || cpus < 1) throw new Error(`cpus must be a positive integer, got ${cpus}`);
  const memoryMb = opts.memoryMb ?? 2048;
  if (!Number.isInteger(memoryMb) || memoryMb < 256) throw new Error(`memoryMb must be an integer >= 256, got ${memoryMb}`);
  requireTool("qemu-system-x86_64", "qemu-system-x86");

  const kernel = prepareKernel(opts.log);
  const initramfs = buildInitramfs(
    kernel,
    { script: opts.script, network: forwards.length > 0, ...(opts.extraFiles ? { extraFiles: opts.extraFiles } : {}) },
    opts.log,
  );
  const buildMs = performance.now() - started;
  process.on("exit", initramfs.dispose); // also on interruption (the signal handlers below exit the process)
  try {
    const args = qemuArgs({ vmlinuz: kernel.vmlinuz, initrd: initramfs.path, memoryMb, cpus, hostForwards: forwards, verboseKernel: process.env.GORB_RIG_VERBOSE === "1" });
    return await boot(args, opts, buildMs, started, initramfs.baseCached);
  } finally {
    process.off("exit", initramfs.dispose);
    initramfs.dispose();
  }
}

async function boot(args: string[], opts: GuestRunOptions, buildMs: number, started: number, baseCached: boolean): Promise<GuestRunResult> {
  let proc: ReturnType<typeof Bun.spawn<"ignore", "pipe", "pipe">>;
  const qemuStart = performance.now();
  try {
    proc = Bun.spawn(args, { stdin: "ignore", stdout: "pipe", stderr: "pipe", detached: opts.onInterrupt !== undefined });
  } catch (err) {
    throw new RigError(`cannot start qemu (${args[0]}): ${err instanceof Error ? err.message : String(err)}`, "");
  }

  // Do not leave an emulator running when we are interrupted or exit early.
  const killQemu = (): void => {
    proc.kill("SIGKILL");
  };
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (opts.onInterrupt && !interrupted) {
      interrupted = true;
      opts.onInterrupt(signal);
      return;
    }
    killQemu();
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  process.on("exit", killQemu);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    return await watch(proc, opts, buildMs, started, qemuStart, baseCached);
  } finally {
    process.off("exit", killQemu);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

async function watch(
  proc: ReturnType<typeof Bun.spawn<"ignore", "pipe", "pipe">>,
  opts: GuestRunOptions,
  buildMs: number,
  started: number,
  qemuStart: number,
  baseCached: boolean,
): Promise<GuestRunResult> {
  let transcript = "";
  let pending = "";
  let readyAt: number | undefined;
  let firstScriptOutputAt: number | undefined;
  let exitAt: number | undefined;
  let exitCode: number | undefined;
  let setupFailure: string | undefined;
  let timedOut = false;

  const onLine = (line: string): void => {
    const now = performance.now();
    if (exitCode === undefined) {
      const exit = EXIT_MARKER.exec(line);
      if (exit && readyAt !== undefined) {
        exitCode = Number(exit[1]);
        exitAt = now;
        graceTimer = setTimeout(() => proc.kill("SIGKILL"), POWEROFF_GRACE_MS);
        return;
      }
    }
    const failed = SETUP_FAILED_MARKER.exec(line);
    if (failed && readyAt === undefined) setupFailure ??= failed[1] ?? "";
    if (readyAt === undefined) {
      if (READY_MARKER.test(line)) readyAt = now;
    } else if (firstScriptOutputAt === undefined && exitCode === undefined && line.trim() !== "") {
      firstScriptOutputAt = now;
    }
  };

  let graceTimer: ReturnType<typeof setTimeout> | undefined;
  const timeout = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGKILL");
  }, opts.timeoutMs);

  const stderrText = new Response(proc.stderr).text();
  const decoder = new TextDecoder();
  const reader = proc.stdout.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const chunk = decoder.decode(value, { stream: true }).replace(/\r/g, "");
      if (chunk === "") continue;
      transcript += chunk;
      opts.onOutput?.(chunk);
      pending += chunk;
      let nl = pending.indexOf("\n");
      while (nl >= 0) {
        onLine(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
        nl = pending.indexOf("\n");
      }
    }
    if (pending !== "") onLine(pending);
  } finally {
    reader.releaseLock();
  }
  const qemuStatus = await proc.exited;
  clearTimeout(timeout);
  if (graceTimer) clearTimeout(graceTimer);
  const stderr = (await stderrText).trim();
  const qemuSaid = stderr ? `\nqemu stderr: ${stderr}` : "";
  const elapsed = Math.round(performance.now() - qemuStart);

  if (exitCode !== undefined && readyAt !== undefined && exitAt !== undefined) {
    const end = performance.now();
    return {
      exitCode,
      transcript,
      baseCached,
      timings: {
        buildMs,
        bootMs: readyAt - qemuStart,
        firstScriptOutputMs: firstScriptOutputAt === undefined ? undefined : firstScriptOutputAt - qemuStart,
        scriptMs: exitAt - readyAt,
        totalMs: end - started,
      },
    };
  }
  let what: string;
  if (timedOut) {
    const stage = readyAt === undefined ? "the guest never finished booting (no GORB_RIG_READY)" : "the script was still running";
    what = `guest timed out after ${opts.timeoutMs} ms and qemu was killed: ${stage}`;
  } else if (setupFailure !== undefined) {
    what = `guest setup failed: ${setupFailure}`;
  } else if (readyAt === undefined) {
    what = `qemu exited with status ${qemuStatus} after ${elapsed} ms before the guest finished booting (no GORB_RIG_READY; kernel panic or bad initramfs?)`;
  } else {
    what = `qemu exited with status ${qemuStatus} after ${elapsed} ms without the guest printing GORB_RIG_EXIT=<rc> (guest crashed or powered off early)`;
  }
  throw new RigError(`${what}${qemuSaid}\n${tail(transcript)}`, transcript);
}
