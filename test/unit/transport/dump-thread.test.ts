/**
 * The dump thread (src/transport/dump-thread.ts, src/transport/dump-worker.ts) on the host's real generic netlink:
 * nlctrl's family dump is in every kernel, so a series of them is a real multipart dump series read by the worker
 * on the connection's own socket, then decoded in this thread.
 */
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { ERRNO } from "../../../src/errno.ts";
import { CTRL_ATTR, CTRL_CMD, GENL_ID_CTRL, NETLINK_GENERIC } from "../../../src/netlink/constants.ts";
import { NetlinkError } from "../../../src/netlink/errors.ts";
import type { MessageCursor } from "../../../src/netlink/message.ts";
import { AttributeSet } from "../../../src/netlink/attributes.ts";
import { NetlinkConnection, type Request } from "../../../src/transport/connection.ts";
import { TransportError } from "../../../src/transport/datagram-socket.ts";
import { DumpThread, type ThreadWorker } from "../../../src/transport/dump-thread.ts";
import { LibnlSocket } from "../../../src/transport/libnl-socket.ts";

const families: Request = { type: GENL_ID_CTRL, flags: 0, header: Uint8Array.of(CTRL_CMD.GETFAMILY, 1, 0, 0) };
/** A command nlctrl does not have: the kernel answers the dump with an error. */
const unsupported: Request = { type: GENL_ID_CTRL, flags: 0, header: Uint8Array.of(0x7f, 1, 0, 0) };

/** A family's name from its message (after the 4-byte genl header). */
const nameOf = (_: number, c: MessageCursor): string => new AttributeSet(c.bytes, c.view, c.start + 4, c.end).string(CTRL_ATTR.FAMILY_NAME) ?? "";

const open: { conn: NetlinkConnection; thread: DumpThread | null }[] = [];
afterEach(() => {
  for (const o of open.splice(0)) {
    o.conn.close();
    o.thread?.close();
  }
});

function connection(thread: DumpThread | null): NetlinkConnection {
  const conn = new NetlinkConnection(() => new LibnlSocket({ protocol: NETLINK_GENERIC, timeoutMs: 2000 }), thread === null ? {} : { dumpThread: thread });
  open.push({ conn, thread });
  return conn;
}

/** A DumpThread whose workers are counted. */
function countedThread(): { thread: DumpThread; started: () => number } {
  let started = 0;
  const thread = new DumpThread(() => {
    started++;
    return new Worker(new URL("../../../src/transport/dump-worker.ts", import.meta.url));
  });
  return { thread, started: () => started };
}

test("a series of 150 dumps read on the dump thread decodes as the same series read in the calling thread", async () => {
  const reqs = Array.from({ length: 150 }, () => families);
  const here = await connection(null).dumpSeries(reqs, nameOf);
  const { thread, started } = countedThread();
  const conn = connection(thread);
  const there = await conn.dumpSeries(reqs, nameOf);
  expect(started()).toBe(1);
  expect(there).toEqual(here);
  expect(there).toHaveLength(150);
  expect(there[149]).toContain("nlctrl");
  // A single dump goes by the thread too, and the socket is left ready for the next request of any kind.
  expect(await conn.dumpEach(families, (c) => nameOf(0, c))).toEqual(here[0] as string[]);
  const [reply] = await conn.request({ ...families, attrs: (w) => w.string(CTRL_ATTR.FAMILY_NAME, "nlctrl") });
  expect(reply?.type).toBe(GENL_ID_CTRL);
  expect(started()).toBe(1);
});

