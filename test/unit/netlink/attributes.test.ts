import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { AttributeSet, ByteWriter, align4, splitAttributes } from "../../../src/netlink/attributes.ts";
import { NetlinkDecodeError } from "../../../src/netlink/errors.ts";
import { hex, toHex } from "../../helpers/hex.ts";

describe("attribute encoding: golden bytes", () => {
  const rows: [string, (w: ByteWriter) => void, Uint8Array][] = [
    ["u8 pads to 4", (w) => w.u8(13, 2), hex`05 00 0d 00 | 02 00 00 00`],
    ["u16 host order", (w) => w.u16(1, 10), hex`06 00 01 00 | 0a 00 00 00`],
    ["u16be network order (ports)", (w) => w.u16be(4, 80), hex`06 00 04 00 | 00 50 00 00`],
    ["u32 host order", (w) => w.u32(8, 300), hex`08 00 08 00 | 2c 01 00 00`],
    ["u32be network order (IPv4 netmask)", (w) => w.u32be(9, 0xffffff00), hex`08 00 09 00 | ff ff ff 00`],
    ["u64", (w) => w.u64(4, 0x0102030405060708n), hex`0c 00 04 00 | 08 07 06 05 04 03 02 01`],
    ["string gets a NUL and padding", (w) => w.string(6, "rr"), hex`07 00 06 00 | 72 72 00 00`],
    ["empty string is just the NUL", (w) => w.string(6, ""), hex`05 00 06 00 | 00 00 00 00`],
    ["4-byte string needs a full pad word", (w) => w.string(6, "wrrr"), hex`09 00 06 00 | 77 72 72 72 00 00 00 00`],
    ["raw bytes, IPv4 address", (w) => w.attr(3, Uint8Array.of(10, 0, 0, 1)), hex`08 00 03 00 | 0a 00 00 01`],
    ["empty payload (flag attribute)", (w) => w.attr(7, new Uint8Array(0)), hex`04 00 07 00`],
    [
      "nested sets NLA_F_NESTED and covers its children",
      (w) => w.nested(1, (n) => n.u16(1, 2).u32(5, 7)),
      hex`14 00 01 80 | 06 00 01 00 02 00 00 00 | 08 00 05 00 07 00 00 00`,
    ],
    ["empty nest", (w) => w.nested(2, () => {}), hex`04 00 02 80`],
    [
      "nest in a nest",
      (w) => w.nested(1, (n) => n.nested(10, (m) => m.u8(1, 1))),
      hex`10 00 01 80 | 0c 00 0a 80 | 05 00 01 00 01 00 00 00`,
    ],
  ];
  for (const [name, write, want] of rows) {
    test(name, () => {
      const w = new ByteWriter(4);
      write(w);
      expect(toHex(w.toBytes())).toBe(toHex(want));
    });
  }
});

describe("attribute decoding", () => {
  test("typed getters read what the writer wrote", () => {
    const w = new ByteWriter();
    w.u8(1, 200).u16(2, 65535).u16be(3, 8080).u32(4, 0xdeadbeef).u32be(5, 0xffff0000).u64(6, 2n ** 63n).string(7, "IPVS");
    const a = new AttributeSet(w.toBytes());
    expect(a.u8(1)).toBe(200);
    expect(a.u16(2)).toBe(65535);
    expect(a.u16be(3)).toBe(8080);
    expect(a.u32(4)).toBe(0xdeadbeef);
    expect(a.u32be(5)).toBe(0xffff0000);
    expect(a.u64(6)).toBe(2n ** 63n);
    expect(a.string(7)).toBe("IPVS");
    expect(a.u32(99)).toBeUndefined();
  });

  test("the last of repeated attributes wins, as in nla_parse", () => {
    const w = new ByteWriter();
    w.u32(1, 1).u32(1, 2);
    expect(new AttributeSet(w.toBytes()).u32(1)).toBe(2);
  });

  test("a payload shorter than its type is an error naming the attribute", () => {
    expect(() => new AttributeSet(hex`06 00 04 00 01 00 00 00`).u32(4)).toThrow("attribute 4: expected 4 bytes, got 2");
  });

  test("a length running past the end is rejected", () => {
    expect(() => splitAttributes(hex`10 00 01 00 00 00 00 00`)).toThrow(NetlinkDecodeError);
  });

  test("a length below the header size is rejected", () => {
    expect(() => splitAttributes(hex`02 00 01 00`)).toThrow("length 2 < 4");
  });

  test("trailing bytes shorter than a header are ignored (kernel nla_for_each_attr does the same)", () => {
    expect(splitAttributes(hex`05 00 01 00 07 00 00 00 00 00`).length).toBe(1);
  });

  test("a string without a NUL is read to its end", () => {
    expect(new AttributeSet(hex`06 00 01 00 61 62 00 00`).string(1)).toBe("ab");
  });

  test("flags bits are stripped from the type and nesting reported", () => {
    const [a] = splitAttributes(hex`04 00 02 80`);
    expect(a).toEqual({ type: 2, nested: true, payload: new Uint8Array(0) });
  });
});

