/**
 * Matching what comes back to what was asked, as a property: a fake kernel answers a batch (or a dump) in a random
 * order, cut into random datagrams, with stale messages mixed in (ACKs, errors, replies, NLMSG_DONE of sequence
 * numbers from before: an earlier, abandoned request), and duplicated ACKs. Each request's outcome is its own first
 * answer, each dump's result its own parts, whatever is around them.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { HOST_LITTLE_ENDIAN } from "../../../src/netlink/attributes.ts";
import { NLMSG, NLM_F } from "../../../src/netlink/constants.ts";
import { NetlinkDecodeError, NetlinkError } from "../../../src/netlink/errors.ts";
import { type NetlinkMessage, encodeMessage } from "../../../src/netlink/message.ts";
import { NetlinkConnection } from "../../../src/transport/connection.ts";
import { type DatagramSocket, TransportTimeoutError } from "../../../src/transport/datagram-socket.ts";
import { decodeMessages } from "../../helpers/netlink-messages.ts";

function errorMessage(seq: number, errno: number): Uint8Array {
  const p = new Uint8Array(20);
  const v = new DataView(p.buffer);
  v.setInt32(0, -errno, HOST_LITTLE_ENDIAN);
  v.setUint32(4, 20, HOST_LITTLE_ENDIAN);
  v.setUint16(8, 0x24, HOST_LITTLE_ENDIAN);
  v.setUint32(12, seq, HOST_LITTLE_ENDIAN);
  return encodeMessage({ type: NLMSG.ERROR, flags: NLM_F.CAPPED, seq, pid: 0, payload: p });
}
const replyMessage = (seq: number, tag: number, flags = 0) => encodeMessage({ type: 0x24, flags, seq, pid: 0, payload: Uint8Array.of(1, 1, tag, 0) });
const doneMessage = (seq: number, status = 0) => {
  const p = new Uint8Array(4);
  new DataView(p.buffer).setInt32(0, status, HOST_LITTLE_ENDIAN);
  return encodeMessage({ type: NLMSG.DONE, flags: NLM_F.MULTI, seq, pid: 0, payload: p });
};

/** Plays back, for each datagram sent, the messages `answer` makes, cut into datagrams at `cuts`. */
class ScriptedSocket implements DatagramSocket {
  readonly queue: Uint8Array[] = [];
  constructor(
    private readonly answer: (sent: NetlinkMessage[]) => Uint8Array[],
    private readonly cuts: readonly number[],
  ) {}
  send(bytes: Uint8Array): void {
    const msgs = this.answer(decodeMessages(bytes).map((m) => ({ ...m, payload: m.payload.slice() })));
    let i = 0;
    let c = 0;
    while (i < msgs.length) {
      const n = 1 + ((this.cuts[c++ % Math.max(1, this.cuts.length)] ?? 0) % 4);
      const part = msgs.slice(i, i + n);
      i += n;
      this.queue.push(new Uint8Array(part.flatMap((m) => [...m])));
    }
  }
  receive(): readonly Uint8Array[] {
    const d = this.queue.shift();
    if (d === undefined) throw new TransportTimeoutError("nothing queued");
    return [d];
  }
  close(): void {}
}

/** Deterministic shuffle by `keys`. */
function shuffled<T>(items: T[], keys: readonly number[]): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = (keys[i % Math.max(1, keys.length)] ?? 0) % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

const req = { type: 0x24, flags: 0, header: Uint8Array.of(1, 1, 0, 0) };

