/**
 * `gorb reconcile`: ask the daemon to compare the kernel's IPVS table with its state now and repair every
 * difference (what the periodic reconcile does every --reconcile-interval).
 */
import { defineCommand } from "citty";
import { withExamples } from "../_command.ts";
import { boolArg, jsonArgs, serverArgs } from "../_shared.ts";
import { GorbClient, clientOptionsFrom } from "../client.ts";
import { cliContext } from "../context.ts";
import { EXIT } from "../errors.ts";
import { jsonText } from "../../render/format.ts";
import { table } from "../../render/table.ts";
import type { ReconcileReport } from "../../core/repairs.ts";

const reconcile = defineCommand({
  meta: { name: "gorb reconcile", description: "Repair drift of the kernel's IPVS table from the daemon's state now" },
  args: { ...serverArgs, ...jsonArgs },
  async run({ args }) {
    const ctx = cliContext();
    const api = new GorbClient(clientOptionsFrom(args, ctx.env, ctx.signal));
    const report = await api.requestObject<ReconcileReport>("POST", "/reconcile", "a reconcile report", { repairs: "list" });
    const failed = report.repairs.filter((r) => r.status === "failed").length;
    if (boolArg(args, "json") === true) ctx.io.stdout(jsonText(report));
    else if (report.repairs.length === 0) ctx.io.stdout("nothing to repair: the kernel matches gorb's state\n");
    else {
      const rows = report.repairs.map((r) => [
        r.backend === null ? r.service : `${r.service}/${r.backend}`,
        r.reason,
        r.status === "failed" ? `FAILED: ${r.error ?? ""}` : "repaired",
      ]);
      ctx.io.stdout(table(["TARGET", "DIFFERENCE", "RESULT"], rows));
    }
    return failed > 0 ? EXIT.SERVER : EXIT.OK;
  },
});

export default withExamples(reconcile, ["gorb reconcile", "gorb reconcile --json"]);
