/**
 * The words --bgp-protocol refuses (src/config/bird-reserved.ts) against a real BIRD 2 (Debian's bird2,
 * /usr/sbin/bird, parse only): each one is refused as a static protocol's name, as the include file would use it,
 * and a name that is not in the list is accepted. Missing BIRD is a failure, not a skip (.ci/debian-packages
 * installs bird2).
 */
import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BIRD_RESERVED_WORDS } from "../../../src/config/bird-reserved.ts";
import { renderInclude } from "../../../src/bgp/include-file.ts";

const BIRD = "/usr/sbin/bird";
const dir = mkdtempSync(join(tmpdir(), "gorb-bird-reserved-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Whether `bird -p` accepts a configuration of a router id and `protocol static <name> { ipv4; }`. */
async function parses(name: string): Promise<boolean> {
  const conf = join(dir, `${name}.conf`);
  writeFileSync(conf, `router id 192.0.2.1;\nprotocol static ${name} { ipv4; }\n`);
  const proc = Bun.spawn([BIRD, "-p", "-c", conf], { stdout: "ignore", stderr: "ignore" });
  return (await proc.exited) === 0;
}

test("BIRD refuses every word of the list as a protocol name, and accepts gorb's include file", async () => {
  expect(existsSync(BIRD), `${BIRD} is missing: install bird2 (.ci/debian-packages)`).toBe(true);
  expect(await parses("gorb_vips")).toBe(true);
  const accepted: string[] = [];
  // A few at a time: each is a process.
  for (let i = 0; i < BIRD_RESERVED_WORDS.length; i += 32) {
    const batch = BIRD_RESERVED_WORDS.slice(i, i + 32);
    const results = await Promise.all(batch.map((word) => parses(word)));
    accepted.push(...batch.filter((_, j) => results[j] === true));
  }
  expect(accepted).toEqual([]);
  // The file gorb writes, with the default name, parses (both of its protocols).
  const include = join(dir, "include.conf");
  writeFileSync(include, `router id 192.0.2.1;\n${renderInclude("gorb_vips", ["192.0.2.10/32", "2001:db8::10/128"])}`);
  expect(Bun.spawnSync([BIRD, "-p", "-c", include]).exitCode).toBe(0);
}, 60_000);
