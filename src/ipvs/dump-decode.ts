/**
 * The one-pass decoder of the big dumps: a destination (or service) message read straight from the receive
 * buffer, its attribute offsets recorded in tables this module owns and reuses (netlink/attributes.ts
 * scanAttributes), so a dump of 10,000 destinations makes the result objects and nothing per attribute or per
 * message. A service message (one per service) goes through codec.ts's decodeService on the shared view.
 */
import { AttributeSet, HOST_LITTLE_ENDIAN, scanAttributes } from "../netlink/attributes.ts";
import { GENL_HDRLEN } from "../netlink/constants.ts";
import { NetlinkDecodeError } from "../netlink/errors.ts";
import { addressFromReply, decodeService, familyFromNumber, forwardFromNumber, tunnelFromAttributes } from "./codec.ts";
import { IPVS_CMD_ATTR, IPVS_DEST_ATTR, IPVS_STATS_ATTR } from "./constants.ts";
import { type Destination, type Family, type Service, type Stats, ZERO_STATS } from "./types.ts";

// Offset/length tables, reused by every call (JavaScript runs one decode at a time).
const TOP_OFFS = new Int32Array(IPVS_CMD_ATTR.DEST + 1);
const TOP_LENS = new Int32Array(IPVS_CMD_ATTR.DEST + 1);
const DEST_OFFS = new Int32Array(IPVS_DEST_ATTR.TUN_FLAGS + 1);
const DEST_LENS = new Int32Array(IPVS_DEST_ATTR.TUN_FLAGS + 1);
const STATS_OFFS = new Int32Array(IPVS_STATS_ATTR.OUTBPS + 1);
const STATS_LENS = new Int32Array(IPVS_STATS_ATTR.OUTBPS + 1);

/** Offset of attribute `type`'s payload, checked to hold n bytes; -1 when absent. */
function at(offs: Int32Array, lens: Int32Array, type: number, n: number): number {
  const off = offs[type] ?? -1;
  if (off < 0) return -1;
  const len = lens[type] ?? 0;
  if (len < n) throw new NetlinkDecodeError(`attribute ${type}: expected ${n} bytes, got ${len}`);
  return off;
}

function u32(view: DataView, offs: Int32Array, lens: Int32Array, type: number, otherwise: number): number {
  const off = at(offs, lens, type, 4);
  return off < 0 ? otherwise : view.getUint32(off, HOST_LITTLE_ENDIAN);
}

function u64n(view: DataView, offs: Int32Array, lens: Int32Array, type: number): number {
  const off = at(offs, lens, type, 8);
  if (off < 0) return 0;
  const lo = view.getUint32(off + (HOST_LITTLE_ENDIAN ? 0 : 4), HOST_LITTLE_ENDIAN);
  const hi = view.getUint32(off + (HOST_LITTLE_ENDIAN ? 4 : 0), HOST_LITTLE_ENDIAN);
  return hi * 0x100000000 + lo;
}

function missing(what: string): never {
  throw new NetlinkDecodeError(`missing ${what}`);
}

/** Stats from the STATS64 nest at [off, off+len) (every counter a u64), or the legacy STATS nest (u32 but bytes). */
function statsAt(view: DataView, off: number, len: number, wide: boolean): Stats {
  scanAttributes(view, off, off + len, STATS_OFFS, STATS_LENS);
  const o = STATS_OFFS;
  const l = STATS_LENS;
  if (wide) {
    return {
      conns: u64n(view, o, l, IPVS_STATS_ATTR.CONNS),
      inPkts: u64n(view, o, l, IPVS_STATS_ATTR.INPKTS),
      outPkts: u64n(view, o, l, IPVS_STATS_ATTR.OUTPKTS),
      inBytes: u64n(view, o, l, IPVS_STATS_ATTR.INBYTES),
      outBytes: u64n(view, o, l, IPVS_STATS_ATTR.OUTBYTES),
      cps: u64n(view, o, l, IPVS_STATS_ATTR.CPS),
      inPps: u64n(view, o, l, IPVS_STATS_ATTR.INPPS),
      outPps: u64n(view, o, l, IPVS_STATS_ATTR.OUTPPS),
      inBps: u64n(view, o, l, IPVS_STATS_ATTR.INBPS),
      outBps: u64n(view, o, l, IPVS_STATS_ATTR.OUTBPS),
    };
  }
  return {
    conns: u32(view, o, l, IPVS_STATS_ATTR.CONNS, 0),
    inPkts: u32(view, o, l, IPVS_STATS_ATTR.INPKTS, 0),
    outPkts: u32(view, o, l, IPVS_STATS_ATTR.OUTPKTS, 0),
    inBytes: u64n(view, o, l, IPVS_STATS_ATTR.INBYTES),
    outBytes: u64n(view, o, l, IPVS_STATS_ATTR.OUTBYTES),
    cps: u32(view, o, l, IPVS_STATS_ATTR.CPS, 0),
    inPps: u32(view, o, l, IPVS_STATS_ATTR.INPPS, 0),
    outPps: u32(view, o, l, IPVS_STATS_ATTR.OUTPPS, 0),
    inBps: u32(view, o, l, IPVS_STATS_ATTR.INBPS, 0),
    outBps: u32(view, o, l, IPVS_STATS_ATTR.OUTBPS, 0),
  };
}

