/**
 * --help text, rendered from the citty definitions: usage line, arguments, options (with defaults and enum
 * values; a command's flag groups under their own headings, after the others), sub-commands and examples. Plain text, left-aligned, no colour (it is often piped to a pager).
 */
import type { ArgDef } from "citty";
import { type AnyCommand, aliasesOf, argsOf, examplesOf, flagGroupsOf, kebab, metaOf, notesOf, subCommandsOf } from "./_command.ts";

/** Flag column width; longer flag spellings put their description on the next line. */
const COLUMN = 32;

function row(left: string, right: string): string {
  if (right === "") return `  ${left}`;
  if (left.length + 2 <= COLUMN) return `  ${left.padEnd(COLUMN)}${right}`;
  return `  ${left}\n  ${"".padEnd(COLUMN)}${right}`;
}

function flagSpelling(name: string, def: ArgDef): string {
  const alias = "alias" in def && def.alias !== undefined ? (Array.isArray(def.alias) ? def.alias : [def.alias]) : [];
  const short = alias.filter((a: string) => a.length === 1).map((a: string) => `-${a}`);
  const long = [`--${kebab(name)}`, ...alias.filter((a: string) => a.length > 1).map((a: string) => `--${a}`)];
  let value = "";
  if (def.type === "enum" && def.options !== undefined) value = ` <${def.options.join("|")}>`;
  else if (def.type === "string" && def.valueHint?.startsWith("[") === true) value = ` ${def.valueHint}`;
  else if (def.type === "string") value = ` <${def.valueHint ?? kebab(name)}>`;
  return `${[...short, ...long].join(", ")}${value}`;
}

function flagDescription(def: ArgDef): string {
  const parts = [def.description ?? ""];
  if (def.default !== undefined && def.default !== false) parts.push(`(default: ${String(def.default)})`);
  return parts.filter((p) => p !== "").join(" ");
}

/** renderHelp returns the --help text of `cmd`, whose full name is `path` ("gorb service add"). */
export async function renderHelp(cmd: AnyCommand, path: readonly string[]): Promise<string> {
  const meta = await metaOf(cmd);
  const args = await argsOf(cmd);
  const subs = await subCommandsOf(cmd);
  const name = path.join(" ");
  const lines: string[] = [];
  lines.push(meta.description !== undefined ? `${name} - ${meta.description}` : name, "");

  const positionals = Object.entries(args).filter(([, d]) => d.type === "positional");
  const flags = Object.entries(args).filter(([, d]) => d.type !== "positional");
  const usage = [name];
  if (Object.keys(subs).length > 0) usage.push("<command>");
  if (flags.length > 0) usage.push("[options]");
  for (const [argName, def] of positionals) {
    const upper = argName.toUpperCase();
    usage.push(def.required === false || def.default !== undefined ? `[${upper}]` : `<${upper}>`);
  }
  lines.push(`Usage: ${usage.join(" ")}`, "");
  const notes = notesOf(cmd);
  if (notes.length > 0) lines.push(...notes, "");

  if (positionals.length > 0) {
    lines.push("Arguments:");
    for (const [argName, def] of positionals) lines.push(row(argName.toUpperCase(), def.description ?? ""));
    lines.push("");
  }
  if (Object.keys(subs).length > 0) {
    lines.push("Commands:");
    for (const [subName, sub] of Object.entries(subs)) {
      const subMeta = await metaOf(sub);
      if (subMeta.hidden === true) continue;
      const aliases = aliasesOf(subMeta);
      const suffix = aliases.length > 0 ? ` (alias: ${aliases.join(", ")})` : "";
      lines.push(row(subName, `${subMeta.description ?? ""}${suffix}`));
    }
    lines.push("");
  }
  const groups = flagGroupsOf(cmd);
  const flagRows = (list: readonly (readonly [string, ArgDef])[]): void => {
    for (const [flagName, def] of list) {
      lines.push(row(flagSpelling(flagName, def), flagDescription(def)));
      if (def.type === "boolean" && "negativeDescription" in def && def.negativeDescription !== undefined) {
        lines.push(row(`--no-${kebab(flagName)}`, def.negativeDescription));
      }
    }
  };
  lines.push("Options:");
  flagRows(flags.filter(([flagName]) => !groups.some((g) => g.flags.includes(flagName))));
  lines.push(row("-h, --help", "Show this help"));
  if (path.length === 1) lines.push(row("-V, --version", "Print the version"));
  lines.push("");
  for (const group of groups) {
    lines.push(`${group.heading}:`);
    flagRows(flags.filter(([flagName]) => group.flags.includes(flagName)));
    lines.push("");
  }

  if (Object.keys(subs).length > 0) lines.push(`Run "${name} <command> --help" for the options of a command.`, "");
  const examples = examplesOf(cmd);
  if (examples.length > 0) {
    lines.push("Examples:");
    for (const example of examples) lines.push(`  ${example}`);
    lines.push("");
  }
  return `${lines.join("\n").trimEnd()}\n`;
}
