/**
 * The root command. Sub-commands are loaded lazily, so `gorb --version` and the client commands never load
 * the daemon's stack (Elysia, core, libnl).
 */
import { defineCommand } from "citty";
import { VERSION } from "../version.ts";
import { withExamples } from "./_command.ts";

/** root is the `gorb` command. */
export const root = withExamples(
  defineCommand({
    meta: {
      name: "gorb",
      version: VERSION,
      description: "IPVS load balancer control plane: a daemon with a REST API and health checks, and its client",
    },
    subCommands: {
      serve: () => import("./commands/serve.ts").then((m) => m.default),
      service: () => import("./commands/service.ts").then((m) => m.default),
      backend: () => import("./commands/backend.ts").then((m) => m.default),
      status: () => import("./commands/status.ts").then((m) => m.default),
      apply: () => import("./commands/apply.ts").then((m) => m.default),
      diff: () => import("./commands/diff.ts").then((m) => m.default),
      reconcile: () => import("./commands/reconcile.ts").then((m) => m.default),
      bgp: () => import("./commands/bgp.ts").then((m) => m.default),
      state: () => import("./commands/state.ts").then((m) => m.default),
      completion: () => import("./commands/completion.ts").then((m) => m.default),
      __ids: () => import("./commands/ids.ts").then((m) => m.default),
    },
  }),
  [
    "gorb serve -l 127.0.0.1:4672 -i eth0",
    "gorb service add web --host 10.0.0.1 --port 80 --method wrr",
    "gorb backend add web b1 --host 10.1.0.1 --pulse http",
    "gorb status --watch",
    "gorb status --direct          # the kernel table, no daemon (root)",
    "gorb diff -f services.yaml    # what gorb apply -f services.yaml would change",
    "gorb --version",
  ],
);
