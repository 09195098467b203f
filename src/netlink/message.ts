/**
 * Netlink messages: struct nlmsghdr { u32 len; u16 type; u16 flags; u32 seq; u32 pid } followed by a payload,
 * and for generic netlink struct genlmsghdr { u8 cmd; u8 version; u16 reserved } before the attributes.
 * Pure functions: no I/O.
 */
import { AttributeSet, ByteWriter, HOST_LITTLE_ENDIAN, align4 } from "./attributes.ts";
import { GENL_HDRLEN, NLMSG, NLMSGERR_ATTR, NLMSG_HDRLEN, NLM_F } from "./constants.ts";
import { type ExtendedAck, NetlinkDecodeError } from "./errors.ts";

/** A decoded netlink message. `payload` is everything after the 16-byte header. */
export interface NetlinkMessage {
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  readonly pid: number;
  readonly payload: Uint8Array;
}

/** A netlink request: a family-specific fixed header (genlmsghdr, ifaddrmsg, ...) then attributes. */
export interface MessageRequest {
  /** nlmsg_type: the generic-netlink family id, or an rtnetlink message type. */
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  /** The family's fixed header, written as is after the nlmsghdr (padded to 4 bytes). */
  readonly header: Uint8Array;
  /** Writes the attributes. */
  readonly attrs?: (w: ByteWriter) => void;
}

/**
 * Append one netlink message to a writer (several can share a writer: one send, many requests), with `flags` and
 * `seq` in place of the request's own: a connection numbers its requests and adds REQUEST, ACK or DUMP.
 */
export function writeMessageAs(w: ByteWriter, req: Pick<MessageRequest, "type" | "header" | "attrs">, flags: number, seq: number): void {
  const start = w.reserve(NLMSG_HDRLEN);
  w.putU16At(start + 4, req.type);
  w.putU16At(start + 6, flags);
  w.putU32At(start + 8, seq);
  w.putU32At(start + 12, 0);
  w.putBytes(req.header);
  w.pad();
  req.attrs?.(w);
  w.putU32At(start, w.length - start);
  w.pad();
}

/** The 4-byte struct genlmsghdr. */
export function genlHeader(cmd: number, version: number): Uint8Array {
  return Uint8Array.of(cmd, version, 0, 0);
}

/** A generic-netlink request to encode. */
export interface GenlRequest {
  /** Family id (the nlmsg_type). */
  readonly family: number;
  readonly cmd: number;
  readonly version: number;
  readonly flags: number;
  readonly seq: number;
  /** Writes the attributes. */
  readonly attrs?: (w: ByteWriter) => void;
}

/** Append one generic-netlink message to a writer (several can share a writer: one send, many requests). */
export function writeGenlMessage(w: ByteWriter, req: GenlRequest): void {
  writeMessageAs(w, { type: req.family, header: genlHeader(req.cmd, req.version), ...(req.attrs ? { attrs: req.attrs } : {}) }, req.flags, req.seq);
}

/** Encode one generic-netlink message. */
export function encodeGenlMessage(req: GenlRequest): Uint8Array {
  const w = new ByteWriter();
  writeGenlMessage(w, req);
  return w.toBytes();
}

/** Encode a plain netlink message with a raw payload (used by tests and non-genl families). */
export function encodeMessage(msg: NetlinkMessage): Uint8Array {
  const w = new ByteWriter(NLMSG_HDRLEN + msg.payload.length + 4);
  const start = w.reserve(NLMSG_HDRLEN);
  w.putU16At(start + 4, msg.type);
  w.putU16At(start + 6, msg.flags);
  w.putU32At(start + 8, msg.seq);
  w.putU32At(start + 12, msg.pid);
  w.putBytes(msg.payload);
  w.putU32At(start, w.length - start);
  w.pad();
  return w.toBytes();
}

