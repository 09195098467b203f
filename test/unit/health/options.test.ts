import { describe, expect, test } from "bun:test";
import { formatDuration, parseDuration } from "../../../src/health/duration.ts";
import { PulseOptionsError } from "../../../src/health/errors.ts";
import { formatExpect, matchesExpect, parseExpect } from "../../../src/health/expect.ts";
import { type PulseOptions, parsePulseOptions, probeTarget, renderPulseWire } from "../../../src/health/options.ts";

/** Runs fn and returns the PulseOptionsError it throws (fails the test if it throws nothing or something else). */
function errorOf(fn: () => unknown): PulseOptionsError {
  try {
    fn();
  } catch (err) {
    if (err instanceof PulseOptionsError) return err;
    throw err;
  }
  throw new Error("expected a PulseOptionsError, got none");
}

describe("parseDuration: the original's grammar plus ms", () => {
  const ok: [string, number][] = [
    ["5s", 5_000],
    ["5SEC", 5_000],
    ["5seconds", 5_000],
    ["+5m", 300_000],
    ["5min", 300_000],
    ["10minutes", 600_000],
    ["2h", 7_200_000],
    ["2hours", 7_200_000],
    ["2HOURS", 7_200_000],
    ["  1m  ", 60_000],
    ["05s", 5_000],
    ["500ms", 500],
    ["500MS", 500],
    ["596h", 596 * 3_600_000],
  ];
  for (const [text, ms] of ok) {
    test(`${JSON.stringify(text)} = ${ms}ms`, () => {
      expect(parseDuration(text, "pulse.interval")).toEqual({ ms, text: text.trim() });
    });
  }

  const bad: [unknown, string][] = [
    ["1.5s", 'pulse.interval: invalid interval "1.5s", use e.g. 500ms, 5s, 1m, 2h'],
    ["5 s", 'pulse.interval: invalid interval "5 s", use e.g. 500ms, 5s, 1m, 2h'],
    ["1d", 'pulse.interval: invalid interval "1d", use e.g. 500ms, 5s, 1m, 2h'],
    ["60", 'pulse.interval: invalid interval "60", use e.g. 500ms, 5s, 1m, 2h'],
    ["5msec", 'pulse.interval: invalid interval "5msec", use e.g. 500ms, 5s, 1m, 2h'],
    ["", 'pulse.interval: invalid interval "", use e.g. 500ms, 5s, 1m, 2h'],
    ["0s", 'pulse.interval: must be positive, got "0s"'],
    ["-5s", 'pulse.interval: must be positive, got "-5s"'],
    ["597h", 'pulse.interval: "597h" is too long, at most 596h'],
    ["99999999999999999999s", 'pulse.interval: "99999999999999999999s" is too long, at most 596h'],
    [60, 'pulse.interval: must be a string with a unit such as "5s", got number 60'],
    [null, 'pulse.interval: must be a string with a unit such as "5s", got null'],
  ];
  for (const [value, message] of bad) {
    test(`rejects ${JSON.stringify(value)}`, () => {
      const err = errorOf(() => parseDuration(value, "pulse.interval"));
      expect(err.field).toBe("pulse.interval");
      expect(err.message).toBe(message);
    });
  }

  test("formatDuration picks the largest exact unit", () => {
    expect([3_600_000, 120_000, 90_000, 1_500, 5_000].map(formatDuration)).toEqual(["1h", "2m", "90s", "1500ms", "5s"]);
  });
});

