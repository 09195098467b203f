/**
 * GET /openapi.json against what the API really answers: real responses, from a gorb with services, backends and
 * a drain, are checked against the schemas the document gives for them (a JSON Schema check that also refuses a
 * key the document does not name, so a field clients generated from the document cannot see is caught), and the
 * media types the document gives are the ones the routes answer with.
 */
import { describe, expect, test } from "bun:test";
import { createApp, type AppOptions } from "../../../src/api/app.ts";
import { EventBus } from "../../../src/core/events.ts";
import { makeGorb } from "../core/fakes.ts";

/** The subset of JSON Schema the document uses. */
interface Schema {
  readonly $ref?: string;
  readonly type?: string | readonly string[];
  readonly properties?: Readonly<Record<string, Schema>>;
  readonly patternProperties?: Readonly<Record<string, Schema>>;
  readonly additionalProperties?: boolean | Schema;
  readonly required?: readonly string[];
  readonly items?: Schema;
  readonly anyOf?: readonly Schema[];
  readonly enum?: readonly unknown[];
  readonly const?: unknown;
}

interface Operation {
  readonly responses?: Readonly<Record<string, { readonly content?: Readonly<Record<string, { readonly schema: Schema }>> }>>;
}

interface Document {
  readonly paths: Readonly<Record<string, Readonly<Record<string, Operation>>>>;
  readonly components: { readonly schemas: Readonly<Record<string, Schema>> };
}

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

/**
 * What `value` breaks of `schema`, as "path: problem" lines. An object's key the schema neither names nor allows
 * (additionalProperties, patternProperties) is a problem: it is a field the document does not show.
 */
function problems(doc: Document, schema: Schema, value: unknown, path = ""): string[] {
  if (schema.$ref !== undefined) {
    const named = doc.components.schemas[schema.$ref.replace("#/components/schemas/", "")];
    return named === undefined ? [`${path}: no schema ${schema.$ref}`] : problems(doc, named, value, path);
  }
  if (schema.anyOf !== undefined) {
    const each = schema.anyOf.map((s) => problems(doc, s, value, path));
    return each.some((p) => p.length === 0) ? [] : each.flat();
  }
  const out: string[] = [];
  if (schema.type !== undefined) {
    const types = typeof schema.type === "string" ? [schema.type] : schema.type;
    const actual = typeOf(value);
    if (!types.includes(actual) && !(actual === "integer" && types.includes("number"))) return [`${path}: ${actual}, not ${types.join("|")}`];
  }
  if (schema.const !== undefined && value !== schema.const) out.push(`${path}: not ${JSON.stringify(schema.const)}`);
  if (schema.enum !== undefined && !schema.enum.includes(value)) out.push(`${path}: not one of ${JSON.stringify(schema.enum)}`);
  if (Array.isArray(value) && schema.items !== undefined) {
    const items = schema.items;
    value.forEach((v, i) => out.push(...problems(doc, items, v, `${path}/${i}`)));
  }
  if (typeOf(value) === "object" && (schema.properties !== undefined || schema.patternProperties !== undefined)) {
    const object = value as Record<string, unknown>;
    for (const key of schema.required ?? []) if (!(key in object)) out.push(`${path}/${key}: required, missing`);
    for (const [key, v] of Object.entries(object)) {
      const known = schema.properties?.[key] ?? Object.entries(schema.patternProperties ?? {}).find(([p]) => new RegExp(p).test(key))?.[1];
      if (known !== undefined) out.push(...problems(doc, known, v, `${path}/${key}`));
      else if (schema.additionalProperties === undefined || schema.additionalProperties === false) out.push(`${path}/${key}: not in the document`);
      else if (schema.additionalProperties !== true) out.push(...problems(doc, schema.additionalProperties, v, `${path}/${key}`));
    }
  }
  return out;
}

function setup(options: Partial<Omit<AppOptions, "gorb" | "logger">> = {}) {
  const stack = makeGorb();
  const app = createApp({ gorb: stack.gorb, logger: stack.logger, ...options });
  const call = async (method: string, path: string, body?: unknown) => {
    const init: RequestInit = { method };
    if (body !== undefined) init.body = JSON.stringify(body);
    return await app.handle(new Request(`http://gorb.test${path}`, init));
  };
  return { ...stack, app, call };
}

