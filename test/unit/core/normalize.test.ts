import { describe, expect, test } from "bun:test";
import { ValidationError } from "../../../src/core/errors.ts";
import {
  backendFields,
  backendPatchFields,
  normalizeBackend,
  normalizeBackendFields,
  normalizeService,
  normalizeServiceFields,
  patchBackendFields,
  patchServiceFields,
  serviceFields,
  servicePatchFields,
} from "../../../src/core/normalize.ts";
import { normalizePulse, pulseView } from "../../../src/core/pulse.ts";

/** The message of the ValidationError `fn` throws (fails the test when it throws something else). */
function problem(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof ValidationError) return error.message;
    throw error;
  }
  throw new Error("expected a ValidationError");
}

const web = normalizeService({ host: "10.0.0.1", port: 80 });

describe("normalizeService", () => {
  test("fills the GORB defaults: tcp, wrr, no flags, not persistent", () => {
    expect(normalizeService({ port: 80 })).toEqual({
      host: "",
      port: 80,
      protocol: "tcp",
      method: "wrr",
      flags: "",
      persistent: false,
      persistenceTimeout: 0,
      persistenceNetmask: null,
      fwmark: null,
      family: null,
      pe: null,
      onePacket: false,
      panicThreshold: 0,
      announceMinHealthy: 1,
      hashFallback: true,
      sorryServer: null,
      quorum: 0,
      hysteresis: 0,
      quorumUp: "",
      quorumDown: "",
    });
  });

  test("the seed README example (persistent, flags) normalises, persistence really on with 300 s", () => {
    const spec = normalizeService({
      host: "10.0.0.1",
      port: 12345,
      protocol: "tcp",
      method: "wrr",
      persistent: true,
      flags: "sh-fallback|sh-port",
    });
    expect(spec).toMatchObject({ host: "10.0.0.1", port: 12345, persistent: true, persistenceTimeout: 300 });
    // wrr names the two bits as ipvsadm does: the sh names are sh's.
    expect(spec.flags).toBe("flag-1|flag-2");
  });

  test("keys match case-insensitively like Go's decoder, unknown keys are ignored, null means absent", () => {
    const spec = normalizeService({ HOST: "10.0.0.1", Port: 443, PROTOCOL: "UDP", Method: "RR", bogus: 1, flags: null });
    expect(spec).toMatchObject({ host: "10.0.0.1", port: 443, protocol: "udp", method: "rr", flags: "" });
  });

  test("a later key wins over an earlier one that differs only in case; a later null changes nothing", () => {
    expect(normalizeService({ port: 80, Port: 81 }).port).toBe(81);
    expect(normalizeService({ port: 80, Port: null }).port).toBe(80);
  });

  test("a __proto__ key is just an unknown key", () => {
    const body = JSON.parse('{"__proto__": {"port": 1}, "port": 80}') as unknown;
    expect(normalizeService(body).port).toBe(80);
    expect(problem(() => normalizeService(JSON.parse('{"__proto__": {"port": 1}}')))).toBe(
      "port: is required (1-65535), or give a fwmark",
    );
  });

  test.each([
    [{ port: 70000 }, "port: must be 1-65535, got 70000"],
    [{ port: 0 }, "port: must be 1-65535, got 0"],
    [{ port: "80" }, 'port: must be an integer 1-65535, got "80"'],
    [{ port: 80.5 }, "port: must be an integer 1-65535, got 80.5"],
    [{ port: 1e300 }, "port: must be 1-65535, got 1e+300"],
    [{}, "port: is required (1-65535), or give a fwmark"],
    [{ port: 80, protocol: "icmp" }, 'protocol: must be one of tcp, udp, sctp, got "icmp"'],
    [{ port: 80, protocol: 6 }, "protocol: must be a string, got 6"],
    [{ port: 80, method: "fancy" }, 'method: must be one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos, got "fancy"'],
    [{ port: 80, flags: "sh-fallback|" }, 'flags: has an empty flag in "sh-fallback|"'],
    [{ port: 80, flags: "sh-nope" }, 'flags: unknown flag "sh-nope"; known: sh-fallback, sh-port, mh-fallback, mh-port, flag-1, flag-2, flag-3'],
    [{ port: 80, persistent: "yes" }, 'persistent: must be true or false, got "yes"'],
    [{ port: 80, persistence_timeout: 60 }, "persistence_timeout: needs persistent: true"],
    [{ port: 80, persistent: true, persistence_timeout: 0 }, "persistence_timeout: must be 1-4294967295, got 0"],
    [{ port: 80, pe: "sip" }, "pe: needs persistent: true"],
    [{ port: 80, persistent: true, pe: "rtsp" }, 'pe: must be one of sip, got "rtsp"'],
    [{ port: 80, one_packet: true }, "one_packet: is only for udp and fwmark services, not tcp"],
    [{ port: 80, host: "10.0.0.1 ; rm" }, 'host: must be an IP address or a DNS name, got "10.0.0.1 ; rm"'],
    [{ port: 80, host: 10 }, "host: must be a string, got 10"],
    [{ fwmark: 7, port: 80 }, "port: is not used by a fwmark service; leave it out"],
    [{ fwmark: 0 }, "fwmark: must be 1-4294967295, got 0"],
    [{ port: 80, family: "ipx" }, 'family: must be one of inet, inet6, got "ipx"'],
    [{ port: 80, family: "inet", persistent: true, persistence_netmask: 33 }, "persistence_netmask: must be 0-32 for an inet service, got 33"],
    [[1, 2], "body: must be a JSON object, got array"],
    ["text", "body: must be a JSON object, got string"],
  ])("%j -> %s", (body, message) => {
    expect(problem(() => normalizeService(body))).toBe(message);
  });

  test("every ValidationError names its field", () => {
    try {
      normalizeService({ port: 70000 });
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).field).toBe("port");
      expect((error as ValidationError).status).toBe(400);
    }
  });

  test("flags: '|' or ',' separated, case-insensitive, duplicates dropped, in bit order", () => {
    expect(normalizeService({ port: 80, method: "sh", flags: "SH-PORT, sh-fallback|sh-port" }).flags).toBe("sh-fallback|sh-port");
    expect(normalizeService({ port: 80, method: "mh", flags: "flag-3|mh-port|mh-fallback" }).flags).toBe("mh-fallback|mh-port|flag-3");
  });

  test("flags are kept under the scheduler's own names: a name is only an IPVS bit (mh-port on sh is sh-port)", () => {
    const flags = (method: string, text: string) => normalizeService({ port: 80, method, flags: text }).flags;
    expect(flags("sh", "mh-port|mh-fallback")).toBe("sh-fallback|sh-port");
    expect(flags("sh", "flag-2")).toBe("sh-port");
    expect(flags("mh", "sh-port|flag-1")).toBe("mh-fallback|mh-port");
    expect(flags("rr", "sh-fallback|mh-port|flag-3")).toBe("flag-1|flag-2|flag-3");
    expect(flags("sh", "sh-fallback|mh-fallback")).toBe("sh-fallback");
  });

  test("persistence: timeout, netmask and the sip engine", () => {
    expect(
      normalizeService({ port: 5060, protocol: "udp", persistent: true, persistence_timeout: 60, persistence_netmask: 24, pe: "SIP" }),
    ).toMatchObject({ persistent: true, persistenceTimeout: 60, persistenceNetmask: 24, pe: "sip" });
  });

  test("fwmark services need no host, port or protocol; family defaults to inet", () => {
    expect(normalizeService({ fwmark: 7 })).toMatchObject({ fwmark: 7, family: "inet", host: "", port: 0 });
    expect(normalizeService({ fwmark: 7, family: "inet6", one_packet: true })).toMatchObject({
      family: "inet6",
      onePacket: true,
    });
  });

  test("one_packet is allowed for udp", () => {
    expect(normalizeService({ port: 53, protocol: "udp", one_packet: true }).onePacket).toBe(true);
  });
});

