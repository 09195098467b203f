/**
 * The line of a value in a configuration text, given its path ("services.web.backends.b1.port"), so an
 * error about a value can say where it is. Best effort, without a second full parser: JSON through
 * ./json-scan.ts; YAML by the indentation of `key:` lines (block style); TOML by `[table]` headers and
 * `key = value` lines. When the exact key is not on a line of its own (a flow mapping, an inline table), the
 * line of the deepest enclosing key is given; null when not even the first segment is found. Keys are matched in
 * any case, as fields are read; where two keys match as deep (`port` and `Port`), the one spelt as the path wins.
 */
import type { PathSegment } from "../core/path.ts";
import { pathKey, scanJson } from "./json-scan.ts";
import type { ConfigFormat } from "./syntax.ts";

/** How keys on a line match the path: how deep (-1: not a prefix of it), and whether spelt exactly as it is. */
interface Match {
  readonly depth: number;
  readonly exact: boolean;
}

/** How `keys` match `path` when they are a prefix of it, compared in any case. */
function prefixMatch(keys: readonly string[], path: readonly string[]): Match {
  if (keys.length > path.length) return { depth: -1, exact: false };
  for (let i = 0; i < keys.length; i++) if (keys[i]?.toLowerCase() !== path[i]?.toLowerCase()) return { depth: -1, exact: false };
  return { depth: keys.length, exact: keys.every((k, i) => k === path[i]) };
}

/** The best line so far: the deepest match, and at the same depth the first exact one. */
type Best = { readonly match: Match; readonly line: number } | null;

function better(best: Best, match: Match, line: number): Best {
  if (match.depth <= 0) return best;
  if (best === null || match.depth > best.match.depth || (match.depth === best.match.depth && match.exact && !best.match.exact)) {
    return { match, line };
  }
  return best;
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
  let best: Best = null;
  text.split("\n").forEach((raw, index) => {
    const match = YAML_KEY.exec(raw);
    if (match === null) return;
    const indent = (match[1] ?? "").length + (raw.slice((match[1] ?? "").length).startsWith("-") ? 2 : 0);
    while (stack.length > 0 && (stack[stack.length - 1]?.indent ?? 0) >= indent) stack.pop();
    stack.push({ indent, key: unquote(match[2] ?? "") });
    best = better(
      best,
      prefixMatch(
        stack.map((s) => s.key),
        path,
      ),
      index + 1,
    );
  });
  return (best as Best)?.line ?? null;
}

/** Split a TOML dotted key ("a.\"b.c\".d") into its parts. */
function tomlKeys(text: string): string[] {
  const out: string[] = [];
  const re = /\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)\s*(\.|$)/y;
  let match: RegExpExecArray | null;
  while (re.lastIndex < text.length && (match = re.exec(text)) !== null) {
    out.push(unquote(match[1] ?? ""));
    if (match[2] === "") break;
  }
  return out;
}

function tomlLine(text: string, path: readonly string[]): number | null {
  let table: string[] = [];
  let best: Best = null;
  const consider = (keys: string[], line: number) => {
    best = better(best, prefixMatch(keys, path), line);
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
  return (best as Best)?.line ?? null;
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
  const keys = path.map(String);
  // A byte order mark is not indentation.
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  return format === "yaml" ? yamlLine(body, keys) : tomlLine(body, keys);
}
