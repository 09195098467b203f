/**
 * A minimal DNS message codec (RFC 1035) for health checks: one question out, a response in. Hand-written, no
 * dependency: encodeQuery builds the query bytes; decodeHead reads the header and the question, checkAnswers
 * checks the answer records without rendering any, recordText renders one record's data (A, AAAA, names, an SOA's
 * primary name server, TXT) as text for comparison. Compressed names (pointers) are followed with a bound, so a
 * hostile response cannot loop, and a name is at most MAX_NAME_OCTETS long however its pointers repeat labels, so
 * a response costs work in proportion to its size; any malformed message throws DnsFormatError. The steps let a
 * checker drop a response that is not the awaited one before its records are read (isResponseTo drops another id
 * before even that), and render only the records it compares: thousands of records checked cost no string.
 */
import { formatIpv6 } from "../../ipv6-text.ts";

/** DnsFormatError: the response is not a well-formed DNS message. */
export class DnsFormatError extends Error {
  override readonly name = "DnsFormatError";
}

/** One answer record, checked but not rendered (recordText renders its data). */
export interface DnsRecord {
  /** Where the record, its owner name first, starts in the message. */
  readonly at: number;
  readonly type: number;
  readonly ttl: number;
  /** Where its data starts in the message, and its length. */
  readonly dataAt: number;
  readonly dataLength: number;
}

/**
 * The longest name on the wire, its length octets and final zero included (RFC 1035 2.3.4). Without the bound,
 * pointers could repeat labels: one 64 KiB response made 37 MB of names and held the event loop for a second.
 */
const MAX_NAME_OCTETS = 255;

/** A response's header and first question, and where its answer records start (see decodeAnswers). */
export interface DnsHead {
  readonly id: number;
  readonly isResponse: boolean;
  readonly truncated: boolean;
  readonly rcode: number;
  /** How many questions the response repeats (QDCOUNT); an error response may repeat none. */
  readonly questions: number;
  readonly questionName: string;
  readonly questionType: number;
  /** ANCOUNT, and the offset of the first answer record. */
  readonly answerCount: number;
  readonly answersAt: number;
}

/** encodeQuery builds a standard query for `name` (no trailing dot) of type `qtype`, class IN. */
export function encodeQuery(id: number, name: string, qtype: number, recursion: boolean): Uint8Array {
  const labels = name === "" ? [] : name.split(".");
  let size = 12 + 1 + 4;
  for (const l of labels) size += 1 + l.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint16(0, id & 0xffff);
  view.setUint16(2, recursion ? 0x0100 : 0);
  view.setUint16(4, 1); // QDCOUNT
  let o = 12;
  for (const l of labels) {
    out[o++] = l.length;
    for (let i = 0; i < l.length; i++) out[o++] = l.charCodeAt(i);
  }
  out[o++] = 0;
  view.setUint16(o, qtype);
  view.setUint16(o + 2, 1); // IN
  return out;
}

/**
 * isResponseTo says whether `buf` starts with the header of a response (QR set) with this id, reading nothing else:
 * a datagram that is not the awaited answer costs a comparison.
 */
export function isResponseTo(buf: Uint8Array, id: number): boolean {
  return buf.length >= 12 && ((buf[0] as number) << 8 | (buf[1] as number)) === id && ((buf[2] as number) & 0x80) !== 0;
}

/**
 * decodeHead parses a response's header and question section (only the first question is read, the others
 * skipped); throws DnsFormatError when they are malformed.
 */
export function decodeHead(buf: Uint8Array): DnsHead {
  if (buf.length < 12) throw new DnsFormatError("shorter than a DNS header");
  const view = viewOf(buf);
  const id = view.getUint16(0);
  const flags = view.getUint16(2);
  const qd = view.getUint16(4);
  let o = 12;
  let questionName = "";
  let questionType = 0;
  for (let i = 0; i < qd; i++) {
    let next: number;
    if (i === 0) [questionName, next] = readName(buf, o);
    else next = skipName(buf, o);
    if (next + 4 > buf.length) throw new DnsFormatError("question runs past the end");
    if (i === 0) questionType = view.getUint16(next);
    o = next + 4;
  }
  return {
    id,
    isResponse: (flags & 0x8000) !== 0,
    truncated: (flags & 0x0200) !== 0,
    rcode: flags & 0x000f,
    questions: qd,
    questionName,
    questionType,
    answerCount: view.getUint16(6),
    answersAt: o,
  };
}

/**
 * checkAnswers checks the answer records of a response whose head decodeHead gave (their names and data, as
 * recordText would read them) without rendering any; throws DnsFormatError when one is malformed.
 */
export function checkAnswers(buf: Uint8Array, head: DnsHead): DnsRecord[] {
  const view = viewOf(buf);
  let o = head.answersAt;
  const records: DnsRecord[] = [];
  for (let i = 0; i < head.answerCount; i++) {
    const next = walkName(buf, o, null);
    if (next + 10 > buf.length) throw new DnsFormatError("answer runs past the end");
    const type = view.getUint16(next);
    const ttl = view.getUint32(next + 4);
    const len = view.getUint16(next + 8);
    const start = next + 10;
    if (start + len > buf.length) throw new DnsFormatError("record data runs past the end");
    const record = { at: o, type, ttl, dataAt: start, dataLength: len };
    readData(buf, record, null);
    records.push(record);
    o = start + len;
  }
  return records;
}

