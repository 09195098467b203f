/**
 * `bun bench/log-lines.ts [LINES]`: what one log line of `gorb serve` costs, consola's own reporter (what the
 * daemon used before) against gorb's (src/daemon/log-lines.ts), both writing to /dev/null through process.stdout,
 * in one process after a warm-up, 5 rounds each, alternating; prints the medians per line and the ratio. A busy
 * daemon logs one line per change (every PUT), so this is part of a request's cost. Prints; asserts nothing.
 */
import { createConsola as createFullConsola } from "consola";
import { createConsola } from "consola/core";
import { daemonReporter } from "../src/daemon/log-lines.ts";
import { median } from "./stats.ts";

const LINES = Number(process.argv[2] ?? 5000);

if (process.argv[3] !== "--child") {
  const child = Bun.spawn([process.execPath, import.meta.path, String(LINES), "--child"], { stdout: "ignore", stderr: "inherit" });
  process.exit(await child.exited);
}

const loggers = {
  "consola's reporter": createFullConsola({ level: 3 }).withTag("gorb").withTag("core"),
  "gorb's reporter": createConsola({ level: 3, reporters: [daemonReporter()] }).withTag("gorb").withTag("core"),
};
const rounds: Record<string, number[]> = {};
for (let round = 0; round < 6; round++) {
  for (const [name, log] of Object.entries(loggers)) {
    const t0 = performance.now();
    for (let i = 0; i < LINES; i++) log.info(`backend "b${i}" of service "web" created: 10.1.0.${i % 250}:80, nat, weight 100`);
    const us = ((performance.now() - t0) / LINES) * 1000;
    if (round > 0) (rounds[name] ??= []).push(us); // round 0 warms up
  }
}
const per = Object.fromEntries(Object.entries(rounds).map(([name, xs]) => [name, median(xs)]));
for (const [name, us] of Object.entries(per)) console.error(`log lines: ${name.padEnd(20)} ${us.toFixed(1)} µs per line (median of ${rounds[name]?.length} rounds of ${LINES})`);
const consola = per["consola's reporter"] ?? 0;
const gorb = per["gorb's reporter"] ?? 0;
console.error(`log lines: gorb's / consola's reporter: ${(gorb / consola).toFixed(2)}`);
