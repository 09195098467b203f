/**
 * The version of gorb, read from package.json. The bundler inlines the value, so the compiled executable
 * carries it without reading any file at run time.
 */
import { version } from "../package.json" with { type: "json" };

/** VERSION is package.json's "version" ("0.1.0"). */
export const VERSION: string = version;