describe("reply matching (property)", () => {
  test("batch: each request gets its own first answer and its replies sent before it, whatever the order, stale and duplicate messages", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ errno: fc.constantFrom(0, 0, 2, 17), replies: fc.nat(2) }), { minLength: 1, maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 24 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.array(fc.record({ back: fc.integer({ min: 1, max: 1000 }), kind: fc.constantFrom("ack", "error", "reply", "done") }), { maxLength: 6 }),
        fc.boolean(),
        async (answers, order, cuts, stale, duplicate) => {
          const sock = new ScriptedSocket((sent) => {
            const first = sent[0]?.seq ?? 0;
            // Each request's replies then its answer stay in order; requests are interleaved at random.
            const perRequest = sent.map((m, k) => {
              const a = answers[k]!;
              const msgs = Array.from({ length: a.replies }, (_, r) => replyMessage(m.seq, k * 4 + r));
              msgs.push(errorMessage(m.seq, a.errno));
              if (duplicate) msgs.push(errorMessage(m.seq, 99)); // a second answer must not replace the first
              return msgs;
            });
            const stream: Uint8Array[] = [];
            const cursors = perRequest.map(() => 0);
            const pick = shuffled(perRequest.flatMap((msgs, k) => msgs.map(() => k)), order);
            for (const k of pick) stream.push(perRequest[k]![cursors[k]!++]!);
            const olds = stale.map(({ back, kind }) => {
              const seq = (first - back) >>> 0;
              return kind === "ack" ? errorMessage(seq, 0) : kind === "error" ? errorMessage(seq, 1) : kind === "reply" ? replyMessage(seq, 255) : doneMessage(seq);
            });
            olds.forEach((o, i) => stream.splice((order[i] ?? 0) % (stream.length + 1), 0, o));
            return stream;
          }, cuts);
          const outcomes = await new NetlinkConnection(() => sock, { batchSize: 64 }).batch(answers.map(() => req));
          expect(outcomes.map((o) => o.error?.errno ?? 0)).toEqual(answers.map((a) => a.errno));
          expect(outcomes.map((o) => o.replies.map((r) => r.payload[2]))).toEqual(answers.map((a, k) => Array.from({ length: a.replies }, (_, r) => k * 4 + r)));
        },
      ),
      { numRuns: 150 },
    );
  });

  test("dump series: each dump's parts and nothing else, with stale messages (of earlier sequence numbers) among them", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.nat(5), { minLength: 1, maxLength: 5 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.array(fc.record({ at: fc.nat(), back: fc.integer({ min: 1, max: 1000 }), kind: fc.constantFrom("ack", "error", "reply", "done", "intr") }), { maxLength: 6 }),
        async (sizes, cuts, stale) => {
          let dump = 0;
          const sock = new ScriptedSocket((sent) => {
            const seq = sent[0]!.seq;
            const d = dump++;
            const stream = Array.from({ length: sizes[d]! }, (_, i) => replyMessage(seq, d * 8 + i, NLM_F.MULTI));
            stream.push(doneMessage(seq));
            // Stale messages before this dump's DONE (what follows DONE is never read).
            for (const { at, back, kind } of stale) {
              const old = (seq - back) >>> 0;
              const m =
                kind === "ack" ? errorMessage(old, 0) : kind === "error" ? errorMessage(old, 22) : kind === "done" ? doneMessage(old, -22) : replyMessage(old, 255, kind === "intr" ? NLM_F.MULTI | NLM_F.DUMP_INTR : NLM_F.MULTI);
              stream.splice(at % stream.length, 0, m);
            }
            return stream;
          }, cuts);
          const got = await new NetlinkConnection(() => sock).dumpSeries(
            sizes.map(() => req),
            (_i, c) => c.view.getUint8(c.start + 2),
          );
          expect(got).toEqual(sizes.map((n, d) => Array.from({ length: n }, (_, i) => d * 8 + i)));
        },
      ),
      { numRuns: 150 },
    );
  });

  test("hostile answers (the right sequence numbers, bytes flipped and cut) end the operation with a value or a typed error", async () => {
    const typed = (e: unknown) => e instanceof NetlinkDecodeError || e instanceof NetlinkError || e instanceof TransportTimeoutError;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 4 }),
        fc.nat(12),
        fc.array(fc.nat(), { maxLength: 4 }),
        async (edits, cut, cuts) => {
          const garble = (msgs: Uint8Array[]): Uint8Array[] => {
            const all = new Uint8Array(msgs.flatMap((m) => [...m]));
            for (const [at, v] of edits) all[at % all.length] = v;
            return [all.subarray(0, Math.max(0, all.length - cut))];
          };
          const batch = new ScriptedSocket((sent) => garble(sent.flatMap((m) => [replyMessage(m.seq, 1), errorMessage(m.seq, 17)])), cuts);
          await new NetlinkConnection(() => batch).batch([req, req]).then(
            (o) => expect(o).toHaveLength(2),
            (e: unknown) => expect(typed(e)).toBe(true),
          );
          const dump = new ScriptedSocket((sent) => garble([replyMessage(sent[0]!.seq, 1, NLM_F.MULTI), doneMessage(sent[0]!.seq)]), cuts);
          await new NetlinkConnection(() => dump).dump(req).then(
            (parts) => expect(parts.length).toBeLessThanOrEqual(2),
            (e: unknown) => expect(typed(e)).toBe(true),
          );
        },
      ),
      { numRuns: 300 },
    );
  });
});
