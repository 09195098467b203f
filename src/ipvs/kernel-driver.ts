/**
 * IpvsDriver over the kernel's IPVS generic-netlink family.
 *
 * One persistent netlink socket (reopened after a timeout or failure), requests encoded by our codec,
 * family id resolved through libnl. Writes from apply() are packed many to a datagram; the kernel
 * processes every message of a datagram and ACKs each one, so a failed op does not stop the rest.
 *
 * Module reload. The IPVS family id is allocated when ip_vs registers it: after `modprobe -r ip_vs` and a new
 * `modprobe ip_vs` the family has another id (genetlink allocates ids cyclically) and the old one answers every
 * request with ENOENT. So an ENOENT (which also means "no such destination" or "no such scheduler") makes the
 * driver ask nlctrl for the family again: when the id changed, the request is sent again under the new id and
 * the `onFamilyChange` listeners run (the daemon reconciles: the reloaded module starts with an empty table);
 * when the family is gone, the error says the module is not loaded. The re-resolution never loads the module
 * itself (only the constructor asks modprobe), though the kernel's nlctrl may autoload it by its alias.
 */
import { NetlinkError } from "../netlink/errors.ts";
import { Pacer } from "../pacer.ts";
import { type MessageCursor, type NetlinkMessage, decodeGenl, genlHeader } from "../netlink/message.ts";
import type { ByteWriter } from "../netlink/attributes.ts";
import { NETLINK_GENERIC } from "../netlink/constants.ts";
import { type Outcome, NetlinkConnection, type Request } from "../transport/connection.ts";
import type { DatagramSocket } from "../transport/datagram-socket.ts";
import { TransportError, TransportTimeoutError } from "../transport/datagram-socket.ts";
import { DumpThread } from "../transport/dump-thread.ts";
import { lookupGenlFamily, resolveGenlFamily } from "../transport/genl-family.ts";
import { LibnlSocket, smallMessageDatagramBytes } from "../transport/libnl-socket.ts";
import { decodeDestinationAt, decodeServiceAt } from "./dump-decode.ts";
import { describeService } from "./address.ts";
import {
  decodeInfo,
  decodeService,
  decodeTimeouts,
  encodeServiceKey,
  writeDestinationConfig,
  writeDestinationKey,
  writeServiceConfig,
  writeServiceKey,
  writeTimeouts,
} from "./codec.ts";
import { IPVS_CMD, IPVS_GENL_NAME, IPVS_GENL_VERSION } from "./constants.ts";
import type { ApplyResult, IpvsDriver } from "./driver.ts";
import { ERRNO, IpvsError, type IpvsOperation } from "./errors.ts";
import { type IpvsErrorContext, type KernelReply, ipvsErrorFor } from "./messages.ts";
import {
  validateDestinationConfig,
  validateDestinationKey,
  validateServiceConfig,
  validateServiceKey,
  validateTimeouts,
} from "./validate.ts";
import type {
  Destination,
  DestinationConfig,
  DestinationKey,
  IpvsInfo,
  IpvsOp,
  Service,
  ServiceConfig,
  ServiceKey,
  ServiceWithDestinations,
  Timeouts,
} from "./types.ts";

/** IPVS is missing from the running kernel. */
export class IpvsUnavailableError extends Error {
  override readonly name = "IpvsUnavailableError";
}

export interface KernelDriverOptions {
  /** Longest a single netlink send or receive may block (default 5000 ms). */
  readonly timeoutMs?: number;
  /** Requests per datagram in apply() (default 128). */
  readonly batchSize?: number;
  /** Socket factory (tests); defaults to a libnl socket. */
  readonly openSocket?: () => DatagramSocket;
  /** Family id (tests); defaults to resolving "IPVS" through libnl. */
  readonly familyId?: number;
  /** How to look the family up again after an ENOENT (tests); defaults to nlctrl through libnl, without modprobe. */
  readonly resolveFamily?: () => number | null;
  /**
   * Read the dumps (snapshot()'s 1,000s above all) on a thread of their own, another CPU, while the caller goes on:
   * the daemon's choice (src/transport/dump-thread.ts). Default false: in the calling thread, as a short-lived CLI
   * wants (no thread to start).
   */
  readonly dumpThread?: boolean;
}

