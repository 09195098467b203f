import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { ByteWriter } from "../../../src/netlink/attributes.ts";
import { NLMSG, NLM_F } from "../../../src/netlink/constants.ts";
import { NetlinkDecodeError } from "../../../src/netlink/errors.ts";
import { decodeDoneExtAck, decodeErrorBody, decodeGenl, encodeGenlMessage, encodeMessage, writeGenlMessage } from "../../../src/netlink/message.ts";
import { decodeMessages } from "../../helpers/netlink-messages.ts";
import { hex, toHex } from "../../helpers/hex.ts";

describe("generic netlink message: golden bytes", () => {
  test("header, genl header and attributes, length patched", () => {
    const bytes = encodeGenlMessage({ family: 0x23, cmd: 15, version: 1, flags: NLM_F.REQUEST | NLM_F.ACK, seq: 7 });
    expect(toHex(bytes)).toBe(
      toHex(hex`
        14 00 00 00  # nlmsg_len 20
        23 00        # type = family id
        05 00        # REQUEST|ACK
        07 00 00 00  # seq
        00 00 00 00  # pid (kernel fills)
        0f 01 00 00  # cmd GET_INFO, version 1
      `),
    );
  });

  test("two messages in one buffer are each aligned and independently sized", () => {
    const w = new ByteWriter();
    writeGenlMessage(w, { family: 0x10, cmd: 3, version: 1, flags: 1, seq: 1, attrs: (a) => a.string(2, "IPVS") });
    writeGenlMessage(w, { family: 0x10, cmd: 3, version: 1, flags: 1, seq: 2 });
    const msgs = decodeMessages(w.toBytes());
    expect(msgs.map((m) => [m.seq, m.payload.length])).toEqual([
      [1, 4 + 12],
      [2, 4],
    ]);
    expect(decodeGenl(msgs[0]!.payload).attrs.string(2)).toBe("IPVS");
  });
});

describe("decodeMessages", () => {
  test("a truncated header length is rejected", () => {
    expect(() => decodeMessages(hex`08 00 00 00 02 00 00 00 00 00 00 00 00 00 00 00`)).toThrow(NetlinkDecodeError);
  });
  test("a length past the datagram is rejected", () => {
    expect(() => decodeMessages(hex`40 00 00 00 02 00 00 00 00 00 00 00 00 00 00 00`)).toThrow("runs past the end");
  });
  test("multipart dump: parts flagged MULTI then DONE", () => {
    const part = (seq: number) => encodeMessage({ type: 0x23, flags: NLM_F.MULTI, seq, pid: 9, payload: hex`01 01 00 00` });
    const done = encodeMessage({ type: NLMSG.DONE, flags: NLM_F.MULTI, seq: 5, pid: 9, payload: hex`00 00 00 00` });
    const all = new Uint8Array([...part(5), ...part(5), ...done]);
    const msgs = decodeMessages(all);
    expect(msgs.map((m) => m.type)).toEqual([0x23, 0x23, NLMSG.DONE]);
    expect(msgs.every((m) => m.flags & NLM_F.MULTI)).toBe(true);
  });
});