describe("parseExpect", () => {
  const ok: [unknown, string][] = [
    [200, "200"],
    ["200", "200"],
    [" 204 ", "204"],
    ["200,204", "200,204"],
    ["200-299", "200-299"],
    ["200 - 299, 404", "200-299,404"],
    ["2xx", "200-299"],
    ["3XX", "300-399"],
    [[200, "301-302", "5xx"], "200,301-302,500-599"],
  ];
  for (const [value, rendered] of ok) {
    test(`${JSON.stringify(value)} -> ${rendered}`, () => {
      expect(formatExpect(parseExpect(value, "pulse.args.expect"))).toBe(rendered);
    });
  }

  const bad: [unknown, string][] = [
    ["", 'invalid status "", use e.g. 200, "200,204", "200-299" or "2xx"'],
    ["abc", 'invalid status "abc", use e.g. 200, "200,204", "200-299" or "2xx"'],
    ["200,", 'invalid status "200,", use e.g. 200, "200,204", "200-299" or "2xx"'],
    [99, 'status "99" is not an HTTP status code (100-599)'],
    [200.5, 'status "200.5" is not an HTTP status code (100-599)'],
    ["600", 'status "600" is not an HTTP status code (100-599)'],
    ["299-200", 'range "299-200" is backwards (299 > 200)'],
    [[], "must list at least one status code"],
    [true, 'must be a status code, a list such as "200,204" or a range such as "200-299", got boolean true'],
    // Interim responses are read past to the final one: a check expecting only them could never pass.
    ["100", 'lists only interim codes (1xx other than 101), which never end a response: the backend would always be down; expect a final status such as 200'],
    [[100, "102-199"], 'lists only interim codes (1xx other than 101), which never end a response: the backend would always be down; expect a final status such as 200'],
  ];
  for (const [value, problem] of bad) {
    test(`rejects ${JSON.stringify(value)}`, () => {
      const err = errorOf(() => parseExpect(value, "pulse.args.expect"));
      expect(err.field).toBe("pulse.args.expect");
      expect(err.problem).toBe(problem);
    });
  }

  test("matchesExpect checks every range", () => {
    const spec = parseExpect("200-204,404", "x");
    expect([199, 200, 204, 205, 404, 500].map((s) => matchesExpect(spec, s))).toEqual([false, true, true, false, true, false]);
  });
});

describe("parsePulseOptions: defaults", () => {
  test("absent pulse = tcp every 1m, timeout 5s, rise/fall 1, no back-off", () => {
    for (const input of [undefined, null, {}, { type: "", interval: "" }]) {
      const o = parsePulseOptions(input);
      expect(o.type).toBe("tcp");
      expect(o.intervalMs).toBe(60_000);
      expect(o.interval.text).toBe("1m");
      expect(o.timeoutMs).toBe(5_000);
      expect([o.rise, o.fall, o.backoffMaxMs, o.host, o.port, o.http, o.udp]).toEqual([1, 1, null, null, null, null, null]);
    }
  });

  test("http defaults: GET / expecting 200, verify on", () => {
    const o = parsePulseOptions({ type: "http" });
    expect(o.http).toEqual({ scheme: "http", method: "GET", path: "/", expect: [{ min: 200, max: 200 }], hostHeader: null, tlsVerify: true, ca: null, serverName: null });
  });

  test("the timeout defaults to 5s but never more than the interval", () => {
    expect(parsePulseOptions({ interval: "2s" }).timeoutMs).toBe(2_000);
    expect(parsePulseOptions({ interval: "10s" }).timeoutMs).toBe(5_000);
  });

  test("top-level keys match case-insensitively, types are lower-cased", () => {
    const o = parsePulseOptions({ Type: "HTTP", INTERVAL: "5s", Args: { path: "/h" } });
    expect(o.type).toBe("http");
    expect(o.intervalMs).toBe(5_000);
    expect(o.http?.path).toBe("/h");
  });
});