/**
 * Throws IpvsError for a write the kernel could not even be sent. `checkedKey` is a service key already checked
 * (the same object is not checked again); returns the service key this write names, checked.
 */
function validateOp(op: IpvsOp, checkedKey: ServiceKey | null): ServiceKey | null {
  switch (op.op) {
    case "add-service":
    case "update-service":
      validateServiceConfig(op.op, op.service);
      return op.service.key;
    case "delete-service":
      validateServiceKey(op.op, op.key);
      return op.key;
    case "add-destination":
    case "update-destination":
      if (op.service !== checkedKey) validateServiceKey(op.op, op.service);
      validateDestinationConfig(op.op, op.service, op.destination);
      return op.service;
    case "delete-destination":
      if (op.service !== checkedKey) validateServiceKey(op.op, op.service);
      validateDestinationKey(op.op, op.service, op.destination);
      return op.service;
  }
}

/** What an error about `op` names. */
function contextOf(op: IpvsOp): IpvsErrorContext {
  switch (op.op) {
    case "add-service":
    case "update-service":
      return { serviceConfig: op.service };
    case "delete-service":
      return { service: op.key };
    default:
      return { service: op.service, destination: op.destination };
  }
}

/** apply() sends its writes in chunks of this many, each once encoded. */
const SEND_CHUNK = 2048;

/** The genlmsghdr of each IPVS command, made once (requests only read it). */
const GENL_HEADERS: Uint8Array[] = [];

export class KernelIpvsDriver implements IpvsDriver {
  private readonly conn: NetlinkConnection;
  private readonly dumpThread: DumpThread | null;
  private family: number;
  private readonly resolveFamily: () => number | null;
  private readonly familyListeners: (() => void)[] = [];
  /** The encoded key of every service of the latest snapshot, by describeService text. */
  private keyNests = new Map<string, Uint8Array>();

  /** Resolve the IPVS family and open a socket; throws IpvsUnavailableError when the kernel has no IPVS. */
  constructor(options: KernelDriverOptions = {}) {
    const timeoutMs = options.timeoutMs ?? 5000;
    const family = options.familyId ?? resolveGenlFamily(IPVS_GENL_NAME, "ip_vs");
    if (family === null) {
      throw new IpvsUnavailableError(
        "IPVS is not available in this kernel: the ip_vs module is not loaded (try: modprobe ip_vs) " +
          "or the kernel was built without CONFIG_IP_VS",
      );
    }
    this.family = family;
    this.resolveFamily = options.resolveFamily ?? (() => lookupGenlFamily(IPVS_GENL_NAME));
    // Page-sized receive buffers: in the emulated guest a snapshot of 1,000 x 10 took 347 ms against 482 ms with
    // 64 KiB ones (medians of 12, alternating, one boot), the kernel no longer allocating 32 KiB per dump pass.
    const open = options.openSocket ?? (() => new LibnlSocket({ protocol: NETLINK_GENERIC, timeoutMs, datagramBytes: smallMessageDatagramBytes() }));
    this.dumpThread = options.dumpThread === true ? new DumpThread() : null;
    this.conn = new NetlinkConnection(open, { batchSize: options.batchSize ?? 128, ...(this.dumpThread !== null ? { dumpThread: this.dumpThread } : {}) });
  }

  async info(): Promise<IpvsInfo> {
    const [reply] = await this.call("info", IPVS_CMD.GET_INFO, undefined, {});
    return decodeInfo(this.attrsOf(reply, "info"));
  }

  async getTimeouts(): Promise<Timeouts> {
    const [reply] = await this.call("get-timeouts", IPVS_CMD.GET_CONFIG, undefined, {});
    return decodeTimeouts(this.attrsOf(reply, "get-timeouts"));
  }

  async setTimeouts(timeouts: Partial<Timeouts>): Promise<void> {
    validateTimeouts("set-timeouts", timeouts);
    await this.call("set-timeouts", IPVS_CMD.SET_CONFIG, (w) => writeTimeouts(w, timeouts), {});
  }

  async flush(): Promise<void> {
    await this.call("flush", IPVS_CMD.FLUSH, undefined, {});
  }

