/**
 * `npm run bench:uml`: the figures of `npm run bench` (bench/bench-script.ts, the same BENCH_* variables) in a
 * second kind of guest: user-mode Linux, Debian's `user-mode-linux` package (a Linux kernel, IPVS as modules, run as
 * an ordinary process of this machine). The qemu guest of `npm run bench` emulates the CPU, which costs JIT-compiled
 * JavaScript far more than C (each new piece of machine code is translated again); in user-mode Linux every program
 * runs on the real CPU, and what costs instead is each system call and page fault (the kernel traps them with
 * ptrace), which costs `ipvsadm -R`'s one request per rule far more than gorb's batches. Neither is a real machine:
 * the two skews go opposite ways, so the two runs bound the figures from both sides. The guest has one CPU (the
 * package's kernel is not SMP; the qemu guest has two).
 *
 * The guest's root is this machine's own, read-only (hostfs); /usr and /tmp are overlays on a tmpfs, so the guest
 * adds /usr/bin/gorb and its modules without writing here. Needs what `.ci/rig-deps.sh` installs (ipvsadm, ip,
 * kmod) and `apt-get download user-mode-linux` (cached under .rig-cache/uml/). Prints; asserts nothing. Exit: the
 * guest script's status, 2 when user-mode Linux itself failed.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildGuestExecutable } from "../test/rig/compiled-exe.ts";
import { PROJECT_ROOT, RIG_CACHE } from "../test/rig/paths.ts";
import { benchScript } from "./bench-script.ts";

const PACKAGE = "user-mode-linux";
const UML_CACHE = join(RIG_CACHE, "uml");
const EXIT_MARK = "GORB_UML_EXIT=";
const FAILED_MARK = "GORB_UML_SETUP_FAILED: ";
/** The modules the rig's qemu guest loads at boot (test/rig/init.sh), overlay for the guest's own mounts. */
const MODULES = ["ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_lc", "ip_vs_wlc", "ip_vs_lblc", "ip_vs_lblcr", "ip_vs_dh",
  "ip_vs_sh", "ip_vs_sed", "ip_vs_nq", "ip_vs_fo", "ip_vs_ovf", "ip_vs_mh", "nf_conntrack", "veth"];

function fail(message: string): never {
  console.error(`bench:uml: ${message}`);
  process.exit(2);
}

function run(argv: string[], cwd?: string): string {
  const proc = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe", ...(cwd === undefined ? {} : { cwd }) });
  if (proc.exitCode !== 0) fail(`${argv.join(" ")} exited ${proc.exitCode}: ${proc.stderr.toString().trim()}`);
  return proc.stdout.toString();
}

interface Uml {
  readonly kernel: string;
  readonly release: string;
  /** A directory holding lib/modules/<release>, for `modprobe -d`. */
  readonly moduleRoot: string;
}

/** The package apt would install now, downloaded and unpacked once per version. */
function umlKernel(): Uml {
  const show = run(["apt-cache", "show", "--no-all-versions", PACKAGE]);
  const filename = /^Filename: (.+)$/m.exec(show)?.[1]?.split("/").pop();
  if (filename === undefined) fail(`apt-cache show ${PACKAGE} names no file (apt lists not updated? run .ci/rig-deps.sh)`);
  const dir = join(UML_CACHE, filename.replace(/\.deb$/, ""));
  const tree = join(dir, "tree");
  if (!existsSync(join(tree, "usr", "bin", "linux.uml"))) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    run(["apt-get", "download", PACKAGE], dir);
    const deb = readdirSync(dir).find((f) => f.endsWith(".deb"));
    if (deb === undefined) fail(`apt-get download ${PACKAGE} left no .deb in ${dir}`);
    run(["dpkg-deb", "-x", join(dir, deb), tree]);
    rmSync(join(dir, deb));
  }
  const modules = join(tree, "usr", "lib", "uml", "modules");
  const release = readdirSync(modules)[0];
  if (release === undefined) fail(`${modules} is empty`);
  const moduleRoot = join(dir, "modroot");
  const link = join(moduleRoot, "lib", "modules", release);
  if (!existsSync(link)) {
    mkdirSync(join(moduleRoot, "lib", "modules"), { recursive: true });
    symlinkSync(join(modules, release), link);
    run(["/usr/sbin/depmod", "-b", moduleRoot, release]);
  }
  return { kernel: join(tree, "usr", "bin", "linux.uml"), release, moduleRoot };
}

