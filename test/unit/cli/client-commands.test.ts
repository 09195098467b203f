/**
 * Client commands against a real REST API (createApp over the in-memory core) on a loopback port: what they
 * send, what they print, --json.
 */
import type { BgpStatus } from "../../../src/bgp/controller.ts";
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { ServiceDetail } from "../../../src/core/views.ts";
import { statusText } from "../../../src/render/status.ts";
import { type TestServer, runGorb, startServer } from "./_harness.ts";

let server: TestServer;
let env: Record<string, string>;

beforeEach(() => {
  server = startServer();
  env = { GORB_SERVER: server.url };
});

afterEach(async () => {
  await server.stop();
});

async function ok(args: string[]): Promise<string> {
  const run = await runGorb(args, env);
  expect({ code: run.code, stderr: run.code === 0 ? "" : run.stderr }).toEqual({ code: 0, stderr: "" });
  return run.stdout;
}

describe('ids "." and ".." (which a URL would drop from its path)', () => {
  test("are usage errors (exit 2) naming the id; nothing is sent and the service keeps its backends", async () => {
    await ok(["service", "add", "victim", "--host", "10.0.0.123", "--port", "80"]);
    await ok(["backend", "add", "victim", "vb", "--host", "10.1.0.123", "--pulse", "none"]);
    const sent = server.bodies.length;
    const cases: [string[], string][] = [
      [["backend", "rm", "victim", "."], 'backend: id must not be "."'],
      [["backend", "add", "victim", "..", "--host", "10.1.0.124"], 'backend: id must not be ".."'],
      [["backend", "set", "victim", ".", "--weight", "5"], 'backend: id must not be "."'],
      [["service", "rm", "."], 'service: id must not be "."'],
      [["service", "add", "..", "--host", "10.0.0.124", "--port", "80"], 'service: id must not be ".."'],
    ];
    for (const [args, message] of cases) {
      const run = await runGorb(args, env);
      expect({ code: run.code, stdout: run.stdout }).toEqual({ code: 2, stdout: "" });
      expect(run.stderr).toContain(message);
    }
    expect(server.bodies.length).toBe(sent);
    expect((await server.stack.gorb.getService("victim")).backends).toEqual(["vb"]);
  });
});

