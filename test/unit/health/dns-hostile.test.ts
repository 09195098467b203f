/**
 * A dns backend that tries to hurt the checker: names whose compression pointers repeat labels (each name of a
 * 64 KiB response read as 7,700 characters: 37 MB and a second of the event loop per response), floods of
 * responses with another id, a huge but well-formed response. A name is at most 255 octets (RFC 1035), a response
 * with another id is dropped before it is read, and the event loop keeps running meanwhile. Of a huge well-formed
 * response (64 KiB: thousands of AAAA or TXT records, 10 to 60 ms of rendering each), only what the check compares
 * is rendered: nothing without `answer`, the records of the asked type until one is the answer with it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, spyOn, test } from "bun:test";
import { dnsChecker } from "../../../src/health/checkers/dns.ts";
import * as codec from "../../../src/health/checkers/dns-codec.ts";
import { decodeHead, readName } from "../../../src/health/checkers/dns-codec.ts";
import { type DnsProbe, parsePulseOptions } from "../../../src/health/options.ts";

const live = () => new AbortController().signal;

/** `n` labels of `len` bytes of `fill`, as on the wire (no final zero). */
function labels(n: number, len: number, fill: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(len, ...new Array<number>(len).fill(fill));
  return out;
}

/** A DNS header: a response (QR) with this id and rcode, `qd` questions and `an` answers. */
function header(id: number, rcode: number, qd: number, an: number): number[] {
  return [id >> 8, id & 0xff, 0x84, rcode, 0, qd, an >> 8, an & 0xff, 0, 0, 0, 0];
}

/**
 * A 64 KiB response of id `id`, no question, NOERROR, whose names are chains of 30 pointers, each over four
 * 63-byte labels: 121 labels, 7,743 characters read per name, from 2 bytes on the wire. The first record holds the
 * chain in its data; the others (about 4,700) are named by the chain's last link.
 */
function pointerBomb(id: number): Uint8Array {
  const region: number[] = [];
  const regionAt = 12 + 1 + 10; // header, the first record's root name and fixed fields
  const links: number[] = [regionAt];
  region.push(...labels(1, 63, 0x61), 0);
  for (let k = 0; k < 30; k++) {
    const prev = links.at(-1) as number;
    links.push(regionAt + region.length);
    region.push(...labels(4, 63, 0x62), 0xc0 | (prev >> 8), prev & 0xff);
  }
  const top = links.at(-1) as number;
  const records: number[] = [0, 0, 99, 0, 1, 0, 0, 0, 0, region.length >> 8, region.length & 0xff, ...region];
  let an = 1;
  while (12 + records.length + 12 < 65_000) {
    records.push(0xc0 | (top >> 8), top & 0xff, 0, 99, 0, 1, 0, 0, 0, 0, 0, 0);
    an++;
  }
  return Uint8Array.from([...header(id, 0, 0, an), ...records]);
}

describe("dns codec: names", () => {
  test("a name is at most 255 octets on the wire, also when a pointer continues it", () => {
    // 63 a's, then a pointer to 63 b's, 63 c's and a last label: 64 + 64 + 64 + (1 + last) + 1 octets.
    const name = (last: number) => Uint8Array.from([...labels(1, 63, 0x61), 0xc0, 68, 0, 0, ...labels(2, 63, 0x62), ...labels(1, last, 0x64), 0]);
    const [text, next] = readName(name(61), 0);
    expect(text.length).toBe(63 * 3 + 61 + 3);
    expect(next).toBe(66);
    expect(() => readName(name(62), 0)).toThrow("name too long");
  });

  test("a question name of four 63-byte labels (257 octets) is malformed", () => {
    expect(() => decodeHead(Uint8Array.from([...header(1, 0, 1, 0), ...labels(4, 63, 0x61), 0, 0, 1, 0, 1]))).toThrow("name too long");
  });
});

