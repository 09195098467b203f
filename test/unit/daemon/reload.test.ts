/**
 * SIGHUP's re-read of the configuration file (src/daemon/reload.ts): a file `gorb serve` would refuse at start is
 * refused whole, with why, and nothing is applied; a good one has its services applied.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { reloadConfig } from "../../../src/daemon/reload.ts";
import { RecordingLogger } from "../core/fakes.ts";
import type { DaemonFlags } from "../../../src/config/daemon-options.ts";
import { parseConfigFile } from "../../../src/config/load.ts";

const dir = mkdtempSync(join(tmpdir(), "gorb-reload-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * What one SIGHUP logged, and the ids of the services it applied (null: nothing applied); `started`: the file's
 * settings gorb runs with.
 */
async function hup(name: string, text: string, mode = 0o600, started: DaemonFlags | null = null): Promise<{ lines: string[]; applied: string[] | null }> {
  const path = join(dir, name);
  writeFileSync(path, text);
  chmodSync(path, mode);
  const log = new RecordingLogger();
  let applied: string[] | null = null;
  await reloadConfig(
    path,
    log,
    async (services) => {
      applied = services.map((s) => s.id);
    },
    started,
  );
  return { lines: log.lines, applied };
}

describe("SIGHUP", () => {
  test("a good file: its services are applied", async () => {
    const run = await hup("good.yaml", "services:\n  web: { port: 80 }\n");
    expect(run.applied).toEqual(["web"]);
    expect(run.lines[0]).toStartWith("info SIGHUP: re-read ");
  });

  test("settings changed in the file since the start are named, a secret without its value: they take effect at the next start", async () => {
    const started = parseConfigFile("gorb.yaml", 'listen: "127.0.0.1:4672"\ntoken: old\nreconcile_interval: 30s\n').flags;
    const path = join(dir, "changed.yaml");
    const run = await hup("changed.yaml", 'listen: "0.0.0.0:4672"\ntoken: n3w-s3cret\nreconcile_interval: 30s\nallow: [10.0.0.0/8]\nservices:\n  web: { port: 80 }\n', 0o600, started);
    expect(run.applied).toEqual(["web"]);
    expect(run.lines).toEqual([
      `warn SIGHUP: re-read ${path}; listen, token, allow changed since gorb started: they take effect at the next start (systemctl restart gorb); only services are applied now`,
    ]);
    const same = await hup("same.yaml", 'listen: "127.0.0.1:4672"\ntoken: old\nreconcile_interval: 30s\n', 0o600, started);
    expect(same.lines[0]).toStartWith("info SIGHUP: re-read ");
  });

  test("a file with an error is refused whole with its location, and nothing is applied", async () => {
    const path = join(dir, "bad.yaml");
    const run = await hup("bad.yaml", "services:\n  web: { port: 70000 }\n");
    expect(run).toEqual({ lines: [`error SIGHUP: ${path}:2: services.web.port: must be 1-65535, got 70000; the file is refused whole and nothing changed`], applied: null });
  });

  test("a file holding a token that others may read is refused, as at start: gorb serve would not start with it", async () => {
    for (const key of ["token", "consul_token"]) {
      const path = join(dir, `${key}.yaml`);
      const run = await hup(`${key}.yaml`, `${key}: s3cret\nservices:\n  web: { port: 80 }\n`, 0o644);
      expect(run).toEqual({
        lines: [
          `error SIGHUP: --config: ${path}: holds a secret but its mode is 0644 (group or others may read it); run: chmod 600 ${path}; the file is refused whole and nothing changed`,
        ],
        applied: null,
      });
    }
    expect((await hup("private.yaml", "token: s3cret\nservices:\n  web: { port: 80 }\n", 0o600)).applied).toEqual(["web"]);
  });
});
