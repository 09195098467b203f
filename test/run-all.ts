/**
 * `npm test`: the host unit suite, then the kernel suite inside the qemu rig (a real IPVS kernel), then the web UI
 * in Chromium against the compiled gorb in the rig (test/browser), then one sandbox boot checked from the host
 * (`scripts/sandbox.ts --check`). Every stage always runs; the exit code is non-zero if any failed or could not
 * run. The last line is the plain "N passed, N failed" summary CI reads.
 */
const bun = process.execPath;
const root = new URL("..", import.meta.url).pathname;

interface Stage {
  readonly name: string;
  readonly cmd: string[];
}

const RESPONSIVE = "test/unit/core/responsive.test.ts";

const stages: Stage[] = [
  { name: "typecheck (tsc --noEmit, strict)", cmd: [bun, "node_modules/typescript/bin/tsc", "--noEmit", "-p", "."] },
  { name: "host unit tests", cmd: [bun, "test", "test/unit", `--path-ignore-patterns=${RESPONSIVE}`] },
  // Alone in a process of its own: its bound is on the longest stretch of CPU without a turn of the event loop, and
  // after the other 180 files the test runner's heap makes the collector's pauses longer than a daemon's.
  { name: "host unit tests: bulk work yields to the event loop (a process of its own)", cmd: [bun, "test", RESPONSIVE] },
  { name: "compiled executable (e2e)", cmd: [bun, "test", "test/e2e"] },
  { name: "kernel suite (qemu rig, real IPVS)", cmd: [bun, "run", "test/rig/kernel-suite.ts"] },
  { name: "web UI in Chromium (compiled gorb in the rig guest, real IPVS)", cmd: [bun, "test", "test/browser"] },
  { name: "sandbox (npm run sandbox -- --check: boot, gorb status from the host)", cmd: [bun, "run", "scripts/sandbox.ts", "--check"] },
];

let passed = 0;
let failed = 0;
let broken = 0;
// Every "(fail)" line of every stage, said again just above the summary: CI keeps only the tail of the output.
const failures: string[] = [];
for (const stage of stages) {
  console.log(`\n=== ${stage.name}: ${stage.cmd.slice(1).join(" ")}`);
  const t0 = performance.now();
  const proc = Bun.spawn(stage.cmd, { cwd: root, stdout: "pipe", stderr: "pipe", env: process.env });
  const counts = { pass: 0, fail: 0 };
  const pump = async (stream: ReadableStream<Uint8Array>, sink: (s: string) => void) => {
    const decoder = new TextDecoder();
    let tail = "";
    for await (const chunk of stream) {
      const text = decoder.decode(chunk, { stream: true });
      sink(text);
      tail += text;
      const lines = tail.split("\n");
      tail = lines.pop() ?? "";
      for (const line of lines) {
        // bun test's summary lines: " 35 pass" / " 0 fail" (also relayed from the guest).
        const m = /^\s*(\d+) (pass|fail)$/.exec(line.replace(/\x1b\[[0-9;]*m/g, ""));
        if (m) counts[m[2] as "pass" | "fail"] += Number(m[1]);
        const plain = line.replace(/\x1b\[[0-9;]*m/g, "").trim();
        if (plain.startsWith("(fail)")) failures.push(`${stage.name}: ${plain}`);
      }
    }
  };
  await Promise.all([pump(proc.stdout, (s) => process.stdout.write(s)), pump(proc.stderr, (s) => process.stderr.write(s))]);
  const code = await proc.exited;
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  passed += counts.pass;
  failed += counts.fail;
  if (code !== 0 && counts.fail === 0) broken++;
  else if (code === 0 && counts.pass === 0 && stage.cmd.includes("test")) console.log(`(${stage.name} ran no test)`);
  console.log(`=== ${stage.name}: exit ${code}, ${counts.pass} passed, ${counts.fail} failed, ${secs} s`);
}

if (failures.length > 0) console.log(`\nfailed tests:\n${failures.map((f) => `  ${f}`).join("\n")}`);
if (broken > 0) console.log(`${broken} stage(s) failed to run to completion (see above)`);
console.log(`${passed} passed, ${failed + broken} failed`);
process.exit(failed + broken > 0 ? 1 : 0);
