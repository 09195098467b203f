/**
 * A configuration file that holds a token is checked as a secret on the descriptor its text was read from
 * (ConfigFile.stat), not by its path again: the path may name another file (a private one) by the time of the check.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfigFile } from "../../../src/config/load.ts";
import { SecretFileError, checkPrivateStat } from "../../../src/daemon/secrets.ts";

const dir = mkdtempSync(join(tmpdir(), "gorb-config-secret-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("the file read is what is checked: a readable one swapped for a private one after the read is refused", async () => {
  const file = join(dir, "gorb.yaml");
  const private_ = join(dir, "private.yaml");
  writeFileSync(file, "token: theirs\n", { mode: 0o644 });
  writeFileSync(private_, "token: ours\n", { mode: 0o600 });
  const loaded = await loadConfigFile(file);
  expect(loaded.flags.token).toBe("theirs");
  renameSync(private_, file);
  const stat = loaded.stat;
  expect(stat).toBeDefined();
  if (stat === undefined) return;
  expect(stat.mode & 0o777).toBe(0o644);
  expect(() => checkPrivateStat("config", file, stat)).toThrow(SecretFileError);
});

test("a private configuration file passes the check on what was read", async () => {
  const file = join(dir, "ok.yaml");
  writeFileSync(file, "token: ours\n", { mode: 0o600 });
  const loaded = await loadConfigFile(file);
  const stat = loaded.stat;
  expect(stat).toBeDefined();
  if (stat !== undefined) expect(() => checkPrivateStat("config", file, stat)).not.toThrow();
});
