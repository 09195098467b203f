/**
 * How many mapping keys a YAML text spells out, duplicates included, counted in one pass without a YAML parser.
 * ./syntax.ts compares it with the number of keys of the value Bun.YAML.parse made of the same text: a key given
 * twice in one mapping leaves one key fewer in the value (Bun keeps the last), so when the two numbers are equal no
 * key is given twice, and only when they differ is the text searched with a parser (./yaml-duplicates.ts, ~20 times
 * the cost of Bun's parse). The count must never miss a key; counting one too many only costs that search.
 *
 * It follows the YAML a configuration file is written in: block mappings and sequences, flow mappings and sequences
 * (over several lines too), plain and quoted scalars, block scalars as a key's value (`key: |`), comments, anchors and
 * aliases (Bun gives an alias the anchored object itself, counted once), one leading `---`. It is null for the rest,
 * which the parser then searches: merge keys (they bring in keys the text does not spell), tags, explicit keys (`?`),
 * other block scalars (`- |`), directives, more than one document, an alias or a flow collection as a key (`[a, b]: 1`,
 * `{[a]: 1}`: Bun makes such a key a string, "a,b", and ./syntax.ts has the parser refuse it).
 *
 * Counted as a key: in block context, a node followed by `:` and a space or the end of its line; an entry of a flow
 * mapping (`{a, b: 1}` has two); an entry of a flow sequence that holds a `:` (a mapping of one key: `[a: 1]`). The
 * text is one Bun has read, so where YAML allows no key (in quotes, a comment, a plain scalar) none is looked for.
 */

const LF = 10;
const SPACE = 32;
const TAB = 9;
const CR = 13;
const HASH = 35;
const COLON = 58;
const COMMA = 44;
const DASH = 45;
const DOUBLE = 34;
const SINGLE = 39;
const BACKSLASH = 92;
const AMPERSAND = 38;
const PIPE = 124;
const GREATER = 62;
const PLUS = 43;
const DIGIT_1 = 49;
const DIGIT_9 = 57;
const STAR = 42;
const OPEN_MAP = 123;
const CLOSE_MAP = 125;
const OPEN_SEQ = 91;
const CLOSE_SEQ = 93;

/** Space within a line (a CR is the first half of a CRLF). */
const blank = (c: number): boolean => c === SPACE || c === TAB || c === CR;
/** The end of a line: a line feed, or the end of the text (NaN). */
const ends = (c: number): boolean => c === LF || Number.isNaN(c);
const flowIndicator = (c: number): boolean => c === COMMA || c === OPEN_SEQ || c === CLOSE_SEQ || c === OPEN_MAP || c === CLOSE_MAP;
/** Characters that start what the count does not follow where it meets them: ? & * ! | > % @ ` # (see the module comment). */
const unfollowed = (c: number): boolean =>
  c === 63 || c === AMPERSAND || c === STAR || c === 33 || c === PIPE || c === GREATER || c === 37 || c === 64 || c === 96 || c === HASH;

/** Thrown where the count does not follow the text (see the module comment). */
class Unfollowed extends Error {}

const give = (): never => {
  throw new Unfollowed();
};

/** Number of mapping keys `text` spells out; null when it uses YAML the count does not follow. */
export function yamlKeyCount(text: string): number | null {
  // A merge key brings in keys the text does not spell; Bun also reads a quoted "<<" as one.
  if (text.includes("<<")) return null;
  try {
    return count(text);
  } catch (error) {
    if (error instanceof Unfollowed) return null;
    throw error;
  }
}

