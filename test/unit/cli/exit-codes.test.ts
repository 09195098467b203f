/**
 * Exit codes and error lines: every class of failure ends with one line on stderr (plus a usage hint for usage
 * errors) and its documented code. The daemon side is a real REST API on a loopback port.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defineCommand } from "citty";
import { setDaemonRunner } from "../../../src/cli/commands/serve.ts";
import { EXIT } from "../../../src/cli/errors.ts";
import { ERRNO } from "../../../src/errno.ts";
import { ipvsErrorFor } from "../../../src/ipvs/messages.ts";
import { runCli } from "../../../src/cli/run.ts";
import { type TestServer, closedPort, runGorb, startServer } from "./_harness.ts";

let server: TestServer;
let env: Record<string, string>;

beforeAll(async () => {
  server = startServer();
  env = { GORB_SERVER: server.url };
  expect((await runGorb(["service", "add", "web", "--host", "10.0.0.1", "--port", "80"], env)).code).toBe(0);
});

afterAll(async () => {
  await server.stop();
});

describe("exit 2: usage errors", () => {
  const cases: [string, string[], string][] = [
    ["unknown command", ["frobnicate"], 'error: unknown command "frobnicate" for "gorb" (commands: serve, service, backend, status, apply, diff, reconcile, bgp, state, completion)'],
    ["unknown sub-command", ["service", "explode"], 'error: unknown command "explode" for "gorb service" (commands: add, set, rm, ls, show)'],
    ["a command one edit from two", ["servce"], 'error: unknown command "servce" for "gorb", did you mean "serve" or "service"? (commands: serve, service, backend, status, apply, diff, reconcile, bgp, state, completion)'],
    ["a command with two letters swapped", ["backned"], 'error: unknown command "backned" for "gorb", did you mean "backend"? (commands: serve, service, backend, status, apply, diff, reconcile, bgp, state, completion)'],
    ["a sub-command one letter off", ["service", "lss"], 'error: unknown command "lss" for "gorb service", did you mean "ls"? (commands: add, set, rm, ls, show)'],
    ["a flag before the command", ["--server", "http://127.0.0.1:4672", "service", "ls"], 'error: --server comes before the command: flags follow the command they belong to ("gorb COMMAND ... --server http://127.0.0.1:4672")'],
    ["a flag before the sub-command", ["service", "--token", "t", "ls"], 'error: --token comes before the command: flags follow the command they belong to ("gorb service COMMAND ... --token t")'],
    ["--version with a command after it", ["-V", "status"], 'error: -V prints the version and takes nothing else: run "gorb -V" alone'],
    ["--version with an argument after it", ["--version", "extra"], 'error: --version prints the version and takes nothing else: run "gorb --version" alone'],
    ["the original GORB's daemon flags without a command", ["-f", "-i", "eth0", "-l", ":4672"], 'error: the daemon is "gorb serve": run "gorb serve -f -i eth0 -l :4672" (the original GORB took these flags without a command)'],
    ["the original GORB's one boolean flag without a command", ["-f"], 'error: the daemon is "gorb serve": run "gorb serve -f" (the original GORB took these flags without a command)'],
    ["a flag serve does not take, without a command", ["-x"], "error: missing command: use one of serve, service, backend, status, apply, diff, reconcile, bgp, state, completion"],
    ["missing sub-command", ["backend"], "error: missing command: use one of add, set, rm, show, drain, undrain"],
    ["unknown flag", ["service", "ls", "--colour"], 'error: unknown option --colour for "gorb service ls"'],
    ["unknown short flag", ["service", "ls", "-x"], 'error: unknown option -x for "gorb service ls"'],
    ["value flag without value", ["service", "add", "web", "--host"], "error: --host needs a value"],
    ["value flag followed by a flag", ["service", "add", "s9", "--host", "--port", "80"], 'error: --host needs a value (got the flag --port; for a value that starts with "--", write --host=VALUE)'],
    ["enum flag followed by a flag", ["backend", "add", "web", "b", "--pulse", "--pulse-path", "/h"], 'error: --pulse needs a value (got the flag --pulse-path; for a value that starts with "--", write --pulse=VALUE)'],
    ["short value flag followed by a flag", ["serve", "-l", "--flush"], 'error: --listen needs a value (got the flag --flush; for a value that starts with "--", write --listen=VALUE)'],
    ["missing positional", ["service", "show"], "error: missing required positional argument: NAME"],
    ["extra argument", ["service", "show", "web", "extra"], 'error: unexpected argument "extra" for "gorb service show"'],
    ["extra argument after --", ["status", "web", "--", "x"], 'error: unexpected argument "x" for "gorb status"'],
    ["not an integer", ["service", "add", "x", "--port", "eighty"], 'error: --port: expected an integer 1-65535, got "eighty"'],
    ["integer out of range", ["backend", "add", "web", "b", "--host", "10.1.0.1", "--weight", "-1"], "error: --weight: must be 0-2147483647, got -1"],
    ["bad enum value", ["service", "add", "x", "--protocol", "icmp"], 'error: --protocol: expected one of tcp, udp, sctp, got "icmp"'],
    ["bad enum value after =", ["backend", "add", "web", "b", "--host", "10.1.0.1", "--pulse=ICMP"], 'error: --pulse: expected one of tcp, http, https, udp, dns, tls, exec, none, got "ICMP"'],
    ["bad enum value of an alias, named as given", ["backend", "set", "web", "b", "--method", "snat"], 'error: --method: expected one of nat, dr, tunnel, ipip, local, got "snat"'],
    ["empty enum value", ["backend", "drain", "web", "b", "--then", ""], "error: --then needs a value"],
    ["bad enum value with --direct", ["service", "add", "fwmark:9", "--family", "inet5", "--direct"], 'error: --family: expected one of inet, inet6, got "inet5"'],
    ["nothing to change", ["service", "set", "web"], "error: nothing to change: give at least one option"],
    ["bad server URL", ["service", "ls", "--server", "ftp://x"], 'error: --server: must be an http:// or https:// URL, got "ftp://x"'],
    ["bad watch value", ["status", "web", "--watch", "soon"], 'error: --watch: expected seconds, got "soon"'],
    ["--cluster with a service", ["status", "web", "--cluster"], "error: --cluster shows every node of the fleet: it takes no SERVICE, --watch or --direct"],
    ["--cluster with --watch", ["status", "--cluster", "--watch"], "error: --cluster shows every node of the fleet: it takes no SERVICE, --watch or --direct"],
    ["--cluster with --direct", ["status", "--cluster", "--direct"], "error: --cluster shows every node of the fleet: it takes no SERVICE, --watch or --direct"],
    ["bad completion shell", ["completion", "tcsh"], 'error: unknown shell "tcsh": use bash, zsh or fish'],
    ["bad listen address", ["serve", "-l", "4672"], 'error: --listen: missing port in "4672"; use :PORT, HOST:PORT or [IPV6]:PORT'],
    ["pulse flags with --direct", ["backend", "add", "tcp:10.0.0.1:80", "10.1.0.1", "--pulse", "http", "--direct"], "error: health checks (--pulse*) need the daemon; leave them out with --direct"],
    ["daemon flags with --direct", ["service", "add", "tcp:10.0.0.1:80", "--port", "80", "--direct"], "error: --port is not used with --direct: the service is named by its key, e.g. tcp:10.0.0.1:80 or fwmark:7"],
    ["bad --direct service name", ["service", "rm", "web", "--direct"], 'error: service "web": with --direct a service is named tcp:ADDR:PORT, udp:..., sctp:..., or fwmark:N'],
  ];
  for (const [what, args, line] of cases) {
    test(what, async () => {
      const run = await runGorb(args, env);
      expect(run.code).toBe(EXIT.USAGE);
      expect(run.stdout).toBe("");
      const [first, hint, ...more] = run.stderr.trimEnd().split("\n");
      expect(first).toBe(line);
      expect(hint).toMatch(/^Run "gorb( [a-z]+)* --help" for usage\.$/);
      expect(more).toEqual([]);
    });
  }
});

describe("exit 3: daemon unreachable", () => {
  test("one line that names the URL and the reason and suggests --direct", async () => {
    const url = `http://127.0.0.1:${closedPort()}`;
    const run = await runGorb(["status"], { GORB_SERVER: url });
    expect(run).toEqual({
      code: EXIT.UNREACHABLE,
      stdout: "",
      stderr:
        `error: cannot reach gorb at ${url} (connection refused); is \`gorb serve\` running? ` +
        "Use --direct to read/change the kernel table without a daemon.\n",
    });
  });

  test("every client command reports it the same way; only those that have --direct suggest it", async () => {
    const url = `http://127.0.0.1:${closedPort()}`;
    const line = `error: cannot reach gorb at ${url} (connection refused); is \`gorb serve\` running?`;
    const hint = " Use --direct to read/change the kernel table without a daemon.";
    const withDirect = [["service", "ls"], ["service", "add", "w", "--port", "1"], ["backend", "rm", "w", "b"], ["backend", "show", "w", "b", "--json"], ["status", "--json"]];
    for (const args of withDirect) {
      const run = await runGorb([...args, "--server", url], {});
      expect([args, run.code, run.stderr]).toEqual([args, EXIT.UNREACHABLE, `${line}${hint}\n`]);
    }
    const dir = mkdtempSync(join(tmpdir(), "gorb-unreachable-"));
    try {
      const file = join(dir, "services.yaml");
      writeFileSync(file, "services: {}\n");
      const withoutDirect = [["apply", "-f", file], ["diff", "-f", file], ["reconcile"], ["backend", "drain", "w", "b"], ["backend", "undrain", "w", "b"], ["bgp", "status"]];
      for (const args of withoutDirect) {
        const run = await runGorb([...args, "--server", url], {});
        expect([args, run.code, run.stderr]).toEqual([args, EXIT.UNREACHABLE, `${line}\n`]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("HTTP errors", () => {
  test("404 -> exit 4", async () => {
    expect(await runGorb(["service", "show", "nope"], env)).toEqual({ code: EXIT.NOT_FOUND, stdout: "", stderr: 'error: service "nope" not found\n' });
    const backend = await runGorb(["backend", "show", "web", "nope"], env);
    expect([backend.code, backend.stderr]).toEqual([EXIT.NOT_FOUND, expect.stringMatching(/^error: .*nope.*\n$/)]);
  });

  test("409 -> exit 5", async () => {
    const run = await runGorb(["service", "add", "web", "--host", "10.0.0.1", "--port", "80"], env);
    expect(run).toEqual({ code: EXIT.CONFLICT, stdout: "", stderr: 'error: service "web" already exists\n' });
  });

  test("400 -> exit 6 with the server's message naming the field", async () => {
    const run = await runGorb(["service", "add", "x", "--host", "10.0.0.9", "--port", "80", "--flags", "bogus"], env);
    expect(run.code).toBe(EXIT.REJECTED);
    expect(run.stderr).toStartWith('error: flags: unknown flag "bogus"; known: sh-fallback,');
    const pulse = await runGorb(["backend", "add", "web", "b9", "--host", "10.1.0.9", "--pulse-interval", "5 minutes"], env);
    expect([pulse.code, pulse.stderr]).toEqual([EXIT.REJECTED, expect.stringContaining("pulse.interval")]);
  });

  test("5xx -> exit 7", async () => {
    server.stack.driver.failNext("add-service", "ENOMEM");
    const run = await runGorb(["service", "add", "y", "--host", "10.0.0.8", "--port", "80"], env);
    expect(run.code).toBe(EXIT.SERVER);
    expect(run.stderr).toMatch(/^error: .+\n$/);
  });

  test("an answer that is not gorb's -> exit 7", async () => {
    const other = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("<html>hello</html>") });
    try {
      const run = await runGorb(["service", "ls"], { GORB_SERVER: `http://127.0.0.1:${other.port}` });
      expect(run.code).toBe(EXIT.SERVER);
      expect(run.stderr).toBe(
        `error: GET http://127.0.0.1:${other.port}/service?detail=true: the answer is not JSON (is http://127.0.0.1:${other.port} a gorb daemon?)\n`,
      );
    } finally {
      other.stop(true);
    }
  });
});

describe("exit 7: a redirect", () => {
  test("is not followed: one line naming the request and where it pointed, and nothing is sent there", async () => {
    let reached = 0;
    const elsewhere = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => (reached++, new Response("{}")) });
    const to = `http://127.0.0.1:${elsewhere.port}/service/web`;
    const other = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response(null, { status: 307, headers: { location: to } }) });
    const url = `http://127.0.0.1:${other.port}`;
    try {
      const run = await runGorb(["service", "rm", "web"], { GORB_SERVER: url, GORB_TOKEN: "secret" });
      expect({ code: run.code, stderr: run.stderr }).toEqual({
        code: EXIT.SERVER,
        stderr: `error: DELETE ${url}/service/web: answered 307, a redirect to ${to}, which gorb never sends (is ${url} a gorb daemon? give its own URL); not followed\n`,
      });
      expect(reached).toBe(0);
    } finally {
      other.stop(true);
      elsewhere.stop(true);
    }
  });
});

describe("exit 7: a 200 answer that is not what gorb answers", () => {
  test("an empty body or another server's JSON is one line naming the request and what it should be, not a crash (exit 1)", async () => {
    let answer = "";
    const other = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response(answer, { headers: { "content-type": "application/json" } }) });
    const url = `http://127.0.0.1:${other.port}`;
    const dir = mkdtempSync(join(tmpdir(), "gorb-shape-"));
    try {
      const file = join(dir, "s.json");
      writeFileSync(file, '{"services": {}}');
      const cases: [string[], string][] = [
        [["service", "show", "web"], "GET /service/web: expected a service"],
        [["backend", "show", "web", "b1"], "GET /service/web/b1: expected a backend"],
        [["reconcile"], "POST /reconcile: expected a reconcile report"],
        [["bgp", "status"], "GET /bgp: expected the BGP status"],
        [["apply", "-f", file], "POST /apply: expected an apply report"],
        [["diff", "-f", file], "POST /apply?dry_run=true: expected an apply report"],
        [["status", "--cluster"], "GET /cluster: expected the fleet's state"],
      ];
      for (const body of ["", '{"foo": 1}', "[]"]) {
        answer = body;
        for (const [args, message] of cases) {
          const run = await runGorb(args, { GORB_SERVER: url });
          expect({ body, args, code: run.code, stdout: run.stdout, stderr: run.stderr }).toEqual({
            body,
            args,
            code: EXIT.SERVER,
            stdout: "",
            stderr: `error: ${message} (is ${url} a gorb daemon?)\n`,
          });
        }
      }
    } finally {
      other.stop(true);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("exit 8: --direct without IPVS", () => {
  test("this host's kernel has no IPVS", async () => {
    const run = await runGorb(["status", "--direct"], {});
    expect(run.code).toBe(EXIT.IPVS_UNAVAILABLE);
    expect(run.stderr).toStartWith("error: IPVS is not available in this kernel");
    expect(run.stderr.trimEnd().split("\n")).toHaveLength(1);
  });
});

describe("exit 7: gorb serve without the right to drive IPVS", () => {
  test("the kernel's EPERM at start says that gorb serve needs root, with exit 7 (not 1, a bug)", async () => {
    const previous = setDaemonRunner(async () => {
      throw ipvsErrorFor("info", ERRNO.EPERM);
    });
    try {
      const run = await runGorb(["serve", "--no-state"], {});
      expect(run).toEqual({
        code: EXIT.SERVER,
        stdout: "",
        stderr: "error: gorb serve: info failed: operation not permitted (IPVS needs CAP_NET_ADMIN) (EPERM); gorb serve needs root (or CAP_NET_ADMIN)\n",
      });
    } finally {
      setDaemonRunner(previous);
    }
  });
});

describe("exit 1: unexpected errors", () => {
  test("a bug prints its stack, not just a line", async () => {
    const broken = defineCommand({
      meta: { name: "gorb" },
      subCommands: {
        boom: defineCommand({
          meta: { name: "gorb boom" },
          run() {
            throw new TypeError("x is undefined");
          },
        }),
      },
    });
    let stderr = "";
    const code = await runCli(["boom"], {
      root: broken,
      env: {},
      io: { stdout: () => {}, stderr: (t) => void (stderr += t), isTTY: false },
    });
    expect(code).toBe(EXIT.UNEXPECTED);
    expect(stderr).toStartWith("gorb: unexpected error (please report it): TypeError: x is undefined\n    at ");
  });
});
