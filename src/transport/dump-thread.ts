/**
 * A thread for big dump series (the destinations of every service, for `gorb status` and each reconcile) and big
 * batches of writes (an apply's): the kernel does a dump's or a write's work inside the caller's system calls, so
 * while ./dump-worker.ts sends and reads on another CPU the main thread keeps answering and building. The worker
 * only sends the requests and collects the raw datagrams on the connection's own socket (by descriptor: one
 * socket, used by one thread at a time because the connection serializes its operations); the connection decodes
 * them as if it had read them itself.
 *
 * The worker is started on first use and does not keep the process alive. If it dies, every job waiting on it
 * fails with a TransportError and the next job starts a new one.
 */
import { Worker } from "node:worker_threads";
import { ERRNO } from "../errno.ts";
import { type SocketHandle, TransportError, TransportTimeoutError } from "./datagram-socket.ts";

/**
 * One job for the worker, its datagrams back to back (datagram i at [offsets[i], offsets[i+1])):
 *   - "dumps": a series of dumps, one request per datagram, seqs[i] its sequence number;
 *   - "acks": a batch of writes with NLM_F_ACK, counts[i] requests per datagram numbered from seqs[i].
 */
export interface DumpJob {
  readonly id: number;
  readonly kind: "dumps" | "acks";
  readonly fd: number;
  readonly datagramBytes: number;
  readonly requests: Uint8Array;
  readonly offsets: Uint32Array;
  readonly seqs: Uint32Array;
  readonly counts?: Uint32Array;
}

/**
 * The worker's answers to a job: parts of what it received, each its datagrams back to back (datagram i ends at
 * ends[i]), the last one marked; or, last, why it stopped.
 */
export type DumpReply =
  | { readonly id: number; readonly ok: true; readonly last: boolean; readonly bytes: ArrayBuffer; readonly ends: Uint32Array }
  | { readonly id: number; readonly ok: false; readonly errno: number; readonly what: string };

/** Takes each part of the datagrams received, in order, while the worker reads on; throws to fail the job. */
export type PartReader = (bytes: Uint8Array, ends: Uint32Array) => void;

interface Waiter {
  readonly read: PartReader;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
  /** The first error `read` threw: the job fails with it once the worker is done with the socket. */
  failure: Error | null;
}

/** The Worker calls used here. */
export type ThreadWorker = Pick<Worker, "postMessage" | "terminate" | "ref" | "unref" | "on">;

/** How the worker is made (tests substitute a failing one). */
export type WorkerFactory = () => ThreadWorker;

/** Where the compiled executable's embedded modules are. */
const EMBEDDED_ROOT = "file:///$bunfs/root/";

/**
 * The worker's module, always by an absolute URL (never a path the working directory could supply): run from
 * source, the file beside this one; in the compiled executable, the entry point scripts/build.ts embeds, which
 * keeps its path below src/ (the common directory of the entry points) with a .js name.
 */
function dumpWorkerUrl(moduleUrl: string = import.meta.url): URL {
  return moduleUrl.startsWith(EMBEDDED_ROOT) ? new URL("transport/dump-worker.js", EMBEDDED_ROOT) : new URL("./dump-worker.ts", moduleUrl);
}

const defaultWorker: WorkerFactory = () => new Worker(dumpWorkerUrl());

/** See the module comment. */
export class DumpThread {
  #worker: ThreadWorker | null = null;
  readonly #waiting = new Map<number, Waiter>();
  #nextId = 1;
  readonly #make: WorkerFactory;

  constructor(make: WorkerFactory = defaultWorker) {
    this.#make = make;
  }

