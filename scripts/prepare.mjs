#!/usr/bin/env node
/**
 * `node scripts/prepare.mjs test|sandbox`: what `npm test` and `npm run sandbox` need, installed before they run
 * (npm runs it as their `pretest` / `presandbox` script). Plain Node, no dependencies: it runs before
 * node_modules (and with it Bun) exists.
 *
 *  1. node_modules: `npm ci` when node_modules/.bin/bun is missing.
 *  2. Debian packages: those of .ci/debian-packages tagged with the command, checked with `dpkg-query` (about
 *     20 ms when everything is there). Missing ones are installed with `apt-get update` + `apt-get install` when
 *     running as root; otherwise it prints one line naming the exact command and exits 1.
 *  3. apt's package lists, which the rig needs to fetch its kernel with `apt-get download`, when no kernel is cached
 *     yet and the lists are empty (a fresh container): `apt-get update` as root, else the same one-line message.
 *
 * Environment, for tests: GORB_PREPARE_PACKAGES (a packages file instead of .ci/debian-packages), GORB_PREPARE_ROOT
 * ("0" acts as a non-root user, "1" as root), GORB_PREPARE_APT_LISTS (apt's lists directory), GORB_RIG_CACHE (as
 * the rig: where its kernel is cached).
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const PURPOSES = ["test", "sandbox"];

/** The packages of a packages file (lines `package purpose... [why]`) that `purpose` needs. */
export function packagesFor(text, purpose) {
  const out = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const [name, ...rest] = line.split(/\s+/);
    if (rest.includes(purpose)) out.push(name);
  }
  return out;
}

/** The packages of `wanted` that `dpkg-query -W -f '${Package}\t${db:Status-Abbrev}\n'` output does not show installed. */
export function missingPackages(wanted, dpkgOutput) {
  const installed = new Set();
  for (const line of dpkgOutput.split("\n")) {
    const [name, status] = line.split("\t");
    // "ii " = wanted install, installed; the name may carry ":amd64".
    if (name !== undefined && status?.startsWith("ii")) installed.add(name.split(":")[0]);
  }
  return wanted.filter((p) => !installed.has(p));
}

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { stdio: "inherit", ...options });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

function fail(message) {
  console.error(message);
  process.exit(1);
}

function isRoot() {
  const forced = process.env.GORB_PREPARE_ROOT;
  if (forced === "0" || forced === "1") return forced === "1";
  return typeof process.getuid === "function" && process.getuid() === 0;
}

/** True when a rig kernel is already cached (then apt's lists are not needed to fetch one). */
function kernelCached() {
  const cache = process.env.GORB_RIG_CACHE ? process.env.GORB_RIG_CACHE : join(ROOT, ".rig-cache");
  const dir = join(cache, "kernel");
  if (!existsSync(dir)) return false;
  return readdirSync(dir).some((name) => existsSync(join(dir, name, "rig-kernel.json")));
}

/** True when apt has package lists (`apt-get update` was run at least once). */
function aptListsPresent() {
  const dir = process.env.GORB_PREPARE_APT_LISTS ?? "/var/lib/apt/lists";
  if (!existsSync(dir)) return false;
  return readdirSync(dir).some((name) => name.endsWith("_Packages") || name.includes("_Packages."));
}

function main(argv) {
  const purpose = argv[0];
  if (!PURPOSES.includes(purpose)) fail(`usage: node scripts/prepare.mjs ${PURPOSES.join("|")}`);
  const npmCommand = purpose === "test" ? "npm test" : "npm run sandbox";

  if (!existsSync(join(ROOT, "node_modules", ".bin", "bun"))) {
    console.error(`prepare: node_modules is missing: npm ci`);
    const code = run("npm", ["ci", "--no-audit", "--no-fund"], { cwd: ROOT });
    if (code !== 0) fail(`prepare: npm ci failed (exit ${code})`);
  }

  const listFile = process.env.GORB_PREPARE_PACKAGES ?? join(ROOT, ".ci", "debian-packages");
  const wanted = packagesFor(readFileSync(listFile, "utf8"), purpose);
  const query = spawnSync("dpkg-query", ["-W", "-f", "${Package}\\t${db:Status-Abbrev}\\n", ...wanted], { encoding: "utf8" });
  if (query.error) {
    console.error(`prepare: no dpkg-query (not Debian?): make sure these are installed: ${wanted.join(" ")}`);
    return;
  }
  const missing = missingPackages(wanted, query.stdout);
  const needLists = !kernelCached() && !aptListsPresent();
  if (missing.length === 0 && !needLists) return;

  const install = missing.length > 0 ? ["apt-get", "install", "-y", "--no-install-recommends", ...missing] : [];
  if (!isRoot()) {
    const steps = ["sudo apt-get update", ...(install.length > 0 ? [`sudo ${install.join(" ")}`] : [])].join(" && ");
    const what = missing.length > 0 ? `Debian packages ${missing.join(" ")} are missing` : "apt has no package lists (needed to fetch the rig's kernel)";
    fail(`${npmCommand}: ${what}; run: ${steps}`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  console.error(`prepare: ${missing.length > 0 ? `installing ${missing.join(" ")}` : "updating apt's package lists"} (apt-get, as root)`);
  let code = run("apt-get", ["update", "-q"], { env });
  if (code !== 0) fail(`prepare: apt-get update failed (exit ${code})`);
  if (install.length > 0) {
    code = run(install[0], [...install.slice(1, 2), "-q", ...install.slice(2)], { env });
    if (code !== 0) fail(`prepare: ${install.join(" ")} failed (exit ${code})`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main(process.argv.slice(2));