describe("dns checker against a hostile server", () => {
  /** What the server sends for each query: datagrams made from the query's id, one after the other. */
  let reply: (id: number) => Uint8Array[] = () => [];
  let server: { readonly port: number; close(): void };
  beforeAll(async () => {
    server = await Bun.udpSocket({
      hostname: "127.0.0.1",
      socket: {
        data(s, data, port, addr) {
          for (const d of reply(decodeHead(data).id)) s.send(d, port, addr);
        },
      },
    });
  });
  afterAll(() => server.close());

  const probe = (args: Record<string, unknown> = {}): DnsProbe => {
    const o = parsePulseOptions({ type: "dns", args: { name: "ok.test", ...args } });
    if (o.type !== "dns") throw new Error("not dns");
    return o.dns;
  };
  /** The check, and the longest the event loop went without running a 5 ms timer meanwhile. */
  const check = async (args: Record<string, unknown> = {}) => {
    let last = performance.now();
    let maxGap = 0;
    const tick = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
    }, 5);
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(new Error("timed out after 5s")), 5_000);
    const r = await dnsChecker(probe(args)).check({ host: "127.0.0.1", port: server.port }, ctl.signal);
    clearTimeout(timer);
    clearInterval(tick);
    return { r, maxGap: Math.max(maxGap, performance.now() - last) };
  };
  const QUESTION = [2, 0x6f, 0x6b, 4, 0x74, 0x65, 0x73, 0x74, 0, 0, 1, 0, 1]; // ok.test A IN
  const answer = (id: number) => Uint8Array.from([...header(id, 0, 1, 1), ...QUESTION, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 7]);

  test("a response with another id is dropped unread: the event loop keeps running and the real answer decides", async () => {
    reply = (id) => [pointerBomb((id + 1) & 0xffff), answer(id)];
    const { r, maxGap } = await check();
    expect(r).toMatchObject({ ok: true, kind: "pass", code: "NOERROR" });
    expect(maxGap).toBeLessThan(500);
  });

  test("our own id with pointer-repeated names fails at once as malformed", async () => {
    reply = (id) => [pointerBomb(id)];
    const { r, maxGap } = await check();
    expect(r).toMatchObject({ ok: false, kind: "fail", code: "FORMERR" });
    expect(r.message).toEndWith("malformed response");
    expect(maxGap).toBeLessThan(500);
  });

  test("a huge well-formed response (64 KiB, thousands of records) is read: it passes with its answer count", async () => {
    reply = (id) => {
      const records: number[] = [];
      let an = 0;
      for (; 12 + QUESTION.length + records.length + 16 < 65_000; an++) records.push(0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, an >> 8, an & 0xff);
      return [Uint8Array.from([...header(id, 0, 1, an), ...QUESTION, ...records])];
    };
    const { r } = await check();
    expect(r).toMatchObject({ ok: true, code: "NOERROR" });
    expect(r.message).toMatch(/NOERROR, 40\d\d answers$/);
  });

  describe("only what the check compares is rendered", () => {
    afterEach(() => {
      reply = () => [];
    });
    /** ok.test of type `qtype`, IN, as a question on the wire. */
    const question = (qtype: number) => [...QUESTION.slice(0, -4), 0, qtype, 0, 1];
    /** A 64 KiB NOERROR response to `qtype`: `record(i)` (data, of type `type`) until it is full, then `last`. */
    const huge = (id: number, qtype: number, type: number, record: (i: number) => number[], last: number[] = []) => {
      const records: number[] = [];
      let an = 0;
      for (; 12 + 13 + records.length + 300 + last.length < 65_000; an++) {
        const data = record(an);
        records.push(0xc0, 12, 0, type, 0, 1, 0, 0, 0, 60, data.length >> 8, data.length & 0xff, ...data);
      }
      return Uint8Array.from([...header(id, 0, 1, an + (last.length > 0 ? 1 : 0)), ...question(qtype), ...records, ...last]);
    };
    const aaaa = (i: number) => [0x20, 1, 0x0d, 0xb8, ...new Array<number>(10).fill(0), i >> 8, i & 0xff];
    const txt = () => [...new Array<number>(127).fill(0), 1, 0x78]; // 127 empty strings and "x"
    const AAAA = 28;
    const TXT = 16;

    test("without answer no record is rendered; its TXT strings are not even decoded", async () => {
      const rendered = spyOn(codec, "recordText");
      const decoded = spyOn(TextDecoder.prototype, "decode");
      reply = (id) => [huge(id, TXT, TXT, txt)];
      const { r } = await check({ qtype: "TXT" });
      expect(r.message).toMatch(/NOERROR, \d{3} answers$/);
      reply = (id) => [huge(id, AAAA, AAAA, aaaa)];
      expect((await check({ qtype: "AAAA" })).r.message).toMatch(/NOERROR, 2\d{3} answers$/);
      expect(rendered).toHaveBeenCalledTimes(0);
      expect(decoded).toHaveBeenCalledTimes(0);
      rendered.mockRestore();
      decoded.mockRestore();
    });

    test("with answer, records of the asked type are rendered until one is it, others never", async () => {
      const rendered = spyOn(codec, "recordText");
      // The third AAAA is the answer: three rendered of thousands.
      reply = (id) => [huge(id, AAAA, AAAA, aaaa)];
      expect((await check({ qtype: "AAAA", answer: "2001:db8::2" })).r).toMatchObject({ ok: true, code: "NOERROR" });
      expect(rendered).toHaveBeenCalledTimes(3);
      // Thousands of TXT records, then the A asked for: only the A is rendered.
      rendered.mockClear();
      reply = (id) => [huge(id, 1, TXT, txt, [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 7])];
      expect((await check({ answer: "10.0.0.7" })).r).toMatchObject({ ok: true, code: "NOERROR" });
      expect(rendered).toHaveBeenCalledTimes(1);
      rendered.mockRestore();
    });

    test("another rcode fails by it: the records are not read (a malformed one among them goes unseen)", async () => {
      const read = spyOn(codec, "checkAnswers");
      reply = (id) => {
        const r = huge(id, 1, TXT, txt).subarray(0, -1); // the last record runs past the end
        r[3] = 2; // SERVFAIL
        return [r];
      };
      expect((await check()).r).toMatchObject({ ok: false, kind: "fail", code: "SERVFAIL" });
      expect(read).toHaveBeenCalledTimes(0);
      read.mockRestore();
    });
  });
});
