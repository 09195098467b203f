import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { AttributeSet, ByteWriter } from "../../../src/netlink/attributes.ts";
import { NetlinkDecodeError } from "../../../src/netlink/errors.ts";
import { encodeGenlMessage } from "../../../src/netlink/message.ts";
import { bytesToAddress } from "../../../src/ipvs/address.ts";
import { decodeDestinationAt } from "../../../src/ipvs/dump-decode.ts";
import {
  decodeInfo,
  decodeService,
  writeDestinationConfig,
  writeDestinationKey,
  writeServiceConfig,
  writeServiceKey,
} from "../../../src/ipvs/codec.ts";
import { IPVS_CMD, IPVS_SVC_ATTR, IPVS_STATS_ATTR, IPVS_CMD_ATTR } from "../../../src/ipvs/constants.ts";
import { NO_FLAGS, type DestinationConfig, type ServiceConfig } from "../../../src/ipvs/types.ts";
import { hex, toHex } from "../../helpers/hex.ts";

const web: ServiceConfig = {
  key: { family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 },
  scheduler: "rr",
  flags: NO_FLAGS,
  timeout: 0,
  netmask: 32,
  pe: null,
};

describe("IPVS requests: golden bytes", () => {
  test("NEW_SERVICE tcp 10.0.0.1:80 rr (the protocol reference's worked example, with our flag mask)", () => {
    const bytes = encodeGenlMessage({ family: 0x24, cmd: IPVS_CMD.NEW_SERVICE, version: 1, flags: 5, seq: 1, attrs: (w) => writeServiceConfig(w, web) });
    expect(toHex(bytes)).toBe(
      toHex(hex`
        5c 00 00 00 24 00 05 00 01 00 00 00 00 00 00 00  # nlmsghdr len 92, REQUEST|ACK, seq 1
        01 01 00 00                                      # NEW_SERVICE, version 1
        48 00 01 80                                      # CMD_ATTR_SERVICE, nested, 72 bytes
        06 00 01 00 02 00 00 00                          # AF_INET
        06 00 02 00 06 00 00 00                          # IPPROTO_TCP
        08 00 03 00 0a 00 00 01                          # 10.0.0.1 (4 bytes)
        06 00 04 00 00 50 00 00                          # port 80, big-endian
        07 00 06 00 72 72 00 00                          # "rr"
        0c 00 07 00 00 00 00 00 fd ff ff ff              # flags 0, mask ~HASHED
        08 00 08 00 00 00 00 00                          # timeout 0
        08 00 09 00 ff ff ff ff                          # netmask 255.255.255.255
      `),
    );
  });

  test("IPv6 persistent service: prefix length as a host-order u32, PE name, persistent flag", () => {
    const w = new ByteWriter();
    writeServiceConfig(w, {
      key: { family: "inet6", protocol: "udp", address: "2001:db8::1", port: 5060 },
      scheduler: "sh",
      flags: { ...NO_FLAGS, persistent: true, sched1: true, sched2: true },
      timeout: 300,
      netmask: 64,
      pe: "sip",
    });
    const a = new AttributeSet(w.toBytes()).nested(IPVS_CMD_ATTR.SERVICE)!;
    expect(toHex(a.bytes(IPVS_SVC_ATTR.ADDR)!)).toBe("20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01");
    expect(toHex(a.bytes(IPVS_SVC_ATTR.NETMASK)!)).toBe("40 00 00 00");
    expect(a.string(IPVS_SVC_ATTR.PE_NAME)).toBe("sip");
    expect(toHex(a.bytes(IPVS_SVC_ATTR.FLAGS)!)).toBe("19 00 00 00 fd ff ff ff");
    expect(a.u16be(IPVS_SVC_ATTR.PORT)).toBe(5060);
  });

  test("fwmark identity carries AF and FWMARK only", () => {
    const w = new ByteWriter();
    writeServiceKey(w, { family: "inet6", fwmark: 7 });
    expect(toHex(w.toBytes())).toBe(toHex(hex`14 00 01 80 | 06 00 01 00 0a 00 00 00 | 08 00 05 00 07 00 00 00`));
  });

  test("NEW_DEST gue tunnel: TUN_TYPE u8, TUN_PORT big-endian, TUN_FLAGS", () => {
    const w = new ByteWriter();
    writeDestinationConfig(w, {
      family: "inet",
      address: "10.77.1.2",
      port: 80,
      forward: "tunnel",
      weight: 3,
      upperThreshold: 100,
      lowerThreshold: 10,
      tunnel: { type: "gue", port: 6080, checksum: "remcsum" },
    });
    expect(toHex(w.toBytes())).toBe(
      toHex(hex`
        54 00 02 80                      # CMD_ATTR_DEST nested, 84 bytes
        06 00 0b 00 02 00 00 00          # ADDR_FAMILY inet
        08 00 01 00 0a 4d 01 02          # 10.77.1.2
        06 00 02 00 00 50 00 00          # port 80 BE
        08 00 03 00 02 00 00 00          # FWD_METHOD tunnel
        08 00 04 00 03 00 00 00          # weight 3
        08 00 05 00 64 00 00 00          # upper 100
        08 00 06 00 0a 00 00 00          # lower 10
        05 00 0d 00 01 00 00 00          # TUN_TYPE gue
        06 00 0e 00 17 c0 00 00          # TUN_PORT 6080 BE
        06 00 0f 00 02 00 00 00          # TUN_FLAGS remcsum
      `),
    );
  });

  test("DEL_DEST identity: family, address, port", () => {
    const w = new ByteWriter();
    writeDestinationKey(w, { family: "inet6", address: "2001:db8:77:1::2", port: 443 });
    const a = new AttributeSet(w.toBytes()).nested(IPVS_CMD_ATTR.DEST)!;
    expect(a.u16(11)).toBe(10);
    expect(a.u16be(2)).toBe(443);
    expect(bytesToAddress(a.bytes(1)!, "inet6")).toBe("2001:db8:77:1::2");
  });
});

