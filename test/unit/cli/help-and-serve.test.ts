/**
 * --version, --help on every command, and `gorb serve` turning its flags into the DaemonOptions it hands to
 * runDaemon (a recorder stands in for the daemon).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { type AnyCommand, metaOf, subCommandsOf } from "../../../src/cli/_command.ts";
import { type DaemonRunner, setDaemonRunner } from "../../../src/cli/commands/serve.ts";
import { EXIT } from "../../../src/cli/errors.ts";
import { root } from "../../../src/cli/index.ts";
import type { DaemonOptions } from "../../../src/config/daemon-options.ts";
import pkg from "../../../package.json" with { type: "json" };
import { runGorb } from "./_harness.ts";

describe("--version and --help", () => {
  test("--version and -V print package.json's version", async () => {
    expect(await runGorb(["--version"])).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: "" });
    expect(await runGorb(["-V"])).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: "" });
  });

  test("every command has a description and a --help that lists all its flags", async () => {
    const visit = async (cmd: AnyCommand, path: string[]): Promise<number> => {
      const run = await runGorb([...path, "--help"]);
      expect([run.code, run.stderr]).toEqual([0, ""]);
      expect(run.stdout).toStartWith(`gorb${path.map((p) => ` ${p}`).join("")} - `);
      expect(run.stdout).toContain("Usage: gorb");
      // A flag's default is said once: its description does not say "(default)" beside the rendered "(default: x)".
      expect(run.stdout).not.toMatch(/\(default\) \(default: /);
      const args = cmd.args === undefined ? {} : (cmd.args as Record<string, { type?: string }>);
      for (const [name, def] of Object.entries(args)) {
        if (def.type !== "positional") expect(run.stdout).toContain(`--${name}`);
      }
      let count = 1;
      for (const [name, sub] of Object.entries(await subCommandsOf(cmd))) {
        // An internal command (gorb __ids) is runnable but not listed; it has its own --help all the same.
        if ((await metaOf(sub)).hidden === true) expect(run.stdout).not.toContain(name);
        else expect(run.stdout).toContain(`\n  ${name} `);
        count += await visit(sub, [...path, name]);
      }
      return count;
    };
    expect(await visit(root, [])).toBe(1 + 1 + 6 + 7 + 1 + 1 + 3 + 3 + 2 + 1);
  });

  test("a command loads its own module only, also when found by an alias", () => {
    // A fresh process: this one has every command loaded already. The modules evaluated are in require.cache.
    const loaded = (args: string[]) => {
      const script = `
        const { runCli } = await import(${JSON.stringify(new URL("../../../src/cli/run.ts", import.meta.url).pathname)});
        const io = { stdout: () => {}, stderr: () => {}, isTTY: false };
        const code = await runCli(${JSON.stringify(args)}, { io, env: { GORB_SERVER: "http://127.0.0.1:1" } });
        const commands = Object.keys(require.cache).filter((k) => k.includes("/src/cli/commands/")).map((k) => k.replace(/.*\\/commands\\//, ""));
        console.log(JSON.stringify({ code, commands: commands.sort() }));`;
      const r = Bun.spawnSync([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
      expect(r.stderr.toString()).toBe("");
      return JSON.parse(r.stdout.toString()) as { code: number; commands: string[] };
    };
    expect(loaded(["status"])).toEqual({ code: EXIT.UNREACHABLE, commands: ["status.ts"] });
    expect(loaded(["--version"])).toEqual({ code: 0, commands: [] });
    // The backend command's module holds its sub-commands (drain and undrain come from drain.ts).
    expect(loaded(["backend", "add", "web", "b1", "--host", "10.1.0.1"])).toEqual({ code: EXIT.UNREACHABLE, commands: ["backend.ts", "drain.ts"] });
    // `backend create` is `backend add` by its alias.
    expect(loaded(["backend", "create", "web", "b1", "--host", "10.1.0.1"])).toEqual({ code: EXIT.UNREACHABLE, commands: ["backend.ts", "drain.ts"] });
  });

  test("`gorb help service add` is `gorb service add --help`", async () => {
    expect(await runGorb(["help", "service", "add"])).toEqual(await runGorb(["service", "add", "--help"]));
  });

  test("help shows examples, defaults and enum values", async () => {
    const serve = (await runGorb(["serve", "--help"])).stdout;
    expect(serve).toContain("-l, --listen <addr>");
    expect(serve).toContain("(default: 127.0.0.1:4672, loopback only)");
    const backend = (await runGorb(["backend", "add", "-h"])).stdout;
    expect(backend).toContain("--forward, --method <nat|dr|tunnel|ipip|local>");
    expect(backend).toContain("Examples:\n  gorb backend add web b1 --host 10.1.0.1 --pulse http\n");
  });

  test("service set lists the flags that identify the service apart: they must match it, a change is refused", async () => {
    const set = (await runGorb(["service", "set", "--help"])).stdout;
    const [options, identity] = set.split("\nIdentity options (they must match the service: to change one, delete the service and add it again):\n");
    expect(identity).toBeDefined();
    for (const flag of ["--host <addr>", "--port <port>", "--protocol <tcp|udp|sctp>", "--fwmark <mark>", "--family <inet|inet6>"]) {
      expect(options).not.toContain(`  ${flag} `);
      expect(identity).toContain(`  ${flag} `);
    }
    expect(identity).toContain("The service's port\n");
    expect(options).toContain("  --method <");
    // service add lists them with the other options, as what they create.
    const add = (await runGorb(["service", "add", "--help"])).stdout;
    expect(add).not.toContain("Identity options");
    expect(add).toContain("  --port <port>                   Port 1-65535 (required unless --fwmark)\n");
  });

  test("service set and backend set say under their usage that a flag left out keeps the current value, not the default shown", async () => {
    const note = "Only the options given change; the others keep their current values (a default named below is the one add uses).";
    for (const kind of ["service", "backend"]) {
      const [usage, rest] = (await runGorb([kind, "set", "--help"])).stdout.split("\n\nArguments:\n");
      expect(usage).toEndWith(`\n\n${note}`);
      expect(rest).toContain("(default ");
      expect((await runGorb([kind, "add", "--help"])).stdout).not.toContain(note);
    }
  });

  test("backend set lists --host and --port apart: they must match the backend, which is not moved in place", async () => {
    const set = (await runGorb(["backend", "set", "--help"])).stdout;
    const [options, identity] = set.split("\nIdentity options (they must match the backend: to move it, delete it and add it again):\n");
    expect(identity).toBeDefined();
    for (const flag of ["--host <addr>", "--port <port>"]) {
      expect(options).not.toContain(`  ${flag} `);
      expect(identity).toContain(`  ${flag} `);
    }
    expect(identity).toContain("The backend's port\n");
    expect(options).toContain("  --weight <");
    const add = (await runGorb(["backend", "add", "--help"])).stdout;
    expect(add).not.toContain("Identity options");
    expect(add).toContain("(required for add)");
  });
});

describe("gorb serve", () => {
  let previous: DaemonRunner | null = null;
  afterEach(() => {
    if (previous !== null) setDaemonRunner(previous);
    previous = null;
  });

  function record(fail?: Error): DaemonOptions[] {
    const seen: DaemonOptions[] = [];
    previous = setDaemonRunner(async (options) => {
      seen.push(options);
      if (fail !== undefined) throw fail;
    });
    return seen;
  }

  test("flags become DaemonOptions", async () => {
    const seen = record();
    const run = await runGorb([
      "serve", "-l", "127.0.0.1:0", "-i", "eth0", "-f", "-c", "http://consul:8500", "-v", "--vip-interface", "lo",
      "--token", "t0k", "--body-limit", "1m",
    ]);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe("warning: --token on the command line is visible to every local user (ps, /proc); use --token-file instead\n");
    expect(seen).toEqual([
      {
        listen: { host: "127.0.0.1", port: 0 },
        interface: "eth0",
        flush: true,
        consulUrl: "http://consul:8500",
        verbose: true,
        vipInterface: "lo",
        token: "t0k",
        tokenFile: null,
        allow: [],
        allowOrigins: [],
        maxConnections: 256,
        tls: null,
        consulToken: null,
        consulTokenFile: null,
        bodyLimitBytes: 1048576,
        stateDir: "/var/lib/gorb",
        reconcileIntervalMs: 30_000,
        unknownDestinations: "report",
        maxServices: null,
        maxBackends: null,
        probeMarks: { first: 0x3000, last: 0x30ff },
        configPath: null,
        configSettings: null,
        sharedStore: null,
        nodeId: null,
        declared: null,
        ui: true,
        bgp: null,
        ipvsSysctls: true,
        hookDir: "/etc/gorb/hooks",
        checkExecDirs: null,
      },
    ]);
  });

  test("defaults (loopback only), and the token from GORB_TOKEN without a warning", async () => {
    const seen = record();
    expect(await runGorb(["serve"], { GORB_TOKEN: "from-env" })).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(seen[0]).toEqual(
      expect.objectContaining({ listen: { host: "127.0.0.1", port: 4672 }, interface: null, token: "from-env", bodyLimitBytes: 65536 }),
    );
  });

  test("a daemon without IPVS exits 8; any other start failure exits 1 with one line", async () => {
    const noIpvs = Object.assign(new Error("IPVS is not available in this kernel"), { name: "IpvsUnavailableError" });
    record(noIpvs);
    expect(await runGorb(["serve"])).toEqual({ code: EXIT.IPVS_UNAVAILABLE, stdout: "", stderr: "error: IPVS is not available in this kernel\n" });
    setDaemonRunner(async () => {
      throw new Error("listen EADDRINUSE: address already in use 127.0.0.1:4672");
    });
    expect(await runGorb(["serve"])).toEqual({
      code: EXIT.UNEXPECTED,
      stdout: "",
      stderr: "error: gorb serve: listen EADDRINUSE: address already in use 127.0.0.1:4672\n",
    });
  });
});
