/**
 * The `udp` checker: send one datagram, Up when any datagram comes back before the monitor's timeout.
 * An ICMP port-unreachable (ECONNREFUSED on the connected socket) makes it Down at once. A socket the checker
 * cannot open (EMFILE, ENOBUFS, ...) is a check error, not a failure of the backend.
 */
import { type CancelProbe, type CheckResult, type Checker, checkerOf, describeError, elapsedSince, errorCode, formatHostPort, LOCAL_ERROR_CODES } from "../checker.ts";
import type { ProbeTarget, UdpProbe } from "../options.ts";

interface UdpLike {
  close(): void;
  send(data: Uint8Array): boolean;
}

/** udpChecker sends the probe's payload from a fresh connected socket per check. */
export function udpChecker(probe: UdpProbe): Checker {
  const payload = Buffer.from(probe.payloadHex, "hex");
  const run = (target: ProbeTarget, done: (r: CheckResult) => void, released: () => void): CancelProbe => {
    const start = performance.now();
    const where = formatHostPort(target);
    let socket: UdpLike | null = null;
    let settled = false;
    let closed = false;
    const close = () => {
      if (closed || socket === null) return;
      closed = true;
      socket.close();
      released();
    };
    const finish = (result: CheckResult) => {
      if (settled) return;
      settled = true;
      close();
      done(result);
    };
    const onError = (err: unknown) => {
      const code = errorCode(err) || describeError(err);
      if (LOCAL_ERROR_CODES.has(code)) finish({ ok: false, durationMs: elapsedSince(start), message: `check error: udp ${where}: ${code}`, kind: "local-error", code });
      else finish({ ok: false, durationMs: elapsedSince(start), message: `udp ${where} failed: ${code}`, kind: "fail", code });
    };
    let opening: Promise<UdpLike>;
    try {
      opening = Bun.udpSocket({
        // NB: the local socket must match the target's family; an IPv6 literal needs an IPv6 bind.
        ...(target.host.includes(":") ? { hostname: "::" } : {}),
        connect: { hostname: target.host, port: target.port },
        socket: {
          data: (_s, data) => finish({ ok: true, durationMs: elapsedSince(start), message: `udp ${where} replied with ${data.byteLength} bytes`, kind: "pass" }),
          error: (err) => onError(err),
        },
      });
    } catch (err) {
      opening = Promise.reject(err);
    }
    opening.then(
      (s) => {
        socket = s;
        if (settled) {
          close();
          return;
        }
        if (!s.send(payload)) finish({ ok: false, durationMs: elapsedSince(start), message: `check error: udp ${where}: datagram not sent`, kind: "local-error", code: "ENOBUFS" });
      },
      (err: unknown) => {
        onError(err);
        released();
      },
    );
    return () => {
      settled = true;
      close();
    };
  };
  return checkerOf(run, (t, _when, why) => `${why}: no reply from udp ${formatHostPort(t)}`);
}
