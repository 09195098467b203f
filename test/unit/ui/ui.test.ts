/**
 * The web UI's server side and its pure parts: the action registry against the API's real route list (so the
 * two cannot drift), GET /ui (embedded bundle, no token needed for the files, strict CSP, gzip, 404 with
 * --no-ui), same-origin writes passing the guard, the forms read from GET /openapi.json, the bodies and error
 * placement of the forms, and the SSE parser of the event stream. The browser itself runs it in
 * test/browser/ui.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createApp, type AppOptions } from "../../../src/api/app.ts";
import { UI_PATHS } from "../../../src/api/ui.ts";
import { parseDaemonOptions } from "../../../src/config/daemon-options.ts";
import { ACTIONS, actionPath } from "../../../src/ui/actions.ts";
import { ApiError, describeError } from "../../../src/ui/errors.ts";
import { allPaths, bodyOf, errorPath, flatten, idProblem, restoreBody, startValues } from "../../../src/ui/form-body.ts";
import { type Change, appliedMessage, replanMessage } from "../../../src/ui/plan.ts";
import { parseBlocks } from "../../../src/ui/sse.ts";
import { Store } from "../../../src/ui/store.ts";
import { type Field, formsOf } from "../../../src/ui/schema.ts";
import { DEFAULTS } from "../../../src/contract/fields.ts";
import { makeGorb } from "../core/fakes.ts";

const BASE = "http://127.0.0.1:4672";

function setup(options: Partial<Omit<AppOptions, "gorb" | "logger">> = {}) {
  const stack = makeGorb();
  const app = createApp({ gorb: stack.gorb, logger: stack.logger, ...options });
  const request = (method: string, path: string, init: { body?: string; headers?: Record<string, string> } = {}) =>
    app.handle(new Request(`${BASE}${path}`, { method, ...init }));
  return { ...stack, app, request };
}

function routeSet(routes: readonly { method: string; path: string }[]): string[] {
  return [...new Set(routes.map((r) => `${r.method} ${r.path}`))].sort();
}

describe("the action registry and the API's routes", () => {
  test("the UI's registry lists exactly the API's routes", () => {
    const { app } = setup({ events: undefined });
    const registry = Object.values(ACTIONS).map((a) => `${a.method} ${a.path}`).sort();
    expect(routeSet(app.routes)).toEqual(registry);
  });

  test("with the UI on, the only extra routes are its GET files", () => {
    const { app } = setup({ ui: true });
    const extra = routeSet(app.routes).filter((r) => !Object.values(ACTIONS).some((a) => `${a.method} ${a.path}` === r));
    expect(extra).toEqual([...new Set(UI_PATHS.map((p) => `GET ${p}`))].sort());
  });

  test("every action of the registry is called somewhere in the UI", () => {
    const dir = join(import.meta.dir, "../../../src/ui");
    const sources = readdirSync(dir)
      .filter((f) => /\.tsx?$/.test(f) && f !== "actions.ts" && f !== "bundle.ts")
      .map((f) => readFileSync(join(dir, f), "utf8"))
      .join("\n");
    const unused = Object.keys(ACTIONS).filter((name) => !sources.includes(`"${name}"`));
    expect(unused).toEqual([]);
  });

  test("actionPath fills and encodes the path parameters", () => {
    expect(actionPath("updateBackend", { service: "web", backend: "b 1/x" })).toBe("/service/web/b%201%2Fx");
    expect(() => actionPath("getService")).toThrow("missing path parameter service");
  });
});

describe("GET /ui", () => {
  test("serves the page, the script and the style from the executable's bundle, with a strict CSP", async () => {
    const { request } = setup({ ui: true });
    const page = await request("GET", "/ui");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const csp = page.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toContain("unsafe");
    const html = await page.text();
    expect(html).toContain('<script type="module" src="/ui/app.js"></script>');
    expect(html).not.toMatch(/https?:\/\//); // nothing from elsewhere: no CDN, no remote fonts
    const js = await request("GET", "/ui/app.js");
    expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    const script = await js.text();
    expect(script).toContain("/events"); // the bundle holds the UI's own code (the registry's paths)
    expect(script.length).toBeGreaterThan(10_000);
    const css = await (await request("GET", "/ui/app.css")).text();
    expect(css).toContain(".uplot"); // uPlot's stylesheet is bundled in
    expect(css).not.toMatch(/@import|url\(https?:/);
  });

  test("README's sizes hold: each file, plain and gzipped, under the bound README gives, and within a quarter of it", async () => {
    const readme = readFileSync(join(import.meta.dir, "..", "..", "..", "README.md"), "utf8").replace(/\s+/g, " ");
    const said = /`app\.js` is under ([\d.]+) KiB minified \(under ([\d.]+) KiB gzipped\), `app\.css` under ([\d.]+) KiB \(under ([\d.]+) KiB gzipped\)/.exec(readme);
    expect(said).not.toBeNull();
    const [js, jsGzip, css, cssGzip] = (said ?? []).slice(1).map((kib) => Number(kib) * 1024);
    const { request } = setup({ ui: true });
    const sizes = async (path: string) => ({
      plain: (await (await request("GET", path)).arrayBuffer()).byteLength,
      gzip: (await (await request("GET", path, { headers: { "Accept-Encoding": "gzip" } })).arrayBuffer()).byteLength,
    });
    const within = (size: number, bound: number | undefined) => ({ under: size < (bound ?? 0), near: size >= 0.75 * (bound ?? 0) });
    const script = await sizes("/ui/app.js");
    const style = await sizes("/ui/app.css");
    for (const [size, bound] of [[script.plain, js], [script.gzip, jsGzip], [style.plain, css], [style.gzip, cssGzip]] as const) {
      expect({ size, ...within(size, bound) }).toEqual({ size, under: true, near: true });
    }
  });

  test("gzip when asked, and 304 for the same ETag", async () => {
    const { request } = setup({ ui: true });
    const plain = await request("GET", "/ui/app.js");
    const body = new Uint8Array(await plain.arrayBuffer());
    const zipped = await request("GET", "/ui/app.js", { headers: { "Accept-Encoding": "gzip, br" } });
    expect(zipped.headers.get("content-encoding")).toBe("gzip");
    const raw = new Uint8Array(await zipped.arrayBuffer());
    // app.handle() does not decode: the bytes are the gzip stream, which unzips to the same script.
    expect(Bun.gunzipSync(raw)).toEqual(body);
    const etag = plain.headers.get("etag") ?? "";
    expect(etag).not.toBe("");
    expect((await request("GET", "/ui/app.js", { headers: { "If-None-Match": etag } })).status).toBe(304);
  });

  test("the files need no token; every API call still does", async () => {
    const { request } = setup({ ui: true, token: "s3cret" });
    for (const path of UI_PATHS) expect((await request("GET", path)).status).toBe(200);
    expect((await request("GET", "/service")).status).toBe(401);
    expect((await request("GET", "/openapi.json")).status).toBe(401);
    expect((await request("GET", "/ui/other.js")).status).toBe(401); // only the UI's own paths are open
    expect((await request("POST", "/ui")).status).toBe(401);
    const authorized = await request("GET", "/service", { headers: { Authorization: "Bearer s3cret" } });
    expect(authorized.status).toBe(200);
  });

  test("--no-ui: /ui is 404 and stays behind the token like any unknown path", async () => {
    expect((await setup({ ui: false }).request("GET", "/ui")).status).toBe(404);
    expect((await setup({ ui: false, token: "s3cret" }).request("GET", "/ui")).status).toBe(401);
  });

  test("the page's writes come from the API's own origin and pass the guard; another origin's do not", async () => {
    const { request, gorb } = setup({ ui: true });
    const body = JSON.stringify({ host: "10.0.0.1", port: 80 });
    const same = { Origin: BASE, "Sec-Fetch-Site": "same-origin", "Content-Type": "application/json" };
    expect((await request("PUT", "/service/web", { body, headers: same })).status).toBe(200);
    expect(gorb.listServices()).toEqual(["web"]);
    const other = { Origin: "http://evil.example", "Sec-Fetch-Site": "cross-site" };
    expect((await request("DELETE", "/service/web", { headers: other })).status).toBe(403);
    expect(gorb.listServices()).toEqual(["web"]);
  });

  test("gorb serve turns it on by default; --no-ui (ui: false) turns it off", () => {
    expect(parseDaemonOptions({}).ui).toBe(true);
    expect(parseDaemonOptions({ ui: false }).ui).toBe(false);
  });
});

describe("the forms, from GET /openapi.json", async () => {
  const forms = formsOf(await (await setup().request("GET", "/openapi.json")).json());
  const byName = (fields: readonly Field[], name: string) => fields.find((f) => f.name === name);

  test("every field of the service and backend bodies, with types, ranges and choices", () => {
    expect(forms.service.map((f) => f.name)).toEqual(expect.arrayContaining(["host", "port", "protocol", "method", "flags", "persistent", "persistence_timeout", "persistence_netmask", "fwmark", "family", "pe", "one_packet"]));
    expect(byName(forms.service, "protocol")).toMatchObject({ kind: "choice", choices: ["tcp", "udp", "sctp"] });
    expect(byName(forms.service, "port")).toMatchObject({ kind: "integer", min: 1, max: 65535 });
    expect(byName(forms.service, "persistent")?.kind).toBe("boolean");
    expect(forms.backend.map((f) => f.name)).toEqual(expect.arrayContaining(["host", "port", "weight", "method", "upper_threshold", "lower_threshold", "tunnel_type", "tunnel_port", "tunnel_checksum", "pulse"]));
    expect(forms.backend.map((f) => f.name)).not.toContain("vsid");
    expect(byName(forms.backend, "tunnel_checksum")).toMatchObject({ kind: "choice", choices: ["nocsum", "csum", "remcsum"] });
    const pulse = byName(forms.backend, "pulse");
    expect(pulse?.kind).toBe("object");
    expect(pulse?.fields.map((f) => f.name)).toEqual(["type", "interval", "args"]);
    const args = pulse?.fields.find((f) => f.name === "args");
    expect(args?.kind).toBe("object"); // every pulse arg the contract knows is a field of its own
    expect(args?.fields.map((f) => f.name)).toEqual(expect.arrayContaining(["path", "expect", "rise", "fall", "timeout", "send", "sendHex"]));
    expect(byName(forms.service, "method")?.choices).toEqual(expect.arrayContaining(["rr", "wrr", "mh"]));
  });

  test("placeholders are the contract's defaults, read from the schema as data", () => {
    // (A choice's select shows its choices, not a placeholder: the document's inline bodies list them as an enum.)
    const placeholders = (fields: readonly Field[], names: string[]) => names.map((n) => byName(fields, n)?.placeholder);
    expect(placeholders(forms.service, ["persistence_timeout", "persistent", "quorum", "panic_threshold", "port"])).toEqual([
      String(DEFAULTS.persistenceTimeout),
      "false",
      String(DEFAULTS.quorum),
      String(DEFAULTS.panicThreshold),
      "",
    ]);
    expect(placeholders(forms.backend, ["weight", "upper_threshold"])).toEqual([String(DEFAULTS.weight), "0"]);
  });

  test("a create body holds what was filled in, typed", () => {
    const body = bodyOf(forms.backend, { host: "10.1.0.1", port: "8080", weight: "", "pulse.type": "http", "pulse.interval": "5s", "pulse.args.path": "/h", "pulse.args.expect": "200", "pulse.args.insecure": "true" }, null);
    expect(body).toEqual({ host: "10.1.0.1", port: 8080, pulse: { type: "http", interval: "5s", args: { path: "/h", expect: 200, insecure: true } } });
    expect(bodyOf(forms.service, { port: "70000x" }, null)).toEqual({ port: "70000x" }); // the API names the field
  });

  test("a checkbox starts at the contract's default; a create sends it only when it differs, so false can be sent", () => {
    const start = startValues(forms.service);
    expect(start).toMatchObject({ hash_fallback: true, persistent: false, one_packet: false });
    expect(byName(forms.service, "hash_fallback")?.default).toBe(true);
    const address = { host: "10.0.0.1", port: "80" };
    expect(bodyOf(forms.service, { ...start, ...address }, null)).toEqual({ host: "10.0.0.1", port: 80 });
    expect(bodyOf(forms.service, { ...start, ...address, hash_fallback: false }, null)).toEqual({ host: "10.0.0.1", port: 80, hash_fallback: false });
    expect(bodyOf(forms.service, { ...start, ...address, persistent: true }, null)).toEqual({ host: "10.0.0.1", port: 80, persistent: true });
    expect(startValues(forms.backend)).toEqual({ maintenance: false }); // nothing in pulse.args: its group stays folded
    // An edit still sends only what changed, a checkbox included.
    const initial = flatten(forms.service, { host: "10.0.0.1", port: 80, method: "sh", hash_fallback: true, persistent: false });
    expect(bodyOf(forms.service, { ...initial }, initial)).toEqual({});
    expect(bodyOf(forms.service, { ...initial, hash_fallback: false }, initial)).toEqual({ hash_fallback: false });
  });

  test("an edit body holds only what changed; a changed pulse goes whole; a cleared field is null", () => {
    const options = { host: "10.1.0.1", port: 80, weight: 100, method: "nat", pulse: { type: "http", interval: "5s", args: { path: "/" } }, upper_threshold: 0 };
    const initial = flatten(forms.backend, options);
    expect(initial["pulse.args.path"]).toBe("/");
    expect(initial["pulse.args.expect"]).toBe("");
    expect(bodyOf(forms.backend, { ...initial, weight: "0" }, initial)).toEqual({ weight: 0 });
    expect(bodyOf(forms.backend, { ...initial, "pulse.interval": "10s" }, initial)).toEqual({ pulse: { type: "http", interval: "10s", args: { path: "/" } } });
    expect(bodyOf(forms.backend, { ...initial, upper_threshold: "" }, initial)).toEqual({ upper_threshold: null });
  });

  test("an edit whose object field is cleared whole sends null: the sorry server can be taken away", async () => {
    const { request } = setup();
    const send = async (method: string, path: string, body: unknown) =>
      (await request(method, path, { body: JSON.stringify(body) })).status;
    expect(await send("PUT", "/service/web", { host: "10.0.0.1", port: 80, sorry_server: { host: "10.0.0.9", port: 8080 } })).toBe(200);
    const before = (await (await request("GET", "/service/web")).json()) as { options: Record<string, unknown> };
    const initial = flatten(forms.service, before.options);
    expect([initial["sorry_server.host"], initial["sorry_server.port"]]).toEqual(["10.0.0.9", "8080"]);
    const cleared = { ...initial, "sorry_server.host": "", "sorry_server.port": "", "sorry_server.method": "" };
    const body = bodyOf(forms.service, cleared, initial);
    expect(body).toEqual({ sorry_server: null });
    expect(await send("PATCH", "/service/web", body)).toBe(200);
    const after = (await (await request("GET", "/service/web")).json()) as { options: Record<string, unknown> };
    expect(after.options.sorry_server).toBeNull();
    // Only part of it cleared is still a change of that part: the object goes whole, without the cleared field.
    expect(bodyOf(forms.service, { ...initial, "sorry_server.port": "" }, initial)).toEqual({ sorry_server: { host: "10.0.0.9", method: "nat" } });
  });

  test("an API error goes next to the field it names, a conflict next to the id", () => {
    const paths = ["id", "host", "port", "pulse.type", "pulse.interval", "pulse.args.expect"];
    const error = (status: number, field: string | null, message: string) => new ApiError(status, "X", field, message);
    expect(errorPath(error(400, "port", "port: must be 1-65535, got 70000"), paths, "service")).toBe("port");
    expect(errorPath(error(400, "pulse.interval", "pulse.interval: must be at least 100ms"), paths, "backend")).toBe("pulse.interval");
    expect(errorPath(error(400, "pulse.args.expect", "pulse.args.expect: not a status"), paths, "backend")).toBe("pulse.args.expect");
    expect(errorPath(error(400, "pulse.args", "pulse.args: must be an object"), paths, "backend")).toBe("pulse.args.expect");
    expect(errorPath(error(409, null, 'service "web" already exists'), paths, "service")).toBe("id");
    expect(errorPath(error(500, null, "no such service tcp 10.0.0.1:80 (ESRCH)"), paths, "service")).toBe("");
  });

  test("an error about the id goes under the id: the API names it service or backend; an empty id is caught before any request", async () => {
    const paths = ["id", ...allPaths(forms.service)];
    const { request } = setup();
    const answer = await request("PUT", "/service/a%2Fb", { body: JSON.stringify({ host: "10.0.0.1", port: 80 }), headers: { "Content-Type": "application/json" } });
    const body = (await answer.json()) as { error: string; code: string; field: string };
    expect(body.field).toBe("service");
    expect(errorPath(new ApiError(answer.status, body.code, body.field, body.error), paths, "service")).toBe("id");
    expect(errorPath(new ApiError(400, "VALIDATION", "backend", 'backend: id must not contain "/", got "a/b"'), ["id", ...allPaths(forms.backend)], "backend")).toBe("id");
    // A backend form does not take the service's id for its own.
    expect(errorPath(new ApiError(400, "VALIDATION", "service", "service: ..."), ["id", ...allPaths(forms.backend)], "backend")).toBe("");
    expect(idProblem("service", "")).toBe("service id: required");
    expect(idProblem("backend", "b1")).toBeNull();
  });

  test("an API error is drawn with the controls of the ids it quotes as marks: under a field, in a row, in the notice", async () => {
    const { request } = setup();
    const answer = await request("PATCH", `/service/${encodeURIComponent("\u202Ebew")}/b1`, { body: JSON.stringify({ weight: 0 }), headers: { "Content-Type": "application/json" } });
    const body = (await answer.json()) as { error: string; code: string };
    expect(body.error).toContain("\u202Ebew"); // the daemon quotes the id as it is
    expect(describeError(new ApiError(answer.status, body.code, null, body.error))).toBe('404 NOT_FOUND: service "⟨U+202E⟩bew" not found');
  });
});

describe("Restore", () => {
  test("offers the weight only when this tab set Weight 0 itself; else the user types it, never a guessed 100", () => {
    const store = new Store();
    expect(store.restoreOffer("web", "b1")).toBe(""); // after a reload, or a Weight 0 from elsewhere
    store.weightZeroed("web", "b1", 30);
    expect(store.restoreOffer("web", "b1")).toBe("30");
    expect(store.restoreOffer("web", "b2")).toBe("");
  });

  test("sends the weight typed: a number when it is one, else as typed for the API to name the field", () => {
    expect(restoreBody(" 30 ")).toEqual({ weight: 30 });
    expect(restoreBody("3x")).toEqual({ weight: "3x" });
  });
});

describe("the Apply panel's plans", () => {
  const json = (body: unknown) => ({ body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });
  const set = { services: { web: { host: "10.0.0.1", port: 80, backends: { b1: { host: "10.1.0.1", port: 80, weight: 100, pulse: { type: "none" } } } } } };

  test("planned again right before the apply: the same plan when nothing changed, the difference when another client changed the state", async () => {
    const { request } = setup();
    const plan = async () => ((await (await request("POST", "/apply?dry_run=true", json(set))).json()) as { changes: Change[] }).changes;
    await request("POST", "/apply", json(set));
    const shown = await plan(); // the set is in place: nothing to do
    expect(shown).toEqual([]);
    expect(replanMessage(shown, await plan())).toBeNull();
    // Another client sets b1 to weight 0 between the plan shown and the click: the plan now has a change.
    expect((await request("PATCH", "/service/web/b1", json({ weight: 0 }))).status).toBe(200);
    const now = await plan();
    expect(now.map((c) => `${c.action} ${c.service}/${c.backend}`)).toEqual(["update web/b1"]);
    const message = replanMessage(shown, now) ?? "";
    // Each id isolated (FSI ... PDI), as the page draws an id in a sentence: an RTL id keeps its place.
    expect(message).toStartWith("The plan changed since it was shown (the state changed meanwhile), so nothing was applied. new: update \u2068web\u2069/\u2068b1\u2069 (");
    expect(message).toEndWith("Check the new plan below; Apply this plan applies it");
  });

  test("a plan's planned change and an apply's done change are the same; what differs is listed", () => {
    const change = (backend: string, details: string[], status = "planned"): Change => ({ action: "update", service: "web", backend, details, status });
    const confirmed = [change("b1", ["weight 0 -> 100"])];
    expect(appliedMessage(confirmed, [change("b1", ["weight 0 -> 100"], "done")])).toBeNull();
    expect(appliedMessage(confirmed, [change("b1", ["weight 0 -> 100"], "done"), change("b1", ["weight 0 -> 100"], "done")])).toBe(
      "The apply did not match the confirmed plan (the state changed meanwhile). also made: update \u2068web\u2069/\u2068b1\u2069 (weight 0 -> 100)",
    );
    expect(appliedMessage(confirmed, [change("b1", ["weight 50 -> 100"], "done"), change("b2", ["weight 0 -> 100"], "done")])).toBe(
      "The apply did not match the confirmed plan (the state changed meanwhile). also made: update \u2068web\u2069/\u2068b1\u2069 (weight 50 -> 100), update \u2068web\u2069/\u2068b2\u2069 (weight 0 -> 100). not made: update \u2068web\u2069/\u2068b1\u2069 (weight 0 -> 100)",
    );
    // An id's bidirectional controls are shown as marks; a service change names the service alone.
    const created: Change = { action: "create", service: "\u202Ebew", backend: null, details: [], status: "done" };
    expect(replanMessage([], [{ ...created, status: "planned" }])).toStartWith("The plan changed since it was shown (the state changed meanwhile), so nothing was applied. new: create \u2068⟨U+202E⟩bew\u2069. ");
    expect(appliedMessage([], [created])).toBe("The apply did not match the confirmed plan (the state changed meanwhile). also made: create \u2068⟨U+202E⟩bew\u2069");
  });
});

describe("the event stream's parser", () => {
  test("complete blocks with ids, types and data; comments skipped; the rest kept for the next chunk", () => {
    const text = ': gorb events\n\nid: 1@r\nevent: backend.weight\ndata: {"to":0}\n\n: keepalive\n\nid: 2@r\nevent: resync\r\ndata: {"reason"';
    const { blocks, rest } = parseBlocks(text);
    expect(blocks).toEqual([{ id: "1@r", type: "backend.weight", data: '{"to":0}' }]);
    expect(rest).toBe('id: 2@r\nevent: resync\ndata: {"reason"');
    expect(parseBlocks(`${rest}:"x"}\n\n`).blocks).toEqual([{ id: "2@r", type: "resync", data: '{"reason":"x"}' }]);
  });

  test("a CRLF split between two reads is one line end: the event is not cut in two", () => {
    const first = parseBlocks('id: 3@r\r\nevent: backend.health\r');
    expect(first.blocks).toEqual([]);
    const second = parseBlocks(`${first.rest}\ndata: {"to":"up"}\r\n\r\n`);
    expect(second.blocks).toEqual([{ id: "3@r", type: "backend.health", data: '{"to":"up"}' }]);
    expect(second.rest).toBe("");
  });
});
