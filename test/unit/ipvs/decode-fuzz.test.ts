/**
 * The IPVS reply decoders (decodeService, decodeDestinationAt, decodeServiceAt) fed what a hostile or broken peer
 * could send: messages the codec wrote, with bytes flipped and the end cut. Each decode ends with a value or a
 * NetlinkDecodeError, never another exception (a TypeError, a RangeError from a DataView).
 */
import { describe, test } from "bun:test";
import fc from "fast-check";
import { AttributeSet, ByteWriter } from "../../../src/netlink/attributes.ts";
import { NetlinkDecodeError } from "../../../src/netlink/errors.ts";
import { writeDestinationConfig, writeServiceConfig, decodeService } from "../../../src/ipvs/codec.ts";
import { IPVS_CMD } from "../../../src/ipvs/constants.ts";
import { decodeDestinationAt, decodeServiceAt } from "../../../src/ipvs/dump-decode.ts";
import { NO_FLAGS, type DestinationConfig, type ServiceConfig } from "../../../src/ipvs/types.ts";

function decodesOrRejects(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof NetlinkDecodeError)) throw e;
  }
}

const services: ServiceConfig[] = [
  { key: { family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 }, scheduler: "wrr", flags: NO_FLAGS, timeout: 0, netmask: 32, pe: null },
  { key: { family: "inet6", protocol: "udp", address: "2001:db8::1", port: 53 }, scheduler: "sh", flags: NO_FLAGS, timeout: 300, netmask: 64, pe: "sip" },
  { key: { family: "inet", fwmark: 7 }, scheduler: "rr", flags: NO_FLAGS, timeout: 0, netmask: 24, pe: null },
];
const dests: DestinationConfig[] = [
  { family: "inet", address: "10.1.0.1", port: 8080, forward: "nat", weight: 1, upperThreshold: 0, lowerThreshold: 0, tunnel: null },
  { family: "inet6", address: "2001:db8::10", port: 443, forward: "dr", weight: 5, upperThreshold: 9, lowerThreshold: 1, tunnel: null },
  { family: "inet", address: "10.4.0.1", port: 0, forward: "tunnel", weight: 2, upperThreshold: 0, lowerThreshold: 0, tunnel: { type: "gue", port: 5555, checksum: "csum" } },
];

/** A genl payload (genlmsghdr and attributes) of one of the messages above. */
const message = fc.oneof(
  fc.constantFrom(...services).map((s) => {
    const w = new ByteWriter();
    w.putBytes(Uint8Array.of(IPVS_CMD.NEW_SERVICE, 1, 0, 0));
    writeServiceConfig(w, s);
    return w.toBytes();
  }),
  fc.constantFrom(...dests).map((d) => {
    const w = new ByteWriter();
    w.putBytes(Uint8Array.of(IPVS_CMD.NEW_DEST, 1, 0, 0));
    writeDestinationConfig(w, d);
    return w.toBytes();
  }),
);

const mutated = fc.tuple(message, fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 3 }), fc.nat(8)).map(([bytes, edits, cut]) => {
  const b = bytes.slice();
  for (const [at, v] of edits) b[at % b.length] = v;
  return b.subarray(0, Math.max(0, b.length - (cut < 6 ? 0 : cut * 4)));
});

describe("IPVS decoders on hostile bytes", () => {
  test("a flipped or cut service or destination message decodes or is a NetlinkDecodeError", () => {
    fc.assert(
      fc.property(mutated, fc.constantFrom("inet" as const, "inet6" as const), (bytes, family) => {
        const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        decodesOrRejects(() => decodeDestinationAt(view, 0, bytes.length, family));
        decodesOrRejects(() => decodeServiceAt(view, 0, bytes.length));
        decodesOrRejects(() => decodeService(new AttributeSet(bytes.subarray(Math.min(4, bytes.length)))));
      }),
      { numRuns: 800 },
    );
  });
});
