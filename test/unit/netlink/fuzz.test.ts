/**
 * The netlink decoders fed hostile bytes (random, and valid messages with bytes flipped or cut): each one ends, and
 * anything it cannot read is a NetlinkDecodeError, never another exception (a RangeError from a DataView, a
 * TypeError) nor a loop. What the kernel would send still decodes: see message.test.ts and attributes.test.ts.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { AttributeSet, ByteWriter, scanAttributes, splitAttributes } from "../../../src/netlink/attributes.ts";
import { NLMSG, NLM_F } from "../../../src/netlink/constants.ts";
import { NetlinkDecodeError } from "../../../src/netlink/errors.ts";
import { MessageCursor, decodeErrorBody, decodeGenl, encodeMessage } from "../../../src/netlink/message.ts";

/** Run `fn`; a NetlinkDecodeError is an answer, any other exception fails the property. */
function decodesOrRejects(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof NetlinkDecodeError)) throw e;
  }
}

/** Valid attribute bytes (some nested), then `edits` applied: bytes overwritten and the end cut. */
const attributeBytes = fc
  .array(
    fc.oneof(
      fc.record({ type: fc.integer({ min: 0, max: 0xffff }), payload: fc.uint8Array({ maxLength: 24 }) }),
      fc.record({ type: fc.integer({ min: 0, max: 0x3fff }), nest: fc.array(fc.uint8Array({ maxLength: 12 }), { maxLength: 4 }) }),
    ),
    { maxLength: 8 },
  )
  .map((attrs) => {
    const w = new ByteWriter(16);
    for (const a of attrs) {
      if ("payload" in a) w.attr(a.type, a.payload);
      else w.nested(a.type, (n) => a.nest.forEach((p, i) => n.attr(i + 1, p)));
    }
    return w.toBytes();
  });

const mutated = (base: fc.Arbitrary<Uint8Array>) =>
  fc.tuple(base, fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 4 }), fc.nat()).map(([bytes, edits, cut]) => {
    const b = bytes.slice();
    for (const [at, v] of edits) if (b.length > 0) b[at % b.length] = v;
    return b.subarray(0, b.length === 0 ? 0 : b.length - (cut % (b.length + 1)));
  });

const anyBytes = fc.oneof(fc.uint8Array({ maxLength: 96 }), mutated(attributeBytes));

describe("attribute readers on hostile bytes", () => {
  test("splitAttributes, AttributeSet (and its getters and nests) and scanAttributes end or throw NetlinkDecodeError", () => {
    const offs = new Int32Array(16);
    const lens = new Int32Array(16);
    fc.assert(
      fc.property(anyBytes, (bytes) => {
        decodesOrRejects(() => splitAttributes(bytes));
        decodesOrRejects(() => scanAttributes(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), 0, bytes.length, offs, lens));
        decodesOrRejects(() => {
          const set = new AttributeSet(bytes);
          for (let t = 0; t < 8; t++) {
            decodesOrRejects(() => set.u8(t));
            decodesOrRejects(() => set.u16(t));
            decodesOrRejects(() => set.u32be(t));
            decodesOrRejects(() => set.u64(t));
            decodesOrRejects(() => set.u64n(t));
            decodesOrRejects(() => set.string(t));
            decodesOrRejects(() => set.nested(t)?.u32(1));
          }
        });
      }),
      { numRuns: 400 },
    );
  });
});

/** Valid datagrams: a few messages, sometimes NLMSG_ERROR or NLMSG_DONE, then mutated. */
const datagram = mutated(
  fc
    .array(
      fc.record({
        type: fc.constantFrom(NLMSG.NOOP, NLMSG.ERROR, NLMSG.DONE, 0x24),
        flags: fc.constantFrom(0, NLM_F.MULTI, NLM_F.CAPPED, NLM_F.ACK_TLVS, NLM_F.CAPPED | NLM_F.ACK_TLVS),
        seq: fc.nat(8),
        payload: fc.oneof(fc.uint8Array({ maxLength: 48 }), attributeBytes),
      }),
      { minLength: 1, maxLength: 4 },
    )
    .map((msgs) => {
      const parts = msgs.map((m) => encodeMessage({ ...m, pid: 0 }));
      const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let off = 0;
      for (const p of parts) {
        out.set(p, off);
        off += p.length;
      }
      return out;
    }),
);

describe("message readers on hostile bytes", () => {
  test("MessageCursor, decodeErrorBody and decodeGenl end or throw NetlinkDecodeError; every message lies inside the datagram", () => {
    const c = new MessageCursor();
    fc.assert(
      fc.property(fc.oneof(datagram, fc.uint8Array({ maxLength: 64 })), (bytes) => {
        decodesOrRejects(() => {
          c.reset(bytes);
          let count = 0;
          while (c.next()) {
            expect(++count).toBeLessThanOrEqual(bytes.length / 16);
            expect(c.start).toBeGreaterThanOrEqual(16);
            expect(c.end).toBeLessThanOrEqual(bytes.length);
            c.dumpEnd();
            c.errorErrno();
            c.errorSeq();
            const m = c.message();
            decodesOrRejects(() => decodeGenl(m.payload).attrs.string(1));
            if (m.type === NLMSG.ERROR) decodesOrRejects(() => decodeErrorBody(m));
          }
        });
      }),
      { numRuns: 400 },
    );
  });
});

describe("NLMSG_ERROR round trip (property)", () => {
  test("an error as the kernel builds it (capped or not, with or without a message and an offset) decodes to what was put in", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4095 }),
        fc.record({ type: fc.integer({ min: 0, max: 0xffff }), flags: fc.integer({ min: 0, max: 0xffff }), seq: fc.nat(0xffffffff), pid: fc.nat(0xffffffff) }),
        fc.uint8Array({ maxLength: 40 }),
        fc.boolean(),
        fc.option(fc.string({ maxLength: 60 }).filter((t) => !t.includes("\0")), { nil: undefined }),
        fc.option(fc.nat(0xffffffff), { nil: undefined }),
        (errno, request, requestPayload, capped, message, offset) => {
          const w = new ByteWriter();
          const at = w.reserve(4 + 16);
          w.putU32At(at, -errno);
          w.putU32At(at + 4, 16 + requestPayload.length);
          w.putU16At(at + 8, request.type);
          w.putU16At(at + 10, request.flags);
          w.putU32At(at + 12, request.seq);
          w.putU32At(at + 16, request.pid);
          if (!capped) {
            w.putBytes(requestPayload);
            w.pad();
          }
          if (message !== undefined) w.string(1, message);
          if (offset !== undefined) w.u32(2, offset);
          const tlvs = message !== undefined || offset !== undefined;
          const flags = (capped ? NLM_F.CAPPED : 0) | (tlvs ? NLM_F.ACK_TLVS : 0);
          const body = decodeErrorBody({ type: NLMSG.ERROR, flags, seq: request.seq, pid: 0, payload: w.toBytes() });
          expect(body).toEqual({
            errno,
            request: { len: 16 + requestPayload.length, ...request },
            extAck: { ...(message !== undefined ? { message } : {}), ...(offset !== undefined ? { offset } : {}) },
          });
        },
      ),
      { numRuns: 300 },
    );
  });
});
