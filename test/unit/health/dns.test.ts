import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { dnsChecker } from "../../../src/health/checkers/dns.ts";
import { checkAnswers, decodeHead, DnsFormatError, encodeQuery, readName, recordText } from "../../../src/health/checkers/dns-codec.ts";
import { type DnsProbe, parsePulseOptions } from "../../../src/health/options.ts";

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const live = () => new AbortController().signal;
/** A whole response: its head and its answers, rendered. */
const decodeResponse = (msg: Uint8Array) => {
  const head = decodeHead(msg);
  const answers = checkAnswers(msg, head).map((r) => ({ name: readName(msg, r.at)[0], type: r.type, ttl: r.ttl, data: recordText(msg, r) }));
  return { ...head, answers };
};

describe("dns codec (golden bytes)", () => {
  test("a query for example.org A, no recursion", () => {
    expect(Buffer.from(encodeQuery(0x1234, "example.org", 1, false)).toString("hex")).toBe(
      "1234 0000 0001 0000 0000 0000 07 6578616d706c65 03 6f7267 00 0001 0001".replace(/\s+/g, ""),
    );
  });

  test("recursion sets RD; AAAA is type 28; the root is one zero byte", () => {
    expect(Buffer.from(encodeQuery(0xbeef, "a.b", 28, true)).toString("hex")).toBe("beef010000010000000000000161016200001c0001");
    expect(Buffer.from(encodeQuery(1, "", 2, false)).toString("hex")).toBe("000100000001000000000000" + "00" + "00020001");
  });

  test("a response with a compressed answer name, an A and a CNAME record", () => {
    const msg = hex(`
      1234 8180 0001 0002 0000 0000
      07 6578616d706c65 03 6f7267 00 0001 0001
      c00c 0001 0001 0000012c 0004 c0000201
      c00c 0005 0001 0000003c 0006 03 777777 c00c`);
    const r = decodeResponse(msg);
    expect(r).toMatchObject({ id: 0x1234, isResponse: true, truncated: false, rcode: 0, questionName: "example.org", questionType: 1 });
    expect(r.answers).toEqual([
      { name: "example.org", type: 1, ttl: 300, data: "192.0.2.1" },
      { name: "example.org", type: 5, ttl: 60, data: "www.example.org" },
    ]);
  });

  test("AAAA is rendered in canonical compressed form; TXT strings are joined", () => {
    const msg = hex(`
      0001 8400 0001 0002 0000 0000
      01 78 00 001c 0001
      c00c 001c 0001 00000001 0010 20010db8000000000000000000000001
      c00c 0010 0001 00000001 0007 02 6869 03 796f75`);
    const r = decodeResponse(msg);
    expect(r.answers.map((a) => a.data)).toEqual(["2001:db8::1", "hiyou"]);
  });

  test("NXDOMAIN is rcode 3", () => {
    expect(decodeResponse(hex("0007 8183 0001 0000 0000 0000 01 78 00 0001 0001")).rcode).toBe(3);
  });

  test("malformed messages throw DnsFormatError: short header, pointer loop, record past the end", () => {
    expect(() => decodeResponse(hex("0001 8180"))).toThrow(DnsFormatError);
    expect(() => readName(hex("c000"), 0)).toThrow("name pointers loop");
    expect(() => decodeResponse(hex("0001 8180 0000 0001 0000 0000 00 0001 0001 00000001 0004 0a00"))).toThrow("record data runs past the end");
  });
});

