/**
 * What the BIRD tests share: a logger that prints nothing, and per-file clean-ups run after each test (last added,
 * first run), with temporary directories that go with them.
 */
import { afterEach } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const quiet = { debug() {}, info() {}, warn() {}, error() {} };

/** Call once at the top of a test file: `cleanups` run after each test; `tempDir()` makes one that is removed then. */
export function bgpFixtures(): { readonly cleanups: (() => Promise<void> | void)[]; tempDir(): string } {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  return {
    cleanups,
    tempDir() {
      const dir = mkdtempSync(join(tmpdir(), "gorb-bgp-"));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      return dir;
    },
  };
}
