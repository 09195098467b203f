/**
 * The API server on real loopback sockets: the shutdown deadline, the cap on requests in flight, the peer
 * check (--allow) against the TCP peer address, and HTTPS with a certificate made by openssl at test time
 * (./_openssl-cert.ts).
 */
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { connect, type Socket } from "node:net";
import { readFileSync, writeFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { createApp, type AppOptions } from "../../../src/api/app.ts";
import { parseCidr } from "../../../src/config/cidr.ts";
import { type ApiServer, startApiServer } from "../../../src/daemon/api-server.ts";
import { ConnectionShedder } from "../../../src/daemon/connection-shedder.ts";
import { SecretFileError } from "../../../src/daemon/secrets.ts";
import { RecordingLogger, makeGorb } from "../core/fakes.ts";
import { makeCertificate } from "./_openssl-cert.ts";

const running: ApiServer[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  for (const server of running.splice(0)) await server.stop(0);
});

function serve(options: Partial<Omit<AppOptions, "gorb" | "logger">> = {}, host = "127.0.0.1") {
  const stack = makeGorb();
  const app = createApp({ gorb: stack.gorb, logger: stack.logger, ...options });
  const server = startApiServer(app, { listen: { host, port: 0 }, tls: null });
  running.push(server);
  return { ...stack, server, app };
}

/** Opens a raw connection and sends the head of a PUT whose body never completes: a request held in flight. */
async function holdRequest(port: number): Promise<{ socket: Socket; closed: Promise<void> }> {
  const socket = connect({ host: "127.0.0.1", port });
  sockets.push(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  socket.on("error", () => {});
  socket.write("PUT /service/web HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n{");
  return { socket, closed };
}

/** Resolves once the server counts `n` requests in flight (the guard reads the same counter). */
async function inFlight(app: { server: { pendingRequests: number } | null }, n: number): Promise<void> {
  while ((app.server?.pendingRequests ?? 0) < n) await Bun.sleep(2);
}

describe("errors", () => {
  test("the server runs out of development mode: an error no handler caught never gets Bun's page with the stack and source", async () => {
    const { app } = serve();
    expect(app.server?.development).toBe(false);
  });
});

describe("an address that cannot be bound", () => {
  /** What startApiServer throws for `host`:`port`. */
  function bindFailure(host: string, port: number): unknown {
    const stack = makeGorb();
    const app = createApp({ gorb: stack.gorb, logger: stack.logger });
    try {
      running.push(startApiServer(app, { listen: { host, port }, tls: null }));
    } catch (error) {
      return error;
    }
    throw new Error(`${host}:${port} was bound`);
  }

  test("a port in use names the address, the errno and what to do (another gorb, -l)", () => {
    const { server } = serve();
    expect(bindFailure("127.0.0.1", server.port)).toMatchObject({
      name: "ListenError",
      code: "EADDRINUSE",
      address: `127.0.0.1:${server.port}`,
      message:
        `cannot listen on 127.0.0.1:${server.port}: the address is already in use (EADDRINUSE): another gorb or another ` +
        "program listens there; stop it, or choose another address with -l",
    });
  });

  test("an address no interface has names the address and the errno", () => {
    // 192.0.2.0/24 is TEST-NET-1, documentation only: no interface of the test machine has it.
    expect(bindFailure("192.0.2.77", 0)).toMatchObject({
      name: "ListenError",
      code: "EADDRNOTAVAIL",
      address: "192.0.2.77:0",
      message: "cannot listen on 192.0.2.77:0: no interface of this host has that address (EADDRNOTAVAIL); choose another address with -l",
    });
  });
});

describe("shutdown", () => {
  test("a client holding a request open cannot delay the stop past the deadline: its connection is closed", async () => {
    // idleTimeout off: only the stop deadline can end the held request.
    const stack = makeGorb();
    const app = createApp({ gorb: stack.gorb, logger: stack.logger });
    const server = startApiServer(app, { listen: { host: "127.0.0.1", port: 0 }, tls: null, idleTimeoutS: 0 });
    const held = await holdRequest(server.port);
    await inFlight(app, 1);
    expect(await server.stop(50)).toBe("forced");
    await held.closed; // the held connection was closed by the server
    expect(stack.gorb.listServices()).toEqual([]);
  });

  test("with nothing in flight the stop drains at once", async () => {
    const { server } = serve();
    expect((await fetch(`http://127.0.0.1:${server.port}/service`)).status).toBe(200);
    expect(await server.stop(60_000)).toBe("drained");
  });
});

describe("--max-connections", () => {
  test("a request beyond the cap is answered 503 with Connection: close while the others stay in flight", async () => {
    const stack = makeGorb();
    const app = createApp({ gorb: stack.gorb, logger: stack.logger, maxRequests: 2 });
    const server = startApiServer(app, { listen: { host: "127.0.0.1", port: 0 }, tls: null, idleTimeoutS: 0 });
    running.push(server);
    await holdRequest(server.port);
    await holdRequest(server.port);
    await inFlight(app, 2);
    const refused = await fetch(`http://127.0.0.1:${server.port}/service`);
    expect(refused.status).toBe(503);
    expect(refused.headers.get("connection")).toBe("close");
    // Over a real socket too, the guard's answer is not to be kept by a cache (as every answer of the API).
    expect([refused.headers.get("cache-control"), refused.headers.get("x-content-type-options")]).toEqual(["no-store", "nosniff"]);
    expect(await refused.json()).toEqual({
      error: "connections: more than 2 requests in flight; try again",
      code: "UNAVAILABLE",
    });
  });
});

/**
 * Writes `requests` on one connection at once (pipelined) and resolves with the status lines answered, once the
 * server has closed the connection or has answered them all.
 */
async function pipelined(port: number, requests: readonly string[], host = "127.0.0.1"): Promise<{ statuses: string[]; closed: boolean }> {
  const socket = connect({ host, port });
  sockets.push(socket);
  socket.on("error", () => {});
  let text = "";
  const statuses = () => [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1] ?? "");
  return await new Promise((resolve) => {
    socket.on("data", (chunk) => {
      text += chunk.toString();
      if (statuses().length === requests.length) resolve({ statuses: statuses(), closed: false });
    });
    socket.on("close", () => resolve({ statuses: statuses(), closed: true }));
    socket.on("connect", () => socket.write(requests.join("")));
  });
}

