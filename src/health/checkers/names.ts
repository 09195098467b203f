/**
 * The address of a probe's host name (`args.host: "db.example.org"`), looked up by gorb itself (getaddrinfo, through
 * node:dns, as Bun's own connect did) instead of inside the connect, so that a probe knows when it is waiting on
 * this host's resolver rather than on the backend.
 *
 * - A name's address is kept NAME_TTL_MS (Bun's connect cache kept it as long). After that it is still used, and a
 *   new lookup runs meanwhile (stale while revalidating): a resolver that became slow or unreachable does not stop
 *   the checks of a name that resolved once, and its outage is not the backends' failure.
 * - A name the resolver says does not exist (ENOTFOUND) is forgotten, so the next check fails on it.
 * - One lookup at a time per name, shared by every probe waiting on it.
 */
import dns from "node:dns";
import { errorCode } from "../checker.ts";

/** How long a looked-up address is used before it is looked up again (still used while that runs). */
const NAME_TTL_MS = 30_000;

/** Called with the address, or with the lookup's error. */
export type NameWaiter = (error: unknown, address: string) => void;

interface Known {
  readonly address: string;
  readonly until: number;
}

const known = new Map<string, Known>();
const pending = new Map<string, NameWaiter[]>();

/** lookupName gives `host`'s address to `waiter`: at once when known (see the module comment), else once looked up. */
export function lookupName(host: string, waiter: NameWaiter): void {
  const k = known.get(host);
  if (k !== undefined) {
    if (k.until <= performance.now() && !pending.has(host)) start(host, []);
    waiter(null, k.address);
    return;
  }
  const waiting = pending.get(host);
  if (waiting !== undefined) waiting.push(waiter);
  else start(host, [waiter]);
}

function start(host: string, waiters: NameWaiter[]): void {
  pending.set(host, waiters);
  dns.lookup(host, (error, address) => {
    const all = pending.get(host) ?? [];
    pending.delete(host);
    if (error === null) {
      known.set(host, { address, until: performance.now() + NAME_TTL_MS });
    } else if (errorCode(error) === "ENOTFOUND") {
      known.delete(host);
    }
    for (const w of all) w(error, address);
  });
}

/** @internal Tests: make every known address due for a new lookup (as NAME_TTL_MS later). */
export function ageNames(): void {
  for (const [host, k] of known) known.set(host, { address: k.address, until: 0 });
}
