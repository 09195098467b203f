/**
 * The first key a YAML text gives twice in one mapping, found with the `yaml` package's parser: its concrete
 * syntax tree (tokens with their offsets, no values) is walked, each block or flow mapping with the keys it has
 * seen. Bun.YAML.parse, which reads the values, keeps the last of two such keys and says nothing.
 *
 * Two keys are the same when Bun would make them the same property of the parsed object: scalars compare by value,
 * whatever their quoting or folding (`a`, `"a"` and `'a'` are one key); a plain scalar Bun reads as a number, a
 * boolean or null compares as Bun prints it (`1`, `0x1` and `1.0` are one key, as are `~` and `null`).
 * Decided here:
 *   - A merge key (`<<`, plain or quoted, as Bun reads both) is not a key: it merges its mappings in, and a key
 *     written in the mapping itself overrides a merged one, as the merge key is meant to. Two of them are two merges
 *     (Bun applies both).
 *   - A complex key (a mapping or a sequence: Bun makes it a string such as "a,b" or "[object Object]", which is no
 *     gorb field), an alias or a tagged scalar as a key compares as written, with such keys only. The walk also says
 *     whether it met a collection or an alias as a key, for ./yaml-collection-keys.ts to refuse the first collection.
 *
 * secondYamlDocumentLine finds with the same parser where a second document starts, for a text Bun read as a list.
 *
 * It costs about 0.4 s per MB of YAML on the host, some 20 times Bun's parse: ./syntax.ts runs it only when
 * ./yaml-key-count.ts cannot show there is no such key, and the package is loaded for the first such text.
 */
import type { CST } from "yaml";

/** A key given twice in one mapping: its value, the line and column (1-based) of the second, the line of the first. */
export interface YamlDuplicate {
  readonly key: string;
  readonly line: number;
  readonly column: number;
  readonly firstLine: number;
}

/** A plain scalar that Bun may read as something else than a string: a number, a boolean, null. */
const MAYBE_NOT_STRING = /^(?:[-+.~0-9]|(?:null|true|false)$)/i;

/** A key: what it is compared by (see the module comment), and its value as written, to name it. */
interface Key {
  readonly id: string;
  readonly text: string;
}

/** The key of a mapping's entry `item`; null for a merge key, undefined for no entry (a comment). */
function keyOf(cst: typeof CST, item: CST.CollectionItem): Key | null | undefined {
  // An entry `: x` has an empty key (null, as Bun reads it); a flow mapping's `{a}` may hold its key as the value.
  const key = item.key !== undefined ? item.key : item.sep !== undefined ? null : item.value;
  if (key === undefined) return undefined;
  if (key === null) return { id: "null", text: "" };
  const tagged = item.start.some((token) => token.type === "tag") || (key.type === "block-scalar" && key.props.some((token) => token.type === "tag"));
  const scalar = cst.isScalar(key) ? cst.resolveAsScalar(key) : null;
  if (scalar === null || tagged) {
    // Compared as written, apart from the other keys (see the module comment).
    const text = cst.stringify(key).trim();
    return { id: `\u0000${text}`, text };
  }
  if (scalar.value === "<<") return null;
  if (key.type === "scalar" && MAYBE_NOT_STRING.test(scalar.value)) {
    // Read alone, as Bun reads the key (the key `-` alone would be a sequence: a string then).
    let read: unknown;
    try {
      read = Bun.YAML.parse(scalar.value);
    } catch {
      read = scalar.value;
    }
    if (typeof read !== "object" || read === null) return { id: String(read), text: scalar.value };
  }
  return { id: scalar.value, text: scalar.value };
}

/** What the walk of a text's mappings found (see searchYamlKeys). */
interface Walked {
  readonly found: { key: string; offset: number; first: number } | null;
  readonly nodeKeys: boolean;
}

/** The first key given twice in one mapping (first by the position of the second), and whether a key is a collection or an alias. */
function walk(cst: typeof CST, documents: readonly CST.Token[]): Walked {
  let found: { key: string; offset: number; first: number } | null = null;
  let nodeKeys = false;
  const todo = [...documents];
  for (let node = todo.pop(); node !== undefined; node = todo.pop()) {
    if (node.type !== "block-map" && node.type !== "block-seq" && node.type !== "flow-collection") continue;
    // A flow sequence's entry `a: 1` is a mapping of its own, of one key: only a mapping's keys are compared.
    const seen = node.type === "block-map" || (node.type === "flow-collection" && node.start.type === "flow-map-start") ? new Map<string, number>() : null;
    for (const item of node.items) {
      if (item.key !== undefined && item.key !== null) todo.push(item.key);
      if (item.value !== undefined) todo.push(item.value);
      // A flow mapping's `{[a]}` holds its key as the value, as keyOf reads it.
      const keyNode = item.key !== undefined ? item.key : seen !== null && item.sep === undefined ? item.value : undefined;
      if (keyNode !== undefined && keyNode !== null && !cst.isScalar(keyNode)) nodeKeys = true;
      if (seen === null) continue;
      const key = keyOf(cst, item);
      if (key === null || key === undefined) continue;
      const offset = item.key?.offset ?? item.sep?.[0]?.offset ?? item.value?.offset ?? 0;
      const first = seen.get(key.id);
      if (first === undefined) seen.set(key.id, offset);
      else if (found === null || offset < found.offset) found = { key: key.text, offset, first };
    }
  }
  return { found, nodeKeys };
}

/** The line (1-based) of `offset` in `text`, and the offset of that line's start. */
function lineAt(text: string, offset: number): { line: number; start: number } {
  let line = 1;
  let start = 0;
  for (let lf = text.indexOf("\n"); lf !== -1 && lf < offset; lf = text.indexOf("\n", lf + 1)) {
    line++;
    start = lf + 1;
  }
  return { line, start };
}

/** What searchYamlKeys found in a text's mappings. */
export interface YamlKeySearch {
  /** The first key given twice in one mapping (first by the position of the second), or null. */
  readonly duplicate: YamlDuplicate | null;
  /** Whether a key is a collection or an alias (which may name one): ./yaml-collection-keys.ts says which. */
  readonly nodeKeys: boolean;
}

/** The keys of `text`'s mappings searched: the first given twice in one mapping, and whether any is not a scalar. */
export function searchYamlKeys(text: string): YamlKeySearch {
  const { CST: cst, Parser } = require("yaml") as typeof import("yaml");
  const documents: CST.Token[] = [];
  for (const token of new Parser().parse(text)) if (token.type === "document" && token.value !== undefined) documents.push(token.value);
  const { found, nodeKeys } = walk(cst, documents);
  if (found === null) return { duplicate: null, nodeKeys };
  const { line, start } = lineAt(text, found.offset);
  return { duplicate: { key: found.key, line, column: found.offset - start + 1, firstLine: lineAt(text, found.first).line }, nodeKeys };
}

/**
 * The line (1-based) where the second document of a YAML stream starts (its `---`), or null for one document.
 * Bun.YAML.parse reads a stream of several as the list of their values, which a configuration file is not.
 */
export function secondYamlDocumentLine(text: string): number | null {
  const { Parser } = require("yaml") as typeof import("yaml");
  let seen = 0;
  for (const token of new Parser().parse(text)) {
    if (token.type !== "document") continue;
    if (++seen === 2) return lineAt(text, token.offset).line;
  }
  return null;
}