describe("gorb service", () => {
  test("add sends only the flags given, and the service exists afterwards", async () => {
    const run = await runGorb(["service", "add", "web", "--host", "10.0.0.1", "--port", "80", "--method", "rr"], env);
    expect(run).toEqual({ code: 0, stdout: "", stderr: "service web created\n" });
    expect(server.bodies).toEqual([{ host: "10.0.0.1", port: 80, method: "rr" }]);
    const info = await server.stack.gorb.getService("web");
    expect([info.options.address, info.options.port, info.options.method]).toEqual(["10.0.0.1", 80, "rr"]);
  });

  test("add maps every service flag to its wire field", async () => {
    await ok([
      "service", "add", "dns", "--host", "10.0.0.53", "--port", "53", "--protocol", "udp", "--method", "sh",
      "--flags", "sh-port", "--persistence-timeout", "600", "--netmask", "24", "--one-packet", "--panic-threshold", "40",
    ]);
    await ok(["service", "add", "marked", "--fwmark", "7", "--family", "inet6", "--persistent", "--pe", "sip"]);
    expect(server.bodies).toEqual([
      {
        host: "10.0.0.53",
        port: 53,
        protocol: "udp",
        method: "sh",
        flags: "sh-port",
        persistent: true,
        persistence_timeout: 600,
        persistence_netmask: 24,
        one_packet: true,
        panic_threshold: 40,
      },
      { fwmark: 7, family: "inet6", persistent: true, pe: "sip" },
    ]);
    const dns = await server.stack.gorb.getService("dns");
    expect([dns.options.persistence_timeout, dns.options.persistence_netmask, dns.options.one_packet, dns.options.panic_threshold]).toEqual([
      600, 24, true, 40,
    ]);
    const bad = await runGorb(["service", "add", "x", "--port", "80", "--panic-threshold", "101"], env);
    expect([bad.code, bad.stderr.split("\n")[0]]).toEqual([2, "error: --panic-threshold: must be 0-100, got 101"]);
  });

  test("enum flags take any case, as the API does, and send the canonical value: --protocol UDP, --family=INET6, --pe SIP", async () => {
    await ok(["service", "add", "dns", "--host", "10.0.0.53", "--port", "53", "--protocol", "UDP", "--sorry-server", "10.9.0.1", "--sorry-method", "Dr"]);
    await ok(["service", "add", "marked", "--fwmark", "7", "--family=INET6", "--pe", " SIP "]);
    expect(server.bodies).toEqual([
      { host: "10.0.0.53", port: 53, protocol: "udp", sorry_server: { host: "10.9.0.1", method: "dr" } },
      { fwmark: 7, family: "inet6", persistent: true, pe: "sip" },
    ]);
    expect((await server.stack.gorb.getService("dns")).options.protocol).toBe("udp");
  });

  test("--method takes a scheduler in any case (SH is sh); another value is a usage error listing them, and nothing is sent", async () => {
    await ok(["service", "add", "dns", "--host", "10.0.0.53", "--port", "53", "--method", "SH"]);
    expect(server.bodies).toEqual([{ host: "10.0.0.53", port: 53, method: "sh" }]);
    for (const args of [["service", "add", "web", "--host", "10.0.0.1", "--port", "80", "--method", "foo"], ["service", "set", "dns", "--method=foo"]]) {
      const run = await runGorb(args, env);
      expect([run.code, run.stderr.split("\n")[0]]).toEqual([2, 'error: --method: expected one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos, got "foo"']);
    }
    expect(server.bodies.length).toBe(1);
  });

  test("set PATCHes the given fields; --no-persistent sends false", async () => {
    await ok(["service", "add", "web", "--host", "10.0.0.1", "--port", "80", "--persistent"]);
    await ok(["service", "set", "web", "--method", "lc", "--no-persistent"]);
    expect(server.requests.at(-1)).toBe("PATCH /service/web");
    expect(server.bodies.at(-1)).toEqual({ method: "lc", persistent: false });
    const info = await server.stack.gorb.getService("web");
    expect([info.options.method, info.options.persistent]).toEqual(["lc", false]);
  });

  test("rm deletes the service", async () => {
    await ok(["service", "add", "web", "--host", "10.0.0.1", "--port", "80"]);
    const run = await runGorb(["service", "rm", "web"], env);
    expect([run.code, run.stderr]).toEqual([0, "service web removed\n"]);
    expect(server.stack.gorb.listServices()).toEqual([]);
  });

  test("ls prints a table, --json the services with their options", async () => {
    await ok(["service", "add", "web", "--host", "10.0.0.1", "--port", "80"]);
    await ok(["service", "add", "dns", "--host", "2001:db8::53", "--port", "53", "--protocol", "udp", "--method", "sh"]);
    const text = await ok(["service", "ls"]);
    const lines = text.trimEnd().split("\n");
    expect(lines[0]?.split(/\s+/)).toEqual(["NAME", "ADDRESS", "SCHEDULER", "PERSIST", "BACKENDS", "HEALTH"]);
    expect(lines.slice(1).map((l) => l.split(/\s{2,}/))).toEqual([
      ["dns", "udp [2001:db8::53]:53", "sh", "-", "0", "1.00"],
      ["web", "tcp 10.0.0.1:80", "wrr", "-", "0", "1.00"],
    ]);
    const json = JSON.parse(await ok(["service", "ls", "--json"])) as { id: string; options: { port: number } }[];
    expect(json.map((s) => [s.id, s.options.port])).toEqual([
      ["dns", 53],
      ["web", 80],
    ]);
    expect(json[0]).not.toHaveProperty("backend_details");
  });

  test("ls with no services says so", async () => {
    expect(await ok(["service", "ls"])).toBe("no services\n");
    expect(JSON.parse(await ok(["service", "ls", "--json"]))).toEqual([]);
  });

  test("show prints the summary and a backend table; --json is the GET answer", async () => {
    await ok(["service", "add", "web", "--host", "10.0.0.1", "--port", "80", "--flags", "flag-1"]);
    await ok(["backend", "add", "web", "b1", "--host", "10.1.0.1"]);
    const text = await ok(["service", "show", "web"]);
    expect(text).toContain("address      tcp 10.0.0.1:80\n");
    expect(text).toContain("scheduler    wrr (flags flag-1)\n");
    expect(text).toContain("backends     b1\n");
    expect(text).toMatch(/└ b1 +10\.1\.0\.1:80 +nat +100 +100 +- +unknown/);
    const json = JSON.parse(await ok(["service", "show", "web", "--json"])) as unknown;
    expect(json).toEqual(JSON.parse(JSON.stringify(await server.stack.gorb.getService("web"))));
  });

  test("show says when the kernel does not have the service (lost, and the reconcile could not put it back)", async () => {
    await ok(["service", "add", "web", "--host", "10.0.0.1", "--port", "80"]);
    expect(await ok(["service", "show", "web"])).not.toContain("kernel");
    const { driver, gorb } = server.stack;
    await driver.flush();
    driver.failNext("add-service", "ENOMEM");
    await gorb.reconcile();
    expect(await ok(["service", "show", "web"])).toContain("kernel       MISSING: IPVS does not have it (each reconcile tries to add it)\n");
    await gorb.reconcile();
    expect(await ok(["service", "show", "web"])).not.toContain("kernel");
  });

  test("ids are URL-encoded", async () => {
    await ok(["service", "add", "a b?c", "--host", "10.0.0.1", "--port", "80"]);
    expect(server.requests).toEqual(["PUT /service/a%20b%3Fc"]);
    expect(server.stack.gorb.listServices()).toEqual(["a b?c"]);
  });
});

