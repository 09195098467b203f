/** The web UI's entry point (bundled by ./bundle.ts into the executable, served at /ui by src/api/ui.ts). */
import { render } from "preact";
import { App } from "./app.tsx";

const root = document.getElementById("app");
if (root !== null) render(<App />, root);
