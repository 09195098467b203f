/**
 * Request/response over a netlink datagram socket: sequence numbers, matching replies and ACKs to
 * requests, multipart dumps, batching many requests into one send, and recovery from a broken socket.
 *
 * Operations are serialized (one at a time per connection). Long operations yield to the event loop
 * between sends and every few received datagrams, so HTTP handlers and health checks keep running
 * during bulk kernel work; every individual socket call is bounded by the socket timeout.
 */
import { ERRNO } from "../errno.ts";
import { ByteWriter } from "../netlink/attributes.ts";
import { NLMSG, NLM_F } from "../netlink/constants.ts";
import { NetlinkDecodeError, NetlinkError } from "../netlink/errors.ts";
import { MessageCursor, type MessageRequest, type NetlinkMessage, decodeDoneExtAck, decodeErrorBody, writeMessageAs } from "../netlink/message.ts";
import { type DatagramSocket, type SocketHandle, TransportError, TransportTimeoutError } from "./datagram-socket.ts";
import type { DumpThread } from "./dump-thread.ts";

/** A request without its sequence number (the connection assigns it). */
export type Request = Omit<MessageRequest, "seq">;

/** The outcome of one request in a batch. */
export interface Outcome {
  /** Reply messages (doit replies), copied out of the receive buffer. */
  readonly replies: readonly NetlinkMessage[];
  /** The kernel's error, or null when it acknowledged the request. */
  readonly error: NetlinkError | null;
}

export interface ConnectionOptions {
  /** How many requests go into one send (the kernel ACKs each one). */
  readonly batchSize?: number;
  /** Yield to the event loop after this many received datagrams. */
  readonly yieldEvery?: number;
  /** Run dumps (dumpEach, dumpSeries) on this thread when the socket has a descriptor (default: in the caller's). */
  readonly dumpThread?: DumpThread;
}

/** Batches of at least this many requests go by the dump thread when there is one (fewer are not worth a hand-over). */
const THREAD_BATCH_MIN = 256;

/** The outcome of an acknowledged request without replies, shared. */
const ACKED: Outcome = Object.freeze({ replies: Object.freeze([]) as readonly NetlinkMessage[], error: null });

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

function copyMessage(m: NetlinkMessage): NetlinkMessage {
  return { type: m.type, flags: m.flags, seq: m.seq, pid: m.pid, payload: m.payload.slice() };
}

/** `o` with the kernel's error at the cursor (an NLMSG_ERROR with a non-zero errno) as its error. */
function withError(o: Outcome, c: MessageCursor): Outcome {
  const body = decodeErrorBody(c.message());
  return { replies: o.replies, error: new NetlinkError(body.errno, body.request.seq, body.extAck) };
}

/**
 * The request an NLMSG_ERROR at the cursor answers (its echoed header's sequence number). One too short to say is
 * malformed: a NetlinkDecodeError (the socket is reset), not an answer skipped while its request waits out the
 * socket's timeout.
 */
function errorSeqOf(c: MessageCursor): number {
  const seq = c.errorSeq();
  if (seq === -1) throw new NetlinkDecodeError(`NLMSG_ERROR payload of ${c.end - c.start} bytes, too short for its request's header`);
  return seq;
}

/** `o` with the reply message at the cursor added (copied: the receive buffer is reused). */
function withReply(o: Outcome, c: MessageCursor): Outcome {
  return { replies: [...o.replies, copyMessage(c.message())], error: o.error };
}

/** Encode a dump request (NLM_F_REQUEST | NLM_F_DUMP) with sequence number `seq`. */
function writeDumpRequest(w: ByteWriter, req: Request, seq: number): void {
  writeMessageAs(w, req, req.flags | NLM_F.REQUEST | NLM_F.DUMP, seq);
}

/**
 * Reads the datagrams of a series of dumps, one dump at a time (begin), into one result list per dump: messages
 * of other sequence numbers (stale replies) are skipped, NLMSG_DONE ends the dump (a negative status in it throws
 * NetlinkError, as does an NLMSG_ERROR), everything else goes through `decode` while the datagram holds it.
 * A dump the kernel flagged NLM_F_DUMP_INTR (the table changed between its parts: rtnetlink does, IPVS does not)
 * is read to its end, then thrown as NetlinkError EINTR, as iproute2 reports it: its result may be inconsistent.
 */
class DumpReader<T> {
  readonly results: T[][] = [];
  done = true;
  #index = 0;
  #seq = 0;
  #out: T[] = [];
  #interrupted = false;

  constructor(
    private readonly c: MessageCursor,
    private readonly decode: (index: number, c: MessageCursor) => T,
  ) {}

