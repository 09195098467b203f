/**
 * The kernel's extended acknowledgement (NLMSGERR_ATTR_MSG) end to end: golden bytes as the kernel sends them
 * (an NLMSG_ERROR with NLM_F_CAPPED | NLM_F_ACK_TLVS, EINVAL, the echoed request header, one MSG TLV) decode
 * in the codec, travel through the transport as NetlinkError.extAck and reach the IPVS driver's IpvsError as
 * `kernelMessage`, with the NetlinkError as `cause` and the attribute the error concerns as `field`.
 * The fake socket stands in for the kernel (the host has no IPVS).
 */
import { describe, expect, test } from "bun:test";
import { ERRNO } from "../../../src/errno.ts";
import { IpvsError } from "../../../src/ipvs/errors.ts";
import { KernelIpvsDriver } from "../../../src/ipvs/kernel-driver.ts";
import { NO_FLAGS, type DestinationConfig, type ServiceConfig } from "../../../src/ipvs/types.ts";
import { NLMSG, NLM_F } from "../../../src/netlink/constants.ts";
import { NetlinkError } from "../../../src/netlink/errors.ts";
import { decodeErrorBody, type NetlinkMessage } from "../../../src/netlink/message.ts";
import { decodeMessages } from "../../helpers/netlink-messages.ts";
import { NetlinkConnection } from "../../../src/transport/connection.ts";
import { TransportTimeoutError, type DatagramSocket } from "../../../src/transport/datagram-socket.ts";
import { hex } from "../../helpers/hex.ts";

/** NLMSG_ERROR, EINVAL, capped echo of a request (seq 7), then NLMSGERR_ATTR_MSG. 76 bytes. */
const GOLDEN = hex`
  4c 00 00 00  02 00  00 03  07 00 00 00  00 00 00 00
  ea ff ff ff
  2c 00 00 00  1c 00  05 00  07 00 00 00  00 00 00 00
  27 00 01 00  41 74 74 72 69 62 75 74 65 20 66 61 69 6c 65 64 20 70 6f 6c 69 63 79 20 76 61 6c 69 64 61 74 69 6f 6e 00 00
`;
const TEXT = "Attribute failed policy validation";

/** GOLDEN answering request `req`: its sequence number patched in (header and echo). */
function goldenFor(req: NetlinkMessage): Uint8Array {
  const bytes = GOLDEN.slice();
  const view = new DataView(bytes.buffer);
  view.setUint32(8, req.seq, true);
  view.setUint32(28, req.seq, true);
  return bytes;
}

/** A kernel that answers every request with GOLDEN. */
class ExtAckKernel implements DatagramSocket {
  readonly queue: Uint8Array[] = [];
  send(bytes: Uint8Array): void {
    for (const m of decodeMessages(bytes)) this.queue.push(goldenFor(m));
  }
  receive(): readonly Uint8Array[] {
    const next = this.queue.shift();
    if (next === undefined) throw new TransportTimeoutError("nothing queued");
    return [next];
  }
  close(): void {}
}

const key = { family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 } as const;
const service: ServiceConfig = { key, scheduler: "wrr", flags: NO_FLAGS, timeout: 0, netmask: 32, pe: null };
const dest: DestinationConfig = {
  family: "inet",
  address: "10.1.0.1",
  port: 80,
  forward: "nat",
  weight: 1,
  upperThreshold: 0,
  lowerThreshold: 0,
  tunnel: null,
};

describe("extended ack", () => {
  test("the codec decodes the golden NLMSG_ERROR: errno, echoed header, message", () => {
    const [msg] = decodeMessages(GOLDEN);
    expect(msg?.type).toBe(NLMSG.ERROR);
    expect(msg?.flags).toBe(NLM_F.CAPPED | NLM_F.ACK_TLVS);
    const body = decodeErrorBody(msg as NetlinkMessage);
    expect([body.errno, body.request.seq, body.request.len, body.extAck]).toEqual([ERRNO.EINVAL, 7, 44, { message: TEXT }]);
  });

  test("the transport's NetlinkError carries it, in a request and in a batch", async () => {
    const conn = new NetlinkConnection(() => new ExtAckKernel());
    const error = await conn.request({ type: 0x1c, flags: 0, header: Uint8Array.of(1, 1, 0, 0) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NetlinkError);
    expect([(error as NetlinkError).errno, (error as NetlinkError).extAck.message]).toEqual([ERRNO.EINVAL, TEXT]);
    const [outcome] = await conn.batch([{ type: 0x1c, flags: 0, header: Uint8Array.of(1, 1, 0, 0) }]);
    expect(outcome?.error?.extAck.message).toBe(TEXT);
  });

  test("the driver's IpvsError keeps the kernel's text, the NetlinkError as cause, and the attribute as field", async () => {
    const driver = new KernelIpvsDriver({ familyId: 0x1c, openSocket: () => new ExtAckKernel() });
    const error = await driver.addDestination(key, dest).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IpvsError);
    const e = error as IpvsError;
    expect([e.op, e.code, e.field, e.kernelMessage]).toEqual(["add-destination", "EINVAL", "address", TEXT]);
    expect(e.cause).toBeInstanceOf(NetlinkError);
    expect(e.message).toBe(
      `destination 10.1.0.1:80 in service tcp 10.0.0.1:80: the address is not a unicast or local address the kernel can route (kernel: ${TEXT})`,
    );
    const [batched] = await driver.apply([{ op: "add-service", service }]);
    expect(batched).toBeInstanceOf(IpvsError);
    expect((batched as IpvsError).kernelMessage).toBe(TEXT);
    driver.close();
  });
});
