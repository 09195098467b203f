/**
 * `gorb serve` as a subprocess of a kernel test, plus a small HTTP client for its REST API.
 *
 * The daemon runs from source (`bun src/main.ts serve ...`) with its stdout and stderr captured into one log, so a
 * failed assertion can show what the daemon said. {@link startDaemon} returns once the API answers and fails with
 * the log when the daemon exits first or does not answer in time.
 */
import { join } from "node:path";

/** The project's entry point, as the guest sees it (/gorb/src/main.ts). */
const MAIN = join(import.meta.dir, "..", "..", "..", "src", "main.ts");

/**
 * How long a starting daemon gets to answer `GET /service`: a guard against a daemon that never answers, not a
 * speed figure (the guest runs about 10x slower than the host, and from source gorb answers after about 10 s; on a
 * loaded CI machine a start once took over 60 s). Within bun test's per-test timeout in the guest (180 s).
 */
const START_TIMEOUT_MS = 120_000;

/** How long a stopping daemon gets to exit after SIGTERM. */
const STOP_TIMEOUT_MS = 30_000;

/** An API answer: status, raw body and the body parsed as JSON (undefined when it is not JSON). */
export interface ApiResponse {
  readonly status: number;
  readonly text: string;
  readonly json: unknown;
}

/** Options of {@link startDaemon}. */
export interface DaemonStartOptions {
  /** API port on 127.0.0.1. */
  readonly port: number;
  /** Flags after `serve -l 127.0.0.1:<port>`; default `["--vip-interface", "lo", "-v"]`. */
  readonly flags?: readonly string[];
}

/** How a daemon ended: its exit code (null when killed by a signal), the signal, and its whole log. */
export interface DaemonExit {
  readonly exitCode: number | null;
  readonly signalCode: string | null;
  readonly log: string;
}

/** A running `gorb serve`. */
export interface Daemon {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** The process id (for messages). */
  readonly pid: number;
  /** Everything the daemon wrote to stdout and stderr so far, interleaved as it arrived. */
  log(): string;
  /** The last `lines` lines of the log, for failure messages. */
  tail(lines?: number): string;
  /** Sends a request to the API; `body` is sent as JSON when given. Never throws on HTTP errors. */
  request(method: string, path: string, body?: unknown): Promise<ApiResponse>;
  /** Sends SIGTERM and waits for the exit (SIGKILL after a timeout, which then throws with the log). */
  stop(): Promise<DaemonExit>;
  /** SIGKILL if still running; for afterAll clean-up after a failure. Idempotent. */
  kill(): Promise<void>;
}

/** Reads a stream into `sink` chunk by chunk until it ends. */
async function drain(stream: ReadableStream<Uint8Array>, sink: (text: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  for await (const chunk of stream) sink(decoder.decode(chunk, { stream: true }));
  sink(decoder.decode());
}

/** Starts `bun src/main.ts serve -l 127.0.0.1:<port> <flags>` and waits until `GET /service` answers 200. */
export async function startDaemon(opts: DaemonStartOptions): Promise<Daemon> {
  const flags = opts.flags ?? ["--vip-interface", "lo", "-v"];
  const argv = [process.execPath, MAIN, "serve", "-l", `127.0.0.1:${opts.port}`, ...flags];
  const proc = Bun.spawn(argv, {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, NO_COLOR: "1", CI: "1" },
  });
  let output = "";
  const append = (text: string): void => {
    output += text;
  };
  const drained = Promise.all([drain(proc.stdout, append), drain(proc.stderr, append)]);
  const url = `http://127.0.0.1:${opts.port}`;

  const tail = (lines = 40): string => output.trimEnd().split("\n").slice(-lines).join("\n");

  const request = async (method: string, path: string, body?: unknown): Promise<ApiResponse> => {
    const init: RequestInit = { method, headers: { Connection: "close" }, signal: AbortSignal.timeout(30_000) };
    if (body !== undefined) init.body = JSON.stringify(body);
    const res = await fetch(`${url}${path}`, init);
    const text = await res.text();
    let json: unknown;
    try {
      json = text === "" ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, text, json };
  };

  const waitExit = async (ms: number): Promise<boolean> => {
    const timedOut = await Promise.race([proc.exited.then(() => false), Bun.sleep(ms).then(() => true)]);
    return !timedOut;
  };

  const daemon: Daemon = {
    url,
    pid: proc.pid,
    log: () => output,
    tail,
    request,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
      if (!(await waitExit(STOP_TIMEOUT_MS))) {
        proc.kill("SIGKILL");
        await proc.exited;
        await drained;
        throw new Error(`gorb serve (pid ${proc.pid}) did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM; log:\n${tail()}`);
      }
      await drained;
      return { exitCode: proc.exitCode, signalCode: proc.signalCode === null ? null : String(proc.signalCode), log: output };
    },
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      await proc.exited;
      await drained;
    },
  };

  const deadline = Date.now() + START_TIMEOUT_MS;
  let lastError = "no attempt yet";
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      await drained;
      throw new Error(
        `gorb serve exited during start-up (code ${proc.exitCode}, signal ${proc.signalCode}); argv ${argv.join(" ")}; log:\n${tail()}`,
      );
    }
    try {
      const res = await request("GET", "/service");
      if (res.status === 200) return daemon;
      lastError = `GET /service answered ${res.status}: ${res.text.slice(0, 200)}`;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) {
      await daemon.kill();
      throw new Error(`gorb serve did not answer on ${url} within ${START_TIMEOUT_MS} ms (${lastError}); log:\n${tail()}`);
    }
    await Bun.sleep(200);
  }
}

/**
 * Polls `probe` every `everyMs` until it returns a value other than undefined, and returns it; throws after
 * `timeoutMs` with `what` and the last value `describe` gave.
 */
export async function pollUntil<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  opts: { timeoutMs: number; everyMs?: number; describe?: () => string },
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      const last = opts.describe ? `; last seen: ${opts.describe()}` : "";
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${what}${last}`);
    }
    await Bun.sleep(opts.everyMs ?? 250);
  }
}
