/**
 * The `http` / `https` checker: one HTTP/1.1 request over a raw socket, Up when the status is in `expect`.
 *
 * What it does per check: connect (TLS for https), write one precomputed request, read until the final status
 * line is complete, compare the status, close. Interim responses (1xx but 101: 100 Continue, 103 Early Hints, which
 * RFC 9110 says a client must accept before the final one even unasked) are skipped up to the empty line that ends
 * them. The final response's headers and body are never read (the connection is closed with them unread), redirects are never followed (a 3xx is compared with `expect` like any status), no proxy is ever
 * used, certificates are verified unless `insecure`. `Connection: close` tells the server not to keep the
 * connection. The message reports the status only, never what the backend sent (no Location, no reason phrase):
 * a health endpoint's content can hold secrets and the API shows messages.
 */
import { type CancelProbe, type CheckResult, type Checker, checkerOf, formatHostPort } from "../checker.ts";
import { formatExpect, matchesExpect } from "../expect.ts";
import type { HttpProbe, ProbeTarget } from "../options.ts";
import { CaConnector } from "./ca-file.ts";
import { type Connector, newConnector, SocketProbe } from "./conn.ts";

/** USER_AGENT is sent with every HTTP probe so backends can tell health checks from traffic. */
const USER_AGENT = "gorb-pulse";

/** Status codes as text, made once. */
const STATUS_TEXT: readonly string[] = Array.from({ length: 600 }, (_, i) => String(i));

/** The longest status line read (its bytes before the LF); a longer one is malformed. */
const MAX_STATUS_LINE = 1024;

/**
 * The most bytes of interim (1xx) responses read before the final status line; more is a malformed response (a
 * backend sending 1xx responses without end is failed at once, not read until the timeout).
 */
const MAX_INTERIM = 64 * 1024;
const TOO_LONG = -2;

/** The per-target constants of a checker: the request bytes and the words of its messages. */
interface HttpPlan {
  readonly target: ProbeTarget;
  readonly request: Uint8Array;
  readonly what: string;
  /** Messages by status code, made once each. */
  readonly messages: Map<number, string>;
}

class HttpProbeRun extends SocketProbe {
  /** The start of a status line whose end has not arrived yet. */
  private head: Uint8Array | null = null;
  /** Inside an interim response's header block: the length of its current line so far; -1 otherwise. */
  private interimLine = -1;
  /** Bytes of interim responses read so far. */
  private interimBytes = 0;

  constructor(
    private readonly plan: HttpPlan,
    private readonly probe: HttpProbe,
    done: (r: CheckResult) => void,
    released: () => void,
    connector: Connector,
  ) {
    super(plan.target, done, released, connector);
  }

  protected override greeting(): Uint8Array {
    return this.plan.request;
  }

  protected opened(): void {}

  protected override received(chunk: Uint8Array): void {
    for (let rest = chunk; rest.length > 0; ) {
      if (this.interimLine >= 0) {
        const at = this.skipInterim(rest);
        if (at === TOO_LONG) {
          this.fail(`${this.plan.what}: malformed response`, "BAD_RESPONSE");
          return;
        }
        if (at < 0) return;
        rest = rest.subarray(at);
        continue;
      }
      let buf = rest;
      if (this.head !== null) {
        const joined = new Uint8Array(this.head.length + rest.length);
        joined.set(this.head);
        joined.set(rest, this.head.length);
        buf = joined;
      }
      const end = buf.indexOf(0x0a);
      // The cap holds however the line arrives: in small reads or whole in one large chunk (a TLS record).
      if ((end < 0 ? buf.length : end) > MAX_STATUS_LINE) {
        this.fail(`${this.plan.what}: malformed response`, "BAD_RESPONSE");
        return;
      }
      if (end < 0) {
        this.head = buf === rest ? rest.slice() : buf;
        return;
      }
      this.head = null;
      const status = parseStatusLine(buf, end);
      if (status < 0) {
        this.fail(`${this.plan.what}: malformed response`, "BAD_RESPONSE");
        return;
      }
      if (status < 200 && status !== 101) {
        // An interim response (100 Continue, 103 Early Hints): its header block is skipped, the final one follows.
        this.interimBytes += end + 1;
        this.interimLine = 0;
        rest = buf.subarray(end + 1);
        continue;
      }
      this.finalStatus(status);
      return;
    }
  }

