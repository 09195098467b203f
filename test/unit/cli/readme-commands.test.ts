/**
 * README against gorb. Its "The command line" section (the synopsis, the serve table, the client command table and
 * its notes) against the CLI's own definitions: every command and flag it names exists (on the command it names it
 * for), and every command, alias and flag spelling of the CLI is named there. Its field tables and its error list
 * against the contract (src/contract/fields.ts), its configuration file example through the loader, and its REST
 * examples, taken from README's own text, sent to the API (createApp over the in-memory core). Its keepalived and
 * ipvsadm tables ("Coming from keepalived or ipvsadm"): every gorb command, flag, field and pulse arg they name
 * exists, and the keepalived example's gorb file applies as written.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CompletionNode, completionTree } from "../../../src/cli/completion.ts";
import { root } from "../../../src/cli/index.ts";
import { parseConfigFile } from "../../../src/config/load.ts";
import { BACKEND_FIELD_DEFS, ERROR_CODES, PULSE_FIELDS, PULSE_TYPES, SERVICE_FIELD_DEFS, SORRY_FIELDS } from "../../../src/contract/fields.ts";
import { PULSE_ARG_KEYS } from "../../../src/health/options.ts";
import { runGorb, startServer } from "./_harness.ts";

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

describe("README's links within itself", () => {
  test("every #anchor names a heading, as GitHub makes its anchors (lower case, punctuation dropped, spaces to hyphens)", () => {
    const headings = new Set<string>();
    for (const m of readme.matchAll(/^#{1,6} (.+)$/gm)) {
      headings.add((m[1] ?? "").trim().toLowerCase().replace(/[^\p{L}\p{N}_\- ]/gu, "").replace(/ /g, "-"));
    }
    const links = [...readme.matchAll(/\]\(#([^)]+)\)/g)].map((m) => m[1] ?? "");
    expect(links.length).toBeGreaterThan(20);
    expect(links.filter((anchor) => !headings.has(anchor))).toEqual([]);
  });
});

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

describe("README's keepalived and ipvsadm tables", () => {
  const migration = readme.slice(readme.indexOf("## Coming from keepalived or ipvsadm"), readme.indexOf("### What neither maps"));

  /** The body rows of the section's tables, as cells (a `\|` inside a code span is a `|`, not a cell border). */
  function rows(): string[][] {
    return migration
      .split("\n")
      .filter((l) => l.startsWith("| ") && !l.startsWith("| ---"))
      .map((l) => l.slice(2, -2).split(" | "))
      .filter((cells) => cells[1] !== "gorb");
  }

  const spans = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => (m[1] ?? "").replaceAll("\\|", "|"));
  const fieldDefs: readonly Readonly<Record<string, { kind: string; values?: readonly string[] }>>[] = [SERVICE_FIELD_DEFS, BACKEND_FIELD_DEFS];
  const pulseArgs = new Set(Object.values(PULSE_ARG_KEYS).flat());
  const commandTree = completionTree(root);

  /** Why `span` is not a gorb command, flag, field or pulse arg ("" when it is one); null: not gorb's form at all. */
  async function problem(span: string): Promise<string | null> {
    const tree = await commandTree;
    const byPath = new Map(tree.map((n) => [n.path.join(" "), n]));
    const anyFlag = new Set(tree.flatMap((n) => n.flags.flatMap((f) => f.names)));
    const flags = (text: string) => [...text.matchAll(/(?<![\w-])--?[a-zA-Z][\w-]*(?![\w-])/g)].map((m) => m[0]);
    if (span.startsWith("gorb ")) {
      const { node, flags: named } = parse(span, byPath);
      const names = new Set(node.flags.flatMap((f) => f.names));
      return named.filter((f) => !names.has(f)).map((f) => `gorb ${node.path.join(" ")} has no ${f}`).join(", ");
    }
    if (span.startsWith("-")) return flags(span).filter((f) => !anyFlag.has(f)).map((f) => `no command has ${f}`).join(", ");
    const [name = "", value] = span.split(": ");
    if (name.startsWith("args.")) return pulseArgs.has(name.slice(5)) ? "" : `${name.slice(5)} is no pulse arg`;
    if (name === "pulse.type") return (PULSE_TYPES as readonly string[]).includes(value ?? "") ? "" : `no pulse type ${value}`;
    if (name.startsWith("pulse.")) return (PULSE_FIELDS as readonly string[]).includes(name.slice(6)) ? "" : `no pulse field ${name}`;
    if (name.startsWith("sorry_server.")) return (SORRY_FIELDS as readonly string[]).includes(name.slice(13)) ? "" : `no sorry_server field ${name}`;
    if (!/^[a-z_]+$/.test(name)) return null;
    const defs = fieldDefs.map((d) => d[name]).filter((d) => d !== undefined);
    if (defs.length === 0) return `${name} is no service or backend field`;
    const accepts = defs.some((d) => value === undefined || d.kind !== "enum" || (d.values ?? []).includes(value.toLowerCase()));
    return accepts ? "" : `${name} does not take ${value}`;
  }

  test("the gorb column names only commands, flags, fields and pulse args gorb has, and nothing else", async () => {
    const all = rows();
    expect(all.length).toBeGreaterThan(70);
    const wrong: string[] = [];
    for (const [theirs = "", ours = ""] of all) {
      for (const span of spans(ours)) {
        const found = await problem(span);
        if (found !== "") wrong.push(`${theirs}: \`${span}\`: ${found ?? "not a gorb command, flag, field or pulse arg"}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  test("the notes name only gorb commands, flags and pulse args that exist", async () => {
    const wrong: string[] = [];
    for (const [theirs = "", , notes = ""] of rows()) {
      for (const span of spans(notes).filter((s) => /^(gorb |--|args\.)/.test(s))) {
        const found = await problem(span);
        if (found !== "") wrong.push(`${theirs}: \`${span}\`: ${found}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  test("the keepalived example's gorb file applies as written", async () => {
    const server = startServer();
    const dir = mkdtempSync(join(tmpdir(), "gorb-readme-"));
    try {
      const file = join(dir, "web.yaml");
      writeFileSync(file, blockAfter("### keepalived.conf", "yaml"));
      const run = await runGorb(["apply", "-f", file], { GORB_SERVER: server.url });
      expect([run.code, run.stderr]).toEqual([0, ""]);
      const web1 = await server.stack.gorb.getBackend("web", "web-1");
      expect(web1.options.method).toBe("dr");
      expect(web1.options.pulse).toEqual({ type: "http", interval: "5s", args: { path: "/healthz", expect: 200, timeout: "3s", fall: 3 } });
      expect((await server.stack.gorb.getService("web")).options).toMatchObject({ method: "wlc", persistent: true, persistence_timeout: 600 });
    } finally {
      rmSync(dir, { recursive: true });
      await server.stop();
    }
  });
});