  async zero(key?: ServiceKey): Promise<void> {
    if (key === undefined) {
      await this.call("zero", IPVS_CMD.ZERO, undefined, {});
      return;
    }
    validateServiceKey("zero", key);
    await this.call("zero", IPVS_CMD.ZERO, (w) => writeServiceKey(w, key), { service: key });
  }

  addService(service: ServiceConfig): Promise<void> {
    return this.write({ op: "add-service", service });
  }
  updateService(service: ServiceConfig): Promise<void> {
    return this.write({ op: "update-service", service });
  }
  deleteService(key: ServiceKey): Promise<void> {
    return this.write({ op: "delete-service", key });
  }

  async getService(key: ServiceKey): Promise<Service> {
    validateServiceKey("get-service", key);
    const [reply] = await this.call("get-service", IPVS_CMD.GET_SERVICE, (w) => writeServiceKey(w, key), { service: key });
    return decodeService(this.attrsOf(reply, "get-service"));
  }

  async listServices(): Promise<Service[]> {
    return this.dump("list-services", () => this.genl(IPVS_CMD.GET_SERVICE), {}, (c) => decodeServiceAt(c.view, c.start, c.end));
  }

  addDestination(service: ServiceKey, destination: DestinationConfig): Promise<void> {
    return this.write({ op: "add-destination", service, destination });
  }
  updateDestination(service: ServiceKey, destination: DestinationConfig): Promise<void> {
    return this.write({ op: "update-destination", service, destination });
  }
  deleteDestination(service: ServiceKey, destination: DestinationKey): Promise<void> {
    return this.write({ op: "delete-destination", service, destination });
  }

  async listDestinations(service: ServiceKey): Promise<Destination[]> {
    // The kernel answers a destination dump of a missing service with an empty list, not an error:
    // ask for the service first so that a missing one is ESRCH, as the interface promises.
    validateServiceKey("list-destinations", service);
    await this.call("list-destinations", IPVS_CMD.GET_SERVICE, (w) => writeServiceKey(w, service), { service });
    return this.dumpDestinations(service);
  }

  /** One dump of the services, then every service's destinations in one series of dumps (one queue turn). */
  async snapshot(): Promise<ServiceWithDestinations[]> {
    const services = await this.listServices();
    const op: IpvsOperation = "list-destinations";
    const context: { service?: ServiceKey } = {};
    // Each service's key, encoded once and kept for the next snapshot (`gorb status` asks for the same 1,000 dumps
    // every time); the map holds the keys of the latest snapshot only.
    const nests = new Map<string, Uint8Array>();
    const keys = services.map((s) => {
      const id = describeService(s.key);
      let nest = this.keyNests.get(id);
      if (nest === undefined) {
        validateServiceKey(op, s.key);
        nest = encodeServiceKey(s.key);
      }
      nests.set(id, nest);
      return nest;
    });
    this.keyNests = nests;
    const dests = await this.transport(op, async () => {
      try {
        return await this.sameFamily(op, () =>
          this.conn.dumpSeries(
            // Made at each try: a retry after the family id changed carries the new one.
            services.map((s, i) =>
              this.genl(IPVS_CMD.GET_DEST, (w) => {
                context.service = s.key; // the service of a failure is the last one encoded
                w.putBytes(keys[i] as Uint8Array);
              }),
            ),
            (i, c) => decodeDestinationAt(c.view, c.start, c.end, (services[i] as Service).key.family),
          ),
        );
      } catch (e) {
        if (e instanceof NetlinkError) throw ipvsErrorFor(op, e.errno, context, kernelReply(e));
        throw e;
      }
    });
    return services.map((service, i) => ({ service, destinations: dests[i] ?? [] }));
  }

