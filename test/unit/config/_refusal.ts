/** Shared by the configuration tests: what a configuration text is refused with. */
import { ConfigError, parseConfigFile } from "../../../src/config/load.ts";

/** The message parseConfigFile throws for `text` in a file named `name`; throws when the text is accepted. */
export function refusal(name: string, text: string): string {
  try {
    parseConfigFile(name, text);
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error(`${name} was accepted`);
}
