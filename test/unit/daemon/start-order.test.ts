/**
 * gorb serve's start-up order: the state directory is opened and checked before IPVS is touched, so a directory
 * gorb cannot use stops the start before the IPVS sysctls are set. This host has no IPVS: a start that reached IPVS
 * first fails there (IPVS unavailable, or libnl missing) instead of on the state directory.
 */
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createConsola } from "consola";
import { parseDaemonOptions } from "../../../src/config/daemon-options.ts";
import { runDaemon } from "../../../src/daemon/run.ts";
import { StateStoreError } from "../../../src/state/errors.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

test("a state directory gorb cannot use stops the start before IPVS is touched", async () => {
  const dir = mkdtempSync(join(tmpdir(), "gorb-start-order-"));
  dirs.push(dir);
  writeFileSync(join(dir, "file"), "");
  const log = createConsola({ level: -999 });
  // A regular file where the directory should be, and a directory to be made under that file.
  for (const stateDir of [join(dir, "file"), join(dir, "file", "sub")]) {
    const started = runDaemon(parseDaemonOptions({ stateDir, listen: "127.0.0.1:0" }), log);
    const error = await started.then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StateStoreError);
  }
});
