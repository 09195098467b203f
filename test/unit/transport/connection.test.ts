import { describe, expect, test } from "bun:test";
import { ByteWriter, HOST_LITTLE_ENDIAN } from "../../../src/netlink/attributes.ts";
import { NLMSG, NLM_F } from "../../../src/netlink/constants.ts";
import { NetlinkDecodeError, NetlinkError } from "../../../src/netlink/errors.ts";
import { type NetlinkMessage, encodeMessage } from "../../../src/netlink/message.ts";
import { decodeMessages } from "../../helpers/netlink-messages.ts";
import { turnsDuring } from "../../helpers/turns.ts";
import { NetlinkConnection } from "../../../src/transport/connection.ts";
import { type DatagramSocket, TransportTimeoutError } from "../../../src/transport/datagram-socket.ts";

/** A fake kernel: answers each request message through `answer`, queueing datagrams for receive(). */
class FakeSocket implements DatagramSocket {
  readonly sent: NetlinkMessage[][] = [];
  readonly queue: Uint8Array[] = [];
  closed = false;
  constructor(private readonly answer: (m: NetlinkMessage, sock: FakeSocket) => void) {}
  send(bytes: Uint8Array): void {
    const msgs = decodeMessages(bytes).map((m) => ({ ...m, payload: m.payload.slice() }));
    this.sent.push(msgs);
    for (const m of msgs) this.answer(m, this);
  }
  /** One datagram per call, as a socket with a limit of one reads. */
  receive(): readonly Uint8Array[] {
    const d = this.queue.shift();
    if (!d) throw new TransportTimeoutError("nothing queued");
    return [d];
  }
  close(): void {
    this.closed = true;
  }
  push(...msgs: Uint8Array[]): void {
    const total = msgs.reduce((n, m) => n + m.length, 0);
    const d = new Uint8Array(total);
    let off = 0;
    for (const m of msgs) {
      d.set(m, off);
      off += m.length;
    }
    this.queue.push(d);
  }
}

/** The fake kernel read the way LibnlSocket reads it: every datagram queued (up to `limit`) in one call. */
class ManySocket extends FakeSocket {
  receiveCalls = 0;
  constructor(
    answer: (m: NetlinkMessage, sock: FakeSocket) => void,
    private readonly limit: number,
  ) {
    super(answer);
  }
  override receive(): readonly Uint8Array[] {
    this.receiveCalls++;
    if (this.queue.length === 0) throw new TransportTimeoutError("nothing queued");
    return this.queue.splice(0, this.limit);
  }
}

function ack(req: NetlinkMessage, errno = 0): Uint8Array {
  const p = new Uint8Array(20);
  const v = new DataView(p.buffer);
  v.setInt32(0, -errno, HOST_LITTLE_ENDIAN);
  v.setUint32(4, 16 + req.payload.length, HOST_LITTLE_ENDIAN);
  v.setUint16(8, req.type, HOST_LITTLE_ENDIAN);
  v.setUint16(10, req.flags, HOST_LITTLE_ENDIAN);
  v.setUint32(12, req.seq, HOST_LITTLE_ENDIAN);
  return encodeMessage({ type: NLMSG.ERROR, flags: NLM_F.CAPPED, seq: req.seq, pid: 0, payload: p });
}

function reply(req: NetlinkMessage, flags = 0, body = Uint8Array.of(1, 1, 0, 0)): Uint8Array {
  return encodeMessage({ type: req.type, flags, seq: req.seq, pid: 0, payload: body });
}

function done(req: NetlinkMessage, status = 0): Uint8Array {
  const p = new Uint8Array(4);
  new DataView(p.buffer).setInt32(0, status, HOST_LITTLE_ENDIAN);
  return encodeMessage({ type: NLMSG.DONE, flags: NLM_F.MULTI, seq: req.seq, pid: 0, payload: p });
}

const req = (cmd: number) => ({ type: 0x24, flags: 0, header: Uint8Array.of(cmd, 1, 0, 0) });

