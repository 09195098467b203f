/**
 * GET /openapi.json: an OpenAPI 3.0 document of the REST API, written here by hand for the paths and taken
 * from the TypeBox schemas in ./models.ts for every body (TypeBox schemas are JSON Schema).
 */
import { BackendBody, BackendInfo, ErrorBody, ServiceBody, ServiceDetail, ServiceInfo } from "./models.ts";

function plain(schema: unknown): unknown {
  // JSON round trip drops TypeBox's symbol-keyed metadata.
  return JSON.parse(JSON.stringify(schema)) as unknown;
}

const json = (ref: string) => ({ "application/json": { schema: { $ref: `#/components/schemas/${ref}` } } });
const errors = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((s) => [String(s), { description: ERROR_TEXT[s] ?? "error", content: json("Error") }]));
const ERROR_TEXT: Record<number, string> = {
  400: "invalid request: the message names the field and the problem",
  401: "missing or wrong bearer token",
  404: "no such service or backend",
  409: "already exists (in gorb or in the kernel)",
  413: "body too large",
  500: "the kernel (or the VIP interface) refused the change, or it could not be saved to disk (code STATE)",
};
const ok = { "200": { description: "done (empty body)" } };
const serviceParam = { name: "service", in: "path", required: true, schema: { type: "string" } };
const backendParam = { name: "backend", in: "path", required: true, schema: { type: "string" } };

/** The OpenAPI document; `version` is gorb's version. */
export function openApiDocument(version: string): unknown {
  return {
    openapi: "3.0.3",
    info: {
      title: "gorb",
      version,
      description:
        "IPVS control plane, compatible with kobolog/gorb's REST API. Bodies are JSON whatever the Content-Type; " +
        "keys are matched case-insensitively; PUT/PATCH/DELETE answer 200 with an empty body.",
    },
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
      schemas: {
        ServiceBody: plain(ServiceBody),
        BackendBody: plain(BackendBody),
        ServiceInfo: plain(ServiceInfo),
        BackendInfo: plain(BackendInfo),
        ServiceDetail: plain(ServiceDetail),
        Error: plain(ErrorBody),
      },
    },
    security: [{ bearer: [] }],
    paths: {
      "/service": {
        get: {
          summary: "List service ids, or every service in full with ?detail=true",
          parameters: [{ name: "detail", in: "query", required: false, schema: { type: "boolean" } }],
          responses: {
            "200": {
              description: "ids (sorted), or ServiceDetail[] with detail=true",
              content: {
                "application/json": {
                  schema: {
                    oneOf: [
                      { type: "array", items: { type: "string" } },
                      { type: "array", items: { $ref: "#/components/schemas/ServiceDetail" } },
                    ],
                  },
                },
              },
            },
            ...errors(400, 401),
          },
        },
      },
      "/service/{service}": {
        parameters: [serviceParam],
        put: {
          summary: "Create a virtual service",
          requestBody: { required: true, content: json("ServiceBody") },
          responses: { ...ok, ...errors(400, 401, 409, 413, 500) },
        },
        patch: {
          summary: "Change a service in place (not its host, port, protocol, fwmark or family)",
          requestBody: { required: true, content: json("ServiceBody") },
          responses: { ...ok, ...errors(400, 401, 404, 413, 500) },
        },
        delete: { summary: "Delete a service and its backends", responses: { ...ok, ...errors(400, 401, 404, 500) } },
        get: {
          summary: "A service: options, health, backend ids, IPVS counters",
          responses: { "200": { description: "the service", content: json("ServiceInfo") }, ...errors(400, 401, 404) },
        },
      },
      "/service/{service}/{backend}": {
        parameters: [serviceParam, backendParam],
        put: {
          summary: "Add a backend",
          requestBody: { required: true, content: json("BackendBody") },
          responses: { ...ok, ...errors(400, 401, 404, 409, 413, 500) },
        },
        patch: {
          summary: "Change a backend in place (weight, method, thresholds, tunnel, pulse); omitted fields keep their values",
          requestBody: { required: true, content: json("BackendBody") },
          responses: { ...ok, ...errors(400, 401, 404, 413, 500) },
        },
        delete: { summary: "Remove a backend", responses: { ...ok, ...errors(400, 401, 404, 500) } },
        get: {
          summary: "A backend: options, health metrics, effective weight, IPVS counters",
          responses: { "200": { description: "the backend", content: json("BackendInfo") }, ...errors(400, 401, 404) },
        },
      },
      "/apply": {
        post: {
          summary:
            "Make the services the declarative set created match it: create, update in place, re-create (identity changed), " +
            "delete (no longer declared). Services created over the API are kept (or taken over when declared); services " +
            "gorb does not manage are never touched. The whole set is checked first: an error changes nothing.",
          parameters: [{ name: "dry_run", in: "query", required: false, schema: { type: "boolean" } }],
          requestBody: {
            required: true,
            content: {
              "application/json": {
                schema: {
                  type: "object",
                  properties: {
                    services: {
                      type: "object",
                      description: "service id -> ServiceBody with an optional `backends`: backend id -> BackendBody",
                      additionalProperties: { type: "object" },
                    },
                  },
                },
              },
            },
          },
          responses: {
            "200": {
              description: "the changes, each planned (dry run), done or failed; ok is false when one failed",
              content: {
                "application/json": {
                  schema: {
                    type: "object",
                    properties: {
                      dry_run: { type: "boolean" },
                      ok: { type: "boolean" },
                      changes: {
                        type: "array",
                        items: {
                          type: "object",
                          properties: {
                            action: { type: "string", enum: ["create", "update", "recreate", "delete"] },
                            service: { type: "string" },
                            backend: { type: "string", nullable: true },
                            details: { type: "array", items: { type: "string" } },
                            status: { type: "string", enum: ["planned", "done", "failed"] },
                            error: { type: "string" },
                          },
                        },
                      },
                    },
                  },
                },
              },
            },
            ...errors(400, 401, 409, 413, 500),
          },
        },
      },
      "/reconcile": {
        post: {
          summary: "Compare the kernel's IPVS table with gorb's state now and repair every difference in place",
          responses: {
            "200": {
              description: "every difference found and whether it was repaired",
              content: {
                "application/json": {
                  schema: {
                    type: "object",
                    properties: {
                      repairs: {
                        type: "array",
                        items: {
                          type: "object",
                          properties: {
                            service: { type: "string" },
                            backend: { type: "string", nullable: true },
                            reason: { type: "string" },
                            status: { type: "string", enum: ["done", "failed"] },
                            error: { type: "string" },
                          },
                        },
                      },
                    },
                  },
                },
              },
            },
            ...errors(401, 500),
          },
        },
      },
      "/metrics": {
        get: {
          summary: "Prometheus metrics",
          responses: { "200": { description: "text format 0.0.4", content: { "text/plain": {} } }, ...errors(401) },
        },
      },
      "/openapi.json": {
        get: { summary: "This document", responses: { "200": { description: "OpenAPI 3.0" }, ...errors(401) } },
      },
    },
  };
}
