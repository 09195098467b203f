/**
 * Shell completion scripts generated from the citty command tree: every command path, its sub-commands, its
 * flags (long names and one-letter aliases) and, for enum flags, their values. The scripts embed that table, so
 * completing never runs gorb.
 *
 * Conventions read from a string argument's valueHint: "a|b|c" lists its choices (completed like an enum's),
 * "file" and "socket" complete file names, "dir" directory names, "[...]" (as `--watch [seconds]`) marks a value that
 * may be left out: what follows such a flag is completed as its value and as what may come next. A hint ending in
 * "..." (`dir...`) marks a flag that may be repeated: zsh offers it again (bash and fish always do).
 *
 * Arguments that name a service or a backend that exists (valueHint "service", "backend": `gorb backend rm web b1`)
 * are completed with the ids the daemon has: the scripts run the hidden `gorb __ids [SERVICE]` (./commands/ids.ts)
 * with the line's --server, --token, --token-file and --ca (and --direct: then the kernel's ids, as --direct names
 * them). That is the only part that runs gorb, and needs the daemon (or, with --direct, the kernel).
 *
 * A value may be given in the flag's word (`--pulse=http`) or the next one (`--pulse http`); both are completed. After
 * "--" every word is an argument, as the runner reads it: no flag and no command is completed there.
 */
import type { ArgsDef } from "citty";
import { type AnyCommand, aliasesOf, argsOf, kebab, metaOf, optionalValue, repeatable, subCommandsOf } from "./_command.ts";

/** One flag of a command. */
export interface CompletionFlag {
  /** Spellings with dashes: ["--listen", "-l"]. */
  readonly names: readonly string[];
  readonly description: string;
  readonly takesValue: boolean;
  /** The value may be left out (`--watch [seconds]`): the next word may as well be another flag or an argument. */
  readonly optionalValue: boolean;
  /** Values to offer (enum flags, and string flags whose valueHint lists choices). */
  readonly values: readonly string[];
  /** Local names to offer as the value: files, directories, or none. */
  readonly localNames: LocalNames;
  /** It may be given more than once, each value counting (`--check-exec-dir`). */
  readonly repeatable: boolean;
}

/** One command of the tree. */
export interface CompletionNode {
  /** Path below the root, e.g. ["service", "add"]; [] for the root. */
  readonly path: readonly string[];
  readonly description: string;
  /** Sub-command names (aliases included). */
  readonly subcommands: readonly { readonly name: string; readonly description: string }[];
  readonly flags: readonly CompletionFlag[];
  /** Values of the first positional argument, when fixed (e.g. completion's shell). */
  readonly positionalValues: readonly string[];
  /** What each positional argument names, in order, when it is an id the daemon has (none after the last given). */
  readonly positionalIds: readonly (IdKind | null)[];
}

/** The ids an argument takes from the daemon: its service ids, or the backend ids of the service named before. */
export type IdKind = "service" | "backend";

/** The connection flags passed on to `gorb __ids`: the line's own, so it asks the daemon the command would. */
const CONNECTION_FLAGS = ["--server", "--token", "--token-file", "--ca"] as const;
/** Passed on too: the command reads the kernel's table instead of the daemon, and so do its ids. */
const DIRECT_FLAG = "--direct";

/** What a value names on the local host, for completion: a file, a directory, or nothing local. */
export type LocalNames = "file" | "dir" | null;

/** The choices a valueHint such as "report|adopt|remove" lists ([] for any other hint). */
function hintChoices(valueHint: string | undefined): string[] {
  return valueHint?.includes("|") === true && !valueHint.startsWith("[") ? valueHint.split("|") : [];
}

/** The local names a valueHint stands for ("file", "socket": files; "dir": directories; "dir...": see repeatable). */
function hintLocalNames(valueHint: string | undefined): LocalNames {
  const hint = valueHint?.replace(/\.\.\.$/, "");
  return hint === "file" || hint === "socket" ? "file" : hint === "dir" ? "dir" : null;
}

