/**
 * Configuration files as editors and careless hands write them: a byte order mark, a second YAML document, a value
 * written unquoted where the flag takes text (a hold-down of 0, a token of digits).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadDeclaredFile } from "../../../src/config/declared.ts";
import { loadConfigFile, parseConfigFile } from "../../../src/config/load.ts";
import { refusal } from "./_refusal.ts";

const dir = mkdtempSync(join(tmpdir(), "gorb-config-edges-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("configuration file edges", () => {
  test("a UTF-8 byte order mark (Notepad, PowerShell) is read in JSON as it is in YAML and TOML", async () => {
    const bom = "\uFEFF";
    for (const [name, text] of [
      ["gorb.json", '{"listen": "127.0.0.1:5000", "services": {}}\n'],
      ["gorb.yaml", 'listen: "127.0.0.1:5000"\nservices: {}\n'],
      ["gorb.toml", 'listen = "127.0.0.1:5000"\n[services]\n'],
    ] as const) {
      const path = join(dir, name);
      writeFileSync(path, bom + text);
      const file = await loadConfigFile(path);
      expect([name, file.flags.listen, file.services]).toEqual([name, "127.0.0.1:5000", []]);
    }
    // A syntax error after the mark is still placed by its line and column, as without it.
    expect(refusal("gorb.json", `${bom}{\n  "listen": ":1",\n}\n`)).toBe('gorb.json:3:1: JSON syntax error: expected a key in double quotes, found "}"');
    expect(refusal("gorb.json", `${bom}{"listen": ":1",}`)).toBe('gorb.json:1:17: JSON syntax error: expected a key in double quotes, found "}"');
    // A bad value is placed by its line too.
    expect(refusal("gorb.json", `${bom}{\n  "services": {\n    "web": {"port": 70000}\n  }\n}\n`)).toBe(
      "gorb.json:3: services.web.port: must be 1-65535, got 70000",
    );
  });

  test("a TOML date or time is called one, and is never read as an empty mapping (no services, a default pulse)", async () => {
    const date = "a date or time";
    const web = '[services.web]\nhost = "10.0.0.1"\nport = 80\n';
    const b1 = `${web}[services.web.backends.b1]\nhost = "10.1.0.1"\n`;
    for (const [text, error] of [
      ["listen = 2024-01-01\n", `gorb.toml:1: listen: must be a string, got ${date}`],
      ["token = 2024-01-01\n", `gorb.toml:1: token: must be a string (quote it), got ${date}`],
      ['[services.web]\nhost = "10.0.0.1"\nport = 2024-01-01\n', `gorb.toml:3: services.web.port: must be an integer 1-65535, got ${date}`],
      [`${b1}pulse = { interval = 00:00:05 }\n`, `gorb.toml:6: services.web.backends.b1.pulse.interval: must be a string, got ${date}`],
      // Read as mappings without keys, these were an empty set (deleting every file-owned service), no backends,
      // and the default pulse.
      ["services = 2024-01-01\n", `gorb.toml:1: services: must be a mapping of service ids to services, got ${date}`],
      ["[services]\nweb = 1979-05-27T07:32:00Z\n", `gorb.toml:2: services.web: must be a mapping of service fields, got ${date}`],
      [`${web}backends = 2024-01-01\n`, `gorb.toml:4: services.web.backends: must be a mapping of backend ids to backends, got ${date}`],
      [`${b1}pulse = 2024-01-01\n`, `gorb.toml:6: services.web.backends.b1.pulse: must be a mapping, got ${date}`],
      [`${b1}pulse = { type = "http", args = 07:32:00 }\n`, `gorb.toml:6: services.web.backends.b1.pulse.args: must be a mapping, got ${date}`],
      [`${web}sorry_server = 2024-01-01\n`, `gorb.toml:4: services.web.sorry_server: must be a mapping, got ${date}`],
    ] as const) {
      expect(refusal("gorb.toml", text)).toBe(error);
    }
    // gorb apply -f checks such a set in the CLI (it cannot be sent as JSON): refused there too.
    const path = join(dir, "dated.toml");
    writeFileSync(path, "services = 2024-01-01\n");
    await expect(loadDeclaredFile(path)).rejects.toThrow(`${path}:1: services: must be a mapping of service ids to services, got ${date}`);
  });

  test("a second YAML document is refused at its --- line, not as a list at no line", () => {
    expect(refusal("gorb.yaml", 'listen: "127.0.0.1:4672"\n---\nservices: {}\n')).toBe(
      "gorb.yaml:2: YAML syntax error: a second YAML document starts here: a configuration file is one document",
    );
    expect(refusal("gorb.yaml", "---\nlisten: :1\n...\n---\nflush: true\n")).toBe(
      "gorb.yaml:4: YAML syntax error: a second YAML document starts here: a configuration file is one document",
    );
    // One document, with its markers, is one; a list at the top is still a list.
    expect(parseConfigFile("gorb.yaml", "---\nlisten: :1\n...\n").flags).toEqual({ listen: ":1" });
    expect(refusal("gorb.yaml", "- 1\n- 2\n")).toBe("gorb.yaml: (top level): must be a mapping of settings, got a list");
  });

  test("bgp_hold_down takes 0, as --bgp-hold-down 0 does, written as a number too", () => {
    for (const [name, text] of [
      ["gorb.yaml", "bgp_bird_socket: /run/bird/bird.ctl\nbgp_hold_down: 0\n"],
      ["gorb.json", '{"bgp_bird_socket": "/run/bird/bird.ctl", "bgp_hold_down": 0}'],
      ["gorb.toml", 'bgp_bird_socket = "/run/bird/bird.ctl"\nbgp_hold_down = 0\n'],
    ] as const) {
      expect([name, parseConfigFile(name, text).flags.bgpHoldDown]).toEqual([name, "0"]);
    }
    expect(refusal("gorb.yaml", "bgp_bird_socket: /run/bird/bird.ctl\nbgp_hold_down: 3\n")).toBe(
      'gorb.yaml:2: bgp_hold_down: must be a duration such as "3s" (0: none), got 3',
    );
  });

  test("a token the file gives as a number is refused without printing it (the error goes to the journal on SIGHUP)", () => {
    for (const key of ["token", "consul_token"]) {
      const message = refusal("gorb.yaml", `${key}: 73915508124417\n`);
      expect(message).toBe(`gorb.yaml:1: ${key}: must be a string (quote it), got a number`);
      expect(message).not.toContain("73915508124417");
    }
  });

  test("a field given twice in two cases (port and Port) is refused, not read as one of them, at the line of the key it names", () => {
    expect(refusal("gorb.yaml", "services:\n  web:\n    host: 10.0.0.1\n    port: 80\n    Port: 8080\n")).toBe(
      'gorb.yaml:5: services.web.Port: the same field as "port" (fields are read in any case): give it once',
    );
    // backends: {} then Backends: {b1: ...} declared no backend at all.
    expect(refusal("gorb.yaml", "services:\n  web:\n    host: 10.0.0.1\n    port: 80\n    backends: {}\n    Backends:\n      b1: { host: 10.1.0.1 }\n")).toBe(
      'gorb.yaml:6: services.web.Backends: the same field as "backends" (fields are read in any case): give it once',
    );
    expect(refusal("gorb.json", '{"services": {"web": {"host": "10.0.0.1", "port": 80, "backends": {"b1": {"host": "10.1.0.1", "Weight": 1, "weight": 0}}}}}')).toBe(
      'gorb.json:1: services.web.backends.b1.weight: the same field as "Weight" (fields are read in any case): give it once',
    );
    expect(refusal("gorb.toml", '[services.web]\nhost = "10.0.0.1"\nport = 80\n\n[services.web.backends.b1]\nhost = "10.1.0.1"\nHost = "10.1.0.2"\n')).toBe(
      'gorb.toml:7: services.web.backends.b1.Host: the same field as "host" (fields are read in any case): give it once',
    );
    // Ids are not fields: web and Web are two services.
    expect(parseConfigFile("gorb.yaml", "services:\n  web: { host: 10.0.0.1, port: 80 }\n  Web: { host: 10.0.0.2, port: 80 }\n").services?.map((s) => s.id)).toEqual(["web", "Web"]);
  });
});
