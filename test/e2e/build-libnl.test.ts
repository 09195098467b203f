/**
 * `npm run build` on a machine without libnl (scripts/build.ts): the Debian packages libnl-3-200 and
 * libnl-genl-3-200 are fetched with `apt-get download` into a cache, unpacked with `dpkg-deb -x`, and embedded.
 * The host has libnl installed, so "without" is made real in a private mount namespace (unshare -m, as root) where
 * /dev/null is bound over the library files, for the build and for the built executable alike.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EMBEDDED_LIBRARIES, buildExecutable } from "../../scripts/build.ts";

const ROOT = join(import.meta.dir, "..", "..");
/** Shell commands that hide the host's libnl in the current mount namespace. */
const HIDE_LIBNL = EMBEDDED_LIBRARIES.map((l) => `mount --bind /dev/null "$(readlink -f ${l.path})"`).join(" && ");

let dir: string;

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `argv` in a private mount namespace without the host's libnl. */
async function withoutLibnl(argv: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  const proc = Bun.spawn(["unshare", "-m", "sh", "-c", `${HIDE_LIBNL} && exec "$@"`, "sh", ...argv], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", NO_COLOR: "1", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "gorb-build-libnl-"));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("npm run build without libnl", () => {
  test("fetches the Debian packages into the cache, embeds them, and the executable loads them", async () => {
    const cache = join(dir, "cache");
    const exe = join(dir, "gorb-fetched");
    const build = await withoutLibnl([process.execPath, "scripts/build.ts", "--outfile", exe, "--cache-dir", cache]);
    expect([build.code, build.stderr]).toEqual([0, ""]);
    expect(build.stdout).toMatch(/\(libnl: downloaded libnl-3-200_\S+_amd64\.deb, libnl-genl-3-200_\S+_amd64\.deb \(cache /);
    expect(readdirSync(cache).sort()).toEqual(["libnl-3-200", "libnl-genl-3-200"]);

    const extractDir = mkdtempSync(join(dir, "extract-"));
    const run = await withoutLibnl([exe, "status", "--direct"], { GORB_DEBUG: "1", GORB_LIBNL_DIR: extractDir });
    // The host has no IPVS: loading libnl is as far as --direct gets.
    expect(run.code).toBe(8);
    expect(run.stderr).toStartWith("libnl loaded from embedded:memfd\nerror: IPVS is not available in this kernel");
  }, 180_000);

  test("a filled cache is used as it is (no download), and its files are what the executable carries", () => {
    const cache = join(dir, "seeded");
    const markers = new Map<string, Buffer>();
    for (const lib of EMBEDDED_LIBRARIES) {
      // Stand-ins for the unpacked packages: unique bytes, to find them in the executable.
      const libDir = join(cache, lib.debianPackage, "lib", "x86_64-linux-gnu");
      mkdirSync(libDir, { recursive: true });
      const marker = Buffer.from(`gorb-test-${lib.soname}-${crypto.randomUUID()}`);
      markers.set(lib.soname, marker);
      writeFileSync(join(libDir, lib.soname), marker);
      writeFileSync(join(cache, lib.debianPackage, "gorb-deb"), `${lib.debianPackage}_seeded.deb\n`);
    }
    const exe = join(dir, "gorb-seeded");
    const output = buildExecutable(exe, { fetchLibnl: true, cacheDir: cache });
    expect(output).toContain(`(libnl: downloaded libnl-3-200_seeded.deb, libnl-genl-3-200_seeded.deb (cache ${cache}))`);
    const bytes = readFileSync(exe);
    for (const [soname, marker] of markers) expect([soname, bytes.includes(marker)]).toEqual([soname, true]);
  }, 180_000);

  test("when apt-get cannot fetch, the build fails naming the library and what to do", () => {
    const cache = join(dir, "no-apt");
    const proc = Bun.spawnSync([process.execPath, "scripts/build.ts", "--outfile", join(dir, "never"), "--fetch-libnl", "--cache-dir", cache], {
      cwd: ROOT,
      env: { PATH: join(dir, "empty-path") },
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(proc.exitCode).toBe(1);
    expect(proc.stderr.toString()).toStartWith("build: libnl-3.so.200 is not on this machine and fetching it failed: apt-get download -q libnl-3-200 failed (");
    expect(proc.stderr.toString()).toContain("Run `apt-get update` (apt needs its package lists) or install libnl-3-200 libnl-genl-3-200.");
    expect(existsSync(join(dir, "never"))).toBe(false);
    expect(readdirSync(cache)).toEqual([]); // nothing half-fetched is left
  });
});