describe("GET /openapi.json describes the real answers", () => {
  test("GET responses of services, backends and drains match the document's schemas, every field of them named", async () => {
    const { call } = setup();
    const doc = (await (await call("GET", "/openapi.json")).json()) as Document;
    const ok = async (method: string, path: string, body?: unknown) => expect([path, (await call(method, path, body)).status]).toEqual([path, 200]);
    await ok("PUT", "/service/web", { host: "10.0.0.1", port: 80, sorry_server: { host: "10.0.0.9" }, quorum: 1, panic_threshold: 50 });
    await ok("PUT", "/service/fw", { fwmark: 5, family: "inet" });
    await ok("PUT", "/service/web/b1", { host: "10.1.0.1", pulse: { type: "http", args: { path: "/x" } }, slow_start: "10s" });
    await ok("PUT", "/service/web/b2", { host: "10.1.0.2", method: "tunnel", tunnel_type: "gue", tunnel_port: 5555 });
    await ok("PUT", "/service/fw/b1", { host: "10.1.0.3", pulse: { type: "none" } });
    const drain = await call("POST", "/service/web/b2/drain", { then: "keep" });
    const checked: [string, string, string, unknown][] = [
      ["/service/{service}", "get", "/service/web", await (await call("GET", "/service/web")).json()],
      ["/service/{service}", "get", "/service/fw", await (await call("GET", "/service/fw")).json()],
      ["/service/{service}/{backend}", "get", "/service/web/b1", await (await call("GET", "/service/web/b1")).json()],
      ["/service/{service}/{backend}", "get", "/service/web/b2", await (await call("GET", "/service/web/b2")).json()],
      ["/service", "get", "/service", await (await call("GET", "/service")).json()],
      ["/service", "get", "/service?detail=true", await (await call("GET", "/service?detail=true")).json()],
      ["/service/{service}/{backend}/drain", "post", "drain", await drain.json()],
      ["/service/{service}", "get", "404", await (await call("GET", "/service/nope")).json()],
    ];
    for (const [path, method, what, body] of checked) {
      const status = what === "404" ? "404" : "200";
      const schema = doc.paths[path]?.[method]?.responses?.[status]?.content?.["application/json"]?.schema;
      expect([what, schema === undefined ? ["no schema"] : problems(doc, schema, body)]).toEqual([what, []]);
    }
  });
});

describe("GET /openapi.json gives the media types the routes answer with", () => {
  test("every GET route of the document answers 200 in a media type the document lists for it, and every route is in it", async () => {
    const { call, app } = setup({ ui: true, events: new EventBus() });
    const doc = (await (await call("GET", "/openapi.json")).json()) as Document;
    const answered: string[] = [];
    const asked: [string, string, Record<string, string>][] = [
      ["/service", "/service", {}],
      ["/service", "/service", { accept: "text/plain" }],
      ["/metrics", "/metrics", {}],
      ["/events", "/events", {}],
      ["/ui", "/ui", {}],
      ["/ui/", "/ui/", {}],
      ["/ui/app.js", "/ui/app.js", {}],
      ["/ui/app.css", "/ui/app.css", {}],
    ];
    for (const [path, url, headers] of asked) {
      const reply = await app.handle(new Request(`http://gorb.test${url}`, { headers }));
      await reply.body?.cancel();
      const type = (reply.headers.get("content-type") ?? "").split(";")[0] ?? "";
      const listed = Object.keys(doc.paths[path]?.get?.responses?.["200"]?.content ?? {});
      answered.push(`${path} ${reply.status} ${type}: ${listed.includes(type) ? "listed" : `not in [${listed.join(", ")}]`}`);
    }
    expect(answered).toEqual(asked.map(([path, , headers]) => {
      const type = path === "/events" ? "text/event-stream" : path === "/metrics" || headers.accept !== undefined ? "text/plain" : path === "/service" ? "application/json" : path.endsWith(".js") ? "text/javascript" : path.endsWith(".css") ? "text/css" : "text/html";
      return `${path} 200 ${type}: listed`;
    }));
    // And every route of the app is in the document (its own route aside), the UI's files included.
    const routes = [...new Set(app.routes.filter((r) => r.path !== "/openapi.json").map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:(\w+)/g, "{$1}")}`))].sort();
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((method) => `${method} ${path}`)).sort();
    expect(documented).toEqual(routes);
  });
});
