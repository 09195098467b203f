/**
 * Small additions to citty's command definitions: usage examples (shown at the end of --help), notes (under its
 * usage line), groups of flags that --help lists apart, and the resolution of lazy sub-commands for the runner, the
 * help text and the completion generator.
 */
import type { ArgDef, ArgsDef, CommandDef, CommandMeta, Resolvable, SubCommandsDef } from "citty";

/** Any citty command (the helpers here do not depend on its args' types). */
type AnyCommand = CommandDef<ArgsDef>;

/** What help reads off a command besides citty's own definition: attached once, read with a default when absent. */
function attachment<V>(none: V) {
  const values = new WeakMap<object, V>();
  return {
    attach<T extends ArgsDef>(cmd: CommandDef<T>, value: V): CommandDef<T> {
      values.set(cmd, value);
      return cmd;
    },
    of(cmd: object): V {
      return values.get(cmd) ?? none;
    },
  };
}

const examples = attachment<readonly string[]>([]);
/** withExamples attaches usage examples to a command (each line is a full command line). */
export const withExamples = examples.attach;
/** examplesOf returns the examples attached with withExamples ([] when none). */
export const examplesOf = examples.of;

const notes = attachment<readonly string[]>([]);
/** withNotes attaches lines that --help prints under the usage line (what a reader of the options must know first). */
export const withNotes = notes.attach;
/** notesOf returns the lines attached with withNotes ([] when none). */
export const notesOf = notes.of;

/** Flags of a command that --help lists apart from its other options, under a heading of their own. */
export interface FlagGroup {
  /** The heading, without its colon: what the flags have in common. */
  readonly heading: string;
  /** The flags' names, as keys of the command's args. */
  readonly flags: readonly string[];
}

const flagGroups = attachment<readonly FlagGroup[]>([]);
/** withFlagGroups attaches groups of flags that --help lists apart (`gorb service set`'s identity flags). */
export const withFlagGroups = flagGroups.attach;
/** flagGroupsOf returns the groups attached with withFlagGroups ([] when none). */
export const flagGroupsOf = flagGroups.of;

/** resolveValue unwraps citty's Resolvable (a value, a promise, or a function returning either). */
async function resolveValue<T>(value: Resolvable<T>): Promise<T> {
  return typeof value === "function" ? await (value as () => T | Promise<T>)() : await value;
}

/** The meta of a command ({} when none). */
export async function metaOf(cmd: AnyCommand): Promise<CommandMeta> {
  return cmd.meta === undefined ? {} : await resolveValue(cmd.meta);
}

/** The args definition of a command ({} when none). */
export async function argsOf(cmd: AnyCommand): Promise<ArgsDef> {
  return cmd.args === undefined ? {} : await resolveValue(cmd.args);
}

/** The sub-command definitions of a command as given: lazy ones not loaded ({} when none). */
async function subCommandDefs(cmd: AnyCommand): Promise<SubCommandsDef> {
  return cmd.subCommands === undefined ? {} : await resolveValue(cmd.subCommands);
}

/** The sub-commands of a command, resolved ({} when none): every lazy one is loaded (help, completion). */
export async function subCommandsOf(cmd: AnyCommand): Promise<Record<string, AnyCommand>> {
  const out: Record<string, AnyCommand> = {};
  for (const [name, sub] of Object.entries(await subCommandDefs(cmd))) out[name] = (await resolveValue(sub)) as AnyCommand;
  return out;
}

/** The names of a command's sub-commands, without loading any of them. */
export async function subCommandNames(cmd: AnyCommand): Promise<string[]> {
  return Object.keys(await subCommandDefs(cmd)).filter((name) => !name.startsWith(INTERNAL_PREFIX));
}

/**
 * Commands named so (`gorb __ids`, run by the completion scripts) are internal: runnable, but neither listed nor
 * suggested in a usage error. Their meta says `hidden` too, for the help and the completion scripts (which read it).
 */
const INTERNAL_PREFIX = "__";

/**
 * Whether a flag's value may be left out: a string flag whose valueHint is "[...]", as `--watch [seconds]`. The
 * runner, the help text and the completion scripts all read it from here.
 */
export function optionalValue(def: ArgDef): boolean {
  return def.type === "string" && def.valueHint?.startsWith("[") === true;
}

/**
 * Whether a flag may be given more than once, each value counting (citty keeps only the last): a string flag whose
 * valueHint ends in "...", as `--check-exec-dir <dir...>`. The help text shows it so; the completion scripts offer
 * the flag again.
 */
export function repeatable(def: ArgDef): boolean {
  return def.type === "string" && def.valueHint?.endsWith("...") === true;
}

/**
 * A flag's long name from its key in a command's args (probeMarks -> probe-marks): the runner, the help text and
 * the completion scripts all name flags with it.
 */
export function kebab(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();
}

/** The aliases of a command from its meta. */
export function aliasesOf(meta: CommandMeta): string[] {
  if (meta.alias === undefined) return [];
  return Array.isArray(meta.alias) ? meta.alias : [meta.alias];
}

/** A sub-command by name or alias, or null. */
export async function findSubCommand(cmd: AnyCommand, name: string): Promise<{ name: string; cmd: AnyCommand } | null> {
  const defs = await subCommandDefs(cmd);
  // By name, only that command is loaded (`gorb status` loads no other command's modules); aliases need them all.
  if (Object.hasOwn(defs, name)) return { name, cmd: (await resolveValue(defs[name])) as AnyCommand };
  for (const [subName, def] of Object.entries(defs)) {
    const sub = (await resolveValue(def)) as AnyCommand;
    if (aliasesOf(await metaOf(sub)).includes(name)) return { name: subName, cmd: sub };
  }
  return null;
}

export type { AnyCommand };
