/**
 * Completion scripts generated from the command tree. The bash script is run in a real bash with COMP_WORDS
 * set as bash would set them; zsh and fish scripts are checked for the entries they must carry.
 */
import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "bun:test";
import { existsSync } from "node:fs";
import { completionTree } from "../../../src/cli/completion.ts";
import { root } from "../../../src/cli/index.ts";
import { runGorb, startServer, type TestServer } from "./_harness.ts";

/**
 * A directory holding `gorb`: this checkout's CLI (src/main.ts under this bun), which the scripts run for the ids of
 * services and backends (`gorb __ids`). The shells run with it first on PATH and GORB_SERVER at a closed port, so a
 * gorb installed on the machine, or a daemon running on it, plays no part unless a test says --server.
 */
const gorbBin = mkdtempSync(join(tmpdir(), "gorb-completion-bin-"));
writeFileSync(join(gorbBin, "gorb"), `#!/bin/sh\nexec '${process.execPath}' '${join(import.meta.dir, "../../../src/main.ts")}' "$@"\n`, { mode: 0o755 });
const shellEnv = (server = "http://127.0.0.1:9"): Record<string, string> => ({
  PATH: `${gorbBin}:${process.env.PATH ?? "/usr/bin:/bin"}`,
  HOME: tmpdir(),
  GORB_SERVER: server,
});

async function script(shell: string): Promise<string> {
  const run = await runGorb(["completion", shell]);
  expect([run.code, run.stderr]).toEqual([0, ""]);
  return run.stdout;
}

/** bash's COMP_WORDBREAKS without "=": a word such as --pulse=http is then not split. */
const breaksWithoutEquals = " \t\n\"'@><;|&(:";

/**
 * What bash offers after `words`, split as bash splits the line (the last word is the one being completed), run in
 * `cwd`. A word of "=" and ":" only is a piece bash cut out of a word at COMP_WORDBREAKS: on the line it touches the
 * words on both sides (["--pulse", "=", "http"] is --pulse=http).
 */
function bashComplete(source: string, words: string[], cwd?: string, wordBreaks?: string): string[] {
  const proc = Bun.spawnSync(["bash", "--norc", "--noprofile", "-c", bashProgram(source, words, wordBreaks)], { stderr: "pipe", env: shellEnv(), ...(cwd === undefined ? {} : { cwd }) });
  expect(proc.stderr.toString()).toBe("");
  return proc.stdout.toString().split("\n").filter((l) => l !== "").sort();
}

/** As bashComplete, with the daemon of this process (a test's server) answering meanwhile: GORB_SERVER is `server`. */
async function bashCompleteIds(source: string, words: string[], cwd: string, server: string, wordBreaks?: string): Promise<string[]> {
  const proc = Bun.spawn(["bash", "--norc", "--noprofile", "-c", bashProgram(source, words, wordBreaks)], { stdout: "pipe", stderr: "pipe", env: shellEnv(server), cwd });
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  expect(stderr).toBe("");
  return stdout.split("\n").filter((l) => l !== "").sort();
}

/** The bash program that completes `words` with the script `source` and prints COMPREPLY. */
function bashProgram(source: string, words: string[], wordBreaks?: string): string {
  const cut = (w: string) => /^[=:]+$/.test(w);
  const line = words.map((w, i) => (i > 0 && !cut(w) && !cut(words[i - 1] ?? "") ? ` ${w}` : w)).join("");
  const q = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;
  const breaks = wordBreaks === undefined ? "" : `COMP_WORDBREAKS=${q(wordBreaks)}; `;
  return `${source}\n${breaks}COMP_WORDS=(${words.map(q).join(" ")}); COMP_CWORD=${words.length - 1}; COMP_LINE=${q(line)}; COMP_POINT=${line.length}; _gorb; printf '%s\\n' "\${COMPREPLY[@]}"`;
}

