/**
 * One connected-UDP exchange per check, shared by the `udp` and `dns` checkers: open a socket connected to the
 * target (an IPv6 target needs an IPv6 bind), send one datagram, hand every datagram that comes back to `data`
 * until the check settles. The socket is closed, and `released` called, exactly once; a cancel (the monitor's
 * timeout) settles the check without a result.
 */
import type { CancelProbe, CheckResult } from "../checker.ts";
import type { ProbeTarget } from "../options.ts";

interface UdpLike {
  close(): void;
  send(data: Uint8Array): boolean;
}

/** What a checker makes of the exchange. */
export interface UdpExchangeHandlers {
  /** A datagram came back: `finish` settles the check (or ignore it: not ours). */
  readonly data: (data: Uint8Array, finish: (result: CheckResult) => void) => void;
  /** The socket failed (ICMP port unreachable, EMFILE, ...). */
  readonly error: (err: unknown) => CheckResult;
  /** The datagram could not be sent (no buffer). */
  readonly notSent: () => CheckResult;
}

/** Run one exchange; see the module comment. */
export function udpExchange(
  target: ProbeTarget,
  payload: Uint8Array,
  done: (result: CheckResult) => void,
  released: () => void,
  handlers: UdpExchangeHandlers,
): CancelProbe {
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
  let opening: Promise<UdpLike>;
  try {
    opening = Bun.udpSocket({
      ...(target.host.includes(":") ? { hostname: "::" } : {}),
      connect: { hostname: target.host, port: target.port },
      socket: {
        data: (_s, data) => handlers.data(data, finish),
        error: (err) => finish(handlers.error(err)),
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
      if (!s.send(payload)) finish(handlers.notSent());
    },
    (err: unknown) => {
      finish(handlers.error(err));
      released(); // no socket was opened: close() had nothing to release
    },
  );
  return () => {
    settled = true;
    close();
  };
}