describe("normalizeBackend", () => {
  test("defaults: port from the service, weight 100, nat, tcp pulse every 1m", () => {
    const spec = normalizeBackend({ host: "10.1.0.1" }, web);
    expect(spec).toMatchObject({
      host: "10.1.0.1",
      port: 80,
      weight: 100,
      method: "nat",
      upperThreshold: 0,
      lowerThreshold: 0,
      tunnel: null,
    });
    expect(pulseView(spec.pulse)).toEqual({ type: "tcp", interval: "1m", args: null });
  });

  test("weight 0 creates a drained backend (the original turned it into 100)", () => {
    expect(normalizeBackend({ host: "10.1.0.1", weight: 0 }, web).weight).toBe(0);
  });

  test("the seed README backend example, with numeric pulse args and with digit strings", () => {
    const numbers = normalizeBackend(
      {
        host: "10.1.0.1",
        port: 12346,
        method: "nat",
        pulse: { type: "http", args: { method: "GET", path: "/health", expect: 200 }, interval: "5s" },
        weight: 100,
      },
      web,
    );
    const strings = normalizeBackend(
      { host: "10.1.0.1", port: 12346, pulse: { type: "http", args: { port: "54321", expect: "200" }, interval: "5s" } },
      web,
    );
    expect(numbers.pulse.type).toBe("http");
    expect(numbers.pulse.intervalMs).toBe(5000);
    expect(strings.pulse.port).toBe(54321);
    expect(strings.pulse.http?.expect).toEqual(numbers.pulse.http?.expect ?? []);
  });

  test.each([
    [{}, "host: is required (an IP address or a DNS name)"],
    [{ host: "" }, "host: is required (an IP address or a DNS name)"],
    [{ host: "10.1.0.1", weight: -1 }, "weight: must be 0-2147483647, got -1"],
    [{ host: "10.1.0.1", weight: 2147483648 }, "weight: must be 0-2147483647, got 2147483648"],
    [{ host: "10.1.0.1", weight: "100" }, 'weight: must be an integer 0-2147483647, got "100"'],
    [{ host: "10.1.0.1", port: 0 }, "port: must be 1-65535, got 0"],
    [{ host: "10.1.0.1", method: "masq" }, 'method: must be one of nat, dr, tunnel, ipip, local, got "masq"'],
    [{ host: "10.1.0.1", tunnel_type: "gue" }, 'tunnel_type: needs method "tunnel", not "nat"'],
    [{ host: "10.1.0.1", method: "tunnel", tunnel_type: "gue" }, "tunnel_port: is required for a gue tunnel (1-65535)"],
    [{ host: "10.1.0.1", method: "tunnel", tunnel_port: 6080 }, "tunnel_port: is only for gue tunnels, not ipip"],
    [{ host: "10.1.0.1", method: "ipip", tunnel_type: "gre" }, 'tunnel_type: method "ipip" is an ipip tunnel; use method "tunnel" for gre'],
    [{ host: "10.1.0.1", method: "tunnel", tunnel_type: "gre", tunnel_checksum: "remcsum" }, 'tunnel_checksum: "remcsum" is only for gue tunnels, not gre'],
    [{ host: "10.1.0.1", method: "tunnel", tunnel_checksum: "csum" }, 'tunnel_checksum: "csum" is only for gue and gre tunnels'],
    [{ host: "10.1.0.1", lower_threshold: 10 }, "lower_threshold: must not exceed upper_threshold (0), got 10"],
    [{ host: "10.1.0.1", pulse: { type: "smtp" } }, 'pulse.type: must be one of tcp, http, https, udp, dns, tls, exec, none, got "smtp"'],
    [{ host: "10.1.0.1", pulse: { interval: "60" } }, 'pulse.interval: invalid interval "60", use e.g. 500ms, 5s, 1m, 2h'],
    [{ host: "10.1.0.1", pulse: "tcp" }, 'pulse: must be an object such as {"type":"tcp","interval":"5s"}, got "tcp"'],
    // A list the command's list schema refuses says what is wrong with it, not "must be ... or a array, got an array".
    [{ host: "10.1.0.1", pulse: { type: "exec", args: { command: ["/bin/check", ["-v"]] } } }, "pulse.args.command: item 2 must be a string, got an array"],
    [{ host: "10.1.0.1", pulse: { type: "exec", args: { command: [7] } } }, "pulse.args.command: item 1 must be a string, got 7"],
    [{ host: "10.1.0.1", pulse: { type: "exec", args: { command: Array(65).fill("/bin/true") } } }, "pulse.args.command: must have at most 64 items, got 65"],
    [{ host: "10.1.0.1", pulse: { type: "exec", args: { command: ["/bin/check", "x".repeat(4097)] } } }, "pulse.args.command: item 2 must be at most 4096 characters, got 4097"],
    [{ host: "10.1.0.1", pulse: { type: "exec", args: { command: { program: "/bin/check" } } } }, "pulse.args.command: must be a string or a number or true or false or a list, got an object"],
  ])("%j -> %s", (body, message) => {
    expect(problem(() => normalizeBackend(body, web))).toBe(message);
  });

  test("tunnels: ipip by default, gue with a port and checksum", () => {
    expect(normalizeBackend({ host: "10.1.0.1", method: "ipip" }, web).tunnel).toEqual({
      type: "ipip",
      port: 0,
      checksum: "nocsum",
    });
    expect(
      normalizeBackend({ host: "10.1.0.1", method: "tunnel", tunnel_type: "GUE", tunnel_port: 6080, tunnel_checksum: "remcsum" }, web)
        .tunnel,
    ).toEqual({ type: "gue", port: 6080, checksum: "remcsum" });
  });

  test("thresholds", () => {
    expect(normalizeBackend({ host: "10.1.0.1", upper_threshold: 100, lower_threshold: 50 }, web)).toMatchObject({
      upperThreshold: 100,
      lowerThreshold: 50,
    });
  });

  test("a fwmark service's backends default to port 0 and may say 0", () => {
    const fw = normalizeService({ fwmark: 7 });
    expect(normalizeBackend({ host: "10.1.0.1" }, fw).port).toBe(0);
    expect(normalizeBackend({ host: "10.1.0.1", port: 0 }, fw).port).toBe(0);
  });

  test("vsid is accepted and ignored", () => {
    expect(normalizeBackend({ host: "10.1.0.1", vsid: "other" }, web).host).toBe("10.1.0.1");
  });
});

