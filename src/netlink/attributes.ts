/**
 * Netlink attributes (struct nlattr): a growable writer and a bounds-checked reader.
 * Layout: u16 nla_len (header + payload, unpadded) | u16 nla_type | payload | pad to 4 bytes.
 * Integers are in host byte order except where a name says "be" (network order).
 */
import { NLA_F_NESTED, NLA_HDRLEN, NLA_TYPE_MASK } from "./constants.ts";
import { NetlinkDecodeError } from "./errors.ts";

/** NLA_ALIGN / NLMSG_ALIGN: round up to a multiple of 4. */
export function align4(n: number): number {
  return (n + 3) & ~3;
}

/** True on little-endian hosts; netlink integers are in host order. */
export const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Appends attributes to a growable buffer. Offsets are absolute within the writer, so a message
 * header can be written first and patched at the end (see message.ts).
 */
export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  private len = 0;

  constructor(initialCapacity = 256) {
    const memory = new ArrayBuffer(initialCapacity);
    this.buf = new Uint8Array(memory);
    this.view = new DataView(memory);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.len;
  }

  /** Start over (the capacity is kept). */
  reset(): void {
    this.len = 0;
  }

  /** The bytes written so far, as a view valid until the next write or reset. */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }

  /** A copy of the bytes written so far. */
  toBytes(): Uint8Array {
    return this.buf.slice(0, this.len);
  }

  /** Reserve n zeroed bytes and return their offset. */
  reserve(n: number): number {
    this.ensure(n);
    const at = this.len;
    this.buf.fill(0, at, at + n);
    this.len += n;
    return at;
  }

  /** Zero bytes up to the next multiple of 4. */
  pad(): void {
    const target = align4(this.len);
    if (target > this.len) this.reserve(target - this.len);
  }

  putU8At(at: number, v: number): void {
    this.view.setUint8(at, v);
  }
  putU16At(at: number, v: number): void {
    this.view.setUint16(at, v, HOST_LITTLE_ENDIAN);
  }
  putU32At(at: number, v: number): void {
    this.view.setUint32(at, v >>> 0, HOST_LITTLE_ENDIAN);
  }

  /** Append raw bytes (no padding). */
  putBytes(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.len);
    this.len += bytes.length;
  }

  /** Append one attribute with the given payload, padded. */
  attr(type: number, payload: Uint8Array): this {
    if (NLA_HDRLEN + payload.length > 0xffff) throw new RangeError(`attribute ${type} too long: ${payload.length} bytes`);
    const at = this.reserve(NLA_HDRLEN);
    this.putU16At(at, NLA_HDRLEN + payload.length);
    this.putU16At(at + 2, type);
    this.putBytes(payload);
    this.pad();
    return this;
  }

  /** Reserve a padded attribute with an n-byte payload, zeroed, header written; returns the payload's offset. */
  private fixed(type: number, n: number): number {
    const at = this.reserve(align4(NLA_HDRLEN + n));
    this.view.setUint16(at, NLA_HDRLEN + n, HOST_LITTLE_ENDIAN);
    this.view.setUint16(at + 2, type, HOST_LITTLE_ENDIAN);
    return at + NLA_HDRLEN;
  }

  u8(type: number, v: number): this {
    const at = this.fixed(type, 1);
    this.view.setUint8(at, v & 0xff);
    return this;
  }
  u16(type: number, v: number): this {
    const at = this.fixed(type, 2);
    this.view.setUint16(at, v, HOST_LITTLE_ENDIAN);
    return this;
  }
  /** A u16 in network byte order (IPVS ports). */
  u16be(type: number, v: number): this {
    const at = this.fixed(type, 2);
    this.view.setUint16(at, v & 0xffff, false);
    return this;
  }
  u32(type: number, v: number): this {
    const at = this.fixed(type, 4);
    this.view.setUint32(at, v >>> 0, HOST_LITTLE_ENDIAN);
    return this;
  }
  /** A u32 in network byte order (IPv4 netmask). */
  u32be(type: number, v: number): this {
    const at = this.fixed(type, 4);
    this.view.setUint32(at, v >>> 0, false);
    return this;
  }
  u64(type: number, v: bigint): this {
    const at = this.fixed(type, 8);
    this.view.setBigUint64(at, v, HOST_LITTLE_ENDIAN);
    return this;
  }
  /** A NUL-terminated string. */
  string(type: number, s: string): this {
    const text = new TextEncoder().encode(s);
    const b = new Uint8Array(text.length + 1);
    b.set(text);
    return this.attr(type, b);
  }
  /** A nested attribute (NLA_F_NESTED set, as libnl does); fill writes the children. */
  nested(type: number, fill: (w: this) => void): this {
    const at = this.reserve(NLA_HDRLEN);
    this.putU16At(at + 2, type | NLA_F_NESTED);
    fill(this);
    const len = this.len - at;
    if (len > 0xffff) throw new RangeError(`nested attribute ${type} too long: ${len} bytes`);
    this.putU16At(at, len);
    return this;
  }

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const memory = new ArrayBuffer(cap);
    const next = new Uint8Array(memory);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(memory);
  }
}

