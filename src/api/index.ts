/** gorb's REST API (Elysia). Re-exports only. */
export { createApp, type AppOptions, type GorbApi } from "./app.ts";
export { DEFAULT_BODY_LIMIT_BYTES } from "./body.ts";