describe("PATCH merging", () => {
  test("fields the patch leaves out keep their values; weight is not reset", () => {
    const base = backendFields({ host: "10.1.0.1", weight: 7, method: "dr" });
    const merged = patchBackendFields(base, backendPatchFields({ upper_threshold: 5 }));
    expect(normalizeBackendFields(merged, web)).toMatchObject({ weight: 7, method: "dr", upperThreshold: 5 });
  });

  test("null resets a field to its default", () => {
    const base = backendFields({ host: "10.1.0.1", weight: 7 });
    expect(normalizeBackendFields(patchBackendFields(base, backendPatchFields({ weight: null })), web).weight).toBe(100);
  });

  test("leaving a tunnel drops the tunnel options unless the patch sets them", () => {
    const base = backendFields({ host: "10.1.0.1", method: "tunnel", tunnel_type: "gue", tunnel_port: 6080 });
    expect(normalizeBackendFields(patchBackendFields(base, backendPatchFields({ method: "nat" })), web).tunnel).toBeNull();
    expect(
      problem(() =>
        normalizeBackendFields(patchBackendFields(base, backendPatchFields({ method: "dr", tunnel_port: 1 })), web),
      ),
    ).toBe('tunnel_port: needs method "tunnel", not "dr"');
  });

  test("turning persistence off drops the persistence options", () => {
    const base = serviceFields({ port: 80, persistent: true, persistence_timeout: 60 });
    const spec = normalizeServiceFields(patchServiceFields(base, servicePatchFields({ Persistent: false })));
    expect(spec).toMatchObject({ persistent: false, persistenceTimeout: 0 });
  });
});

