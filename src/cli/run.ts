/**
 * runCli: gorb's replacement for citty's runMain. It resolves the command (naming the closest for a mistyped one),
 * answers --help and --version, refuses unknown flags (citty itself ignores them), runs the command, and turns every
 * failure into one line on stderr plus an exit code (./errors.ts). It returns the exit code instead of exiting, so tests run it in-process.
 *
 * Why not runMain: runMain exits with 1 for every error (usage errors included) and accepts any flag.
 */
import { runCommand } from "citty";
import type { ArgsDef } from "citty";
import { VERSION } from "../version.ts";
import { type AnyCommand, argsOf, findSubCommand, kebab, metaOf, optionalValue, subCommandNames } from "./_command.ts";
import { choiceOf } from "./_shared.ts";
import { type CliContext, type CliIo, createCliLogger, processIo, withCliContext } from "./context.ts";
import { journalStreams, withPriority } from "../journal.ts";
import { CliError, EXIT, UsageError } from "./errors.ts";
import { renderHelp } from "./help.ts";
import { root } from "./index.ts";

/** What runCli runs against; every field defaults to the real process. */
export interface RunCliOptions {
  readonly io?: CliIo;
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly signal?: AbortSignal;
  /**
   * Let Ctrl-C abort client commands (the real process sets it): the first SIGINT aborts `signal` (--watch ends
   * with 0, a request ends with 130), a second one exits at once. `gorb serve` gets no such handler: the daemon
   * installs its own for a graceful shutdown, and without one SIGINT keeps its default meaning.
   */
  readonly handleSigint?: boolean;
  /** The command tree (tests may pass a smaller one). */
  readonly root?: AnyCommand;
}

/** One resolved command: its path of names from the root ("service add") and its definition. */
export interface ResolvedCommand {
  readonly path: readonly string[];
  readonly cmd: AnyCommand;
  /** The arguments left for this command. */
  readonly rest: readonly string[];
}

const ANSI = /\u001b\[[0-9;]*m/g;

function isHelpFlag(token: string): boolean {
  return token === "--help" || token === "-h";
}

/** Tokens before "--" (after it everything is positional). */
function optionTokens(args: readonly string[]): readonly string[] {
  const end = args.indexOf("--");
  return end < 0 ? args : args.slice(0, end);
}

/** A token that reads as a negative number ("-1", "-0.5", "-.5s"): a value, not a flag. */
const NEGATIVE_NUMBER = /^-\.?\d/;

/**
 * Whether a flag whose value may be left out (`--watch [seconds]`) has none before `next`: at the end, or before
 * another flag. A negative number is its value (`--watch -1`), so the command says what is wrong with it rather
 * than "unknown option -1".
 */
function valueLeftOut(next: string | undefined): boolean {
  return next === undefined || (next.startsWith("-") && next !== "-" && !NEGATIVE_NUMBER.test(next));
}

interface FlagShape {
  readonly canonical: string;
  readonly takesValue: boolean;
  /** The value may be left out (a string flag whose valueHint is "[...]", as `--watch [seconds]`). */
  readonly optionalValue: boolean;
  readonly boolean: boolean;
  /** An enum flag's choices (citty's options), null for any other flag. */
  readonly choices: readonly string[] | null;
}

function camel(name: string): string {
  return name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** Every spelling of every flag of a command (long names in kebab and camel case, aliases). */
function flagTable(defs: ArgsDef): Map<string, FlagShape> {
  const table = new Map<string, FlagShape>();
  for (const [name, def] of Object.entries(defs)) {
    if (def.type === "positional") continue;
    const shape: FlagShape = {
      canonical: kebab(name),
      takesValue: def.type === "string" || def.type === "enum",
      optionalValue: optionalValue(def),
      boolean: def.type === "boolean",
      choices: def.type === "enum" ? (def.options ?? []) : null,
    };
    for (const spelling of [name, kebab(name), camel(name)]) table.set(spelling, shape);
    const alias = "alias" in def ? def.alias : undefined;
    for (const a of alias === undefined ? [] : Array.isArray(alias) ? alias : [alias]) table.set(a, shape);
  }
  return table;
}

/**
 * Throws UsageError for an unknown flag, a value flag without its value (at the end, or followed by a "--" flag),
 * or an extra argument.
 */
function checkFlags(defs: ArgsDef, args: readonly string[], path: string): void {
  const table = flagTable(defs);
  const tokens = optionTokens(args);
  const positionals: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] ?? "";
    if (!token.startsWith("-") || token === "-") {
      positionals.push(token);
      continue;
    }
    const long = token.startsWith("--");
    const body = token.slice(long ? 2 : 1);
    const eq = body.indexOf("=");
    const name = eq < 0 ? body : body.slice(0, eq);
    let shape = table.get(name);
    if (long && shape === undefined && name.startsWith("no-")) {
      const positive = table.get(name.slice(3));
      if (positive?.boolean === true && eq < 0) continue;
    }
    if (!long && shape === undefined && name.length > 1) {
      // "-l127.0.0.1:4672": a one-letter value flag with its value attached.
      const short = table.get(name.charAt(0));
      if (short?.takesValue === true) continue;
    }
    if (!long && name.length > 1 && shape !== undefined && shape.canonical !== name) shape = undefined;
    if (shape === undefined) throw new UsageError(`unknown option ${long ? "--" : "-"}${name} for "${path}"`, path);
    if (shape.takesValue && eq < 0) {
      const next = tokens[i + 1];
      if (shape.optionalValue && valueLeftOut(next)) continue;
      if (next === undefined) throw new UsageError(`--${shape.canonical} needs a value`, path);
      // The next flag is not this one's value (`--host --port 80` left out the host): --host=--x gives one.
      if (next.startsWith("--")) {
        throw new UsageError(`--${shape.canonical} needs a value (got the flag ${next}; for a value that starts with "--", write --${shape.canonical}=VALUE)`, path);
      }
      i++;
    }
  }
  positionals.push(...args.slice(tokens.length + 1)); // after "--"
  const expected = Object.values(defs).filter((d) => d.type === "positional").length;
  if (positionals.length > expected) {
    const extra = positionals[expected] ?? "";
    throw new UsageError(`unexpected argument ${JSON.stringify(extra)} for "${path}"`, path);
  }
}