  async apply(ops: readonly IpvsOp[]): Promise<ApplyResult> {
    const results: ApplyResult = new Array<IpvsError | null>(ops.length).fill(null);
    // Sent in chunks, each as soon as it is encoded: the kernel (on the dump thread for a big chunk) works on one
    // while the next is checked and encoded. The connection runs them in order, one after the other.
    const chunks: Promise<void>[] = [];
    let sent: number[] = [];
    let requests: Request[] = [];
    const flush = (): void => {
      if (requests.length > 0) {
        const chunk = this.sendChunk(ops, sent, requests, results);
        // Its failure is thrown below, once every chunk settled; until then it must not count as unhandled (it can
        // fail while later chunks are still being encoded).
        chunk.catch(() => {});
        chunks.push(chunk);
      }
      sent = [];
      requests = [];
    };
    // A batch names each service for every one of its destinations, with the same key object: checked once.
    let checkedKey: ServiceKey | null = null;
    // Checking and encoding 11,000 writes is a block of work: the event loop turns every few milliseconds of it (a
    // fixed count of writes was 100 ms of work between turns in the emulated guest).
    const pacer = new Pacer();
    for (let index = 0; index < ops.length; index++) {
      if (requests.length >= SEND_CHUNK) flush();
      if (pacer.due()) await pacer.turn();
      const op = ops[index] as IpvsOp;
      try {
        checkedKey = validateOp(op, checkedKey);
        requests.push(this.encode(op));
        sent.push(index);
      } catch (e) {
        if (!(e instanceof IpvsError)) throw e;
        results[index] = e;
      }
    }
    flush();
    // Every chunk settles before the first failure is thrown (none is left running behind the caller).
    const settled = await Promise.allSettled(chunks);
    for (const s of settled) if (s.status === "rejected") throw s.reason;
    return results;
  }

  /** Send one chunk of `ops` (the indexes `sent`, encoded as `requests`) and put its errors in `results`. */
  private async sendChunk(ops: readonly IpvsOp[], sent: readonly number[], requests: readonly Request[], results: ApplyResult): Promise<void> {
    let outcomes = await this.transport("apply", () => this.conn.batch(requests));
    const enoent = (i: number): boolean => outcomes[i]?.error?.errno === ERRNO.ENOENT;
    if (outcomes.some((_, i) => enoent(i))) {
      // Sent under a stale family id (the ip_vs module was reloaded): nothing of those reached IPVS. Send them again
      // under the new one: the family is looked up when a request sent under the current id was refused; a request
      // encoded before another chunk found the change carries the old id already.
      const found = requests.some((r, i) => enoent(i) && r.type === this.family) && this.familyChanged("apply");
      const again = sent.filter((_, i) => enoent(i) && (requests[i] as Request).type !== this.family);
      if (again.length > 0) {
        const retried = await this.transport("apply", () => this.conn.batch(again.map((index) => this.encode(ops[index] as IpvsOp))));
        const byIndex = new Map(again.map((index, i) => [index, retried[i]] as const));
        outcomes = sent.map((index, i) => byIndex.get(index) ?? (outcomes[i] as Outcome));
      }
      if (found) this.notifyFamilyChange();
    }
    for (let i = 0; i < outcomes.length; i++) {
      const error = (outcomes[i] as Outcome).error;
      if (error === null) continue;
      const op = ops[sent[i] as number] as IpvsOp;
      results[sent[i] as number] = ipvsErrorFor(op.op, error.errno, contextOf(op), kernelReply(error));
    }
  }

  /** Call `listener` whenever the IPVS family id changed (the ip_vs module was reloaded: its table is empty). */
  onFamilyChange(listener: () => void): void {
    this.familyListeners.push(listener);
  }

  /** Look the family up again; true when its id changed (and the new one is taken). Throws when it is gone. */
  private familyChanged(op: IpvsOperation): boolean {
    let id: number | null;
    try {
      id = this.resolveFamily();
    } catch {
      return false; // nlctrl itself failed: keep the id, report the original error
    }
    if (id === null) {
      throw new IpvsError(
        op,
        ERRNO.ENOENT,
        "IPVS is not available: its generic-netlink family is gone (the ip_vs module was unloaded; modprobe ip_vs)",
      );
    }
    if (id === this.family) return false;
    this.family = id;
    return true;
  }

  private notifyFamilyChange(): void {
    for (const listener of this.familyListeners) {
      try {
        listener();
      } catch {
        // a listener's failure is its own
      }
    }
  }

