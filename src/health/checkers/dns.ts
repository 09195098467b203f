/**
 * The `dns` checker: one query over UDP to the backend (port: the backend's, or args.port), Up when a response
 * to that query comes back with the expected rcode (NOERROR by default) and, with `args.answer`, that answer
 * among the answer records. A response with another id or question is ignored (not ours; one with another id is
 * dropped unread, so a flood of them costs little), one without a question section (an error answer may leave it
 * out) is taken by its id; a truncated response still counts for its rcode and answers, a malformed one fails. A
 * response with another rcode fails by it, its records unread; the others are checked (a malformed one fails) but
 * only those of the asked type are rendered, and only with `args.answer`, until one is it.
 * An ICMP port-unreachable fails at once.
 */
import { errorCode } from "../../errno.ts";
import { type CancelProbe, type CheckResult, type Checker, checkerOf, describeError, elapsedSince, formatHostPort, localErrorOf } from "../checker.ts";
import { DNS_RCODES, type DnsProbe, type ProbeTarget } from "../options.ts";
import { canonicalIpv6, checkAnswers, decodeHead, DnsFormatError, type DnsRecord, encodeQuery, isResponseTo, recordText } from "./dns-codec.ts";
import { udpExchange } from "./udp-exchange.ts";

/** The query type ANY (255). */
const QTYPE_ANY = 255;

const RCODE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(DNS_RCODES).map(([k, v]) => [v, k]));

/** rcodeName renders an rcode ("NXDOMAIN", or "RCODE9"). */
function rcodeName(rcode: number): string {
  return RCODE_NAMES[rcode] ?? `RCODE${rcode}`;
}

/**
 * answerText is a record's data as `args.answer` is compared with it: AAAA in canonical form (as recordText gives
 * it); with ANY lower-cased (`answer` was, its qtype not being TXT), so that a TXT record among the answers matches too.
 */
function answerText(data: Uint8Array, record: DnsRecord, any: boolean): string {
  const text = recordText(data, record);
  return any ? text.toLowerCase() : text;
}

/** dnsChecker builds a checker for one DnsProbe. */
export function dnsChecker(probe: DnsProbe): Checker {
  // ANY is asked, never answered: its records are of their own types (A, AAAA, MX, ...), and any of them may match.
  const any = probe.qtype === QTYPE_ANY;
  const wanted = probe.answer === null ? null : probe.qtype === 28 || any ? canonicalIpv6(probe.answer) : probe.answer;
  const question = `${probe.qtypeName} ${probe.name}`;
  const run = (target: ProbeTarget, done: (r: CheckResult) => void, released: () => void): CancelProbe => {
    const start = performance.now();
    const where = formatHostPort(target);
    const id = (Math.random() * 0x10000) | 0;
    const query = encodeQuery(id, probe.name, probe.qtype, probe.recursion);
    return udpExchange(target, query, done, released, {
      data: (data, finish) => {
        const fail = (message: string, code: string) =>
          finish({ ok: false, durationMs: elapsedSince(start), message: `dns ${where} ${question}: ${message}`, kind: "fail", code });
        // Another id is not ours: dropped unread, so a flood of them costs a comparison each.
        if (data.length >= 12 && !isResponseTo(data, id)) return;
        let response;
        let records: DnsRecord[];
        try {
          response = decodeHead(data);
          // A server may answer an error (FORMERR, NOTIMP, REFUSED) without repeating the question: its id says it is
          // ours. One that repeats a question must repeat this one.
          if (response.questions > 0 && (response.questionType !== probe.qtype || response.questionName !== probe.name)) return;
          // Another rcode decides: the records are not read.
          if (response.rcode !== probe.rcode) {
            fail(`${rcodeName(response.rcode)}, expected ${rcodeName(probe.rcode)}`, rcodeName(response.rcode));
            return;
          }
          records = checkAnswers(data, response);
        } catch (err) {
          if (err instanceof DnsFormatError) fail("malformed response", "FORMERR");
          return;
        }
        const n = records.length;
        // Only the records of the asked type are rendered, and only until one is the expected answer.
        if (wanted !== null && !records.some((r) => (any || r.type === probe.qtype) && answerText(data, r, any) === wanted)) {
          fail(`${rcodeName(response.rcode)}, ${n} answers, none is the expected one`, "ANSWER_MISMATCH");
          return;
        }
        finish({ ok: true, durationMs: elapsedSince(start), message: `dns ${where} ${question}: ${rcodeName(response.rcode)}, ${n} answers`, kind: "pass", code: rcodeName(response.rcode) });
      },
      error: (err) => {
        const code = errorCode(err) || describeError(err);
        const local = localErrorOf(code === "ECONNREFUSED" ? "" : code);
        if (local !== "") return { ok: false, durationMs: elapsedSince(start), message: `check error: dns ${where}: ${local}`, kind: "local-error", code: local };
        return { ok: false, durationMs: elapsedSince(start), message: `dns ${where} ${question}: failed: ${code}`, kind: "fail", code };
      },
      notSent: () => ({ ok: false, durationMs: elapsedSince(start), message: `check error: dns ${where}: query not sent`, kind: "local-error", code: "ENOBUFS" }),
    });
  };
  return checkerOf(run, (t, _when, why) => `${why}: no answer from dns ${formatHostPort(t)} ${question}`);
}
