/**
 * A stand-in for the kernel's side of IPVS dumps, for host benchmarks and tests (the host has no IPVS): a
 * DatagramSocket that answers GET_SERVICE and GET_DEST dump requests with the messages ip_vs_ctl.c sends, each
 * destination with every attribute the kernel puts in (address, port, forwarding, weight, thresholds, tunnel,
 * connection counts, STATS and STATS64 nests), packed into datagrams of up to 32 KiB as netlink_dump does.
 * Encoded with the codec's own writer and the netlink constants; nothing here is copied from the kernel.
 */
import { ByteWriter } from "../../src/netlink/attributes.ts";
import { NLMSG, NLM_F } from "../../src/netlink/constants.ts";
import { writeMessageAs } from "../../src/netlink/message.ts";
import { decodeMessages } from "./netlink-messages.ts";
import { addressToBytes } from "../../src/ipvs/address.ts";
import { familyNumber, flagsToBits, forwardNumber, protocolNumber, writeServiceKey } from "../../src/ipvs/codec.ts";
import { IPVS_CMD, IPVS_CMD_ATTR, IPVS_DEST_ATTR, IPVS_GENL_VERSION, IPVS_STATS_ATTR, IPVS_SVC_ATTR } from "../../src/ipvs/constants.ts";
import type { DatagramSocket } from "../../src/transport/datagram-socket.ts";
import { TransportTimeoutError } from "../../src/transport/datagram-socket.ts";
import { type Destination, type Service, type Stats, isFwmarkKey } from "../../src/ipvs/types.ts";

const DATAGRAM = 32 * 1024;

function writeStats(w: ByteWriter, type: number, s: Stats, wide: boolean): void {
  w.nested(type, (n) => {
    const values = [s.conns, s.inPkts, s.outPkts, s.inBytes, s.outBytes, s.cps, s.inPps, s.outPps, s.inBps, s.outBps];
    values.forEach((v, i) => {
      const attr = i + IPVS_STATS_ATTR.CONNS;
      // The legacy nest has 32-bit counters except the byte counts.
      if (wide || attr === IPVS_STATS_ATTR.INBYTES || attr === IPVS_STATS_ATTR.OUTBYTES) n.u64(attr, BigInt(v));
      else n.u32(attr, v);
    });
  });
}

/** The attributes of one NEW_SERVICE dump message. */
export function writeServiceDump(w: ByteWriter, s: Service): void {
  w.nested(IPVS_CMD_ATTR.SERVICE, (n) => {
    n.u16(IPVS_SVC_ATTR.AF, familyNumber(s.key.family));
    if (isFwmarkKey(s.key)) n.u32(IPVS_SVC_ATTR.FWMARK, s.key.fwmark);
    else {
      n.u16(IPVS_SVC_ATTR.PROTOCOL, protocolNumber(s.key.protocol));
      const addr = new Uint8Array(16);
      addr.set(addressToBytes(s.key.address));
      n.attr(IPVS_SVC_ATTR.ADDR, addr);
      n.u16be(IPVS_SVC_ATTR.PORT, s.key.port);
    }
    n.string(IPVS_SVC_ATTR.SCHED_NAME, s.scheduler);
    if (s.pe !== null) n.string(IPVS_SVC_ATTR.PE_NAME, s.pe);
    const flags = new Uint8Array(8);
    new DataView(flags.buffer).setUint32(0, flagsToBits(s.flags), true);
    new DataView(flags.buffer).setUint32(4, 0xffffffff, true);
    n.attr(IPVS_SVC_ATTR.FLAGS, flags);
    n.u32(IPVS_SVC_ATTR.TIMEOUT, s.timeout);
    if (s.key.family === "inet") n.u32be(IPVS_SVC_ATTR.NETMASK, s.netmask === 0 ? 0 : (0xffffffff << (32 - s.netmask)) >>> 0);
    else n.u32(IPVS_SVC_ATTR.NETMASK, s.netmask);
    writeStats(n, IPVS_SVC_ATTR.STATS, s.stats, false);
    writeStats(n, IPVS_SVC_ATTR.STATS64, s.stats, true);
  });
}

/** The attributes of one NEW_DEST dump message. */
export function writeDestinationDump(w: ByteWriter, d: Destination): void {
  w.nested(IPVS_CMD_ATTR.DEST, (n) => {
    const addr = new Uint8Array(16);
    addr.set(addressToBytes(d.address));
    n.attr(IPVS_DEST_ATTR.ADDR, addr);
    n.u16be(IPVS_DEST_ATTR.PORT, d.port);
    n.u32(IPVS_DEST_ATTR.FWD_METHOD, forwardNumber(d.forward));
    n.u32(IPVS_DEST_ATTR.WEIGHT, d.weight);
    n.u8(IPVS_DEST_ATTR.TUN_TYPE, d.tunnel === null ? 0 : d.tunnel.type === "ipip" ? 0 : d.tunnel.type === "gue" ? 1 : 2);
    n.u16be(IPVS_DEST_ATTR.TUN_PORT, d.tunnel?.port ?? 0);
    n.u16(IPVS_DEST_ATTR.TUN_FLAGS, 0);
    n.u32(IPVS_DEST_ATTR.U_THRESH, d.upperThreshold);
    n.u32(IPVS_DEST_ATTR.L_THRESH, d.lowerThreshold);
    n.u32(IPVS_DEST_ATTR.ACTIVE_CONNS, d.activeConns);
    n.u32(IPVS_DEST_ATTR.INACT_CONNS, d.inactiveConns);
    n.u32(IPVS_DEST_ATTR.PERSIST_CONNS, d.persistentConns);
    n.u16(IPVS_DEST_ATTR.ADDR_FAMILY, familyNumber(d.family));
    writeStats(n, IPVS_DEST_ATTR.STATS, d.stats, false);
    writeStats(n, IPVS_DEST_ATTR.STATS64, d.stats, true);
  });
}