/** A known flag among `args` (before "--"), as checkFlags reads it: where it is, how it is written, where its value is. */
interface FlagToken {
  readonly index: number;
  readonly token: string;
  /** Written with two dashes. */
  readonly long: boolean;
  /** The token without its dashes, and where its "=" is in that (-1: none). */
  readonly body: string;
  readonly eq: number;
  readonly name: string;
  readonly shape: FlagShape;
  /** The index of its value when that is the next token; null when it has none there (given with "=", or left out). */
  readonly valueAt: number | null;
}

/** The known flags of `args`, in order, each with its value's place as checkFlags reads it (the walk both passes below share). */
function* flagTokens(defs: ArgsDef, args: readonly string[]): Generator<FlagToken> {
  const table = flagTable(defs);
  const tokens = optionTokens(args);
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] ?? "";
    if (!token.startsWith("-") || token === "-") continue;
    const long = token.startsWith("--");
    const body = token.slice(long ? 2 : 1);
    const eq = body.indexOf("=");
    const name = eq < 0 ? body : body.slice(0, eq);
    const shape = table.get(name);
    if (shape === undefined) continue;
    const index = i;
    let valueAt: number | null = null;
    if (shape.takesValue && eq < 0) {
      const next = tokens[i + 1];
      if (next !== undefined && !(shape.optionalValue && valueLeftOut(next))) valueAt = ++i;
    }
    yield { index, token, long, body, eq, name, shape, valueAt };
  }
}

/**
 * `args` with each flag written with one dash that checkFlags reads as a known flag, other than a one-letter flag
 * alone (`-f file`, `-v`), written with two: `-f=x` as `--file=x`, `-protocol` as `--protocol`. citty (node:util's
 * parseArgs) read `-f=x`'s value as "=x" (and `-v=false` as true), and `-protocol` as the one-letter flags p, r, o, ...:
 * `-protocol udp` was accepted and its value went nowhere.
 */
function longSpellings(defs: ArgsDef, args: readonly string[]): string[] {
  const out = [...args];
  for (const f of flagTokens(defs, args)) {
    if (!f.long && (f.eq >= 0 || f.name.length > 1)) out[f.index] = `--${f.shape.canonical}${f.eq < 0 ? "" : f.body.slice(f.eq)}`;
  }
  return out;
}