describe("NetlinkConnection", () => {
  test("a request gets REQUEST|ACK, its reply before the ACK is returned", async () => {
    const sock = new FakeSocket((m, s) => {
      s.push(reply(m));
      s.push(ack(m));
    });
    const conn = new NetlinkConnection(() => sock);
    const replies = await conn.request(req(15));
    expect(replies.length).toBe(1);
    expect(sock.sent[0]![0]!.flags).toBe(NLM_F.REQUEST | NLM_F.ACK);
  });

  test("a kernel error becomes NetlinkError with the positive errno", async () => {
    const sock = new FakeSocket((m, s) => s.push(ack(m, 3)));
    const conn = new NetlinkConnection(() => sock);
    const err = await conn.request(req(3)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetlinkError);
    expect((err as NetlinkError).errno).toBe(3);
    expect(sock.closed).toBe(false); // a kernel error leaves the socket in a clean state
  });

  test("batch: many requests per send, each outcome matched by sequence number even when ACKs arrive out of order", async () => {
    const held: NetlinkMessage[] = [];
    const sock = new FakeSocket((m, s) => {
      held.push(m);
      if (held.length === 5) {
        // answer in reverse order, all in one datagram, failing the third request
        s.push(...held.reverse().map((h, i) => ack(h, i === 2 ? 17 : 0)));
        held.length = 0;
      }
    });
    const conn = new NetlinkConnection(() => sock, { batchSize: 5 });
    const outcomes = await conn.batch([1, 1, 1, 1, 1, 1, 1, 1, 1, 1].map(() => req(1)));
    expect(sock.sent.map((d) => d.length)).toEqual([5, 5]);
    expect(outcomes.map((o) => o.error?.errno ?? 0)).toEqual([0, 0, 17, 0, 0, 0, 0, 17, 0, 0]);
  });

  test("batch: an error whose extended-ack TLVs do not decode is still that request's errno, the others keep theirs", async () => {
    const sock = new FakeSocket((m, s) => {
      if (m.payload[0] !== 2) return s.push(ack(m));
      // EEXIST, then NLMSGERR_ATTR_MSG claiming 0x40 bytes where 8 are left.
      const bad = ack(m, 17);
      const tlv = Uint8Array.of(0x40, 0, 1, 0, 0x62, 0x61, 0x64, 0);
      const withTlv = encodeMessage({ type: NLMSG.ERROR, flags: NLM_F.CAPPED | NLM_F.ACK_TLVS, seq: m.seq, pid: 0, payload: new Uint8Array([...bad.subarray(16), ...tlv]) });
      s.push(withTlv);
    });
    const conn = new NetlinkConnection(() => sock);
    const outcomes = await conn.batch([req(1), req(2), req(1)]);
    expect(outcomes.map((o) => o.error?.errno ?? 0)).toEqual([0, 17, 0]);
    expect(outcomes[1]?.error?.extAck).toEqual({});
    expect(sock.closed).toBe(false);
  });

  test("batch: an NLMSG_ERROR with a positive error is a NetlinkDecodeError and the socket is reset", async () => {
    const sock = new FakeSocket((m, s) => s.push(ack(m, -5)));
    const err = await new NetlinkConnection(() => sock).batch([req(1)]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetlinkDecodeError);
    expect(sock.closed).toBe(true);
  });

  test("batch: an NLMSG_ERROR too short to name its request fails the batch at once (NetlinkDecodeError) and resets the socket", async () => {
    const sock = new FakeSocket((m, s) => {
      if (m.payload[0] !== 2) return s.push(ack(m));
      // errno -EEXIST and no echoed header: the outer header's seq is right, the body cannot say.
      s.push(encodeMessage({ type: NLMSG.ERROR, flags: 0, seq: m.seq, pid: 0, payload: ack(m, 17).subarray(16, 20) }));
      s.push(ack(m)); // what a well-behaved kernel would have answered; never read
    });
    const err = await new NetlinkConnection(() => sock).batch([req(1), req(2), req(1)]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetlinkDecodeError);
    expect((err as Error).message).toContain("NLMSG_ERROR payload of 4 bytes");
    expect(sock.closed).toBe(true);
  });

  test("dump: NLM_F_DUMP without ACK, parts across datagrams, ends at DONE", async () => {
    const sock = new FakeSocket((m, s) => {
      s.push(reply(m, NLM_F.MULTI), reply(m, NLM_F.MULTI));
      s.push(reply(m, NLM_F.MULTI), done(m));
    });
    const conn = new NetlinkConnection(() => sock);
    const parts = await conn.dump(req(4));
    expect(parts.length).toBe(3);
    expect(sock.sent[0]![0]!.flags).toBe(NLM_F.REQUEST | NLM_F.DUMP);
  });

  test("dump: a negative status in DONE is an error", async () => {
    const sock = new FakeSocket((m, s) => s.push(done(m, -22)));
    const err = await new NetlinkConnection(() => sock).dump(req(4)).catch((e: unknown) => e);
    expect((err as NetlinkError).errno).toBe(22);
  });

  test("dump: a part flagged NLM_F_DUMP_INTR makes the dump NetlinkError EINTR once it is read to its DONE; the socket stays", async () => {
    const sock = new FakeSocket((m, s) => {
      if ((m.flags & NLM_F.DUMP) === 0) return s.push(ack(m));
      s.push(reply(m, NLM_F.MULTI), reply(m, NLM_F.MULTI | NLM_F.DUMP_INTR));
      s.push(reply(m, NLM_F.MULTI), done(m));
    });
    const conn = new NetlinkConnection(() => sock);
    const err = await conn.dump(req(4)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetlinkError);
    expect((err as NetlinkError).errno).toBe(4); // EINTR
    expect(sock.queue.length).toBe(0); // read to its end
    expect(await conn.request(req(1))).toEqual([]);
    expect(sock.closed).toBe(false);
  });

  test("dump: a DONE with an error carries the kernel's extended-ack text after its status (NLM_F_ACK_TLVS)", async () => {
    const sock = new FakeSocket((m, s) => {
      const w = new ByteWriter();
      w.reserve(4);
      w.putU32At(0, -22);
      w.string(1, "no such service");
      s.push(encodeMessage({ type: NLMSG.DONE, flags: NLM_F.MULTI | NLM_F.ACK_TLVS, seq: m.seq, pid: 0, payload: w.toBytes() }));
    });
    const err = await new NetlinkConnection(() => sock).dump(req(4)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetlinkError);
    expect([(err as NetlinkError).errno, (err as NetlinkError).extAck]).toEqual([22, { message: "no such service" }]);
  });

  test("replies with a stale sequence number are ignored", async () => {
    const sock = new FakeSocket((m, s) => {
      s.push(ack({ ...m, seq: m.seq - 100 }, 2), reply({ ...m, seq: 1 }));
      s.push(ack(m));
    });
    expect(await new NetlinkConnection(() => sock).request(req(1))).toEqual([]);
  });

  test("a timeout closes the socket and the next request runs on a new one", async () => {
    const socks: FakeSocket[] = [];
    let n = 0;
    const conn = new NetlinkConnection(() => {
      const first = n++ === 0;
      const s = new FakeSocket((m, sock) => {
        if (!first) sock.push(ack(m));
      });
      socks.push(s);
      return s;
    });
    await expect(conn.request(req(1))).rejects.toBeInstanceOf(TransportTimeoutError);
    expect(socks[0]!.closed).toBe(true);
    expect(await conn.request(req(1))).toEqual([]);
    expect(socks.length).toBe(2);
  });

  test("operations are serialized: a second request waits for the first to finish", async () => {
    const order: number[] = [];
    const sock = new FakeSocket((m, s) => {
      order.push(m.seq);
      s.push(ack(m));
    });
    const conn = new NetlinkConnection(() => sock, { batchSize: 2 });
    const a = conn.batch([req(1), req(1), req(1), req(1)]);
    const b = conn.request(req(2));
    await Promise.all([a, b]);
    const cmds = sock.sent.flat().map((m) => m.payload[0]);
    expect(cmds).toEqual([1, 1, 1, 1, 2]);
    expect(order).toEqual([...order].sort((x, y) => x - y));
  });

  test("the event loop runs between the chunks of a large batch", async () => {
    const sock = new FakeSocket((m, s) => s.push(ack(m)));
    const conn = new NetlinkConnection(() => sock, { batchSize: 10 });
    // Turns counted by a chain of immediates, not a timer: the batch can be over within a timer's 1 ms.
    const ticks = await turnsDuring(() => conn.batch(Array.from({ length: 200 }, () => req(1))));
    expect(sock.sent.length).toBe(20);
    expect(ticks).toBeGreaterThan(0);
  });

  test("several datagrams per receive: a batch's ACKs, one datagram each, are read several per call, each outcome matched", async () => {
    const sock = new ManySocket((m, s) => s.push(ack(m, m.seq % 3 === 0 ? 17 : 0)), 4);
    const conn = new NetlinkConnection(() => sock, { batchSize: 10 });
    const reqs = Array.from({ length: 10 }, () => req(1));
    const outcomes = await conn.batch(reqs);
    const seqs = sock.sent[0]!.map((m) => m.seq);
    expect(outcomes.map((o) => o.error?.errno ?? 0)).toEqual(seqs.map((q) => (q % 3 === 0 ? 17 : 0)));
    expect(sock.receiveCalls).toBe(3); // 4 + 4 + 2 ACKs
  });

  test("several datagrams per receive: a series of dumps reads each dump's last part and its DONE in one call", async () => {
    const sock = new ManySocket((m, s) => {
      s.push(reply(m, NLM_F.MULTI, Uint8Array.of(m.seq & 0xff, 1, 0, 0)));
      s.push(reply(m, NLM_F.MULTI, Uint8Array.of(m.seq & 0xff, 2, 0, 0)), done(m));
    }, 8);
    const conn = new NetlinkConnection(() => sock);
    const parts = await conn.dumpSeries([req(4), req(4), req(4)], (_i, c) => c.view.getUint8(c.start + 1));
    expect(parts).toEqual([
      [1, 2],
      [1, 2],
      [1, 2],
    ]);
    expect(sock.receiveCalls).toBe(3);
    expect(sock.queue.length).toBe(0);
  });

  test("several datagrams per receive: a dump's error ends it, and the next operation runs on the same socket", async () => {
    let n = 0;
    const sock = new ManySocket((m, s) => {
      if ((m.flags & NLM_F.DUMP) !== 0 && n++ === 0) s.push(done(m, -22));
      else s.push(ack(m));
    }, 8);
    const conn = new NetlinkConnection(() => sock);
    const err = await conn.dump(req(4)).catch((e: unknown) => e);
    expect((err as NetlinkError).errno).toBe(22);
    expect(await conn.request(req(1))).toEqual([]);
    expect(sock.closed).toBe(false);
  });

  test("the ByteWriter used for batches grows past its initial capacity", () => {
    const w = new ByteWriter(1);
    for (let i = 0; i < 1000; i++) w.u32(1, i);
    expect(w.length).toBe(8000);
  });
});