describe("attribute round trip (property)", () => {
  type Attr =
    | { kind: "u8"; type: number; v: number }
    | { kind: "u16"; type: number; v: number }
    | { kind: "u16be"; type: number; v: number }
    | { kind: "u32"; type: number; v: number }
    | { kind: "u64"; type: number; v: bigint }
    | { kind: "str"; type: number; v: string }
    | { kind: "bytes"; type: number; v: Uint8Array };
  const type = fc.integer({ min: 1, max: 0x3fff });
  const attr: fc.Arbitrary<Attr> = fc.oneof(
    fc.record({ kind: fc.constant("u8" as const), type, v: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant("u16" as const), type, v: fc.integer({ min: 0, max: 0xffff }) }),
    fc.record({ kind: fc.constant("u16be" as const), type, v: fc.integer({ min: 0, max: 0xffff }) }),
    fc.record({ kind: fc.constant("u32" as const), type, v: fc.integer({ min: 0, max: 0xffffffff }) }),
    fc.record({ kind: fc.constant("u64" as const), type, v: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) }),
    fc.record({ kind: fc.constant("str" as const), type, v: fc.string({ maxLength: 40 }).filter((s) => !s.includes("\0")) }),
    fc.record({ kind: fc.constant("bytes" as const), type, v: fc.uint8Array({ maxLength: 64 }) }),
  );

  test("split(encode(attrs)) gives back every attribute in order, each aligned", () => {
    fc.assert(
      fc.property(fc.array(attr, { maxLength: 20 }), (attrs) => {
        const w = new ByteWriter(1);
        for (const a of attrs) {
          if (a.kind === "u8") w.u8(a.type, a.v);
          else if (a.kind === "u16") w.u16(a.type, a.v);
          else if (a.kind === "u16be") w.u16be(a.type, a.v);
          else if (a.kind === "u32") w.u32(a.type, a.v);
          else if (a.kind === "u64") w.u64(a.type, a.v);
          else if (a.kind === "str") w.string(a.type, a.v);
          else w.attr(a.type, a.v);
        }
        const bytes = w.toBytes();
        expect(bytes.length % 4).toBe(0);
        const back = splitAttributes(bytes);
        expect(back.length).toBe(attrs.length);
        back.forEach((raw, i) => {
          const a = attrs[i]!;
          expect(raw.type).toBe(a.type);
          const one = new ByteWriter();
          one.attr(raw.type, raw.payload);
          const set = new AttributeSet(one.toBytes());
          if (a.kind === "u8") expect(set.u8(a.type)).toBe(a.v);
          else if (a.kind === "u16") expect(set.u16(a.type)).toBe(a.v);
          else if (a.kind === "u16be") expect(set.u16be(a.type)).toBe(a.v);
          else if (a.kind === "u32") expect(set.u32(a.type)).toBe(a.v);
          else if (a.kind === "u64") expect(set.u64(a.type)).toBe(a.v);
          else if (a.kind === "str") expect(set.string(a.type)).toBe(a.v);
          else expect(Array.from(raw.payload)).toEqual(Array.from(a.v));
        });
      }),
      { numRuns: 300 },
    );
  });

  test("align4 rounds up to the next multiple of 4", () => {
    fc.assert(fc.property(fc.nat(1 << 20), (n) => align4(n) >= n && align4(n) - n < 4 && align4(n) % 4 === 0));
  });
});
