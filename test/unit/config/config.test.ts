/**
 * Configuration files: the same document in YAML, JSON and TOML, every error refused with its file, line and
 * path, and `gorb serve --config` (flags override the file; a bad file stops the start with its location).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { argsOf, subCommandsOf } from "../../../src/cli/_command.ts";
import { type DaemonRunner, setDaemonRunner } from "../../../src/cli/commands/serve.ts";
import { root } from "../../../src/cli/index.ts";
import { CONFIG_KEYS } from "../../../src/config/settings.ts";
import { ConfigSyntaxError, parseConfigText } from "../../../src/config/syntax.ts";
import { type ConfigFile, loadConfigFile, parseConfigFile } from "../../../src/config/load.ts";
import { refusal } from "./_refusal.ts";
import type { DaemonOptions } from "../../../src/config/daemon-options.ts";
import { runGorb } from "../cli/_harness.ts";

const FIXTURES = join(import.meta.dir, "fixtures");

/** A ConfigFile as plain JSON (Fields maps as objects), without where it came from. */
function plain(file: ConfigFile): unknown {
  return JSON.parse(JSON.stringify({ flags: file.flags, services: file.services }, (_, v: unknown) => (v instanceof Map ? Object.fromEntries(v) : v)));
}

describe("configuration files", () => {
  test("the documented example reads the same in YAML, JSON and TOML", async () => {
    const [yaml, json, toml] = await Promise.all(["yaml", "json", "toml"].map((f) => loadConfigFile(join(FIXTURES, `gorb.${f}`))));
    expect(plain(yaml!)).toEqual(plain(json!));
    expect(plain(yaml!)).toEqual(plain(toml!));
    expect(yaml!.flags).toEqual({
      listen: "127.0.0.1:4672",
      interface: "eth0",
      flush: false,
      consul: "http://127.0.0.1:8500",
      verbose: false,
      vipInterface: "lo",
      token: "change-me",
      bodyLimit: "64k",
      state: true,
      stateDir: "/var/lib/gorb",
      reconcileInterval: "30s",
    });
    expect(yaml!.services?.map((s) => [s.id, s.backends.map((b) => b.id)])).toEqual([
      ["web", ["web-1", "web-2"]],
      ["dns", ["ns-1"]],
      ["sticky", ["app-1"]],
    ]);
    expect(Object.fromEntries(yaml!.services?.[0]?.backends[0]?.fields ?? [])).toEqual({
      host: "10.1.0.11",
      port: 8080,
      weight: 100,
      pulse: { type: "http", interval: "5s", args: { path: "/healthz", expect: 200 } },
    });
  });

  test("no services key: the file declares nothing; services: {} declares an empty set; an empty file is no settings", () => {
    expect(parseConfigFile("a.yaml", "listen: :1\n").services).toBeNull();
    expect(parseConfigFile("a.yaml", "services: {}\n").services).toEqual([]);
    expect(parseConfigFile("a.toml", "[services]\n").services).toEqual([]);
    expect(plain(parseConfigFile("a.yaml", "# nothing yet\n"))).toEqual({ flags: {}, services: null });
  });

  test("a bad value is refused with the file, the line of the value and its path", () => {
    const cases: [string, string, string][] = [
      ["gorb.yaml", "listen: 127.0.0.1:4672\nservices:\n  web:\n    host: 10.0.0.1\n    port: 80\n    backends:\n      b1:\n        host: 10.1.0.1\n        port: 70000\n",
        "gorb.yaml:9: services.web.backends.b1.port: must be 1-65535, got 70000"],
      ["gorb.toml", '[services.web]\nport = 80\n\n[services.web.backends.b1]\nhost = "10.1.0.1"\nport = 70000\n',
        "gorb.toml:6: services.web.backends.b1.port: must be 1-65535, got 70000"],
      ["gorb.json", '{\n  "services": {\n    "web": {\n      "port": 80,\n      "backends": {"b1": {"host": "10.1.0.1",\n        "port": 70000}}\n    }\n  }\n}\n',
        "gorb.json:6: services.web.backends.b1.port: must be 1-65535, got 70000"],
      // In a flow mapping the value has no line of its own: the enclosing key's line is given.
      ["gorb.yaml", "services:\n  web:\n    port: 80\n    backends:\n      b1: { host: 10.1.0.1, weight: -1 }\n",
        "gorb.yaml:5: services.web.backends.b1.weight: must be 0-2147483647, got -1"],
      ["gorb.yaml", "services:\n  web:\n    port: 80\n    protcol: udp\n",
        "gorb.yaml:4: services.web.protcol: unknown field; known: host, port, protocol, method, flags, persistent, persistence_timeout, persistence_netmask, fwmark, family, pe, one_packet, panic_threshold, announce_min_healthy, hash_fallback, sorry_server, quorum, hysteresis, quorum_up, quorum_down, backends"],
      ["gorb.yaml", "listen: 127.0.0.1\n", 'gorb.yaml:1: listen: missing port in "127.0.0.1"; use :PORT, HOST:PORT or [IPV6]:PORT'],
      ["gorb.yaml", "verbose: yes\n", 'gorb.yaml:1: verbose: must be true or false, got "yes"'],
      ["gorb.yaml", "flush: false\nreconcile_interval: 10\n", 'gorb.yaml:2: reconcile_interval: must be a duration such as "30s" (0 or "off": never), got 10'],
      ["gorb.toml", 'vip_interface = "eth0/1"\n', 'gorb.toml:1: vip_interface: "eth0/1" is not a network interface name (1-15 characters)'],
      ["gorb.yaml", "Listen: :1\n", "gorb.yaml:1: Listen: unknown field; known: listen, interface, flush, consul, verbose, vip_interface, token, body_limit, state, state_dir, reconcile_interval, token_file, allow, allow_origin, max_connections, tls_cert, tls_key, consul_token, consul_token_file, unknown_destinations, max_services, max_backends, probe_marks, ui, bgp_bird_socket, bgp_include, bgp_protocol, bgp_hold_down, bgp_keep_on_exit, store, node_id, etcd_ca, etcd_cert, etcd_key, etcd_user, etcd_password_file, ipvs_sysctls, hook_dir, check_exec_dir, services"],
      ["gorb.yaml", "services:\n  - web\n", "gorb.yaml:1: services: must be a mapping of service ids to services, got a list"],
      ["gorb.yaml", 'services:\n  "a/b": { port: 80 }\n', 'gorb.yaml:2: services["a/b"]: id must not contain "/", got "a/b"'],
      ["gorb.yaml", "services:\n  web:\n    port: 80\n    backends:\n      b1:\n        host: 10.1.0.1\n        pulse:\n          type: http\n          interval: 5 seconds\n",
        'gorb.yaml:9: services.web.backends.b1.pulse.interval: invalid interval "5 seconds", use e.g. 500ms, 5s, 1m, 2h'],
      // Inside a pulse and a sorry server too: a typo would leave the default in force (a check of "/" every minute).
      ["gorb.yaml", "services:\n  web:\n    port: 80\n    backends:\n      b1:\n        host: 10.1.0.1\n        pulse:\n          type: http\n          intervall: 5s\n",
        "gorb.yaml:9: services.web.backends.b1.pulse.intervall: unknown field; known: type, interval, args"],
      ["gorb.yaml", "services:\n  web:\n    port: 80\n    backends:\n      b1:\n        host: 10.1.0.1\n        pulse:\n          type: HTTP\n          args:\n            pth: /health\n",
        "gorb.yaml:10: services.web.backends.b1.pulse.args.pth: unknown arg; type http reads: host, port, timeout, rise, fall, backoff, method, path, expect, hostHeader, vhost, via"],
      ["gorb.toml", '[services.web]\nport = 80\n\n[services.web.backends.b1]\nhost = "10.1.0.1"\npulse = { args = { Port = 8080 } }\n',
        "gorb.toml:6: services.web.backends.b1.pulse.args.Port: unknown arg; type tcp reads: host, port, timeout, rise, fall, backoff, via"],
      ["gorb.yaml", "services:\n  web:\n    port: 80\n    sorry_server:\n      host: 10.0.0.9\n      prot: 8080\n",
        "gorb.yaml:6: services.web.sorry_server.prot: unknown field; known: host, port, method"],
      // A dr or tunnel destination keeps the packet's port: another one would only be what gorb checks.
      ["gorb.yaml", "services:\n  web:\n    port: 80\n    backends:\n      b1:\n        host: 10.1.0.1\n        port: 8080\n        method: dr\n",
        "gorb.yaml:7: services.web.backends.b1.port: must be the service's port 80 for a dr backend, got 8080: IPVS forwards dr packets " +
          "without changing their port (only nat does); leave port out, and set pulse.args.port to check another port"],
      ["gorb.yaml", "services:\n  web:\n    port: 80\n    sorry_server:\n      host: 10.0.0.9\n      port: 8080\n      method: ipip\n",
        "gorb.yaml:6: services.web.sorry_server.port: must be the service's port 80 for method ipip, got 8080: IPVS forwards ipip " +
          "packets without changing their port (only nat does); leave it out"],
      ["gorb.yaml", "- 1\n", "gorb.yaml: (top level): must be a mapping of settings, got a list"],
      // Settings that go together are named as the file names them, not as flags.
      ["gorb.yaml", "store: etcd://10.0.0.1:2379/gorb\netcd_user: root\n", "gorb.yaml: etcd_password_file: etcd_user and etcd_password_file go together"],
      ["gorb.yaml", "tls_key: /etc/gorb/key.pem\n", "gorb.yaml: tls_cert: is required with tls_key"],
      ["gorb.yaml", "bgp_include: /etc/bird/gorb.conf\n", "gorb.yaml:1: bgp_include: needs bgp_bird_socket"],
      ["gorb.yaml", "token: abc\ntoken_file: /etc/gorb/token\n", "gorb.yaml:2: token_file: give either token or token_file, not both"],
      // An empty token is not "no token": it was an API open to anyone, without a word.
      ["gorb.yaml", 'listen: ":4672"\ntoken: ""\n', "gorb.yaml:2: token: is empty: give the token, or leave token out for none"],
      ["gorb.toml", 'consul = "http://127.0.0.1:8500"\nconsul_token = ""\n', "gorb.toml:2: consul_token: is empty: give the token, or leave consul_token out for none"],
    ];
    for (const [name, text, message] of cases) expect(refusal(name, text)).toBe(message);
  });

  test("a YAML document nested deeper than its parser reaches is refused as such, at its line", () => {
    const deep = `services:\n  web:\n    port: 80\n    x: ${"[".repeat(20_000)}${"]".repeat(20_000)}\n`;
    expect(refusal("gorb.yaml", deep)).toBe("gorb.yaml:4: YAML syntax error: nested too deeply to read (the parser ran out of stack)");
  });

  test("a syntax error is refused with its line", () => {
    expect(refusal("gorb.yaml", "listen: :1\nservices:\n  web:\n    port: 80\n   bad: [\n")).toBe("gorb.yaml:5: YAML syntax error: Unexpected token");
    expect(refusal("gorb.toml", 'listen = ":1"\n\n[services.web]\nport =\n')).toBe(
      "gorb.toml:4: TOML syntax error: Missing value after '='; values must be on the same line",
    );
    expect(refusal("gorb.toml", '[services.web]\nport = 80\n[services.web]\nport = 81\n')).toStartWith("gorb.toml:3: TOML syntax error: ");
    expect(refusal("gorb.json", '{\n  "services": {\n    "web": {"port": 80,}\n  }\n}\n')).toBe(
      'gorb.json:3:24: JSON syntax error: expected a key in double quotes, found "}"',
    );
    expect(refusal("gorb.json", '{"listen": ":1"}\n}')).toBe('gorb.json:2:1: JSON syntax error: unexpected "}" after the end of the document');
  });

  test("every gorb serve flag is a key of the file, in snake_case, and every setting key is a flag", async () => {
    // Flags the file cannot hold, each with the reason.
    const flagOnly: Readonly<Record<string, string>> = {
      config: "names the file itself",
    };
    const serve = (await subCommandsOf(root)).serve;
    if (serve === undefined) throw new Error("gorb has no serve command");
    const flags = Object.keys(await argsOf(serve));
    expect(flags).toContain("listen");
    const settings = CONFIG_KEYS.filter((key) => key !== "services");
    expect(flags.filter((flag) => !Object.hasOwn(flagOnly, flag) && !settings.includes(flag.replaceAll("-", "_")))).toEqual([]);
    expect(settings.filter((key) => !flags.includes(key.replaceAll("_", "-")))).toEqual([]);
    // The flag-only list names only real flags that really have no key.
    expect(Object.keys(flagOnly).filter((flag) => !flags.includes(flag) || settings.includes(flag.replaceAll("-", "_")))).toEqual([]);
  });

  test("a JSON document nested deeper than any stack still reads (the duplicate-key count does not recurse)", () => {
    const depth = 200_000;
    const text = `{"listen": ":1", "deep": ${"[".repeat(depth)}${"]".repeat(depth)}}`;
    expect((parseConfigText(text, "json") as { listen?: string }).listen).toBe(":1");
  });

  test("a JSON key given twice in one object is refused with its line, as TOML refuses it", () => {
    expect(refusal("gorb.json", '{\n  "services": {\n    "web": {"port": 80},\n    "web": {"port": 81}\n  }\n}\n')).toBe(
      'gorb.json:4:5: JSON syntax error: duplicate key "web" (first on line 3)',
    );
    expect(refusal("gorb.json", '{"listen": ":1",\n "listen": ":2"}\n')).toBe('gorb.json:2:2: JSON syntax error: duplicate key "listen" (first on line 1)');
    // The same key spelt with an escape is the same key; the same key in two objects, or ":" inside strings, is fine.
    expect(refusal("gorb.json", '{"flush": true, "\\u0066lush": false}')).toBe('gorb.json:1:17: JSON syntax error: duplicate key "flush" (first on line 1)');
    expect(parseConfigFile("gorb.json", '{"services": {"a": {"port": 80, "backends": {"b": {"host": "10.1.0.1"}}}, "b": {"port": 81, "backends": {"b": {"host": "x\\":"}}}}}').services?.length).toBe(2);
    expect(refusal("gorb.toml", 'listen = ":1"\nlisten = ":2"\n')).toStartWith("gorb.toml:2: TOML syntax error: Cannot redefine key");
  });

  test("a YAML key given twice in one mapping is refused with both lines, whatever its quoting, block or flow, at any depth", () => {
    const service = (backends: string) => `listen: ":1"\nservices:\n  web:\n    host: 10.0.0.1\n    port: 80\n    backends:\n${backends}`;
    // Two backends of one service called b1: Bun.YAML kept the second and dropped the first without a word.
    expect(refusal("gorb.yaml", service("      b1: { host: 10.1.0.1 }\n      b2: { host: 10.1.0.2 }\n      b1:\n        host: 10.1.0.3\n"))).toBe(
      'gorb.yaml:9:7: YAML syntax error: duplicate key "b1" (first on line 7)',
    );
    expect(refusal("gorb.yaml", service("      b1: { host: 10.1.0.1, weight: 5, weight: 50 }\n"))).toBe(
      'gorb.yaml:7:40: YAML syntax error: duplicate key "weight" (first on line 7)',
    );
    expect(refusal("gorb.yml", service("      b1:\n        host: 10.1.0.1\n        pulse:\n          type: tcp\n          'type': http\n"))).toBe(
      'gorb.yml:11:11: YAML syntax error: duplicate key "type" (first on line 10)',
    );
    expect(refusal("gorb.yaml", 'listen: ":1"\n"listen": ":2"\n')).toBe('gorb.yaml:2:1: YAML syntax error: duplicate key "listen" (first on line 1)');
    // A flow mapping over several lines, a key after a multi-line quoted value; CRLF lines.
    expect(refusal("gorb.yaml", 'services: {\n  web: {port: 80},\n  "web": {port: 81}\n}\n')).toBe('gorb.yaml:3:3: YAML syntax error: duplicate key "web" (first on line 2)');
    expect(refusal("gorb.yaml", 'token: "a\n  b"\nflush: true\nflush: false\n')).toBe('gorb.yaml:4:1: YAML syntax error: duplicate key "flush" (first on line 3)');
    expect(refusal("gorb.yaml", "flush: true\r\nflush: false\r\n")).toBe('gorb.yaml:2:1: YAML syntax error: duplicate key "flush" (first on line 1)');
    // Where the key count does not follow the text (a merge key, a tag, a block scalar), the parser still finds it.
    expect(refusal("gorb.yaml", "x: &d { port: 80 }\nservices:\n  web:\n    <<: *d\n    port: 81\n    host: 10.0.0.1\n    host: 10.0.0.2\n")).toBe(
      'gorb.yaml:7:5: YAML syntax error: duplicate key "host" (first on line 6)',
    );
    expect(refusal("gorb.yaml", 'token: !!str |\n  a: 1\n  a: 2\nlisten: ":1"\nlisten: ":2"\n')).toBe('gorb.yaml:5:1: YAML syntax error: duplicate key "listen" (first on line 4)');
    // The same key in two mappings, in two entries of a sequence, as `a: 1` entries of a flow sequence, or
    // overriding a merged key, is not given twice; neither is a key in a block scalar or a comment.
    const fine = [
      service("      b1: { host: 10.1.0.1, weight: 5 }\n      b2: { host: 10.1.0.2, weight: 5 }\n"),
      "a:\n  - k: 1\n  - k: 2\nb: [k: 1, k: 2]\n",
      "base: &b { port: 80, host: x }\nweb:\n  <<: *b\n  port: 81\n",
      "a: |\n  k: 1\n  k: 2\nb: 1 # b: 2\n# b: 3\n",
      "a: &a { k: 1 }\nb: *a\nc: *a\n",
    ];
    for (const text of fine) expect(() => parseConfigText(text, "yaml")).not.toThrow();
  });

  test("YAML keys are the same when Bun makes them one property: by value, whatever the quoting; numbers and null as Bun reads them", () => {
    const duplicate = (text: string): string | null => {
      try {
        parseConfigText(text, "yaml");
        return null;
      } catch (error) {
        return error instanceof ConfigSyntaxError ? error.detail : String(error);
      }
    };
    expect(duplicate("a: 1\n'a': 2\n")).toBe('YAML syntax error: duplicate key "a" (first on line 1)');
    expect(duplicate('"\\x61": 1\na: 2\n')).toBe('YAML syntax error: duplicate key "a" (first on line 1)');
    expect(duplicate("{a, b, a: 1}")).toBe('YAML syntax error: duplicate key "a" (first on line 1)');
    expect(duplicate("1: a\n0x1: b\n")).toBe('YAML syntax error: duplicate key "0x1" (first on line 1)');
    expect(duplicate("~: a\nnull: b\n")).toBe('YAML syntax error: duplicate key "null" (first on line 1)');
    expect(duplicate('1: a\n"1": b\n')).toBe('YAML syntax error: duplicate key "1" (first on line 1)');
    expect(duplicate("a: &k x\n*k : 1\n*k : 2\n")).toBe('YAML syntax error: duplicate key "*k" (first on line 2)');
    // Deeper down, and the first of two by where the second one is.
    expect(duplicate("a:\n  b:\n    c: [{ d: 1, d: 2 }]\ne: 1\ne: 2\n")).toBe('YAML syntax error: duplicate key "d" (first on line 3)');
    // Not the same: Web and web, 1 and "01", two merges.
    for (const text of ["Web: 1\nweb: 2\n", '1: a\n"01": b\n', "a: &a {x: 1}\nb: &b {y: 1}\nc:\n  <<: *a\n  <<: *b\n"]) {
      expect(duplicate(text)).toBeNull();
    }
    // Keys of separate documents are not the same either; a second document is refused for what it is.
    expect(duplicate("a: 1\n---\na: 2\n")).toBe("YAML syntax error: a second YAML document starts here: a configuration file is one document");
  });

  test("a YAML key that is a sequence or a mapping is refused at its line with the path of its mapping, anywhere in the document", () => {
    // Bun.YAML made these keys strings: the service "a,b", the setting "[object Object]", without a word.
    expect(refusal("gorb.yaml", "services:\n  [a, b]:\n    port: 80\n")).toBe("gorb.yaml:2:3: services: YAML syntax error: the key [a, b] is a sequence: a key must be a name");
    expect(refusal("gorb.yaml", 'listen: ":1"\n{x: 1}: true\n')).toBe("gorb.yaml:2:1: (top level): YAML syntax error: the key {x: 1} is a mapping: a key must be a name");
    expect(refusal("gorb.yaml", "services:\n  web:\n    backends:\n      b1: {host: x, [port]: 1}\n")).toBe(
      "gorb.yaml:4:21: services.web.backends.b1: YAML syntax error: the key [port] is a sequence: a key must be a name",
    );
    // In flow mappings and sequences, as an explicit key, an entry with no value, and an alias of a collection.
    expect(refusal("gorb.yaml", "services: {[a]}\n")).toBe("gorb.yaml:1:12: services: YAML syntax error: the key [a] is a sequence: a key must be a name");
    expect(refusal("gorb.yaml", "allow: [[a]: 1]\n")).toBe("gorb.yaml:1:9: allow[0]: YAML syntax error: the key [a] is a sequence: a key must be a name");
    expect(refusal("gorb.yaml", "? [a,\n  b]\n: 1\n")).toBe("gorb.yaml:1:3: (top level): YAML syntax error: the key [a, b] is a sequence: a key must be a name");
    expect(refusal("gorb.yaml", "x: &k [a, b]\nservices:\n  *k : {port: 80}\n")).toBe(
      "gorb.yaml:3:3: services: YAML syntax error: the key *k is an alias of a sequence: a key must be a name",
    );
    // Where the key count gives up anyway (a merge key), and before a key given twice.
    expect(refusal("gorb.yaml", "x: &d {port: 80}\nservices:\n  web:\n    <<: *d\n    {a: 1}: 2\n    port: 1\n    port: 2\n")).toBe(
      "gorb.yaml:5:5: services.web: YAML syntax error: the key {a: 1} is a mapping: a key must be a name",
    );
    // A scalar key is fine however written: quoted, with commas or brackets in it, an alias of a scalar.
    for (const text of ['"[a, b]": 1\n', "a,b: 1\n", "x: &k y\n*k : 1\n", "{a: [1], b: {c: 2}}\n", "a: [b, {c: 1}]\n"]) {
      expect(() => parseConfigText(text, "yaml")).not.toThrow();
    }
  });

  test("the search for a YAML key that is a collection takes linear time: many aliases as keys, a large mapping", () => {
    // Each alias key was resolved by a walk of the whole document, and each key of a mapping compared with those
    // before it: 3000 aliases as keys took about a minute, 20000 services beside a [a, b] key some 40 s.
    const anchors = Array.from({ length: 3000 }, (_, i) => `  a${i}: &k${i} n${i}\n`).join("");
    const aliasKeys = Array.from({ length: 3000 }, (_, i) => `  *k${i} : ${i}\n`).join("");
    expect(() => parseConfigText(`anchors:\n${anchors}m:\n${aliasKeys}`, "yaml")).not.toThrow();
    const services = Array.from({ length: 20_000 }, (_, i) => `  s${i}:\n    <<: *b\n`).join("");
    expect(refusal("gorb.yaml", `base: &b {port: 80}\nservices:\n${services}  [a, b]: 1\n`)).toBe(
      "gorb.yaml:40003:3: services: YAML syntax error: the key [a, b] is a sequence: a key must be a name",
    );
  }, 15_000);

  test("the line of a YAML or TOML syntax error is found in a few parses, however long the file", () => {
    // Every prefix of this file past line 4 fails: trying them one by one took minutes.
    const text = `listen: :1\nservices:\n  web:\n    port: 80: 81\n${"# a comment that pads the file to a large size\n".repeat(60_000)}`;
    expect(refusal("gorb.yaml", text)).toBe("gorb.yaml:4: YAML syntax error: Unexpected token");
    const toml = `[services.web]\nport =\n${"# a comment that pads the file to a large size\n".repeat(60_000)}`;
    expect(refusal("gorb.toml", toml)).toStartWith("gorb.toml:2: TOML syntax error: ");
  });

  test("a flow collection or quoted string over several lines is not taken for the syntax error", () => {
    /** The line after the longest prefix of whole lines that parses, one prefix at a time (slow but sure). */
    const slowly = (text: string, parse: (text: string) => unknown): number => {
      const lines = text.split("\n");
      for (let keep = lines.length - 1; keep > 0; keep--) {
        try {
          parse(lines.slice(0, keep).join("\n"));
          return keep + 1;
        } catch {
          // still broken
        }
      }
      return 1;
    };
    const lineOf = (name: string, text: string): number => Number(/^[^:]+:(\d+):/.exec(refusal(name, text))?.[1]);
    const backend = (i: number) => `      b${i}: { host: 10.1.0.${i},\n            port: 8080,\n            weight: 10 }\n`;
    const yaml = ["services:\n  web:\n    port: 80\n    backends:\n"];
    for (let i = 1; i <= 40; i++) yaml.push(backend(i));
    const table = (i: number) => `[services.s${i}]\nport = 80\nflags = [\n  "sh-fallback",\n  "sh-port",\n]\n`;
    const toml: string[] = [];
    for (let i = 1; i <= 40; i++) toml.push(table(i));
    for (const [name, parts, bad, parse] of [
      ["gorb.yaml", yaml, "    bad: [\n", Bun.YAML.parse],
      ["gorb.toml", toml, "port = \n", Bun.TOML.parse],
    ] as const) {
      for (let at = 1; at <= parts.length; at += 3) {
        const text = [...parts.slice(0, at), bad, ...parts.slice(at)].join("");
        const expected = slowly(text, parse);
        expect(expected).toBe(parts.slice(0, at).join("").split("\n").length);
        expect(lineOf(name, text)).toBe(expected);
      }
    }
  });

  test("a missing file says so", async () => {
    const error = await loadConfigFile("/nonexistent/gorb.yaml").catch((e: unknown) => e);
    expect((error as Error).message).toBe("/nonexistent/gorb.yaml: cannot read the configuration file: no such file");
  });
});

