/**
 * A configuration file's text: read from disk, parsed by its extension (./syntax.ts) and read with a checker, and on
 * any problem one ConfigError that names the file, the line and the path:
 *
 *   /etc/gorb/gorb.yaml:14: services.web.backends.b1.port: must be 1-65535, got 70000
 *   /etc/gorb/gorb.toml:3: TOML syntax error: Missing value after '='
 */
import { formatPath, PathError } from "../core/path.ts";
import { lineOfPath } from "./locate.ts";
import type { Stats } from "node:fs";
import { FileProblemError, readRegularFile } from "../regular-file.ts";
import { ConfigSyntaxError, formatOf, parseConfigText } from "./syntax.ts";

/** ConfigError: a configuration file that cannot be used, with where and why. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly file: string;
  /** 1-based line of the problem; null when it is not known (the file could not be read). */
  readonly line: number | null;
  /** 1-based column, when known (JSON syntax errors). */
  readonly column: number | null;
  /** Path of the bad value ("services.web.port"); null for a syntax error or an unreadable file. */
  readonly path: string | null;

  constructor(
    file: string,
    where: { readonly line: number | null; readonly column?: number | null },
    path: string | null,
    problem: string,
    options?: { cause?: unknown },
  ) {
    const at = where.line === null ? "" : `:${where.line}${where.column == null ? "" : `:${where.column}`}`;
    super(`${file}${at}: ${path === null ? "" : `${path}: `}${problem}`, options);
    this.file = file;
    this.line = where.line;
    this.column = where.column ?? null;
    this.path = path;
  }
}

/** Parse `text` as `file`'s format and read it with `read`; any problem is a ConfigError naming the line. */
export function readText<T>(file: string, text: string, read: (doc: unknown) => T): T {
  let doc: unknown;
  try {
    doc = parseConfigText(text, formatOf(file));
  } catch (error) {
    if (!(error instanceof ConfigSyntaxError)) throw error;
    throw new ConfigError(file, { line: error.line, column: error.column }, error.path === null ? null : formatPath(error.path), error.detail, { cause: error });
  }
  return located(file, text, () => read(doc));
}

/** `check()`, with a PathError it throws turned into a ConfigError naming the line of its path in `text`. */
export function located<T>(file: string, text: string, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (!(error instanceof PathError)) throw error;
    throw new ConfigError(file, { line: lineOfPath(text, formatOf(file), error.path) }, error.field, error.problem, { cause: error });
  }
}

/** Largest configuration file read (`gorb serve --config`, SIGHUP, `gorb apply -f`, `gorb diff -f`): 64 MiB. */
const CONFIG_FILE_LIMIT = 64 * 1024 * 1024;

/**
 * The text of the file at `file`; a ConfigError saying why it cannot be read otherwise, or why it is not read: not a
 * regular file (a device or a FIFO would be read without end) or over CONFIG_FILE_LIMIT. `check`: see readRegularFile.
 */
export async function readConfigText(file: string, check?: (stat: Stats) => void): Promise<string> {
  try {
    return readRegularFile(file, CONFIG_FILE_LIMIT, check);
  } catch (error) {
    if (!(error instanceof FileProblemError)) throw error;
    throw new ConfigError(file, { line: null }, null, `cannot read the configuration file: ${error.problem}`, { cause: error });
  }
}