/** One decoded attribute: its type (flags stripped), whether it was marked nested, and its payload. */
export interface RawAttribute {
  readonly type: number;
  readonly nested: boolean;
  readonly payload: Uint8Array;
}

/** Split a buffer of attributes; throws NetlinkDecodeError on a length that runs past the end. */
export function splitAttributes(bytes: Uint8Array): RawAttribute[] {
  const out: RawAttribute[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let off = 0;
  while (off + NLA_HDRLEN <= bytes.length) {
    const len = view.getUint16(off, HOST_LITTLE_ENDIAN);
    const rawType = view.getUint16(off + 2, HOST_LITTLE_ENDIAN);
    if (len < NLA_HDRLEN) throw new NetlinkDecodeError(`attribute at offset ${off} has length ${len} < 4`);
    if (off + len > bytes.length)
      throw new NetlinkDecodeError(`attribute ${rawType & NLA_TYPE_MASK} at offset ${off} runs past the end (${len} > ${bytes.length - off})`);
    out.push({
      type: rawType & NLA_TYPE_MASK,
      nested: (rawType & NLA_F_NESTED) !== 0,
      payload: bytes.subarray(off + NLA_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return out;
}

/**
 * The one-pass reader of the hot dump path: records the payload offset and length of every attribute in
 * [start, end) of `view` by type (flags stripped; the last one wins, as in nla_parse) into `offs` and `lens`,
 * which the caller owns and reuses: no object per attribute or per message. Absent types read -1; types beyond
 * the tables' length are skipped. Throws NetlinkDecodeError on a length that runs past `end`, as AttributeSet does.
 */
export function scanAttributes(view: DataView, start: number, end: number, offs: Int32Array, lens: Int32Array): void {
  offs.fill(-1);
  let off = start;
  while (off + NLA_HDRLEN <= end) {
    const len = view.getUint16(off, HOST_LITTLE_ENDIAN);
    const type = view.getUint16(off + 2, HOST_LITTLE_ENDIAN) & NLA_TYPE_MASK;
    if (len < NLA_HDRLEN) throw new NetlinkDecodeError(`attribute at offset ${off - start} has length ${len} < 4`);
    if (off + len > end) throw new NetlinkDecodeError(`attribute ${type} at offset ${off - start} runs past the end (${len} > ${end - off})`);
    if (type < offs.length) {
      offs[type] = off + NLA_HDRLEN;
      lens[type] = len - NLA_HDRLEN;
    }
    off += (len + 3) & ~3;
  }
}

/**
 * Attributes by type (the last one wins, as in the kernel's nla_parse), with typed getters that
 * check the payload length. Unknown types are kept and simply never asked for.
 *
 * NB: hot path (a dump of 10,000 destinations decodes ~60,000 of these). It keeps offsets into the
 * buffer it was given and one shared DataView, and makes no per-attribute views or copies.
 */
export class AttributeSet {
  private readonly buf: Uint8Array;
  private readonly view: DataView;
  /** Payload offset and length per attribute type (sparse arrays indexed by type). */
  private readonly offs: number[] = [];
  private readonly lens: number[] = [];

  constructor(bytes: Uint8Array, view?: DataView, start = 0, end = bytes.length) {
    this.buf = bytes;
    const dv = view ?? new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.view = dv;
    let off = start;
    while (off + NLA_HDRLEN <= end) {
      const len = dv.getUint16(off, HOST_LITTLE_ENDIAN);
      const type = dv.getUint16(off + 2, HOST_LITTLE_ENDIAN) & NLA_TYPE_MASK;
      if (len < NLA_HDRLEN) throw new NetlinkDecodeError(`attribute at offset ${off - start} has length ${len} < 4`);
      if (off + len > end) throw new NetlinkDecodeError(`attribute ${type} at offset ${off - start} runs past the end (${len} > ${end - off})`);
      this.offs[type] = off + NLA_HDRLEN;
      this.lens[type] = len - NLA_HDRLEN;
      off += (len + 3) & ~3;
    }
  }

  has(type: number): boolean {
    return this.offs[type] !== undefined;
  }

  /** The raw payload (a view, not a copy), or undefined when absent. */
  bytes(type: number): Uint8Array | undefined {
    const off = this.offs[type];
    if (off === undefined) return undefined;
    return this.buf.subarray(off, off + (this.lens[type] ?? 0));
  }

  /** Nested attributes, or undefined when absent. */
  nested(type: number): AttributeSet | undefined {
    const off = this.offs[type];
    if (off === undefined) return undefined;
    return new AttributeSet(this.buf, this.view, off, off + (this.lens[type] ?? 0));
  }

  u8(type: number): number | undefined {
    const off = this.at(type, 1);
    return off === undefined ? undefined : this.view.getUint8(off);
  }
  u16(type: number): number | undefined {
    const off = this.at(type, 2);
    return off === undefined ? undefined : this.view.getUint16(off, HOST_LITTLE_ENDIAN);
  }
  u16be(type: number): number | undefined {
    const off = this.at(type, 2);
    return off === undefined ? undefined : this.view.getUint16(off, false);
  }
  u32(type: number): number | undefined {
    const off = this.at(type, 4);
    return off === undefined ? undefined : this.view.getUint32(off, HOST_LITTLE_ENDIAN);
  }
  u32be(type: number): number | undefined {
    const off = this.at(type, 4);
    return off === undefined ? undefined : this.view.getUint32(off, false);
  }
  u64(type: number): bigint | undefined {
    const off = this.at(type, 8);
    return off === undefined ? undefined : this.view.getBigUint64(off, HOST_LITTLE_ENDIAN);
  }
  /** A u64 as a number (exact up to 2^53; counters). */
  u64n(type: number): number | undefined {
    const off = this.at(type, 8);
    if (off === undefined) return undefined;
    const lo = this.view.getUint32(off + (HOST_LITTLE_ENDIAN ? 0 : 4), HOST_LITTLE_ENDIAN);
    const hi = this.view.getUint32(off + (HOST_LITTLE_ENDIAN ? 4 : 0), HOST_LITTLE_ENDIAN);
    return hi * 0x100000000 + lo;
  }
  /** A string attribute, up to the first NUL (or the whole payload when there is none). */
  string(type: number): string | undefined {
    const b = this.bytes(type);
    if (b === undefined) return undefined;
    const nul = b.indexOf(0);
    return UTF8.decode(nul < 0 ? b : b.subarray(0, nul));
  }

  /** Offset of a payload at least n bytes long, undefined when absent. */
  private at(type: number, n: number): number | undefined {
    const off = this.offs[type];
    if (off === undefined) return undefined;
    const len = this.lens[type] ?? 0;
    if (len < n) throw new NetlinkDecodeError(`attribute ${type}: expected ${n} bytes, got ${len}`);
    return off;
  }
}

const UTF8 = new TextDecoder();