test("a batch of 300 writes answered on the thread has the outcomes it has in the calling thread: ACKs, replies and errors in place", async () => {
  const named = (name: string): Request => ({ ...families, attrs: (w) => w.string(CTRL_ATTR.FAMILY_NAME, name) });
  // A reply and an ACK; an error (no such family); an error (no such command): 100 times over, interleaved.
  const reqs = Array.from({ length: 300 }, (_, i) => [named("nlctrl"), named("no-such-family"), unsupported][i % 3] as Request);
  const summary = (outcomes: readonly { replies: readonly { type: number }[]; error: NetlinkError | null }[]) =>
    outcomes.map((o) => `${o.error?.errno ?? 0}:${o.replies.map((r) => r.type).join(",")}`);
  const here = summary(await connection(null).batch(reqs));
  const { thread, started } = countedThread();
  const conn = connection(thread);
  const there = summary(await conn.batch(reqs));
  expect(started()).toBe(1);
  expect(there).toEqual(here);
  expect(there.slice(0, 3)).toEqual([`0:${GENL_ID_CTRL}`, `${ERRNO.ENOENT}:`, `${ERRNO.EOPNOTSUPP}:`]);
  // The socket is left ready: a small batch runs in this thread on it.
  expect(summary(await conn.batch(reqs.slice(0, 3)))).toEqual(here.slice(0, 3));
});

test("a dump the kernel refuses stops the series with its error; the connection and the thread go on", async () => {
  const { thread, started } = countedThread();
  const conn = connection(thread);
  const failure = await conn.dumpSeries([families, unsupported, families], nameOf).catch((e: unknown) => e);
  expect(failure).toBeInstanceOf(NetlinkError);
  expect((failure as NetlinkError).errno).toBe(ERRNO.EOPNOTSUPP);
  const again = await conn.dumpSeries([families, families], nameOf);
  expect(again[1]).toContain("nlctrl");
  expect(started()).toBe(1);
});

test("a thread that dies fails its series with a TransportError, and the next series starts a new thread", async () => {
  const dir = mkdtempSync(join(tmpdir(), "gorb-dump-thread-"));
  try {
    const dying = join(dir, "dying-worker.ts");
    writeFileSync(dying, `import { parentPort } from "node:worker_threads";\nparentPort?.on("message", () => process.exit(7));\n`);
    const made: string[] = [];
    const thread = new DumpThread((): ThreadWorker => {
      const script = made.length === 0 ? dying : new URL("../../../src/transport/dump-worker.ts", import.meta.url).pathname;
      made.push(script);
      return new Worker(script);
    });
    const conn = connection(thread);
    const failure = await conn.dumpSeries([families, families], nameOf).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(TransportError);
    expect((failure as TransportError).message).toContain("dump thread exited (7)");
    const names = await conn.dumpSeries([families], nameOf);
    expect(names[0]).toContain("nlctrl");
    expect(made).toHaveLength(2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("closing the connection while the thread reads on its socket closes that socket only once the thread is done", async () => {
  const { thread } = countedThread();
  const closes: string[] = [];
  let decoded = 0;
  const conn = new NetlinkConnection(() => {
    const sock = new LibnlSocket({ protocol: NETLINK_GENERIC, timeoutMs: 2000 });
    return {
      send: (bytes: Uint8Array) => sock.send(bytes),
      receive: () => sock.receive(),
      handle: () => sock.handle(),
      close: () => {
        closes.push(`closed after ${decoded} decoded`);
        sock.close();
      },
    };
  }, { dumpThread: thread });
  open.push({ conn, thread });
  const names = await conn.dumpSeries(
    Array.from({ length: 150 }, () => families),
    (i, c) => {
      // Closed in the middle of the series, from the first part it hands over.
      if (decoded++ === 0) conn.close();
      return nameOf(i, c);
    },
  );
  expect(names).toHaveLength(150);
  expect(names[149]).toContain("nlctrl");
  expect(closes).toEqual([`closed after ${decoded} decoded`]);
  // The next request opens a new socket.
  expect((await conn.dumpSeries([families], nameOf))[0]).toContain("nlctrl");
});

test("a thread that cannot be started fails the series with a TransportError that says so", async () => {
  const thread = new DumpThread(() => {
    throw new Error("no threads here");
  });
  const failure = await connection(thread).dumpSeries([families], nameOf).catch((e: unknown) => e);
  expect(failure).toBeInstanceOf(TransportError);
  expect((failure as TransportError).message).toBe("cannot start the netlink dump thread: no threads here");
  expect((failure as TransportError).errno).toBe(ERRNO.EIO);
});
