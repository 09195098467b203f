/**
 * `gorb backend show`'s block (src/cli/views.ts): what the daemon left out of a backend's view reads as the
 * contract's default (a pulse without type or interval, a tunnel with the default checksum).
 */
import { describe, expect, test } from "bun:test";
import type { BackendInfo } from "../../../src/cli/client.ts";
import { backendSummary } from "../../../src/cli/views.ts";

function backend(pulse: unknown, tunnelChecksum: string): BackendInfo {
  return {
    options: {
      host: "10.1.0.1",
      address: "10.1.0.1",
      port: 80,
      weight: 100,
      method: "tunnel",
      pulse: pulse as BackendInfo["options"]["pulse"],
      vsid: "web",
      upper_threshold: 0,
      lower_threshold: 0,
      tunnel_type: "gue",
      tunnel_port: 6080,
      tunnel_checksum: tunnelChecksum,
      slow_start: "",
      maintenance: false,
    },
    metrics: { status: 0, state: "unknown", health: 1, uptime: 0, last_check_ms: null, message: "" },
    effective_weight: 100,
    stats: null,
    active_conns: null,
    inactive_conns: null,
    persistent_conns: null,
  };
}

const line = (text: string, key: string): string | undefined => text.split("\n").find((l) => l.trimStart().startsWith(key));

describe("backend show", () => {
  test("a pulse without type or interval shows the contract's defaults", () => {
    expect(line(backendSummary("web", "b1", backend({ args: null }, "nocsum")), "pulse")).toMatch(/pulse\s+tcp, every 1m$/);
    expect(line(backendSummary("web", "b1", backend({ type: "http", interval: "5s", args: { path: "/h" } }, "nocsum")), "pulse")).toMatch(
      /pulse\s+http, every 5s, path=\/h$/,
    );
  });

  test("the tunnel's checksum is shown unless it is the default", () => {
    expect(line(backendSummary("web", "b1", backend({ type: "tcp", interval: "1m", args: null }, "nocsum")), "forward")).not.toContain("nocsum");
    expect(line(backendSummary("web", "b1", backend({ type: "tcp", interval: "1m", args: null }, "csum")), "forward")).toContain("(csum)");
  });
});
