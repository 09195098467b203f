/**
 * The first mapping key of a YAML text that is a collection: `[a, b]: 1`, `{x: 1}: 1`, `? [a]`, or an alias of one
 * (`*k : 1` after `a: &k [x]`). YAML allows them; Bun.YAML.parse makes such a key a string ("a,b",
 * "[object Object]") and says nothing, so a services mapping that holds `[a, b]:` declared the service "a,b".
 * ./syntax.ts refuses the text instead, at the key and with the path of the mapping that holds it.
 *
 * The `yaml` package's Document holds each key's node, an alias resolved to the node it names: this reads it, for a
 * text whose keys ./yaml-duplicates.ts found a collection or an alias among (it walks the concrete syntax tree, which
 * has no aliases resolved). The package is loaded for the first such text.
 *
 * In linear time, however large the text: the package's own checks that would not be (each key of a mapping compared
 * with those before it, each alias resolved by a walk of the document) are left out, keys given twice being
 * ./yaml-duplicates.ts's to find and the anchors being followed here as the walk meets them.
 */
import type { PathSegment } from "../core/path.ts";

/** A key that is a collection: where it is, the path of the mapping that holds it, and what it is. */
export interface YamlCollectionKey {
  readonly path: readonly PathSegment[];
  readonly line: number;
  readonly column: number;
  /** The key as written ("[a, b]", "*k"), its white space runs made one space. */
  readonly text: string;
  readonly kind: "sequence" | "mapping";
  /** Whether the key is an alias of the collection. */
  readonly alias: boolean;
}

/** The first key of `text`'s document (by position) that is a collection or an alias of one, or null. */
export function collectionYamlKey(text: string): YamlCollectionKey | null {
  const yaml = require("yaml") as typeof import("yaml");
  const lineCounter = new yaml.LineCounter();
  const doc = yaml.parseDocument(text, { lineCounter, uniqueKeys: false });
  /** Each anchor's node so far: an alias names the last node before it with its anchor. */
  const anchors = new Map<string, unknown>();
  /** The node a key is, an alias resolved (undefined for an alias of nothing). */
  const nodeOf = (key: unknown): unknown => (yaml.isAlias(key) ? anchors.get(key.source) : key);
  /** A path segment for a scalar key, as Bun names the property (String of its value). */
  const segmentOf = (key: unknown): string => {
    const node = nodeOf(key);
    return yaml.isScalar(node) ? String(node.value) : String(node);
  };
  let found: YamlCollectionKey | null = null;
  yaml.visit(doc, {
    Node(_, node) {
      if (!yaml.isAlias(node) && node.anchor !== undefined) anchors.set(node.anchor, node);
    },
    Pair(_, pair, ancestors) {
      const node = nodeOf(pair.key);
      if (!yaml.isCollection(node) || !yaml.isNode(pair.key)) return undefined;
      const [start, end] = pair.key.range ?? [0, 0];
      const { line, col } = lineCounter.linePos(start);
      const path: PathSegment[] = [];
      for (let k = 0; k < ancestors.length; k++) {
        const ancestor = ancestors[k];
        if (yaml.isPair(ancestor)) path.push(segmentOf(ancestor.key));
        else if (yaml.isSeq(ancestor)) path.push(ancestor.items.indexOf(ancestors[k + 1] ?? pair));
      }
      found = {
        path,
        line,
        column: col,
        text: text.slice(start, end).trim().replace(/\s+/g, " "),
        kind: yaml.isSeq(node) ? "sequence" : "mapping",
        alias: yaml.isAlias(pair.key),
      };
      return yaml.visit.BREAK;
    },
  });
  return found;
}