describe("gorb backend", () => {
  beforeEach(async () => {
    await ok(["service", "add", "web", "--host", "10.0.0.1", "--port", "8080"]);
  });

  test("`gorb backend add web b1 --host 10.1.0.1 --pulse http` works; the port defaults to the service's", async () => {
    const run = await runGorb(["backend", "add", "web", "b1", "--host", "10.1.0.1", "--pulse", "http"], env);
    expect(run).toEqual({ code: 0, stdout: "", stderr: "backend web/b1 added\n" });
    expect(server.bodies.at(-1)).toEqual({ host: "10.1.0.1", pulse: { type: "http" } });
    const info = await server.stack.gorb.getBackend("web", "b1");
    expect([info.options.port, info.options.weight, info.options.method]).toEqual([8080, 100, "nat"]);
    expect((info.options.pulse as { type: string }).type).toBe("http");
  });

  test("enum flags take any case: --method TUNNEL (the alias of --forward), --tunnel-type Gue, --pulse HTTP", async () => {
    await ok(["backend", "add", "web", "b3", "--host", "10.1.0.3", "--method", "TUNNEL", "--tunnel-type", "Gue", "--tunnel-port", "6080", "--tunnel-checksum", "CSUM", "--pulse", "HTTP"]);
    expect(server.bodies.at(-1)).toEqual({ host: "10.1.0.3", method: "tunnel", tunnel_type: "gue", tunnel_port: 6080, tunnel_checksum: "csum", pulse: { type: "http" } });
    const info = await server.stack.gorb.getBackend("web", "b3");
    expect([info.options.method, info.options.tunnel_type, (info.options.pulse as { type: string }).type]).toEqual(["tunnel", "gue", "http"]);
  });

  test("add maps every backend and pulse flag to its wire field", async () => {
    await ok([
      "backend", "add", "web", "b2", "--host", "10.1.0.2", "--port", "8080", "--weight", "50", "--method", "tunnel",
      "--tunnel-type", "gue", "--tunnel-port", "6080", "--tunnel-checksum", "csum", "--upper-threshold", "100",
      "--lower-threshold", "10", "--pulse", "http", "--pulse-path", "/healthz", "--pulse-interval", "5s",
      "--pulse-expect", "200-299", "--pulse-port", "9000", "--pulse-host", "10.1.0.9", "--pulse-method", "HEAD",
      "--pulse-timeout", "2s", "--pulse-rise", "2", "--pulse-fall", "3",
    ]);
    expect(server.bodies.at(-1)).toEqual({
      host: "10.1.0.2",
      port: 8080,
      weight: 50,
      method: "tunnel",
      tunnel_type: "gue",
      tunnel_port: 6080,
      tunnel_checksum: "csum",
      upper_threshold: 100,
      lower_threshold: 10,
      pulse: {
        type: "http",
        interval: "5s",
        args: { path: "/healthz", expect: "200-299", port: 9000, host: "10.1.0.9", method: "HEAD", timeout: "2s", rise: 2, fall: 3 },
      },
    });
    const info = await server.stack.gorb.getBackend("web", "b2");
    expect([info.options.tunnel_type, info.options.tunnel_port, info.options.upper_threshold]).toEqual(["gue", 6080, 100]);
  });

  test("--pulse dns takes its name from --pulse-name, --pulse exec its command from --pulse-command", async () => {
    await ok(["backend", "add", "web", "d1", "--host", "10.1.0.4", "--pulse", "dns", "--pulse-name", "example.org"]);
    expect(server.bodies.at(-1)).toEqual({ host: "10.1.0.4", pulse: { type: "dns", args: { name: "example.org" } } });
    const dns = (await server.stack.gorb.getBackend("web", "d1")).options.pulse as { type: string; args: unknown };
    expect([dns.type, dns.args]).toEqual(["dns", { name: "example.org" }]);
    const command = "/etc/gorb/checks/db-ready --quick";
    await ok(["backend", "add", "web", "e1", "--host", "10.1.0.5", "--pulse", "exec", "--pulse-command", command]);
    expect(server.bodies.at(-1)).toEqual({ host: "10.1.0.5", pulse: { type: "exec", args: { command } } });
    const exec = (await server.stack.gorb.getBackend("web", "e1")).options.pulse as { type: string; args: unknown };
    expect([exec.type, exec.args]).toEqual(["exec", { command }]);
  });

  test("set with pulse flags merges them into the current pulse (the API replaces it whole)", async () => {
    await ok(["backend", "add", "web", "b1", "--host", "10.1.0.1", "--pulse", "http", "--pulse-path", "/h"]);
    await ok(["backend", "set", "web", "b1", "--pulse-interval", "5s", "--weight", "7"]);
    expect(server.requests.slice(-2)).toEqual(["GET /service/web/b1", "PATCH /service/web/b1"]);
    const sent = server.bodies.at(-1) as { weight: number; pulse: { type: string; interval: string; args?: { path?: string } } };
    expect([sent.weight, sent.pulse.type, sent.pulse.interval]).toEqual([7, "http", "5s"]);
    const info = await server.stack.gorb.getBackend("web", "b1");
    expect([info.options.weight, (info.options.pulse as { interval: string }).interval]).toEqual([7, "5s"]);
  });

  test("a --pulse-* flag the check's type does not read is a usage error, sending nothing (the API would drop it)", async () => {
    const refused = async (args: string[], flag: string) => {
      const sent = server.requests.length;
      const run = await runGorb(args, env);
      expect([run.code, run.stderr]).toEqual([2, expect.stringContaining(`${flag}: a check of type `)]);
      expect(server.requests.slice(sent).filter((r) => !r.startsWith("GET "))).toEqual([]);
    };
    await refused(["backend", "add", "web", "b1", "--host", "10.1.0.1", "--pulse-path", "/health"], "--pulse-path");
    await refused(["backend", "add", "web", "b1", "--host", "10.1.0.1", "--pulse", "http", "--pulse-insecure"], "--pulse-insecure");
    await refused(["backend", "add", "web", "b1", "--host", "10.1.0.1", "--pulse", "none", "--pulse-port", "81"], "--pulse-port");
    await ok(["backend", "add", "web", "b1", "--host", "10.1.0.1", "--pulse", "tcp"]);
    await refused(["backend", "set", "web", "b1", "--pulse-path", "/health"], "--pulse-path");
    await ok(["backend", "set", "web", "b1", "--pulse", "HTTP", "--pulse-path", "/health"]);
    await ok(["backend", "set", "web", "b1", "--pulse-expect", "2xx"]);
    const pulse = (await server.stack.gorb.getBackend("web", "b1")).options.pulse as { type: string; args: unknown };
    expect([pulse.type, pulse.args]).toEqual(["http", { path: "/health", expect: "2xx" }]);
  });

  test("set without pulse flags sends a plain PATCH", async () => {
    await ok(["backend", "add", "web", "b1", "--host", "10.1.0.1"]);
    await ok(["backend", "set", "web", "b1", "--weight", "0"]);
    expect(server.requests.at(-1)).toBe("PATCH /service/web/b1");
    expect(server.bodies.at(-1)).toEqual({ weight: 0 });
  });

  test("show prints configured and live weight and health; --json is the GET answer", async () => {
    await ok(["backend", "add", "web", "b1", "--host", "10.1.0.1", "--weight", "40"]);
    const text = await ok(["backend", "show", "web", "b1"]);
    expect(text).toContain("target       10.1.0.1:8080\n");
    expect(text).toContain("weight       40 configured, 40 live\n");
    expect(text).toContain("health       unknown, 0.00\n");
    const json = JSON.parse(await ok(["backend", "show", "web", "b1", "--json"])) as unknown;
    expect(json).toEqual(JSON.parse(JSON.stringify(await server.stack.gorb.getBackend("web", "b1"))));
  });

  test("rm removes the backend", async () => {
    await ok(["backend", "add", "web", "b1", "--host", "10.1.0.1"]);
    const run = await runGorb(["backend", "rm", "web", "b1"], env);
    expect([run.code, run.stderr]).toEqual([0, "backend web/b1 removed\n"]);
    expect((await server.stack.gorb.getService("web")).backends).toEqual([]);
  });
});

