/**
 * The `tcp` checker: Up when a TCP handshake to host:port completes; the socket is closed at once (FIN).
 * IPv6 literals work (Bun.connect takes the bare address; messages bracket it).
 */
import { type CheckResult, type Checker, abortMessage, describeError, elapsedSince, formatHostPort } from "../checker.ts";
import type { ProbeTarget } from "../options.ts";

/**
 * tcpChecker connects and disconnects. NB: Bun.connect cannot be cancelled before it opens, so on abort the
 * result is reported at once and a connection that opens later is closed immediately; one that never opens is
 * left to the kernel's SYN timeout.
 */
export function tcpChecker(): Checker {
  return { check: tcpCheck };
}

function tcpCheck(target: ProbeTarget, signal: AbortSignal): Promise<CheckResult> {
  const start = performance.now();
  const where = formatHostPort(target);
  if (signal.aborted) return Promise.resolve({ ok: false, durationMs: 0, message: `${abortMessage(signal)} before connecting to ${where}` });
  return new Promise<CheckResult>((resolve) => {
    let settled = false;
    const finish = (ok: boolean, message: string) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener("abort", onAbort);
      resolve({ ok, durationMs: elapsedSince(start), message });
    };
    const onAbort = () => finish(false, `${abortMessage(signal)} while connecting to ${where}`);
    signal.addEventListener("abort", onAbort, { once: true });
    let connecting: Promise<unknown>;
    try {
      connecting = Bun.connect({
        hostname: target.host,
        port: target.port,
        socket: {
          open(socket) {
            socket.end();
            finish(true, `connected to ${where}`);
          },
          data() {},
          error() {},
          connectError() {},
        },
      });
    } catch (err) {
      connecting = Promise.reject(err);
    }
    connecting.catch((err: unknown) => finish(false, `connect to ${where} failed: ${describeError(err)}`));
  });
}