function count(text: string): number {
  const at = (i: number): number => text.charCodeAt(i);
  const skipBlank = (i: number): number => {
    while (blank(at(i))) i++;
    return i;
  };
  const lineEnd = (i: number): number => {
    const lf = text.indexOf("\n", i);
    return lf === -1 ? text.length : lf;
  };
  /** After a quoted scalar opened at `i` (over several lines too). */
  const quoted = (i: number): number => {
    const quote = at(i);
    for (let j = i + 1; j < text.length; j++) {
      const c = at(j);
      if (quote === DOUBLE && c === BACKSLASH) j++;
      else if (c === quote) {
        if (quote === SINGLE && at(j + 1) === SINGLE) j++;
        else return j + 1;
      }
    }
    return give();
  };
  /** The text's first character, past a byte order mark. */
  const first = at(0) === 0xfeff ? 1 : 0;
  /** After a comment, when `i` is at one: `#` at the start of a line or after a space. */
  const comment = (i: number): number | null => (at(i) === HASH && (i === first || blank(at(i - 1)) || at(i - 1) === LF) ? lineEnd(i) : null);

  /** After the name of the anchor or alias at `i` (its `&` or `*`). */
  const name = (i: number): number => {
    let j = i + 1;
    while (!ends(at(j)) && !blank(at(j)) && !flowIndicator(at(j))) j++;
    return j;
  };

  let keys = 0;
  /** After the flow collection opened at `i`, its keys counted. */
  const flow = (i: number): number => {
    // Per open collection: a mapping (true) or a sequence, and whether its current entry holds something (a
    // mapping's) or a `:` (a sequence's): either makes the entry a key when it ends.
    const mappings: boolean[] = [];
    const entries: boolean[] = [];
    /** Per open collection: whether its current entry has had its `:` (before it, a mapping's entry is its key). */
    const values: boolean[] = [];
    /** Whether a node at `top` is a key of a flow mapping (`{[a]: 1}`, `{[a]}`, `{*k}`): not followed. */
    const inKey = (top: number): boolean => mappings[top] === true && values[top] !== true;
    const close = () => {
      if (entries[entries.length - 1] === true) keys++;
    };
    /** After a quoted scalar or a collection, a `:` is a value indicator even with no space after it. */
    let adjacent = false;
    /** After a plain scalar, the next line goes on with it up to an indicator (`"` there is a character of it). */
    let plain = false;
    /** After a collection or an alias: a `:` now makes it a key, which the count does not follow. */
    let collection = false;
    let j = i;
    for (;;) {
      const c = at(j);
      if (Number.isNaN(c)) give();
      if (blank(c) || c === LF) {
        j++;
        continue;
      }
      const afterComment = comment(j);
      if (afterComment !== null) {
        j = afterComment;
        plain = false;
        continue;
      }
      const top = mappings.length - 1;
      const indicator = flowIndicator(c) || (c === COLON && (adjacent || blank(at(j + 1)) || ends(at(j + 1)) || flowIndicator(at(j + 1))));
      if (plain && !indicator) {
        j = flowPlain(j);
        continue;
      }
      plain = false;
      const afterCollection = collection;
      collection = false;
      if (c === OPEN_MAP || c === OPEN_SEQ) {
        if (inKey(top)) give();
        if (mappings[top] === true) entries[top] = true;
        mappings.push(c === OPEN_MAP);
        entries.push(false);
        values.push(false);
        adjacent = false;
        j++;
      } else if (c === CLOSE_MAP || c === CLOSE_SEQ) {
        if (mappings[top] !== (c === CLOSE_MAP)) give();
        close();
        mappings.pop();
        entries.pop();
        values.pop();
        j++;
        if (mappings.length === 0) return j;
        adjacent = true;
        collection = true;
      } else if (c === COMMA) {
        close();
        entries[top] = false;
        values[top] = false;
        adjacent = false;
        j++;
      } else if (c === COLON && indicator) {
        if (afterCollection) give();
        entries[top] = true;
        values[top] = true;
        adjacent = false;
        j++;
      } else if (c === DOUBLE || c === SINGLE) {
        if (mappings[top] === true) entries[top] = true;
        j = quoted(j);
        adjacent = true;
      } else if (c === AMPERSAND || c === STAR) {
        // An anchor (of the node after it) or an alias (a node).
        if (c === STAR && inKey(top)) give();
        if (mappings[top] === true) entries[top] = true;
        j = name(j);
        adjacent = false;
        collection = c === STAR;
      } else if (unfollowed(c) || c === COLON || (c === DASH && (blank(at(j + 1)) || ends(at(j + 1))))) {
        give();
      } else {
        if (mappings[top] === true) entries[top] = true;
        j = flowPlain(j);
        adjacent = false;
        plain = true;
      }
    }
  };
  /** After the part on this line of a plain scalar in a flow collection: up to an indicator or a comment. */
  const flowPlain = (i: number): number => {
    let j = i + 1;
    for (;;) {
      const d = at(j);
      if (ends(d) || flowIndicator(d)) return j;
      if (d === COLON && (blank(at(j + 1)) || ends(at(j + 1)) || flowIndicator(at(j + 1)))) return j;
      if (blank(d) && at(j + 1) === HASH) return j;
      j++;
    }
  };
  /** After the block node at `i` (not a key, a sequence entry or a comment): a quoted scalar, a flow collection or a plain scalar. */
  const node = (i: number): number => {
    const c = at(i);
    if (c === DOUBLE || c === SINGLE) return quoted(i);
    if (c === OPEN_MAP || c === OPEN_SEQ) return flow(i);
    if (unfollowed(c) || c === COLON || c === COMMA || c === CLOSE_MAP || c === CLOSE_SEQ) give();
    // A plain scalar, up to a value indicator, a comment or the end of the line.
    let j = i + 1;
    for (;;) {
      const d = at(j);
      if (ends(d) || (d === COLON && (blank(at(j + 1)) || ends(at(j + 1)))) || (blank(d) && at(j + 1) === HASH)) return j;
      j++;
    }
  };
  /**
   * The end of the last line of the block scalar whose header (`|`, `>-`, `|2`) is at `i`, the value of a key at
   * `column`: its lines are those indented more than the key, and blank lines.
   */
  const blockScalar = (i: number, column: number): number => {
    let j = i + 1;
    while (at(j) === PLUS || at(j) === DASH || (at(j) >= DIGIT_1 && at(j) <= DIGIT_9)) j++;
    j = rest(j);
    while (j < text.length) {
      const next = j + 1;
      let k = next;
      while (at(k) === SPACE) k++;
      if (k - next <= column && !ends(at(skipBlank(k)))) break;
      j = lineEnd(next);
    }
    return j;
  };
  /** `i` past the blanks and a comment after a node: the end of its line, or the text does not follow. */
  const rest = (i: number): number => {
    const j = skipBlank(i);
    if (ends(at(j))) return j;
    return comment(j) ?? give();
  };

  let content = false;
  /**
   * When the last line ended in a plain scalar, the column its lines must be indented past to go on with it (that
   * of its key, or of its `-`): such a line is text, whatever it holds (`"` too), or YAML Bun refused.
   */
  let plainColumn = -1;
  let i = first;
  while (i < text.length) {
    const lineStart = i;
    while (at(i) === SPACE) i++;
    const indent = i - lineStart;
    i = skipBlank(i);
    if (ends(at(i))) {
      i++;
      continue;
    }
    const afterComment = comment(i);
    if (afterComment !== null) {
      plainColumn = -1;
      i = afterComment + 1;
      continue;
    }
    if (plainColumn >= 0 && indent > plainColumn) {
      i = lineEnd(i) + 1;
      continue;
    }
    plainColumn = -1;
    if (i === lineStart && (text.startsWith("---", i) || text.startsWith("...", i)) && (blank(at(i + 3)) || ends(at(i + 3)))) {
      // One `---` before any content starts the one document; anything else is a stream of several.
      if (content || at(i) !== DASH) give();
      content = true;
      i = rest(i + 3) + 1;
      continue;
    }
    content = true;
    // Sequence entries (`- `, `- - `), then a node's anchor.
    let parent = indent;
    while (at(i) === DASH && (blank(at(i + 1)) || ends(at(i + 1)))) {
      parent = i - lineStart;
      i = skipBlank(i + 1);
    }
    if (at(i) === AMPERSAND) i = skipBlank(name(i));
    if (ends(at(i)) || comment(i) !== null) {
      i = rest(i) + 1;
      continue;
    }
    if (at(i) === STAR) {
      // An alias: an entry of a sequence; as a key (`*a : 1`) it is not followed.
      i = name(i);
      if (at(skipBlank(i)) === COLON) give();
      i = rest(i) + 1;
      continue;
    }
    const column = i - lineStart;
    const flowNode = at(i) === OPEN_MAP || at(i) === OPEN_SEQ;
    const quotedOrFlow = flowNode || at(i) === DOUBLE || at(i) === SINGLE;
    i = node(i);
    const after = skipBlank(i);
    if (at(after) === COLON && (blank(at(after + 1)) || ends(at(after + 1)))) {
      // A flow collection as a key (`[a, b]: 1`): not followed (see the module comment).
      if (flowNode) give();
      keys++;
      let value = skipBlank(after + 1);
      if (at(value) === AMPERSAND) value = skipBlank(name(value));
      const c = at(value);
      if (ends(c) || comment(value) !== null) i = value;
      else if (c === STAR) i = name(value);
      else if (c === PIPE || c === GREATER) i = blockScalar(value, column);
      else if (c === DOUBLE || c === SINGLE) i = quoted(value);
      else if (c === OPEN_MAP || c === OPEN_SEQ) i = flow(value);
      else {
        // A plain scalar to the end of the line; a value indicator in it is not for this count (Bun reads none).
        const end = node(value);
        if (!ends(at(end)) && at(skipBlank(end)) !== HASH) give();
        i = end;
        plainColumn = column;
      }
    } else if (!quotedOrFlow) {
      plainColumn = parent;
    }
    i = rest(i) + 1;
  }
  return keys;
}
