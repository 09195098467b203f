/**
 * createApp builds gorb's REST API as an Elysia instance (it never listens; the daemon does). Routes:
 *   GET    /service                    ids; ?detail=true for every service with its backends
 *   PUT    /service/:service           create          PATCH  update in place     DELETE  remove
 *   GET    /service/:service           options, health, backends, stats
 *   PUT    /service/:service/:backend  create          PATCH  update in place     DELETE  remove
 *   GET    /service/:service/:backend  options, metrics, effective weight, stats
 *   POST   /apply                      make the file-owned services match a declarative set {"services": {...}};
 *                                      ?dry_run=true only plans; answers the changes (ApplyReport)
 *   POST   /reconcile                  repair drift of the kernel table now; answers the repairs
 *   GET    /metrics                    Prometheus text
 *   GET    /openapi.json               OpenAPI 3.0
 * PUT/PATCH/DELETE answer 200 with an empty body; GETs answer tab-indented JSON; errors are
 * {"error", "code"} (./errors.ts). Bodies are JSON whatever the Content-Type (GORB clients send none).
 */
import { Elysia, t } from "elysia";
import { readServices } from "../config/services.ts";
import { ValidationError } from "../core/errors.ts";
import type { Gorb } from "../core/gorb.ts";
import type { Logger } from "../core/logger.ts";
import { checkBearer } from "./auth.ts";
import { DEFAULT_BODY_LIMIT_BYTES, readJsonBody } from "./body.ts";
import { errorResponse } from "./errors.ts";
import { emptyOk, jsonResponse } from "./json.ts";
import { renderMetrics } from "./metrics.ts";
import { openApiDocument } from "./openapi.ts";

/** The part of Gorb the API calls. */
export type GorbApi = Pick<
  Gorb,
  | "createService"
  | "updateService"
  | "deleteService"
  | "getService"
  | "listServices"
  | "listServicesDetail"
  | "createBackend"
  | "updateBackend"
  | "deleteBackend"
  | "getBackend"
  | "apply"
  | "reconcile"
  | "reconcileCounters"
>;

/** What createApp needs. */
export interface AppOptions {
  readonly gorb: GorbApi;
  readonly logger: Logger;
  /** When set, every route needs "Authorization: Bearer <token>". */
  readonly token?: string;
  /** Largest request body accepted, in bytes. @default 65536 */
  readonly bodyLimitBytes?: number;
  /** Shown in /openapi.json. @default "dev" */
  readonly version?: string;
  /** Largest POST /apply body, in bytes (a declarative set holds many services). @default 8 MiB or bodyLimitBytes */
  readonly applyLimitBytes?: number;
}

/** Default largest POST /apply body. */
export const DEFAULT_APPLY_LIMIT_BYTES = 8 * 1024 * 1024;

/** The declared services of a POST /apply body: {"services": {id: {...fields, backends: {id: {...}}}}}. */
function declaredSet(body: unknown) {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new ValidationError("body", 'must be a JSON object {"services": {...}}');
  }
  for (const key of Object.keys(body)) {
    if (key !== "services") throw new ValidationError(key, 'unknown field; the body is {"services": {...}}');
  }
  return readServices((body as { services?: unknown }).services);
}

/** A path parameter; Elysia leaves it undefined when its percent-encoding is not valid UTF-8. */
function param(value: string | undefined, field: "service" | "backend"): string {
  if (typeof value !== "string") throw new ValidationError(field, "id is not valid percent-encoded UTF-8");
  return value;
}

/** The REST API; call `.handle(request)` in tests, `.listen()` in the daemon. */
export function createApp(options: AppOptions) {
  const { gorb, logger, token } = options;
  const limit = options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES;
  const version = options.version ?? "dev";
  const body = (request: Request) => readJsonBody(request, limit);
  const applyLimit = Math.max(options.applyLimitBytes ?? DEFAULT_APPLY_LIMIT_BYTES, limit);

  return new Elysia()
    .onRequest(({ request }) => {
      if (token !== undefined) checkBearer(request.headers.get("authorization"), token);
    })
    .onError(({ code, error, request }) => errorResponse(code, error, request, logger))
    .get(
      "/service",
      async ({ query }) => jsonResponse(query.detail === true ? await gorb.listServicesDetail() : gorb.listServices()),
      { query: t.Object({ detail: t.Optional(t.Boolean({ error: "must be true or false" })) }) },
    )
    .put(
      "/service/:service",
      async ({ params, request }) => {
        await gorb.createService(param(params.service, "service"), await body(request));
        return emptyOk();
      },
      { parse: "none" },
    )
    .patch(
      "/service/:service",
      async ({ params, request }) => {
        await gorb.updateService(param(params.service, "service"), await body(request));
        return emptyOk();
      },
      { parse: "none" },
    )
    .delete(
      "/service/:service",
      async ({ params }) => {
        await gorb.deleteService(param(params.service, "service"));
        return emptyOk();
      },
      { parse: "none" },
    )
    .get("/service/:service", async ({ params }) => jsonResponse(await gorb.getService(param(params.service, "service"))))
    .put(
      "/service/:service/:backend",
      async ({ params, request }) => {
        await gorb.createBackend(param(params.service, "service"), param(params.backend, "backend"), await body(request));
        return emptyOk();
      },
      { parse: "none" },
    )
    .patch(
      "/service/:service/:backend",
      async ({ params, request }) => {
        await gorb.updateBackend(param(params.service, "service"), param(params.backend, "backend"), await body(request));
        return emptyOk();
      },
      { parse: "none" },
    )
    .delete(
      "/service/:service/:backend",
      async ({ params }) => {
        await gorb.deleteBackend(param(params.service, "service"), param(params.backend, "backend"));
        return emptyOk();
      },
      { parse: "none" },
    )
    .get("/service/:service/:backend", async ({ params }) =>
      jsonResponse(await gorb.getBackend(param(params.service, "service"), param(params.backend, "backend"))),
    )
    .post(
      "/apply",
      async ({ query, request, server }) => {
        // A large set can take longer than the server's idle timeout (Elysia: 30 s): keep this connection open
        // until the answer, so the client gets the real outcome (the CLI watches the daemon is alive meanwhile).
        server?.timeout(request, 0);
        const declared = declaredSet(await readJsonBody(request, applyLimit));
        return jsonResponse(await gorb.apply(declared, { dryRun: query.dry_run === true }));
      },
      { parse: "none", query: t.Object({ dry_run: t.Optional(t.Boolean({ error: "must be true or false" })) }) },
    )
    .post("/reconcile", async () => jsonResponse(await gorb.reconcile()), { parse: "none" })
    .get(
      "/metrics",
      async () =>
        new Response(renderMetrics(await gorb.listServicesDetail(), gorb.reconcileCounters()), {
          headers: { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" },
        }),
    )
    .get("/openapi.json", () => jsonResponse(openApiDocument(version)));
}