  /**
   * skipInterim reads `bytes` as part of an interim response's header block: the index just past the empty line
   * that ends it, -1 when it does not end in them, TOO_LONG once interim responses exceed MAX_INTERIM bytes.
   */
  private skipInterim(bytes: Uint8Array): number {
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i];
      if (b === 0x0a) {
        if (this.interimLine === 0) {
          this.interimLine = -1;
          this.interimBytes += i + 1;
          return this.interimBytes > MAX_INTERIM ? TOO_LONG : i + 1;
        }
        this.interimLine = 0;
      } else if (b !== 0x0d) {
        this.interimLine++;
      }
    }
    this.interimBytes += bytes.length;
    return this.interimBytes > MAX_INTERIM ? TOO_LONG : -1;
  }

  /** finalStatus ends the check on the final response's status. */
  private finalStatus(status: number): void {
    const ok = matchesExpect(this.probe.expect, status);
    let message = this.plan.messages.get(status);
    if (message === undefined) {
      message = `${this.plan.what}: ${status}`;
      if (!ok) message += `, expected ${formatExpect(this.probe.expect)}`;
      if (!ok && status >= 300 && status < 400) message += " (redirect not followed)";
      if (this.plan.messages.size < 64) this.plan.messages.set(status, message);
    }
    if (ok) this.pass(message, STATUS_TEXT[status] ?? String(status));
    else this.fail(message, STATUS_TEXT[status] ?? String(status));
  }

  protected failure(code: string): string {
    return `${this.plan.what} failed: ${code}`;
  }
}

/**
 * parseStatusLine reads "HTTP/1.x NNN ..." from bytes [0, end) and returns NNN, or -1 when the line is not an
 * HTTP/1 status line. Works on bytes: no text decoding per check.
 */
function parseStatusLine(buf: Uint8Array, end: number): number {
  // "HTTP/" 1 "." d SP d d d
  if (end < 12) return -1;
  if (buf[0] !== 0x48 || buf[1] !== 0x54 || buf[2] !== 0x54 || buf[3] !== 0x50 || buf[4] !== 0x2f || buf[5] !== 0x31 || buf[6] !== 0x2e) return -1;
  const minor = (buf[7] as number) - 0x30;
  if (minor < 0 || minor > 9 || buf[8] !== 0x20) return -1;
  let status = 0;
  for (let i = 9; i < 12; i++) {
    const d = (buf[i] as number) - 0x30;
    if (d < 0 || d > 9) return -1;
    status = status * 10 + d;
  }
  if (end > 12 && buf[12] !== 0x20 && buf[12] !== 0x0d) return -1;
  return status < 100 || status > 599 ? -1 : status;
}

/** httpRequest is the request an http probe sends to `target`. */
function httpRequest(probe: HttpProbe, target: ProbeTarget): string {
  const host = probe.hostHeader ?? formatHostPort({ host: target.host.replace(/%.*$/, ""), port: target.port });
  return `${probe.method} ${probe.path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: ${USER_AGENT}\r\nAccept: */*\r\nConnection: close\r\n\r\n`;
}

/**
 * httpChecker builds a checker for one HttpProbe. The request bytes are built once per probed address (the
 * monitor always passes the same target), not per check. A CA file is read when the checker is made, and again
 * at a check once it changed (a rotated CA); while it cannot be read, every check is a check error (local, not the
 * backend's fault) naming the error code, and the next check reads it again (see CaConnector).
 */
export function httpChecker(probe: HttpProbe): Checker {
  const connectors = new CaConnector(probe.ca, (ca) =>
    newConnector({ tls: probe.scheme === "https" ? { verify: probe.tlsVerify, ca, serverName: probe.serverName } : null }),
  );
  let plan: HttpPlan | null = null;
  const planFor = (target: ProbeTarget): HttpPlan => {
    if (plan !== null && (plan.target === target || (plan.target.host === target.host && plan.target.port === target.port))) return plan;
    plan = {
      target,
      request: new TextEncoder().encode(httpRequest(probe, target)),
      what: `${probe.method} ${probe.scheme}://${formatHostPort({ host: target.host.replace("%", "%25"), port: target.port })}${probe.path}`,
      messages: new Map(),
    };
    return plan;
  };
  const run = (target: ProbeTarget, done: (r: CheckResult) => void, released: () => void): CancelProbe => {
    const p = planFor(target);
    const { connector, problem } = connectors.get();
    if (connector === null) {
      done({ ok: false, durationMs: 0, message: `check error: ${p.what}: cannot read CA file ${probe.ca}: ${problem.problem}`, kind: "local-error", code: problem.code });
      released();
      return () => {};
    }
    return new HttpProbeRun(p, probe, done, released, connector).begin();
  };
  return checkerOf(run, (t, when, why) => (when === "before" ? `${why} before ${planFor(t).what}` : `${planFor(t).what} failed: ${why}`));
}
