/**
 * gorb serve under systemd: its lines reach the journal with their priority (`<3>` error, `<4>` warning, `<6>` info),
 * so `journalctl -u gorb -p warning` finds its warnings and errors; elsewhere they stay plain.
 */
import { describe, expect, test } from "bun:test";
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createConsola } from "consola/core";
import { daemonReporter } from "../../../src/daemon/log-lines.ts";
import { journalStreams } from "../../../src/journal.ts";

const MAIN = join(import.meta.dir, "../../../src/main.ts");

describe("log lines in systemd's journal", () => {
  test("each line, and each line of an error's stack, starts with the record's priority", () => {
    const out: string[] = [];
    const err: string[] = [];
    const reporter = daemonReporter({ stdout: (t) => out.push(t), stderr: (t) => err.push(t) }, { stdout: true, stderr: true });
    const log = createConsola({ level: 4, reporters: [reporter] }).withTag("gorb");
    log.info("restored 2 service(s)");
    log.success("gorb is listening on 127.0.0.1:4672");
    log.debug("libnl: system");
    log.warn("backend b1 is down");
    log.error("commit failed:", new Error("EIO"));
    expect(out).toEqual(["<6>[gorb] info: restored 2 service(s)\n", "<6>[gorb] info: gorb is listening on 127.0.0.1:4672\n", "<7>[gorb] debug: libnl: system\n"]);
    expect(err[0]).toBe("<4>[gorb] warning: backend b1 is down\n");
    const lines = (err[1] ?? "").split("\n");
    expect(lines[0]).toBe("<3>[gorb] error: commit failed: EIO");
    expect(lines.length).toBeGreaterThan(2);
    expect(lines.slice(1, -1).every((line) => line.startsWith("<3>"))).toBe(true);
    expect(lines.at(-1)).toBe("");
  });

  test("a descriptor is the journal only when its device and inode are those of $JOURNAL_STREAM", () => {
    const identity = (fd: number) => (fd === 2 ? { dev: 8n, ino: 4711n } : { dev: 8n, ino: 99n });
    expect(journalStreams({ JOURNAL_STREAM: "8:4711" }, identity)).toEqual({ stdout: false, stderr: true });
    expect(journalStreams({ JOURNAL_STREAM: "8:1" }, identity)).toEqual({ stdout: false, stderr: false });
    expect(journalStreams({}, identity)).toEqual({ stdout: false, stderr: false });
    expect(journalStreams({ JOURNAL_STREAM: "x" }, identity)).toEqual({ stdout: false, stderr: false });
  });

  test("gorb serve: its information and its start-up failure carry their priorities on the journal stream, none elsewhere", async () => {
    const dir = mkdtempSync(join(tmpdir(), "gorb-journal-"));
    try {
      // A state directory others may write to: the start stops there, before IPVS is looked at.
      const state = join(dir, "state");
      mkdirSync(state);
      chmodSync(state, 0o777);
      const run = async (journal: boolean): Promise<string> => {
        const file = join(dir, journal ? "journal" : "plain");
        const fd = openSync(file, "w");
        const st = statSync(file, { bigint: true });
        const env = { ...process.env, JOURNAL_STREAM: journal ? `${st.dev}:${st.ino}` : "1:1" };
        const proc = Bun.spawn([process.execPath, MAIN, "serve", "--state-dir", state, "--listen", "127.0.0.1:0"], { env, stdin: "ignore", stdout: fd, stderr: fd });
        await proc.exited;
        closeSync(fd);
        return readFileSync(file, "utf8");
      };
      const journal = (await run(true)).split("\n");
      expect(journal[0]).toStartWith("<6>[gorb] info: starting gorb");
      expect(journal.find((line) => line.includes("not safe"))).toStartWith("<3>error: gorb serve: the state's path is not safe");
      const plain = (await run(false)).split("\n");
      expect(plain[0]).toStartWith("[gorb] info: starting gorb");
      expect(plain.find((line) => line.includes("not safe"))).toStartWith("error: gorb serve:");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("gorb serve's usage error: its hint, written past the logger, is an error on the journal stream too", async () => {
    const dir = mkdtempSync(join(tmpdir(), "gorb-journal-"));
    try {
      const file = join(dir, "journal");
      const fd = openSync(file, "w");
      const st = statSync(file, { bigint: true });
      const env = { ...process.env, JOURNAL_STREAM: `${st.dev}:${st.ino}` };
      const proc = Bun.spawn([process.execPath, MAIN, "serve", "--listen", "nope", "--no-state"], { env, stdin: "ignore", stdout: fd, stderr: fd });
      expect(await proc.exited).toBe(2);
      closeSync(fd);
      expect(readFileSync(file, "utf8").split("\n")).toEqual([
        '<3>error: --listen: missing port in "nope"; use :PORT, HOST:PORT or [IPV6]:PORT',
        '<3>Run "gorb serve --help" for usage.',
        "",
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
