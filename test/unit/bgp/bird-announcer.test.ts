/**
 * The BIRD announcer against a fake control socket (./_fake-bird.ts) that answers like BIRD 2.0.12 and reads
 * the real include file gorb writes, so "what BIRD has" is what the file said at the last `configure`.
 */
import { describe, expect, test } from "bun:test";
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BirdAnnouncer } from "../../../src/bgp/bird-announcer.ts";
import { IncludeFile, hostPrefix, renderInclude } from "../../../src/bgp/include-file.ts";
import { systemClock } from "../../../src/health/clock.ts";
import { FakeBird, RECORDED, healthyBird } from "./_fake-bird.ts";
import { bgpFixtures, quiet } from "./_fixtures.ts";
import { until } from "./_real-bird.ts";

const { cleanups, tempDir } = bgpFixtures();

/** Routes in a rendered include file. */
function routesOf(text: string | null): string[] {
  return [...(text ?? "").matchAll(/route (\S+) blackhole;/g)].map((m) => m[1] ?? "");
}

/** A fake BIRD whose routes are those of the include file as of its last `configure` (like the real one). */
async function birdReading(include: string) {
  let loaded: string[] = [];
  const base = healthyBird(() => loaded);
  const bird = await FakeBird.start((command) => {
    if (command === "configure") loaded = routesOf(existsSync(include) ? readFileSync(include, "utf8") : null);
    return base(command);
  });
  cleanups.push(() => bird.close());
  return { bird, loaded: () => loaded };
}

function announcer(socket: string, include: string) {
  const a = new BirdAnnouncer({ socket, include, protocol: "gorb_vips", clock: systemClock, log: quiet, retryMs: 20, checkMs: 60_000 });
  cleanups.push(() => a.close());
  return a;
}

describe("include file", () => {
  test("renders an ipv4 and an ipv6 static protocol, routes sorted; host prefixes of both families", () => {
    const text = renderInclude("gorb_vips", ["203.0.113.11/32", "2001:db8::10/128", "203.0.113.10/32"]);
    expect(text).toContain("protocol static gorb_vips {\n  ipv4;\n  route 203.0.113.10/32 blackhole;\n  route 203.0.113.11/32 blackhole;\n}\n");
    expect(text).toContain("protocol static gorb_vips6 {\n  ipv6;\n  route 2001:db8::10/128 blackhole;\n}\n");
    expect([hostPrefix("203.0.113.10"), hostPrefix("2001:DB8::10"), hostPrefix("")]).toEqual(["203.0.113.10/32", "2001:db8::10/128", null]);
    expect(() => renderInclude("bad name;", [])).toThrow("protocol:");
    expect(() => renderInclude("gorb_vips", ["203.0.113.10/32; }"])).toThrow("prefix:");
  });

  test("is replaced atomically: the directory is created, no .tmp is left, the old text is never half-written", () => {
    const dir = tempDir();
    const file = new IncludeFile(join(dir, "sub", "bird-vips.conf"));
    expect(file.read()).toBeNull();
    file.write("one\n");
    file.write("two\n");
    expect(file.read()).toBe("two\n");
    expect(existsSync(`${file.path}.tmp`)).toBe(false);
  });
});

describe("include file under the packaged unit's UMask=0077", () => {
  test("the file is 0644 and the directories gorb creates 0755, so BIRD running as its own user reads it", () => {
    const dir = tempDir();
    const old = process.umask(0o077);
    try {
      const file = new IncludeFile(join(dir, "run", "gorb", "bird-vips.conf"));
      file.write("one\n");
      expect(statSync(file.path).mode & 0o777).toBe(0o644);
      expect(statSync(join(dir, "run", "gorb")).mode & 0o777).toBe(0o755);
      expect(statSync(join(dir, "run")).mode & 0o777).toBe(0o755);
      file.write("two\n");
      expect(statSync(file.path).mode & 0o777).toBe(0o644);
    } finally {
      process.umask(old);
    }
  });

  test("a path through a new directory and '..' changes the mode of no directory that was there before", () => {
    // /tmp/new/../gorb/vips.conf made gorb chmod /tmp (1777) to 0755: the walk up from the file's directory to
    // the first one created went through "/tmp/new/..".
    const dir = tempDir();
    mkdirSync(join(dir, "keep"), { mode: 0o700 });
    chmodSync(dir, 0o700);
    const old = process.umask(0o077);
    try {
      const file = new IncludeFile(`${dir}/keep/new/../gorb/bird-vips.conf`);
      file.write("one\n");
      expect(readFileSync(join(dir, "keep", "gorb", "bird-vips.conf"), "utf8")).toBe("one\n");
      expect([statSync(dir).mode & 0o777, statSync(join(dir, "keep")).mode & 0o777, statSync(join(dir, "keep", "gorb")).mode & 0o777]).toEqual([0o700, 0o700, 0o755]);
    } finally {
      process.umask(old);
    }
  });
});

