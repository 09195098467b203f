/**
 * dr, tunnel (ipip) and local destinations get the client's packets with their port unchanged: IPVS rewrites the
 * port only for nat. So a backend or sorry server of an address service on another port than the service's is
 * refused where one is created or its method changes (API, PATCH, apply, --direct), naming the field; a fwmark
 * service's are not (they keep the packet's port whatever theirs), and one saved before the rule, or written to a
 * fleet's shared state by an older node, still restores, applies and takes other changes.
 */
import { describe, expect, test } from "bun:test";
import { createApp } from "../../../src/api/app.ts";
import { makeGorb } from "./fakes.ts";

function setup() {
  const stack = makeGorb();
  const app = createApp({ gorb: stack.gorb, logger: stack.logger });
  const call = async (method: string, path: string, body?: unknown) => {
    const init: RequestInit = { method, headers: { "content-type": "application/json" } };
    if (body !== undefined) init.body = JSON.stringify(body);
    const response = await app.handle(new Request(`http://127.0.0.1:4672${path}`, init));
    const text = await response.text();
    return { status: response.status, body: text === "" ? null : (JSON.parse(text) as unknown) };
  };
  const dests = () => stack.driver.peek().flatMap((e) => e.destinations.map((d) => `${d.address}:${d.port} ${d.forward} ${d.weight}`));
  return { ...stack, call, dests };
}

const refusal = (field: string, problem: string) => ({ status: 400, body: { error: `${field}: ${problem}`, code: "VALIDATION", field } });
const backendProblem = (method: string, port: number) =>
  `must be the service's port 80 for a ${method} backend, got ${port}: IPVS forwards ${method} packets without changing ` +
  "their port (only nat does); leave port out, and set pulse.args.port to check another port";

describe("a backend's port under a method that keeps the packet's port", () => {
  test.each(["dr", "tunnel", "ipip", "local"])("%s on another port than the service's: 400 naming port, nothing changed", async (method) => {
    const s = setup();
    await s.call("PUT", "/service/web", { host: "10.0.0.1", port: 80 });
    expect(await s.call("PUT", "/service/web/b1", { host: "10.1.0.1", port: 8080, method })).toEqual(refusal("port", backendProblem(method, 8080)));
    expect([s.dests(), s.health.targets.size, (await s.call("GET", "/service/web/b1")).status]).toEqual([[], 0, 404]);
    // Left out, the port is the service's; given as the service's, accepted alike.
    expect((await s.call("PUT", "/service/web/b1", { host: "10.1.0.1", method })).status).toBe(200);
    expect((await s.call("PUT", "/service/web/b2", { host: "10.1.0.2", port: 80, method })).status).toBe(200);
    expect(s.dests()).toEqual([`10.1.0.1:80 ${method === "ipip" ? "tunnel" : method} 100`, `10.1.0.2:80 ${method === "ipip" ? "tunnel" : method} 100`]);
  });

  test("nat rewrites the port: any port; a fwmark service's dr backend keeps the packet's port whatever its own", async () => {
    const s = setup();
    await s.call("PUT", "/service/web", { host: "10.0.0.1", port: 80 });
    expect((await s.call("PUT", "/service/web/b1", { host: "10.1.0.1", port: 8080, method: "nat" })).status).toBe(200);
    await s.call("PUT", "/service/marked", { fwmark: 7 });
    expect((await s.call("PUT", "/service/marked/b1", { host: "10.1.0.1", port: 8080, method: "dr" })).status).toBe(200);
    expect(s.dests()).toEqual(["10.1.0.1:8080 nat 100", "10.1.0.1:8080 dr 100"]);
  });

  test("a PATCH to such a method or port is refused and changes nothing; other fields of a saved one still change", async () => {
    const s = setup();
    await s.call("PUT", "/service/web", { host: "10.0.0.1", port: 80 });
    await s.call("PUT", "/service/web/b1", { host: "10.1.0.1", port: 8080 });
    await s.call("PUT", "/service/web/b2", { host: "10.1.0.2", method: "dr" });
    expect(await s.call("PATCH", "/service/web/b1", { method: "dr" })).toEqual(refusal("port", backendProblem("dr", 8080)));
    // b2's port is the service's because it was left out: asking for another one is about port.
    expect((await s.call("PATCH", "/service/web/b2", { port: 81 })).body).toMatchObject({ field: "port" });
    expect(s.dests()).toEqual(["10.1.0.1:8080 nat 100", "10.1.0.2:80 dr 100"]);
  });

  test("a dr backend on another port saved before the rule restores with a warning, and takes a PATCH of its weight", async () => {
    const { gorb, driver, logger } = makeGorb();
    const sorry = { host: "10.9.0.1", port: 8080, method: "ipip" };
    await gorb.restore({
      services: [{ id: "web", source: "api", fields: { host: "10.0.0.1", port: 80, sorry_server: sorry }, key: { family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 }, vip: false }],
      backends: [{ service: "web", id: "b1", source: "api", fields: { host: "10.1.0.1", port: 8080, method: "dr" }, address: { address: "10.1.0.1", family: "inet" } }],
    });
    expect(logger.lines.filter((l) => l.startsWith("warn restore:"))).toEqual([
      'warn restore: the sorry server of service "web": sorry_server.port must be the service\'s port 80 for method ipip, got 8080: ' +
        "IPVS forwards ipip packets without changing their port (only nat does); leave it out; kept as it is",
      `warn restore: backend "b1" of service "web": port ${backendProblem("dr", 8080)}; kept as it is`,
    ]);
    await gorb.updateBackend("web", "b1", { weight: 50 });
    await gorb.idle();
    expect(driver.peek()[0]?.destinations.map((d) => [d.port, d.forward, d.weight])).toEqual([[8080, "dr", 50]]);
    await expect(gorb.updateBackend("web", "b1", { method: "tunnel" })).rejects.toMatchObject({ field: "port" });
  });
});

