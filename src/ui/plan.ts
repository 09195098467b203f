/**
 * An apply's changes as the Apply panel shows them (POST /apply's report), and how two lists of changes differ.
 * The state can change between the plan the user saw and the apply (another client PATCHes), so the panel plans
 * again right before it applies and applies only the plan that was confirmed; afterwards it says when the
 * changes made were not the ones confirmed (the state changed between the second plan and the apply).
 */

import { isolatedId } from "../contract/ids.ts";

/** One change of POST /apply's report. */
export interface Change {
  readonly action: string;
  readonly service: string;
  readonly backend: string | null;
  readonly details: readonly string[];
  readonly status: string;
  readonly error?: string;
}

/** "update web/b1 (weight 100 -> 0)", each id through isolatedId, as the page draws ids in a sentence. */
function changeText(c: Change): string {
  const target = c.backend === null ? isolatedId(c.service) : `${isolatedId(c.service)}/${isolatedId(c.backend)}`;
  return `${c.action} ${target}${c.details.length === 0 ? "" : ` (${c.details.join("; ")})`}`;
}

/** What a change does, without how it went (a plan's "planned" and an apply's "done" are the same change). */
function key(c: Change): string {
  return JSON.stringify([c.action, c.service, c.backend, c.details]);
}

/** The changes of `now` that `before` lacks (added), and those of `before` that `now` lacks (missing). */
function planDifference(before: readonly Change[], now: readonly Change[]): { added: Change[]; missing: Change[] } {
  const take = (from: readonly Change[], minus: readonly Change[]): Change[] => {
    const left = new Map<string, number>();
    for (const c of minus) left.set(key(c), (left.get(key(c)) ?? 0) + 1);
    return from.filter((c) => {
      const n = left.get(key(c)) ?? 0;
      if (n > 0) left.set(key(c), n - 1);
      return n === 0;
    });
  };
  return { added: take(now, before), missing: take(before, now) };
}

/** Null when `now` holds the changes of `before`; else the sentences naming what differs, between `head` and `tail`. */
function differenceMessage(
  before: readonly Change[],
  now: readonly Change[],
  words: { readonly head: string; readonly added: string; readonly missing: string; readonly tail?: string },
): string | null {
  const { added, missing } = planDifference(before, now);
  if (added.length === 0 && missing.length === 0) return null;
  const listed = (label: string, changes: readonly Change[]) => (changes.length === 0 ? [] : [`${label}: ${changes.map(changeText).join(", ")}`]);
  return [words.head, ...listed(words.added, added), ...listed(words.missing, missing), ...(words.tail === undefined ? [] : [words.tail])].join(". ");
}

/** Null when the plan made just before applying is the one shown; else why nothing was applied. */
export function replanMessage(shown: readonly Change[], now: readonly Change[]): string | null {
  return differenceMessage(shown, now, {
    head: "The plan changed since it was shown (the state changed meanwhile), so nothing was applied",
    added: "new",
    missing: "no longer planned",
    tail: "Check the new plan below; Apply this plan applies it",
  });
}

/** Null when the apply made exactly the confirmed changes; else what differed. */
export function appliedMessage(confirmed: readonly Change[], applied: readonly Change[]): string | null {
  return differenceMessage(confirmed, applied, {
    head: "The apply did not match the confirmed plan (the state changed meanwhile)",
    added: "also made",
    missing: "not made",
  });
}
