/** isRecord: an object whose keys can be read; not null, not an array (a class instance is one). */
import { expect, test } from "bun:test";
import { isRecord } from "../../src/record.ts";

test("objects are records, class instances and null-prototype objects included; null, arrays and primitives are not", () => {
  for (const value of [{}, { a: 1 }, Object.create(null), new Date(0), new Map()]) expect(isRecord(value)).toBe(true);
  for (const value of [null, undefined, [], [1], "{}", 1, true]) expect(isRecord(value)).toBe(false);
});
