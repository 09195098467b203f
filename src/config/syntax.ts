/**
 * Reading a configuration file's text: YAML (Bun.YAML), JSON or TOML (Bun.TOML), chosen by the file's
 * extension. Bun's parsers say what is wrong but not where, so the line of a syntax error is found here:
 * JSON by ./json-scan.ts, YAML and TOML as the first line after the longest run of leading lines that still
 * parses (a syntax error cannot be repaired by what follows it, so every prefix that includes it fails).
 */
import { scanJson } from "./json-scan.ts";

/** The formats of a configuration file. */
export type ConfigFormat = "yaml" | "json" | "toml";

/** ConfigSyntaxError: the text is not valid YAML, JSON or TOML; `line` (1-based) says where. */
export class ConfigSyntaxError extends Error {
  override readonly name = "ConfigSyntaxError";
  readonly line: number;
  readonly column: number | null;
  readonly problem: string;

  constructor(format: ConfigFormat, line: number, column: number | null, problem: string) {
    super(`line ${line}${column === null ? "" : `, column ${column}`}: ${format.toUpperCase()} syntax error: ${problem}`);
    this.line = line;
    this.column = column;
    this.problem = problem;
  }
}

/** The format of a file from its extension: .json, .toml, else YAML (.yaml, .yml; YAML also reads most JSON). */
export function formatOf(file: string): ConfigFormat {
  const lower = file.toLowerCase();
  if (lower.endsWith(".json")) return "json";
  if (lower.endsWith(".toml")) return "toml";
  return "yaml";
}

function rawParse(text: string, format: ConfigFormat): unknown {
  switch (format) {
    case "yaml":
      return Bun.YAML.parse(text);
    case "toml":
      return Bun.TOML.parse(text);
    case "json":
      return JSON.parse(text);
  }
}

function problemOf(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/^(YAML|TOML|JSON) Parse error:\s*/i, "");
}

/** The first line of `text` that no continuation can make parse (see the module comment). */
function firstBadLine(text: string, format: ConfigFormat): number {
  const lines = text.split("\n");
  for (let keep = lines.length - 1; keep > 0; keep--) {
    try {
      rawParse(lines.slice(0, keep).join("\n"), format);
      return keep + 1;
    } catch {
      // still broken: look at a shorter prefix
    }
  }
  return 1;
}

/** The value of a configuration text; throws ConfigSyntaxError with the line of the problem. */
export function parseConfigText(text: string, format: ConfigFormat): unknown {
  if (format === "json") {
    // JSON.parse is many times faster than the scan; the scan runs only to say where a text that fails is wrong.
    try {
      return JSON.parse(text) as unknown;
    } catch {
      const scan = scanJson(text);
      if (scan.error !== null) throw new ConfigSyntaxError("json", scan.error.line, scan.error.column, scan.error.message);
    }
  }
  try {
    return rawParse(text, format);
  } catch (error) {
    throw new ConfigSyntaxError(format, firstBadLine(text, format), null, problemOf(error));
  }
}
