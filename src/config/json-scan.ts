/**
 * A small JSON reader that only keeps positions: the line of every object key (by path) and, for a text that
 * is not valid JSON, the line and column of the first error. JSON.parse gives the values; it says neither.
 * A key given twice in one object is an error here (JSON.parse keeps the last one without a word).
 * A UTF-8 byte order mark at the start (Notepad, PowerShell's Out-File) is not part of the text, as in YAML and TOML.
 */

/** Where a key is: its path (keys lower-cased, list indexes as numbers) and its 1-based line. */
export interface JsonPositions {
  /** Line of each key, by JSON.stringify of its lower-cased path. */
  readonly lines: ReadonlyMap<string, number>;
  /** The first syntax error, or null when the text is valid JSON. */
  readonly error: { readonly line: number; readonly column: number; readonly message: string } | null;
}

class JsonSyntax extends Error {
  constructor(
    readonly offset: number,
    message: string,
  ) {
    super(message);
  }
}

/** The key of a path in JsonPositions.lines. */
export function pathKey(path: readonly (string | number)[]): string {
  return JSON.stringify(path.map((p) => (typeof p === "string" ? p.toLowerCase() : p)));
}

/** Scan `text`; see JsonPositions. A leading byte order mark is skipped, and columns on line 1 count from after it. */
export function scanJson(text: string): JsonPositions {
  const bom = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const starts = [bom];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) starts.push(i + 1);
  const lineOf = (offset: number): number => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((starts[mid] ?? 0) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
  const lines = new Map<string, number>();
  let pos = bom;

  const fail = (message: string): never => {
    throw new JsonSyntax(pos, message);
  };
  const found = (): string => (pos >= text.length ? "the end of the file" : JSON.stringify(text[pos]));
  const ws = () => {
    while (pos < text.length && " \t\r\n".includes(text[pos] ?? "")) pos++;
  };
  const expect = (ch: string) => {
    if (text[pos] !== ch) fail(`expected ${JSON.stringify(ch)}, found ${found()}`);
    pos++;
  };
  const string = (): string => {
    const start = pos;
    expect('"');
    for (;;) {
      if (pos >= text.length) {
        pos = start;
        fail("unterminated string");
      }
      const ch = text[pos] ?? "";
      if (ch === '"') break;
      if (ch === "\\") {
        pos++;
        const esc = text[pos] ?? "";
        if (esc === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(pos + 1, pos + 5))) fail("bad \\u escape");
          pos += 4;
        } else if (!'"\\/bfnrt'.includes(esc) || esc === "") fail(`bad escape \\${esc}`);
      } else if (ch.charCodeAt(0) < 0x20) fail("control character in a string");
      pos++;
    }
    pos++;
    return JSON.parse(text.slice(start, pos)) as string;
  };
  const number = () => {
    const match = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(pos, pos + 400));
    if (match === null) fail(`expected a value, found ${found()}`);
    pos += match?.[0].length ?? 0;
  };
  const value = (path: (string | number)[], depth: number): void => {
    if (depth > 200) fail("nested too deeply");
    ws();
    const ch = text[pos];
    if (ch === "{") {
      pos++;
      ws();
      if (text[pos] === "}") {
        pos++;
        return;
      }
      const seen = new Map<string, number>();
      for (;;) {
        ws();
        const at = pos;
        if (text[pos] !== '"') fail(`expected a key in double quotes, found ${found()}`);
        const key = string();
        const first = seen.get(key);
        if (first !== undefined) {
          pos = at;
          fail(`duplicate key ${JSON.stringify(key)} (first on line ${first})`);
        }
        seen.set(key, lineOf(at));
        const keyPath = [...path, key];
        lines.set(pathKey(keyPath), lineOf(at));
        ws();
        expect(":");
        value(keyPath, depth + 1);
        ws();
        if (text[pos] === ",") {
          pos++;
          continue;
        }
        if (text[pos] === "}") {
          pos++;
          return;
        }
        fail(`expected "," or "}", found ${found()}`);
      }
    }
    if (ch === "[") {
      pos++;
      ws();
      if (text[pos] === "]") {
        pos++;
        return;
      }
      for (let i = 0; ; i++) {
        value([...path, i], depth + 1);
        ws();
        if (text[pos] === ",") {
          pos++;
          continue;
        }
        if (text[pos] === "]") {
          pos++;
          return;
        }
        fail(`expected "," or "]", found ${found()}`);
      }
    }
    if (ch === '"') {
      string();
      return;
    }
    for (const word of ["true", "false", "null"]) {
      if (text.startsWith(word, pos)) {
        pos += word.length;
        return;
      }
    }
    number();
  };

  try {
    value([], 0);
    ws();
    if (pos < text.length) fail(`unexpected ${found()} after the end of the document`);
    return { lines, error: null };
  } catch (error) {
    if (!(error instanceof JsonSyntax)) throw error;
    const line = lineOf(error.offset);
    return { lines, error: { line, column: error.offset - (starts[line - 1] ?? 0) + 1, message: error.message } };
  }
}
