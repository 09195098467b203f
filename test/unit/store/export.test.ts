/**
 * The document `gorb state export` prints is one `gorb apply -f` takes: a state saved by an older gorb, whose rows
 * kept keys the contract drops (a GORB client's `vsid`, args a pulse type does not read), exports without them,
 * as a restore reads it; a row whose fields do not read is printed as saved, for apply to name its problem.
 */
import { describe, expect, test } from "bun:test";
import { readServices } from "../../../src/config/services.ts";
import type { SavedState } from "../../../src/core/state.ts";
import { declarativeDocument } from "../../../src/store/export.ts";

const KEY = { family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 } as const;

describe("declarativeDocument", () => {
  test("a state saved by an older gorb (vsid, pulse args its type does not read) exports as a document apply takes", () => {
    const state: SavedState = {
      services: [{ id: "web", source: "api", fields: { host: "10.0.0.1", port: 80, method: "wrr" }, key: KEY, vip: false }],
      backends: [
        {
          service: "web",
          id: "b1",
          source: "api",
          fields: { host: "10.1.0.1", weight: 5, vsid: "web", pulse: { type: "tcp", args: { junk: 1 } } },
          address: { address: "10.1.0.1", family: "inet" },
        },
      ],
    };
    const doc = declarativeDocument(state);
    expect(doc).toEqual({
      services: { web: { host: "10.0.0.1", port: 80, method: "wrr", backends: { b1: { host: "10.1.0.1", weight: 5, pulse: { type: "tcp", args: {} } } } } },
    });
    const declared = readServices(doc.services);
    expect(declared.map((s) => [s.id, s.backends.map((b) => b.id)])).toEqual([["web", ["b1"]]]);
  });

  test("a row whose fields do not read is printed as saved: apply names its problem", () => {
    const state: SavedState = {
      services: [{ id: "web", source: "api", fields: { host: "10.0.0.1", port: 80 }, key: KEY, vip: false }],
      backends: [{ service: "web", id: "b1", source: "api", fields: { host: "10.1.0.1", weight: -5 }, address: { address: "10.1.0.1", family: "inet" } }],
    };
    const doc = declarativeDocument(state);
    expect(doc.services["web"]?.["backends"]).toEqual({ b1: { host: "10.1.0.1", weight: -5 } });
    expect(() => readServices(doc.services)).toThrow("services.web.backends.b1.weight: must be 0-2147483647, got -5");
  });
});
