/**
 * The `http` / `https` checker: one request, Up when the status is in `expect`.
 *
 * Fixes over the original: redirects are never followed but a 3xx is compared with `expect` like any status;
 * the query string is sent verbatim; IPv6 hosts are bracketed; the response body is always cancelled (the
 * original leaked it); https exists, with optional no-verify; the Host header can be overridden.
 */
import { type CheckResult, type Checker, abortMessage, describeError, elapsedSince, formatHostPort } from "../checker.ts";
import { formatExpect, matchesExpect } from "../expect.ts";
import type { HttpProbe, ProbeTarget } from "../options.ts";

/** USER_AGENT is sent with every HTTP probe so backends can tell health checks from traffic. */
export const USER_AGENT = "gorb-pulse";

/** httpChecker builds a checker for one HttpProbe; it keeps no state between checks. */
export function httpChecker(probe: HttpProbe): Checker {
  const headers: Record<string, string> = { "user-agent": USER_AGENT };
  if (probe.hostHeader !== null) headers.host = probe.hostHeader;
  const tls = probe.scheme === "https" && !probe.tlsVerify ? { rejectUnauthorized: false } : undefined;
  const expected = formatExpect(probe.expect);

  return {
    async check(target: ProbeTarget, signal: AbortSignal): Promise<CheckResult> {
      const start = performance.now();
      const url = `${probe.scheme}://${urlHost(target)}${probe.path}`;
      const what = `${probe.method} ${url}`;
      if (signal.aborted) return { ok: false, durationMs: 0, message: `${abortMessage(signal)} before ${what}` };
      let response: Response;
      try {
        response = await fetch(url, { method: probe.method, headers, redirect: "manual", signal, ...(tls ? { tls } : {}) });
      } catch (err) {
        const why = signal.aborted ? abortMessage(signal) : describeError(err);
        return { ok: false, durationMs: elapsedSince(start), message: `${what} failed: ${why}` };
      }
      // NB: cancel, don't read: the status is all we need, and an unread body would pin the connection.
      await response.body?.cancel().catch(() => {});
      const ok = matchesExpect(probe.expect, response.status);
      let message = `${what}: ${response.status}`;
      if (!ok) message += `, expected ${expected}`;
      const location = response.headers.get("location");
      if (response.status >= 300 && response.status < 400 && location !== null) message += ` (redirect to ${location} not followed)`;
      return { ok, durationMs: elapsedSince(start), message };
    },
  };
}

function urlHost(target: ProbeTarget): string {
  // A zone id in an IPv6 literal must be percent-encoded inside a URL (RFC 6874).
  return formatHostPort({ host: target.host.replace("%", "%25"), port: target.port });
}