describe("include file in a directory another user can write (BIRD's /run/bird)", () => {
  test("a link planted as the tmp is not followed: its target is untouched and the file is a regular file again", () => {
    const dir = tempDir();
    const victim = join(tempDir(), "victim");
    writeFileSync(victim, "precious\n");
    const file = new IncludeFile(join(dir, "bird-vips.conf"));
    symlinkSync(victim, `${file.path}.tmp`);
    file.write("one\n");
    expect(readFileSync(victim, "utf8")).toBe("precious\n");
    expect(lstatSync(file.path).isFile()).toBe(true);
    expect(file.read()).toBe("one\n");
  });

  test("a link or a FIFO in the file's place is not read (a FIFO would block gorb) and is replaced by the next write", () => {
    const dir = tempDir();
    const victim = join(tempDir(), "victim");
    writeFileSync(victim, "precious\n");
    const file = new IncludeFile(join(dir, "bird-vips.conf"));
    symlinkSync(victim, file.path);
    expect(file.read()).toBeNull();
    file.write("one\n");
    expect(readFileSync(victim, "utf8")).toBe("precious\n");

    rmSync(file.path);
    const mkfifo = Bun.spawnSync(["mkfifo", file.path], { stderr: "pipe" });
    if (mkfifo.exitCode !== 0) throw new Error(`mkfifo: ${mkfifo.stderr.toString()}`);
    expect(file.read()).toBeNull();
    file.write("two\n");
    expect(file.read()).toBe("two\n");
  });
});

