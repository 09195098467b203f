/**
 * The Debian package (`npm run package`, scripts/package.ts), built from a freshly compiled executable and
 * installed with the real dpkg into a fresh, empty root (`dpkg --root DIR --force-script-chrootless`: the
 * maintainer scripts run against $DPKG_ROOT instead of a chroot, which would need a whole base system; and
 * --force-depends, because that root has no libc6 package). The unit is checked with `systemd-analyze verify`
 * (the `systemd` package; missing is a failure, not a skip). test/kernel/compiled-package.test.ts runs the
 * installed files in the rig's guest against a real IPVS kernel.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { buildExecutable } from "../../scripts/build.ts";
import { PACKAGE_FILES, buildPackage, packageFileName } from "../../scripts/package.ts";
import { loadConfigFile, parseConfigFile } from "../../src/config/load.ts";
import { checkPrivateStat } from "../../src/daemon/secrets.ts";

/**
 * For a test that runs dpkg or dpkg-deb on the package (a 118 MB executable, gzip): 1-1.5 s here, over bun's
 * default 5 s with a quarter of a CPU; a test that timed out left no install for the tests after it.
 */
const DPKG_TIMEOUT_MS = 60_000;

let dir: string;
let deb: string;
let root: string;

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(argv: readonly string[], env: Record<string, string> = {}): Run {
  const proc = Bun.spawnSync([...argv], { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", ...env } });
  return { code: proc.exitCode ?? -1, stdout: proc.stdout.toString(), stderr: proc.stderr.toString() };
}

function ok(argv: readonly string[]): string {
  const r = run(argv);
  if (r.code !== 0) throw new Error(`${argv.join(" ")} exited ${r.code}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** `dpkg --root=<root>` with the options an install into a bare directory needs. */
function dpkg(...args: string[]): Run {
  return run(["dpkg", `--root=${root}`, "--force-script-chrootless", "--force-depends", "--log=/dev/null", ...args]);
}

/** A fresh root holding only an empty dpkg database. */
function freshRoot(): string {
  const r = mkdtempSync(join(dir, "root-"));
  for (const d of ["info", "updates", "triggers"]) mkdirSync(join(r, "var/lib/dpkg", d), { recursive: true });
  writeFileSync(join(r, "var/lib/dpkg/status"), "");
  writeFileSync(join(r, "var/lib/dpkg/available"), "");
  return r;
}

/** `mode` as `ls -l` and `dpkg-deb --contents` show a regular file's ("-rw-r--r--"). */
function modeText(mode: number): string {
  return `-${[6, 3, 0].map((shift) => ["r", "w", "x"].map((c, i) => ((mode >> shift) & (4 >> i) ? c : "-")).join("")).join("")}`;
}

/** The value of `key=` lines of a unit file (the last one wins, as in systemd). */
function unitValue(unit: string, key: string): string | undefined {
  const lines = unit.split("\n").filter((l) => l.startsWith(`${key}=`));
  return lines[lines.length - 1]?.slice(key.length + 1);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "gorb-package-"));
  const exe = join(dir, "gorb");
  buildExecutable(exe);
  deb = buildPackage({ exe, outDir: dir });
  root = freshRoot();
}, 300_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("npm run package", () => {
  test("builds gorb_<version>_amd64.deb with the control fields, the conffile and every file", () => {
    expect(deb).toBe(join(dir, packageFileName()));
    expect(ok(["dpkg-deb", "--field", deb, "Package", "Version", "Architecture"])).toBe(`Package: gorb\nVersion: ${pkg.version}\nArchitecture: amd64\n`);
    expect(ok(["dpkg-deb", "--info", deb, "conffiles"])).toBe("/etc/gorb/gorb.yaml\n");
    const listing = ok(["dpkg-deb", "--contents", deb]);
    for (const file of Object.values(PACKAGE_FILES)) {
      const line = listing.split("\n").find((l) => l.endsWith(` ./${file.path}`));
      expect(line === undefined ? `${file.path} missing` : line.slice(0, 10)).toBe(modeText(file.mode));
      expect(line).toContain(" root/root ");
    }
    // The configuration file may hold the API token: root's alone, as gorb serve requires of a file with `token:`.
    expect(listing.split("\n").find((l) => l.endsWith(" ./etc/gorb/gorb.yaml"))?.slice(0, 10)).toBe("-rw-------");
  }, DPKG_TIMEOUT_MS);
});

describe("dpkg --root into a fresh root", () => {
  test("installs: files in place, the package configured, the state directory made by postinst", () => {
    const r = dpkg("--install", deb);
    expect(r.code).toBe(0);
    const status = readFileSync(join(root, "var/lib/dpkg/status"), "utf8");
    expect(status).toContain("Package: gorb\nStatus: install ok installed\n");
    expect(status).toMatch(/\nConffiles:\n \/etc\/gorb\/gorb\.yaml [0-9a-f]{32}\n/);
    for (const file of Object.values(PACKAGE_FILES)) expect(statSync(join(root, file.path)).mode & 0o777).toBe(file.mode);
    expect(statSync(join(root, "var/lib/gorb")).mode & 0o777).toBe(0o700);
  }, DPKG_TIMEOUT_MS);

  test("the installed executable runs", () => {
    expect(run([join(root, "usr/bin/gorb"), "--version"])).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: "" });
  });

  test("the unit: ExecStart reads the packaged config, ExecReload sends SIGHUP, state in StateDirectory, IPVS allowed", () => {
    const unit = readFileSync(join(root, "lib/systemd/system/gorb.service"), "utf8");
    expect(unitValue(unit, "ExecStart")).toBe("/usr/bin/gorb serve --config /etc/gorb/gorb.yaml");
    expect(unitValue(unit, "ExecReload")).toBe("/bin/kill -HUP $MAINPID");
    expect(unitValue(unit, "Restart")).toBe("on-failure");
    // Exit 2 is restarted as well: a token or key file not there yet at boot (a later mount, a secrets agent) is one.
    expect(unitValue(unit, "RestartPreventExitStatus")).toBeUndefined();
    expect(unitValue(unit, "StateDirectory")).toBe("gorb");
    expect(unitValue(unit, "RuntimeDirectory")).toBe("gorb"); // /run/gorb: the default BGP include file
    expect(unitValue(unit, "CapabilityBoundingSet")?.split(" ")).toContain("CAP_NET_ADMIN");
    expect(unitValue(unit, "RestrictAddressFamilies")?.split(" ")).toContain("AF_NETLINK");
    expect(unitValue(unit, "ProtectKernelTunables")).toBeUndefined(); // /proc/sys/net/ipv4/vs/* stays writable
    expect(unitValue(unit, "WantedBy")).toBe("multi-user.target");
  });

  test("the packaged config is valid for the daemon's loader and matches the unit", () => {
    const path = join(root, "etc/gorb/gorb.yaml");
    const config = parseConfigFile(path, readFileSync(path, "utf8"));
    expect(config.flags).toMatchObject({ listen: "127.0.0.1:4672", stateDir: "/var/lib/gorb", reconcileInterval: "30s" });
    expect(config.services).toBeNull(); // declares nothing: services come from the API until the admin adds some
  });

  test("an operator who adds `token:` to the installed configuration file can start gorb without a chmod", async () => {
    // README's first step after the install is `sudo editor /etc/gorb/gorb.yaml  # listen address, token, ...`; an
    // editor keeps the file's mode. gorb serve reads the file, then checks the descriptor read as a secret file.
    const path = join(root, "etc/gorb/gorb.yaml");
    const shipped = readFileSync(path, "utf8");
    try {
      writeFileSync(path, `${shipped}token: 0123456789abcdef\n`);
      const config = await loadConfigFile(path);
      expect(config.flags.token).toBe("0123456789abcdef");
      const stat = config.stat;
      if (stat === undefined) throw new Error(`${path}: read without its Stats`);
      expect(() => checkPrivateStat("config", path, stat)).not.toThrow();
    } finally {
      writeFileSync(path, shipped);
    }
  });

  test("systemd-analyze verify accepts the unit (and rejects a broken copy)", () => {
    if (!existsSync("/usr/bin/systemd-analyze")) {
      throw new Error("systemd-analyze is missing: install the `systemd` Debian package (.ci/rig-deps.sh does)");
    }
    // The unit as installed, with its executable looked up in the fresh root instead of the host's /usr/bin.
    const unit = readFileSync(join(root, "lib/systemd/system/gorb.service"), "utf8").replace("ExecStart=/usr/bin/gorb", `ExecStart=${root}/usr/bin/gorb`);
    const checkDir = mkdtempSync(join(dir, "verify-"));
    writeFileSync(join(checkDir, "gorb.service"), unit);
    expect(run(["systemd-analyze", "verify", join(checkDir, "gorb.service")])).toEqual({ code: 0, stdout: "", stderr: "" });
    writeFileSync(join(checkDir, "gorb.service"), unit.replace("[Service]\n", "[Service]\nProtectKernelTunabels=yes\n"));
    expect(run(["systemd-analyze", "verify", join(checkDir, "gorb.service")]).stderr).toContain("Unknown key 'ProtectKernelTunabels'");
  }, DPKG_TIMEOUT_MS);

  test("bash completion from the package completes gorb's commands", () => {
    const file = join(root, PACKAGE_FILES.bash.path);
    const r = run(["bash", "-c", `source '${file}' && complete -p gorb && COMP_WORDS=(gorb se) COMP_CWORD=1 && $(complete -p gorb | sed -E 's/.*-F ([^ ]+).*/\\1/') && echo "\${COMPREPLY[*]}"`]);
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n")[1]?.split(" ").sort()).toEqual(["serve", "service"]);
    expect(readFileSync(join(root, PACKAGE_FILES.zsh.path), "utf8")).toStartWith("#compdef gorb");
  });

  test("reinstalling keeps an edited conffile; purge removes it and the state", () => {
    const config = join(root, "etc/gorb/gorb.yaml");
    writeFileSync(config, `${readFileSync(config, "utf8")}vip_interface: lo\n`);
    expect(dpkg("--install", deb).code).toBe(0);
    expect(readFileSync(config, "utf8")).toEndWith("vip_interface: lo\n");
    writeFileSync(join(root, "var/lib/gorb/state.db"), "");
    const purge = dpkg("--purge", "gorb");
    expect(purge.code).toBe(0);
    expect([existsSync(config), existsSync(join(root, "var/lib/gorb")), existsSync(join(root, "usr/bin/gorb"))]).toEqual([false, false, false]);
  }, DPKG_TIMEOUT_MS);
});
