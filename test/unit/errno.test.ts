/** errorCode: the code a thrown value carries as text, whatever was thrown. */
import { describe, expect, test } from "bun:test";
import { errorCode } from "../../src/errno.ts";

describe("errorCode", () => {
  test("a system error's errno name", () => {
    expect(errorCode(Object.assign(new Error("no such file"), { code: "ENOENT" }))).toBe("ENOENT");
  });

  test("empty for a value without a code as text: null, undefined, a string, an error without one, a numeric code", () => {
    for (const thrown of [null, undefined, "ENOENT", 2, new Error("plain"), { code: 2 }, { code: null }]) expect(errorCode(thrown)).toBe("");
  });
});