  /** Run `fn` (which builds its request from the current family id); once more after a family change. */
  private async sameFamily<T>(op: IpvsOperation, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof NetlinkError) || e.errno !== ERRNO.ENOENT || !this.familyChanged(op)) throw e;
      try {
        return await fn();
      } finally {
        this.notifyFamilyChange();
      }
    }
  }

  close(): void {
    // The thread first: a read it is in ends before the socket is closed under it.
    void this.dumpThread?.close();
    this.conn.close();
  }

  private async dumpDestinations(service: ServiceKey): Promise<Destination[]> {
    return this.dump("list-destinations", () => this.genl(IPVS_CMD.GET_DEST, (w) => writeServiceKey(w, service)), { service }, (c) =>
      decodeDestinationAt(c.view, c.start, c.end, service.family),
    );
  }

  /** Encode one write (checked by validateOp). */
  private encode(op: IpvsOp): Request {
    switch (op.op) {
      case "add-service":
        return this.genl(IPVS_CMD.NEW_SERVICE, (w) => writeServiceConfig(w, op.service));
      case "update-service":
        return this.genl(IPVS_CMD.SET_SERVICE, (w) => writeServiceConfig(w, op.service));
      case "delete-service":
        return this.genl(IPVS_CMD.DEL_SERVICE, (w) => writeServiceKey(w, op.key));
      case "add-destination":
      case "update-destination":
        return this.genl(op.op === "add-destination" ? IPVS_CMD.NEW_DEST : IPVS_CMD.SET_DEST, (w) => {
          writeServiceKey(w, op.service);
          writeDestinationConfig(w, op.destination);
        });
      case "delete-destination":
        return this.genl(IPVS_CMD.DEL_DEST, (w) => {
          writeServiceKey(w, op.service);
          writeDestinationKey(w, op.destination);
        });
    }
  }

  private async write(op: IpvsOp): Promise<void> {
    validateOp(op, null);
    await this.transport(op.op, async () => {
      try {
        // Encoded again for a retry: the request carries the family id.
        await this.sameFamily(op.op, () => this.conn.request(this.encode(op)));
      } catch (e) {
        if (e instanceof NetlinkError) throw ipvsErrorFor(op.op, e.errno, contextOf(op), kernelReply(e));
        throw e;
      }
    });
  }

  private call(op: IpvsOperation, cmd: number, attrs: ((w: ByteWriter) => void) | undefined, context: IpvsErrorContext): Promise<NetlinkMessage[]> {
    return this.transport(op, async () => {
      try {
        return await this.sameFamily(op, () => this.conn.request(this.genl(cmd, attrs)));
      } catch (e) {
        if (e instanceof NetlinkError) throw ipvsErrorFor(op, e.errno, context, kernelReply(e));
        throw e;
      }
    });
  }

  private dump<T>(op: IpvsOperation, request: () => Request, context: IpvsErrorContext, decode: (c: MessageCursor) => T): Promise<T[]> {
    return this.transport(op, async () => {
      try {
        return await this.sameFamily(op, () => this.conn.dumpEach(request(), decode));
      } catch (e) {
        if (e instanceof NetlinkError) throw ipvsErrorFor(op, e.errno, context, kernelReply(e));
        throw e;
      }
    });
  }

  /** Socket-level failures become IpvsError too (ETIMEDOUT, or the socket's errno), so callers see one error type. */
  private async transport<T>(op: IpvsOperation, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      const name = op;
      if (e instanceof TransportTimeoutError)
        throw new IpvsError(name, ERRNO.ETIMEDOUT, `IPVS did not answer within the netlink timeout (${op}); the socket was reset`, { cause: e });
      if (e instanceof TransportError) throw new IpvsError(name, e.errno, `netlink transport failed during ${op}: ${e.message}`, { cause: e });
      throw e;
    }
  }

  /** An IPVS request (flags are added by the connection: ACK for writes, DUMP for dumps). */
  private genl(cmd: number, attrs?: (w: ByteWriter) => void): Request {
    const header = (GENL_HEADERS[cmd] ??= genlHeader(cmd, IPVS_GENL_VERSION));
    return attrs === undefined ? { type: this.family, flags: 0, header } : { type: this.family, flags: 0, header, attrs };
  }

  private attrsOf(reply: NetlinkMessage | undefined, op: IpvsOperation) {
    if (!reply) throw new IpvsError(op, ERRNO.EIO, `IPVS sent no reply to ${op}`);
    return decodeGenl(reply.payload).attrs;
  }
}

/** The kernel's extended-ack text and the NetlinkError itself, for the IpvsError built from it. */
function kernelReply(error: NetlinkError): KernelReply {
  return { kernelMessage: error.extAck.message ?? null, cause: error };
}