/**
 * Walks the messages of received datagrams without an object per message (the dump path: 10,000 destinations
 * are 10,000 messages). `reset(datagram)` starts on a datagram, reusing its DataView while datagrams come from the
 * same receive buffer; each `next()` moves to the following message and sets `type`, `flags`, `seq` and the
 * payload's range [`start`, `end`) in `view` (offsets from the datagram's first byte). Throws NetlinkDecodeError on
 * an impossible length.
 */
export class MessageCursor {
  /** The current datagram, and a view of it (both with the same offsets). */
  bytes: Uint8Array = new Uint8Array(0);
  view: DataView = new DataView(new ArrayBuffer(0));
  type = 0;
  flags = 0;
  seq = 0;
  /** The payload of the current message (after the nlmsghdr). */
  start = 0;
  end = 0;
  #next = 0;

  reset(bytes: Uint8Array): void {
    if (bytes.buffer !== this.view.buffer || bytes.byteOffset !== this.view.byteOffset || bytes.length > this.view.byteLength) {
      this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.buffer.byteLength - bytes.byteOffset);
    }
    this.bytes = bytes;
    this.#next = 0;
  }

  /** Move to the next message; false at the end of the datagram. */
  next(): boolean {
    const off = this.#next;
    const total = this.bytes.length;
    if (off + NLMSG_HDRLEN > total) {
      if (off === 0 && total > 0) throw new NetlinkDecodeError(`datagram of ${total} bytes holds no complete message`);
      return false;
    }
    const view = this.view;
    const len = view.getUint32(off, HOST_LITTLE_ENDIAN);
    if (len < NLMSG_HDRLEN) throw new NetlinkDecodeError(`message at offset ${off} has length ${len} < ${NLMSG_HDRLEN}`);
    if (off + len > total) throw new NetlinkDecodeError(`message at offset ${off} runs past the end (${len} > ${total - off})`);
    this.type = view.getUint16(off + 4, HOST_LITTLE_ENDIAN);
    this.flags = view.getUint16(off + 6, HOST_LITTLE_ENDIAN);
    this.seq = view.getUint32(off + 8, HOST_LITTLE_ENDIAN);
    this.start = off + NLMSG_HDRLEN;
    this.end = off + len;
    this.#next = off + align4(len);
    return true;
  }

  /**
   * Whether the current message ends a dump, and how: null when it is neither NLMSG_DONE nor NLMSG_ERROR, else the
   * int both begin with (NLMSG_DONE's final status, NLMSG_ERROR's negative errno; 0 for a clean end or an ACK).
   */
  dumpEnd(): number | null {
    if (this.type !== NLMSG.DONE && this.type !== NLMSG.ERROR) return null;
    // Since Linux 4.x NLMSG_DONE carries the dump's final status; an older kernel's may be empty.
    return this.end - this.start >= 4 ? this.view.getInt32(this.start, HOST_LITTLE_ENDIAN) : 0;
  }

  /**
   * For an NLMSG_ERROR message: its errno (positive, 0 for an ACK) and the sequence number of the request it
   * answers, read in place. -1 for both when the message is too short to say.
   */
  errorErrno(): number {
    if (this.end - this.start < 4 + NLMSG_HDRLEN) return -1;
    const error = this.view.getInt32(this.start, HOST_LITTLE_ENDIAN);
    return error === 0 ? 0 : -error;
  }

  errorSeq(): number {
    if (this.end - this.start < 4 + NLMSG_HDRLEN) return -1;
    return this.view.getUint32(this.start + 4 + 8, HOST_LITTLE_ENDIAN);
  }

  /** The current message as an object (its payload a view into the datagram). */
  message(): NetlinkMessage {
    return {
      type: this.type,
      flags: this.flags,
      seq: this.seq,
      pid: this.view.getUint32(this.start - 4, HOST_LITTLE_ENDIAN),
      payload: this.bytes.subarray(this.start, this.end),
    };
  }
}

/** A decoded generic-netlink message body. */
export interface GenlMessage {
  readonly cmd: number;
  readonly version: number;
  readonly attrs: AttributeSet;
}