describe("another node's rows (a fleet's shared state) are saved state, as at restore", () => {
  test("a dr backend on another port and a dr sorry server on another port, written by an older node, apply and take changes", async () => {
    const { gorb, driver } = makeGorb();
    const key = { family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 } as const;
    const rows = (weight: number, quorum: number) => ({
      services: [{ id: "web", source: "api", fields: { host: "10.0.0.1", port: 80, quorum, sorry_server: { host: "10.9.0.1", port: 8080, method: "dr" } }, key, vip: false }],
      backends: [{ service: "web", id: "b1", source: "api", fields: { host: "10.1.0.1", port: 8080, method: "dr", weight, pulse: { type: "none" } }, address: { address: "10.1.0.1", family: "inet" } }],
    }) as const;
    expect(await gorb.applyRemote(() => ({ state: rows(100, 0), ids: ["web"] }))).toEqual({ changed: 1, failed: [] });
    // Every field of a row comes as the change (./remote.ts patchTo): the port and method are there, unchanged.
    expect(await gorb.applyRemote(() => ({ state: rows(50, 1), ids: ["web"] }))).toEqual({ changed: 1, failed: [] });
    await gorb.idle();
    expect(driver.peek()[0]?.destinations.map((d) => `${d.address}:${d.port} ${d.forward} ${d.weight}`)).toEqual(["10.1.0.1:8080 dr 50"]);
    expect((await gorb.getService("web")).options).toMatchObject({ quorum: 1, sorry_server: { host: "10.9.0.1", port: 8080, method: "dr" } });
  });
});

describe("a sorry server's port", () => {
  const sorryProblem = (method: string) =>
    `must be the service's port 80 for method ${method}, got 8080: IPVS forwards ${method} packets without changing their port (only nat does); leave it out`;

  test("dr or ipip on another port: 400 naming sorry_server.port on PUT and PATCH, nothing changed; nat on any port", async () => {
    const s = setup();
    for (const method of ["dr", "ipip"]) {
      expect(await s.call("PUT", "/service/web", { host: "10.0.0.1", port: 80, sorry_server: { host: "10.9.0.1", port: 8080, method } })).toEqual(
        refusal("sorry_server.port", sorryProblem(method)),
      );
    }
    expect(s.driver.peek()).toEqual([]);
    await s.call("PUT", "/service/web", { host: "10.0.0.1", port: 80, sorry_server: { host: "10.9.0.1", port: 8080 } });
    expect(await s.call("PATCH", "/service/web", { sorry_server: { host: "10.9.0.1", port: 8080, method: "dr" } })).toEqual(
      refusal("sorry_server.port", sorryProblem("dr")),
    );
    expect(((await s.call("GET", "/service/web")).body as { options: { sorry_server: unknown } }).options.sorry_server).toEqual({ host: "10.9.0.1", port: 8080, method: "nat" });
    expect((await s.call("PATCH", "/service/web", { sorry_server: { host: "10.9.0.1", method: "dr" } })).status).toBe(200);
  });
});
