/**
 * Reading a configuration file's text: YAML (Bun.YAML), JSON or TOML (Bun.TOML), chosen by the file's
 * extension. Bun's parsers say what is wrong but not where, so the line of a syntax error is found here:
 * JSON by ./json-scan.ts, YAML and TOML as the first line after the longest run of leading lines that still
 * parses (a syntax error cannot be repaired by what follows it, so every prefix that includes it fails).
 * A key given twice in one mapping is an error in all three: TOML's by Bun.TOML; JSON.parse and Bun.YAML keep the last
 * one and say nothing, so JSON's is found here (./json-scan.ts) and YAML's by ./yaml-duplicates.ts. Either runs only
 * when the keys the text spells out (keysOf, ./yaml-key-count.ts) are not as many as the value's (keysIn).
 * A YAML stream of several documents, which Bun reads as the list of them, is an error at the second one's line.
 * A YAML key that is a sequence or a mapping (`[a, b]: 1`), which Bun makes a string ("a,b"), is an error anywhere in
 * the document, at its line and with the path of the mapping that holds it: the key count does not follow such a key,
 * so the search runs, and it tells ./yaml-collection-keys.ts to find which.
 */
import { formatPath, type PathSegment } from "../core/path.ts";
import { scanJson } from "./json-scan.ts";
import { collectionYamlKey } from "./yaml-collection-keys.ts";
import { searchYamlKeys, secondYamlDocumentLine } from "./yaml-duplicates.ts";
import { yamlKeyCount } from "./yaml-key-count.ts";

/** The formats of a configuration file. */
export type ConfigFormat = "yaml" | "json" | "toml";

/**
 * ConfigSyntaxError: the text is not valid YAML, JSON or TOML; `line` (1-based) says where, and `path`, when the
 * problem is a key, which mapping holds it.
 */
export class ConfigSyntaxError extends Error {
  override readonly name = "ConfigSyntaxError";
  readonly line: number;
  readonly column: number | null;
  readonly problem: string;
  /** What is wrong without where: "YAML syntax error: Unexpected token". */
  readonly detail: string;
  /** The path of the mapping that holds the bad key ([] for the top level); null when it is no key's problem. */
  readonly path: readonly PathSegment[] | null;

  constructor(format: ConfigFormat, line: number, column: number | null, problem: string, path: readonly PathSegment[] | null = null) {
    const detail = `${format.toUpperCase()} syntax error: ${problem}`;
    super(`line ${line}${column === null ? "" : `, column ${column}`}: ${path === null ? "" : `${formatPath(path)}: `}${detail}`);
    this.line = line;
    this.column = column;
    this.problem = problem;
    this.detail = detail;
    this.path = path;
  }
}

/** The format of a file from its extension: .json, .toml, else YAML (.yaml, .yml; YAML also reads most JSON). */
export function formatOf(file: string): ConfigFormat {
  const lower = file.toLowerCase();
  if (lower.endsWith(".json")) return "json";
  if (lower.endsWith(".toml")) return "toml";
  return "yaml";
}

function rawParse(text: string, format: ConfigFormat): unknown {
  switch (format) {
    case "yaml":
      return Bun.YAML.parse(text);
    case "toml":
      return Bun.TOML.parse(text);
    case "json":
      return JSON.parse(text);
  }
}

function problemOf(error: unknown): string {
  // Bun's YAML parser recurses: a document nested a few thousand levels deep runs it out of stack.
  if (error instanceof RangeError) return "nested too deeply to read (the parser ran out of stack)";
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/^(YAML|TOML|JSON) Parse error:\s*/i, "");
}

/**
 * How many lines a flow collection or quoted string may span and still be told from a syntax error: a prefix that
 * ends inside one fails to parse too, and is known for what it is when one of the next SPAN prefixes parses again.
 */
const SPAN = 32;

/**
 * The first line of `text` that no continuation can make parse (see the module comment): the line after the
 * longest prefix of whole lines that parses. Found by bisection, a few dozen parses however long the text: the
 * prefixes that parse are those before the error, except those that end inside a multi-line flow collection or
 * quoted string. A prefix that fails is taken for the error only when none of the next SPAN prefixes parse; once
 * one did, the file has such constructs and every failing prefix of the search is checked so. A construct longer
 * than SPAN lines before the error may be given as the error's line.
 */
