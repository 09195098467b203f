/**
 * README against gorb. Its "The command line" section (the synopsis, the serve table, the client command table and
 * its notes) against the CLI's own definitions: every command and flag it names exists (on the command it names it
 * for), and every command, alias and flag spelling of the CLI is named there. Its field tables and its error list
 * against the contract (src/contract/fields.ts), its configuration file example through the loader, and its REST
 * examples, taken from README's own text, sent to the API (createApp over the in-memory core).
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { type CompletionNode, completionTree } from "../../../src/cli/completion.ts";
import { root } from "../../../src/cli/index.ts";
import { parseConfigFile } from "../../../src/config/load.ts";
import { BACKEND_FIELD_DEFS, ERROR_CODES, SERVICE_FIELD_DEFS } from "../../../src/contract/fields.ts";
import { startServer } from "./_harness.ts";

const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8");
const section = readme.slice(readme.indexOf("## The command line"), readme.indexOf("Exit codes, for scripts:"));
const synopsis = section.slice(section.indexOf("```\n") + 4, section.indexOf("\n```", section.indexOf("```\n") + 4));

/** Each command line README writes: the synopsis's (continuation lines joined) and every `gorb ...` code span. */
function commandLines(): string[] {
  const lines: string[] = [];
  for (const line of synopsis.split("\n")) {
    if (line.startsWith(" ") && lines.length > 0) lines[lines.length - 1] += ` ${line.trim()}`;
    else lines.push(...line.split(/\s{3,}(?=gorb )/));
  }
  for (const m of section.matchAll(/`(gorb [^`]+)`/g)) lines.push(m[1] ?? "");
  return lines.map((l) => l.replaceAll("\\|", "|"));
}

/** The command a README line names (its words after "gorb" that are sub-commands; "a|b" names a), and its flags. */
function parse(line: string, byPath: ReadonlyMap<string, CompletionNode>): { node: CompletionNode; flags: string[] } {
  const words = line.split(/\s+/).slice(1);
  const path: string[] = [];
  for (const word of words) {
    const name = word.split("|")[0] ?? "";
    if (!byPath.has([...path, name].join(" "))) break;
    path.push(name);
  }
  const node = byPath.get(path.join(" "));
  if (node === undefined) throw new Error(`no command for ${line}`);
  const flags = [...line.matchAll(/(?<![\w-])--?[a-zA-Z][\w-]*(?![\w-])/g)].map((m) => m[0]);
  return { node, flags };
}

describe("README's command line section", () => {
  test("names only commands gorb has, each with flags that command accepts", async () => {
    const tree = await completionTree(root);
    const byPath = new Map(tree.map((n) => [n.path.join(" "), n]));
    const unknown: string[] = [];
    const lines = commandLines();
    expect(lines.length).toBeGreaterThan(30);
    for (const line of lines) {
      const { node, flags } = parse(line, byPath);
      const names = new Set(node.flags.flatMap((f) => f.names));
      for (const flag of flags) if (!names.has(flag)) unknown.push(`gorb ${node.path.join(" ")}: ${flag} (in "${line}")`);
    }
    expect(unknown).toEqual([]);
  });

  test("names every command, alias and flag spelling of gorb", async () => {
    const tree = await completionTree(root);
    const words = new Set([...section.matchAll(/(?<![\w-])--?[a-zA-Z][\w-]*(?![\w-])/g)].map((m) => m[0]));
    const missing: string[] = [];
    for (const node of tree) {
      if (node.path.length > 0 && !new RegExp(`\`gorb ${node.path.join(" ")}[ |\`]|^gorb ${node.path.join(" ")}[ |]`, "m").test(section)) {
        missing.push(`gorb ${node.path.join(" ")}`);
      }
      for (const name of node.flags.flatMap((f) => f.names)) if (!words.has(name)) missing.push(`gorb ${node.path.join(" ")} ${name}`);
    }
    expect(missing).toEqual([]);
  });
});

/** The first fenced block (```lang) after `marker` in README. */
function blockAfter(marker: string, lang: string): string {
  const from = readme.indexOf(`\`\`\`${lang}\n`, readme.indexOf(marker)) + lang.length + 4;
  return readme.slice(from, readme.indexOf("\n```", from) + 1);
}