describe("panic_threshold", () => {
  test("is a percent 0-100, default 0 (off)", () => {
    expect(normalizeService({ port: 80, panic_threshold: 50 }).panicThreshold).toBe(50);
    expect(() => normalizeService({ port: 80, panic_threshold: 101 })).toThrow("panic_threshold: must be 0-100");
    expect(() => normalizeService({ port: 80, panic_threshold: -1 })).toThrow("panic_threshold");
  });
});

describe("announce_min_healthy", () => {
  test("is a count 0-65535, default 1; 0 means never announce", () => {
    expect(normalizeService({ port: 80 }).announceMinHealthy).toBe(1);
    expect(normalizeService({ port: 80, announce_min_healthy: 0 }).announceMinHealthy).toBe(0);
    expect(normalizeService({ port: 80, announce_min_healthy: 3 }).announceMinHealthy).toBe(3);
    expect(() => normalizeService({ port: 80, announce_min_healthy: -1 })).toThrow("announce_min_healthy: must be 0-65535");
    expect(() => normalizeService({ port: 80, announce_min_healthy: 1.5 })).toThrow("announce_min_healthy");
  });
});

describe("the same field map read again", () => {
  test("gives the same spec, worked out for the service it is read for", () => {
    const fields = backendFields({ host: "10.1.0.1" });
    const https = normalizeService({ host: "10.0.0.1", port: 443 });
    const first = normalizeBackendFields(fields, web);
    expect(normalizeBackendFields(fields, web)).toBe(first);
    expect(first.port).toBe(80);
    expect(normalizeBackendFields(fields, https).port).toBe(443);
    expect(normalizeBackendFields(fields, web).port).toBe(80);
    const service = serviceFields({ host: "10.0.0.1", port: 80 });
    expect(normalizeServiceFields(service)).toBe(normalizeServiceFields(service));
  });

  test("a field map that fails is refused every time", () => {
    const fields = backendFields({ host: "10.1.0.1", upper_threshold: 1, lower_threshold: 2 });
    const first = problem(() => normalizeBackendFields(fields, web));
    expect(first).toBe("lower_threshold: must not exceed upper_threshold (1), got 2");
    expect(problem(() => normalizeBackendFields(fields, web))).toBe(first);
  });
});

