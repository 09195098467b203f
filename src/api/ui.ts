/**
 * GET /ui: the web UI (src/ui/), embedded in the executable (./ui-assets.ts), served by the API itself so that it
 * is same-origin with it: its writes pass the guard's origin rule (./guard.ts) when the API is reached by an IP
 * address or localhost (a DNS name needs --allow-origin, as for any page). The three files hold no data, so they
 * are served without the bearer token; every call the page makes carries it (and passes the same guard, body
 * limits and validation as any client). A strict Content-Security-Policy allows only these files and calls to
 * this origin: no inline script, nothing from elsewhere. `gorb serve --no-ui` leaves these routes out.
 */
import { Elysia } from "elysia";
import { qualities } from "./accept.ts";

/** The UI's paths: the token is not needed to GET them (see the module comment). */
export const UI_PATHS = ["/ui", "/ui/", "/ui/app.js", "/ui/app.css"] as const;

/** The media type of each file (the Content-Type it is served with, without its charset). */
const MEDIA_TYPES: Readonly<Record<(typeof UI_PATHS)[number], string>> = {
  "/ui": "text/html",
  "/ui/": "text/html",
  "/ui/app.js": "text/javascript",
  "/ui/app.css": "text/css",
};

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gorb</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/ui/app.css">
<script type="module" src="/ui/app.js"></script>
</head>
<body>
<div id="app"><noscript>The gorb web UI needs JavaScript; the REST API and the gorb CLI work without it.</noscript></div>
</body>
</html>
`;

interface Asset {
  readonly type: string;
  readonly body: Uint8Array<ArrayBuffer>;
  readonly gzip: Uint8Array<ArrayBuffer>;
  /** The ETag of the plain file; the gzipped one's is another (other bytes, another representation). */
  readonly etag: string;
  readonly gzipEtag: string;
}

function asset(type: string, text: string): Asset {
  const body = new TextEncoder().encode(text);
  const hash = Bun.hash(body).toString(36);
  return { type, body, gzip: Bun.gzipSync(body), etag: `"${hash}"`, gzipEtag: `"${hash}-gzip"` };
}

/** Whether an If-None-Match header names `etag` (weak comparison, lists and "*" included; RFC 9110, 13.1.2). */
function matches(header: string | null, etag: string): boolean {
  if (header === null) return false;
  return header.split(",").some((tag) => {
    const trimmed = tag.trim();
    return trimmed === "*" || trimmed.replace(/^W\//, "") === etag;
  });
}

let assets: Promise<Record<string, Asset>> | null = null;

/** The UI's files, built (from source) or taken from the executable on first use. */
function loadAssets(): Promise<Record<string, Asset>> {
  assets ??= import("./ui-assets.ts").then(({ UI_BUNDLE }) => {
    const page = asset(`${MEDIA_TYPES["/ui"]}; charset=utf-8`, PAGE);
    return {
      "/ui": page,
      "/ui/": page,
      "/ui/app.js": asset(`${MEDIA_TYPES["/ui/app.js"]}; charset=utf-8`, UI_BUNDLE.js),
      "/ui/app.css": asset(`${MEDIA_TYPES["/ui/app.css"]}; charset=utf-8`, UI_BUNDLE.css),
    };
  });
  return assets;
}

/**
 * Whether an Accept-Encoding header takes gzip: "gzip" (or "x-gzip", or "*" when gzip is not named) with a
 * quality above 0. "gzip;q=0" says the client cannot read it (RFC 9110, 12.5.3).
 */
function acceptsGzip(header: string | null): boolean {
  let named: boolean | null = null;
  let any = false;
  for (const { name, q } of qualities(header)) {
    if (name === "gzip" || name === "x-gzip") named = (named ?? false) || q > 0;
    else if (name === "*") any = q > 0;
  }
  return named ?? any;
}

async function serve(path: string, request: Request): Promise<Response> {
  const file = (await loadAssets())[path];
  if (file === undefined) return new Response("not found", { status: 404 });
  const headers: Record<string, string> = {
    "Content-Type": file.type,
    "Cache-Control": "no-cache",
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    Vary: "Accept-Encoding",
  };
  // One ETag for both encodings let a cache revalidate its gzipped copy for a client that cannot read gzip (304).
  const gzip = acceptsGzip(request.headers.get("accept-encoding"));
  headers.ETag = gzip ? file.gzipEtag : file.etag;
  if (matches(request.headers.get("if-none-match"), headers.ETag)) return new Response(null, { status: 304, headers });
  if (gzip) headers["Content-Encoding"] = "gzip";
  return new Response(gzip ? file.gzip : file.body, { headers });
}

/** The UI's routes; with `enabled` false, none (gorb serve --no-ui). */
export function uiRoutes(enabled: boolean) {
  const app = new Elysia({ name: "gorb-ui" });
  if (!enabled) return app;
  for (const path of UI_PATHS) {
    const type = MEDIA_TYPES[path];
    app.get(path, ({ request }) => serve(path, request), {
      detail: {
        summary: `The web UI's ${path.endsWith(".js") ? "script" : path.endsWith(".css") ? "style" : "page"} (no token needed; gzipped when asked, with an ETag)`,
        responses: {
          200: { description: "the file", content: { [type]: { schema: { type: "string" } } } },
          304: { description: "not modified (If-None-Match names its ETag)" },
        },
      },
    });
  }
  return app;
}
