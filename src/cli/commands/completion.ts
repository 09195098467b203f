/**
 * `gorb completion bash|zsh|fish`: print a completion script generated from the command tree.
 */
import { defineCommand } from "citty";
import { withExamples } from "../_command.ts";
import { positional } from "../_shared.ts";
import { bashScript, completionTree, fishScript, zshScript } from "../completion.ts";
import { cliContext } from "../context.ts";
import { UsageError } from "../errors.ts";

const SHELLS = { bash: bashScript, zsh: zshScript, fish: fishScript } as const;

const completion = defineCommand({
  meta: { name: "gorb completion", description: "Print a shell completion script (bash, zsh or fish)" },
  args: {
    shell: { type: "positional", description: "bash, zsh or fish", valueHint: "bash|zsh|fish" },
  },
  async run({ args }) {
    const shell = positional(args, "shell");
    if (!Object.hasOwn(SHELLS, shell)) throw new UsageError(`unknown shell ${JSON.stringify(shell)}: use bash, zsh or fish`);
    const generate = SHELLS[shell as keyof typeof SHELLS];
    const ctx = cliContext();
    ctx.io.stdout(generate("gorb", await completionTree(ctx.root)));
    return 0;
  },
});

export default withExamples(completion, [
  "source <(gorb completion bash)              # in ~/.bashrc",
  "gorb completion zsh > \"${fpath[1]}/_gorb\"  # then restart zsh",
  "gorb completion fish > ~/.config/fish/completions/gorb.fish",
]);