describe("a pulse parsed once", () => {
  test("equal pulses share one frozen spec; a pulse that parses differently never meets its key", () => {
    const first = normalizePulse({ type: "http", interval: "5s", args: { path: "/health" } });
    const again = normalizePulse({ type: "http", interval: "5s", args: { path: "/health" } });
    expect(again).toBe(first);
    expect(Object.isFrozen(first) && Object.isFrozen(first.http) && Object.isFrozen(first.interval)).toBe(true);
    expect(normalizePulse({ type: "http", interval: "6s", args: { path: "/health" } }).intervalMs).toBe(6000);
    // A date prints in JSON as the text below, and NaN as null: neither may take the answer of what it prints as.
    expect(normalizePulse({ type: "tcp", interval: "" }).intervalMs).toBe(60_000);
    expect(normalizePulse({ type: "tcp", args: { port: 8080 } }).port).toBe(8080);
    expect(normalizePulse({ type: "tcp", args: null }).args).toBe(null);
    expect(problem(() => normalizePulse({ type: "tcp", args: Number.NaN }))).toStartWith("pulse.args: must be an object");
    expect(problem(() => normalizePulse({ type: "tcp", interval: Number.NaN }))).toStartWith("pulse.interval:");
    expect(problem(() => normalizePulse({ type: "tcp", interval: new Date(0) }))).toStartWith("pulse.interval:");
    expect(normalizePulse(undefined).type).toBe("tcp");
    expect(problem(() => normalizePulse({ type: "tcp", interval: "1970-01-01T00:00:00.000Z" }))).toStartWith("pulse.interval:");
  });
});
