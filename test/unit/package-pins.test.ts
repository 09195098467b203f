/**
 * The build is reproducible from package.json alone: every dependency is pinned to one exact version, the one
 * package-lock.json resolved (a range or "latest" lets `npm install` on a fresh machine pick another compiler,
 * runtime types or framework than the one the tests ran with).
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as {
  packages: Record<string, { version?: string; dependencies?: Record<string, string>; devDependencies?: Record<string, string> }>;
};

describe("package.json pins", () => {
  const all = { ...pkg.dependencies, ...pkg.devDependencies };
  test.each(Object.entries(all))("%s is an exact version, the one the lock file holds", (name, spec) => {
    expect(spec).toMatch(/^\d+\.\d+\.\d+$/);
    expect(lock.packages[`node_modules/${name}`]?.version).toBe(spec);
  });

  test("the lock file's root entry asks for the same versions", () => {
    const root = lock.packages[""];
    expect({ ...root?.dependencies, ...root?.devDependencies }).toEqual(all);
  });
});