describe("parsePulseOptions: args, numbers and digit strings alike", () => {
  test("the README example, which panicked the original, is accepted", () => {
    const o = parsePulseOptions({ type: "http", args: { method: "GET", port: 54321, path: "/health", expect: 200 }, interval: "5s" });
    expect(o.port).toBe(54321);
    expect(o.http?.expect).toEqual([{ min: 200, max: 200 }]);
  });

  test("the same with digit strings (what sky-uk/feed sent)", () => {
    const o = parsePulseOptions({ type: "http", args: { port: "54321", expect: "404", rise: "2", fall: " 3 " } });
    expect([o.port, o.rise, o.fall]).toEqual([54321, 2, 3]);
    expect(o.http?.expect).toEqual([{ min: 404, max: 404 }]);
  });

  test("method is upper-cased, path keeps its query string verbatim", () => {
    const o = parsePulseOptions({ type: "http", args: { method: "head", path: "/h?x=1&y=%20z" } });
    expect(o.http?.method).toBe("HEAD");
    expect(o.http?.path).toBe("/h?x=1&y=%20z");
  });

  test("as the original's Go request and URL read them: method \"\" is GET, a path without its \"/\" gets one, \"\" is \"/\"", () => {
    const probe = (args: Record<string, unknown>) => parsePulseOptions({ type: "http", args }).http;
    expect(probe({ method: "", path: "", expect: "200" })).toMatchObject({ method: "GET", path: "/" });
    expect(probe({ path: "health" })?.path).toBe("/health");
    expect(probe({ path: "health?full=1" })?.path).toBe("/health?full=1");
    // GET shows the args as they were sent, as the original did.
    expect(parsePulseOptions({ type: "http", args: { method: "", path: "health" } }).args).toEqual({ method: "", path: "health" });
  });

  test("host override: IPv6 brackets are stripped; hostHeader and vhost are aliases", () => {
    expect(parsePulseOptions({ args: { host: "[::1]" } }).host).toBe("::1");
    expect(parsePulseOptions({ args: { host: "health.internal" } }).host).toBe("health.internal");
    expect(parsePulseOptions({ type: "http", args: { vhost: "example.org" } }).http?.hostHeader).toBe("example.org");
    expect(parsePulseOptions({ type: "http", args: { hostHeader: "a.org", vhost: "a.org" } }).http?.hostHeader).toBe("a.org");
  });

  test("https: verify by default, off with insecure or tls-verify false", () => {
    expect(parsePulseOptions({ type: "https" }).http?.tlsVerify).toBe(true);
    expect(parsePulseOptions({ type: "https", args: { insecure: true } }).http?.tlsVerify).toBe(false);
    expect(parsePulseOptions({ type: "https", args: { "tls-verify": "false" } }).http?.tlsVerify).toBe(false);
    expect(parsePulseOptions({ type: "https", args: { "tls-verify": true, insecure: false } }).http?.tlsVerify).toBe(true);
  });

  test("backoff: off by default, true = 8 intervals, or an explicit cap", () => {
    expect(parsePulseOptions({ interval: "5s" }).backoffMaxMs).toBeNull();
    expect(parsePulseOptions({ interval: "5s", args: { backoff: false } }).backoffMaxMs).toBeNull();
    expect(parsePulseOptions({ interval: "5s", args: { backoff: true } }).backoffMaxMs).toBe(40_000);
    expect(parsePulseOptions({ interval: "5s", args: { backoff: "true" } }).backoffMaxMs).toBe(40_000);
    expect(parsePulseOptions({ interval: "5s", args: { backoff: "2m" } }).backoffMaxMs).toBe(120_000);
  });

  test("timeout takes the duration grammar with ms", () => {
    expect(parsePulseOptions({ interval: "5s", args: { timeout: "750ms" } }).timeoutMs).toBe(750);
    expect(parsePulseOptions({ interval: "5s", args: { timeout: "5s" } }).timeoutMs).toBe(5_000);
  });

  test("udp: text or hex payload", () => {
    expect(parsePulseOptions({ type: "udp", args: { send: "ping" } }).udp).toEqual({ payloadHex: "70696e67" });
    expect(parsePulseOptions({ type: "udp", args: { sendHex: "DE AD be ef" } }).udp).toEqual({ payloadHex: "deadbeef" });
  });

  test("none ignores args entirely, tcp ignores http args", () => {
    const none = parsePulseOptions({ type: "none", args: { port: "junk", expect: "junk" } });
    expect(none.type).toBe("none");
    expect(none.port).toBeNull();
    const tcp = parsePulseOptions({ type: "tcp", args: { expect: "junk", method: 5 } });
    expect(tcp.http).toBeNull();
  });
});