describe("gorb status", () => {
  test("one table with configured and live weight, health, state and the check message", async () => {
    await ok(["service", "add", "web", "--host", "10.0.0.1", "--port", "80"]);
    await ok(["backend", "add", "web", "b1", "--host", "10.1.0.1"]);
    await ok(["backend", "add", "web", "b2", "--host", "10.1.0.2", "--weight", "50"]);
    server.stack.health.report("web", "b1", "up");
    server.stack.health.report("web", "b2", "down");
    await server.stack.gorb.idle();
    const b2 = await server.stack.gorb.getBackend("web", "b2");
    expect([b2.metrics.state, b2.effective_weight, b2.metrics.message]).toEqual(["down", 0, "connection refused"]);
    const text = await ok(["status"]);
    const rows = text.trimEnd().split("\n").map((l) => l.split(/\s{2,}/));
    expect(rows[0]).toEqual(["NAME", "ADDRESS", "MODE", "WEIGHT", "LIVE", "HEALTH", "STATE", "ACT/INACT", "CPS", "IN B/s", "OUT B/s", "CHECK"]);
    expect(rows[1]?.slice(0, 3)).toEqual(["web", "tcp 10.0.0.1:80", "wrr"]);
    expect(rows[1]).toContain("1/2 up");
    expect(rows[2]).toEqual(["├ b1", "10.1.0.1:80", "nat", "100", "100", "1.00", "up", "0/0", "0", "0", "0"]);
    expect(rows[3]).toEqual([
      "└ b2", "10.1.0.2:80", "nat", "50", "0", b2.metrics.health.toFixed(2), "down", "0/0", "0", "0", "0", "connection refused",
    ]);
  });

  test("SERVICE limits the table; --json prints the details", async () => {
    await ok(["service", "add", "web", "--host", "10.0.0.1", "--port", "80"]);
    await ok(["service", "add", "api", "--host", "10.0.0.2", "--port", "80"]);
    await ok(["backend", "add", "web", "b1", "--host", "10.1.0.1"]);
    const text = await ok(["status", "web"]);
    expect(text).toContain("web ");
    expect(text).not.toContain("api ");
    const json = JSON.parse(await ok(["status", "--json"])) as { id: string; backend_details: { id: string }[] }[];
    expect(json.map((s) => [s.id, s.backend_details.map((b) => b.id)])).toEqual([
      ["api", []],
      ["web", ["b1"]],
    ]);
    const one = JSON.parse(await ok(["status", "web", "--json"])) as { id: string; backend_details: { id: string }[] }[];
    expect(one.map((s) => [s.id, s.backend_details.map((b) => b.id)])).toEqual([["web", ["b1"]]]);
  });

  test("marks a service the kernel does not have, in the daemon's table and in the one rendered from JSON", async () => {
    await ok(["service", "add", "web", "--host", "10.0.0.1", "--port", "80"]);
    const { driver, gorb } = server.stack;
    await driver.flush();
    driver.failNext("add-service", "ENOMEM");
    await gorb.reconcile();
    expect(await ok(["status"])).toMatch(/^web +tcp 10\.0\.0\.1:80 +wrr +1\.00 +0 backends, NOT IN KERNEL +0\/0 +- +- +-$/m);
    expect(await ok(["status", "web"])).toContain("0 backends, NOT IN KERNEL");
    await gorb.reconcile();
    expect(await ok(["status"])).not.toContain("NOT IN KERNEL");
  });

  test("no services", async () => {
    expect(await ok(["status"])).toBe("no services\n");
  });

  test("the daemon renders the table (one GET with Accept: text/plain), the same table the CLI renders from the JSON", async () => {
    await ok(["service", "add", "web", "--host", "10.0.0.1", "--port", "80"]);
    await ok(["service", "add", "dns", "--host", "10.0.0.53", "--port", "53", "--protocol", "udp"]);
    await ok(["backend", "add", "web", "b1", "--host", "10.1.0.1"]);
    await ok(["backend", "add", "web", "b2", "--host", "10.1.0.2", "--weight", "50"]);
    server.stack.health.report("web", "b2", "down");
    await server.stack.gorb.idle();
    const seen = server.requests.length;
    const text = await ok(["status"]);
    // One request: this daemon has no BGP, so there is no section to ask for.
    expect(server.requests.slice(seen)).toEqual(["GET /service?detail=true"]);
    const details = JSON.parse(await ok(["status", "--json"])) as ServiceDetail[];
    expect(text).toBe(statusText(details));
    expect(text).toContain("connection refused");

    const asText = await fetch(`${server.url}/service`, { headers: { accept: "text/plain" } });
    expect([asText.status, asText.headers.get("content-type"), await asText.text()]).toEqual([200, "text/plain; charset=utf-8", text]);
    const asJson = await fetch(`${server.url}/service`, { headers: { accept: "application/json" } });
    expect(await asJson.json()).toEqual(["dns", "web"]);
  });

  test("a daemon that answers JSON to Accept: text/plain (older than the text table) gets the table rendered by the CLI", async () => {
    await ok(["service", "add", "web", "--host", "10.0.0.1", "--port", "80"]);
    await ok(["backend", "add", "web", "b1", "--host", "10.1.0.1"]);
    const expected = await ok(["status"]);
    // The older daemon: the same API, with the Accept header dropped on the way.
    const old = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(request) {
        const url = new URL(request.url);
        return fetch(`${server.url}${url.pathname}${url.search}`, { method: request.method, headers: { accept: "application/json" } });
      },
    });
    try {
      const seen = server.requests.length;
      const run = await runGorb(["status"], { GORB_SERVER: `http://127.0.0.1:${old.port}` });
      expect(run).toEqual({ code: 0, stdout: expected, stderr: "" });
      // The text (answered as JSON), the JSON, then the BGP section, which an older daemon does not render.
      expect(server.requests.slice(seen)).toEqual(["GET /service?detail=true", "GET /service?detail=true", "GET /bgp"]);
    } finally {
      await old.stop(true);
    }
  });

  test("a daemon that announces VIPs renders the BGP section under the table, in the same answer", async () => {
    const bgp: BgpStatus = {
      speaker: { kind: "bird", reachable: true, version: "BIRD 2.0.12", lastError: null },
      hold_down_ms: 3000,
      vips: [
        { vip: "10.0.0.1", prefix: "10.0.0.1/32", services: ["web"], healthy: true, state: "announced", wanted: true, confirmed: true, announce_at: null, error: null },
        { vip: "10.0.0.2", prefix: "10.0.0.2/32", services: [], healthy: false, state: "withdrawn", wanted: false, confirmed: false, announce_at: null, error: "no route" },
      ],
    };
    const announcing = startServer({ bgp: { status: () => bgp } });
    try {
      const env = { GORB_SERVER: announcing.url };
      expect((await runGorb(["service", "add", "web", "--host", "10.0.0.1", "--port", "80"], env)).code).toBe(0);
      const run = await runGorb(["status"], env);
      expect(run.code).toBe(0);
      const [table, section] = run.stdout.split("\n\n");
      expect(table).toStartWith("NAME  ADDRESS");
      expect(section).toBe(
        "BGP (bird): reachable, BIRD 2.0.12; hold-down 3000 ms\n" +
          "PREFIX       SERVICES  HEALTH     STATE      WANTED  IN BIRD  ERROR\n" +
          "10.0.0.1/32  web       healthy    announced  yes     yes\n" +
          "10.0.0.2/32  -         unhealthy  withdrawn  no      no       no route\n",
      );
      expect(announcing.requests.filter((r) => r.startsWith("GET"))).toEqual(["GET /service?detail=true"]);
      // `gorb bgp status` shows the same section from GET /bgp.
      expect((await runGorb(["bgp", "status"], env)).stdout).toBe(section ?? "");
    } finally {
      await announcing.stop();
    }
  });

  test("a backend deleted between the service's read and its own (a drain ending) is left out, not a not-found", async () => {
    await ok(["service", "add", "web", "--host", "10.0.0.1", "--port", "80"]);
    await ok(["backend", "add", "web", "b1", "--host", "10.1.0.1"]);
    await ok(["backend", "add", "web", "b2", "--host", "10.1.0.2"]);
    // The daemon answers the service's read, then `race` (once) deletes something before the CLI reads on.
    let race: (() => Promise<void>) | null = null;
    const racing = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(request) {
        const url = new URL(request.url);
        const answer = await fetch(`${server.url}${url.pathname}${url.search}`, { headers: { accept: "application/json" } });
        const then = url.pathname === "/service/web" ? race : null;
        if (then !== null) {
          race = null;
          await then();
        }
        return answer;
      },
    });
    try {
      const env = { GORB_SERVER: `http://127.0.0.1:${racing.port}` };
      race = () => server.stack.gorb.deleteBackend("web", "b1");
      const run = await runGorb(["status", "web", "--json"], env);
      expect([run.code, run.stderr]).toEqual([0, ""]);
      expect((JSON.parse(run.stdout) as ServiceDetail[]).map((s) => [s.id, s.backend_details.map((b) => b.id)])).toEqual([["web", ["b2"]]]);
      await ok(["backend", "add", "web", "b1", "--host", "10.1.0.1"]);
      race = () => server.stack.gorb.deleteBackend("web", "b1");
      const show = await runGorb(["service", "show", "web"], env);
      expect([show.code, show.stderr]).toEqual([0, ""]);
      expect(show.stdout).toContain("└ b2");
      expect(show.stdout).not.toContain("b1  ");
      // The service itself gone meanwhile is its own not-found, as when it was read.
      race = () => server.stack.gorb.deleteService("web");
      expect(await runGorb(["status", "web"], env)).toEqual({ code: 4, stdout: "", stderr: 'error: service "web" not found\n' });
    } finally {
      await racing.stop(true);
    }
  });

  // --watch: ./status-watch.test.ts.
});

describe("server and token", () => {
  test("--server wins over GORB_SERVER; a bare host:port is taken as http", async () => {
    const run = await runGorb(["service", "ls", "--server", server.url.replace("http://", "")], {
      GORB_SERVER: "http://127.0.0.1:1",
    });
    expect([run.code, run.stdout]).toEqual([0, "no services\n"]);
  });

  test("--token / GORB_TOKEN are sent as a bearer token", async () => {
    const secured = startServer({ token: "s3cret" });
    try {
      const withFlag = await runGorb(["service", "ls", "--token", "s3cret"], { GORB_SERVER: secured.url });
      const withEnv = await runGorb(["service", "ls"], { GORB_SERVER: secured.url, GORB_TOKEN: "s3cret" });
      const without = await runGorb(["service", "ls"], { GORB_SERVER: secured.url });
      expect([withFlag.code, withEnv.code]).toEqual([0, 0]);
      expect(without).toEqual({
        code: 6,
        stdout: "",
        stderr: "error: authorization: a bearer token is required (pass --token or set GORB_TOKEN)\n",
      });
    } finally {
      await secured.stop();
    }
  });
});
