/**
 * A black-holed backend: checks time out, and their sockets are closed for real. Without that, every timed-out
 * connect stayed in SYN_SENT for about 2 minutes (fds 8 -> 158 in 30 s at a 200ms interval).
 * Needs root for a private network namespace (unshare -n), as the rig and CI have.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";

const SETUP = [
  "ip link set lo up",
  "ip link add bh0 type veth peer name bh1",
  "ip addr add 10.66.0.1/24 dev bh0",
  "ip link set bh0 up",
  "ip link set bh1 up",
  "ip neigh add 10.66.0.2 lladdr 02:00:00:00:66:02 dev bh0 nud permanent",
].join(" && ");

test("6 s of tcp and http checks every 200ms to a black hole: descriptors and in-flight probes stay flat", async () => {
  const child = Bun.spawn(["unshare", "-n", "sh", "-c", `${SETUP} && exec "$0" "$@"`, process.execPath, join(import.meta.dir, "_black-hole-child.ts"), "6000"], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, PATH: `/usr/sbin:/sbin:${process.env.PATH ?? "/usr/bin:/bin"}` },
  });
  const [out, err, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  expect({ code, err: code === 0 ? "" : err }).toEqual({ code: 0, err: "" });
  const r = JSON.parse(out.trim().split("\n").at(-1) as string) as { timedOut: number; maxFds: number; maxInFlight: number; kinds: string[] };
  // ~30 checks per target, every one a timeout.
  expect(r.timedOut).toBeGreaterThan(40);
  expect(r.kinds).toEqual(["down/timeout"]);
  // Per target at most: the connects of the first STUCK_MS (1 s = 5 checks) when they go through Bun.connect,
  // which cannot cancel them (they are counted until they settle), the current one, and the previous one between
  // its destroy() and its close event: 7 each, 14 for both. (IP literals now take the raw path, whose cancel
  // closes the socket at once: 1-2 each.) Without real cancelling: one more per check, ~60 by the end and growing.
  expect(r.maxInFlight).toBeLessThanOrEqual(16);
  expect(r.maxFds).toBeLessThanOrEqual(16);
}, 30_000);
