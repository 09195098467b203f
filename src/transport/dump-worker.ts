/**
 * The dump thread's body (a Worker started by ./dump-thread.ts): it runs a series of netlink dump requests on a
 * socket the main thread opened (given by its descriptor), one after the other, and posts back every datagram the
 * kernel answered with, raw. Decoding stays in the main thread. A dump's work happens in the kernel inside the
 * reader's own system calls, so here it takes another CPU while the main thread goes on (building `gorb status`'s
 * rows, answering requests).
 *
 * The messages are only walked for the end of each dump: NLMSG_DONE or NLMSG_ERROR carrying the request's
 * sequence number. After a dump that ended in an error the series stops (the main thread reports that error).
 * What was received goes back in parts, after every CHUNK_DUMPS dumps, so the main thread decodes one part while
 * the next is read; the last part says it is the last.
 *
 * A batch of writes (an "acks" job) is sent the same way, datagram by datagram, each once the previous one's
 * requests are all answered; only the kernel's errors and any replies go back (see runAcks).
 */
import { parentPort } from "node:worker_threads";
import { MSG_TRUNC, MSG_WAITFORONE, ReceiveSlots, sendDatagram } from "../../ffi/libc.ts";
import { ERRNO } from "../errno.ts";
import { NLMSG, NLMSG_HDRLEN } from "../netlink/constants.ts";
import { MessageCursor } from "../netlink/message.ts";
import type { DumpJob, DumpReply } from "./dump-thread.ts";

/** As the main thread's sockets: 16 slots per receive. */
const SLOTS = 16;
/** Dumps per part sent back (a 1,000-service snapshot comes back in 16 parts). */
const CHUNK_DUMPS = 64;

let slots: ReceiveSlots | null = null;

/** The datagrams received, appended to one buffer that grows by doubling. */
class Collected {
  bytes = new Uint8Array(64 * 1024);
  used = 0;
  readonly ends: number[] = [];

  add(datagram: Uint8Array): void {
    if (this.used + datagram.length > this.bytes.length) {
      const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.used + datagram.length));
      grown.set(this.bytes.subarray(0, this.used));
      this.bytes = grown;
    }
    this.bytes.set(datagram, this.used);
    this.used += datagram.length;
    this.ends.push(this.used);
  }
}

/** How a dump ended in a datagram: 0 not yet, 1 cleanly, -1 with an error (the series stops). */
function endOf(cursor: MessageCursor, datagram: Uint8Array, seq: number): number {
  cursor.reset(datagram);
  while (cursor.next()) {
    if (cursor.seq !== seq) continue;
    const end = cursor.dumpEnd();
    if (end !== null) return end < 0 ? -1 : 1;
  }
  return 0;
}

/** The reply for a job that stopped: the errno and what failed. */
function failedReply(job: DumpJob, errno: number, what: string): DumpReply {
  return { id: job.id, ok: false, errno, what };
}

/** One receive call, each datagram it got handed to `read`; the failure reply when it failed (EINTR is no failure). */
function receiveSome(job: DumpJob, s: ReceiveSlots, read: (datagram: Uint8Array) => void): DumpReply | null {
  const n = s.receive(job.fd, MSG_TRUNC | MSG_WAITFORONE);
  if (n < 0 && -n === ERRNO.EINTR) return null;
  if (n <= 0) return failedReply(job, n === 0 ? ERRNO.EIO : -n, "receive");
  for (let k = 0; k < n; k++) {
    const length = s.length(k);
    if (length > s.size) return failedReply(job, ERRNO.EMSGSIZE, `receive: a datagram of ${length} bytes exceeds the ${s.size}-byte buffer`);
    read(s.slot(k, length));
  }
  return null;
}

/**
 * A batch of writes (job.kind "acks"): datagram i holds job.counts[i] requests numbered from job.seqs[i], each with
 * NLM_F_ACK. Each datagram is sent once the previous one's requests are all answered. Only what the main thread
 * needs comes back: the kernel's errors and any reply messages, each as its own entry; an ACK is only counted.
 */
