/**
 * README's "The command line" section (the synopsis, the serve table, the client command table and its notes)
 * against the CLI's own definitions: every command and flag it names exists (on the command it names it for), and
 * every command, alias and flag spelling of the CLI is named there.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { type CompletionNode, completionTree } from "../../../src/cli/completion.ts";
import { root } from "../../../src/cli/index.ts";

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
