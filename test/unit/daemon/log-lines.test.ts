import { describe, expect, test } from "bun:test";
import { createConsola } from "consola/core";
import { daemonReporter } from "../../../src/daemon/log-lines.ts";

function recorder(level = 3) {
  const out: string[] = [];
  const err: string[] = [];
  const log = createConsola({ level, reporters: [daemonReporter({ stdout: (t) => out.push(t), stderr: (t) => err.push(t) })] }).withTag("gorb");
  return { log, out, err };
}

describe("gorb serve's log lines", () => {
  test("one line per record with its tag and level; information to stdout, warnings and errors to stderr", () => {
    const { log, out, err } = recorder();
    log.withTag("core").info(`backend "b1" of service "web" created`);
    log.withTag("api").success("listening on 127.0.0.1:4672");
    log.withTag("core").warn("backend", `"b1"`, "is down");
    log.error("cannot write the state");
    expect(out).toEqual([`[gorb:core] info: backend "b1" of service "web" created\n`, "[gorb:api] info: listening on 127.0.0.1:4672\n"]);
    expect(err).toEqual([`[gorb:core] warning: backend "b1" is down\n`, "[gorb] error: cannot write the state\n"]);
  });

  test("an id's C1 and bidirectional controls are written as marks, as the UI and the CLI show them", () => {
    const { log, out, err } = recorder();
    log.withTag("core").info(`created service ${JSON.stringify("\u202Ebew")}`);
    log.withTag("api").warn("PUT /service/x:", `backend ${JSON.stringify("\u009B2J")} refused`);
    expect(out).toEqual([`[gorb:core] info: created service "⟨U+202E⟩bew"\n`]);
    expect(err).toEqual([`[gorb:api] warning: PUT /service/x: backend "⟨U+009B⟩2J" refused\n`]);
  });

  test("debug lines only with the verbose level", () => {
    const quiet = recorder(3);
    quiet.log.debug("libnl: embedded");
    expect(quiet.out).toEqual([]);
    const verbose = recorder(4);
    verbose.log.debug("libnl: embedded");
    expect(verbose.out).toEqual(["[gorb] debug: libnl: embedded\n"]);
  });

  test("an Error is written with its message, and its stack on the following lines", () => {
    const { log, err } = recorder();
    const error = new Error("EIO: the disk failed");
    log.error("commit failed:", error);
    const [line] = err;
    expect(line?.split("\n")[0]).toBe("[gorb] error: commit failed: EIO: the disk failed");
    expect(line).toContain("log-lines.test.ts");
    expect(line?.endsWith("\n")).toBe(true);
  });
});