describe("dns checker against a DNS server started here", () => {
  let server: { readonly port: number; close(): void };
  let queries = 0;
  /** A tiny authoritative server: ok.test A 10.0.0.7 and AAAA 2001:db8::7; anything else NXDOMAIN. A query for
   * noisy.test first gets a reply with a wrong id (which the checker must ignore), then the right one. */
  beforeAll(async () => {
    const handlers = {
        data(s: { send(d: Uint8Array, port: number, addr: string): boolean }, data: Uint8Array, port: number, addr: string) {
          queries++;
          const q = decodeHead(data); // a query's head parses like a response's
          const qEnd = 12 + data.subarray(12).indexOf(0) + 5;
          const question = data.subarray(12, qEnd);
          let rcode = 3;
          const answers: Uint8Array[] = [];
          if ((q.questionName === "ok.test" || q.questionName === "noisy.test") && q.questionType === 1) {
            rcode = 0;
            answers.push(hex("c00c 0001 0001 0000003c 0004 0a000007"));
          } else if (q.questionName === "ok.test" && q.questionType === 28) {
            rcode = 0;
            answers.push(hex("c00c 001c 0001 0000003c 0010 20010db8000000000000000000000007"));
          }
          const reply = (id: number) => {
            const header = new Uint8Array(12);
            const v = new DataView(header.buffer);
            v.setUint16(0, id);
            v.setUint16(2, 0x8400 | rcode);
            v.setUint16(4, 1);
            v.setUint16(6, answers.length);
            return Buffer.concat([header, question, ...answers]);
          };
          if (q.questionName === "refused.test") {
            // REFUSED without the question section (QDCOUNT 0), as some servers answer what they will not serve.
            const header = new Uint8Array(12);
            const v = new DataView(header.buffer);
            v.setUint16(0, q.id);
            v.setUint16(2, 0x8005);
            s.send(header, port, addr);
            return;
          }
          if (q.questionName === "noisy.test") s.send(reply((q.id + 1) & 0xffff), port, addr);
          s.send(reply(q.id), port, addr);
        },
    };
    server = await Bun.udpSocket({ hostname: "127.0.0.1", socket: handlers });
  });
  afterAll(() => server.close());

  const probe = (args: Record<string, unknown>): DnsProbe => {
    const o = parsePulseOptions({ type: "dns", args });
    if (o.type !== "dns") throw new Error("not dns");
    return o.dns;
  };
  const at = () => ({ host: "127.0.0.1", port: server.port });

  test("NOERROR passes; the message names the question and the answer count, not the data", async () => {
    const r = await dnsChecker(probe({ name: "ok.test" })).check(at(), live());
    expect(r).toMatchObject({ ok: true, kind: "pass", code: "NOERROR", message: `dns 127.0.0.1:${server.port} A ok.test: NOERROR, 1 answers` });
  });

  test("an expected answer must be among the records (AAAA compared in canonical form)", async () => {
    expect((await dnsChecker(probe({ name: "ok.test", answer: "10.0.0.7" })).check(at(), live())).ok).toBe(true);
    const wrong = await dnsChecker(probe({ name: "ok.test", answer: "10.0.0.8" })).check(at(), live());
    expect(wrong).toMatchObject({ ok: false, code: "ANSWER_MISMATCH" });
    expect(wrong.message).not.toContain("10.0.0.7");
    const v6 = await dnsChecker(probe({ name: "ok.test", qtype: "AAAA", answer: "2001:0db8:0:0::0007" })).check(at(), live());
    expect(v6.ok).toBe(true);
  });

  test("a different rcode fails; NXDOMAIN can be the expected one", async () => {
    const r = await dnsChecker(probe({ name: "missing.test" })).check(at(), live());
    expect(r).toMatchObject({ ok: false, kind: "fail", code: "NXDOMAIN" });
    expect(r.message).toBe(`dns 127.0.0.1:${server.port} A missing.test: NXDOMAIN, expected NOERROR`);
    expect((await dnsChecker(probe({ name: "missing.test", rcode: "NXDOMAIN" })).check(at(), live())).ok).toBe(true);
  });

  test("an error answer without the question section is taken by its id: it fails at once, or passes as the expected rcode", async () => {
    const r = await dnsChecker(probe({ name: "refused.test" })).check(at(), live());
    expect(r).toMatchObject({ ok: false, kind: "fail", code: "REFUSED" });
    expect((await dnsChecker(probe({ name: "refused.test", rcode: "REFUSED" })).check(at(), live())).ok).toBe(true);
  });

  test("a reply with another id is ignored; the real one decides", async () => {
    const before = queries;
    const r = await dnsChecker(probe({ name: "noisy.test", answer: "10.0.0.7" })).check(at(), live());
    expect(r.ok).toBe(true);
    expect(queries - before).toBe(1);
  });

  test("a closed port fails at once with ECONNREFUSED (ICMP port unreachable)", async () => {
    const s = await Bun.udpSocket({ hostname: "127.0.0.1" });
    const port = s.port;
    s.close();
    const r = await dnsChecker(probe({ name: "ok.test" })).check({ host: "127.0.0.1", port }, live());
    expect(r).toMatchObject({ ok: false, code: "ECONNREFUSED" });
  });

  test("a silent server times out when the monitor aborts", async () => {
    const silent = await Bun.udpSocket({ hostname: "127.0.0.1", socket: { data() {} } });
    const ctl = new AbortController();
    const pending = dnsChecker(probe({ name: "ok.test" })).check({ host: "127.0.0.1", port: silent.port }, ctl.signal);
    setTimeout(() => ctl.abort(new Error("timed out after 50ms")), 50);
    const r = await pending;
    silent.close();
    expect(r).toMatchObject({ ok: false, kind: "timeout", message: `aborted: timed out after 50ms: no answer from dns 127.0.0.1:${silent.port} A ok.test` });
  });
});

describe("dns options", () => {
  test("defaults: A, NOERROR, no answer, no recursion; names are lower-cased without the final dot", () => {
    expect(probe2({ name: "Example.ORG." })).toEqual({ name: "example.org", qtype: 1, qtypeName: "A", rcode: 0, answer: null, recursion: false });
  });
  test("rcode: every name the header's rcode has, any case, or its number", () => {
    expect(probe2({ name: "a", rcode: "notauth" }).rcode).toBe(9);
    expect(probe2({ name: "a", rcode: "NOTZONE" }).rcode).toBe(10);
    expect(probe2({ name: "a", rcode: "YXDOMAIN" }).rcode).toBe(6);
    expect(probe2({ name: "a", rcode: 9 }).rcode).toBe(9);
  });
  test("bad values name their field", () => {
    expect(() => parsePulseOptions({ type: "dns" })).toThrow("pulse.args.name: a dns pulse needs the name to query");
    expect(() => parsePulseOptions({ type: "dns", args: { name: "a..b" } })).toThrow("pulse.args.name: invalid DNS name");
    expect(() => parsePulseOptions({ type: "dns", args: { name: "a", qtype: "XYZ" } })).toThrow("pulse.args.qtype: unknown query type");
    expect(() => parsePulseOptions({ type: "dns", args: { name: "a", rcode: "NOPE" } })).toThrow("pulse.args.rcode:");
  });
  function probe2(args: Record<string, unknown>) {
    const o = parsePulseOptions({ type: "dns", args });
    if (o.type !== "dns") throw new Error("not dns");
    return o.dns;
  }
});