/** The guest's /init: mounts, overlays, IPVS, then the bench script in the project's directory. */
function initScript(uml: Uml, scriptPath: string, withExecutable: boolean): string {
  return `#!/bin/sh
export PATH=${join(PROJECT_ROOT, "node_modules", ".bin")}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/tmp/home
fail() { echo "${FAILED_MARK}$*"; poweroff -f; exit 1; }
step() { what=$1; shift; out=$("$@" 2>&1) || fail "$what: $out"; }
step "mount /proc" mount -t proc proc /proc
step "mount /sys" mount -t sysfs sysfs /sys
step "mount /run" mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /dev/shm /dev/pts /run/netns /run/overlay
step "mount /dev/shm" mount -t tmpfs -o mode=1777 tmpfs /dev/shm
step "mount /dev/pts" mount -t devpts devpts /dev/pts
step "mount /run/netns" mount -t tmpfs -o mode=755 tmpfs /run/netns
step "modprobe overlay" modprobe -d ${uml.moduleRoot} overlay
for d in usr tmp; do
  mkdir -p /run/overlay/$d/up /run/overlay/$d/work
  step "overlay /$d" mount -t overlay overlay -o lowerdir=/$d,upperdir=/run/overlay/$d/up,workdir=/run/overlay/$d/work /$d
done
mkdir -p /tmp/home /usr/lib/modules
ln -s ${join(uml.moduleRoot, "lib", "modules", uml.release)} /usr/lib/modules/${uml.release}
${withExecutable ? `step "install gorb" cp ${join(PROJECT_ROOT, "dist", "gorb")} /usr/bin/gorb` : ""}
for m in ${MODULES.join(" ")}; do step "modprobe $m" modprobe "$m"; done
step "lo up" /usr/sbin/ip link set lo up
step "sysctl ip_forward" sysctl -w net.ipv4.ip_forward=1
step "sysctl vs.conntrack" sysctl -w net.ipv4.vs.conntrack=1
hostname gorb-uml
echo "user-mode Linux $(uname -r), $(nproc) CPU, $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) MB"
cd ${PROJECT_ROOT} || fail "cd ${PROJECT_ROOT}"
sh ${scriptPath}
echo "${EXIT_MARK}$?"
poweroff -f
`;
}

let bench: ReturnType<typeof benchScript>;
try {
  bench = benchScript(process.env);
} catch (e) {
  fail((e as Error).message);
}
const uml = umlKernel();
if (bench.withExecutable) buildGuestExecutable((line) => console.error(line.replace("in the guest", "in user-mode Linux")));
const runDir = join(UML_CACHE, `run-${process.pid}`);
mkdirSync(runDir, { recursive: true });
const init = join(runDir, "init.sh");
const scriptPath = join(runDir, "bench.sh");
writeFileSync(scriptPath, bench.script);
writeFileSync(init, initScript(uml, scriptPath, bench.withExecutable), { mode: 0o755 });

const started = performance.now();
// setsid: user-mode Linux runs a host process per guest process; on a timeout the whole group is killed.
const proc = Bun.spawn(["setsid", uml.kernel, `mem=${process.env.GORB_UML_MEMORY_MB ?? 3072}M`, "rootfstype=hostfs", "rootflags=/",
  "ro", `init=${init}`, "con=null", "con0=null,fd:1", "quiet"], { stdin: "ignore", stdout: "pipe", stderr: "inherit" });
const timeoutMs = Number(process.env.GORB_RIG_TIMEOUT_MS ?? 40 * 60_000);
const timer = setTimeout(() => {
  console.error(`bench:uml: no end after ${timeoutMs / 1000} s; killing user-mode Linux`);
  process.kill(-proc.pid, "SIGKILL");
}, timeoutMs);
let exitCode: number | undefined;
let setupFailure: string | undefined;
let pending = "";
const decoder = new TextDecoder();
for await (const chunk of proc.stdout) {
  const text = decoder.decode(chunk, { stream: true });
  process.stdout.write(text);
  pending += text;
  const lines = pending.split("\n");
  pending = lines.pop() ?? "";
  for (const line of lines) {
    const clean = line.replace(/\r$/, "");
    if (clean.startsWith(EXIT_MARK)) exitCode = Number(clean.slice(EXIT_MARK.length));
    if (clean.startsWith(FAILED_MARK)) setupFailure = clean.slice(FAILED_MARK.length);
  }
}
await proc.exited;
clearTimeout(timer);
rmSync(runDir, { recursive: true, force: true });
const seconds = ((performance.now() - started) / 1000).toFixed(1);
if (setupFailure !== undefined) fail(`guest setup failed: ${setupFailure}`);
if (exitCode === undefined || !Number.isInteger(exitCode)) fail(`user-mode Linux ended (exit ${proc.exitCode}) without reporting the script's status, after ${seconds} s`);
console.log(`\nbench:uml: guest exit ${exitCode}; ${seconds} s in all`);
process.exit(exitCode);
