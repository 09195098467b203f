/**
 * The address of a probe's host name (`args.host: "db.example.org"`), looked up by gorb itself (getaddrinfo, through
 * node:dns, as Bun's own connect did) instead of inside the connect, so that a probe knows when it is waiting on
 * this host's resolver rather than on the backend.
 *
 * - A name's address is kept NAME_TTL_MS (Bun's connect cache kept it as long). After that it is still used, and a
 *   new lookup runs meanwhile (stale while revalidating): a resolver that became slow or unreachable does not stop
 *   the checks of a name that resolved once, and its outage is not the backends' failure.
 * - A name the resolver says does not exist (ENOTFOUND) is forgotten, so the next check fails on it. Any other failure
 *   is the resolver's (EAI_AGAIN: unreachable, timed out, SERVFAIL, whatever code Bun gives it: ESERVFAIL, ETIMEOUT,
 *   ...), and a failure while this process is out of file descriptors is EMFILE/ENFILE whatever it said: glibc then
 *   cannot open /etc/hosts nor a socket to the resolver, and Bun reports the name as not found (ENOTFOUND) or
 *   ESERVFAIL, which failed the backend (and forgot its address) for gorb's own shortage.
 * - One lookup at a time per name, shared by every probe waiting on it.
 * - A name no check asked for in NAME_UNUSED_MS is forgotten (swept as names are looked up): its backends were
 *   removed or now go by other names, and a daemon whose backends' names churn would otherwise keep every name it
 *   ever checked. A check rarer than that looks its name up anew each time, as a first check does.
 */
import dns from "node:dns";
import { errorCode } from "../../errno.ts";
import { LOCAL_ERROR_CODES, localErrorOf } from "../checker.ts";

/** How long a looked-up address is used before it is looked up again (still used while that runs). */
const NAME_TTL_MS = 30_000;

/** How long a name no check asks for is kept. */
const NAME_UNUSED_MS = 10 * 60_000;

/** Called with the address, or with the lookup's error. */
export type NameWaiter = (error: unknown, address: string) => void;

interface Known {
  readonly address: string;
  readonly until: number;
  /** When a check last asked for it (performance.now()). */
  used: number;
}

const known = new Map<string, Known>();
const pending = new Map<string, NameWaiter[]>();
/** When `known` is next swept for unused names: at most once per NAME_TTL_MS, so a lookup stays O(1) on average. */
let nextSweep = 0;

/** lookupName gives `host`'s address to `waiter`: at once when known (see the module comment), else once looked up. */
export function lookupName(host: string, waiter: NameWaiter): void {
  const now = performance.now();
  if (now >= nextSweep) sweep(now);
  const k = known.get(host);
  if (k !== undefined) {
    k.used = now;
    if (k.until <= now && !pending.has(host)) start(host, []);
    waiter(null, k.address);
    return;
  }
  const waiting = pending.get(host);
  if (waiting !== undefined) waiting.push(waiter);
  else start(host, [waiter]);
}

/** The codes of a lookup that found the name has no address: the backend's failure (every other one is the resolver's). */
const NO_ADDRESS: ReadonlySet<string> = new Set(["ENOTFOUND", "ENODATA"]);

/** What a failed lookup means for a check (see the module comment): an error whose code says whose failure it is. */
function lookupError(error: Error): Error {
  const code = errorCode(error);
  const local = LOCAL_ERROR_CODES.has(code) ? code : localErrorOf("");
  const kept = local === "" ? (NO_ADDRESS.has(code) ? code : "EAI_AGAIN") : local;
  return kept === code ? error : Object.assign(new Error(`lookup failed (${code || error.name})`), { code: kept });
}

function start(host: string, waiters: NameWaiter[]): void {
  pending.set(host, waiters);
  dns.lookup(host, (failure, address) => {
    const error = failure === null ? null : lookupError(failure);
    const all = pending.get(host) ?? [];
    pending.delete(host);
    if (error === null) {
      const now = performance.now();
      // A revalidation keeps when the name was last asked for; a first lookup was asked for now.
      known.set(host, { address, until: now + NAME_TTL_MS, used: known.get(host)?.used ?? now });
    } else if (errorCode(error) === "ENOTFOUND") {
      known.delete(host);
    }
    for (const w of all) w(error, address);
  });
}

/** Forgets the names no check asked for in NAME_UNUSED_MS. */
function sweep(now: number): void {
  nextSweep = now + NAME_TTL_MS;
  for (const [host, k] of known) if (now - k.used >= NAME_UNUSED_MS) known.delete(host);
}

/**
 * @internal Tests: make every known address `ms` older (default NAME_TTL_MS: due for a new lookup), as `ms` later;
 * the sweep for unused names is then due too.
 */
export function ageNames(ms: number = NAME_TTL_MS): void {
  for (const [host, k] of known) known.set(host, { address: k.address, until: k.until - ms, used: k.used - ms });
  nextSweep -= ms;
}