describe("parsePulseOptions: bad values name their field", () => {
  const bad: [string, unknown, string, string][] = [
    ["not an object", "tcp", "pulse", 'must be an object such as {"type":"tcp","interval":"5s"}, got string "tcp"'],
    ["array", [], "pulse", 'must be an object such as {"type":"tcp","interval":"5s"}, got an array'],
    ["unknown type", { type: "ftp" }, "pulse.type", 'unknown pulse type "ftp", use one of tcp, http, https, udp, dns, tls, exec, none'],
    ["type not a string", { type: 1 }, "pulse.type", "must be a string, got number 1"],
    ["interval grammar", { interval: "5 s" }, "pulse.interval", 'invalid interval "5 s", use e.g. 500ms, 5s, 1m, 2h'],
    ["interval zero", { interval: "0m" }, "pulse.interval", 'must be positive, got "0m"'],
    ["interval too short", { interval: "50ms" }, "pulse.interval", '"50ms" is too short, at least 100ms'],
    ["interval as a number", { interval: 5 }, "pulse.interval", 'must be a string with a unit such as "5s", got number 5'],
    ["args not an object", { args: "x" }, "pulse.args", 'must be an object, got string "x"'],
    ["port junk", { args: { port: "abc" } }, "pulse.args.port", 'must be a whole number from 1 to 65535, got string "abc"'],
    ["port negative string", { args: { port: "-1" } }, "pulse.args.port", 'must be a whole number from 1 to 65535, got string "-1"'],
    ["port 0", { args: { port: 0 } }, "pulse.args.port", "must be a whole number from 1 to 65535, got number 0"],
    ["port too big", { args: { port: 70000 } }, "pulse.args.port", "must be a whole number from 1 to 65535, got number 70000"],
    ["port fractional", { args: { port: 80.5 } }, "pulse.args.port", "must be a whole number from 1 to 65535, got number 80.5"],
    ["rise 0", { args: { rise: 0 } }, "pulse.args.rise", "must be a whole number from 1 to 100, got number 0"],
    ["fall 101", { args: { fall: "101" } }, "pulse.args.fall", 'must be a whole number from 1 to 100, got string "101"'],
    ["host junk", { args: { host: "a b" } }, "pulse.args.host", 'invalid host "a b", use an IP address or a DNS name'],
    ["host number", { args: { host: 5 } }, "pulse.args.host", "must be a string, got number 5"],
    ["timeout > interval", { interval: "5s", args: { timeout: "10s" } }, "pulse.args.timeout", '"10s" is longer than the interval "5s"; a check must end before the next one starts'],
    ["timeout too short", { interval: "5s", args: { timeout: "5ms" } }, "pulse.args.timeout", '"5ms" is too short, at least 50ms'],
    ["timeout grammar", { args: { timeout: "soon" } }, "pulse.args.timeout", 'invalid interval "soon", use e.g. 500ms, 5s, 1m, 2h'],
    ["backoff below interval", { interval: "1m", args: { backoff: "30s" } }, "pulse.args.backoff", 'maximum "30s" is shorter than the interval "1m"'],
    ["backoff number", { args: { backoff: 60 } }, "pulse.args.backoff", 'must be true, false or a maximum interval such as "10m", got number 60'],
    ["method type", { type: "http", args: { method: true } }, "pulse.args.method", "must be a string, got boolean true"],
    ["method token", { type: "http", args: { method: "GE T" } }, "pulse.args.method", 'invalid method "GE T"'],
    ["method CONNECT", { type: "http", args: { method: "connect" } }, "pulse.args.method", "method CONNECT cannot be used for a health check"],
    ["path type", { type: "http", args: { path: 5 } }, "pulse.args.path", "must be a string, got number 5"],
    ["path space", { type: "http", args: { path: "/a b" } }, "pulse.args.path", "must not contain spaces or control characters (percent-encode them)"],
    ["expect empty", { type: "http", args: { expect: "" } }, "pulse.args.expect", 'invalid status "", use e.g. 200, "200,204", "200-299" or "2xx"'],
    ["hostHeader empty", { type: "http", args: { hostHeader: "" } }, "pulse.args.hostHeader", 'must be a non-empty string, got string ""'],
    ["vhost conflict", { type: "http", args: { hostHeader: "a.org", vhost: "b.org" } }, "pulse.args.vhost", "conflicts with pulse.args.hostHeader"],
    ["insecure junk", { type: "https", args: { insecure: "yes" } }, "pulse.args.insecure", 'must be true or false, got string "yes"'],
    ["tls contradiction", { type: "https", args: { "tls-verify": true, insecure: true } }, "pulse.args.insecure", "contradicts pulse.args.tls-verify"],
    ["udp without payload", { type: "udp" }, "pulse.args.send", 'a udp pulse needs a payload the backend answers (args.send or args.sendHex); to check a UDP service over TCP or HTTP, use type "tcp" or "http" with args.port'],
    ["udp both payloads", { type: "udp", args: { send: "a", sendHex: "61" } }, "pulse.args.sendHex", "give either pulse.args.send or pulse.args.sendHex, not both"],
    ["udp bad hex", { type: "udp", args: { sendHex: "abc" } }, "pulse.args.sendHex", 'must be a string of hex byte pairs such as "0a0b", got string "abc"'],
    ["udp send type", { type: "udp", args: { send: 5 } }, "pulse.args.send", "must be a string, got number 5"],
    ["dns without a name", { type: "dns" }, "pulse.args.name", 'a dns pulse needs the name to query, e.g. "example.org", got nothing'],
    ["dns name null", { type: "dns", args: { name: null } }, "pulse.args.name", 'a dns pulse needs the name to query, e.g. "example.org", got null'],
    ["exec without a command", { type: "exec", args: {} }, "pulse.args.command", "an exec pulse needs a command: an absolute path and arguments, as a list or a string, got nothing"],
  ];
  for (const [name, input, field, problem] of bad) {
    test(name, () => {
      const err = errorOf(() => parsePulseOptions(input));
      expect(err.field).toBe(field);
      expect(err.problem).toBe(problem);
      expect(err.message).toBe(`${field}: ${problem}`);
    });
  }

  test("a caller-chosen field prefix is used in errors", () => {
    const err = errorOf(() => parsePulseOptions({ interval: "x" }, { field: "backends.web-1.pulse" }));
    expect(err.field).toBe("backends.web-1.pulse.interval");
  });
});

