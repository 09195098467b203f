/** GET /bgp and the BGP gauges of /metrics, from the daemon's VIP controller (a fixed status here). */
import { describe, expect, test } from "bun:test";
import { createApp } from "../../../src/api/app.ts";
import type { BgpStatus } from "../../../src/bgp/controller.ts";
import { makeGorb } from "../core/fakes.ts";

const STATUS: BgpStatus = {
  speaker: { kind: "bird", reachable: true, version: "BIRD 2.0.12 ready.", lastError: null },
  hold_down_ms: 3000,
  vips: [
    { vip: "203.0.113.10", prefix: "203.0.113.10/32", services: ["web"], healthy: true, state: "announced", wanted: true, confirmed: true, announce_at: null, error: null },
    { vip: "2001:db8::10", prefix: "2001:db8::10/128", services: ["v6"], healthy: false, state: "withdrawn", wanted: false, confirmed: false, announce_at: null, error: "BIRD 8002 syntax error" },
  ],
};

function call(app: ReturnType<typeof createApp>, path: string) {
  return app.handle(new Request(`http://gorb.test${path}`));
}

describe("GET /bgp", () => {
  test("shows the controller's status", async () => {
    const { gorb, logger } = makeGorb();
    const app = createApp({ gorb, logger, bgp: { status: () => STATUS } });
    const reply = await call(app, "/bgp");
    expect(reply.status).toBe(200);
    expect(await reply.json()).toEqual(STATUS);
  });

  test("404 naming the flag when gorb runs without BGP", async () => {
    const { gorb, logger } = makeGorb();
    const reply = await call(createApp({ gorb, logger }), "/bgp");
    expect(reply.status).toBe(404);
    expect(((await reply.json()) as { error: string }).error).toContain("--bgp-bird-socket");
  });

  test("/metrics exports gorb_bgp_vip_wanted and _confirmed per VIP, and gorb_bgp_speaker_up", async () => {
    const { gorb, logger } = makeGorb();
    const text = await (await call(createApp({ gorb, logger, bgp: { status: () => STATUS } }), "/metrics")).text();
    expect(text).toContain('gorb_bgp_vip_wanted{vip="203.0.113.10",prefix="203.0.113.10/32"} 1');
    expect(text).toContain('gorb_bgp_vip_confirmed{vip="2001:db8::10",prefix="2001:db8::10/128"} 0');
    expect(text).toContain("# TYPE gorb_bgp_vip_confirmed gauge");
    expect(text).toContain("gorb_bgp_speaker_up 1");
    const without = await (await call(createApp({ gorb, logger }), "/metrics")).text();
    expect(without).not.toContain("gorb_bgp_");
  });
});
