/**
 * The process-facing side of a CLI run: where output goes, the environment, the logger. runCli installs one
 * context per run, so commands can be run in-process by tests with captured output and a fake environment
 * (citty does not pass data down to sub-commands, hence a module-level slot rather than an argument).
 */
import { writeSync } from "node:fs";
import { type ConsolaInstance, type LogObject, createConsola } from "consola/core";
import { journalLevelOf, withPriority } from "../journal.ts";
import type { AnyCommand } from "./_command.ts";
import { visibleText } from "../contract/ids.ts";
import { errorCode } from "../errno.ts";

/** CliIo is where a command writes. */
export interface CliIo {
  /** Text, or UTF-8 bytes written as they are (a daemon's rendered table). */
  stdout(text: string | Uint8Array): void;
  stderr(text: string): void;
  /** True when stdout is a terminal (tables may use width and colour; --watch clears the screen). */
  readonly isTTY: boolean;
}

/** CliContext is what every command may use. */
export interface CliContext {
  readonly io: CliIo;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** One-line messages to stderr ("error: ..."); debug lines only with GORB_DEBUG=1. */
  readonly log: ConsolaInstance;
  /** Aborted on Ctrl-C (SIGINT) when running as the real process; --watch stops on it. */
  readonly signal: AbortSignal;
  /** The command tree being run (`gorb completion` walks it). */
  readonly root: AnyCommand;
}

/**
 * Writes all of `text` to `fd` before returning. Output goes out in order, and the process can exit right after
 * without losing any. A non-blocking descriptor that is full (EAGAIN) is retried after 1 ms; a reader that went
 * away (EPIPE: `gorb status | head`) ends the writing silently.
 */
function writeAll(fd: number, text: string | Uint8Array): void {
  let rest = typeof text === "string" ? Buffer.from(text) : Buffer.from(text.buffer, text.byteOffset, text.byteLength);
  while (rest.length > 0) {
    try {
      rest = rest.subarray(writeSync(fd, rest));
    } catch (error) {
      const code = errorCode(error);
      if (code === "EPIPE") return;
      if (code !== "EAGAIN") throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
  }
}

/** Bytes that start the UTF-8 of a C1 control (0xC2), of U+061C (0xD8) or of the other bidirectional controls (0xE2). */
const CONTROL_LEADS = [0xc2, 0xd8, 0xe2] as const;

/**
 * What goes to a descriptor: on a terminal, an id's invisible controls (C1, bidirectional) are shown as marks
 * (visibleText), so a service named to pass for another, or to send a terminal escape, is seen as it is; a pipe or a
 * file gets the text as it is (scripts and --json keep the ids exact). Whether the descriptor is a terminal is asked
 * only of text that holds such a control: node:tty loads Node's stream modules, which most commands never need.
 */
function shownOn(fd: number, text: string | Uint8Array, isTerminal: (fd: number) => boolean): string | Uint8Array {
  if (typeof text !== "string" && !CONTROL_LEADS.some((b) => text.includes(b))) return text;
  const plain = typeof text === "string" ? text : new TextDecoder().decode(text);
  const shown = visibleText(plain);
  return shown !== plain && isTerminal(fd) ? shown : text;
}

/**
 * The real process: file descriptors 1 and 2, written synchronously. Not process.stdout: its stream is built on
 * first use, which cost `gorb status` more than its own work in the emulated test guest (about 1 s of 20 in a
 * profile).
 */
export function processIo(): CliIo {
  const terminals = new Map<number, boolean>();
  // Asked on first use: node:tty loads Node's stream modules, which most commands never need.
  const isTerminal = (fd: number): boolean => {
    let tty = terminals.get(fd);
    if (tty === undefined) terminals.set(fd, (tty = (require("node:tty") as typeof import("node:tty")).isatty(fd)));
    return tty;
  };
  return {
    stdout: (text) => writeAll(1, shownOn(1, text, isTerminal)),
    stderr: (text) => writeAll(2, shownOn(2, text, isTerminal)),
    get isTTY() {
      return isTerminal(1);
    },
  };
}

function formatLine(obj: LogObject): string {
  const text = [obj.message, ...obj.args.map((a: unknown) => (a instanceof Error ? a.message : String(a)))]
    .filter((part) => part !== undefined && part !== "")
    .join(" ");
  const prefix = obj.type === "error" || obj.type === "fatal" ? "error: " : obj.type === "warn" ? "warning: " : "";
  return `${prefix}${text}\n`;
}

/**
 * createCliLogger returns a consola instance that writes plain one-line messages to `io.stderr`; `journal`: stderr
 * is systemd's journal (src/journal.ts), so each line starts with its priority (`gorb serve`'s start-up failure is
 * an error there, not information).
 */
export function createCliLogger(io: CliIo, debug: boolean, journal = false): ConsolaInstance {
  return createConsola({
    level: debug ? 4 : 3,
    reporters: [{ log: (obj) => io.stderr(journal ? withPriority(formatLine(obj), journalLevelOf(obj.type)) : formatLine(obj)) }],
  });
}

let current: CliContext | null = null;

/** cliContext returns the context of the running command. */
export function cliContext(): CliContext {
  if (current === null) throw new Error("cliContext() called outside runCli()");
  return current;
}

/** withCliContext runs `fn` with `ctx` installed, restoring the previous one afterwards. */
export async function withCliContext<T>(ctx: CliContext, fn: () => Promise<T>): Promise<T> {
  const previous = current;
  current = ctx;
  try {
    return await fn();
  } finally {
    current = previous;
  }
}