function firstBadLine(text: string, format: ConfigFormat): number {
  const ends: number[] = [];
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) ends.push(i);
  ends.push(text.length);
  const n = ends.length;
  /** Whether the first `k` lines parse (k < n; the empty text does). */
  const parses = (k: number): boolean => {
    try {
      rawParse(k === 0 ? "" : text.slice(0, ends[k - 1]), format);
      return true;
    } catch {
      return false;
    }
  };
  /** The first of the SPAN prefixes after `k` (and below `below`) that parses, or null. */
  const reopens = (k: number, below: number): number | null => {
    for (let j = k + 1; j <= k + SPAN && j < below; j++) if (parses(j)) return j;
    return null;
  };
  let careful = false;
  for (;;) {
    // The first `lo` lines parse; the first `hi` do not (the whole text does not).
    let lo = 0;
    let hi = n;
    while (hi - lo > 1) {
      const mid = lo + ((hi - lo) >> 1);
      const after = parses(mid) ? mid : careful ? reopens(mid, hi) : null;
      if (after === null) hi = mid;
      else lo = after;
    }
    if (careful || reopens(hi, n) === null) return hi;
    careful = true;
  }
}

/**
 * How many keys the objects of a parsed JSON or YAML value hold, all depths (no recursion: JSON.parse takes any
 * depth). With `aliases` (a YAML text with a `*`), an object met again is not counted again: Bun.YAML gives an alias
 * the anchored object itself (a cycle, even: `a: &a [*a]`), whose keys the text spells out once.
 */
function keysIn(value: unknown, aliases = false): number {
  let n = 0;
  const met = aliases ? new Set<object>() : null;
  const todo: unknown[] = [value];
  while (todo.length > 0) {
    const next = todo.pop();
    if (typeof next !== "object" || next === null) continue;
    if (met !== null) {
      if (met.has(next)) continue;
      met.add(next);
    }
    if (Array.isArray(next)) {
      for (const item of next) if (typeof item === "object" && item !== null) todo.push(item);
      continue;
    }
    for (const key in next) {
      n++;
      const child = (next as Record<string, unknown>)[key];
      if (typeof child === "object" && child !== null) todo.push(child);
    }
  }
  return n;
}

/**
 * How many object keys a valid JSON text spells out, duplicates included: every string of the text is found in
 * turn (outside strings a `"` only opens one), and a key is a string followed by ":".
 */
function keysOf(text: string): number {
  let n = 0;
  let at = text.indexOf('"');
  while (at !== -1) {
    // The closing quote: the next one not escaped (preceded by an even number of backslashes).
    let end = text.indexOf('"', at + 1);
    for (;;) {
      if (end === -1) return n;
      let slashes = 0;
      while (text.charCodeAt(end - 1 - slashes) === 92) slashes++;
      if (slashes % 2 === 0) break;
      end = text.indexOf('"', end + 1);
    }
    let next = end + 1;
    while (next < text.length && (text.charCodeAt(next) === 32 || text.charCodeAt(next) === 10 || text.charCodeAt(next) === 13 || text.charCodeAt(next) === 9)) next++;
    if (text.charCodeAt(next) === 58) n++;
    at = text.indexOf('"', next);
  }
  return n;
}

/** The value of a configuration text; throws ConfigSyntaxError with the line of the problem. */
export function parseConfigText(text: string, format: ConfigFormat): unknown {
  if (format === "json") {
    // JSON.parse is many times faster than the scan; the scan runs only to say where a text that fails is wrong, or
    // that has a key twice (JSON.parse keeps the last one).
    // JSON.parse refuses a byte order mark, which Bun.YAML and Bun.TOML skip (and the scan too).
    const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
    let value: unknown;
    try {
      value = JSON.parse(body) as unknown;
    } catch {
      value = undefined;
    }
    if (value !== undefined && keysIn(value) === keysOf(body)) return value;
    const scan = scanJson(text);
    if (scan.error !== null) throw new ConfigSyntaxError("json", scan.error.line, scan.error.column, scan.error.message);
    if (value !== undefined) return value;
  }
  let value: unknown;
  try {
    value = rawParse(text, format);
  } catch (error) {
    throw new ConfigSyntaxError(format, firstBadLine(text, format), null, problemOf(error));
  }
  if (format === "yaml" && Array.isArray(value)) {
    // Bun reads a stream of several documents as the list of them: say so where the second starts, rather than
    // "got a list" at no line for a file that holds no list.
    const line = secondYamlDocumentLine(text);
    if (line !== null) throw new ConfigSyntaxError("yaml", line, null, "a second YAML document starts here: a configuration file is one document");
  }
  if (format === "yaml" && yamlKeyCount(text) !== keysIn(value, text.includes("*"))) {
    const { duplicate, nodeKeys } = searchYamlKeys(text);
    const collection = nodeKeys ? collectionYamlKey(text) : null;
    if (collection !== null) {
      const { path, line, column, text: key, kind, alias } = collection;
      const what = alias ? `an alias of a ${kind}` : `a ${kind}`;
      throw new ConfigSyntaxError("yaml", line, column, `the key ${key} is ${what}: a key must be a name`, path);
    }
    if (duplicate !== null) {
      const { key, line, column, firstLine } = duplicate;
      throw new ConfigSyntaxError("yaml", line, column, `duplicate key ${JSON.stringify(key)} (first on line ${firstLine})`);
    }
  }
  return value;
}
