/**
 * The CLI as a process, on a terminal (a pseudo-terminal from util-linux `script`) and on a pipe: on the terminal an
 * id's C1 and bidirectional controls are shown as marks (a service "\u202Ebew" does not pass for "web", "\u009B2J"
 * sends no escape), on stdout and stderr alike; a pipe gets the ids exactly as they are.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { startServer } from "./_harness.ts";

const MAIN = join(import.meta.dir, "../../../src/main.ts");
const server = startServer();
await server.stack.gorb.createService("\u202Ebew", { host: "10.0.0.1", port: 80 });
await server.stack.gorb.createService("web", { host: "10.0.0.2", port: 80 });

afterAll(() => server.stop());

/** `gorb ARGS` with stdin, stdout and stderr on a pseudo-terminal; what the terminal showed. */
async function onTerminal(args: readonly string[]): Promise<string> {
  // The arguments go through the environment: the command line script runs is a shell's.
  const env: Record<string, string> = { ...process.env, GORB_SERVER: server.url } as Record<string, string>;
  args.forEach((a, i) => (env[`ARG${i}`] = a));
  const command = [`'${process.execPath}'`, `'${MAIN}'`, ...args.map((_, i) => `"$ARG${i}"`)].join(" ");
  const proc = Bun.spawn(["script", "-q", "-e", "-c", command, "/dev/null"], { env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [out] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  return out;
}

/** `gorb ARGS` with stdout and stderr on pipes. */
async function onPipes(args: readonly string[]): Promise<{ stdout: string; stderr: string }> {
  const proc = Bun.spawn([process.execPath, MAIN, ...args], { env: { ...process.env, GORB_SERVER: server.url }, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { stdout, stderr };
}

describe("ids on a terminal and on a pipe", () => {
  test("service ls: marks on the terminal, the ids as they are on a pipe", async () => {
    const shown = await onTerminal(["service", "ls"]);
    expect(shown).toContain("⟨U+202E⟩bew");
    expect(shown).not.toContain("\u202E");
    const piped = await onPipes(["service", "ls"]);
    expect(piped.stdout).toContain("\u202Ebew");
    expect(piped.stdout).not.toContain("⟨U+");
  });

  test("status, whose table the daemon renders and the CLI writes as bytes: marks on the terminal too", async () => {
    const shown = await onTerminal(["status"]);
    expect(shown).toContain("⟨U+202E⟩bew");
    expect(shown).not.toContain("\u202E");
    expect((await onPipes(["status"])).stdout).toContain("\u202Ebew");
  });

  test("an error naming an id on stderr: a C1 control is a mark on the terminal, never an escape", async () => {
    const shown = await onTerminal(["service", "show", "\u009B2J"]);
    expect(shown).toContain("⟨U+009B⟩2J");
    expect(shown).not.toContain("\u009B");
    expect((await onPipes(["service", "show", "\u009B2J"])).stderr).toContain("\u009B2J");
  });
});
