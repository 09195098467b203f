/**
 * The single executable, built by scripts/build.ts (bun build --compile --bytecode), run as a user would run it. Built once into a
 * temporary directory (dist/ is left alone). Needs root for the last test (a private mount namespace hides the
 * system libnl to prove the embedded copy is used); the host has no IPVS, so --direct ends with exit 8.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { buildExecutable } from "../../scripts/build.ts";
import { type TestServer, closedPort, startServer } from "../unit/cli/_harness.ts";

let dir: string;
let exe: string;

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function gorb(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const proc = Bun.spawn([exe, ...args], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", NO_COLOR: "1", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "gorb-e2e-"));
  exe = join(dir, "gorb");
  buildExecutable(exe);
}, 120_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("compiled gorb", () => {
  test("is one executable file", () => {
    expect(statSync(exe).mode & 0o111).not.toBe(0);
    expect(readdirSync(dir)).toEqual(["gorb"]);
  });

  test("--version prints package.json's version", async () => {
    expect(await gorb(["--version"])).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: "" });
  });

  test("--help lists the commands", async () => {
    const run = await gorb(["--help"]);
    expect([run.code, run.stderr]).toEqual([0, ""]);
    expect(run.stdout).toContain("Usage: gorb <command>");
    for (const cmd of ["serve", "service", "backend", "status", "completion"]) expect(run.stdout).toContain(`\n  ${cmd} `);
  });

  test("an unknown command exits 2", async () => {
    const run = await gorb(["frobnicate"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toStartWith('error: unknown command "frobnicate" for "gorb"');
  });

  test("a bad serve flag exits 2 before anything starts", async () => {
    const run = await gorb(["serve", "-l", "nowhere"]);
    expect([run.code, run.stderr.split("\n")[0]]).toEqual([2, 'error: --listen: missing port in "nowhere"; use :PORT, HOST:PORT or [IPV6]:PORT']);
  });

  test("takes no code or settings from the working directory (bunfig.toml's preload, .env)", async () => {
    const cwd = mkdtempSync(join(tmpdir(), "gorb-e2e-cwd-"));
    try {
      const marker = join(cwd, "preload-ran");
      writeFileSync(join(cwd, "preload.ts"), `require("node:fs").writeFileSync(${JSON.stringify(marker)}, "ran");\n`);
      writeFileSync(join(cwd, "bunfig.toml"), 'preload = ["./preload.ts"]\n');
      const fromDotenv = `http://127.0.0.1:${closedPort()}`;
      writeFileSync(join(cwd, ".env"), `GORB_SERVER=${fromDotenv}\n`);
      const proc = Bun.spawn([exe, "status"], { cwd, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", NO_COLOR: "1" }, stdout: "pipe", stderr: "pipe" });
      const [stderr] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
      expect(existsSync(marker)).toBe(false);
      expect(stderr).not.toContain(fromDotenv);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });

  test("an unreachable daemon exits 3 with one line", async () => {
    const url = `http://127.0.0.1:${closedPort()}`;
    const run = await gorb(["status"], { GORB_SERVER: url });
    expect(run).toEqual({
      code: 3,
      stdout: "",
      stderr: `error: cannot reach gorb at ${url} (connection refused); is \`gorb serve\` running? Use --direct to read/change the kernel table without a daemon.\n`,
    });
  });

  describe("against a local server", () => {
    let server: TestServer;
    beforeAll(() => {
      server = startServer();
    });
    afterAll(async () => {
      await server.stop();
    });

    test("service add, backend add, status --json", async () => {
      const env = { GORB_SERVER: server.url };
      expect((await gorb(["service", "add", "web", "--host", "10.0.0.1", "--port", "80"], env)).code).toBe(0);
      expect((await gorb(["backend", "add", "web", "b1", "--host", "10.1.0.1", "--pulse", "http"], env)).code).toBe(0);
      const run = await gorb(["status", "--json"], env);
      expect([run.code, run.stderr]).toEqual([0, ""]);
      const status = JSON.parse(run.stdout) as { id: string; backend_details: { id: string; options: { port: number } }[] }[];
      expect(status.map((s) => [s.id, s.backend_details.map((b) => [b.id, b.options.port])])).toEqual([["web", [["b1", 80]]]]);
      const missing = await gorb(["service", "show", "nope"], env);
      expect([missing.code, missing.stderr]).toEqual([4, 'error: service "nope" not found\n']);
    });

    test("a proxy in the environment (HTTP_PROXY, https_proxy, ALL_PROXY) is not used: the request and its token go to gorb", async () => {
      const seen: string[] = [];
      const proxy = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: (request) => (seen.push(request.headers.get("authorization") ?? request.url), new Response("proxy", { status: 502 })) });
      try {
        const url = `http://127.0.0.1:${proxy.port}`;
        const env = { GORB_SERVER: server.url, GORB_TOKEN: "s3cret", HTTP_PROXY: url, http_proxy: url, HTTPS_PROXY: url, https_proxy: url, ALL_PROXY: url, all_proxy: url };
        const run = await gorb(["status", "--json"], env);
        expect([run.code, run.stderr]).toEqual([0, ""]);
        expect(Array.isArray(JSON.parse(run.stdout))).toBe(true);
        expect(seen).toEqual([]);
      } finally {
        await proxy.stop(true);
      }
    });

    test("status --watch follows the event stream until Ctrl-C and then exits 0", async () => {
      expect((await gorb(["service", "add", "watched", "--host", "10.0.0.7", "--port", "80"], { GORB_SERVER: server.url })).code).toBe(0);
      const proc = Bun.spawn([exe, "status", "--watch"], {
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", NO_COLOR: "1", GORB_SERVER: server.url },
        stdout: "pipe",
        stderr: "pipe",
      });
      const reader = proc.stdout.getReader();
      let seen = "";
      while (!seen.includes("watched ")) {
        const { done, value } = await reader.read();
        if (done) break;
        seen += new TextDecoder().decode(value);
      }
      proc.kill("SIGINT");
      expect(await proc.exited).toBe(0);
      expect(seen).toStartWith(`\u001b[H\u001b[2Jgorb status: ${server.url}, following events, `);
    });
  });

  describe("libnl", () => {
    test("the system copy is used when present", async () => {
      const run = await gorb(["status", "--direct"], { GORB_DEBUG: "1" });
      expect(run.code).toBe(8);
      expect(run.stderr).toStartWith("libnl loaded from system\nerror: IPVS is not available in this kernel");
    });

    test("without the system copy the embedded one is loaded from memory, never written to a directory", async () => {
      const extractDir = mkdtempSync(join(tmpdir(), "gorb-e2e-libnl-"));
      try {
        const libs = ["libnl-3.so.200", "libnl-genl-3.so.200"].map((l) => `/usr/lib/x86_64-linux-gnu/${l}`);
        // A private mount namespace: bind /dev/null over the real files (symlink targets) for this process only.
        const hide = libs.map((l) => `mount --bind /dev/null "$(readlink -f ${l})"`).join(" && ");
        const proc = Bun.spawn(["unshare", "-m", "sh", "-c", `${hide} && exec "$0" status --direct`, exe], {
          env: { PATH: process.env.PATH ?? "/usr/bin:/bin", NO_COLOR: "1", GORB_DEBUG: "1", GORB_LIBNL_DIR: extractDir },
          stdout: "pipe",
          stderr: "pipe",
        });
        const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
        expect(code).toBe(8);
        expect(stderr).toStartWith("libnl loaded from embedded:memfd\nerror: IPVS is not available in this kernel");
        expect(readdirSync(extractDir)).toEqual([]);
      } finally {
        rmSync(extractDir, { recursive: true, force: true });
      }
    });

    test("system libnl-3 without libnl-genl-3: both embedded copies are used, never a mix (which aborted)", async () => {
      const extractDir = mkdtempSync(join(tmpdir(), "gorb-e2e-libnl-"));
      try {
        const hide = `mount --bind /dev/null "$(readlink -f /usr/lib/x86_64-linux-gnu/libnl-genl-3.so.200)"`;
        const proc = Bun.spawn(["unshare", "-m", "sh", "-c", `${hide} && exec "$0" status --direct`, exe], {
          env: { PATH: process.env.PATH ?? "/usr/bin:/bin", NO_COLOR: "1", GORB_DEBUG: "1", GORB_LIBNL_DIR: extractDir },
          stdout: "pipe",
          stderr: "pipe",
        });
        const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
        expect(code).toBe(8);
        expect(stderr).toStartWith("libnl loaded from embedded:memfd\nerror: IPVS is not available in this kernel");
      } finally {
        rmSync(extractDir, { recursive: true, force: true });
      }
    });
  });
});
