/**
 * The `tcp` checker: Up when a TCP handshake to host:port completes; the socket is closed at once.
 * IPv6 literals work (the connect takes the bare address; messages bracket it). Cancelling closes the socket
 * for real, also while it is still connecting (see conn.ts).
 */
import { type CancelProbe, type CheckResult, type Checker, checkerOf, formatHostPort } from "../checker.ts";
import type { ProbeTarget } from "../options.ts";
import { type Connector, newConnector, SocketProbe } from "./conn.ts";

/** The words of a passed check, made once per probed address. */
const PASSED = new WeakMap<ProbeTarget, string>();

class TcpProbe extends SocketProbe {
  protected opened(): void {
    let message = PASSED.get(this.target);
    if (message === undefined) {
      message = `connected to ${formatHostPort(this.target)}`;
      PASSED.set(this.target, message);
    }
    this.pass(message);
  }

  protected failure(code: string): string {
    return `connect to ${formatHostPort(this.target)} failed: ${code}`;
  }
}

/** tcpChecker connects and disconnects; one checker per monitored target (its connector remembers the connect mode). */
export function tcpChecker(): Checker {
  const connector: Connector = newConnector();
  const run = (target: ProbeTarget, done: (r: CheckResult) => void, released: () => void): CancelProbe =>
    new TcpProbe(target, done, released, connector).begin();
  return checkerOf(run, (t, when, why) => `${why} ${when} connecting to ${formatHostPort(t)}`);
}
