/**
 * InterfaceAddresses.list against a stand-in rtnetlink that answers RTM_GETADDR with the bytes given: what it
 * decodes from an address dump, and what it refuses. (netif.test.ts reads the host's real one.)
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { bytesToAddress } from "../../src/ipvs/address.ts";
import { ByteWriter, HOST_LITTLE_ENDIAN } from "../../src/netlink/attributes.ts";
import { NLMSG, NLM_F } from "../../src/netlink/constants.ts";
import { NetlinkDecodeError, NetlinkError } from "../../src/netlink/errors.ts";
import { encodeMessage } from "../../src/netlink/message.ts";
import { InterfaceAddresses, interfaceIndex } from "../../src/netif/interface-addresses.ts";
import { type DatagramSocket, TransportTimeoutError } from "../../src/transport/datagram-socket.ts";
import { decodeMessages } from "../helpers/netlink-messages.ts";

const RTM_NEWADDR = 20;
const IFA_LOCAL = 2;

/** One RTM_NEWADDR: ifaddrmsg (family, prefix, index of lo) then IFA_LOCAL. */
interface Addr {
  readonly family: number;
  readonly prefix: number;
  readonly local: Uint8Array;
  readonly flags?: number;
}

/** Answers each dump request with one datagram: one RTM_NEWADDR per entry of `dumps[n]` for the n-th dump, then DONE. */
class FakeRtnetlink implements DatagramSocket {
  readonly queue: Uint8Array[] = [];
  dumps = 0;
  constructor(private readonly answers: readonly (readonly Addr[])[]) {}
  send(bytes: Uint8Array): void {
    for (const req of decodeMessages(bytes)) {
      const addrs = this.answers[Math.min(this.dumps++, this.answers.length - 1)] ?? [];
      const parts = addrs.map((a) => {
        const w = new ByteWriter();
        const h = w.reserve(8);
        w.putU8At(h, a.family);
        w.putU8At(h + 1, a.prefix);
        w.putU32At(h + 4, interfaceIndex("lo"));
        w.attr(IFA_LOCAL, a.local);
        return encodeMessage({ type: RTM_NEWADDR, flags: NLM_F.MULTI | (a.flags ?? 0), seq: req.seq, pid: 0, payload: w.toBytes() });
      });
      const status = new Uint8Array(4);
      new DataView(status.buffer).setInt32(0, 0, HOST_LITTLE_ENDIAN);
      parts.push(encodeMessage({ type: NLMSG.DONE, flags: NLM_F.MULTI, seq: req.seq, pid: 0, payload: status }));
      this.queue.push(new Uint8Array(parts.flatMap((p) => [...p])));
    }
  }
  receive(): readonly Uint8Array[] {
    const next = this.queue.shift();
    if (next === undefined) throw new TransportTimeoutError("nothing queued");
    return [next];
  }
  close(): void {}
}

const AF_INET = 2;
const AF_INET6 = 10;
const v6 = Uint8Array.of(0x20, 0x01, 0x0d, 0xb8, ...new Array<number>(11).fill(0), 1);

describe("interface addresses from an rtnetlink dump", () => {
  test("IPv4 and IPv6 addresses of the interface", async () => {
    const ifs = new InterfaceAddresses(() => new FakeRtnetlink([[{ family: AF_INET, prefix: 8, local: Uint8Array.of(127, 0, 0, 1) }, { family: AF_INET6, prefix: 64, local: v6 }]]));
    expect(await ifs.list("lo")).toEqual([
      { family: "inet", address: "127.0.0.1", prefixLength: 8 },
      { family: "inet6", address: "2001:db8::1", prefixLength: 64 },
    ]);
  });

  test("an address whose length is not its family's (4 for AF_INET, 16 for AF_INET6) is a NetlinkDecodeError", async () => {
    for (const bad of [
      { family: AF_INET, prefix: 8, local: v6 }, // read as 32.1.13.184 before
      { family: AF_INET6, prefix: 64, local: Uint8Array.of(127, 0, 0, 1) }, // a TypeError before
    ]) {
      const ifs = new InterfaceAddresses(() => new FakeRtnetlink([[bad]]));
      expect(await ifs.list("lo").catch((e: unknown) => e)).toBeInstanceOf(NetlinkDecodeError);
    }
  });

  test("a dump the kernel flags interrupted (NLM_F_DUMP_INTR) is run again; after 3 such dumps its EINTR is the answer", async () => {
    const old = { family: AF_INET, prefix: 8, local: Uint8Array.of(10, 0, 0, 1), flags: NLM_F.DUMP_INTR };
    const now = { family: AF_INET, prefix: 8, local: Uint8Array.of(10, 0, 0, 2) };
    const once = new FakeRtnetlink([[old], [now]]);
    expect(await new InterfaceAddresses(() => once).list("lo")).toEqual([{ family: "inet", address: "10.0.0.2", prefixLength: 8 }]);
    expect(once.dumps).toBe(2);
    const always = new FakeRtnetlink([[old]]);
    const err = await new InterfaceAddresses(() => always).list("lo").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetlinkError);
    expect([(err as NetlinkError).errno, always.dumps]).toEqual([4, 3]); // EINTR
  });

  test("any family and address length: the right length decodes, a wrong one is a NetlinkDecodeError, another family is skipped (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ family: fc.constantFrom(AF_INET, AF_INET6, 0, 7), prefix: fc.nat(255), local: fc.uint8Array({ maxLength: 20 }) }), { maxLength: 4 }),
        async (addrs) => {
          const ifs = new InterfaceAddresses(() => new FakeRtnetlink([addrs]));
          const known = addrs.filter((a) => a.family === AF_INET || a.family === AF_INET6);
          const valid = known.every((a) => a.local.length === (a.family === AF_INET ? 4 : 16));
          const got = await ifs.list("lo").catch((e: unknown) => e);
          if (!valid) return expect(got).toBeInstanceOf(NetlinkDecodeError);
          expect(got).toEqual(known.map((a) => ({ family: a.family === AF_INET ? "inet" : "inet6", address: bytesToAddress(a.local, a.family === AF_INET ? "inet" : "inet6"), prefixLength: a.prefix })));
        },
      ),
      { numRuns: 200 },
    );
  });
});