function runAcks(job: DumpJob, s: ReceiveSlots): DumpReply {
  const out = new Collected();
  const cursor = new MessageCursor();
  const counts = job.counts ?? new Uint32Array(0);
  for (let i = 0; i < job.seqs.length; i++) {
    const first = job.seqs[i] as number;
    const count = counts[i] as number;
    const answered = new Uint8Array(count);
    let pending = count;
    let malformed = false;
    const sent = sendDatagram(job.fd, job.requests.subarray(job.offsets[i], job.offsets[i + 1]));
    if (sent < 0) return failedReply(job, -sent, "send");
    const read = (datagram: Uint8Array): void => {
      cursor.reset(datagram);
      while (cursor.next()) {
        const isError = cursor.type === NLMSG.ERROR;
        // An error too short to name its request goes back as it is (the main thread fails the batch with it).
        if (isError && cursor.errorSeq() === -1) {
          out.add(datagram.subarray(cursor.start - NLMSG_HDRLEN, cursor.end));
          malformed = true;
          return;
        }
        const j = ((isError ? cursor.errorSeq() : cursor.seq) - first) >>> 0;
        if (j >= count || answered[j] === 1) continue; // a stale answer, or not this datagram's
        if (isError) {
          answered[j] = 1;
          pending--;
          if (cursor.errorErrno() === 0) continue;
        } else if (cursor.type === NLMSG.NOOP || cursor.type === NLMSG.DONE) {
          continue;
        }
        out.add(datagram.subarray(cursor.start - NLMSG_HDRLEN, cursor.end));
      }
    };
    while (pending > 0 && !malformed) {
      const failure = receiveSome(job, s, read);
      if (failure !== null) return failure;
    }
    if (malformed) break;
  }
  return { id: job.id, ok: true, last: true, bytes: out.bytes.buffer.slice(0, out.used), ends: Uint32Array.from(out.ends) };
}

/** Run the job, posting its parts; the last one (or the failure) is returned for the caller to post. */
function run(job: DumpJob, post: (part: DumpReply) => void): DumpReply {
  if (slots === null || slots.size !== job.datagramBytes) slots = new ReceiveSlots(SLOTS, job.datagramBytes);
  const s = slots;
  if (job.kind === "acks") return runAcks(job, s);
  let out = new Collected();
  const cursor = new MessageCursor();
  const part = (last: boolean): DumpReply => ({ id: job.id, ok: true, last, bytes: out.bytes.buffer.slice(0, out.used), ends: Uint32Array.from(out.ends) });
  for (let i = 0; i < job.seqs.length; i++) {
    const seq = job.seqs[i] as number;
    const sent = sendDatagram(job.fd, job.requests.subarray(job.offsets[i], job.offsets[i + 1]));
    if (sent < 0) return failedReply(job, -sent, "send");
    let end = 0;
    const read = (datagram: Uint8Array): void => {
      out.add(datagram);
      if (end === 0) end = endOf(cursor, datagram, seq);
    };
    while (end === 0) {
      const failure = receiveSome(job, s, read);
      if (failure !== null) return failure;
    }
    if (end < 0) break;
    if ((i + 1) % CHUNK_DUMPS === 0 && i + 1 < job.seqs.length) {
      post(part(false));
      out = new Collected();
    }
  }
  return part(true);
}

const port = parentPort;
if (port === null) throw new Error("src/transport/dump-worker.ts runs only as the dump thread's worker");
const post = (reply: DumpReply): void => {
  if (reply.ok) port.postMessage(reply, [reply.bytes]);
  else port.postMessage(reply);
};
port.on("message", (job: DumpJob) => {
  let reply: DumpReply;
  try {
    reply = run(job, post);
  } catch (error) {
    reply = { id: job.id, ok: false, errno: ERRNO.EIO, what: error instanceof Error ? error.message : String(error) };
  }
  post(reply);
});