/** recordText renders a record checkAnswers gave: "192.0.2.1", "2001:db8::1" (canonical), "ns1.example.org", TXT text, or hex. */
export function recordText(buf: Uint8Array, record: DnsRecord): string {
  const parts: string[] = [];
  readData(buf, record, parts);
  return parts.join("");
}

function viewOf(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** skipName gives the offset after the name at `offset` without reading it (a pointer ends a name on the wire). */
function skipName(buf: Uint8Array, offset: number): number {
  for (let o = offset; o < buf.length; ) {
    const len = buf[o] as number;
    if (len === 0) return o + 1;
    if ((len & 0xc0) === 0xc0) {
      if (o + 1 >= buf.length) break;
      return o + 2;
    }
    if ((len & 0xc0) !== 0) throw new DnsFormatError("unknown label type");
    o += 1 + len;
  }
  throw new DnsFormatError("name runs past the end");
}

/**
 * readName reads a (possibly compressed) name at `offset`; returns it lower-cased without a trailing dot, and the
 * offset after it. A name longer than MAX_NAME_OCTETS is malformed.
 */
export function readName(buf: Uint8Array, offset: number): [string, number] {
  const labels: string[] = [];
  const next = walkName(buf, offset, labels);
  return [labels.join("."), next];
}

/**
 * walkName follows the name at `offset` to its end, checking it (pointers, length), and gives the offset after it
 * on the wire; its labels, lower-cased, go to `labels` unless that is null (then no string is built).
 */
function walkName(buf: Uint8Array, offset: number, labels: string[] | null): number {
  let octets = 1; // the final zero
  let o = offset;
  let after = -1;
  for (let jumps = 0; ; ) {
    if (o >= buf.length) throw new DnsFormatError("name runs past the end");
    const len = buf[o] as number;
    if (len === 0) {
      o++;
      break;
    }
    if ((len & 0xc0) === 0xc0) {
      if (o + 1 >= buf.length) throw new DnsFormatError("name pointer runs past the end");
      if (++jumps > 32) throw new DnsFormatError("name pointers loop");
      if (after < 0) after = o + 2;
      o = ((len & 0x3f) << 8) | (buf[o + 1] as number);
      continue;
    }
    if ((len & 0xc0) !== 0) throw new DnsFormatError("unknown label type");
    if (o + 1 + len > buf.length) throw new DnsFormatError("label runs past the end");
    octets += 1 + len;
    if (octets > MAX_NAME_OCTETS) throw new DnsFormatError("name too long");
    if (labels !== null) {
      let label = "";
      for (let i = 0; i < len; i++) label += String.fromCharCode(buf[o + 1 + i] as number);
      labels.push(label.toLowerCase());
    }
    o += 1 + len;
  }
  return after < 0 ? o : after;
}

/** One decoder for every TXT record. */
const UTF8 = new TextDecoder();

/**
 * readData checks a record's data, and renders it into `out` unless that is null (then no string is built): one
 * reader for both, so a record checked is one recordText can render.
 */
function readData(buf: Uint8Array, { type, dataAt: start, dataLength: len }: DnsRecord, out: string[] | null): void {
  switch (type) {
    case 1: // A
      if (len !== 4) throw new DnsFormatError("A record is not 4 bytes");
      out?.push(`${buf[start]}.${buf[start + 1]}.${buf[start + 2]}.${buf[start + 3]}`);
      return;
    case 28: // AAAA
      if (len !== 16) throw new DnsFormatError("AAAA record is not 16 bytes");
      out?.push(formatIpv6(buf, start));
      return;
    case 2: // NS
    case 5: // CNAME
    case 6: // SOA: its primary name server (MNAME) first
    case 12: // PTR
      return readDataName(buf, start, out);
    case 15: // MX: preference, exchange
      return readDataName(buf, start + 2, out);
    case 33: // SRV: priority, weight, port, target
      return readDataName(buf, start + 6, out);
    case 16: {
      // TXT: one or more <len><text> strings, joined (their bytes, decoded once)
      const text = out === null ? null : new Uint8Array(len);
      let size = 0;
      for (let o = start; o < start + len; ) {
        const n = buf[o] as number;
        if (o + 1 + n > start + len) throw new DnsFormatError("TXT string runs past the record");
        text?.set(buf.subarray(o + 1, o + 1 + n), size);
        size += n;
        o += 1 + n;
      }
      if (text !== null) out?.push(UTF8.decode(text.subarray(0, size)));
      return;
    }
    default:
      out?.push(Buffer.from(buf.subarray(start, start + len)).toString("hex"));
  }
}

/** readDataName checks the name at `offset` in a record's data, and renders it into `out` unless that is null. */
function readDataName(buf: Uint8Array, offset: number, out: string[] | null): void {
  const labels = out === null ? null : [];
  walkName(buf, offset, labels);
  if (out !== null && labels !== null) out.push(labels.join("."));
}

/** canonicalIpv6 renders an IPv6 address in its canonical compressed form (RFC 5952), or returns the input when it is not one. */
export function canonicalIpv6(text: string): string {
  try {
    return new URL(`http://[${text}]/`).hostname.slice(1, -1);
  } catch {
    return text;
  }
}
