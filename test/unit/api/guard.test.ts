/**
 * The API's front door (src/api/guard.ts): browser writes from other origins, the peer allow list, the cap on
 * requests in flight, and the constant-time token comparison. App-level cases go through createApp's
 * app.handle(); the peer and load cases call the guard with a stand-in for Bun's server (the real-socket
 * versions are in test/unit/daemon/api-server.test.ts). While the daemon starts (`starting`), the guard still
 * comes first.
 */
import { describe, expect, spyOn, test } from "bun:test";
import * as crypto from "node:crypto";
import { createApp, type AppOptions } from "../../../src/api/app.ts";
import { checkBearer, tokensEqual } from "../../../src/api/auth.ts";
import { cidrContains, formatAddress, isLoopback, parseAddress, parseCidr } from "../../../src/config/cidr.ts";
import { type GuardServer, createGuard } from "../../../src/api/guard.ts";
import { makeGorb } from "../core/fakes.ts";

function setup(options: Partial<Omit<AppOptions, "gorb" | "logger">> = {}, base = "http://127.0.0.1:4672") {
  const stack = makeGorb();
  const app = createApp({ gorb: stack.gorb, logger: stack.logger, ...options });
  const call = async (method: string, path: string, body: string | undefined, headers: Record<string, string> = {}) => {
    const response = await app.handle(new Request(`${base}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) }));
    const text = await response.text();
    const json = response.headers.get("content-type")?.includes("json") === true;
    return { status: response.status, body: text === "" ? null : json ? (JSON.parse(text) as unknown) : text };
  };
  return { ...stack, call };
}

const WEB = JSON.stringify({ host: "10.0.0.1", port: 80 });
const EVIL = "http://evil.example";

describe("browser writes from another origin", () => {
  test("a cross-origin text/plain POST /apply is refused with 403 and nothing changes", async () => {
    const { call, gorb } = setup();
    const declared = await call("POST", "/apply", JSON.stringify({ services: { web: { host: "10.0.0.1", port: 80 } } }));
    expect(declared.status).toBe(200);
    const reply = await call("POST", "/apply", '{"services":{}}', { "Content-Type": "text/plain", Origin: EVIL });
    expect(reply).toEqual({
      status: 403,
      body: {
        error: 'origin: "http://evil.example" may not change gorb (a browser write from another origin; trust an origin with --allow-origin)',
        code: "FORBIDDEN",
      },
    });
    expect(gorb.listServices()).toEqual(["web"]);
  });

  test("every write method is covered; reads are not writes", async () => {
    const { call } = setup();
    for (const method of ["PUT", "PATCH", "DELETE"]) {
      expect((await call(method, "/service/web", method === "DELETE" ? undefined : WEB, { Origin: EVIL })).status).toBe(403);
    }
    expect((await call("POST", "/reconcile", undefined, { Origin: EVIL })).status).toBe(403);
    expect((await call("GET", "/service", undefined, { Origin: EVIL })).status).toBe(200);
  });

  test("Sec-Fetch-Site: cross-site without an Origin is refused; same-origin and none are not", async () => {
    const { call } = setup();
    const refused = await call("PUT", "/service/web", WEB, { "Sec-Fetch-Site": "cross-site" });
    expect(refused).toEqual({ status: 403, body: { error: "sec-fetch-site: a cross-site browser write is refused", code: "FORBIDDEN" } });
    expect((await call("PUT", "/service/web", WEB, { "Sec-Fetch-Site": "same-origin" })).status).toBe(200);
    expect((await call("PUT", "/service/web2", JSON.stringify({ host: "10.0.0.2", port: 80 }), { "Sec-Fetch-Site": "none" })).status).toBe(200);
  });

  test("clients without an Origin (curl, Go, gorb's CLI) write with any Content-Type or none", async () => {
    const { call, gorb } = setup();
    expect((await call("PUT", "/service/a", JSON.stringify({ host: "10.0.0.1", port: 80 }))).status).toBe(200);
    const form = { "Content-Type": "application/x-www-form-urlencoded" }; // what curl -d sends
    expect((await call("PUT", "/service/b", JSON.stringify({ host: "10.0.0.2", port: 80 }), form)).status).toBe(200);
    expect((await call("PUT", "/service/c", JSON.stringify({ host: "10.0.0.3", port: 80 }), { "Content-Type": "text/plain" })).status).toBe(200);
    expect(gorb.listServices().sort()).toEqual(["a", "b", "c"]);
  });

  test("an --allow-origin origin and the API's own IP-literal origin may write", async () => {
    const { call } = setup({ allowOrigins: ["https://ops.example.com"] });
    expect((await call("PUT", "/service/a", WEB, { Origin: "https://ops.example.com" })).status).toBe(200);
    expect((await call("DELETE", "/service/a", undefined, { Origin: "http://127.0.0.1:4672" })).status).toBe(200);
    expect((await call("PUT", "/service/a", WEB, { Origin: "http://127.0.0.1:9999" })).status).toBe(403);
    expect((await call("PUT", "/service/a", WEB, { Origin: "null" })).status).toBe(403);
  });

  test("a same-origin write to a DNS name is refused unless the name is allowed (DNS rebinding)", async () => {
    const rebound = setup({}, "http://attacker.example:4672");
    expect((await rebound.call("PUT", "/service/a", WEB, { Origin: "http://attacker.example:4672" })).status).toBe(403);
    const named = setup({ allowOrigins: ["http://gorb.internal:4672"] }, "http://gorb.internal:4672");
    expect((await named.call("PUT", "/service/a", WEB, { Origin: "http://gorb.internal:4672" })).status).toBe(200);
  });

  test("a page's read of a DNS name is refused unless the name is allowed (DNS rebinding: a same-origin GET has no Origin)", async () => {
    const rebound = setup({ ui: true }, "http://attacker.example:4672");
    expect((await rebound.call("PUT", "/service/web", WEB)).status).toBe(200);
    const refusal = {
      status: 403,
      body: {
        error:
          'host: "attacker.example:4672" is a name, and a page could have rebound it to gorb (DNS rebinding): ' +
          "a browser is answered on an IP address, on localhost, or on an origin given with --allow-origin",
        code: "FORBIDDEN",
      },
    };
    for (const path of ["/service", "/service/web", "/events", "/metrics"]) {
      expect(await rebound.call("GET", path, undefined, { "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors" })).toEqual(refusal);
    }
    // Not a page: a client that is no browser (curl, Go clients, gorb's CLI) by name; what the user typed ("none").
    expect((await rebound.call("GET", "/service", undefined)).status).toBe(200);
    expect((await rebound.call("GET", "/service", undefined, { "Sec-Fetch-Site": "none" })).status).toBe(200);
    // The UI's files hold no data: served, so the UI can say why its reads are refused.
    expect((await rebound.call("GET", "/ui", undefined, { "Sec-Fetch-Site": "same-origin" })).status).toBe(200);
    const named = setup({ allowOrigins: ["http://gorb.internal:4672"] }, "http://gorb.internal:4672");
    expect((await named.call("GET", "/service", undefined, { "Sec-Fetch-Site": "same-origin" })).status).toBe(200);
    for (const base of ["http://127.0.0.1:4672", "http://localhost:4672", "http://[::1]:4672"]) {
      expect((await setup({}, base).call("GET", "/service", undefined, { "Sec-Fetch-Site": "same-origin" })).status).toBe(200);
    }
  });

  test("on a daemon that listens on loopback only, any request to a DNS name is refused: over HTTP a rebound page sends no Sec-Fetch-Site", async () => {
    const rebound = setup({ ui: true, localOnly: true }, "http://attacker.example:4672");
    const refusal = {
      status: 403,
      body: {
        error:
          'host: "attacker.example:4672" is a name, and gorb listens on loopback only, where a page could have rebound a name to it ' +
          "(DNS rebinding): reach it as 127.0.0.1, [::1] or localhost, or trust the origin with --allow-origin",
        code: "FORBIDDEN",
      },
    };
    // What Chromium sends to http://attacker.example (not a potentially trustworthy URL): no Origin, no Sec-Fetch-*.
    for (const path of ["/service", "/events", "/metrics", "/openapi.json"]) expect(await rebound.call("GET", path, undefined)).toEqual(refusal);
    expect(await rebound.call("PUT", "/service/web", WEB)).toEqual(refusal);
    expect(rebound.gorb.listServices()).toEqual([]);
    // The UI's files hold no data: served, so the UI can say why its reads are refused.
    expect((await rebound.call("GET", "/ui", undefined)).status).toBe(200);
    // This host's own names, and a name trusted with --allow-origin, are answered.
    for (const base of ["http://127.0.0.1:4672", "http://localhost:4672", "http://[::1]:4672"]) {
      expect((await setup({ localOnly: true }, base).call("GET", "/service", undefined)).status).toBe(200);
    }
    const named = setup({ localOnly: true, allowOrigins: ["http://gorb.internal:4672"] }, "http://gorb.internal:4672");
    expect((await named.call("GET", "/service", undefined)).status).toBe(200);
    // Listening on other addresses, a client that is no browser reaches gorb by any name (GORB clients do).
    expect((await setup({}, "http://lb1.example:4672").call("GET", "/service", undefined)).status).toBe(200);
  });

  test("the origin check comes before the token: a foreign page with a stolen token still gets 403", async () => {
    const { call } = setup({ token: "s3cret" });
    expect((await call("PUT", "/service/a", WEB, { Origin: EVIL, Authorization: "Bearer s3cret" })).status).toBe(403);
    expect((await call("PUT", "/service/a", WEB, { Authorization: "Bearer s3cret" })).status).toBe(200);
  });
});

/** A stand-in for Bun's server: a fixed peer address and in-flight count. */
function server(peer: string | null, pendingRequests = 1): GuardServer {
  return { requestIP: () => (peer === null ? null : { address: peer }), pendingRequests };
}

describe("--allow", () => {
  const guard = createGuard({ allow: [parseCidr("10.0.0.0/8"), parseCidr("2001:db8::/32")] });
  const request = new Request("http://127.0.0.1:4672/service", { method: "PUT", body: WEB });

  test("peers outside the networks get 403 FORBIDDEN; inside, loopback and IPv4-mapped ones get in", async () => {
    const refused = guard(request, server("192.0.2.9"));
    expect([refused?.status, await refused?.json()]).toEqual([
      403,
      { error: "peer: 192.0.2.9 is not in the allowed networks (--allow)", code: "FORBIDDEN" },
    ]);
    for (const peer of ["10.1.2.3", "::ffff:10.1.2.3", "2001:db8:1::5", "127.0.0.1", "127.3.2.1", "::1", "::ffff:127.0.0.1"]) {
      expect(guard(request, server(peer))).toBeNull();
    }
    for (const peer of ["11.0.0.1", "2001:db9::1", "::ffff:192.0.2.9", "fe80::1%eth0"]) {
      expect(guard(request, server(peer))?.status).toBe(403);
    }
  });

  test("a refused IPv4 client of a dual-stack listener (-l :4672) is named by its IPv4 address, as --allow lists it", async () => {
    const refused = guard(request, server("::ffff:192.0.2.9"));
    expect(await refused?.json()).toEqual({ error: "peer: 192.0.2.9 is not in the allowed networks (--allow)", code: "FORBIDDEN" });
    expect(await guard(request, server("2001:db9::1"))?.json()).toMatchObject({ error: "peer: 2001:db9::1 is not in the allowed networks (--allow)" });
  });

  test("an unknown peer (no server, or a closed request) is refused when there is an allow list", () => {
    expect(guard(request, null)?.status).toBe(403);
    expect(guard(request, server(null))?.status).toBe(403);
    expect(createGuard({})(request, null)).toBeNull();
  });

  test("the peer check comes first: a refused peer with an oversized body gets 403, not 413", async () => {
    const stack = makeGorb();
    const app = createApp({ gorb: stack.gorb, logger: stack.logger, allow: [parseCidr("10.0.0.0/8")], bodyLimitBytes: 1024 });
    const reply = await app.handle(new Request("http://127.0.0.1:4672/service/web", { method: "PUT", body: "x".repeat(100_000) }));
    expect(reply.status).toBe(403); // in-process there is no peer address: refused before the body is read
  });
});

describe("--max-connections", () => {
  test("a request beyond the cap gets 503 with Connection: close; at the cap it goes on", async () => {
    const guard = createGuard({ maxRequests: 4 });
    const request = new Request("http://127.0.0.1:4672/service");
    expect(guard(request, server("127.0.0.1", 4))).toBeNull();
    const busy = guard(request, server("127.0.0.1", 5));
    expect([busy?.status, busy?.headers.get("connection"), (await busy?.json()) as unknown]).toEqual([
      503,
      "close",
      { error: "connections: more than 4 requests in flight; try again", code: "UNAVAILABLE" },
    ]);
  });
});

describe("addresses and networks", () => {
  test("parseAddress reads IPv4, IPv6 (compressed, embedded IPv4, zone) and maps ::ffff:a.b.c.d to IPv4", () => {
    expect(parseAddress("192.0.2.1")).toEqual(Uint8Array.of(192, 0, 2, 1));
    expect(parseAddress("::ffff:192.0.2.1")).toEqual(Uint8Array.of(192, 0, 2, 1));
    expect(parseAddress("::ffff:c000:201")).toEqual(Uint8Array.of(192, 0, 2, 1));
    expect(parseAddress("2001:db8::1")?.length).toBe(16);
    expect(parseAddress("fe80::1%eth0")?.[0]).toBe(0xfe);
    for (const bad of ["", "1.2.3", "256.0.0.1", "1::2::3", "12345::", "gorb", ":::"]) expect(parseAddress(bad)).toBeNull();
  });

  test("networks contain what they should, and loopback is 127/8 and ::1", () => {
    const v6 = parseCidr("2001:db8::/32");
    expect(v6.text).toBe("2001:db8::/32");
    expect(cidrContains(v6, parseAddress("2001:db8:ffff::1") ?? new Uint8Array())).toBe(true);
    expect(cidrContains(parseCidr("0.0.0.0/0"), parseAddress("203.0.113.9") ?? new Uint8Array())).toBe(true);
    expect(cidrContains(parseCidr("0.0.0.0/0"), parseAddress("2001:db8::1") ?? new Uint8Array())).toBe(false);
    expect(isLoopback(parseAddress("127.255.0.1") ?? new Uint8Array())).toBe(true);
    expect(isLoopback(parseAddress("::2") ?? new Uint8Array())).toBe(false);
  });

  test("an address is written as RFC 5952 says: the longest run of zero groups (the first of equal ones) is ::, one zero group is not", () => {
    const shown = (text: string) => formatAddress(parseAddress(text) ?? new Uint8Array());
    expect(shown("2001:0:0:1:0:0:0:1")).toBe("2001:0:0:1::1");
    expect(shown("2001:db8:0:0:1:0:0:1")).toBe("2001:db8::1:0:0:1");
    expect(shown("2001:db8:0:1:1:1:1:1")).toBe("2001:db8:0:1:1:1:1:1");
    expect(shown("::")).toBe("::");
    expect(shown("::1")).toBe("::1");
    expect(shown("fe80::")).toBe("fe80::");
    expect(parseCidr("2001:0:0:1::/64").text).toBe("2001:0:0:1::/64");
  });

  test("an IPv4-mapped network is the IPv4 one: it matches the peers it names (they are read as IPv4)", () => {
    const mapped = parseCidr("::ffff:10.0.0.0/104");
    expect(mapped.text).toBe("10.0.0.0/8");
    expect(cidrContains(mapped, parseAddress("::ffff:10.1.2.3") ?? new Uint8Array())).toBe(true);
    expect(cidrContains(mapped, parseAddress("10.1.2.3") ?? new Uint8Array())).toBe(true);
    expect(cidrContains(mapped, parseAddress("11.0.0.1") ?? new Uint8Array())).toBe(false);
    expect(parseCidr("::ffff:192.0.2.7").text).toBe("192.0.2.7/32");
    expect(parseCidr("::ffff:0:0/96").text).toBe("0.0.0.0/0");
  });
});

describe("token comparison", () => {
  test("tokens of different lengths are compared as equal-length digests (no early length check)", () => {
    const spy = spyOn(crypto, "timingSafeEqual");
    try {
      expect(tokensEqual("a", "a-much-longer-secret-token")).toBe(false);
      expect(() => checkBearer("Bearer x", "a-much-longer-secret-token")).toThrow("authorization: the token is not valid");
      expect(spy.mock.calls.map((args) => args.map((buffer) => (buffer as Uint8Array).length))).toEqual([[32, 32], [32, 32]]);
      expect(tokensEqual("same", "same")).toBe(true);
    } finally {
      spy.mockRestore();
    }
  });
});

describe("while the daemon starts", () => {
  test("the token is checked first (401), then every request is answered 503 starting and changes nothing; then served", async () => {
    let starting: string | null = "restoring 2 saved service(s)";
    const { call, gorb } = setup({ token: "s3cret", starting: () => starting });
    expect((await call("GET", "/service", undefined)).status).toBe(401);
    const auth = { Authorization: "Bearer s3cret" };
    const answer = { status: 503, body: { error: "gorb is starting: restoring 2 saved service(s); try again shortly", code: "UNAVAILABLE" } };
    expect(await call("GET", "/service", undefined, auth)).toEqual(answer);
    expect(await call("PUT", "/service/web", WEB, auth)).toEqual(answer);
    expect(gorb.listServices()).toEqual([]);
    starting = null;
    expect(await call("PUT", "/service/web", WEB, auth)).toEqual({ status: 200, body: null });
    expect(gorb.listServices()).toEqual(["web"]);
  });
});