describe("NLMSG_ERROR bodies", () => {
  test("ACK: error 0 and the echoed request header (capped)", () => {
    const body = hex`
      00 00 00 00                                      # error 0
      24 00 00 00 23 00 05 00 2a 00 00 00 00 00 00 00  # echoed nlmsghdr: len 36 seq 42
    `;
    const e = decodeErrorBody({ type: NLMSG.ERROR, flags: NLM_F.CAPPED, seq: 42, pid: 0, payload: body });
    expect(e.errno).toBe(0);
    expect(e.request.seq).toBe(42);
    expect(e.request.len).toBe(36);
  });

  test("error -ESRCH (3) is reported as a positive errno", () => {
    const body = hex`fd ff ff ff | 14 00 00 00 23 00 05 00 01 00 00 00 00 00 00 00`;
    expect(decodeErrorBody({ type: 2, flags: NLM_F.CAPPED, seq: 1, pid: 0, payload: body }).errno).toBe(3);
  });

  test("extended ack TLVs after a capped header: message and offset", () => {
    const w = new ByteWriter();
    w.string(1, "missing attribute").u32(2, 24);
    const body = new Uint8Array([...hex`ea ff ff ff | 14 00 00 00 23 00 05 00 01 00 00 00 00 00 00 00`, ...w.toBytes()]);
    const e = decodeErrorBody({ type: 2, flags: NLM_F.CAPPED | NLM_F.ACK_TLVS, seq: 1, pid: 0, payload: body });
    expect(e.errno).toBe(22);
    expect(e.extAck).toEqual({ message: "missing attribute", offset: 24 });
  });

  test("extended ack TLVs after an uncapped echo skip the whole echoed request", () => {
    const w = new ByteWriter();
    w.string(1, "bad");
    const echoed = hex`18 00 00 00 23 00 05 00 01 00 00 00 00 00 00 00 | 01 01 00 00 | 09 09 09 09`;
    const body = new Uint8Array([...hex`ea ff ff ff`, ...echoed, ...w.toBytes()]);
    const e = decodeErrorBody({ type: 2, flags: NLM_F.ACK_TLVS, seq: 1, pid: 0, payload: body });
    expect(e.extAck.message).toBe("bad");
  });

  test("extended ack TLVs that run past the body are dropped: the errno is still the answer", () => {
    // NLMSGERR_ATTR_MSG claims 0x40 bytes where 8 are left (iproute2's nl_dump_ext_ack ignores such TLVs too).
    const body = hex`ea ff ff ff | 14 00 00 00 23 00 05 00 01 00 00 00 00 00 00 00 | 40 00 01 00 62 61 64 00`;
    const e = decodeErrorBody({ type: 2, flags: NLM_F.CAPPED | NLM_F.ACK_TLVS, seq: 1, pid: 0, payload: body });
    expect([e.errno, e.request.seq, e.extAck]).toEqual([22, 1, {}]);
  });

  test("an uncapped echo whose length is past 2^31 leaves no room for TLVs (it does not wrap to the start of the body)", () => {
    for (const len of ["fc ff ff ff", "00 00 00 80"]) {
      const body = hex`ea ff ff ff | ${len} 23 00 05 00 01 00 00 00 00 00 00 00 | 08 00 01 00 62 61 64 00`;
      const e = decodeErrorBody({ type: 2, flags: NLM_F.ACK_TLVS, seq: 1, pid: 0, payload: body });
      expect([e.errno, e.extAck]).toEqual([22, {}]);
    }
  });

  test("a positive error (nlmsgerr.error is a negative errno or 0) is rejected, not reported as errno -5", () => {
    const body = hex`05 00 00 00 | 14 00 00 00 23 00 05 00 01 00 00 00 00 00 00 00`;
    expect(() => decodeErrorBody({ type: 2, flags: NLM_F.CAPPED, seq: 1, pid: 0, payload: body })).toThrow(new NetlinkDecodeError("NLMSG_ERROR with a positive error 5"));
  });

  test("NLMSG_DONE's extended ack follows its status; none without NLM_F_ACK_TLVS or when the TLVs do not decode", () => {
    const done = (flags: number, payload: Uint8Array) => decodeDoneExtAck({ type: NLMSG.DONE, flags, seq: 1, pid: 0, payload });
    expect(done(NLM_F.MULTI | NLM_F.ACK_TLVS, hex`ea ff ff ff | 08 00 01 00 62 61 64 00`)).toEqual({ message: "bad" });
    expect(done(NLM_F.MULTI, hex`ea ff ff ff | 08 00 01 00 62 61 64 00`)).toEqual({});
    expect(done(NLM_F.MULTI | NLM_F.ACK_TLVS, hex`ea ff ff ff | 40 00 01 00 62 61 64 00`)).toEqual({});
    expect(done(NLM_F.MULTI | NLM_F.ACK_TLVS, hex`ea ff`)).toEqual({});
  });

  test("a body too short to hold nlmsgerr is rejected", () => {
    expect(() => decodeErrorBody({ type: 2, flags: 0, seq: 1, pid: 0, payload: hex`00 00 00 00` })).toThrow(NetlinkDecodeError);
  });
});

describe("message round trip (property)", () => {
  test("decode(encode(m)) == m for any header and payload", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            type: fc.integer({ min: 0, max: 0xffff }),
            flags: fc.integer({ min: 0, max: 0xffff }),
            seq: fc.integer({ min: 0, max: 0xffffffff }),
            pid: fc.integer({ min: 0, max: 0xffffffff }),
            payload: fc.uint8Array({ maxLength: 80 }),
          }),
          { minLength: 1, maxLength: 8 },
        ),
        (msgs) => {
          const parts = msgs.map((m) => encodeMessage(m));
          const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
          let off = 0;
          for (const p of parts) {
            all.set(p, off);
            off += p.length;
          }
          const back = decodeMessages(all);
          expect(back.length).toBe(msgs.length);
          back.forEach((b, i) => {
            const m = msgs[i]!;
            expect([b.type, b.flags, b.seq, b.pid]).toEqual([m.type, m.flags, m.seq, m.pid]);
            expect(Array.from(b.payload)).toEqual(Array.from(m.payload));
          });
        },
      ),
      { numRuns: 300 },
    );
  });
});
