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
    const doc = declarativeDocument(state).document;
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
    const doc = declarativeDocument(state).document;
    expect(doc.services["web"]?.["backends"]).toEqual({ b1: { host: "10.1.0.1", weight: -5 } });
    expect(() => readServices(doc.services)).toThrow("services.web.backends.b1.weight: must be 0-2147483647, got -5");
  });

  test("a backend under a drain (held or in progress) exports with maintenance: true and is listed; others are not", () => {
    const address = { address: "10.1.0.1", family: "inet" } as const;
    const drain = { started: 1_000, deadline: 61_000, phase: "drained", node: null } as const;
    const state: SavedState = {
      services: [{ id: "web", source: "api", fields: { host: "10.0.0.1", port: 80 }, key: KEY, vip: false }],
      backends: [
        { service: "web", id: "b2", source: "api", fields: { host: "10.1.0.2" }, address, drain: { ...drain, then: "remove", phase: "draining" } },
        { service: "web", id: "b1", source: "api", fields: { host: "10.1.0.1", weight: 7 }, address, drain: { ...drain, then: "keep" } },
        { service: "web", id: "b3", source: "api", fields: { host: "10.1.0.3" }, address, drain: null },
      ],
    };
    const { document, drained } = declarativeDocument(state);
    expect(document.services["web"]?.["backends"]).toEqual({
      b1: { host: "10.1.0.1", weight: 7, maintenance: true },
      b2: { host: "10.1.0.2", maintenance: true },
      b3: { host: "10.1.0.3" },
    });
    expect(drained).toEqual([
      { service: "web", backend: "b1", then: "keep", deadline: 61_000 },
      { service: "web", backend: "b2", then: "remove", deadline: 61_000 },
    ]);
    const declared = readServices(document.services);
    expect(declared[0]?.backends.map((b) => b.id)).toEqual(["b1", "b2", "b3"]);
  });
});