function flagsOf(defs: ArgsDef): { flags: CompletionFlag[]; positionalValues: string[]; positionalIds: (IdKind | null)[] } {
  const flags: CompletionFlag[] = [
    { names: ["--help", "-h"], description: "Show help", takesValue: false, optionalValue: false, values: [], localNames: null, repeatable: false },
  ];
  let positionalValues: string[] = [];
  const positionalIds: (IdKind | null)[] = [];
  for (const [name, def] of Object.entries(defs)) {
    if (def.type === "positional") {
      if (positionalValues.length === 0) positionalValues = hintChoices(def.valueHint);
      positionalIds.push(def.valueHint === "service" || def.valueHint === "backend" ? def.valueHint : null);
      continue;
    }
    const alias = "alias" in def && def.alias !== undefined ? (Array.isArray(def.alias) ? def.alias : [def.alias]) : [];
    const names = [`--${kebab(name)}`, ...alias.map((a: string) => (a.length === 1 ? `-${a}` : `--${a}`))];
    const negative = def.type === "boolean" && (def.negativeDescription !== undefined || def.default === true);
    // A --no- form with a description of its own is a flag of its own: zsh and fish show each name's description.
    if (negative && def.negativeDescription === undefined) names.push(`--no-${kebab(name)}`);
    const hint = def.type === "string" ? def.valueHint : undefined;
    flags.push({
      names,
      description: def.description ?? "",
      takesValue: def.type === "string" || def.type === "enum",
      optionalValue: optionalValue(def),
      values: def.type === "enum" ? (def.options ?? []) : hintChoices(hint),
      localNames: hintLocalNames(hint),
      repeatable: repeatable(def),
    });
    if (negative && def.negativeDescription !== undefined) {
      flags.push({ names: [`--no-${kebab(name)}`], description: def.negativeDescription, takesValue: false, optionalValue: false, values: [], localNames: null, repeatable: false });
    }
  }
  while (positionalIds.length > 0 && positionalIds[positionalIds.length - 1] === null) positionalIds.pop();
  return { flags, positionalValues, positionalIds };
}

/** completionTree walks every command (resolving lazy ones) into a flat list, root first. */
export async function completionTree(root: AnyCommand): Promise<CompletionNode[]> {
  const out: CompletionNode[] = [];
  const visit = async (cmd: AnyCommand, path: string[]) => {
    const meta = await metaOf(cmd);
    const subs = await subCommandsOf(cmd);
    const subcommands: { name: string; description: string }[] = [];
    for (const [name, sub] of Object.entries(subs)) {
      const subMeta = await metaOf(sub);
      if (subMeta.hidden === true) continue;
      subcommands.push({ name, description: subMeta.description ?? "" });
      for (const alias of aliasesOf(subMeta)) subcommands.push({ name: alias, description: subMeta.description ?? "" });
    }
    const { flags, positionalValues, positionalIds } = flagsOf(await argsOf(cmd));
    // runCli answers --version (-V) on the root command itself (it is no citty arg).
    if (path.length === 0 && meta.version !== undefined) {
      flags.push({ names: ["--version", "-V"], description: "Print the version", takesValue: false, optionalValue: false, values: [], localNames: null, repeatable: false });
    }
    out.push({ path, description: meta.description ?? "", subcommands, flags, positionalValues, positionalIds });
    for (const [name, sub] of Object.entries(subs)) {
      const subMeta = await metaOf(sub);
      if (subMeta.hidden === true) continue;
      await visit(sub, [...path, name]);
      for (const alias of aliasesOf(subMeta)) await visit(sub, [...path, alias]);
    }
  };
  await visit(root, []);
  return out;
}

