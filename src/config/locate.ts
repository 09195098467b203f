/**
 * The line of a value in a configuration text, given its path ("services.web.backends.b1.port"), so an
 * error about a value can say where it is. Best effort, without a second full parser: JSON through
 * ./json-scan.ts; YAML by the indentation of `key:` lines (block style); TOML by `[table]` headers and
 * `key = value` lines. When the exact key is not on a line of its own (a flow mapping, an inline table), the
 * line of the deepest enclosing key is given; null when not even the first segment is found.
 */
import type { PathSegment } from "../core/path.ts";
import { pathKey, scanJson } from "./json-scan.ts";
import type { ConfigFormat } from "./syntax.ts";

const lower = (p: PathSegment): string => String(p).toLowerCase();

/** Length of the common prefix of `keys` and `path` (compared lower-case) when `keys` is a prefix of `path`. */
function prefixMatch(keys: readonly string[], path: readonly string[]): number {
  if (keys.length > path.length) return -1;
  for (let i = 0; i < keys.length; i++) if (keys[i] !== path[i]) return -1;
  return keys.length;
}

function unquote(key: string): string {
  const k = key.trim();
  if (k.length >= 2 && k.startsWith('"') && k.endsWith('"')) {
    try {
      return JSON.parse(k) as string;
    } catch {
      return k.slice(1, -1);
    }
  }
  if (k.length >= 2 && k.startsWith("'") && k.endsWith("'")) return k.slice(1, -1).replaceAll("''", "'");
  return k;
}

const YAML_KEY = /^(\s*)(?:-\s+)?("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s#'"{[\]},][^#]*?)\s*:(?:\s|$)/;

function yamlLine(text: string, path: readonly string[]): number | null {
  const stack: { indent: number; key: string }[] = [];
  let best: { depth: number; line: number } | null = null;
  text.split("\n").forEach((raw, index) => {
    const match = YAML_KEY.exec(raw);
    if (match === null) return;
    const indent = (match[1] ?? "").length + (raw.slice((match[1] ?? "").length).startsWith("-") ? 2 : 0);
    while (stack.length > 0 && (stack[stack.length - 1]?.indent ?? 0) >= indent) stack.pop();
    stack.push({ indent, key: unquote(match[2] ?? "").toLowerCase() });
    const depth = prefixMatch(
      stack.map((s) => s.key),
      path,
    );
    if (depth > 0 && (best === null || depth > best.depth)) best = { depth, line: index + 1 };
  });
  return (best as { line: number } | null)?.line ?? null;
}

/** Split a TOML dotted key ("a.\"b.c\".d") into its parts. */
function tomlKeys(text: string): string[] {
  const out: string[] = [];
  const re = /\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)\s*(\.|$)/y;
  let match: RegExpExecArray | null;
  while (re.lastIndex < text.length && (match = re.exec(text)) !== null) {
    out.push(unquote(match[1] ?? "").toLowerCase());
    if (match[2] === "") break;
  }
  return out;
}

function tomlLine(text: string, path: readonly string[]): number | null {
  let table: string[] = [];
  let best: { depth: number; line: number } | null = null;
  const consider = (keys: string[], line: number) => {
    const depth = prefixMatch(keys, path);
    if (depth > 0 && (best === null || depth > best.depth)) best = { depth, line };
  };
  text.split("\n").forEach((raw, index) => {
    const header = /^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$/.exec(raw);
    if (header !== null) {
      table = tomlKeys(header[1] ?? "");
      consider(table, index + 1);
      return;
    }
    const assignment = /^\s*((?:"(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_.\s-])+?)\s*=/.exec(raw);
    if (assignment !== null) consider([...table, ...tomlKeys(assignment[1] ?? "")], index + 1);
  });
  return (best as { line: number } | null)?.line ?? null;
}

function jsonLine(text: string, path: readonly PathSegment[]): number | null {
  const { lines } = scanJson(text);
  for (let n = path.length; n > 0; n--) {
    const line = lines.get(pathKey(path.slice(0, n)));
    if (line !== undefined) return line;
  }
  return null;
}

/** The line (1-based) of the value at `path` in `text`, or of its deepest enclosing key; null when not found. */
export function lineOfPath(text: string, format: ConfigFormat, path: readonly PathSegment[]): number | null {
  if (path.length === 0) return null;
  if (format === "json") return jsonLine(text, path);
  const keys = path.map(lower);
  // A byte order mark is not indentation.
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  return format === "yaml" ? yamlLine(body, keys) : tomlLine(body, keys);
}
