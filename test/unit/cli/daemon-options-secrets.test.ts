/**
 * `gorb serve` and its secrets: token files, a configuration file holding a token, the TLS key, the Consul token;
 * and the access settings from a configuration file. A recorder stands in for the daemon; the files are real.
 */
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DaemonRunner, setDaemonRunner } from "../../../src/cli/commands/serve.ts";
import type { DaemonOptions } from "../../../src/config/daemon-options.ts";
import { readPrivateFile } from "../../../src/daemon/secrets.ts";
import { runGorb } from "./_harness.ts";

const dir = mkdtempSync(join(tmpdir(), "gorb-secrets-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Writes `text` to `name` in the temp dir with `mode`; returns its path. */
function file(name: string, text: string, mode: number): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  chmodSync(path, mode);
  return path;
}

let previous: DaemonRunner | null = null;
afterEach(() => {
  if (previous !== null) setDaemonRunner(previous);
  previous = null;
});

function record(): DaemonOptions[] {
  const seen: DaemonOptions[] = [];
  previous = setDaemonRunner(async (options) => {
    seen.push(options);
  });
  return seen;
}

const refusal = (flag: string, path: string, mode: string) =>
  `error: gorb serve: --${flag}: ${path}: holds a secret but its mode is ${mode} (group or others may read it); run: chmod 600 ${path}\n`;

describe("token file", () => {
  test("a private token file gives the token, and no warning", async () => {
    const seen = record();
    const token = file("token", "t0k3n\n", 0o600);
    expect(await runGorb(["serve", "--token-file", token])).toEqual({ code: 0, stdout: "", stderr: "" });
    expect([seen[0]?.token, seen[0]?.tokenFile]).toEqual(["t0k3n", token]);
  });

  test("a token file group or others may read is refused at start, naming the file and the fix", async () => {
    const seen = record();
    for (const mode of [0o644, 0o640, 0o604]) {
      const token = file(`token-${mode.toString(8)}`, "t0k3n\n", mode);
      const run = await runGorb(["serve", "--token-file", token]);
      expect([run.code, run.stderr]).toEqual([2, refusal("token-file", token, `0${mode.toString(8)}`)]);
    }
    expect(seen).toEqual([]);
  });

  test("a missing or empty token file is refused", async () => {
    record();
    const missing = join(dir, "nope");
    expect((await runGorb(["serve", "--token-file", missing])).stderr).toBe(`error: gorb serve: --token-file: ${missing}: no such file\n`);
    const empty = file("empty", "\n", 0o600);
    expect((await runGorb(["serve", "--token-file", empty])).stderr).toBe(`error: gorb serve: --token-file: ${empty}: is empty\n`);
  });

  test("a world-readable TLS key is refused like a token file", async () => {
    record();
    const cert = file("cert.pem", "cert", 0o644);
    const key = file("key.pem", "key", 0o644);
    const run = await runGorb(["serve", "--tls-cert", cert, "--tls-key", key]);
    expect([run.code, run.stderr]).toEqual([2, refusal("tls-key", key, "0644")]);
  });

  test("a TLS certificate that is a device or over 1 MiB is refused before anything starts, naming --tls-cert", async () => {
    const seen = record();
    const key = file("cert-check-key.pem", "key", 0o600);
    const big = file("cert-big.pem", "x".repeat(1024 * 1024 + 1), 0o644);
    const cases: [string, string][] = [
      ["/dev/zero", "error: gorb serve: --tls-cert: /dev/zero: is not a regular file (a character device)\n"],
      [big, `error: gorb serve: --tls-cert: ${big}: is 1048577 bytes, over the limit of 1 MiB\n`],
    ];
    for (const [cert, stderr] of cases) {
      const run = await runGorb(["serve", "--tls-cert", cert, "--tls-key", key]);
      expect([run.code, run.stderr]).toEqual([2, stderr]);
    }
    expect(seen).toHaveLength(0);
  });

  test("a TLS key that stops being private after the checks is refused as the daemon starts: one line, exit 2", async () => {
    const cert = file("late-cert.pem", "cert", 0o644);
    const key = file("late-key.pem", "key", 0o600);
    // The daemon reads the key when it starts listening (src/daemon/api-server.ts): made readable in between, it
    // throws there, past the option checks.
    previous = setDaemonRunner(async (options) => {
      chmodSync(key, 0o644);
      readPrivateFile("tls-key", options.tls?.keyFile ?? "");
    });
    const run = await runGorb(["serve", "--tls-cert", cert, "--tls-key", key]);
    expect([run.code, run.stdout, run.stderr]).toEqual([2, "", refusal("tls-key", key, "0644")]);
  });

  test("the etcd files are checked before anything starts: key and password private, none a device or over 1 MiB", async () => {
    const seen = record();
    const store = ["serve", "--store", "etcds://127.0.0.1:2379/gorb"];
    const ca = file("etcd-ca.pem", "ca", 0o644);
    const cert = file("etcd-cert.pem", "cert", 0o644);
    const key = file("etcd-key.pem", "key", 0o600);
    const password = file("etcd-password", "pw\n", 0o600);
    const good = [...store, "--etcd-ca", ca, "--etcd-cert", cert, "--etcd-key", key, "--etcd-user", "gorb", "--etcd-password-file", password];
    expect(await runGorb(good)).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(seen).toHaveLength(1);
    const openKey = file("etcd-key-644.pem", "key", 0o644);
    const openPassword = file("etcd-password-644", "pw\n", 0o644);
    const big = file("etcd-big.pem", "x".repeat(1024 * 1024 + 1), 0o644);
    const cases: [string[], string][] = [
      [[...store, "--etcd-key", openKey, "--etcd-cert", cert], refusal("etcd-key", openKey, "0644")],
      [[...store, "--etcd-user", "gorb", "--etcd-password-file", openPassword], refusal("etcd-password-file", openPassword, "0644")],
      // Empty: every etcd call would be refused once gorb is up.
      [[...store, "--etcd-user", "gorb", "--etcd-password-file", file("etcd-password-empty", " \n", 0o600)], `error: gorb serve: --etcd-password-file: ${join(dir, "etcd-password-empty")}: is empty\n`],
      [[...store, "--etcd-ca", "/dev/null"], "error: gorb serve: --etcd-ca: /dev/null: is not a regular file (a character device)\n"],
      [[...store, "--etcd-ca", big], `error: gorb serve: --etcd-ca: ${big}: is 1048577 bytes, over the limit of 1 MiB\n`],
      [["serve", "--token-file", file("token-big", "x".repeat(1024 * 1024 + 1), 0o600)], `error: gorb serve: --token-file: ${join(dir, "token-big")}: is 1048577 bytes, over the limit of 1 MiB\n`],
    ];
    for (const [args, stderr] of cases) {
      const run = await runGorb(args);
      expect([run.code, run.stderr]).toEqual([2, stderr]);
    }
    expect(seen).toHaveLength(1);
  });

  test("a secret file owned by another user is refused, naming the setting, the file and the fix; mode 0600 is not enough", async () => {
    const seen = record();
    // The tests run as root: a file of nobody's, who could rewrite the secret or chmod it readable.
    const NOBODY = 65534;
    const theirs = (name: string, text: string) => {
      const path = file(name, text, 0o600);
      chownSync(path, NOBODY, NOBODY);
      return path;
    };
    const owned = (flag: string, path: string) =>
      `error: gorb serve: --${flag}: ${path}: holds a secret but is owned by uid ${NOBODY} (not root), who could change it; run: chown root ${path}\n`;
    const token = theirs("token-nobody", "t0k3n\n");
    const consul = theirs("consul-nobody", "c0nsul\n");
    const key = theirs("key-nobody.pem", "key");
    const password = theirs("etcd-password-nobody", "pw\n");
    // A link of root's to their file: the file itself is what counts.
    const link = join(dir, "token-link");
    symlinkSync(token, link);
    const cert = file("cert-nobody.pem", "cert", 0o644);
    const store = ["serve", "--store", "etcds://127.0.0.1:2379/gorb"];
    const cases: [string[], string][] = [
      [["serve", "--token-file", token], owned("token-file", token)],
      [["serve", "--token-file", link], owned("token-file", link)],
      [["serve", "--consul-token-file", consul], owned("consul-token-file", consul)],
      [["serve", "--tls-cert", cert, "--tls-key", key], owned("tls-key", key)],
      [[...store, "--etcd-cert", cert, "--etcd-key", key], owned("etcd-key", key)],
      [[...store, "--etcd-user", "gorb", "--etcd-password-file", password], owned("etcd-password-file", password)],
    ];
    for (const [args, stderr] of cases) {
      const run = await runGorb(args);
      expect([run.code, run.stderr]).toEqual([2, stderr]);
    }
    expect(seen).toEqual([]);
  });

  test("the Consul token: a private file, CONSUL_HTTP_TOKEN, or the flag with a warning", async () => {
    const seen = record();
    const consul = file("consul", "c0nsul\n", 0o400);
    expect((await runGorb(["serve", "--consul-token-file", consul])).code).toBe(0);
    expect((await runGorb(["serve"], { CONSUL_HTTP_TOKEN: "from-env" })).stderr).toBe("");
    const flagged = await runGorb(["serve", "--consul-token", "argv"]);
    expect(flagged.stderr).toBe(
      "warning: --consul-token on the command line is visible to every local user (ps, /proc); use --consul-token-file instead\n",
    );
    expect(seen.map((o) => o.consulToken)).toEqual(["c0nsul", "from-env", "argv"]);
  });
});

describe("precedence: flags > environment > file", () => {
  test("--token-file beats GORB_TOKEN and --consul-token-file beats CONSUL_HTTP_TOKEN (no conflict)", async () => {
    const seen = record();
    const token = file("precedence-token", "from-flag-file\n", 0o600);
    const consul = file("precedence-consul", "consul-from-flag-file\n", 0o600);
    const env = { GORB_TOKEN: "from-env", CONSUL_HTTP_TOKEN: "consul-from-env" };
    expect(await runGorb(["serve", "--token-file", token, "--consul-token-file", consul], env)).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(seen.map((o) => [o.token, o.tokenFile, o.consulToken, o.consulTokenFile])).toEqual([
      ["from-flag-file", token, "consul-from-flag-file", consul],
    ]);
  });

  test("the environment beats the file's token and token_file; a flag beats both", async () => {
    const seen = record();
    const token = file("precedence-file-token", "from-file\n", 0o600);
    const config = file("precedence.yaml", `token: in-file\nconsul_token_file: ${token}\n`, 0o600);
    const env = { GORB_TOKEN: "from-env", CONSUL_HTTP_TOKEN: "consul-from-env" };
    expect((await runGorb(["serve", "--config", config], env)).code).toBe(0);
    expect((await runGorb(["serve", "--config", config, "--token-file", token], env)).code).toBe(0);
    expect(seen.map((o) => [o.token, o.consulToken])).toEqual([
      ["from-env", "consul-from-env"],
      ["from-file", "consul-from-env"],
    ]);
  });

  test("--token with --token-file (or --consul-token with --consul-token-file) on the command line is still refused", async () => {
    const seen = record();
    const token = file("both-token", "t\n", 0o600);
    const run = await runGorb(["serve", "--token", "t", "--token-file", token]);
    expect([run.code, run.stderr]).toEqual([2, "error: --token-file: give either --token or --token-file, not both\nRun \"gorb serve --help\" for usage.\n"]);
    const consul = await runGorb(["serve", "--consul-token", "c", "--consul-token-file", token], { CONSUL_HTTP_TOKEN: "e" });
    expect([consul.code, consul.stderr]).toEqual([2, "error: --consul-token-file: give either --consul-token or --consul-token-file, not both\nRun \"gorb serve --help\" for usage.\n"]);
    expect(seen).toEqual([]);
  });

  test("a bad token in the environment is named by its variable, and only when it is used", async () => {
    const seen = record();
    for (const [name, value] of [["GORB_TOKEN", "two words"], ["CONSUL_HTTP_TOKEN", "tab\there"]] as const) {
      const run = await runGorb(["serve"], { [name]: value });
      expect([run.code, run.stderr]).toEqual([2, `error: ${name}: must not contain whitespace or control characters\nRun "gorb serve --help" for usage.\n`]);
    }
    expect(seen).toEqual([]);
    // A flag replaces it: it is not read, so it is no error.
    const token = file("env-token", "t\n", 0o600);
    expect(await runGorb(["serve", "--token-file", token, "--consul-token-file", token], { GORB_TOKEN: "two words", CONSUL_HTTP_TOKEN: "a b" })).toEqual({ code: 0, stdout: "", stderr: "" });
    expect([seen[0]?.token, seen[0]?.consulToken]).toEqual(["t", "t"]);
  });
});

describe("configuration file", () => {
  test("a configuration file holding a token that others may read is refused; a private one is used", async () => {
    const seen = record();
    const open = file("open.yaml", "token: s3cret\n", 0o644);
    const run = await runGorb(["serve", "--config", open]);
    expect([run.code, run.stderr]).toEqual([2, refusal("config", open, "0644")]);
    const closed = file("closed.yaml", "token: s3cret\nconsul_token: c\n", 0o600);
    expect((await runGorb(["serve", "--config", closed])).code).toBe(0);
    expect([seen.length, seen[0]?.token, seen[0]?.consulToken]).toEqual([1, "s3cret", "c"]);
  });

  test("a configuration file without a secret may be readable by all", async () => {
    const seen = record();
    const config = file("public.yaml", "listen: \":4672\"\nallow: [10.0.0.0/8, 192.0.2.0/24]\nallow_origin: https://ops.example.com\nmax_connections: 32\n", 0o644);
    expect((await runGorb(["serve", "--config", config])).code).toBe(0);
    expect(seen[0]?.listen).toEqual({ host: null, port: 4672 });
    expect(seen[0]?.allow.map((n) => n.text)).toEqual(["10.0.0.0/8", "192.0.2.0/24"]);
    expect([seen[0]?.allowOrigins, seen[0]?.maxConnections]).toEqual([["https://ops.example.com"], 32]);
  });

  test("the file's token_file, and a --token given on the command line replacing it", async () => {
    const seen = record();
    const token = file("file-token", "from-file\n", 0o600);
    const config = file("with-token-file.yaml", `token_file: ${token}\n`, 0o644);
    expect((await runGorb(["serve", "--config", config])).code).toBe(0);
    expect((await runGorb(["serve", "--config", config], { GORB_TOKEN: "from-env" })).code).toBe(0);
    expect(seen.map((o) => o.token)).toEqual(["from-file", "from-env"]);
  });

  test("bad access settings name their key and line", async () => {
    record();
    const config = file("bad.yaml", "listen: \":4672\"\nallow: [10.0.0.1/8]\n", 0o644);
    const run = await runGorb(["serve", "--config", config]);
    expect(run.code).toBe(2);
    expect(run.stderr).toStartWith(`error: ${config}:2: allow: "10.0.0.1/8": has bits set after the /8 prefix`);
  });
});

describe("-l :4672", () => {
  test("still listens on every address without a token (GORB clients send none)", async () => {
    const seen = record();
    expect((await runGorb(["serve", "-l", ":4672"])).code).toBe(0);
    expect([seen[0]?.listen, seen[0]?.token]).toEqual([{ host: null, port: 4672 }, null]);
  });
});
