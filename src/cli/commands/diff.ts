/** `gorb diff -f FILE`: what `gorb apply -f FILE` would change (create / update / recreate / delete); changes nothing. */
import { defineCommand } from "citty";
import { withExamples } from "../_command.ts";
import { jsonArgs, serverArgs } from "../_shared.ts";
import { fileArgs, runDeclarative } from "./apply.ts";

const diff = defineCommand({
  meta: { name: "gorb diff", description: "Show what gorb apply -f FILE would change, without changing anything" },
  args: { ...fileArgs, ...serverArgs, ...jsonArgs },
  run: ({ args }) => runDeclarative(args, "gorb diff", true),
});

export default withExamples(diff, ["gorb diff -f /etc/gorb/services.yaml", "gorb diff -f services.toml --json"]);