/** The bytes `view` covers, with the same offsets. */
function bytesOf(view: DataView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/** The range of the generic-netlink attributes of a message payload [start, end). */
function genlAttributes(start: number, end: number): number {
  if (end - start < GENL_HDRLEN) throw new NetlinkDecodeError(`generic netlink payload of ${end - start} bytes`);
  return start + GENL_HDRLEN;
}

/**
 * A Destination from a NEW_DEST dump message whose payload (genlmsghdr and attributes) is [start, end) of
 * `view`. `serviceFamily` is the family to assume when the kernel predates IPVS_DEST_ATTR_ADDR_FAMILY.
 */
export function decodeDestinationAt(view: DataView, start: number, end: number, serviceFamily: Family): Destination {
  scanAttributes(view, genlAttributes(start, end), end, TOP_OFFS, TOP_LENS);
  const nest = TOP_OFFS[IPVS_CMD_ATTR.DEST] ?? -1;
  if (nest < 0) missing("IPVS_CMD_ATTR_DEST");
  const o = DEST_OFFS;
  const l = DEST_LENS;
  const nestEnd = nest + (TOP_LENS[IPVS_CMD_ATTR.DEST] ?? 0);
  scanAttributes(view, nest, nestEnd, o, l);
  const afOff = at(o, l, IPVS_DEST_ATTR.ADDR_FAMILY, 2);
  const family = afOff < 0 ? serviceFamily : familyFromNumber(view.getUint16(afOff, HOST_LITTLE_ENDIAN));
  const fwdOff = at(o, l, IPVS_DEST_ATTR.FWD_METHOD, 4);
  if (fwdOff < 0) missing("destination forwarding method");
  const forward = forwardFromNumber(view.getUint32(fwdOff, HOST_LITTLE_ENDIAN));
  const tunnel = forward === "tunnel" && (o[IPVS_DEST_ATTR.TUN_TYPE] ?? -1) >= 0 ? tunnelFromAttributes(new AttributeSet(bytesOf(view), view, nest, nestEnd)) : null;
  const addrOff = o[IPVS_DEST_ATTR.ADDR] ?? -1;
  if (addrOff < 0) missing("destination address");
  const addrLen = l[IPVS_DEST_ATTR.ADDR] ?? 0;
  let address: string;
  if (family === "inet" && addrLen >= 4) {
    address = `${view.getUint8(addrOff)}.${view.getUint8(addrOff + 1)}.${view.getUint8(addrOff + 2)}.${view.getUint8(addrOff + 3)}`;
  } else {
    address = addressFromReply(bytesOf(view).subarray(addrOff, addrOff + addrLen), family, "destination address");
  }
  const portOff = at(o, l, IPVS_DEST_ATTR.PORT, 2);
  if (portOff < 0) missing("destination port");
  const weightOff = at(o, l, IPVS_DEST_ATTR.WEIGHT, 4);
  if (weightOff < 0) missing("destination weight");
  const destination = {
    family,
    address,
    port: view.getUint16(portOff, false),
    forward,
    weight: view.getUint32(weightOff, HOST_LITTLE_ENDIAN),
    upperThreshold: u32(view, o, l, IPVS_DEST_ATTR.U_THRESH, 0),
    lowerThreshold: u32(view, o, l, IPVS_DEST_ATTR.L_THRESH, 0),
    tunnel,
    activeConns: u32(view, o, l, IPVS_DEST_ATTR.ACTIVE_CONNS, 0),
    inactiveConns: u32(view, o, l, IPVS_DEST_ATTR.INACT_CONNS, 0),
    persistentConns: u32(view, o, l, IPVS_DEST_ATTR.PERSIST_CONNS, 0),
    stats: ZERO_STATS,
  };
  const s64 = o[IPVS_DEST_ATTR.STATS64] ?? -1;
  const s32 = o[IPVS_DEST_ATTR.STATS] ?? -1;
  if (s64 >= 0) destination.stats = statsAt(view, s64, l[IPVS_DEST_ATTR.STATS64] ?? 0, true);
  else if (s32 >= 0) destination.stats = statsAt(view, s32, l[IPVS_DEST_ATTR.STATS] ?? 0, false);
  return destination;
}

/** A Service from a NEW_SERVICE dump message whose payload is [start, end) of `view` (1 per service: the codec's reader). */
export function decodeServiceAt(view: DataView, start: number, end: number): Service {
  return decodeService(new AttributeSet(bytesOf(view), view, genlAttributes(start, end), end));
}
