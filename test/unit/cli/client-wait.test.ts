/**
 * Long requests (`gorb apply` of a large set): the client waits as long as the daemon is alive and reports
 * progress, and says "lost" (not "cannot reach") when a daemon it had reached goes away. Real sockets on loopback:
 * a slow fake daemon that answers when the test releases it, a raw TCP peer that accepts and never answers.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { type Server as NetServer, type Socket, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GorbClient, LostContactError } from "../../../src/cli/client.ts";
import { CliError, EXIT } from "../../../src/cli/errors.ts";
import { endpointOf, probe } from "../../../src/cli/liveness.ts";
import { closedPort, runGorb } from "./_harness.ts";

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

/** A fake daemon whose answers wait until `release()`; `entered` resolves when a request arrived. */
function slowDaemon() {
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let entered!: () => void;
  const arrived = new Promise<void>((resolve) => {
    entered = resolve;
  });
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    async fetch(request) {
      entered();
      const body = await request.text();
      await released;
      return Response.json({ ok: true, got: body.length });
    },
  });
  cleanups.push(() => server.stop(true));
  return { url: `http://127.0.0.1:${server.port}`, server, release, arrived };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

describe("a request made with wait", () => {
  test("outlives the request timeout while the daemon is alive, reports progress, and returns the real answer", async () => {
    const daemon = slowDaemon();
    // Without wait, the same request gives up at the timeout and calls the daemon unreachable (today's behaviour).
    const hasty = new GorbClient({ server: daemon.url, token: null, timeoutMs: 100 });
    const gaveUp = await rejection(hasty.request("POST", "/apply", { services: {} }));
    expect(gaveUp).toBeInstanceOf(CliError);
    expect([(gaveUp as CliError).exitCode, (gaveUp as CliError).message]).toEqual([EXIT.UNREACHABLE, expect.stringContaining("no answer within 0.1s")]);

    const waits: number[] = [];
    const patient = new GorbClient({
      server: daemon.url,
      token: null,
      timeoutMs: 100,
      wait: {
        intervalMs: 40,
        onWaiting: (ms) => {
          waits.push(ms);
          if (waits.length === 4) daemon.release();
        },
      },
    });
    expect(await patient.request("POST", "/apply", { services: {} })).toEqual({ ok: true, got: 15 });
    expect(waits.length).toBeGreaterThanOrEqual(4);
    // Progress is reported only once the request has been pending for an interval, in increasing order.
    expect(waits.every((ms, i) => ms >= 40 && (i === 0 || ms > (waits[i - 1] ?? 0)))).toBe(true);
    // The answer came after the 100 ms that made the hasty client give up.
    expect(waits[3]).toBeGreaterThan(100);
  });

  test("a daemon that closes the connection mid-request is 'lost', with the request named, not 'unreachable'", async () => {
    const daemon = slowDaemon();
    const client = new GorbClient({ server: daemon.url, token: null, wait: { intervalMs: 40 } });
    const pending = rejection(client.request("POST", "/apply", { services: {} }));
    await daemon.arrived;
    await daemon.server.stop(true);
    const error = await pending;
    expect(error).toBeInstanceOf(LostContactError);
    const lost = error as LostContactError;
    expect([lost.exitCode, lost.request, lost.server]).toEqual([EXIT.UNREACHABLE, "POST /apply", daemon.url]);
    expect(lost.message).toStartWith(`lost gorb at ${daemon.url} after `);
    expect(lost.message).toContain("the request was sent, so it may have taken effect in part or in full");
    expect(lost.message).not.toContain("cannot reach");
  });

  test("a peer that stops listening while the answer hangs is caught by the probe: 'lost' (connection refused)", async () => {
    // A raw TCP peer: accepts the request and never answers, like a daemon whose process is gone but whose
    // connection was not reset. Closing its listener makes the next probe fail while the request stays open.
    const sockets: Socket[] = [];
    const peer: NetServer = createServer((socket) => {
      sockets.push(socket);
      socket.on("error", () => {});
    });
    await new Promise<void>((resolve) => peer.listen(0, "127.0.0.1", resolve));
    const address = peer.address();
    if (address === null || typeof address === "string") throw new Error("no port");
    cleanups.push(() => {
      for (const s of sockets) s.destroy();
      peer.close();
    });
    const url = `http://127.0.0.1:${address.port}`;
    let stopListening!: () => void;
    const reached = new Promise<void>((resolve) => {
      stopListening = resolve;
    });
    const client = new GorbClient({ server: url, token: null, wait: { intervalMs: 30, onWaiting: () => stopListening() } });
    const pending = rejection(client.request("POST", "/apply", { services: {} }));
    await reached;
    peer.close();
    const error = await pending;
    expect(error).toBeInstanceOf(LostContactError);
    expect((error as LostContactError).reason).toBe("connection refused");
  });

  test("nothing listening: the same 'cannot reach' line as any other command (exit 3)", async () => {
    const url = `http://127.0.0.1:${closedPort()}`;
    const client = new GorbClient({ server: url, token: null, wait: { intervalMs: 30 } });
    const error = await rejection(client.request("POST", "/apply", { services: {} }));
    expect(error).not.toBeInstanceOf(LostContactError);
    expect([(error as CliError).exitCode, (error as CliError).message]).toEqual([
      EXIT.UNREACHABLE,
      `cannot reach gorb at ${url} (connection refused); is \`gorb serve\` running?`,
    ]);
  });
});

describe("liveness probe", () => {
  test("connects to a listening port, names a refused one", async () => {
    const daemon = slowDaemon();
    const { host, port } = endpointOf(daemon.url);
    expect(await probe(host, port, 1000)).toBeNull();
    expect(await probe("127.0.0.1", closedPort(), 1000)).toBe("connection refused");
  });

  test("endpointOf reads host and port, defaulting the port by scheme and unbracketing IPv6", () => {
    expect(endpointOf("http://127.0.0.1:4672")).toEqual({ host: "127.0.0.1", port: 4672 });
    expect(endpointOf("https://gorb.example/prefix")).toEqual({ host: "gorb.example", port: 443 });
    expect(endpointOf("http://[::1]")).toEqual({ host: "::1", port: 80 });
  });
});

describe("gorb apply", () => {
  test("when the daemon goes away mid-apply: exit 3, 'lost', and how to see what was applied", async () => {
    const daemon = slowDaemon();
    const dir = mkdtempSync(join(tmpdir(), "gorb-wait-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, "services.yaml");
    writeFileSync(path, "services:\n  web:\n    host: 10.0.0.1\n    port: 80\n    backends:\n      b1: { host: 10.1.0.1 }\n");
    void daemon.arrived.then(() => daemon.server.stop(true));
    const run = await runGorb(["apply", "-f", path, "--server", daemon.url]);
    expect(run.code).toBe(EXIT.UNREACHABLE);
    expect(run.stdout).toBe("");
    expect(run.stderr).toStartWith(`error: lost gorb at ${daemon.url} after `);
    expect(run.stderr).toEndWith(`may have taken effect in part or in full: see what is in place with \`gorb diff -f ${path}\`\n`);
  });
});