/** The table the fake kernel serves. */
export interface DumpTable {
  readonly services: readonly { readonly service: Service; readonly destinations: readonly Destination[] }[];
}

/** The bytes of the service nest a destination dump request carries, as the key of the service's replies. */
function serviceIdentity(s: Service): string {
  const w = new ByteWriter(64);
  writeServiceKey(w, s.key);
  return w.toBytes().join(",");
}

/**
 * Answers dumps of `table` as the kernel would: each reply message in as few datagrams of up to 32 KiB as it
 * takes, NLMSG_DONE (with status 0) after the last. A destination dump's service is looked up by the bytes
 * of its key attributes as gorb writes them (a missing one answers an empty dump, as the kernel does). Other requests are not served.
 */
export class IpvsDumpKernel implements DatagramSocket {
  readonly #family: number;
  /** The datagrams of each dump, built once (the sequence numbers are patched in at each request). */
  readonly #services: Uint8Array[];
  readonly #dests = new Map<string, Uint8Array[]>();
  readonly #queue: { readonly bytes: Uint8Array; readonly seq: number }[] = [];
  readonly #buf = new Uint8Array(256 * 1024);
  readonly #view = new DataView(this.#buf.buffer);
  /** Datagrams handed out, for the benchmark's arithmetic. */
  received = 0;

  constructor(family: number, table: DumpTable) {
    this.#family = family;
    this.#services = this.#datagrams(table.services.map((e) => this.#body((w) => writeServiceDump(w, e.service), IPVS_CMD.NEW_SERVICE)));
    for (const e of table.services) {
      const bodies = e.destinations.map((d) => this.#body((w) => writeDestinationDump(w, d), IPVS_CMD.NEW_DEST));
      this.#dests.set(serviceIdentity(e.service), this.#datagrams(bodies));
    }
  }

  #body(fill: (w: ByteWriter) => void, cmd: number): Uint8Array {
    const w = new ByteWriter(512);
    w.putBytes(Uint8Array.of(cmd, IPVS_GENL_VERSION, 0, 0));
    fill(w);
    return w.toBytes();
  }

  /** The messages of one dump packed into datagrams, NLMSG_DONE (status 0) after the last. */
  #datagrams(bodies: readonly Uint8Array[]): Uint8Array[] {
    const out: Uint8Array[] = [];
    let w = new ByteWriter(DATAGRAM);
    const flush = () => {
      out.push(w.toBytes());
      w = new ByteWriter(DATAGRAM);
    };
    for (const body of bodies) {
      if (w.length > 0 && w.length + 16 + body.length > DATAGRAM) flush();
      writeMessageAs(w, { type: this.#family, header: body }, NLM_F.MULTI, 0);
    }
    if (w.length + 20 > DATAGRAM) flush();
    writeMessageAs(w, { type: NLMSG.DONE, header: new Uint8Array(4) }, NLM_F.MULTI, 0);
    flush();
    return out;
  }

  send(bytes: Uint8Array): void {
    for (const m of decodeMessages(bytes)) {
      if (m.type !== this.#family || (m.flags & NLM_F.DUMP) !== NLM_F.DUMP) throw new Error(`the dump kernel serves dumps only (type ${m.type})`);
      const cmd = m.payload[0];
      let datagrams: readonly Uint8Array[];
      if (cmd === IPVS_CMD.GET_SERVICE) datagrams = this.#services;
      else if (cmd === IPVS_CMD.GET_DEST) datagrams = this.#dests.get(m.payload.subarray(4).join(",")) ?? this.#datagrams([]);
      else throw new Error(`the dump kernel does not serve command ${cmd}`);
      for (const d of datagrams) this.#queue.push({ bytes: d, seq: m.seq });
    }
  }

  /** One datagram per receive (a socket whose limit is one), copied into one reused buffer, a view of it returned. */
  receive(): readonly Uint8Array[] {
    const next = this.#queue.shift();
    if (next === undefined) throw new TransportTimeoutError("nothing queued");
    this.received++;
    const d = next.bytes;
    this.#buf.set(d);
    const view = this.#view;
    for (let off = 0; off + 16 <= d.length; off += (view.getUint32(off, true) + 3) & ~3) view.setUint32(off + 8, next.seq, true);
    return [this.#buf.subarray(0, d.length)];
  }

  close(): void {}
}
