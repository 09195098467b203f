/**
 * systemd's journal. Under systemd, gorb's stdout and stderr are a stream to journald, which records every line at
 * the unit's SyslogLevel (info) unless the line starts with a syslog priority: `<3>` error, `<4>` warning, `<6>`
 * info, `<7>` debug (sd-daemon(3); SyslogLevelPrefix=yes is systemd's default). journald takes the prefix off and
 * records the line at that priority, so `journalctl -u gorb -p warning` lists gorb's warnings and errors.
 *
 * A descriptor is a journal stream when its device and inode are those systemd names in $JOURNAL_STREAM
 * ("DEVICE:INODE"); the variable alone is not enough, since a program run from a unit inherits it with its output
 * sent elsewhere (a pipe, a file), where the prefixes would be noise.
 */
import { fstatSync } from "node:fs";

/** The syslog priorities of gorb's log levels. */
const JOURNAL_PRIORITY = { fatal: 2, error: 3, warning: 4, info: 6, debug: 7 } as const;

/** A level of JOURNAL_PRIORITY. */
export type JournalLevel = keyof typeof JOURNAL_PRIORITY;

/** Which of stdout and stderr are journal streams. */
export interface JournalStreams {
  readonly stdout: boolean;
  readonly stderr: boolean;
}

/** Neither stream is the journal (tests, a terminal, a pipe). */
export const NO_JOURNAL: JournalStreams = { stdout: false, stderr: false };

/** The device and inode of a descriptor, as fstat gives them. */
export type FdIdentity = (fd: number) => { readonly dev: bigint; readonly ino: bigint } | null;

const fdIdentity: FdIdentity = (fd) => {
  try {
    return fstatSync(fd, { bigint: true });
  } catch {
    return null;
  }
};

/** Which of descriptors 1 and 2 are the journal stream $JOURNAL_STREAM of `env` names. */
export function journalStreams(env: Readonly<Record<string, string | undefined>>, identity: FdIdentity = fdIdentity): JournalStreams {
  const named = env.JOURNAL_STREAM;
  if (named === undefined || !/^\d+:\d+$/.test(named)) return NO_JOURNAL;
  const is = (fd: number): boolean => {
    const id = identity(fd);
    return id !== null && `${id.dev}:${id.ino}` === named;
  };
  return { stdout: is(1), stderr: is(2) };
}

/** `text` (lines ending with a newline) with every line prefixed with `level`'s priority. */
export function withPriority(text: string, level: JournalLevel): string {
  const prefix = `<${JOURNAL_PRIORITY[level]}>`;
  return prefix + text.replace(/\n(?=.)/gs, `\n${prefix}`);
}

/** The journal's level of a consola record type (success, ready, start, box, ...: info). */
export function journalLevelOf(type: string): JournalLevel {
  if (type === "fatal" || type === "error") return type;
  if (type === "warn") return "warning";
  if (type === "debug" || type === "trace" || type === "verbose") return "debug";
  return "info";
}