describe("gorb serve --config", () => {
  let previous: DaemonRunner | null = null;
  let dir = "";
  afterEach(() => {
    if (previous !== null) setDaemonRunner(previous);
    previous = null;
    if (dir !== "") rmSync(dir, { recursive: true, force: true });
    dir = "";
  });

  function record(): DaemonOptions[] {
    const seen: DaemonOptions[] = [];
    previous = setDaemonRunner(async (options) => {
      seen.push(options);
    });
    return seen;
  }

  function file(name: string, text: string): string {
    dir = mkdtempSync(join(tmpdir(), "gorb-config-"));
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  }

  test("the file's settings apply; flags and GORB_TOKEN given override them", async () => {
    const seen = record();
    const path = file("gorb.yaml", "listen: 127.0.0.1:5000\nflush: true\ntoken: from-file\nstate_dir: /srv/gorb\nreconcile_interval: 1m\nservices:\n  web: { port: 80 }\n");
    chmodSync(path, 0o600); // it holds a token: gorb refuses it when others may read it
    expect((await runGorb(["serve", "--config", path])).code).toBe(0);
    expect(seen[0]).toMatchObject({
      listen: { host: "127.0.0.1", port: 5000 },
      flush: true,
      token: "from-file",
      stateDir: "/srv/gorb",
      reconcileIntervalMs: 60_000,
      configPath: path,
    });
    expect(seen[0]?.declared?.map((s) => [s.id, Object.fromEntries(s.fields)])).toEqual([["web", { port: 80 }]]);
    expect((await runGorb(["serve", "--config", path, "-l", ":6000", "--no-flush", "--no-state", "--reconcile-interval", "0"], { GORB_TOKEN: "env" })).code).toBe(0);
    expect(seen[1]).toMatchObject({ listen: { host: null, port: 6000 }, flush: false, token: "env", stateDir: null, reconcileIntervalMs: 0 });
  });

  test("unknown_destinations: the flag's values, checked the same way; --unknown-destinations wins over the file", async () => {
    const seen = record();
    const path = file("gorb.yaml", "unknown_destinations: adopt\n");
    expect((await runGorb(["serve", "--config", path])).code).toBe(0);
    expect((await runGorb(["serve", "--config", path, "--unknown-destinations", "remove"])).code).toBe(0);
    expect(seen.map((o) => o.unknownDestinations)).toEqual(["adopt", "remove"]);
    expect(refusal("gorb.yaml", "unknown_destinations: delete\n")).toBe(
      'gorb.yaml:1: unknown_destinations: must be one of report, adopt, remove, got "delete"',
    );
  });

  test("a file with an error stops the start with its location; the daemon is not started", async () => {
    const seen = record();
    const path = file("gorb.toml", '[services.web]\nport = 80\nmethod = "fastest"\n');
    const run = await runGorb(["serve", "--config", path]);
    expect(run).toEqual({
      code: 2,
      stdout: "",
      stderr: `error: ${path}:3: services.web.method: must be one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos, got "fastest"\n`,
    });
    expect(seen).toEqual([]);
  });

  test("a file that is not a regular file (a device, a FIFO) or is over 64 MiB is not read (at start and at SIGHUP alike)", async () => {
    record();
    expect(await runGorb(["serve", "--config", "/dev/null"])).toEqual({
      code: 2,
      stdout: "",
      stderr: "error: /dev/null: cannot read the configuration file: is not a regular file (a character device)\n",
    });
    // A FIFO without a writer would block the read for ever; /dev/zero would be read without end.
    const fifo = file("fifo.yaml", "");
    rmSync(fifo);
    expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
    // loadConfigFile is what SIGHUP re-reads the file with.
    const refused = (path: string) => loadConfigFile(path).then(() => "read", (e: unknown) => (e as Error).message);
    expect(await refused(fifo)).toBe(`${fifo}: cannot read the configuration file: is not a regular file (a FIFO)`);
    const huge = join(dir, "huge.yaml");
    writeFileSync(huge, "");
    truncateSync(huge, 64 * 1024 * 1024 + 1); // sparse: takes no room
    expect(await refused(huge)).toBe(`${huge}: cannot read the configuration file: is 67108865 bytes, over the limit of 64 MiB`);
  });

  test("limits and panic_threshold: the file's keys are the flags' and the API's; --max-services wins over the file", async () => {
    const seen = record();
    const text =
      "max_services: 10\nmax_backends: unlimited\nservices:\n  web:\n    port: 80\n    panic_threshold: 50\n" +
      "    backends:\n      b1: { host: 10.1.0.1, pulse: { type: tcp, args: { path: /ignored, port: 8080 } } }\n";
    const path = file("gorb.yaml", text);
    expect((await runGorb(["serve", "--config", path])).code).toBe(0);
    expect([seen[0]?.maxServices, seen[0]?.maxBackends]).toEqual([10, null]);
    const web = seen[0]?.declared?.[0];
    expect(Object.fromEntries(web?.fields ?? [])).toEqual({ port: 80, panic_threshold: 50 });
    // The tcp pulse does not read `path`: it is dropped, like any arg its type does not read.
    expect(Object.fromEntries(web?.backends[0]?.fields ?? [])).toEqual({ host: "10.1.0.1", pulse: { type: "tcp", args: { port: 8080 } } });
    expect((await runGorb(["serve", "--config", path, "--max-services", "20"])).code).toBe(0);
    expect(seen[1]?.maxServices).toBe(20);
    expect(refusal("gorb.yaml", "services:\n  web: { port: 80, panic_threshold: 101 }\n")).toBe(
      "gorb.yaml:2: services.web.panic_threshold: must be 0-100, got 101",
    );
    expect(refusal("gorb.yaml", "max_backends: lots\n")).toBe(
      'gorb.yaml:1: max_backends: must be a whole number (max_services, max_backends: or "unlimited"), got "lots"',
    );
  });
});