describe("--max-connections: refused clients do not keep their connection", () => {
  // A refused request kept its connection alive: a client without the token, or from outside --allow, held a
  // connection for ever by sending a request every few seconds, and with --max-connections of them open, the
  // shedder closed every newer connection, the operator's included.
  test("a request refused for its token, its origin or its peer is answered and its connection closed", async () => {
    const { server } = serve({ token: "sekrit" });
    const get = "GET /service HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    expect(await pipelined(server.port, [get, get])).toEqual({ statuses: ["401"], closed: true });
    const foreign = "DELETE /service/web HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\nAuthorization: Bearer sekrit\r\n\r\n";
    expect(await pipelined(server.port, [foreign, get])).toEqual({ statuses: ["403"], closed: true });
    // The token's owner keeps the connection for the next request.
    const owner = "GET /service HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer sekrit\r\n\r\n";
    expect(await pipelined(server.port, [owner, owner])).toEqual({ statuses: ["200", "200"], closed: false });
  });

  test("a peer outside --allow is answered 403 and its connection closed", async () => {
    const address = externalAddress();
    const { server } = serve({ allow: [parseCidr("198.51.100.0/24")] }, "0.0.0.0");
    const get = `GET /service HTTP/1.1\r\nHost: ${address}\r\n\r\n`;
    expect(await pipelined(server.port, [get, get], address)).toEqual({ statuses: ["403"], closed: true });
  });
});

