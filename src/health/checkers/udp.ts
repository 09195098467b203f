/**
 * The `udp` checker: send one datagram, Up when any datagram comes back before the monitor aborts.
 * An ICMP port-unreachable (ECONNREFUSED on the connected socket) makes it Down at once.
 */
import { type CheckResult, type Checker, abortMessage, describeError, elapsedSince, formatHostPort } from "../checker.ts";
import type { ProbeTarget, UdpProbe } from "../options.ts";

/** udpChecker sends the probe's payload from a fresh connected socket per check. */
export function udpChecker(probe: UdpProbe): Checker {
  const payload = Buffer.from(probe.payloadHex, "hex");
  return {
    check(target: ProbeTarget, signal: AbortSignal): Promise<CheckResult> {
      const start = performance.now();
      const where = formatHostPort(target);
      if (signal.aborted) return Promise.resolve({ ok: false, durationMs: 0, message: `${abortMessage(signal)} before sending to ${where}` });
      return new Promise<CheckResult>((resolve) => {
        let settled = false;
        let socket: { close(): void } | null = null;
        const finish = (ok: boolean, message: string) => {
          if (settled) return;
          settled = true;
          signal.removeEventListener("abort", onAbort);
          socket?.close();
          resolve({ ok, durationMs: elapsedSince(start), message });
        };
        const onAbort = () => finish(false, `${abortMessage(signal)}: no reply from udp ${where}`);
        signal.addEventListener("abort", onAbort, { once: true });
        let opening: Promise<{ close(): void; send(data: Uint8Array): boolean }>;
        try {
          opening = Bun.udpSocket({
            // NB: the local socket must match the target's family; an IPv6 literal needs an IPv6 bind.
            ...(target.host.includes(":") ? { hostname: "::" } : {}),
            connect: { hostname: target.host, port: target.port },
            socket: {
              data(_s, data) {
                finish(true, `udp ${where} replied with ${data.byteLength} bytes`);
              },
              error(err) {
                finish(false, `udp ${where} failed: ${describeError(err)}`);
              },
            },
          });
        } catch (err) {
          opening = Promise.reject(err);
        }
        opening.then(
          (s) => {
            socket = s;
            if (settled) {
              s.close();
              return;
            }
            if (!s.send(payload)) finish(false, `udp ${where}: datagram not sent`);
          },
          (err: unknown) => finish(false, `udp ${where} failed: ${describeError(err)}`),
        );
      });
    },
  };
}