describe("BirdAnnouncer", () => {
  test("announce: file written, configure check then configure, confirmed by show route; withdraw the same way", async () => {
    const include = join(tempDir(), "bird-vips.conf");
    const { bird } = await birdReading(include);
    const a = announcer(bird.path, include);
    await a.announce(["203.0.113.10/32", "2001:db8::10/128"]);
    expect(routesOf(readFileSync(include, "utf8"))).toEqual(["203.0.113.10/32", "2001:db8::10/128"]);
    expect(bird.commands).toEqual(["configure check", "configure", "show route protocol gorb_vips", "show route protocol gorb_vips6"]);
    expect(a.status()).toEqual([
      { prefix: "2001:db8::10/128", wanted: true, confirmed: true, error: null },
      { prefix: "203.0.113.10/32", wanted: true, confirmed: true, error: null },
    ]);
    expect(a.speaker()).toMatchObject({ kind: "bird", reachable: true, version: "BIRD 2.0.12 ready.", lastError: null });

    await a.withdraw(["203.0.113.10/32"]);
    expect(a.status().map((p) => [p.prefix, p.confirmed])).toEqual([["2001:db8::10/128", true]]);
  });

  test("a configure may take longer than any other command: a slow one completes, a show route as slow times out", async () => {
    const include = join(tempDir(), "bird-vips.conf");
    let loaded: string[] = [];
    let slowShow = false;
    const base = healthyBird(() => loaded);
    const late = (reply: string) => new Promise<string>((resolve) => setTimeout(() => resolve(reply), 300));
    const bird = await FakeBird.start((command) => {
      if (command === "configure") loaded = routesOf(readFileSync(include, "utf8"));
      if (command.startsWith("configure")) return late(base(command) as string);
      return slowShow ? late(base(command) as string) : base(command);
    });
    cleanups.push(() => bird.close());
    // Replies within 50 ms, but a configure, which has the default (minutes: a large bird.conf takes a while).
    const a = new BirdAnnouncer({ socket: bird.path, include, protocol: "gorb_vips", clock: systemClock, log: quiet, retryMs: 20, checkMs: 60_000, replyTimeoutMs: 50 });
    cleanups.push(() => a.close());
    await a.announce(["203.0.113.10/32"]);
    expect(bird.commands.filter((c) => c.startsWith("configure"))).toEqual(["configure check", "configure"]);
    expect(a.status()).toEqual([{ prefix: "203.0.113.10/32", wanted: true, confirmed: true, error: null }]);
    slowShow = true;
    await a.announce(["203.0.113.10/32"]);
    expect(a.speaker().lastError).toContain('no reply to "show route protocol gorb_vips"');
  });

  test("what a previous run left in the include file is inherited, and a controller's restart never empties the file before judging it", async () => {
    const include = join(tempDir(), "bird-vips.conf");
    writeFileSync(include, renderInclude("gorb_vips", ["203.0.113.10/32", "2001:db8::10/128"]));
    const before = readFileSync(include, "utf8");
    const { bird, loaded } = await birdReading(include);
    const a = announcer(bird.path, include);
    const inherited = a.inherited();
    expect([...inherited].sort()).toEqual(["2001:db8::10/128", "203.0.113.10/32"]);
    await a.announce(inherited);
    a.start();
    await a.announce([]);
    expect(readFileSync(include, "utf8")).toBe(before);
    expect(loaded().sort()).toEqual(["2001:db8::10/128", "203.0.113.10/32"]);
    expect(announcer(bird.path, join(tempDir(), "none.conf")).inherited()).toEqual([]);
  });

  test("an unchanged set is not configured again: only confirmed", async () => {
    const include = join(tempDir(), "bird-vips.conf");
    const { bird } = await birdReading(include);
    const a = announcer(bird.path, include);
    await a.announce(["203.0.113.10/32"]);
    bird.commands.length = 0;
    await a.announce(["203.0.113.10/32"]);
    expect(bird.commands).toEqual(["show route protocol gorb_vips", "show route protocol gorb_vips6"]);
  });

  test("a file BIRD refuses (8002 on configure check) never reaches it: the old file is put back, configure is not sent, the error is reported", async () => {
    const include = join(tempDir(), "bird-vips.conf");
    const { bird, loaded } = await birdReading(include);
    const a = announcer(bird.path, include);
    await a.announce(["203.0.113.10/32"]);
    const good = readFileSync(include, "utf8");

    const base = bird.script;
    bird.script = (command) => (command === "configure check" ? RECORDED.configureError : base(command));
    bird.commands.length = 0;
    await a.announce(["203.0.113.11/32"]);
    expect(bird.commands).not.toContain("configure");
    expect(readFileSync(include, "utf8")).toBe(good);
    expect(loaded()).toEqual(["203.0.113.10/32"]);
    const refused = a.status().find((p) => p.prefix === "203.0.113.11/32");
    expect(refused).toMatchObject({ wanted: true, confirmed: false, error: expect.stringContaining("BIRD 8002") });
    expect(a.speaker().lastError).toContain("previous include file restored");

    // BIRD accepts it again (the operator fixed bird.conf): the retry announces it and clears the error.
    bird.script = base;
    await a.announce([]);
    expect(a.status().find((p) => p.prefix === "203.0.113.11/32")).toMatchObject({ confirmed: true, error: null });
  });

  test("a configure BIRD refuses for another reason than the file (8007: a restricted control socket) keeps the new file and says why", async () => {
    const include = join(tempDir(), "bird-vips.conf");
    const { bird, loaded } = await birdReading(include);
    const a = announcer(bird.path, include);
    await a.announce(["203.0.113.10/32"]);
    const base = bird.script;
    bird.script = (command) => (command.startsWith("configure") ? "8007 Access denied\n" : base(command));
    await a.announce(["203.0.113.11/32"]);
    // The file is what gorb wants (BIRD reads it when it can, at the latest at its next start); BIRD has the old set.
    expect(routesOf(readFileSync(include, "utf8"))).toEqual(["203.0.113.10/32", "203.0.113.11/32"]);
    expect(loaded()).toEqual(["203.0.113.10/32"]);
    expect(a.status().find((p) => p.prefix === "203.0.113.11/32")).toMatchObject({ confirmed: false, error: "BIRD 8007 Access denied (a restricted control socket: gorb needs BIRD's full one)" });
    expect(a.speaker().lastError).toBe("configure not done: BIRD 8007 Access denied (a restricted control socket: gorb needs BIRD's full one)");
    // Given the full socket's rights again, the next sync configures and confirms it.
    bird.script = base;
    await a.announce([]);
    expect(a.status().find((p) => p.prefix === "203.0.113.11/32")).toMatchObject({ confirmed: true, error: null });
  });

  test("a refused file that cannot be put back (the restore fails) is put back and checked again at the next tries, and reaches BIRD once BIRD takes it", async () => {
    const include = join(tempDir(), "bird-vips.conf");
    const { bird, loaded } = await birdReading(include);
    const a = announcer(bird.path, include);
    a.start();
    await a.announce(["203.0.113.10/32"]);
    const good = readFileSync(include, "utf8");

    // BIRD refuses the next file, and at that moment the restore's tmp cannot be made (a directory in its place).
    const base = bird.script;
    bird.script = (command) => {
      if (command !== "configure check") return base(command);
      if (!existsSync(`${include}.tmp`)) mkdirSync(`${include}.tmp`);
      return RECORDED.configureError;
    };
    await a.announce(["203.0.113.11/32"]);
    expect(routesOf(readFileSync(include, "utf8"))).toEqual(["203.0.113.10/32", "203.0.113.11/32"]);
    expect(a.speaker().lastError).toContain("previous include file not restored yet");

    rmSync(`${include}.tmp`, { recursive: true });
    bird.script = (command) => (command === "configure check" ? RECORDED.configureError : base(command));
    await until("the refused file to be put back", () => readFileSync(include, "utf8") === good);
    expect(loaded()).toEqual(["203.0.113.10/32"]);

    bird.script = base;
    await until("BIRD to take the new file", () => loaded().includes("203.0.113.11/32"));
    expect(a.status()).toEqual([
      { prefix: "203.0.113.10/32", wanted: true, confirmed: true, error: null },
      { prefix: "203.0.113.11/32", wanted: true, confirmed: true, error: null },
    ]);
  });

  test("a file that cannot be written shows the error until the file holds the wanted set; then the latest attempt's error shows", async () => {
    const include = join(tempDir(), "bird-vips.conf");
    const { bird } = await birdReading(include);
    const a = announcer(bird.path, include);
    await a.announce(["203.0.113.10/32"]);
    mkdirSync(`${include}.tmp`); // a directory in the tmp's place: the write fails, the file stays as it was
    await a.announce(["203.0.113.11/32"]);
    expect(a.status().find((p) => p.prefix === "203.0.113.11/32")?.error).toContain("include file not written");
    expect(a.speaker().lastError).toContain("include file not written");

    // Withdrawn again before it was ever written: the file holds the wanted set, nothing is wrong any more.
    await a.withdraw(["203.0.113.11/32"]);
    expect(a.status()).toEqual([{ prefix: "203.0.113.10/32", wanted: true, confirmed: true, error: null }]);
    expect(a.speaker().lastError).toBeNull();

    // Not written, then written while BIRD is away: the prefix says BIRD is unreachable, not that the file is unwritten.
    await a.announce(["203.0.113.11/32"]);
    rmSync(`${include}.tmp`, { recursive: true });
    await bird.stop();
    await a.announce([]);
    expect(routesOf(readFileSync(include, "utf8"))).toEqual(["203.0.113.10/32", "203.0.113.11/32"]);
    expect(a.status().find((p) => p.prefix === "203.0.113.11/32")?.error).toContain("BIRD unreachable");
    expect(a.speaker().lastError).toContain("BIRD unreachable");
  });

  test("a refused first file is removed again (there was none before)", async () => {
    const include = join(tempDir(), "bird-vips.conf");
    const bird = await FakeBird.start((command) => (command === "configure check" ? RECORDED.configureError : RECORDED.showRouteEmpty));
    cleanups.push(() => bird.close());
    const a = announcer(bird.path, include);
    await a.announce(["203.0.113.10/32"]);
    expect(existsSync(include)).toBe(false);
  });

  test("BIRD unreachable: the file is still written (BIRD reads it when it starts), the prefix shows the error", async () => {
    const include = join(tempDir(), "bird-vips.conf");
    const a = announcer(join(tempDir(), "none.ctl"), include);
    await a.announce(["203.0.113.10/32"]);
    expect(routesOf(readFileSync(include, "utf8"))).toEqual(["203.0.113.10/32"]);
    expect(a.status()).toEqual([{ prefix: "203.0.113.10/32", wanted: true, confirmed: false, error: expect.stringContaining("BIRD unreachable") }]);
    expect(a.speaker().reachable).toBe(false);
  });

  test("BIRD restarts: gorb reconnects by itself and configures again", async () => {
    const include = join(tempDir(), "bird-vips.conf");
    const { bird } = await birdReading(include);
    const a = announcer(bird.path, include);
    a.start();
    await a.announce(["203.0.113.10/32"]);
    await bird.stop();
    bird.commands.length = 0;
    await bird.restart();
    // The announcer retries every 20 ms; wait for its configure on the new connection.
    for (let i = 0; i < 200 && !(bird.commands.includes("configure") && a.status()[0]?.confirmed === true); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(bird.commands.slice(0, 2)).toEqual(["configure check", "configure"]);
    expect(a.status()).toEqual([{ prefix: "203.0.113.10/32", wanted: true, confirmed: true, error: null }]);
  });

  test("writing over a stale file from an earlier run: what gorb wants replaces it", async () => {
    const include = join(tempDir(), "bird-vips.conf");
    writeFileSync(include, renderInclude("gorb_vips", ["198.51.100.1/32"]));
    const { bird } = await birdReading(include);
    const a = announcer(bird.path, include);
    await a.announce(["203.0.113.10/32"]);
    expect(routesOf(readFileSync(include, "utf8"))).toEqual(["203.0.113.10/32"]);
  });
});
