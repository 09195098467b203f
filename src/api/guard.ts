/**
 * The API's front door: every request passes these checks, in this order, before a route reads anything.
 *
 *  1. Peer (--allow): with an allow list, only peers inside one of its networks, or on loopback, get in; anyone
 *     else gets 403 FORBIDDEN. The peer is the TCP peer address (Bun's server.requestIP), never a header.
 *  2. Load (--max-connections): a request that arrives while that many are already in flight gets 503
 *     UNAVAILABLE with "Connection: close", so its connection is closed at once instead of being kept alive.
 *  Then a request without a Host header (HTTP/1.0, or an empty one) gets 400 VALIDATION naming `host`: it has no
 *  URL to check (Bun gives it a relative one).
 *  3. Browser writes: a PUT, PATCH, DELETE or POST that carries an `Origin` header other than the API's own
 *     origin or an --allow-origin one, or that says `Sec-Fetch-Site: cross-site`, gets 403 FORBIDDEN. Browsers
 *     add these headers themselves and pages cannot forge them; curl, Go clients (sky-uk/feed) and gorb's CLI send
 *     neither, so they are unaffected, and the Content-Type stays free (GORB clients send none, curl -d sends a
 *     form type). "Own origin" means the Origin equals the request's own scheme://host:port AND that host is an IP
 *     literal or "localhost": a page on a rebound DNS name (DNS rebinding) is same-origin with itself, so a name
 *     must be listed with --allow-origin to be trusted.
 *  4. Browser reads on a name: a request a page sent (`Sec-Fetch-Site` other than "none", which marks what the user
 *     typed or clicked) to a host that is a DNS name, not an IP literal or "localhost", gets 403 FORBIDDEN unless
 *     that origin is an --allow-origin one. A page whose name an attacker rebound to gorb's address (DNS rebinding)
 *     is same-origin with itself and sends no Origin on a GET, so without this it read every service, backend
 *     and event of a daemon without a token. The web UI's static files (`openPaths`) are served, so the UI can
 *     show the refusal. Clients that are not browsers send no Sec-Fetch-Site and reach gorb by any name.
 *     Browsers send Sec-Fetch-Site only to potentially trustworthy URLs (HTTPS, localhost, loopback addresses),
 *     so over plain HTTP a rebound page's read carries neither header. Hence, when gorb listens on loopback only
 *     (`localOnly`, the default), any request to a host that is a DNS name other than "localhost" gets 403 unless
 *     that origin is an --allow-origin one: only this host's clients reach it, and they have 127.0.0.1, [::1] and
 *     localhost. On other listen addresses a rebound page can read (not write) without a token.
 *  5. Token: with a token configured, "Authorization: Bearer <token>" (./auth.ts), else 401. A GET of one of
 *     `openPaths` (the web UI's static files, which hold no data: ./ui.ts) needs no token.
 *  Every refusal (400, 401, 403, 503) carries "Connection: close": a refused client cannot keep a connection open
 *  by sending refused requests, and so cannot hold the slots of --max-connections.
 */
import { GorbError, ValidationError } from "../core/errors.ts";
import { checkBearer } from "./auth.ts";
import { type Cidr, cidrContains, formatAddress, isLoopback, parseAddress } from "../config/cidr.ts";
import { errorBody, gorbErrorBody } from "./errors.ts";
import { normalizeOrigin } from "../config/origin.ts";

/** ForbiddenError: the peer or the browser origin may not use the API (403). */
export class ForbiddenError extends GorbError {
  override readonly name = "ForbiddenError";

  constructor(message: string) {
    super(403, "FORBIDDEN", message);
  }
}

/** What the guard needs of Bun's server (Elysia's `server` in a hook; null in app.handle() tests). */
export interface GuardServer {
  requestIP(request: Request): { readonly address: string } | null;
  readonly pendingRequests: number;
}

/** Options of createGuard. */
export interface GuardOptions {
  /** Networks whose peers may use the API (loopback always may); undefined or empty lets every peer in. */
  readonly allow?: readonly Cidr[] | undefined;
  /** Browser origins ("https://ops.example.com") trusted to write. */
  readonly allowOrigins?: readonly string[] | undefined;
  /** Bearer token every request must carry. */
  readonly token?: string | undefined;
  /** Most requests in flight at once; the next one gets 503 and its connection is closed. */
  readonly maxRequests?: number | undefined;
  /** Paths a GET or HEAD may fetch without the token (the web UI's files). */
  readonly openPaths?: readonly string[] | undefined;
  /** True when the daemon listens on loopback only: a host that is a DNS name is refused (step 4). */
  readonly localOnly?: boolean | undefined;
}

const WRITES = new Set(["PUT", "PATCH", "DELETE", "POST"]);
const IP_HOST = /^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-f:.]+\])$/i;

/** The request's own origin when it is one a DNS-rebinding page cannot share (an IP literal or localhost). */
function ownOrigin(request: Request): string | null {
  const url = new URL(request.url);
  return isLocalName(url) ? url.origin : null;
}

