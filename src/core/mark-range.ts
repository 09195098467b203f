/**
 * The firewall-mark range of checks through the VIP (--probe-marks), without imports: the daemon's flag parser
 * (loaded by every CLI command) reads it.
 */

/** A --probe-marks text that is not a range; `problem` says why. */
export class MarkRangeError extends Error {
  override readonly name = "MarkRangeError";
  constructor(readonly problem: string) {
    super(problem);
  }
}

/** A range of firewall marks, inclusive. */
export interface MarkRange {
  readonly first: number;
  readonly last: number;
}

/**
 * The default range: 256 marks, 0x3000-0x30ff. Chosen clear of the marks other software on a load balancer uses:
 * kube-proxy's 0x4000/0x8000 bits, Calico's 0xffff0000 mask, Cilium's 0x0f00 nibble and upper identity bits,
 * Tailscale's 0x40000/0x80000, WireGuard's 51820 (0xca6c), Istio's 1337, and Docker's small per-service marks.
 */
export const DEFAULT_PROBE_MARKS: MarkRange = Object.freeze({ first: 0x3000, last: 0x30ff });

const MARK = /^(0x[0-9a-f]+|\d+)$/i;

/** "0x3000-0x30ff" or "12288-12543" (decimal or hex, inclusive). Throws MarkRangeError. */
export function parseMarkRange(text: string): MarkRange {
  const [a, b, extra] = text.trim().split("-");
  if (a === undefined || b === undefined || extra !== undefined || !MARK.test(a.trim()) || !MARK.test(b.trim())) {
    throw new MarkRangeError(`must be FIRST-LAST (e.g. 0x3000-0x30ff), got ${JSON.stringify(text)}`);
  }
  const first = Number(a.trim());
  const last = Number(b.trim());
  if (first < 1 || last > 0xffffffff || first > last) {
    throw new MarkRangeError(`must be 1 <= FIRST <= LAST <= 0xffffffff, got ${JSON.stringify(text)}`);
  }
  return { first, last };
}

export function formatMarkRange(range: MarkRange): string {
  return `0x${range.first.toString(16)}-0x${range.last.toString(16)}`;
}