/**
 * `args` with the value of each enum flag as the choice it spells (choiceOf: in any case, as the REST API reads an enum
 * value), whatever the flag's spelling (`--protocol TCP`, `--protocol=Udp`, an alias such as `--method`). citty
 * compares an enum's value as written: `--protocol TCP` was its "Invalid value" while the API takes "TCP". A value
 * that is none of the choices is a UsageError naming the flag and them. Runs after checkFlags: every value is there.
 */
function canonicalChoices(defs: ArgsDef, args: readonly string[], path: string): string[] {
  const out = [...args];
  for (const f of flagTokens(defs, args)) {
    const choices = f.shape.choices;
    if (choices === null) continue;
    // Named as given (`--method`, the alias of backend's --forward), a one-letter flag by its long name.
    const flag = f.long ? f.name : f.shape.canonical;
    if (f.eq >= 0) {
      out[f.index] = `${f.token.slice(0, f.token.length - f.body.length + f.eq + 1)}${choiceOf(flag, f.body.slice(f.eq + 1), choices, path)}`;
    } else if (f.valueAt !== null) {
      out[f.valueAt] = choiceOf(flag, args[f.valueAt] ?? "", choices, path);
    }
  }
  return out;
}

/**
 * Spells out a left-out optional value (`--watch` at the end or before another flag) as `--watch=`, which
 * citty reads as "" (it would otherwise take the next flag as the value).
 */
function fillOptionalValues(defs: ArgsDef, args: readonly string[]): string[] {
  const table = flagTable(defs);
  const tokens = optionTokens(args);
  return args.map((token, i) => {
    if (i >= tokens.length || !token.startsWith("-") || token.includes("=")) return token;
    const shape = table.get(token.replace(/^--?/, ""));
    const next = tokens[i + 1];
    return shape?.optionalValue === true && valueLeftOut(next) ? `--${shape.canonical}=` : token;
  });
}

/**
 * `args` with only the last occurrence of each boolean flag, whatever its spelling (`--state`, `--state=false`,
 * `--no-state`, an alias such as `-f`): citty reads a `--no-x` anywhere as false, so `--no-state --state` kept
 * nothing on disk; as for every other flag, the last one given wins.
 */
function lastBooleanWins(defs: ArgsDef, args: readonly string[]): string[] {
  const table = flagTable(defs);
  const tokens = optionTokens(args);
  /** The canonical name of the boolean flag at each index that holds one. */
  const booleans = new Map<number, string>();
  const last = new Map<string, number>();
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] ?? "";
    if (!token.startsWith("-") || token === "-") continue;
    const body = token.slice(token.startsWith("--") ? 2 : 1);
    const eq = body.indexOf("=");
    const name = eq < 0 ? body : body.slice(0, eq);
    const negated = token.startsWith("--") && eq < 0 && name.startsWith("no-") ? table.get(name.slice(3)) : undefined;
    const shape = table.get(name) ?? (negated?.boolean === true ? negated : undefined);
    if (shape === undefined) continue;
    if (shape.boolean) {
      booleans.set(i, shape.canonical);
      last.set(shape.canonical, i);
    } else if (shape.takesValue && eq < 0) {
      // Its value is the next token (as checkFlags reads it), not a flag of its own.
      const next = tokens[i + 1];
      if (!(shape.optionalValue && valueLeftOut(next))) i++;
    }
  }
  return args.filter((_, i) => {
    const canonical = booleans.get(i);
    return canonical === undefined || last.get(canonical) === i;
  });
}

/** Index of the first positional token (the sub-command name), skipping flags and their values. */
function firstPositional(args: readonly string[], defs: ArgsDef): number {
  const table = flagTable(defs);
  for (let i = 0; i < args.length; i++) {
    const token = args[i] ?? "";
    if (token === "--") return -1;
    if (token.startsWith("-") && token !== "-") {
      const body = token.replace(/^--?/, "");
      if (!body.includes("=") && table.get(body)?.takesValue === true) i++;
      continue;
    }
    return i;
  }
  return -1;
}

