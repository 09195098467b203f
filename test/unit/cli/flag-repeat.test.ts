/**
 * A flag given twice: the last one wins, booleans and their --no- form included (a wrapper script's defaults
 * followed by what the operator typed).
 */
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { type DaemonRunner, setDaemonRunner } from "../../../src/cli/commands/serve.ts";
import type { DaemonOptions } from "../../../src/config/daemon-options.ts";
import { runGorb, startServer } from "./_harness.ts";

const server = startServer();
afterAll(() => server.stop());

describe("a flag given twice", () => {
  let previous: DaemonRunner | null = null;
  afterEach(() => {
    if (previous !== null) setDaemonRunner(previous);
    previous = null;
  });

  test("a boolean given after its --no- form wins (gorb serve --no-state --state keeps the state)", async () => {
    const seen: DaemonOptions[] = [];
    previous = setDaemonRunner(async (options) => {
      seen.push(options);
    });
    const runs = [
      ["--no-state", "--state"],
      ["--state", "--no-state"],
      ["--no-ui", "--ui", "--no-ui", "--ui"],
      ["--flush", "--no-flush"],
      ["--no-flush", "-f"],
    ];
    for (const flags of runs) expect((await runGorb(["serve", "--state-dir", "/srv/gorb", ...flags])).code).toBe(0);
    expect(seen.map((o) => [o.stateDir, o.ui, o.flush])).toEqual([
      ["/srv/gorb", true, false],
      [null, true, false],
      ["/srv/gorb", true, false],
      ["/srv/gorb", true, false],
      ["/srv/gorb", true, true],
    ]);
  });

  test("the body a client command sends carries the last of --no-X and --X", async () => {
    const env = { GORB_SERVER: server.url };
    expect((await runGorb(["service", "add", "a", "--host", "10.0.0.1", "--port", "80", "--no-persistent", "--persistent"], env)).code).toBe(0);
    expect((await runGorb(["service", "add", "b", "--host", "10.0.0.2", "--port", "80", "--persistent", "--no-persistent"], env)).code).toBe(0);
    expect((await runGorb(["service", "add", "c", "--host", "10.0.0.3", "--port", "80", "--port", "81"], env)).code).toBe(0);
    expect(server.bodies).toEqual([
      { host: "10.0.0.1", port: 80, persistent: true },
      { host: "10.0.0.2", port: 80, persistent: false },
      { host: "10.0.0.3", port: 81 },
    ]);
  });
});

describe("a flag written with one dash", () => {
  test("is read as checkFlags reads it: -f=VALUE gives VALUE, -protocol is --protocol (citty read \"=VALUE\", and -p -r -o ...)", async () => {
    const seen: DaemonOptions[] = [];
    const previous = setDaemonRunner(async (options) => {
      seen.push(options);
    });
    try {
      expect((await runGorb(["serve", "-l=127.0.0.1:4673", "-f=false", "-verbose"])).code).toBe(0);
      expect((await runGorb(["serve", "-listen", "127.0.0.1:4674", "-f=true"])).code).toBe(0);
    } finally {
      setDaemonRunner(previous);
    }
    expect(seen.map((o) => [o.listen.port, o.flush])).toEqual([[4673, false], [4674, true]]);
    const sent = server.bodies.length;
    const run = await runGorb(["service", "add", "one-dash", "-host", "10.0.0.9", "-port=80", "-protocol", "UDP"], { GORB_SERVER: server.url });
    expect([run.code, run.stderr]).toEqual([0, "service one-dash created\n"]);
    expect(server.bodies.slice(sent)).toEqual([{ host: "10.0.0.9", port: 80, protocol: "udp" }]);
  });
});
