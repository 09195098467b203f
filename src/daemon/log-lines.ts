/**
 * How `gorb serve` writes its log: one line per record, `[gorb:TAG] LEVEL: message`, information to stdout and
 * warnings and errors to stderr (under systemd both reach the journal, which stamps the time).
 *
 * Why not consola's own reporter: it formats every record through node:util and its box and colour logic, which
 * measured 22 µs per line on the host against 1.5 µs for this one (`bun bench/log-lines.ts`, to /dev/null), and a
 * busy daemon logs a line per change (every PUT). consola stays the logger (levels, tags, the API every module uses);
 * only the reporter is ours. An Error among the arguments is written with its stack, on the following lines.
 *
 * Under systemd each line starts with its syslog priority (`<4>`: src/journal.ts), so the journal records warnings
 * and errors as such; elsewhere the lines are plain.
 *
 * A line shows the C1 and bidirectional controls an id may hold as marks (visibleText: `created service
 * "⟨U+202E⟩bew"`), as the UI and the CLI do: a log is read on terminals and in viewers that would act on them.
 */
import type { LogObject } from "consola/core";
import { visibleText } from "../contract/ids.ts";
import { type JournalStreams, NO_JOURNAL, journalLevelOf, withPriority } from "../journal.ts";

/** The level words of the lines; consola's other types (success, ready, start, box, ...) read as info. */
const LEVEL: Readonly<Record<string, string>> = {
  fatal: "fatal",
  error: "error",
  warn: "warning",
  debug: "debug",
  trace: "trace",
  verbose: "debug",
};

function errorOutput(type: string): boolean {
  return type === "error" || type === "fatal" || type === "warn";
}

/** The text of one record, ending with a newline. */
export function logLine(obj: Pick<LogObject, "type" | "tag" | "args" | "message">): string {
  let text = obj.message ?? "";
  let stacks = "";
  for (const arg of obj.args) {
    const part = arg instanceof Error ? arg.message : typeof arg === "string" ? arg : String(arg);
    if (part !== "") text = text === "" ? part : `${text} ${part}`;
    if (arg instanceof Error && arg.stack !== undefined) stacks += `\n${arg.stack.split("\n").slice(1).join("\n")}`;
  }
  return `${obj.tag === "" ? "" : `[${obj.tag}] `}${LEVEL[obj.type] ?? "info"}: ${visibleText(text)}${stacks}\n`;
}

/** Where the lines go. */
export interface LogSink {
  stdout(text: string): void;
  stderr(text: string): void;
}

const processSink: LogSink = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
};

/** The consola reporter of `gorb serve`; `journal`: the streams whose lines carry their priority. */
export function daemonReporter(sink: LogSink = processSink, journal: JournalStreams = NO_JOURNAL): { log(obj: LogObject): void } {
  return {
    log(obj) {
      const line = logLine(obj);
      const toStderr = errorOutput(obj.type);
      const text = (toStderr ? journal.stderr : journal.stdout) ? withPriority(line, journalLevelOf(obj.type)) : line;
      if (toStderr) sink.stderr(text);
      else sink.stdout(text);
    },
  };
}