/** Decode the genlmsghdr and attributes of a message payload. */
export function decodeGenl(payload: Uint8Array): GenlMessage {
  if (payload.length < GENL_HDRLEN) throw new NetlinkDecodeError(`generic netlink payload of ${payload.length} bytes`);
  return {
    cmd: payload[0] ?? 0,
    version: payload[1] ?? 0,
    attrs: new AttributeSet(payload, undefined, GENL_HDRLEN),
  };
}

/** The body of an NLMSG_ERROR message: errno 0 is an acknowledgement. */
export interface NetlinkErrorBody {
  /** Positive errno, 0 for an ACK. */
  readonly errno: number;
  /** The header of the request this answers. */
  readonly request: { readonly len: number; readonly type: number; readonly flags: number; readonly seq: number; readonly pid: number };
  readonly extAck: ExtendedAck;
}

/** Decode an NLMSG_ERROR payload: struct nlmsgerr { int error; struct nlmsghdr msg; } [+ request payload] [+ TLVs]. */
export function decodeErrorBody(msg: NetlinkMessage): NetlinkErrorBody {
  const p = msg.payload;
  if (p.length < 4 + NLMSG_HDRLEN) throw new NetlinkDecodeError(`NLMSG_ERROR payload of ${p.length} bytes`);
  const view = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const error = view.getInt32(0, HOST_LITTLE_ENDIAN);
  // A negative errno or 0: anything else would come out as a negative errno nobody can name.
  if (error > 0) throw new NetlinkDecodeError(`NLMSG_ERROR with a positive error ${error}`);
  const request = {
    len: view.getUint32(4, HOST_LITTLE_ENDIAN),
    type: view.getUint16(8, HOST_LITTLE_ENDIAN),
    flags: view.getUint16(10, HOST_LITTLE_ENDIAN),
    seq: view.getUint32(12, HOST_LITTLE_ENDIAN),
    pid: view.getUint32(16, HOST_LITTLE_ENDIAN),
  };
  let extAck: ExtendedAck = {};
  if (msg.flags & NLM_F.ACK_TLVS) {
    // The echoed request is the header only when CAPPED, else the whole request.
    const echoed = msg.flags & NLM_F.CAPPED ? NLMSG_HDRLEN : Math.max(request.len, NLMSG_HDRLEN);
    // The echoed length is a u32 off the wire: bounded by the body before align4, whose 32-bit arithmetic wraps a
    // length past 2^31 to a negative offset (TLVs read from the start of the body).
    const tlvStart = echoed <= p.length ? 4 + align4(echoed) : p.length + 1;
    if (tlvStart <= p.length) extAck = decodeExtAck(p.subarray(tlvStart));
  }
  return { errno: error === 0 ? 0 : -error, request, extAck };
}

/**
 * The extended ack of an NLMSG_DONE that ends a dump with an error: the kernel (netlink_dump_done) puts the TLVs
 * right after the int status, flagged NLM_F_ACK_TLVS, when the dump set a message.
 */
export function decodeDoneExtAck(msg: NetlinkMessage): ExtendedAck {
  if ((msg.flags & NLM_F.ACK_TLVS) === 0 || msg.payload.length < 4) return {};
  return decodeExtAck(msg.payload.subarray(4));
}

/**
 * The extended-ack TLVs of an NLMSG_ERROR or NLMSG_DONE, or none when they do not decode (a length past the body, an offset of
 * fewer than 4 bytes). They only explain the errno, which is the answer: a request the kernel refused stays
 * refused with its errno (EEXIST still reads as "already there"), as iproute2's nl_dump_ext_ack ignores them too.
 */
function decodeExtAck(tlvs: Uint8Array): ExtendedAck {
  try {
    const set = new AttributeSet(tlvs);
    const message = set.string(NLMSGERR_ATTR.MSG);
    const offset = set.u32(NLMSGERR_ATTR.OFFS);
    return { ...(message !== undefined ? { message } : {}), ...(offset !== undefined ? { offset } : {}) };
  } catch (e) {
    if (e instanceof NetlinkDecodeError) return {};
    throw e;
  }
}