describe("the command tree", () => {
  test("lists every command path, aliases included, with flags and enum values", async () => {
    const tree = await completionTree(root);
    const paths = tree.map((n) => n.path.join(" "));
    for (const p of ["", "serve", "service", "service add", "service create", "service ls", "backend set", "status", "completion"]) {
      expect(paths).toContain(p);
    }
    const backendAdd = tree.find((n) => n.path.join(" ") === "backend add");
    const forward = backendAdd?.flags.find((f) => f.names.includes("--forward"));
    expect(forward).toEqual({
      names: ["--forward", "--method"],
      description: expect.any(String),
      takesValue: true,
      optionalValue: false,
      values: ["nat", "dr", "tunnel", "ipip", "local"],
      localNames: null,
      repeatable: false,
    });
    const serve = tree.find((n) => n.path.join(" ") === "serve");
    expect(serve?.flags.find((f) => f.names.includes("--listen"))?.names).toEqual(["--listen", "-l"]);
    expect(tree.find((n) => n.path.join(" ") === "completion")?.positionalValues).toEqual(["bash", "zsh", "fish"]);
    const status = tree.find((n) => n.path.join(" ") === "status");
    expect(status?.flags.find((f) => f.names.includes("--watch"))).toMatchObject({ takesValue: true, optionalValue: true });
  });
});