describe("IPVS replies", () => {
  test("a kernel-style service reply: 16-byte address, HASHED flag masked, STATS64 preferred over STATS", () => {
    const w = new ByteWriter();
    w.nested(IPVS_CMD_ATTR.SERVICE, (s) => {
      s.u16(1, 2).u16(2, 6);
      s.attr(3, Uint8Array.of(10, 0, 0, 1, ...new Array(12).fill(0)));
      s.u16be(4, 80).string(6, "wrr");
      s.attr(7, hex`03 00 00 00 ff ff ff ff`); // PERSISTENT|HASHED
      s.u32(8, 360).u32be(9, 0xffffff00);
      s.nested(IPVS_SVC_ATTR.STATS, (st) => st.u32(IPVS_STATS_ATTR.CONNS, 1));
      s.nested(IPVS_SVC_ATTR.STATS64, (st) => {
        st.u64(IPVS_STATS_ATTR.CONNS, 5_000_000_000n).u64(IPVS_STATS_ATTR.INBYTES, 77n);
        st.u64(IPVS_STATS_ATTR.PAD, 0n);
      });
    });
    const s = decodeService(new AttributeSet(w.toBytes()));
    expect(s.key).toEqual({ family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 });
    expect(s.flags).toEqual({ ...NO_FLAGS, persistent: true });
    expect(s.netmask).toBe(24);
    expect(s.timeout).toBe(360);
    expect(s.stats.conns).toBe(5_000_000_000);
    expect(s.stats.inBytes).toBe(77);
  });

  test("an address shorter than its family needs is a NetlinkDecodeError naming it (service and destination)", () => {
    const svc = new ByteWriter();
    svc.nested(IPVS_CMD_ATTR.SERVICE, (s) => {
      s.u16(1, 10).u16(2, 6); // AF_INET6, tcp
      s.attr(3, Uint8Array.of(10, 0, 0, 1)); // 4 bytes for inet6
      s.u16be(4, 80).string(6, "wrr").attr(7, new Uint8Array(8));
    });
    expect(() => decodeService(new AttributeSet(svc.toBytes()))).toThrow(new NetlinkDecodeError("service address of 4 bytes for inet6 (needs 16)"));
    for (const [family, addr] of [["inet", Uint8Array.of(10, 0)], ["inet6", Uint8Array.of(10, 0, 0, 1)]] as const) {
      const w = new ByteWriter();
      w.putBytes(Uint8Array.of(IPVS_CMD.NEW_DEST, 1, 0, 0));
      w.nested(IPVS_CMD_ATTR.DEST, (d) => d.attr(1, addr).u16be(2, 80).u32(3, 0).u32(4, 1)); // no ADDR_FAMILY: the service's
      const bytes = w.toBytes();
      expect(() => decodeDestinationAt(new DataView(bytes.buffer), 0, bytes.length, family)).toThrow(
        new NetlinkDecodeError(`destination address of ${addr.length} bytes for ${family} (needs ${family === "inet" ? 4 : 16})`),
      );
    }
  });

  test("GET_INFO reply: version code rendered as text", () => {
    const w = new ByteWriter();
    w.u32(1, 0x010201).u32(2, 4096);
    expect(decodeInfo(new AttributeSet(w.toBytes()))).toEqual({ version: "1.2.1", versionCode: 0x010201, connTableSize: 4096 });
  });
});

