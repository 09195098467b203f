/**
 * Ids as people read them (visibleText, src/contract/ids.ts: the web UI, and the CLI on a terminal): a bidirectional
 * or C1 control in an id is shown as a mark, so "\u202Ebew" (drawn as "web" by the override) cannot pass for the
 * service "web", nor "\u009b2J" clear a terminal; other text, right-to-left letters included, is shown as it is.
 */
import { expect, test } from "bun:test";
import { visibleText } from "../../../src/contract/ids.ts";

test("a right-to-left override is shown as a mark, so the id cannot look like another", () => {
  expect(visibleText("\u202Ebew")).toBe("⟨U+202E⟩bew");
  expect(visibleText("\u202Ebew")).not.toBe(visibleText("web"));
  expect(visibleText("b\u202E1\u202C")).toBe("b⟨U+202E⟩1⟨U+202C⟩");
});

test("every bidirectional control is shown: marks, embeddings, overrides, isolates", () => {
  const controls = ["\u061C", "\u200E", "\u200F", "\u202A", "\u202B", "\u202C", "\u202D", "\u202E", "\u2066", "\u2067", "\u2068", "\u2069"];
  for (const c of controls) {
    const shown = visibleText(`a${c}b`);
    expect(shown).toBe(`a⟨U+${(c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}⟩b`);
  }
});

test("ids without controls are unchanged, right-to-left letters and joiners included", () => {
  for (const id of ["web", "b1", "x".repeat(256), "שלום", "خدمة-1", "👩\u200D💻", "api.v2_blue"]) expect(visibleText(id)).toBe(id);
});

test("every C1 control is shown (U+009B is CSI to a terminal that takes 8-bit controls); C0 controls never reach an id", () => {
  for (let code = 0x80; code <= 0x9f; code++) {
    expect(visibleText(`a${String.fromCodePoint(code)}b`)).toBe(`a⟨U+${code.toString(16).toUpperCase().padStart(4, "0")}⟩b`);
  }
  expect(visibleText("\u009b2J web")).toBe("⟨U+009B⟩2J web");
  // U+00A0 (no-break space) is past the C1 range: shown as it is.
  expect(visibleText("a\u00a0b")).toBe("a\u00a0b");
});