  /**
   * Send `requests` (encoded, with sequence numbers `seqs`) on the socket one dump at a time, each after the
   * previous one's NLMSG_DONE or error, handing what comes back to `read` part by part. Resolves once the worker is
   * done with the socket. Rejects with what `read` threw, TransportTimeoutError when the kernel did not answer
   * within the socket's timeout, TransportError when a socket call failed or the thread died.
   */
  run(socket: SocketHandle, requests: Uint8Array, offsets: Uint32Array, seqs: Uint32Array, read: PartReader): Promise<void> {
    return this.#run({ id: this.#nextId++, kind: "dumps", fd: socket.fd, datagramBytes: socket.datagramBytes, requests, offsets, seqs }, read);
  }

  /**
   * Send a batch of writes (datagram i of `requests` holds counts[i] requests with NLM_F_ACK, numbered from
   * firstSeqs[i]), each datagram once the previous one is answered, and hand `read` the kernel's errors and any
   * replies, one message per entry (an ACK is only counted). Rejects as run() does.
   */
  runAcks(socket: SocketHandle, requests: Uint8Array, offsets: Uint32Array, firstSeqs: Uint32Array, counts: Uint32Array, read: PartReader): Promise<void> {
    const job: DumpJob = { id: this.#nextId++, kind: "acks", fd: socket.fd, datagramBytes: socket.datagramBytes, requests, offsets, seqs: firstSeqs, counts };
    return this.#run(job, read);
  }

  #run(job: DumpJob, read: PartReader): Promise<void> {
    const id = job.id;
    return new Promise<void>((resolve, reject) => {
      let worker: ThreadWorker;
      try {
        worker = this.#started();
      } catch (error) {
        reject(new TransportError(`cannot start the netlink dump thread: ${error instanceof Error ? error.message : String(error)}`, ERRNO.EIO, { cause: error }));
        return;
      }
      this.#waiting.set(id, { read, resolve, reject, failure: null });
      worker.ref();
      worker.postMessage(job);
    });
  }

  /**
   * Stop the worker. Jobs waiting on it fail once it has exited (a read it is blocked in ends within the socket's
   * timeout), so their socket is never closed while the worker may still use its descriptor.
   */
  close(): Promise<void> {
    return this.#fail(new TransportError("the netlink dump thread was stopped", ERRNO.EIO));
  }

  #started(): ThreadWorker {
    if (this.#worker !== null) return this.#worker;
    const worker = this.#make();
    worker.on("message", (reply: DumpReply) => this.#answer(reply));
    const died = (why: string) => {
      if (this.#worker === worker) void this.#fail(new TransportError(`the netlink dump thread ${why}`, ERRNO.EIO));
    };
    worker.on("error", (error: Error) => died(`failed: ${error.message}`));
    worker.on("exit", (code: number) => died(`exited (${code})`));
    worker.unref();
    this.#worker = worker;
    return worker;
  }

  #answer(reply: DumpReply): void {
    const waiter = this.#waiting.get(reply.id);
    if (waiter === undefined) return;
    if (reply.ok && waiter.failure === null) {
      try {
        waiter.read(new Uint8Array(reply.bytes), reply.ends);
      } catch (error) {
        waiter.failure = error instanceof Error ? error : new Error(String(error));
      }
    }
    if (reply.ok && !reply.last) return;
    this.#waiting.delete(reply.id);
    if (this.#waiting.size === 0) this.#worker?.unref();
    if (waiter.failure !== null) {
      waiter.reject(waiter.failure);
    } else if (reply.ok) {
      waiter.resolve();
    } else if (reply.errno === ERRNO.EAGAIN) {
      waiter.reject(new TransportTimeoutError(`netlink ${reply.what} timed out`));
    } else {
      waiter.reject(new TransportError(`netlink ${reply.what} failed with errno ${reply.errno}`, reply.errno));
    }
  }

  async #fail(error: Error): Promise<void> {
    const worker = this.#worker;
    this.#worker = null;
    const waiting = [...this.#waiting.values()];
    this.#waiting.clear();
    // Dead already (error, exit) or stopped here: either way the thread is gone before anyone hears of it.
    await worker?.terminate();
    for (const w of waiting) w.reject(error);
  }
}