/** True when `url`'s host is one a DNS-rebinding page cannot use: an IP literal or "localhost". */
function isLocalName(url: URL): boolean {
  return IP_HOST.test(url.hostname) || url.hostname === "localhost";
}

/** Why a browser write is refused, or null when it may go on. */
function browserWriteRefusal(request: Request, trusted: ReadonlySet<string>): string | null {
  const origin = request.headers.get("origin");
  if (origin !== null) {
    const normalized = normalizeOrigin(origin);
    if (normalized !== null && (trusted.has(normalized) || normalized === ownOrigin(request))) return null;
    return `origin: ${JSON.stringify(origin.slice(0, 200))} may not change gorb (a browser write from another origin; trust an origin with --allow-origin)`;
  }
  const site = request.headers.get("sec-fetch-site");
  if (site !== null && site.toLowerCase() === "cross-site") {
    return "sec-fetch-site: a cross-site browser write is refused";
  }
  return null;
}

/** Why a request a page sent to a DNS name, or any request to one on a loopback-only daemon, is refused (step 4). */
function onNameRefusal(request: Request, trusted: ReadonlySet<string>, localOnly: boolean): string | null {
  const site = request.headers.get("sec-fetch-site");
  const page = site !== null && site.toLowerCase() !== "none";
  if (!page && !localOnly) return null;
  const url = new URL(request.url);
  if (isLocalName(url) || trusted.has(url.origin)) return null;
  if (page) {
    return (
      `host: ${JSON.stringify(url.host.slice(0, 200))} is a name, and a page could have rebound it to gorb (DNS rebinding): ` +
      `a browser is answered on an IP address, on localhost, or on an origin given with --allow-origin`
    );
  }
  return (
    `host: ${JSON.stringify(url.host.slice(0, 200))} is a name, and gorb listens on loopback only, where a page could have ` +
    `rebound a name to it (DNS rebinding): reach it as 127.0.0.1, [::1] or localhost, or trust the origin with --allow-origin`
  );
}

/**
 * createGuard returns the request hook: null when the request may go on, else the error Response to send.
 * `server` is null when the app is called in-process (app.handle): then the peer is unknown, which an allow
 * list refuses, and there is no load to count.
 */
export function createGuard(options: GuardOptions): (request: Request, server: GuardServer | null) => Response | null {
  const allow = options.allow ?? [];
  const trusted = new Set(options.allowOrigins ?? []);
  const { token, maxRequests } = options;
  const openPaths = new Set(options.openPaths ?? []);
  const localOnly = options.localOnly === true;
  const open = (request: Request): boolean =>
    openPaths.size > 0 && (request.method === "GET" || request.method === "HEAD") && openPaths.has(new URL(request.url).pathname);
  return (request, server) => {
    try {
      if (allow.length > 0) {
        const peer = server?.requestIP(request)?.address ?? null;
        const bytes = peer === null ? null : parseAddress(peer);
        if (bytes === null || !(isLoopback(bytes) || allow.some((network) => cidrContains(network, bytes)))) {
          // A dual-stack listener (`-l :4672`) sees an IPv4 client as ::ffff:192.0.2.9: name it as the --allow list does.
          const shown = peer === null ? "an unknown address" : bytes?.length === 4 ? formatAddress(bytes) : peer;
          throw new ForbiddenError(`peer: ${shown} is not in the allowed networks (--allow)`);
        }
      }
      if (maxRequests !== undefined && server !== null && server.pendingRequests > maxRequests) {
        return errorBody(503, "UNAVAILABLE", `connections: more than ${maxRequests} requests in flight; try again`, {
          Connection: "close",
          "Retry-After": "1",
        });
      }
      // Without a Host (HTTP/1.0, or an empty one) Bun's request URL is relative ("/service"): the checks below
      // cannot tell the request's own origin, and every new URL() of it throws.
      if (!URL.canParse(request.url)) {
        throw new ValidationError("host", "the request has no Host header, or one that is not a host; give the address gorb is reached at");
      }
      if (WRITES.has(request.method)) {
        const refusal = browserWriteRefusal(request, trusted);
        if (refusal !== null) throw new ForbiddenError(refusal);
      }
      // The UI's files need neither check below (one URL parse per request, not two).
      if (!open(request)) {
        const refusal = onNameRefusal(request, trusted, localOnly);
        if (refusal !== null) throw new ForbiddenError(refusal);
        if (token !== undefined) checkBearer(request.headers.get("authorization"), token);
      }
      return null;
    } catch (error) {
      if (!(error instanceof GorbError)) throw error;
      // A refused client does not keep its connection: answering it keep-alive let one without the token, or from
      // outside --allow, hold a connection for ever with a refused request every few seconds, and with
      // --max-connections of them the shedder closed every newer connection, the operator's included.
      const refused = gorbErrorBody(error);
      refused.headers.set("Connection", "close");
      return refused;
    }
  };
}
