/**
 * Loading a configuration file for `gorb serve`: read it, parse it by its extension, check it (./schema.ts),
 * and on any problem throw one ConfigError that names the file, the line and the path (./file-text.ts).
 * A file is taken whole or not at all: nothing of a file with an error is used.
 */
import type { Stats } from "node:fs";
import { ConfigError, readConfigText, readText } from "./file-text.ts";
import { readConfigDocument, type ConfigDocument } from "./schema.ts";
import { formatOf, type ConfigFormat } from "./syntax.ts";

export { ConfigError };

/** A configuration file, read and checked. */
export interface ConfigFile extends ConfigDocument {
  readonly file: string;
  readonly format: ConfigFormat;
  /**
   * The Stats of the descriptor the text was read from (loadConfigFile): what a file holding a secret is checked on
   * (./daemon/secrets.ts), not the path again, which may name another file by then.
   */
  readonly stat?: Stats;
}

/** Check the text of the configuration file `file` (its name chooses the format). Throws ConfigError. */
export function parseConfigFile(file: string, text: string): ConfigFile {
  return { file, format: formatOf(file), ...readText(file, text, readConfigDocument) };
}

/** Read and check the configuration file at `file`. Throws ConfigError. */
export async function loadConfigFile(file: string): Promise<ConfigFile> {
  let stat: Stats | undefined;
  const text = await readConfigText(file, (s) => {
    stat = s;
  });
  return { ...parseConfigFile(file, text), ...(stat !== undefined ? { stat } : {}) };
}
