/** JSON answers: jsonResponsePaced writes, in slices, the text jsonResponse writes in one go. */
import { describe, expect, test } from "bun:test";
import { jsonResponse, jsonResponsePaced } from "../../../src/api/json.ts";
import { turnsDuring } from "../../helpers/turns.ts";

describe("jsonResponsePaced", () => {
  test("answers the bytes, status and headers of jsonResponse, for every kind of value", async () => {
    const values: unknown[] = [
      { dry_run: false, ok: true, changes: [] },
      { a: {}, b: [], c: [[1, [2]], { d: [] }], e: undefined, f: null, g: "tab\tline\nquote\"", h: () => 1 },
      [undefined, () => 1, { x: undefined }, "é🙂", 1.5, true, new Date(0)],
      { nested: { list: [{ deep: [1, 2, { x: "y" }] }] } },
      { withJson: { toJSON: () => ({ as: "json" }) } },
      [],
      {},
      "text",
      42,
      null,
    ];
    for (const value of values) {
      const paced = await jsonResponsePaced(value, 201, { "X-A": "1" });
      const whole = jsonResponse(value, 201, { "X-A": "1" });
      expect(await paced.text()).toBe(await whole.text());
      expect(paced.status).toBe(201);
      expect(paced.headers.get("content-type")).toBe("application/json");
      expect(paced.headers.get("x-a")).toBe("1");
    }
  });

  test("an answer of 100,000 items takes turns of the event loop; its text is JSON.stringify's", async () => {
    const changes = Array.from({ length: 100_000 }, (_, i) => ({ action: "create", service: `s${i}`, backend: null, details: [`ü ${i}`], status: "done" }));
    let response = new Response();
    expect(await turnsDuring(async () => (response = await jsonResponsePaced({ dry_run: false, ok: true, changes })))).toBeGreaterThan(0);
    expect(await response.text()).toBe(JSON.stringify({ dry_run: false, ok: true, changes }, null, "\t"));
  });
});
