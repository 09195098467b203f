/**
 * The connection shedder when the process is out of file descriptors: a real API server in a child process with
 * `ulimit -n 96`, flooded from this process with connections that never finish a request. It must still shed
 * (its reserve descriptor lets it read /proc), which frees descriptors for everything else.
 */
import { afterEach, expect, test } from "bun:test";
import { type Socket, connect } from "node:net";

const sockets: Socket[] = [];
let child: ReturnType<typeof Bun.spawn> | null = null;
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.destroy();
  child?.kill();
  child = null;
});

const SERVER = `
  const { createApp } = await import(${JSON.stringify(new URL("../../../src/api/app.ts", import.meta.url).pathname)});
  const { startApiServer } = await import(${JSON.stringify(new URL("../../../src/daemon/api-server.ts", import.meta.url).pathname)});
  const { makeGorb } = await import(${JSON.stringify(new URL("../core/fakes.ts", import.meta.url).pathname)});
  const { connect } = await import("node:net");
  const stack = makeGorb();
  const app = createApp({ gorb: stack.gorb, logger: stack.logger });
  const logger = { warn: (line) => console.log(line), info() {}, debug() {}, error() {}, success() {} };
  const api = startApiServer(app, { listen: { host: "127.0.0.1", port: 0 }, tls: null, maxConnections: 256, shedIntervalMs: 20, logger });
  console.log("port " + api.port);
  // After shedding, a new outgoing connection (what a health check opens) must get a descriptor.
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  process.stdin.on("data", () => {
    const s = connect({ host: "127.0.0.1", port: probe.port });
    s.on("connect", () => { console.log("probe ok"); s.destroy(); });
    s.on("error", (e) => console.log("probe " + (e.code ?? e)));
  });
`;

test("out of descriptors, the shedder still sheds down to a quarter of the limit", async () => {
  child = Bun.spawn(["bash", "-c", 'ulimit -n 96 && exec "$0" -e "$1"', process.execPath, SERVER], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "inherit",
  });
  const lines = (async function* () {
    let buffered = "";
    for await (const chunk of child.stdout as ReadableStream<Uint8Array>) {
      buffered += new TextDecoder().decode(chunk);
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        yield buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
      }
    }
  })();
  const next = async (prefix: string): Promise<string> => {
    for (;;) {
      const { value, done } = await lines.next();
      if (done) throw new Error(`the server exited before printing ${prefix}`);
      if (value.startsWith(prefix)) return value;
    }
  };
  const port = Number((await next("port ")).slice(5));
  for (let i = 0; i < 150; i++) {
    const socket = connect({ host: "127.0.0.1", port });
    sockets.push(socket);
    socket.on("error", () => {});
    socket.on("connect", () => socket.write("GET /service HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
  }
  const shed = await next("API: ");
  expect(shed).toMatch(/^API: \d+ connections open, over the cap of 24: closed \d+ \(peers outside --allow first, loopback last, the newest first\)$/);
  // shutdown(2) makes Bun close the shed descriptors on its next turn: probe until one gets a descriptor (a bounded
  // number of tries; each waits for the child's answer).
  const answers: string[] = [];
  for (let i = 0; i < 200 && answers.at(-1) !== "probe ok"; i++) {
    (child.stdin as { write(text: string): void; flush(): void }).write("probe\n");
    (child.stdin as { flush(): void }).flush();
    answers.push(await next("probe"));
  }
  expect(answers.at(-1)).toBe("probe ok");
});
