/**
 * The `udp` checker: send one datagram, Up when any datagram comes back before the monitor's timeout.
 * An ICMP port-unreachable (ECONNREFUSED on the connected socket) makes it Down at once. A socket the checker
 * cannot open (EMFILE, ENOBUFS, ...) is a check error, not a failure of the backend.
 */
import { errorCode } from "../../errno.ts";
import { type CancelProbe, type CheckResult, type Checker, checkerOf, describeError, elapsedSince, formatHostPort, LOCAL_ERROR_CODES } from "../checker.ts";
import type { ProbeTarget, UdpProbe } from "../options.ts";
import { udpExchange } from "./udp-exchange.ts";

/** udpChecker sends the probe's payload from a fresh connected socket per check. */
export function udpChecker(probe: UdpProbe): Checker {
  const payload = Buffer.from(probe.payloadHex, "hex");
  const run = (target: ProbeTarget, done: (r: CheckResult) => void, released: () => void): CancelProbe => {
    const start = performance.now();
    const where = formatHostPort(target);
    return udpExchange(target, payload, done, released, {
      data: (data, finish) =>
        finish({ ok: true, durationMs: elapsedSince(start), message: `udp ${where} replied with ${data.byteLength} bytes`, kind: "pass" }),
      error: (err) => {
        const code = errorCode(err) || describeError(err);
        if (LOCAL_ERROR_CODES.has(code)) return { ok: false, durationMs: elapsedSince(start), message: `check error: udp ${where}: ${code}`, kind: "local-error", code };
        return { ok: false, durationMs: elapsedSince(start), message: `udp ${where} failed: ${code}`, kind: "fail", code };
      },
      notSent: () => ({ ok: false, durationMs: elapsedSince(start), message: `check error: udp ${where}: datagram not sent`, kind: "local-error", code: "ENOBUFS" }),
    });
  };
  return checkerOf(run, (t, _when, why) => `${why}: no reply from udp ${formatHostPort(t)}`);
}