/** The rows of the first table after `heading`: field name(s) -> default cell, backticks dropped. */
function fieldTable(heading: string): Map<string, string> {
  const rows = new Map<string, string>();
  const start = readme.indexOf("| field |", readme.indexOf(heading));
  for (const line of readme.slice(start).split("\n").slice(2)) {
    if (!line.startsWith("|")) break;
    const [names = "", dflt = ""] = line.split(" | ");
    for (const m of names.matchAll(/`([a-z_]+)`/g)) rows.set(m[1] ?? "", dflt.replaceAll("`", "").trim());
  }
  return rows;
}

describe("README's field tables", () => {
  test.each([
    ["### Service fields", SERVICE_FIELD_DEFS],
    ["### Backend fields", BACKEND_FIELD_DEFS],
  ] as const)("%s: a row for every field of the contract, with its default", (heading, defs) => {
    const rows = fieldTable(heading);
    const wrong: string[] = [];
    for (const [name, def] of Object.entries(defs)) {
      const cell = rows.get(name);
      if (cell === undefined) wrong.push(`${name}: no row`);
      else if ("default" in def && !cell.startsWith(String(def.default))) wrong.push(`${name}: README says ${cell}, the contract ${def.default}`);
    }
    expect(wrong).toEqual([]);
  });
});

describe("README's error list", () => {
  test("names every error code of the contract, with its status, and no other", () => {
    const list = readme.slice(readme.indexOf("- **Errors** are "), readme.indexOf("- **Kernel refusals are mapped by a table**"));
    const named = [...list.matchAll(/\b(\d{3}) `([A-Z_]+)`/g)].map((m) => m[2]);
    expect([...new Set(named)].sort()).toEqual([...ERROR_CODES].sort());
  });
});

describe("README's configuration file example", () => {
  const yaml = blockAfter("### Configuration file", "yaml");

  test("loads as written: its settings and services", () => {
    const file = parseConfigFile("/etc/gorb/gorb.yaml", yaml);
    const settings = yaml.split("\n").filter((l) => /^[a-z_]+:/.test(l) && !l.startsWith("services:"));
    expect(Object.keys(file.flags)).toHaveLength(settings.length);
    expect(file.services?.map((s) => [s.id, s.backends.map((b) => b.id)])).toEqual([
      ["web", ["web-1", "web-2"]],
      ["dns", ["ns-1"]],
      ["sticky", ["app-1"]],
    ]);
  });

  test("with web-2's port out of range, it is refused with the line README shows", () => {
    const shown = readme.slice(readme.indexOf("A file with an error is refused whole")).split("\n")[2]?.trim();
    const broken = yaml.replace("web-2: { host: 10.1.0.12, port: 8080", "web-2: { host: 10.1.0.12, port: 70000");
    expect(broken).not.toBe(yaml);
    expect(() => parseConfigFile("/etc/gorb/gorb.yaml", broken)).toThrow(shown);
    expect(shown).toStartWith("/etc/gorb/gorb.yaml:");
  });
});

