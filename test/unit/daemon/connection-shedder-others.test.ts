/**
 * The connection shedder next to many health-check sockets: fds known to be something else (`otherFds`, the
 * monitor's sockets in flight) are left out of its cheap count, and they never hide API connections beyond the
 * cap. Real sockets in this process: an "API" listener, its accepted connections, and a crowd of other sockets.
 */
import { afterAll, expect, test } from "bun:test";
import { ConnectionShedder } from "../../../src/daemon/connection-shedder.ts";

const accepted: import("bun").Socket[] = [];
const api = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { open: (s) => void accepted.push(s), data() {} } });
const others = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
const clients: import("bun").Socket[] = [];
afterAll(() => {
  for (const s of clients) s.terminate();
  api.stop(true);
  others.stop(true);
});

async function open(port: number, n: number): Promise<void> {
  for (let i = 0; i < n; i++) clients.push(await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } }));
}

test("other sockets do not count; API connections beyond the cap are still shut down", async () => {
  await open(others.port, 150); // 300 fds: each connection's two ends live in this process
  await open(api.port, 3);
  while (accepted.length < 3) await Bun.sleep(1);
  const shut: number[] = [];
  const shedder = new ConnectionShedder({ port: api.port, maxConnections: 4, fdLimit: 10_000, intervalMs: 3_600_000, otherFds: () => 300, shutdown: (fd) => (shut.push(fd), 0) });
  try {
    expect(shedder.check()).toBe(0); // 3 API connections, under the cap of 4
    await open(api.port, 7);
    while (accepted.length < 10) await Bun.sleep(1);
    expect(shedder.check()).toBe(6); // 10 API connections: the 6 newest beyond the cap
    expect(shut.length).toBe(6);
  } finally {
    shedder.stop();
  }
});