describe("bash", () => {
  test("completes commands, sub-commands, flags and their values", async () => {
    const source = await script("bash");
    expect(bashComplete(source, ["gorb", ""])).toEqual(["apply", "backend", "bgp", "completion", "diff", "reconcile", "serve", "service", "state", "status"]);
    expect(bashComplete(source, ["gorb", "se"])).toEqual(["serve", "service"]);
    expect(bashComplete(source, ["gorb", "-"])).toEqual(["--help", "--version", "-V", "-h"]);
    expect(bashComplete(source, ["gorb", "serve", "--ver"])).toEqual(["--verbose"]);
    expect(bashComplete(source, ["gorb", "service", "s"])).toEqual(["set", "show"]);
    expect(bashComplete(source, ["gorb", "backend", "add", "web", "b1", "--pulse-r"])).toEqual(["--pulse-rise"]);
    expect(bashComplete(source, ["gorb", "backend", "add", "web", "b1", "--pulse", ""])).toEqual(["dns", "exec", "http", "https", "none", "tcp", "tls", "udp"]);
    expect(bashComplete(source, ["gorb", "backend", "add", "web", "b1", "--method", "t"])).toEqual(["tunnel"]);
    expect(bashComplete(source, ["gorb", "service", "add", "x", "--host", "10.0.0.1", "--pro"])).toEqual(["--protocol"]);
    expect(bashComplete(source, ["gorb", "serve", "-l", ":1", "--f"])).toEqual(["--flush"]);
    expect(bashComplete(source, ["gorb", "completion", ""])).toEqual(["bash", "fish", "zsh"]);
    expect(bashComplete(source, ["gorb", "serve", "-l", ""])).toEqual([]);
  });

  test("after a flag whose value may be left out (--watch [seconds]), completes what may come next", async () => {
    const source = await script("bash");
    const statusFlags = ["--ca", "--cluster", "--direct", "--help", "--json", "--server", "--token", "--token-file", "--watch", "-h", "-w"];
    expect(bashComplete(source, ["gorb", "status", "--watch", "-"])).toEqual(statusFlags);
    expect(bashComplete(source, ["gorb", "status", "-w", "--j"])).toEqual(["--json"]);
    expect(bashComplete(source, ["gorb", "status", "--watch", "5", "--j"])).toEqual(["--json"]);
    // A flag's value still is its value: after --watch 5 comes no other value of --watch.
    expect(bashComplete(source, ["gorb", "status", "--watch", "5", "--server", "x", "--c"])).toEqual(["--ca", "--cluster"]);
  });

  test("completes --flag=VALUE, whether or not bash split the word at its '='", async () => {
    const source = await script("bash");
    const pulses = ["dns", "exec", "http", "https", "none", "tcp", "tls", "udp"];
    const add = ["gorb", "backend", "add", "web", "b1"];
    // "=" in COMP_WORDBREAKS (bash's default): --pulse= arrives as "--pulse" "=", and bash replaces what follows the "=".
    expect(bashComplete(source, [...add, "--pulse", "="])).toEqual(pulses);
    expect(bashComplete(source, [...add, "--pulse", "=", "ht"])).toEqual(["http", "https"]);
    expect(bashComplete(source, [...add, "--method", "=", "t"])).toEqual(["tunnel"]);
    // Without it the word is whole, and so is each completion.
    expect(bashComplete(source, [...add, "--pulse="], undefined, breaksWithoutEquals)).toEqual(pulses.map((p) => `--pulse=${p}`));
    expect(bashComplete(source, [...add, "--pulse=ht"], undefined, breaksWithoutEquals)).toEqual(["--pulse=http", "--pulse=https"]);
    // A value given so is the flag's, not an argument; the words after it complete as usual.
    expect(bashComplete(source, [...add, "--pulse", "=", "http", "--pulse-r"])).toEqual(["--pulse-rise"]);
    expect(bashComplete(source, [...add, "--pulse=http", "--pulse-r"], undefined, breaksWithoutEquals)).toEqual(["--pulse-rise"]);
    expect(bashComplete(source, ["gorb", "completion", "--help", "=", "x", ""])).toEqual(["bash", "fish", "zsh"]);
    expect(bashComplete(source, ["gorb", "serve", "--unknown-destinations", "=", "r"])).toEqual(["remove", "report"]);
  });

  test("after \"--\" completes no flag and no command: gorb reads every word there as an argument", async () => {
    const source = await script("bash");
    // `gorb service rm -- -x` removes the service "-x"; `gorb service -- add` is a missing command.
    expect(bashComplete(source, ["gorb", "service", "rm", "--", "-"])).toEqual([]);
    expect(bashComplete(source, ["gorb", "service", "--", ""])).toEqual([]);
    expect(bashComplete(source, ["gorb", "--", "se"])).toEqual([]);
    // A command's own argument still completes there, once; "--" itself is still completed as a flag's start.
    expect(bashComplete(source, ["gorb", "completion", "--", "b"])).toEqual(["bash"]);
    expect(bashComplete(source, ["gorb", "completion", "--", "bash", ""])).toEqual([]);
    expect(bashComplete(source, ["gorb", "service", "rm", "web", "--s"])).toEqual(["--server"]);
  });

  test("completes file names for file flags, directories for dir flags, and the choices of string flags", async () => {
    const source = await script("bash");
    const dir = mkdtempSync(join(tmpdir(), "gorb-completion-"));
    try {
      writeFileSync(join(dir, "services.yaml"), "");
      writeFileSync(join(dir, "token"), "");
      mkdirSync(join(dir, "state dir"));
      expect(bashComplete(source, ["gorb", "apply", "-f", ""], dir)).toEqual(["services.yaml", "state dir", "token"]);
      expect(bashComplete(source, ["gorb", "diff", "--file", "se"], dir)).toEqual(["services.yaml"]);
      expect(bashComplete(source, ["gorb", "serve", "--config", "s"], dir)).toEqual(["services.yaml", "state dir"]);
      expect(bashComplete(source, ["gorb", "status", "--token-file", "t"], dir)).toEqual(["token"]);
      expect(bashComplete(source, ["gorb", "service", "ls", "--ca", "to"], dir)).toEqual(["token"]);
      expect(bashComplete(source, ["gorb", "serve", "--state-dir", ""], dir)).toEqual(["state dir"]);
      // BIRD's control socket and gorb's include file are local paths too, for serve and for bgp doctor.
      expect(bashComplete(source, ["gorb", "serve", "--bgp-bird-socket", "to"], dir)).toEqual(["token"]);
      expect(bashComplete(source, ["gorb", "serve", "--bgp-include", "se"], dir)).toEqual(["services.yaml"]);
      expect(bashComplete(source, ["gorb", "serve", "--bgp-include=se"], dir, breaksWithoutEquals)).toEqual(["--bgp-include=services.yaml"]);
      expect(bashComplete(source, ["gorb", "bgp", "doctor", "--socket", "to"], dir)).toEqual(["token"]);
      expect(bashComplete(source, ["gorb", "bgp", "doctor", "--include", "se"], dir)).toEqual(["services.yaml"]);
      expect(bashComplete(source, ["gorb", "apply", "--file", "=", "se"], dir)).toEqual(["services.yaml"]);
      expect(bashComplete(source, ["gorb", "apply", "--file=se"], dir, breaksWithoutEquals)).toEqual(["--file=services.yaml"]);
      expect(bashComplete(source, ["gorb", "service", "add", "web", "--method", "w"])).toEqual(["wlc", "wrr"]);
      expect(bashComplete(source, ["gorb", "serve", "--unknown-destinations", ""])).toEqual(["adopt", "remove", "report"]);
      // Values that are not local names get none.
      expect(bashComplete(source, ["gorb", "service", "add", "web", "--host", ""], dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("completes file names holding ':' or '=', which bash splits the word at, and inserts only what follows them", async () => {
    const source = await script("bash");
    const dir = mkdtempSync(join(tmpdir(), "gorb-completion-"));
    try {
      mkdirSync(join(dir, "conf:v2"));
      writeFileSync(join(dir, "conf:v2", "services.yaml"), "");
      mkdirSync(join(dir, "x=y"));
      writeFileSync(join(dir, "x=y", "cert.pem"), "");
      writeFileSync(join(dir, "plain.pem"), "");
      // ./conf:v2/ arrives as "./conf" ":" "v2/"; bash replaces the "v2/", so that is what each name starts with.
      expect(bashComplete(source, ["gorb", "apply", "-f", "./conf", ":", "v2/"], dir)).toEqual(["v2/services.yaml"]);
      expect(bashComplete(source, ["gorb", "apply", "-f", "x", "=", "y/c"], dir)).toEqual(["y/cert.pem"]);
      // Cut so, bash cannot tell a directory: it gets its "/" here.
      expect(bashComplete(source, ["gorb", "apply", "-f", "conf", ":"], dir)).toEqual(["v2/"]);
      // --flag=VALUE, the value holding "=" or ":".
      expect(bashComplete(source, ["gorb", "serve", "--tls-cert", "=", "x", "=", "y/"], dir)).toEqual(["y/cert.pem"]);
      expect(bashComplete(source, ["gorb", "serve", "--tls-cert", "=", "conf", ":", "v2/s"], dir)).toEqual(["v2/services.yaml"]);
      expect(bashComplete(source, ["gorb", "serve", "--tls-key=conf", ":", "v2/"], dir, breaksWithoutEquals)).toEqual(["v2/services.yaml"]);
      // Ordinary names still complete whole, after a flag or its "=".
      expect(bashComplete(source, ["gorb", "serve", "--tls-cert", "=", "pl"], dir)).toEqual(["plain.pem"]);
      expect(bashComplete(source, ["gorb", "serve", "--tls-cert", "p"], dir)).toEqual(["plain.pem"]);
      expect(bashComplete(source, ["gorb", "apply", "-f", "co"], dir)).toEqual(["conf:v2"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("zsh and fish", () => {
  test("zsh: a #compdef function with descriptions, flag specs and values", async () => {
    const text = await script("zsh");
    expect(text).toStartWith("#compdef gorb\n");
    expect(text).toContain("'serve:Run the gorb daemon");
    expect(text).toContain("'(--forward --method)--forward=[Forwarding method (default nat); --method is the GORB name]:value:(nat dr tunnel ipip local)'");
    expect(text).toContain("compdef _gorb gorb");
    expect(text).toContain("'(--file -f)--file=[Configuration file with a services\\: section (.yaml, .yml, .json or .toml)]:file:_files'");
    expect(text).toContain("'--method=[Scheduler (default wrr)]:value:(rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos)'");
    expect(text).toContain(":dir:_files -/'");
    // --watch's value may be left out ("::"): zsh then offers the other flags too.
    expect(text).toContain("'(--watch -w)--watch=[Redraw on every change");
    expect(text).toMatch(/'\(--watch -w\)--watch=\[[^\]]*\]::value:'/);
    // A --no- flag shows its own description, not the positive flag's.
    expect(text).toContain("'--no-state[Keep nothing on disk\\: services are lost when gorb stops]'");
  });

  test("zsh: file names after the BGP path flags; --check-exec-dir, which may be repeated, is offered again", async () => {
    const text = await script("zsh");
    expect(text).toMatch(/'--bgp-bird-socket=\[[^\]]*\]:file:_files'/);
    expect(text).toMatch(/'--bgp-include=\[[^\]]*\]:file:_files'/);
    expect(text).toMatch(/'--socket=\[BIRD'\\''s control socket[^\]]*\]:file:_files'/);
    expect(text).toMatch(/'--include=\[[^\]]*\]:file:_files'/);
    // "*": _arguments offers it after it was given (gorb serve --check-exec-dir /a --check-exec-dir /b).
    expect(text).toMatch(/'\*--check-exec-dir=\[[^\]]*\]:dir:_files -\/'/);
    // A flag given once is not offered again.
    expect(text).toMatch(/'--state-dir=\[[^\]]*\]:dir:_files -\/'/);
    expect(text).not.toContain("'*--state-dir");
  });

  test("zsh: flags of commands with sub-commands, no stacked one-letter flags, none after \"--\"", async () => {
    const text = await script("zsh");
    // gorb -<TAB> offers --help and --version, gorb service -<TAB> --help, beside the sub-commands.
    const rootCase = text.slice(text.indexOf("\n    '')\n"), text.indexOf("\n    'serve')\n"));
    expect(rootCase).toContain("'(--version -V)--version[Print the version]'");
    expect(rootCase).toContain("'1:command:{_describe -t commands command cmds}'");
    const serviceCase = text.slice(text.indexOf("\n    'service')\n"), text.indexOf("\n    'service add')\n"));
    expect(serviceCase).toContain("'(--help -h)--help[Show help]'");
    // gorb refuses -fv ("unknown option"): -s would offer it after -f. -S: after "--" every word is an argument.
    expect(text).not.toContain("_arguments -s ");
    expect(text.match(/_arguments -S /g)?.length).toBe((await completionTree(root)).length);
  });

  test("fish: complete lines per command path", async () => {
    const text = await script("fish");
    expect(text).toContain(`complete -c gorb -n "__gorb_at 'service'; and not __gorb_ended" -a 'add' -d 'Create a virtual service'\n`);
    expect(text).toContain("-l pulse -x -a 'tcp http https udp dns tls exec none' -d 'Health check type (default tcp)'");
    expect(text).toContain(`complete -c gorb -n "__gorb_at 'serve'" -l listen -s l -x -d 'HTTP listen address`);
    expect(text).toContain(`complete -c gorb -n "__gorb_at 'apply'" -l file -s f -r -F -d 'Configuration file`);
    expect(text).toContain(`-l unknown-destinations -x -a 'report adopt remove'`);
    // --watch's value may be left out: no -x (which would make the next word its value).
    expect(text).toContain(`complete -c gorb -n "__gorb_at 'status'" -l watch -s w -d 'Redraw on every change`);
    expect(text).toContain(`complete -c gorb -n "__gorb_at 'serve'" -l no-ui -d 'Do not serve the web UI (/ui answers 404)'\n`);
  });

  test("fish: directories (not files) after a dir flag, and a command's first argument only while it is not given", async () => {
    const text = await script("fish");
    const dirs = `-x -a '(__fish_complete_directories (string replace -r -- "^-[^=]*=" "" (commandline -ct)))'`;
    expect(text).toContain(`complete -c gorb -n "__gorb_at 'serve'" -l state-dir ${dirs} -d 'Directory of the durable state`);
    expect(text).toContain(`complete -c gorb -n "__gorb_at 'serve'" -l check-exec-dir ${dirs} -d `);
    expect(text).toContain(`complete -c gorb -n "__gorb_at 'state export'" -l state-dir ${dirs} -d `);
    expect(text).not.toMatch(/-l (state-dir|hook-dir|check-exec-dir) -r -F/);
    // `gorb completion bash fish` is an unexpected argument: bash, zsh and fish are offered before the shell only.
    expect(text).toContain(`complete -c gorb -n "__gorb_at 'completion'; and __gorb_no_arg 'completion'" -a 'bash zsh fish'\n`);
    expect(text).toContain("function __gorb_no_arg\n");
  });

  test("fish: no command after \"--\" (gorb reads every word there as an argument), a command's own argument still", async () => {
    const text = await script("fish");
    expect(text).toContain("function __gorb_ended\n    contains -- -- (commandline -opc)[2..-1]\nend\n");
    // Every sub-command line carries the condition; the first argument's values (completion's shell) do not.
    const commandLines = text.split("\n").filter((l) => / -a '[a-z-]+' -d /.test(l) && !l.includes(" -l ") && !l.includes(" -s "));
    expect(commandLines.length).toBeGreaterThan(10);
    for (const line of commandLines) expect(line).toContain("; and not __gorb_ended\" -a ");
    expect(text).toContain(`complete -c gorb -n "__gorb_at 'completion'; and __gorb_no_arg 'completion'" -a 'bash zsh fish'\n`);
  });

  test("fish: file names after the BGP path flags", async () => {
    const text = await script("fish");
    expect(text).toContain(`complete -c gorb -n "__gorb_at 'serve'" -l bgp-bird-socket -r -F -d 'Announce each healthy VIP`);
    expect(text).toContain(`complete -c gorb -n "__gorb_at 'serve'" -l bgp-include -r -F -d 'The BIRD include file`);
    expect(text).toContain(`complete -c gorb -n "__gorb_at 'bgp doctor'" -l socket -r -F -d `);
    expect(text).toContain(`complete -c gorb -n "__gorb_at 'bgp doctor'" -l include -r -F -d `);
  });
});

/** A closed port: no daemon answers there. */
const CLOSED = "http://127.0.0.1:9";

/** The lines a shell command printed (none empty), run in `cwd` with GORB_SERVER `server`; it must say nothing on stderr. */
async function shell(argv: string[], cwd: string, server: string): Promise<string[]> {
  const proc = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe", env: shellEnv(server), cwd });
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  expect(stderr).toBe("");
  return stdout.split("\n").filter((l) => l !== "");
}

describe("ids from the daemon: services and backends that exist", () => {
  let server: TestServer;
  // A service id is the daemon's, free-form text: one that reads as a command substitution must stay text.
  const hostile = "$(touch pwned)";
  const put = async (path: string, body: unknown) => {
    const r = await fetch(`${server.url}${path}`, { method: "PUT", body: JSON.stringify(body) });
    expect(r.status).toBe(200);
  };
  beforeAll(async () => {
    server = startServer();
    await put("/service/web", { host: "10.0.0.1", port: 80 });
    await put("/service/web2", { host: "10.0.0.2", port: 80 });
    await put(`/service/${encodeURIComponent(hostile)}`, { host: "10.0.0.3", port: 80 });
    await put("/service/web/b1", { host: "10.1.0.1", port: 80 });
    await put("/service/web/b2", { host: "10.1.0.2", port: 80 });
    await put(`/service/${encodeURIComponent("my web")}`, { host: "10.0.0.4", port: 80 });
    await put(`/service/${encodeURIComponent("my web")}/b9`, { host: "10.1.0.9", port: 80 });
  });
  afterAll(() => server.stop());

  test("gorb __ids prints the service ids, or a service's backend ids, one per line; errors as any command's", async () => {
    expect(await runGorb(["__ids", "--server", server.url])).toEqual({ code: 0, stdout: `${hostile}\nmy web\nweb\nweb2\n`, stderr: "" });
    expect(await runGorb(["__ids", "--server", server.url, "--", "web"])).toEqual({ code: 0, stdout: "b1\nb2\n", stderr: "" });
    expect(await runGorb(["__ids", "--server", server.url, "web2"])).toEqual({ code: 0, stdout: "", stderr: "" });
    expect((await runGorb(["__ids", "--server", server.url, "nope"])).code).toBe(4);
    expect((await runGorb(["__ids", "--server", "http://127.0.0.1:9"])).code).toBe(3);
  });

  test("it is hidden: not in the help, not completed", async () => {
    expect((await runGorb(["--help"])).stdout).not.toContain("__ids");
    const tree = await completionTree(root);
    expect(tree.some((n) => n.path.includes("__ids"))).toBe(false);
    expect(tree.find((n) => n.path.join(" ") === "backend rm")?.positionalIds).toEqual(["service", "backend"]);
    // A new service or backend has no id to complete yet.
    expect(tree.find((n) => n.path.join(" ") === "service add")?.positionalIds).toEqual([]);
    expect(tree.find((n) => n.path.join(" ") === "backend add")?.positionalIds).toEqual(["service"]);
  });

  test("bash: service ids, then the backend ids of the service given, from the daemon of --server or GORB_SERVER", async () => {
    const source = await script("bash");
    const dir = mkdtempSync(join(tmpdir(), "gorb-completion-ids-"));
    try {
      const quoted = "\\$\\(touch\\ pwned\\)";
      expect(await bashCompleteIds(source, ["gorb", "backend", "rm", ""], dir, server.url)).toEqual([quoted, "my\\ web", "web", "web2"]);
      // A service typed quoted, in any of the shell's ways, is the daemon's id unquoted; so is a word being typed.
      for (const typed of ['"my web"', "my\\ web", "'my web'", '"my"\\ w"eb"']) {
        expect(await bashCompleteIds(source, ["gorb", "backend", "drain", typed, ""], dir, server.url)).toEqual(["b9"]);
      }
      expect(await bashCompleteIds(source, ["gorb", "service", "show", '"my w'], dir, server.url)).toEqual(["my\\ web"]);
      expect(await bashCompleteIds(source, ["gorb", "service", "show", "my\\ "], dir, server.url)).toEqual(["my\\ web"]);
      expect(await bashCompleteIds(source, ["gorb", "backend", "show", "--server", `'${server.url}'`, "web", ""], dir, CLOSED)).toEqual(["b1", "b2"]);
      expect(await bashCompleteIds(source, ["gorb", "backend", "rm", "we"], dir, server.url)).toEqual(["web", "web2"]);
      expect(await bashCompleteIds(source, ["gorb", "backend", "drain", "web", ""], dir, server.url)).toEqual(["b1", "b2"]);
      expect(await bashCompleteIds(source, ["gorb", "status", "w"], dir, server.url)).toEqual(["web", "web2"]);
      expect(existsSync(join(dir, "pwned"))).toBe(false);
      // The line's own --server wins over GORB_SERVER (closed here), in either spelling, before or after the ids.
      expect(await bashCompleteIds(source, ["gorb", "backend", "set", "--server", server.url, "web", "b"], dir, CLOSED)).toEqual(["b1", "b2"]);
      // As bash splits it at its default COMP_WORDBREAKS: "http" ":" "//127.0.0.1" ":" "PORT", joined back.
      const [scheme, rest] = server.url.split("://") as [string, string];
      const [host, port] = rest.split(":") as [string, string];
      expect(await bashCompleteIds(source, ["gorb", "backend", "show", "--server", scheme, ":", `//${host}`, ":", port, "web", ""], dir, CLOSED)).toEqual(["b1", "b2"]);
      expect(await bashCompleteIds(source, ["gorb", "service", "show", `--server=${server.url}`, "w"], dir, CLOSED, breaksWithoutEquals)).toEqual(["web", "web2"]);
      expect(await bashCompleteIds(source, ["gorb", "service", "rm", "--", "web"], dir, server.url)).toEqual(["web", "web2"]);
      // No id for a new service or backend, none past the last argument, none when the daemon is not there.
      expect(await bashCompleteIds(source, ["gorb", "service", "add", ""], dir, server.url)).toEqual([]);
      expect(await bashCompleteIds(source, ["gorb", "backend", "add", "web", ""], dir, server.url)).toEqual([]);
      expect(await bashCompleteIds(source, ["gorb", "backend", "rm", "web", "b1", ""], dir, server.url)).toEqual([]);
      expect(await bashCompleteIds(source, ["gorb", "backend", "rm", ""], dir, CLOSED)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000); // some 25 completions, each running `gorb __ids` (a bun start): 3.7 s on a loaded 2-CPU host

  test("the line's --direct is passed on: the ids are then the kernel's (gorb __ids --direct)", async () => {
    // A `gorb` that answers with what it was asked, as one id.
    const stubDir = mkdtempSync(join(tmpdir(), "gorb-completion-stub-"));
    writeFileSync(join(stubDir, "gorb"), `#!/bin/sh\necho "asked:$*"\n`, { mode: 0o755 });
    const stubbed = async (shellArgv: string[], cwd: string) => {
      const proc = Bun.spawn(shellArgv, { stdout: "pipe", stderr: "pipe", cwd, env: { ...shellEnv(), PATH: `${stubDir}:${process.env.PATH ?? "/usr/bin:/bin"}` } });
      const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      expect(stderr).toBe("");
      return stdout.split("\n").filter((l) => l !== "");
    };
    try {
      const bash = await script("bash");
      expect(await stubbed(["bash", "--norc", "--noprofile", "-c", bashProgram(bash, ["gorb", "backend", "rm", "--direct", "tcp:10.0.0.1:80", ""])], stubDir)).toEqual([
        "asked:__ids\\ --direct\\ --\\ tcp:10.0.0.1:80",
      ]);
      const fishFile = join(stubDir, "gorb.fish");
      writeFileSync(fishFile, await script("fish"));
      expect(await stubbed(["fish", "--no-config", "-c", `source ${fishFile}; complete -C "gorb service show --direct "`], stubDir)).toEqual(["asked:__ids --direct"]);
      expect(await script("zsh")).toContain("--direct) conn+=(\"$w\") ;;");
    } finally {
      rmSync(stubDir, { recursive: true, force: true });
    }
  });

  test("fish: the same ids, taken as text", async () => {
    const source = await script("fish");
    const dir = mkdtempSync(join(tmpdir(), "gorb-completion-ids-"));
    const file = join(dir, "gorb.fish");
    writeFileSync(file, source);
    const complete = async (line: string, serverUrl = server.url) => {
      const out = await shell(["fish", "--no-config", "-c", `source ${file}; complete -C ${JSON.stringify(line)}`], dir, serverUrl);
      return out.filter((l) => !l.startsWith("-")).sort();
    };
    try {
      expect(await complete("gorb backend rm ")).toEqual([hostile, "my web", "web", "web2"]);
      expect(await complete("gorb backend undrain web ")).toEqual(["b1", "b2"]);
      expect(await complete("gorb backend undrain 'my web' ")).toEqual(["b9"]);
      expect(await complete("gorb backend undrain my\\ web ")).toEqual(["b9"]);
      expect(await complete(`gorb backend show --server ${server.url} web b`, "http://127.0.0.1:9")).toEqual(["b1", "b2"]);
      expect(await complete("gorb service add ")).toEqual([]);
      expect(await complete("gorb backend rm web b1 ")).toEqual([]);
      expect(existsSync(join(dir, "pwned"))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000); // 7 completions, each a fish start and a `gorb __ids` (a bun start): 5 s with a quarter of a CPU

  test("zsh: _arguments specs call the id function, which hands the daemon's ids to compadd", async () => {
    const source = await script("zsh");
    expect(source).toContain("'1:service:{_gorb_idlist service}' '2:backend:{_gorb_idlist backend \"${(Q)line[1]}\"}'");
    const dir = mkdtempSync(join(tmpdir(), "gorb-completion-ids-"));
    const file = join(dir, "_gorb");
    writeFileSync(file, source);
    // compadd stubbed to print the array it is given; words and CURRENT as _arguments leaves them.
    const ids = async (words: string[], kind: string, service = "") => {
      const program = `compdef() { :; }; source ${file}; compadd() { print -rl -- "\${(@P)2}"; }; words=(${words.map((w) => `'${w}'`).join(" ")}); CURRENT=${words.length}; _gorb_idlist ${kind} '${service}'`;
      return shell(["zsh", "-f", "-c", program], dir, CLOSED);
    };
    try {
      expect(await ids(["gorb", "--server", server.url, ""], "service")).toEqual([hostile, "my web", "web", "web2"]);
      // Connection flags typed quoted reach gorb unquoted, in either spelling.
      expect(await ids(["gorb", `--server="${server.url}"`, "web", ""], "backend", "web")).toEqual(["b1", "b2"]);
      expect(await ids(["gorb", "--server", `"${server.url}"`, ""], "backend", "my web")).toEqual(["b9"]);
      expect(await ids(["gorb", `--server=${server.url}`, "web", ""], "backend", "web")).toEqual(["b1", "b2"]);
      expect(await ids(["gorb", ""], "service")).toEqual([]);
      expect(existsSync(join(dir, "pwned"))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000); // 5 completions, each a zsh start and a `gorb __ids` (a bun start)
});