describe("README's REST examples, sent to the API", () => {
  /** README's `curl -X METHOD 127.0.0.1:4672PATH -d 'BODY'` lines (a body may go on over the next line). */
  function curls(text: string): { method: string; path: string; body: string | undefined }[] {
    const joined = text.replace(/,\n\s+/g, ", ");
    return [...joined.matchAll(/curl (?:-X (\w+) )?127\.0\.0\.1:4672(\S+)(?: -d '([^']*)')?/g)].map((m) => ({
      method: m[1] ?? "GET",
      path: m[2] ?? "",
      body: m[3],
    }));
  }

  test("the quick start's requests work as written", async () => {
    const server = startServer();
    try {
      const sent = curls(blockAfter("The same over HTTP, with the original GORB's requests", "sh"));
      expect(sent.map((c) => `${c.method} ${c.path}`)).toEqual(["PUT /service/web", "PUT /service/web/b1", "GET /service/web/b1"]);
      const answers = [];
      for (const c of sent) answers.push(await fetch(`${server.url}${c.path}`, { method: c.method, ...(c.body ? { body: c.body } : {}) }));
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
      const b1 = (await answers[2]?.json()) as { options: { pulse: unknown } };
      expect(b1.options.pulse).toEqual({ type: "http", interval: "5s", args: { method: "GET", path: "/health", expect: 200 } });
    } finally {
      await server.stop();
    }
  });

  test("the drain requests answer what README shows", async () => {
    const server = startServer();
    try {
      await server.stack.gorb.createService("web", { host: "10.0.0.1", port: 80 });
      await server.stack.gorb.createBackend("web", "b1", { host: "10.1.0.1", pulse: { type: "none" } });
      const block = blockAfter("- **Drain** (`POST", "sh");
      const [post, cancel] = curls(block);
      const answer = await fetch(`${server.url}${post?.path}`, { method: post?.method, body: post?.body ?? "" });
      const shown = JSON.parse(block.split("\n").find((l) => l.startsWith("{"))?.replaceAll('"..."', '""') ?? "") as Record<string, unknown>;
      const drain = (await answer.json()) as Record<string, unknown>;
      expect(Object.keys(drain)).toEqual(Object.keys(shown));
      expect({ ...drain, started: "", deadline: "" } as Record<string, unknown>).toEqual(shown);
      expect((await fetch(`${server.url}${cancel?.path}`, { method: cancel?.method })).status).toBe(200);
    } finally {
      await server.stop();
    }
  });

  test("the failover and via-vip bodies are accepted as written", async () => {
    const server = startServer();
    try {
      const failover = blockAfter("## When backends fail", "json").replace(/\n\s+(?=")/g, " ");
      const puts = [...failover.matchAll(/^PUT (\S+)\s+(\{.*\})$/gm)].map((m) => [m[1] ?? "", m[2] ?? ""] as const);
      expect(puts.map(([path]) => path)).toEqual(["/service/web", "/service/web/b1"]);
      const via = blockAfter("### Checks through the VIP", "json");
      for (const [path, body] of [...puts, ["/service/web/dr1", via] as const]) {
        const answer = await fetch(`${server.url}${path}`, { method: "PUT", body });
        expect([path, answer.status, await answer.text()]).toEqual([path, 200, ""]);
      }
      // The via-vip example has an interval of 2s and no timeout: the timeout defaults to the interval.
      expect(server.stack.health.target("web", "dr1").options.timeoutMs).toBe(2000);
    } finally {
      await server.stop();
    }
  });
});

describe("README's error examples, sent to the API", () => {
  test("each 400 VALIDATION example is the API's answer, word for word, naming its field", async () => {
    const server = startServer();
    try {
      await server.stack.gorb.createService("web", { host: "10.0.0.2", port: 80 });
      const list = readme.slice(readme.indexOf("  - 400 `VALIDATION`: invalid input"), readme.indexOf("  - 400 `VALIDATION` on `host`")).replace(/\n\s+/g, " ");
      const quoted = (start: string) => list.match(new RegExp(`\`(${start}[^\`]*)\``))?.[1] ?? `no ${start} example`;
      const cases: [string, string, string | undefined, string][] = [
        ["PUT", "/service/a", '{"host": "10.0.0.1", "port": 70000}', quoted("port: ")],
        ["PUT", "/service/web/b1", JSON.stringify({ host: "10.1.0.1", pulse: { type: "http", args: { path: `/${"a".repeat(3999)}` } } }), quoted("pulse.args.path: ")],
        ["PUT", "/service/a", '{"host": "0.0.0.0", "port": 80}', quoted("host: ")],
        ["POST", "/apply?dry_run=true&dry_run=false", '{"services": {}}', quoted("dry_run: given")],
        ["DELETE", "/service/web?dry_run=true", undefined, quoted("dry_run: unknown")],
      ];
      for (const [method, path, body, message] of cases) {
        const answer = await fetch(`${server.url}${path}`, { method, ...(body !== undefined ? { body } : {}) });
        expect([path, answer.status, await answer.json()]).toEqual([
          path,
          400,
          { error: message, code: "VALIDATION", field: message.slice(0, message.indexOf(":")) },
        ]);
      }
      expect(await server.stack.gorb.getService("web")).toBeDefined();
    } finally {
      await server.stop();
    }
  });
});