describe("IPVS codec round trip (property)", () => {
  const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((t) => t.join("."));
  const v6 = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => bytesToAddress(b, "inet6"));
  const flags = fc.record({ persistent: fc.boolean(), onePacket: fc.boolean(), sched1: fc.boolean(), sched2: fc.boolean(), sched3: fc.boolean() });
  const service: fc.Arbitrary<ServiceConfig> = fc.oneof(
    fc.record({
      key: fc.oneof(
        fc.record({ family: fc.constant("inet" as const), protocol: fc.constantFrom("tcp" as const, "udp" as const, "sctp" as const), address: v4, port: fc.nat(65535) }),
        fc.record({ family: fc.constant("inet" as const), fwmark: fc.integer({ min: 1, max: 0xffffffff }) }),
      ),
      scheduler: fc.constantFrom("rr", "wrr", "sh", "mh"),
      flags,
      timeout: fc.nat(0xffffffff),
      netmask: fc.integer({ min: 0, max: 32 }),
      pe: fc.constantFrom(null, "sip"),
    }),
    fc.record({
      key: fc.oneof(
        fc.record({ family: fc.constant("inet6" as const), protocol: fc.constantFrom("tcp" as const, "udp" as const), address: v6, port: fc.nat(65535) }),
        fc.record({ family: fc.constant("inet6" as const), fwmark: fc.integer({ min: 1, max: 0xffffffff }) }),
      ),
      scheduler: fc.constantFrom("rr", "lc"),
      flags,
      timeout: fc.nat(100000),
      netmask: fc.integer({ min: 1, max: 128 }),
      pe: fc.constant(null),
    }),
  );

  test("decodeService(encode(s)) == s", () => {
    fc.assert(
      fc.property(service, (s) => {
        const w = new ByteWriter();
        writeServiceConfig(w, s);
        const { stats, ...back } = decodeService(new AttributeSet(w.toBytes()));
        expect(back).toEqual(s);
        expect(stats.conns).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  const dest: fc.Arbitrary<DestinationConfig> = fc
    .record({
      family: fc.constantFrom("inet" as const, "inet6" as const),
      a4: v4,
      a6: v6,
      port: fc.nat(65535),
      forward: fc.constantFrom("nat" as const, "dr" as const, "tunnel" as const, "local" as const),
      weight: fc.integer({ min: 0, max: 0x7fffffff }),
      upperThreshold: fc.nat(0xffffffff),
      lowerThreshold: fc.nat(0xffffffff),
      tunnel: fc.record({ type: fc.constantFrom("ipip" as const, "gue" as const, "gre" as const), port: fc.nat(65535), checksum: fc.constantFrom("nocsum" as const, "csum" as const, "remcsum" as const) }),
    })
    .map(({ a4, a6, tunnel, ...d }) => ({ ...d, address: d.family === "inet" ? a4 : a6, tunnel: d.forward === "tunnel" ? tunnel : null }));

  test("decodeDestinationAt(encode(d)) == d", () => {
    fc.assert(
      fc.property(dest, (d) => {
        const w = new ByteWriter();
        w.putBytes(Uint8Array.of(IPVS_CMD.NEW_DEST, 1, 0, 0)); // genlmsghdr
        writeDestinationConfig(w, d);
        const bytes = w.toBytes();
        const { stats, activeConns, inactiveConns, persistentConns, ...back } = decodeDestinationAt(new DataView(bytes.buffer), 0, bytes.length, d.family);
        expect(back).toEqual(d);
        expect([activeConns, inactiveConns, persistentConns, stats.conns]).toEqual([0, 0, 0, 0]);
      }),
      { numRuns: 300 },
    );
  });
});
