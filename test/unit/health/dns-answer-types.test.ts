/**
 * `args.answer` must be found among the answer records for every query type a dns pulse offers. With qtype ANY
 * the records are of their own types (A, AAAA, ...), never of type ANY, so no answer ever matched and the backend
 * was always down; with SOA the record was compared as hex bytes, so no name ever matched either.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { dnsChecker } from "../../../src/health/checkers/dns.ts";
import { decodeHead } from "../../../src/health/checkers/dns-codec.ts";
import { type DnsProbe, parsePulseOptions } from "../../../src/health/options.ts";

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const live = () => new AbortController().signal;

let server: { readonly port: number; close(): void };
/** zone.test: ANY gives an A (10.0.0.7), an AAAA (2001:db8::7) and a TXT ("Hello"); SOA names ns1.zone.test and hostmaster.zone.test. */
beforeAll(async () => {
  server = await Bun.udpSocket({
    hostname: "127.0.0.1",
    socket: {
      data(s, data, port, addr) {
        const q = decodeHead(data);
        const question = data.subarray(12, 12 + data.subarray(12).indexOf(0) + 5);
        const answers: Uint8Array[] = [];
        if (q.questionType === 255) {
          answers.push(hex("c00c 0001 0001 0000003c 0004 0a000007"));
          answers.push(hex("c00c 001c 0001 0000003c 0010 20010db8000000000000000000000007"));
          answers.push(hex("c00c 0010 0001 0000003c 0006 05 48656c6c6f")); // TXT "Hello"
        } else if (q.questionType === 6) {
          // mname ns1.<question>, rname hostmaster.<question>, then serial, refresh, retry, expire, minimum
          const rdata = hex("03 6e7331 c00c 0a 686f73746d6173746572 c00c 00000001 00000e10 00000258 00093a80 0000003c");
          const head = new Uint8Array(12);
          const v = new DataView(head.buffer);
          v.setUint16(0, 0xc00c);
          v.setUint16(2, 6);
          v.setUint16(4, 1);
          v.setUint32(6, 60);
          v.setUint16(10, rdata.length);
          answers.push(Buffer.concat([head.subarray(0, 12), rdata]));
        }
        const header = new Uint8Array(12);
        const v = new DataView(header.buffer);
        v.setUint16(0, q.id);
        v.setUint16(2, 0x8400);
        v.setUint16(4, 1);
        v.setUint16(6, answers.length);
        s.send(Buffer.concat([header, question, ...answers]), port, addr);
      },
    },
  });
});
afterAll(() => server.close());

const probe = (args: Record<string, unknown>): DnsProbe => {
  const o = parsePulseOptions({ type: "dns", args: { name: "zone.test", ...args } });
  if (o.type !== "dns") throw new Error("not dns");
  return o.dns;
};
const check = async (args: Record<string, unknown>) => {
  const r = await dnsChecker(probe(args)).check({ host: "127.0.0.1", port: server.port }, live());
  return [r.ok, r.code];
};

test("qtype ANY: an answer is found among records of any type (AAAA compared in canonical form)", async () => {
  expect(await check({ qtype: "ANY", answer: "10.0.0.7" })).toEqual([true, "NOERROR"]);
  expect(await check({ qtype: "ANY", answer: "2001:0db8:0::7" })).toEqual([true, "NOERROR"]);
  expect(await check({ qtype: "ANY", answer: "Hello" })).toEqual([true, "NOERROR"]);
  expect(await check({ qtype: "ANY", answer: "10.0.0.8" })).toEqual([false, "ANSWER_MISMATCH"]);
});

test("qtype SOA: the answer is the zone's primary name server", async () => {
  expect(await check({ qtype: "SOA", answer: "NS1.zone.test." })).toEqual([true, "NOERROR"]);
  expect(await check({ qtype: "SOA", answer: "ns2.zone.test" })).toEqual([false, "ANSWER_MISMATCH"]);
});
