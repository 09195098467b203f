/**
 * Small additions to citty's command definitions: usage examples (shown at the end of --help) and the
 * resolution of lazy sub-commands for the runner, the help text and the completion generator.
 */
import type { ArgsDef, CommandDef, CommandMeta, Resolvable, SubCommandsDef } from "citty";

/** Any citty command (the helpers here do not depend on its args' types). */
type AnyCommand = CommandDef<ArgsDef>;

const examples = new WeakMap<object, readonly string[]>();

/** withExamples attaches usage examples to a command (each line is a full command line). */
export function withExamples<T extends ArgsDef>(cmd: CommandDef<T>, lines: readonly string[]): CommandDef<T> {
  examples.set(cmd, lines);
  return cmd;
}

/** examplesOf returns the examples attached with withExamples ([] when none). */
export function examplesOf(cmd: object): readonly string[] {
  return examples.get(cmd) ?? [];
}

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

/** The sub-commands of a command, resolved ({} when none). */
export async function subCommandsOf(cmd: AnyCommand): Promise<Record<string, AnyCommand>> {
  if (cmd.subCommands === undefined) return {};
  const subs: SubCommandsDef = await resolveValue(cmd.subCommands);
  const out: Record<string, AnyCommand> = {};
  for (const [name, sub] of Object.entries(subs)) out[name] = (await resolveValue(sub)) as AnyCommand;
  return out;
}

/** The aliases of a command from its meta. */
export function aliasesOf(meta: CommandMeta): string[] {
  if (meta.alias === undefined) return [];
  return Array.isArray(meta.alias) ? meta.alias : [meta.alias];
}

/** A sub-command by name or alias, or null. */
export async function findSubCommand(cmd: AnyCommand, name: string): Promise<{ name: string; cmd: AnyCommand } | null> {
  const subs = await subCommandsOf(cmd);
  const direct = subs[name];
  if (direct !== undefined && Object.hasOwn(subs, name)) return { name, cmd: direct };
  for (const [subName, sub] of Object.entries(subs)) {
    if (aliasesOf(await metaOf(sub)).includes(name)) return { name: subName, cmd: sub };
  }
  return null;
}

export type { AnyCommand };