/** The edit distance of `a` and `b`: insertions, deletions, substitutions and swaps of neighbours (optimal string alignment). */
function editDistance(a: string, b: string): number {
  // d[i][j]: the distance of a's first i letters and b's first j.
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  const at = (i: number, j: number): number => d[i]?.[j] ?? 0;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1);
      (d[i] ?? [])[j] = best;
    }
  }
  return at(a.length, b.length);
}

/**
 * The `names` closest to a mistyped `name` (`servce`: serve, service), in their order: those at the smallest edit
 * distance, when that is at most 1, or 2 for a name of five letters or more. [] when none is that close.
 */
function closeNames(name: string, names: readonly string[]): string[] {
  const limit = name.length >= 5 ? 2 : 1;
  const scored = names.map((n) => ({ n, d: editDistance(name.toLowerCase(), n) }));
  const best = Math.min(...scored.map((s) => s.d));
  return best > limit ? [] : scored.filter((s) => s.d === best).map((s) => s.n);
}

/**
 * For `gorb -f -i eth0` and the like, the original GORB's command line (its daemon took its flags without a
 * command): a UsageError naming `gorb serve` with the same flags, when they are all `serve`'s; else null.
 */
async function daemonFlagsHint(rootCmd: AnyCommand, rootName: string, args: readonly string[]): Promise<UsageError | null> {
  if (!(args[0] ?? "").startsWith("-")) return null;
  const serve = await findSubCommand(rootCmd, "serve");
  if (serve === null) return null;
  try {
    checkFlags(await argsOf(serve.cmd), args, `${rootName} serve`);
  } catch {
    return null;
  }
  const line = [rootName, "serve", ...args].join(" ");
  return new UsageError(`the daemon is "${rootName} serve": run "${line}" (the original GORB took these flags without a command)`, `${rootName} serve`);
}

/** resolveCommand walks sub-commands from the root; throws UsageError for an unknown or missing one. */
async function resolveCommand(
  rootCmd: AnyCommand,
  args: readonly string[],
  forHelp: boolean,
): Promise<ResolvedCommand> {
  const rootName = (await metaOf(rootCmd)).name ?? "gorb";
  let path: string[] = [rootName];
  let cmd = rootCmd;
  let rest = args;
  for (;;) {
    const names = await subCommandNames(cmd);
    if (names.length === 0) return { path, cmd, rest };
    const index = firstPositional(rest, await argsOf(cmd));
    if (index < 0) {
      if (cmd.run !== undefined || forHelp) return { path, cmd, rest };
      if (cmd === rootCmd) {
        const hint = await daemonFlagsHint(rootCmd, rootName, rest);
        if (hint !== null) throw hint;
      }
      throw new UsageError(`missing command: use one of ${names.join(", ")}`, path.join(" "));
    }
    const name = rest[index] ?? "";
    const found = await findSubCommand(cmd, name);
    if (found === null) {
      if (cmd.run !== undefined) return { path, cmd, rest };
      if (cmd === rootCmd) {
        const hint = await daemonFlagsHint(rootCmd, rootName, rest);
        if (hint !== null) throw hint;
      }
      const flag = index > 0 ? (rest[index - 1] ?? "") : "";
      if (flag.startsWith("-")) {
        // `gorb --server URL service ls`: the flag's value was read as the command.
        throw new UsageError(
          `${flag} comes before the command: flags follow the command they belong to ("${path.join(" ")} COMMAND ... ${flag} ${name}")`,
          path.join(" "),
        );
      }
      const close = closeNames(name, names);
      const guess = close.length === 0 ? "" : `, did you mean ${close.map((n) => `"${n}"`).join(" or ")}?`;
      throw new UsageError(`unknown command "${name}" for "${path.join(" ")}"${guess} (commands: ${names.join(", ")})`, path.join(" "));
    }
    checkFlags(await argsOf(cmd), rest.slice(0, index), path.join(" "));
    path = [...path, found.name];
    cmd = found.cmd;
    rest = rest.slice(index + 1);
  }
}

function describeUnexpected(error: unknown): string {
  if (error instanceof Error) return error.stack ?? `${error.name}: ${error.message}`;
  return String(error);
}

/** True for citty's own argument errors (missing positional, bad enum value, unknown sub-command). */
function isCittyUsageError(error: unknown): error is Error {
  return error instanceof Error && error.name === "CLIError";
}