/** Single-quote a string for sh/bash/zsh. */
function sq(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** Escape for a zsh _arguments / _describe spec (":" and "[", "]" separate fields there). */
function zshEscape(text: string): string {
  return text.replace(/([:[\]\\])/g, "\\$1");
}

/** The bash script (`source <(gorb completion bash)`). */
export function bashScript(prog: string, tree: readonly CompletionNode[]): string {
  const fn = `_${prog.replace(/\W/g, "_")}`;
  const subs = tree.map((n) => `    ${sq(n.path.join(" "))}) echo ${sq(n.subcommands.map((s) => s.name).join(" "))} ;;`);
  const flags = tree.map((n) => `    ${sq(n.path.join(" "))}) echo ${sq(n.flags.flatMap((f) => f.names).join(" "))} ;;`);
  const valueCases: string[] = [];
  const localCases: string[] = [];
  const takesValue: string[] = [];
  const optional: string[] = [];
  const idCases: string[] = [];
  for (const n of tree) {
    for (const f of n.flags) {
      if (!f.takesValue) continue;
      for (const name of f.names) {
        (f.optionalValue ? optional : takesValue).push(sq(`${n.path.join(" ")}|${name}`));
        if (f.values.length > 0) valueCases.push(`    ${sq(`${n.path.join(" ")}|${name}`)}) echo ${sq(f.values.join(" "))} ;;`);
        if (f.localNames !== null) localCases.push(`    ${sq(`${n.path.join(" ")}|${name}`)}) echo ${f.localNames} ;;`);
      }
    }
    if (n.positionalValues.length > 0) valueCases.push(`    ${sq(`${n.path.join(" ")}|#1`)}) echo ${sq(n.positionalValues.join(" "))} ;;`);
    for (const [i, kind] of n.positionalIds.entries()) {
      if (kind !== null) idCases.push(`    ${sq(`${n.path.join(" ")}|#${i + 1}`)}) echo ${kind} ;;`);
    }
  }
  return `# bash completion for ${prog} (generated by \`${prog} completion bash\`)
${fn}_subs() {
  case "$1" in
${subs.join("\n")}
  esac
}
${fn}_flags() {
  case "$1" in
${flags.join("\n")}
  esac
}
${fn}_values() {
  case "$1" in
${valueCases.join("\n")}
  esac
}
${fn}_local() {
  case "$1" in
${localCases.join("\n")}
  esac
}
# What argument #N of a command names, when it is an id the daemon has: service or backend.
${fn}_ids() {
  case "$1" in
${idCases.join("\n")}
  esac
}
# The arguments of \$1 (a command path) that may be argument #\$2 (from 0) with \$3 typed: its fixed values, and the ids
# the daemon has (\`gorb __ids\`, with the line's connection flags in \$conn and the arguments before in \$args).
# The ids are matched and quoted here, never given to compgen -W: that expands \$(...) in its words, and an id is the
# daemon's, free-form text.
${fn}_arg() {
  local kind id typed service="" c
  local -a flags=()
  COMPREPLY=($(compgen -W "$( (($2 == 0)) && ${fn}_values "$1|#1")" -- "$3"))
  kind="$(${fn}_ids "$1|#$(($2 + 1))")"
  [[ -n "$kind" ]] || return 0
  # The words as typed ("my web", my\\ web) are what gorb will be given: the same text, unquoted.
  typed="$(${fn}_unquote "$3")"
  for c in "\${conn[@]}"; do flags+=("$(${fn}_unquote "$c")"); done
  if [[ "$kind" == backend ]]; then service="$(${fn}_unquote "\${args[0]}")"; fi
  while IFS= read -r id; do
    if [[ -n "$id" && "$id" == "$typed"* ]]; then COMPREPLY+=("$(printf '%q' "$id")"); fi
  done < <(if [[ "$kind" == backend ]]; then ${prog} __ids "\${flags[@]}" -- "$service"; else ${prog} __ids "\${flags[@]}"; fi 2>/dev/null)
}
# A word as the shell will read it, without running anything: '...', "..." (with its \\ escapes) and \\ removed.
# A quote not closed yet (the word being typed) runs to the word's end.
${fn}_unquote() {
  local w="$1" out="" q="" c j
  for ((j = 0; j < \${#w}; j++)); do
    c="\${w:j:1}"
    if [[ "$q" == "'" ]]; then
      if [[ "$c" == "'" ]]; then q=""; else out+="$c"; fi
    elif [[ "$q" == '"' ]]; then
      if [[ "$c" == '"' ]]; then q=""
      elif [[ "$c" == '\\' && "\${w:j+1:1}" == [\\\\\\"\\$\\\`] ]]; then ((j++)); out+="\${w:j:1}"
      else out+="$c"; fi
    elif [[ "$c" == "'" || "$c" == '"' ]]; then q="$c"
    elif [[ "$c" == '\\' ]]; then ((j++)); out+="\${w:j:1}"
    else out+="$c"; fi
  done
  printf '%s' "$out"
}
# A flag whose value is required (it is the next word unless given as --flag=VALUE).
${fn}_takes_value() {
  case "$1" in
    ${takesValue.length > 0 ? takesValue.join("|") : "''"}) return 0 ;;
  esac
  return 1
}
# A flag whose value may be left out (\`--watch [seconds]\`): the next word is its value unless it is a flag.
${fn}_optional_value() {
  case "$1" in
    ${optional.length > 0 ? optional.join("|") : "''"}) return 0 ;;
  esac
  return 1
}
# Bash replaces only what follows the word's last COMP_WORDBREAKS character ("=" and ":" by default): the part of
# the word in front of it, which every candidate (a whole word) starts with.
${fn}_lead() {
  local breaks=""
  [[ "$COMP_WORDBREAKS" == *=* ]] && breaks+="="
  [[ "$COMP_WORDBREAKS" == *:* ]] && breaks+=":"
  if [[ -n "$breaks" && "$1" == *[$breaks]* ]]; then printf '%s' "\${1%"\${1##*[$breaks]}"}"; fi
}
# Local names for the value $2 of the word $1 (file or dir names, after --flag= if $1 holds one). When bash inserts
# them cut (a ":" or "=" in the word), it cannot tell the directories: they get their "/" here.
${fn}_local_names() {
  local kind="$1" value="$2" lead="$3" c i
  compopt -o filenames 2>/dev/null
  if [[ "$kind" == dir ]]; then mapfile -t COMPREPLY < <(compgen -d -- "$value"); else mapfile -t COMPREPLY < <(compgen -f -- "$value"); fi
  [[ -n "$lead" ]] || return 0
  for i in "\${!COMPREPLY[@]}"; do
    c="\${COMPREPLY[i]}"
    if [[ -d "$c" && "$c" != */ ]]; then COMPREPLY[i]="$c/"; fi
  done
  if ((\${#COMPREPLY[@]} == 1)) && [[ "\${COMPREPLY[0]}" == */ ]]; then compopt -o nospace 2>/dev/null; fi
}
${fn}() {
  # Bash splits the line's words at the characters of COMP_WORDBREAKS ("=" and ":" among them by default):
  # --pulse=http arrives as "--pulse" "=" "http", ./conf:v2/ as "./conf" ":" "v2/". Pieces that touch on the command
  # line (COMP_LINE) are joined back into the word as typed.
  local -a words=()
  local i w line="$COMP_LINE"
  for ((i = 0; i <= COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    if ((i > 0)) && [[ -n "$line" && "$line" != [[:space:]]* ]]; then words[\${#words[@]}-1]+="$w"; else words+=("$w"); fi
    line="\${line#"\${line%%[![:space:]]*}"}"
    line="\${line#"$w"}"
  done
  local cword=$((\${#words[@]} - 1))
  local cur="\${words[cword]}" path="" subs npos=0 ended=0
  local -a args=() conn=()
  for ((i = 1; i < cword; i++)); do
    w="\${words[i]}"
    # After "--" every word is an argument (gorb reads no flag and no command there).
    if ((ended)); then ((npos++)); args+=("$w"); continue; fi
    if [[ "$w" == "--" ]]; then ended=1; continue; fi
    if [[ "$w" == -* ]]; then
      case "\${w%%=*}" in
        ${CONNECTION_FLAGS.join("|")}) if [[ "$w" == *=* ]]; then conn+=("$w"); elif ((i + 1 < cword)); then conn+=("$w" "\${words[i+1]}"); fi ;;
        ${DIRECT_FLAG}) conn+=("$w") ;;
      esac
      if [[ "$w" == *=* ]]; then continue; fi
      if ${fn}_takes_value "$path|$w"; then
        ((i++))
      elif ${fn}_optional_value "$path|$w" && ((i + 1 < cword)) && [[ "\${words[i+1]}" != -?* ]]; then
        ((i++))
      fi
      continue
    fi
    subs=" $(${fn}_subs "$path") "
    if [[ "$subs" == *" $w "* ]]; then path="\${path:+$path }$w"; else ((npos++)); args+=("$w"); fi
  done
  # The flag whose value is being completed, if any: --flag=VALUE, or a flag that requires one before this word.
  local flag="" value="$cur" prefix="" prev="\${words[cword-1]}" lead
  lead="$(${fn}_lead "$cur")"
  COMPREPLY=()
  if ((ended)); then
    # Only a command's own arguments: the first one's values, once, and never a sub-command.
    if [[ -z "$(${fn}_subs "$path")" ]]; then ${fn}_arg "$path" "$npos" "$cur"; fi
  else
    if [[ "$cur" == -*=* ]]; then
      flag="\${cur%%=*}" value="\${cur#*=}" prefix="$flag="
    elif ((cword > 1)) && [[ "$prev" == -* && "$prev" != *=* ]] && ${fn}_takes_value "$path|$prev"; then
      flag="$prev"
    fi
    if [[ -n "$flag" ]]; then
      case "$(${fn}_local "$path|$flag")" in
        file) ${fn}_local_names file "$value" "$lead" ;;
        dir) ${fn}_local_names dir "$value" "$lead" ;;
        *) COMPREPLY=($(compgen -W "$(${fn}_values "$path|$flag")" -- "$value")) ;;
      esac
      if [[ -n "$prefix" ]]; then COMPREPLY=("\${COMPREPLY[@]/#/$prefix}"); fi
    elif [[ "$cur" == -* ]]; then
      COMPREPLY=($(compgen -W "$(${fn}_flags "$path")" -- "$cur"))
    elif [[ -n "$(${fn}_subs "$path")" ]]; then
      COMPREPLY=($(compgen -W "$(${fn}_subs "$path")" -- "$cur"))
    else
      ${fn}_arg "$path" "$npos" "$cur"
    fi
  fi
  if [[ -n "$lead" ]]; then COMPREPLY=("\${COMPREPLY[@]#"$lead"}"); fi
}
complete -F ${fn} ${prog}
`;
}

/** The zsh script (`source <(gorb completion zsh)`, or save it as _gorb in $fpath). */
export function zshScript(prog: string, tree: readonly CompletionNode[]): string {
  const fn = `_${prog.replace(/\W/g, "_")}`;
  const depthCases: string[] = [];
  const cases: string[] = [];
  for (const n of tree) {
    const key = sq(n.path.join(" "));
    depthCases.push(`    ${key}) subs=(${n.subcommands.map((s) => sq(s.name)).join(" ")}) ;;`);
    const specs: string[] = [];
    for (const f of n.flags) {
      const desc = zshEscape(f.description);
      const action = f.values.length > 0 ? `(${f.values.join(" ")})` : f.localNames === "file" ? "_files" : f.localNames === "dir" ? "_files -/" : "";
      // "::" marks an optional argument: after a bare --watch, zsh offers the other flags and the arguments too.
      const value = f.takesValue ? `${f.optionalValue ? "::" : ":"}${f.localNames ?? "value"}:${action}` : "";
      // One spelling given excludes the others, unless the flag may be repeated ("*": offered again after it).
      const exclusive = f.repeatable ? "*" : f.names.length > 1 ? `(${f.names.join(" ")})` : "";
      for (const name of f.names) {
        const eq = f.takesValue && name.startsWith("--") ? "=" : "";
        specs.push(sq(`${exclusive}${name}${eq}[${desc}]${value}`));
      }
    }
    let prelude = "";
    if (n.subcommands.length > 0) {
      // A command with sub-commands: its flags (--help; the root's --version too) and the sub-command.
      const items = n.subcommands.map((s) => sq(`${zshEscape(s.name)}:${zshEscape(s.description)}`)).join(" ");
      prelude = `local -a cmds=(${items})\n      `;
      specs.push(sq("1:command:{_describe -t commands command cmds}"));
    } else if (n.positionalValues.length > 0) specs.push(sq(`1:value:(${n.positionalValues.join(" ")})`));
    else {
      // Ids from the daemon; a backend's service is the first argument ($line[1], as typed: (Q) unquotes it).
      for (const [i, kind] of n.positionalIds.entries()) {
        if (kind !== null) specs.push(sq(`${i + 1}:${kind}:{${fn}_idlist ${kind}${kind === "backend" ? ' "${(Q)line[1]}"' : ""}}`));
      }
      specs.push(sq("*:argument:"));
    }
    // -S: after "--" no flag (gorb reads every word there as an argument). No -s: gorb reads no stacked one-letter
    // flags (-fv is an unknown option), so none is offered after -f.
    cases.push(`    ${key})\n      ${prelude}_arguments -S ${specs.join(" ")} ;;`);
  }
  return `#compdef ${prog}
# zsh completion for ${prog} (generated by \`${prog} completion zsh\`)
# The ids the daemon has (gorb __ids, with the line's connection flags): $1 service, or backend of the service $2.
# compadd quotes each for the line and expands nothing in it.
${fn}_idlist() {
  local -a conn ids
  local i w
  for ((i = 2; i < CURRENT; i++)); do
    w=\${words[i]}
    [[ "$w" == -- ]] && break
    case "\${w%%=*}" in
      ${CONNECTION_FLAGS.join("|")}) if [[ "$w" == *=* ]]; then conn+=("\${(Q)w}"); elif ((i + 1 < CURRENT)); then conn+=("$w" "\${(Q)words[i+1]}"); fi ;;
      ${DIRECT_FLAG}) conn+=("$w") ;;
    esac
  done
  if [[ "$1" == backend ]]; then
    ids=(\${(f)"$(${prog} __ids "\${conn[@]}" -- "$2" 2>/dev/null)"})
  else
    ids=(\${(f)"$(${prog} __ids "\${conn[@]}" 2>/dev/null)"})
  fi
  compadd -a ids
}
${fn}() {
  local cmdpath="" depth=0 w i
  local -a subs
  for ((i = 2; i < CURRENT; i++)); do
    w=\${words[i]}
    case "$cmdpath" in
${depthCases.join("\n")}
    esac
    if (( \${subs[(Ie)$w]} )); then cmdpath="\${cmdpath:+$cmdpath }$w"; depth=$((depth + 1)); else break; fi
  done
  if ((depth > 0)); then
    words=("\${words[1]}" "\${(@)words[depth+2,-1]}")
    CURRENT=$((CURRENT - depth))
  fi
  case "$cmdpath" in
${cases.join("\n")}
  esac
}
if [[ "\${zsh_eval_context[-1]}" == loadautofunc ]]; then
  ${fn} "$@"
else
  compdef ${fn} ${prog}
fi
`;
}

/** The flags of `n` whose value is the next word (required): what the scripts skip when they count arguments. */
function valueFlagsOf(n: CompletionNode): string[] {
  return n.flags.filter((f) => f.takesValue && !f.optionalValue).flatMap((f) => f.names);
}

/** The fish script (`gorb completion fish | source`, or save it in ~/.config/fish/completions/gorb.fish). */
export function fishScript(prog: string, tree: readonly CompletionNode[]): string {
  const fn = `__${prog.replace(/\W/g, "_")}`;
  const fq = (text: string) => `'${text.replace(/[\\']/g, "\\$&")}'`;
  const lines: string[] = [
    `# fish completion for ${prog} (generated by \`${prog} completion fish\`)`,
    `function ${fn}_subs`,
    "    switch $argv[1]",
    ...tree.map((n) => `        case ${fq(n.path.join(" "))}\n            echo ${fq(n.subcommands.map((s) => s.name).join(" "))}`),
    "    end",
    "end",
    `function ${fn}_path`,
    "    set -l path ''",
    "    for w in (commandline -opc)[2..-1]",
    `        if contains -- $w (string split ' ' (${fn}_subs "$path"))`,
    "            set path (string trim -- \"$path $w\")",
    "        else",
    "            break",
    "        end",
    "    end",
    "    echo $path",
    "end",
    `function ${fn}_at`,
    `    test (${fn}_path) = "$argv[1]"`,
    "end",
    // True after "--": every word there is an argument (fish itself offers no flag there, but would offer commands).
    `function ${fn}_ended`,
    "    contains -- -- (commandline -opc)[2..-1]",
    "end",
    // The arguments given after the command path $argv[1], one per line; $argv[2..] are its flags that take a value.
    `function ${fn}_args`,
    "    set -l skip 0",
    "    set -l words (commandline -opc)",
    "    set -e words[1..(math 1 + (count (string split -n ' ' -- $argv[1])))]",
    "    for w in $words",
    "        if test $skip = 1",
    "            set skip 0",
    "        else if test \"$w\" = --",
    "            set skip 2",
    "        else if test $skip = 2; or not string match -q -- '-?*' $w",
    "            echo $w",
    "        else if contains -- $w $argv[2..-1]",
    "            set skip 1",
    "        end",
    "    end",
    "end",
    // True while no argument follows the command path $argv[1] (with its value flags $argv[2..], as above).
    `function ${fn}_no_arg`,
    `    test (count (${fn}_args $argv)) -eq 0`,
    "end",
    // The ids the daemon has (gorb __ids, with the line's connection flags): $argv[1] service, or backend of the
    // service $argv[2]. Each line is one candidate, taken as it is (fish expands nothing in it).
    `function ${fn}_idlist`,
    "    set -l conn",
    "    set -l words (commandline -opc)",
    "    for i in (seq 2 (count $words))",
    "        set -l w $words[$i]",
    "        test \"$w\" = --; and break",
    "        switch (string replace -r -- '=.*' '' $w)",
    `            case ${CONNECTION_FLAGS.join(" ")}`,
    "                if string match -q -- '*=*' $w",
    "                    set -a conn $w",
    "                else if test $i -lt (count $words)",
    "                    set -a conn $w $words[(math $i + 1)]",
    "                end",
    `            case ${DIRECT_FLAG}`,
    "                set -a conn $w",
    "        end",
    "    end",
    "    if test \"$argv[1]\" = backend",
    `        ${prog} __ids $conn -- $argv[2] 2>/dev/null`,
    "    else",
    `        ${prog} __ids $conn 2>/dev/null`,
    "    end",
    "end",
    `complete -c ${prog} -f`,
  ];
  for (const n of tree) {
    // Command paths are plain words, so they need no escaping inside the double quotes.
    const cond = `"${fn}_at '${n.path.join(" ")}'"`;
    const commandCond = `"${fn}_at '${n.path.join(" ")}'; and not ${fn}_ended"`;
    for (const s of n.subcommands) {
      lines.push(`complete -c ${prog} -n ${commandCond} -a ${fq(s.name)} -d ${fq(s.description)}`);
    }
    for (const f of n.flags) {
      const parts = [`complete -c ${prog} -n ${cond}`];
      for (const name of f.names) parts.push(name.startsWith("--") ? `-l ${name.slice(2)}` : `-s ${name.slice(1)}`);
      // A value is required (unless it may be left out: then what follows is completed as after any flag); only
      // file and dir values complete local names (-F: files despite the -f above).
      if (f.takesValue && !f.optionalValue) parts.push(f.localNames === "file" ? "-r -F" : "-x");
      if (f.values.length > 0) parts.push(`-a ${fq(f.values.join(" "))}`);
      // Directories only: the part of the word after a --flag= (fish would otherwise complete "--flag=--flag=dir/").
      if (f.localNames === "dir") parts.push(`-a ${fq('(__fish_complete_directories (string replace -r -- "^-[^=]*=" "" (commandline -ct)))')}`);
      parts.push(`-d ${fq(f.description)}`);
      lines.push(parts.join(" "));
    }
    if (n.positionalValues.length > 0) {
      // The first argument's values, while it is not given: gorb refuses a second one.
      const first = `"${fn}_at '${n.path.join(" ")}'; and ${fn}_no_arg '${[n.path.join(" "), ...valueFlagsOf(n)].join("' '")}'"`;
      lines.push(`complete -c ${prog} -n ${first} -a ${fq(n.positionalValues.join(" "))}`);
    }
    for (const [i, kind] of n.positionalIds.entries()) {
      if (kind === null) continue;
      // Argument #i+1 while i arguments are given; a backend's service is the first of them.
      const args = `${fn}_args '${[n.path.join(" "), ...valueFlagsOf(n)].join("' '")}'`;
      const at = `"${fn}_at '${n.path.join(" ")}'; and test (count (${args})) -eq ${i}"`;
      const list = kind === "backend" ? `(${fn}_idlist backend (${args})[1])` : `(${fn}_idlist service)`;
      lines.push(`complete -c ${prog} -n ${at} -a ${fq(list)}`);
    }
  }
  return `${lines.join("\n")}\n`;
}
