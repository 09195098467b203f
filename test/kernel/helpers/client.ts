/**
 * An HTTP client for kernel tests: sends requests through a virtual service and counts which backend answered
 * (backends created by netns.ts answer with their name). Every request uses a new TCP connection
 * (`Connection: close`, no keep-alive), so each one is a separate IPVS scheduling decision.
 */

/** Outcome of {@link countResponses}. */
export interface ResponseCounts {
  /** Answers per backend name (the trimmed response body). */
  readonly counts: Record<string, number>;
  /** One message per request that failed (network error, timeout or non-200 status), in order. */
  readonly failures: readonly string[];
  /** Number of requests sent. */
  readonly sent: number;
}

/** Options of {@link countResponses}. */
export interface CountOptions {
  /** Host (virtual IP) to connect to; IPv6 addresses without brackets. */
  readonly host: string;
  readonly port: number;
  readonly requests: number;
  /** Requests in flight at once; default 1 (sequential, so the schedule is deterministic). */
  readonly concurrency?: number;
  /** Per-request timeout; default 10 s. */
  readonly timeoutMs?: number;
  /** Request path; default `/`. */
  readonly path?: string;
}

/** Sends `requests` HTTP GETs to host:port and returns how many each backend answered. */
export async function countResponses(opts: CountOptions): Promise<ResponseCounts> {
  const concurrency = opts.concurrency ?? 1;
  if (!Number.isInteger(opts.requests) || opts.requests < 0) throw new Error(`requests must be a non-negative integer, got ${opts.requests}`);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`concurrency must be a positive integer, got ${concurrency}`);
  const host = opts.host.includes(":") ? `[${opts.host}]` : opts.host;
  const url = `http://${host}:${opts.port}${opts.path ?? "/"}`;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const counts: Record<string, number> = {};
  const failures: string[] = [];
  let next = 0;

  const one = async (n: number): Promise<void> => {
    try {
      const res = await fetch(url, {
        headers: { Connection: "close" },
        keepalive: false,
        signal: AbortSignal.timeout(timeoutMs),
      });
      const body = (await res.text()).trim();
      if (res.status !== 200) {
        failures.push(`request ${n}: HTTP ${res.status} ${body.slice(0, 80)}`);
        return;
      }
      counts[body] = (counts[body] ?? 0) + 1;
    } catch (err) {
      failures.push(`request ${n}: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
    }
  };
  const worker = async (): Promise<void> => {
    while (next < opts.requests) {
      const n = next++;
      await one(n);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(opts.requests, 1)) }, worker));
  return { counts, failures, sent: opts.requests };
}
