/**
 * The `tls` checker: Up when a TLS handshake with host:port completes and (unless `insecure`) the certificate
 * verifies against the system's CAs or `args.ca`, for `args.serverName` (else the probed address). With
 * `args.expiryDays: N`, a certificate that expires within N days fails ("expires in 3 days, wanted >= 14"),
 * so an operator hears about a renewal that did not happen before clients do; one already expired (seen with
 * `insecure`) says "expired 1 days ago" and fails with CERT_HAS_EXPIRED. Nothing is sent after the
 * handshake; the connection is closed at once.
 */
import { type CancelProbe, type CheckResult, type Checker, checkerOf, formatHostPort } from "../checker.ts";
import type { ProbeTarget, TlsProbe } from "../options.ts";
import { CaConnector } from "./ca-file.ts";
import { type Connector, newConnector, SocketProbe } from "./conn.ts";

const DAY_MS = 86_400_000;

class TlsProbeRun extends SocketProbe {
  constructor(
    target: ProbeTarget,
    private readonly probe: TlsProbe,
    done: (r: CheckResult) => void,
    released: () => void,
    connector: Connector,
  ) {
    super(target, done, released, connector);
  }

  protected opened(): void {
    const where = formatHostPort(this.target);
    const expiry = this.peerCertificateExpiry();
    const left = expiry - Date.now();
    const days = Number.isNaN(expiry) ? Number.NaN : Math.floor(left / DAY_MS);
    // An expired certificate (seen with `insecure`) is said so, with the code verification gives it, not "expires in -2 days".
    const when = left <= 0 ? `expired ${Math.floor(-left / DAY_MS)} days ago` : `expires in ${days} days`;
    const min = this.probe.expiryDays;
    if (min !== null) {
      if (Number.isNaN(days)) {
        this.fail(`tls ${where}: no certificate expiry to check`, "NO_CERTIFICATE");
        return;
      }
      if (days < min) {
        this.fail(`tls ${where}: certificate ${when}, wanted at least ${min}`, left <= 0 ? "CERT_HAS_EXPIRED" : "CERT_EXPIRES_SOON");
        return;
      }
    }
    this.pass(Number.isNaN(days) ? `tls ${where}: handshake ok` : `tls ${where}: handshake ok, certificate ${when}`);
  }

  protected failure(code: string): string {
    return `tls ${formatHostPort(this.target)} failed: ${code}`;
  }
}

/** tlsChecker builds a checker for one TlsProbe (the CA file is read here, and again at a check while it cannot be used or once it changed: see CaConnector). */
export function tlsChecker(probe: TlsProbe): Checker {
  const connectors = new CaConnector(probe.ca, (ca) => newConnector({ tls: { verify: probe.verify, ca, serverName: probe.serverName } }));
  const run = (target: ProbeTarget, done: (r: CheckResult) => void, released: () => void): CancelProbe => {
    const { connector, problem } = connectors.get();
    if (connector === null) {
      done({ ok: false, durationMs: 0, message: `check error: tls ${formatHostPort(target)}: cannot read CA file ${probe.ca}: ${problem.problem}`, kind: "local-error", code: problem.code });
      released();
      return () => {};
    }
    return new TlsProbeRun(target, probe, done, released, connector).begin();
  };
  return checkerOf(run, (t, when, why) => `${why} ${when} tls ${formatHostPort(t)}`);
}