describe("renderPulseWire and probeTarget", () => {
  test("render shows defaults filled in and args echoed as sent", () => {
    expect(renderPulseWire(parsePulseOptions(undefined))).toEqual({ type: "tcp", interval: "1m", args: null });
    const args = { method: "get", port: 54321, expect: "200" };
    const rendered = renderPulseWire(parsePulseOptions({ type: "HTTP", interval: " 5s ", args }));
    expect(rendered).toEqual({ type: "http", interval: "5s", args: { method: "get", port: 54321, expect: "200" } });
    expect(rendered.args).not.toBe(args);
  });

  test("rendered options parse back to the same options", () => {
    const inputs = [undefined, { type: "https", interval: "30s", args: { path: "/h?q=1", expect: "2xx", insecure: true, rise: 2 } }, { type: "udp", args: { send: "x" } }];
    for (const input of inputs) {
      const o: PulseOptions = parsePulseOptions(input);
      expect(parsePulseOptions(renderPulseWire(o))).toEqual(o);
    }
  });

  test("probeTarget applies host/port overrides", () => {
    const backend = { host: "10.0.0.1", port: 53 };
    expect(probeTarget(backend, parsePulseOptions({}))).toEqual(backend);
    expect(probeTarget(backend, parsePulseOptions({ args: { port: 8080 } }))).toEqual({ host: "10.0.0.1", port: 8080 });
    expect(probeTarget(backend, parsePulseOptions({ args: { host: "::1", port: "9" } }))).toEqual({ host: "::1", port: 9 });
  });

  test("probeKey differs exactly when the probe differs", () => {
    const key = (input: unknown) => parsePulseOptions(input).probeKey;
    expect(key({ type: "http", interval: "5s" })).toBe(key({ type: "http", interval: "1m", args: { rise: 3, timeout: "1s" } }));
    expect(key({ type: "http" })).not.toBe(key({ type: "http", args: { path: "/x" } }));
    expect(key({ type: "http" })).not.toBe(key({ type: "https" }));
    expect(key({ type: "tcp" })).not.toBe(key({ type: "tcp", args: { port: 81 } }));
  });
});
