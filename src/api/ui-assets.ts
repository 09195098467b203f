/**
 * The web UI's bundle as strings. The macro import runs src/ui/bundle.ts when this module is transpiled: at
 * `bun build --compile` the strings are inlined into the executable; from source (`bun src/main.ts`) the bundle
 * is built when the UI is first served (./ui.ts imports this module lazily, so nothing else pays for it).
 */
import { uiBundle } from "../ui/bundle.ts" with { type: "macro" };

export const UI_BUNDLE = uiBundle();