describe("--max-connections: silent connections beyond the cap", () => {
  test("connections beyond the cap are shut down, also ones that never finish a request", async () => {
    const stack = makeGorb();
    const app = createApp({ gorb: stack.gorb, logger: stack.logger });
    // The real shutdown(2) through ffi/libc.ts; a short round so the test does not wait for the default second.
    const server = startApiServer(app, { listen: { host: "127.0.0.1", port: 0 }, tls: null, maxConnections: 5, shedIntervalMs: 20 });
    running.push(server);
    let closed = 0;
    let onClose = () => {};
    const twenty = new Promise<void>((resolve) => {
      onClose = () => {
        if (++closed === 20) resolve();
      };
    });
    for (let i = 0; i < 25; i++) {
      const socket = connect({ host: "127.0.0.1", port: server.port });
      sockets.push(socket);
      socket.on("error", () => {});
      socket.on("close", onClose);
      // Half a request head (a slowloris): Bun accepts the connection at once and waits for the rest.
      socket.on("connect", () => socket.write("GET /service HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
    }
    await twenty; // every connection beyond the cap of 5 is closed by the server
    expect(sockets.filter((socket) => !socket.destroyed)).toHaveLength(5);
  });

  test("the cap is at most a quarter of the open-files limit, and a start that lowers it says so", () => {
    const logger = new RecordingLogger();
    const shedder = new ConnectionShedder({ port: 1, maxConnections: 256, fdLimit: 256, shutdown: () => 0, logger });
    const roomy = new ConnectionShedder({ port: 1, maxConnections: 256, fdLimit: 1_048_576, shutdown: () => 0, logger });
    expect([shedder.cap, roomy.cap]).toEqual([64, 256]);
    expect(logger.lines).toEqual([
      "warn --max-connections 256 is more than a quarter of this process's open-files limit (256): the API holds at most 64 connection(s) " +
        "and closes the others; raise the limit (systemd LimitNOFILE=, ulimit -n) or lower --max-connections",
    ]);
    shedder.stop();
    roomy.stop();
  });
});

/** A non-loopback IPv4 address of this machine: connecting from it makes a peer outside 127.0.0.0/8. */
function externalAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const entry of list ?? []) if (entry.family === "IPv4" && !entry.internal) return entry.address;
  }
  throw new Error("this test needs one non-loopback IPv4 address on the machine");
}

describe("--allow (the TCP peer address)", () => {
  test("a peer outside the allowed networks gets 403 before its body is read; loopback always gets in", async () => {
    const address = externalAddress();
    const { server, gorb } = serve({ allow: [parseCidr("198.51.100.0/24")] }, "0.0.0.0");
    const outside = await fetch(`http://${address}:${server.port}/service/web`, {
      method: "PUT",
      body: JSON.stringify({ host: "10.0.0.1", port: 80 }),
    });
    expect(outside.status).toBe(403);
    expect(await outside.json()).toEqual({
      error: `peer: ${address} is not in the allowed networks (--allow)`,
      code: "FORBIDDEN",
    });
    expect(gorb.listServices()).toEqual([]);
    const inside = await fetch(`http://127.0.0.1:${server.port}/service/web`, {
      method: "PUT",
      body: JSON.stringify({ host: "10.0.0.1", port: 80 }),
    });
    expect(inside.status).toBe(200);
  });

  test("a peer inside an allowed network gets in", async () => {
    const address = externalAddress();
    const { server } = serve({ allow: [parseCidr(`${address}/32`)] }, "0.0.0.0");
    expect((await fetch(`http://${address}:${server.port}/service`)).status).toBe(200);
  });
});

describe("HTTPS (--tls-cert/--tls-key)", () => {
  const tls = makeCertificate();
  afterAll(() => tls.remove());

  test("the API answers over TLS to a client that trusts the certificate, and not to one that does not", async () => {
    const stack = makeGorb();
    const app = createApp({ gorb: stack.gorb, logger: stack.logger, https: true });
    const server = startApiServer(app, { listen: { host: "127.0.0.1", port: 0 }, tls: { certFile: tls.cert, keyFile: tls.key } });
    running.push(server);
    expect(server.protocol).toBe("https");
    const trusted = await fetch(`https://127.0.0.1:${server.port}/service`, { tls: { ca: await Bun.file(tls.cert).text() } });
    expect([trusted.status, await trusted.json()]).toEqual([200, []]);
    const untrusted = await fetch(`https://127.0.0.1:${server.port}/service`).then(
      () => "answered",
      (error: unknown) => String((error as { code?: unknown }).code),
    );
    expect(untrusted).toBe("DEPTH_ZERO_SELF_SIGNED_CERT");
    const plain = await fetch(`http://127.0.0.1:${server.port}/service`).then(
      (r) => r.status,
      () => "refused",
    );
    expect(plain).not.toBe(200);
  });
});

