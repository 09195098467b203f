/**
 * One connected-UDP exchange per check, shared by the `udp` and `dns` checkers: open a socket connected to the
 * target (an IPv6 target needs an IPv6 bind), send one datagram, hand every datagram that comes back to `data`
 * until the check settles. The socket is closed, and `released` called, exactly once; a cancel (the monitor's
 * timeout) settles the check without a result, but while a host name's lookup (./names.ts) still runs: then it
 * answers with the `error` handler's result for EAI_AGAIN (a check error: this host's resolver used the time).
 */
import net from "node:net";
import type { CancelProbe, CheckResult } from "../checker.ts";
import type { ProbeTarget } from "../options.ts";
import { lookupName } from "./names.ts";

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
  const open = (host: string) => {
    let opening: Promise<UdpLike>;
    try {
      opening = Bun.udpSocket({
        ...(host.includes(":") ? { hostname: "::" } : {}),
        connect: { hostname: host, port: target.port },
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
  };
  let resolving = false;
  if (net.isIP(target.host) !== 0) {
    open(target.host);
  } else {
    resolving = true;
    lookupName(target.host, (error, address) => {
      if (!resolving) return; // cancelled meanwhile
      resolving = false;
      if (error === null) {
        open(address);
        return;
      }
      finish(handlers.error(error));
      released();
    });
  }
  return () => {
    if (resolving) {
      resolving = false;
      finish(handlers.error(Object.assign(new Error("lookup did not finish"), { code: "EAI_AGAIN" })));
      released();
      return;
    }
    settled = true;
    close();
  };
}
