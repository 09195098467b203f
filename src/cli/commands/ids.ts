/**
 * `gorb __ids [SERVICE]` (hidden: neither in the help nor completed): what the completion scripts offer for an
 * argument that names a service or a backend that exists, read from the daemon: its service ids, or SERVICE's
 * backend ids, one per line. With --direct (on the line being completed), the kernel's instead, as --direct names
 * them: its services (tcp:ADDR:PORT, fwmark:N), or SERVICE's destinations (ADDR:PORT). The scripts run it at a TAB
 * with the --server, --token, --token-file and --ca of the line being completed (else GORB_SERVER, GORB_TOKEN, ...
 * as for any command), and discard what it says on stderr.
 * A TAB must not hang: the daemon has COMPLETION_TIMEOUT_MS to answer. Its errors are any command's (an unreachable
 * daemon exits 3, an unknown service 4).
 */
import { defineCommand } from "citty";
import { boolArg, directArgs, optionalPositional, serverArgs } from "../_shared.ts";
import { GorbClient, clientOptionsFrom } from "../client.ts";
import { cliContext } from "../context.ts";

/** How long a completion waits for the daemon. */
const COMPLETION_TIMEOUT_MS = 2_000;

export default defineCommand({
  meta: { name: "gorb __ids", description: "The ids the completion scripts offer (service ids, or SERVICE's backend ids)", hidden: true },
  args: {
    service: { type: "positional", required: false, description: "The service whose backend ids to print" },
    ...serverArgs,
    ...directArgs,
  },
  async run({ args }) {
    const ctx = cliContext();
    if (boolArg(args, "direct") === true) {
      const ids = await (await import("../direct.ts")).directIds(optionalPositional(args, "service"));
      ctx.io.stdout(ids.map((id) => `${id}\n`).join(""));
      return 0;
    }
    const api = new GorbClient({ ...clientOptionsFrom(args, ctx.env, ctx.signal), timeoutMs: COMPLETION_TIMEOUT_MS });
    const service = optionalPositional(args, "service");
    const ids = service === undefined ? await api.listServiceIds() : (await api.getService(service)).backends;
    ctx.io.stdout(ids.map((id) => `${id}\n`).join(""));
    return 0;
  },
});
