/**
 * Ids as the page shows them. The API's id rules let bidirectional controls through: "\u202Ebew" (RIGHT-TO-LEFT
 * OVERRIDE, then "bew") is drawn as "web", so one service could pass for another. The page shows those controls as
 * marks (⟨U+202E⟩), and puts each id it draws in its own <bdi> (widgets.tsx `Id`), so an id cannot reorder the text
 * around it. The API, the data-* attributes and the calls keep the id as it is.
 */

/** ALM, LRM, RLM; LRE, RLE, PDF, LRO, RLO; LRI, RLI, FSI, PDI. */
const BIDI_CONTROLS = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/gu;

/** The text with each bidirectional control shown as a mark, e.g. "⟨U+202E⟩bew". */
export function visibleText(text: string): string {
  return text.replace(BIDI_CONTROLS, (c) => `⟨U+${(c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}⟩`);
}
