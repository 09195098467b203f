/**
 * Loading a configuration file: read it, parse it by its extension (./syntax.ts), check it (./schema.ts),
 * and on any problem throw one ConfigError that names the file, the line and the path:
 *
 *   /etc/gorb/gorb.yaml:14: services.web.backends.b1.port: must be 1-65535, got 70000
 *   /etc/gorb/gorb.toml:3: TOML syntax error: Missing value after '='
 *
 * A file is taken whole or not at all: nothing of a file with an error is used.
 */
import { readFile } from "node:fs/promises";
import { PathError } from "../core/path.ts";
import { lineOfPath } from "./locate.ts";
import { readConfigDocument, readServicesToSend, type ConfigDocument, type ServicesToSend } from "./schema.ts";
import { ConfigSyntaxError, formatOf, parseConfigText, type ConfigFormat } from "./syntax.ts";

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

/** A configuration file, read and checked. */
export interface ConfigFile extends ConfigDocument {
  readonly file: string;
  readonly format: ConfigFormat;
}

/** Check the text of the configuration file `file` (its name chooses the format). Throws ConfigError. */
export function parseConfigFile(file: string, text: string): ConfigFile {
  return { file, format: formatOf(file), ...readText(file, text, readConfigDocument) };
}

/** Parse `text` as `file`'s format and read it with `read`; any problem is a ConfigError naming the line. */
function readText<T>(file: string, text: string, read: (doc: unknown) => T): T {
  const format = formatOf(file);
  let doc: unknown;
  try {
    doc = parseConfigText(text, format);
  } catch (error) {
    if (!(error instanceof ConfigSyntaxError)) throw error;
    const problem = error.message.replace(/^line \d+(, column \d+)?: /, "");
    throw new ConfigError(file, { line: error.line, column: error.column }, null, problem, { cause: error });
  }
  try {
    return read(doc);
  } catch (error) {
    if (!(error instanceof PathError)) throw error;
    throw new ConfigError(file, { line: lineOfPath(text, format, error.path) }, error.field, error.problem, { cause: error });
  }
}

async function readConfigText(file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const why = code === "ENOENT" ? "no such file" : error instanceof Error ? error.message : String(error);
    throw new ConfigError(file, { line: null }, null, `cannot read the configuration file: ${why}`, { cause: error });
  }
}

/** Read and check the configuration file at `file`. Throws ConfigError. */
export async function loadConfigFile(file: string): Promise<ConfigFile> {
  return parseConfigFile(file, await readConfigText(file));
}

/** A configuration file read for `gorb apply`: its settings checked, its services to send (see readServicesToSend). */
export interface DeclaredFile {
  readonly file: string;
  readonly format: ConfigFormat;
  readonly services: ServicesToSend | null;
}

/** Read the configuration file at `file` for `gorb apply`. Throws ConfigError. */
export async function loadDeclaredFile(file: string): Promise<DeclaredFile> {
  const text = await readConfigText(file);
  return { file, format: formatOf(file), services: readText(file, text, readServicesToSend).services };
}