/** Installs the SIGINT handler for a client command; returns its removal. */
function trapSigint(controller: AbortController): () => void {
  const second = () => process.exit(EXIT.INTERRUPTED);
  const first = () => {
    controller.abort();
    process.once("SIGINT", second);
  };
  process.once("SIGINT", first);
  return () => {
    process.off("SIGINT", first);
    process.off("SIGINT", second);
  };
}

async function dispatch(
  rootCmd: AnyCommand,
  rawArgs: readonly string[],
  ctx: CliContext,
  sigint: AbortController | null,
  journal: boolean,
): Promise<number> {
  const { io, log } = ctx;
  // The lines written past the logger (the usage hint, an unexpected error and its stack) are errors too.
  const stderr = (text: string): void => io.stderr(journal ? withPriority(text, "error") : text);
  const version = rawArgs[0] === "--version" || rawArgs[0] === "-V" ? rawArgs[0] : null;
  if (version !== null && rawArgs.length === 1) {
    io.stdout(`${VERSION}\n`);
    return EXIT.OK;
  }
  if (version !== null && !rawArgs.some(isHelpFlag)) {
    // `gorb -V status` is not a command with a flag before it, nor `gorb --version extra` an unknown command.
    log.error(`${version} prints the version and takes nothing else: run "gorb ${version}" alone`);
    stderr(`Run "gorb --help" for usage.\n`);
    return EXIT.USAGE;
  }
  let args = rawArgs;
  let help = false;
  if (args[0] === "help") {
    args = args.slice(1);
    help = true;
  }
  help ||= optionTokens(args).some(isHelpFlag);
  let resolved: ResolvedCommand | null = null;
  try {
    resolved = await resolveCommand(rootCmd, help ? args.filter((a) => !isHelpFlag(a)) : args, help);
    if (help) {
      io.stdout(await renderHelp(resolved.cmd, resolved.path));
      return EXIT.OK;
    }
    const path = resolved.path.join(" ");
    checkFlags(await argsOf(resolved.cmd), resolved.rest, path);
    const untrap = sigint !== null && path !== "gorb serve" ? trapSigint(sigint) : () => {};
    try {
      const defs = await argsOf(resolved.cmd);
      const rawArgs = lastBooleanWins(defs, fillOptionalValues(defs, canonicalChoices(defs, longSpellings(defs, resolved.rest), path)));
      const { result } = await runCommand(resolved.cmd, { rawArgs });
      return typeof result === "number" ? result : EXIT.OK;
    } finally {
      untrap();
    }
  } catch (error) {
    if (error instanceof UsageError) {
      log.error(error.message);
      const where = error.usageOf ?? resolved?.path.join(" ") ?? "gorb";
      stderr(`Run "${where} --help" for usage.\n`);
      return EXIT.USAGE;
    }
    if (error instanceof CliError) {
      log.error(error.message);
      return error.exitCode;
    }
    if (isCittyUsageError(error)) {
      // Worded as gorb's own usage errors ("missing ...", not citty's "Missing ...").
      const message = error.message.replace(ANSI, "");
      log.error(`${message.charAt(0).toLowerCase()}${message.slice(1)}`);
      const where = resolved?.path.join(" ") ?? "gorb";
      stderr(`Run "${where} --help" for usage.\n`);
      return EXIT.USAGE;
    }
    stderr(`gorb: unexpected error (please report it): ${describeUnexpected(error)}\n`);
    return EXIT.UNEXPECTED;
  }
}

/** runCli runs one gorb command line and resolves with its exit code. */
export async function runCli(rawArgs: readonly string[], options: RunCliOptions = {}): Promise<number> {
  const io = options.io ?? processIo();
  const env = options.env ?? process.env;
  const controller = options.handleSigint === true ? new AbortController() : null;
  const signals = [options.signal, controller?.signal].filter((x): x is AbortSignal => x !== undefined);
  const signal = signals.length === 1 ? (signals[0] as AbortSignal) : AbortSignal.any(signals);
  // The real stderr may be systemd's journal; a test's io never is.
  const journal = options.io === undefined && journalStreams(env).stderr;
  const log = createCliLogger(io, env.GORB_DEBUG === "1", journal);
  const ctx: CliContext = { io, env, log, signal, root: options.root ?? root };
  return withCliContext(ctx, () => dispatch(ctx.root, rawArgs, ctx, controller, journal));
}