describe("HTTPS: a Host of fewer than 3 characters", () => {
  const tls = makeCertificate();
  afterAll(() => tls.remove());

  /** One request over TLS, written raw (fetch sends the URL's host); resolves with the status line. */
  function rawTls(port: number, head: string): Promise<string> {
    return new Promise((resolve) => {
      const socket = tlsConnect({ host: "127.0.0.1", port, ca: readFileSync(tls.cert) });
      let text = "";
      socket.on("data", (chunk) => (text += chunk.toString()));
      socket.on("error", () => {});
      socket.on("close", () => resolve(text.split("\r\n")[0] ?? ""));
      socket.on("secureConnect", () => socket.write(head));
    });
  }

  // Elysia finds an HTTPS request's path from the URL's 12th character: for "https://a/x/service/web" it routed
  // "/service/web", so a DELETE of a path that is no route deleted the service.
  test("is a 400 naming host: a path that is no route never reaches another route", async () => {
    const stack = makeGorb();
    const app = createApp({ gorb: stack.gorb, logger: stack.logger, https: true });
    const server = startApiServer(app, { listen: { host: "127.0.0.1", port: 0 }, tls: { certFile: tls.cert, keyFile: tls.key } });
    running.push(server);
    await stack.gorb.createService("web", { host: "10.0.0.1", port: 80 });
    for (const host of ["a", "ab"]) {
      const status = await rawTls(server.port, `DELETE /x/service/web HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      expect([host, status]).toEqual([host, "HTTP/1.1 400 Bad Request"]);
    }
    expect(stack.gorb.listServices()).toEqual(["web"]);
    const own = await rawTls(server.port, "GET /service/web HTTP/1.1\r\nHost: abc\r\nConnection: close\r\n\r\n");
    expect(own).toBe("HTTP/1.1 200 OK");
  });
});

describe("HTTPS: a certificate file that is not a regular file of at most 1 MiB", () => {
  const tls = makeCertificate();
  afterAll(() => tls.remove());

  // Bun.file() of the certificate read whatever the path named: a FIFO blocked the start for ever, /dev/zero was read
  // until memory ran out, and a huge file was read whole only to be refused by OpenSSL without naming it.
  test("is refused naming --tls-cert and the file, before it is read", () => {
    const huge = join(tls.dir, "huge.pem");
    writeFileSync(huge, Buffer.alloc(2 * 1024 * 1024, 0x41));
    const start = (certFile: string) => {
      const stack = makeGorb();
      const app = createApp({ gorb: stack.gorb, logger: stack.logger, https: true });
      try {
        running.push(startApiServer(app, { listen: { host: "127.0.0.1", port: 0 }, tls: { certFile, keyFile: tls.key } }));
        return "started";
      } catch (error) {
        return error instanceof SecretFileError ? error.message : `other error: ${String(error)}`;
      }
    };
    expect(start(huge)).toBe(`--tls-cert: ${huge}: is 2097152 bytes, over the limit of 1 MiB`);
    expect(start(tls.dir)).toBe(`--tls-cert: ${tls.dir}: is not a regular file (a directory)`);
    expect(start(tls.cert)).toBe("started");
  });
});

describe("ids whose percent-encoding is not UTF-8, through Bun's router", () => {
  test("are a 400 naming the segment (Bun decoded each to U+FFFD, so they all named one service)", async () => {
    const { server, gorb } = serve();
    const put = (path: string, body: unknown) => fetch(`http://127.0.0.1:${server.port}${path}`, { method: "PUT", body: JSON.stringify(body) });
    for (const bad of ["%ZZ", "%FF", "%", "%E0%A4", "%C0%AF", "a%2"]) {
      for (const [path, field] of [[`/service/${bad}`, "service"], [`/service/web/${bad}`, "backend"]] as const) {
        const reply = await put(path, { host: "10.0.1.28", port: 80 });
        expect({ path, status: reply.status, body: await reply.json() }).toEqual({
          path,
          status: 400,
          body: { error: `${field}: id is not valid percent-encoded UTF-8`, code: "VALIDATION", field },
        });
      }
    }
    expect(gorb.listServices()).toEqual([]);
    // U+FFFD itself, properly encoded, is an id like any other; a "%" in the query is not the id's.
    expect((await put("/service/%EF%BF%BD", { host: "10.0.1.28", port: 80 })).status).toBe(200);
    expect(gorb.listServices()).toEqual(["\uFFFD"]);
    const query = await put("/service/%EF%BF%BD/b1?x=%ZZ", { host: "10.0.1.29" });
    expect([query.status, ((await query.json()) as { field: string }).field]).toEqual([400, "x"]);
  });
});
