/**
 * A YAML key given twice in one mapping: the key count that shows there is none without a parser
 * (src/config/yaml-key-count.ts), and the whole check against mappings generated with and without repeated keys.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { ConfigSyntaxError, parseConfigText } from "../../../src/config/syntax.ts";
import { yamlKeyCount } from "../../../src/config/yaml-key-count.ts";

describe("the YAML key count", () => {
  test("counts every key a text spells out: block and flow mappings, a flow sequence's `a: 1`, duplicates too", () => {
    expect(yamlKeyCount("")).toBe(0);
    expect(yamlKeyCount("# only a comment\n")).toBe(0);
    expect(yamlKeyCount("a: 1\na: 2\n")).toBe(2);
    expect(yamlKeyCount("---\na:\n  b: 1\n  c: [1, {d: 2}]\n")).toBe(4);
    expect(yamlKeyCount("- a: 1\n  b: 2\n- - c: 3\n")).toBe(3);
    expect(yamlKeyCount("{a, b: 1, c: {}, 'd': [x: 1, y]}")).toBe(5);
    expect(yamlKeyCount('{"a":1,"b":{"c":"x: y, z"}}')).toBe(3);
    expect(yamlKeyCount("a: 'it''s: here' # b: 1\nc: \"q\\\" d: 1\"\nurl: http://x:80/y\n")).toBe(3);
    expect(yamlKeyCount("a: &x { b: 1 }\nc: *x\nd:\n  - *x\n  - &y e\n")).toBe(4);
    expect(yamlKeyCount("a: {\n  b: 1, # c: 2\n  d: [\n    e: 3\n  ]\n}\n")).toBe(4);
    expect(yamlKeyCount("\ufeffa: 1\r\nb: 2\r\n")).toBe(2);
    // A plain scalar goes on over the next lines (indented past its key, in block context): a quote there opens no
    // string, which would hide the keys up to the next quote (`a` twice below).
    expect(yamlKeyCount('a: it is\n  "quoted\nb: 1\nc: x"\n')).toBe(3);
    expect(yamlKeyCount('{a: 0, b: foo\n "bar, a: 1"}')).toBe(3);
    expect(() => parseConfigText('{a: 0, b: foo\n "bar, a: 1"}', "yaml")).toThrow('line 2, column 8: YAML syntax error: duplicate key "a" (first on line 1)');
    // A block scalar's lines are text, however they look: those indented more than its key, and blank ones.
    const blocks = "a:\n  b: |\n    c: 1\n\n    d: 2\n  e: >-\n   f: 3\n  g: 4\nl:\n- h: |2\n    i: 5\n  j: 6\n";
    expect(Bun.YAML.parse(blocks)).toEqual({ a: { b: "c: 1\n\nd: 2\n", e: "f: 3", g: 4 }, l: [{ h: "i: 5\n", j: 6 }] });
    expect(yamlKeyCount(blocks)).toBe(7);
    // JSON is YAML: a JSON text over many lines is counted as is.
    expect(yamlKeyCount(JSON.stringify({ services: { web: { port: 80, backends: { b1: { host: "x" } } } } }, null, 2))).toBe(6);
  });

  test("is null where the text's keys are not the value's or the YAML is not followed, so that the parser checks it", () => {
    for (const text of [
      "a: &b { x: 1 }\nc:\n  <<: *b\n",
      'c:\n  "<<": { x: 1 }\n',
      "a: !!str 1\n",
      "? a\n: 1\n",
      "- |\n  b: 1\n",
      "a: !!str |\n  b: 1\n",
      "%YAML 1.2\n---\na: 1\n",
      "a: 1\n---\nb: 1\n",
      "a: 1\n...\n",
      "*a : 1\n",
      // A collection or an alias as a key, which ./syntax.ts has the parser refuse.
      "[a, b]: 1\n",
      "- {x: 1}: 1\n",
      "a: {[b]: 1}\n",
      "a: {[b]}\n",
      "a: [[b] : 1]\n",
      "a: {*k }\n",
      "a: [*k : 1]\n",
    ]) {
      expect(yamlKeyCount(text)).toBeNull();
    }
  });
});

/** A mapping to write as YAML: its entries (a key may come twice), each key quoted one way, block or flow. */
interface Mapping {
  readonly flow: boolean;
  readonly entries: readonly (readonly [key: string, quote: 0 | 1 | 2, value: Value])[];
}