  begin(index: number, seq: number): void {
    this.#index = index;
    this.#seq = seq;
    this.#out = [];
    this.results.push(this.#out);
    this.done = false;
    this.#interrupted = false;
  }

  /** Read one datagram; what follows the dump's end in it is ignored. */
  read(dgram: Uint8Array): void {
    const c = this.c;
    c.reset(dgram);
    while (!this.done && c.next()) {
      if (c.seq !== this.#seq) continue; // a stale reply of an earlier, abandoned request
      if ((c.flags & NLM_F.DUMP_INTR) !== 0) this.#interrupted = true;
      const end = c.dumpEnd();
      if (end === null) {
        this.#out.push(this.decode(this.#index, c));
        continue;
      }
      if (c.type === NLMSG.ERROR) {
        // The whole body: its errno, and the kernel's extended ack.
        const body = decodeErrorBody(c.message());
        if (body.errno !== 0) throw new NetlinkError(body.errno, this.#seq, body.extAck);
      } else if (end < 0) {
        throw new NetlinkError(-end, this.#seq, decodeDoneExtAck(c.message()));
      }
      this.done = true;
      // Read to its end first: the socket holds nothing more of it, and the caller may run it again.
      if (this.#interrupted) throw new NetlinkError(ERRNO.EINTR, this.#seq, { message: "the dump was interrupted and may be inconsistent" });
    }
  }
}

/** A serialized request/response channel over one netlink socket, reopened after a failure. */
export class NetlinkConnection {
  private socket: DatagramSocket | null = null;
  private seq: number;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly batchSize: number;
  private readonly yieldEvery: number;
  private readonly dumpThread: DumpThread | null;
  /** The socket the dump thread is using, and whether it is to be closed once the thread is done with it. */
  private lent: DatagramSocket | null = null;
  private closeLent = false;
  /** Walks received dump datagrams (dumps are serialized, so one is enough). */
  private readonly cursor = new MessageCursor();

  constructor(
    private readonly openSocket: () => DatagramSocket,
    options: ConnectionOptions = {},
  ) {
    this.batchSize = Math.max(1, options.batchSize ?? 128);
    this.yieldEvery = Math.max(1, options.yieldEvery ?? 64);
    this.dumpThread = options.dumpThread ?? null;
    // Start somewhere unpredictable so a reopened socket never mistakes an old reply for a new one.
    this.seq = (Math.floor(Math.random() * 0x7fffffff) | 1) >>> 0;
  }

  /** Send one request with NLM_F_ACK and wait for its replies and ACK; throws NetlinkError on a kernel error. */
  async request(req: Request): Promise<NetlinkMessage[]> {
    const [outcome] = await this.batch([req]);
    if (!outcome) throw new TransportError("no outcome for request", ERRNO.EIO);
    if (outcome.error) throw outcome.error;
    return [...outcome.replies];
  }

  /**
   * Send many requests (each with NLM_F_ACK), several per datagram, and collect every outcome in order.
   * A kernel error on one request does not stop the others: the kernel processes every message it is sent.
   */
  batch(reqs: readonly Request[]): Promise<Outcome[]> {
    return this.serialize(async () => {
      const outcomes: Outcome[] = new Array<Outcome>(reqs.length);
      const thread = this.dumpThread;
      if (thread !== null && reqs.length >= THREAD_BATCH_MIN) {
        const sock = this.ensureSocket();
        const handle = sock.handle?.() ?? null;
        if (handle !== null) return this.failClosedAsync(() => this.batchOnThread(thread, sock, handle, reqs, outcomes));
      }
      for (let start = 0; start < reqs.length; start += this.batchSize) {
        const end = Math.min(reqs.length, start + this.batchSize);
        this.failClosed(() => this.sendAndCollect(reqs, start, end, outcomes));
        if (end < reqs.length) await yieldToEventLoop();
      }
      return outcomes;
    });
  }

  /**
   * Run a dump request (NLM_F_DUMP) and return every message of it, passed through `decode` while the
   * receive buffer still holds it (no copy; the default copies). Throws NetlinkError on a kernel error.
   */
  dump(req: Request): Promise<NetlinkMessage[]>;
  dump<T>(req: Request, decode: (m: NetlinkMessage) => T): Promise<T[]>;
  dump<T>(req: Request, decode?: (m: NetlinkMessage) => T): Promise<(T | NetlinkMessage)[]> {
    const fn: (m: NetlinkMessage) => T | NetlinkMessage = decode ?? copyMessage;
    return this.dumpEach(req, (c) => fn(c.message()));
  }

  /**
   * The same without an object per message: `decode` reads the current message from the cursor (its payload is
   * [c.start, c.end) of c.view), while the receive buffer holds it. The path of the big dumps.
   */
  dumpEach<T>(req: Request, decode: (c: MessageCursor) => T): Promise<T[]> {
    return this.serialize(() => this.failClosedAsync(async () => (await this.runDumps([req], (_, c) => decode(c)))[0] ?? []));
  }

  /**
   * Run many dumps one after the other as one operation (one turn of the queue, one request buffer), e.g. the
   * destinations of every service: `decode(i, c)` reads a message of the i-th dump. The results in request order.
   * Throws NetlinkError on the first kernel error (the dumps after it are not run).
   */
  dumpSeries<T>(reqs: readonly Request[], decode: (index: number, c: MessageCursor) => T): Promise<T[][]> {
    return this.serialize(() => this.failClosedAsync(() => this.runDumps(reqs, decode)));
  }

  private async runDumps<T>(reqs: readonly Request[], decode: (index: number, c: MessageCursor) => T): Promise<T[][]> {
    const sock = this.ensureSocket();
    const thread = this.dumpThread;
    const handle = thread === null ? null : (sock.handle?.() ?? null);
    if (thread !== null && handle !== null) return this.runDumpsOnThread(thread, sock, handle, reqs, decode);
    const w = new ByteWriter(256);
    const reader = new DumpReader(this.cursor, decode);
    let datagrams = 0;
    for (let i = 0; i < reqs.length; i++) {
      const seq = this.nextSeq();
      w.reset();
      writeDumpRequest(w, reqs[i] as Request, seq);
      this.guard(() => sock.send(w.bytes()));
      reader.begin(i, seq);
      while (!reader.done) {
        // Nothing follows a dump's NLMSG_DONE (the next request is not sent yet), so a batch ends with it.
        for (const dgram of this.guard(() => sock.receive())) {
          reader.read(dgram);
          if (++datagrams % this.yieldEvery === 0) await yieldToEventLoop();
        }
      }
    }
    return reader.results;
  }

  /**
   * The same series read by the dump thread (another CPU) on `sock` and decoded here, part by part, as it reads
   * on. The socket is lent to the thread until the job is over: close() waits for that.
   */
  private async runDumpsOnThread<T>(
    thread: DumpThread,
    sock: DatagramSocket,
    handle: SocketHandle,
    reqs: readonly Request[],
    decode: (index: number, c: MessageCursor) => T,
  ): Promise<T[][]> {
    const w = new ByteWriter(64 * reqs.length);
    const offsets = new Uint32Array(reqs.length + 1);
    const seqs = new Uint32Array(reqs.length);
    for (let i = 0; i < reqs.length; i++) {
      seqs[i] = this.nextSeq();
      writeDumpRequest(w, reqs[i] as Request, seqs[i] as number);
      offsets[i + 1] = w.length;
    }
    const reader = new DumpReader(this.cursor, decode);
    let next = 0; // the dump the next datagram belongs to once the current one is done
    const readPart = (bytes: Uint8Array, ends: Uint32Array): void => {
      let start = 0;
      for (const end of ends) {
        if (reader.done && next < seqs.length) {
          reader.begin(next, seqs[next] as number);
          next++;
        }
        reader.read(bytes.subarray(start, end));
        start = end;
      }
    };
    this.lent = sock;
    try {
      await this.guardAsync(() => thread.run(handle, w.bytes(), offsets, seqs, readPart));
    } finally {
      this.lent = null;
      if (this.closeLent) {
        this.closeLent = false;
        sock.close();
      }
    }
    if (next < seqs.length || !reader.done) throw new TransportError(`the dump thread ended before dump ${next} of ${seqs.length} was complete`, ERRNO.EIO);
    return reader.results;
  }

  /**
   * A batch sent and answered by the dump thread (another CPU: the kernel does each write inside the sender's
   * system call), datagram by datagram as sendAndCollect would; the main thread only encodes it and reads the
   * errors and replies back. The socket is lent to the thread until the batch is over.
   */
  private async batchOnThread(thread: DumpThread, sock: DatagramSocket, handle: SocketHandle, reqs: readonly Request[], outcomes: Outcome[]): Promise<Outcome[]> {
    const count = reqs.length;
    if (this.seq + count >= 0xffffffff) this.seq = 0;
    const first = (this.seq + 1) >>> 0;
    this.seq = (this.seq + count) >>> 0;
    const datagrams = Math.ceil(count / this.batchSize);
    const offsets = new Uint32Array(datagrams + 1);
    const firstSeqs = new Uint32Array(datagrams);
    const counts = new Uint32Array(datagrams);
    const w = new ByteWriter(128 * count);
    for (let d = 0; d < datagrams; d++) {
      const start = d * this.batchSize;
      const end = Math.min(count, start + this.batchSize);
      firstSeqs[d] = (first + start) >>> 0;
      counts[d] = end - start;
      for (let i = start; i < end; i++) {
        const req = reqs[i] as Request;
        outcomes[i] = ACKED;
        writeMessageAs(w, req, req.flags | NLM_F.REQUEST | NLM_F.ACK, (first + i) >>> 0);
      }
      offsets[d + 1] = w.length;
    }
    const c = this.cursor;
    const read = (bytes: Uint8Array, ends: Uint32Array): void => {
      let at = 0;
      for (const end of ends) {
        c.reset(bytes.subarray(at, end));
        at = end;
        if (!c.next()) continue;
        const isError = c.type === NLMSG.ERROR;
        const k = ((isError ? errorSeqOf(c) : c.seq) - first) >>> 0;
        const o = outcomes[k];
        if (o === undefined) continue;
        outcomes[k] = isError ? withError(o, c) : withReply(o, c);
      }
    };
    this.lent = sock;
    try {
      await this.guardAsync(() => thread.runAcks(handle, w.bytes(), offsets, firstSeqs, counts, read));
    } finally {
      this.lent = null;
      if (this.closeLent) {
        this.closeLent = false;
        sock.close();
      }
    }
    return outcomes;
  }

  /**
   * Close the socket; the next request opens a new one. A socket lent to the dump thread is closed when the thread
   * is done with it (never under a read it may still be in: its descriptor could be reused meanwhile).
   */
  close(): void {
    const sock = this.socket;
    this.socket = null;
    if (sock === null) return;
    if (sock === this.lent) this.closeLent = true;
    else sock.close();
  }

  /**
   * One datagram of requests [start, end) with NLM_F_ACK, and every answer read: an ACK leaves the request's
   * shared OK outcome, an error or a reply gets an outcome of its own. The requests are numbered consecutively
   * (the run never wraps past 0), so an answer's request is found from its sequence number without a map; the
   * ACKs are read in place, with no object per message.
   */
  private sendAndCollect(reqs: readonly Request[], start: number, end: number, outcomes: Outcome[]): void {
    const sock = this.ensureSocket();
    const count = end - start;
    if (this.seq + count >= 0xffffffff) this.seq = 0;
    const first = (this.seq + 1) >>> 0;
    this.seq = (this.seq + count) >>> 0;
    const answered = new Uint8Array(count);
    let pending = 0;
    const w = new ByteWriter(256 * count);
    for (let i = 0; i < count; i++) {
      const req = reqs[start + i];
      if (!req) {
        answered[i] = 1;
        continue;
      }
      pending++;
      outcomes[start + i] = ACKED;
      writeMessageAs(w, req, req.flags | NLM_F.REQUEST | NLM_F.ACK, (first + i) >>> 0);
    }
    this.guard(() => sock.send(w.toBytes()));
    const c = this.cursor;
    while (pending > 0) {
      for (const dgram of this.guard(() => sock.receive())) {
        c.reset(dgram);
        while (c.next()) {
          if (c.type === NLMSG.ERROR) {
            const k = (errorSeqOf(c) - first) >>> 0;
            if (k >= count || answered[k] === 1) continue;
            answered[k] = 1;
            pending--;
            if (c.errorErrno() !== 0) outcomes[start + k] = withError(outcomes[start + k] as Outcome, c);
            continue;
          }
          if (c.type === NLMSG.NOOP || c.type === NLMSG.DONE) continue;
          const k = (c.seq - first) >>> 0;
          if (k >= count || answered[k] === 1) continue;
          outcomes[start + k] = withReply(outcomes[start + k] as Outcome, c);
        }
      }
    }
  }

  /** Any failure in the middle of an exchange leaves unread replies behind: start over on a new socket. */
  private failClosed<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (!(e instanceof NetlinkError)) this.close();
      throw e;
    }
  }

  private async failClosedAsync<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      // A kernel error ends a dump cleanly (DONE/ERROR was read); anything else leaves the socket unknown.
      if (!(e instanceof NetlinkError)) this.close();
      throw e;
    }
  }

  /** Run a socket call; on a timeout or socket failure drop the socket so the next operation starts clean. */
  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof TransportTimeoutError || e instanceof TransportError) this.close();
      throw e;
    }
  }

  private async guardAsync<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof TransportTimeoutError || e instanceof TransportError) this.close();
      throw e;
    }
  }

  private ensureSocket(): DatagramSocket {
    if (!this.socket) this.socket = this.openSocket();
    return this.socket;
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    if (this.seq === 0) this.seq = 1;
    return this.seq;
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
