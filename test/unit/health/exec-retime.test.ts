/**
 * An exec check is told its timeout (GORB_TIMEOUT_MS). A change of the pulse's timing alone (the probe kept, its
 * history too) must reach the program: the monitor kept the checker made for the old options, so a script still
 * sized its own work to the old timeout and was killed at the new, shorter one.
 */
import { afterAll, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HealthMonitor } from "../../../src/health/monitor.ts";
import { parsePulseOptions } from "../../../src/health/options.ts";
import type { HealthUpdate } from "../../../src/health/target-state.ts";

const dir = mkdtempSync(join(tmpdir(), "gorb-exec-retime-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("a timing-only update gives the exec program the new GORB_TIMEOUT_MS, keeping the history", async () => {
  const seen = join(dir, "seen");
  const program = join(dir, "record.sh");
  writeFileSync(program, `#!/bin/sh\necho "$GORB_TIMEOUT_MS" > ${seen}\n`);
  chmodSync(program, 0o755);
  let next: ((u: HealthUpdate) => void) | null = null;
  const update = () => new Promise<HealthUpdate>((resolve) => (next = resolve));
  const monitor = new HealthMonitor({ onUpdate: (u) => next?.(u), execDirs: [dir], random: () => 0 });
  try {
    let first = update();
    monitor.add("a", { host: "10.0.0.1", port: 80 }, parsePulseOptions({ type: "exec", interval: "1s", args: { command: program, timeout: "1s" } }));
    expect((await first).status).toBe("up");
    expect(readFileSync(seen, "utf8").trim()).toBe("1000");
    first = update();
    monitor.update("a", { host: "10.0.0.1", port: 80 }, parsePulseOptions({ type: "exec", interval: "1s", args: { command: program, timeout: "500ms" } }));
    const after = await first;
    expect([after.status, after.samples]).toEqual(["up", 2]); // the same probe: history kept
    expect(readFileSync(seen, "utf8").trim()).toBe("500");
  } finally {
    monitor.stop();
  }
});