/** A value: a mapping, a number, a list of numbers, or a text whose lines look like keys (a block scalar in block style). */
type Value = Mapping | number | readonly number[] | "text";

const KEYS = ["a", "b", "web", "x y", "-a", "ü"];

const mappings = fc.letrec<{ mapping: Mapping; value: Value }>((tie) => ({
  mapping: fc.record({
    flow: fc.boolean(),
    entries: fc.array(fc.tuple(fc.constantFrom(...KEYS), fc.constantFrom(0 as const, 1 as const, 2 as const), tie("value")), { maxLength: 4 }),
  }),
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.integer({ min: 0, max: 99 }),
    fc.array(fc.nat(9), { maxLength: 2 }),
    fc.constant("text" as const),
    tie("mapping"),
  ),
})).mapping;

const isMapping = (value: Value): value is Mapping => typeof value === "object" && !Array.isArray(value);

const keyText = (key: string, quote: 0 | 1 | 2): string => (quote === 0 ? key : quote === 1 ? `'${key}'` : JSON.stringify(key));

const TEXT = ["a: 1", "a: 1", "- b: {c: 2}"];

function flowText(value: Value): string {
  if (typeof value === "number") return String(value);
  if (value === "text") return JSON.stringify(TEXT.join("\n"));
  if (!isMapping(value)) return `[${value.join(", ")}]`;
  return `{ ${value.entries.map(([key, quote, v]) => `${keyText(key, quote)}: ${flowText(v)}`).join(", ")} }`;
}

function blockText(mapping: Mapping, indent: string): string {
  return mapping.entries
    .map(([key, quote, value]) => {
      const head = `${indent}${keyText(key, quote)}:`;
      if (value === "text") return `${head} |\n${TEXT.map((line) => `${indent}  ${line}\n`).join("")}`;
      if (!isMapping(value) || value.flow || value.entries.length === 0) return `${head} ${flowText(value)}\n`;
      return `${head}\n${blockText(value, `${indent}  `)}`;
    })
    .join("");
}

function entriesOf(mapping: Mapping): number {
  return mapping.entries.reduce((n, [, , value]) => n + 1 + (isMapping(value) ? entriesOf(value) : 0), 0);
}

function givesAKeyTwice(mapping: Mapping): boolean {
  const keys = mapping.entries.map(([key]) => key);
  if (new Set(keys).size !== keys.length) return true;
  return mapping.entries.some(([, , value]) => isMapping(value) && givesAKeyTwice(value));
}

describe("YAML duplicate keys", () => {
  test("a text is refused exactly when one of its mappings gives a key twice, however quoted, block or flow", () => {
    fc.assert(
      fc.property(mappings, (mapping) => {
        const text = mapping.flow || mapping.entries.length === 0 ? flowText(mapping) : blockText(mapping, "");
        expect(yamlKeyCount(text)).toBe(entriesOf(mapping));
        let refused: ConfigSyntaxError | null = null;
        try {
          parseConfigText(text, "yaml");
        } catch (error) {
          if (!(error instanceof ConfigSyntaxError)) throw error;
          refused = error;
        }
        expect(refused !== null).toBe(givesAKeyTwice(mapping));
        if (refused !== null) expect(refused.problem).toMatch(/^duplicate key ".+" \(first on line \d+\)$/);
      }),
      { numRuns: 400 },
    );
  });
});
