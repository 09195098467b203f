/**
 * Restore's offer (src/ui/store.ts): the weight this tab set Weight 0 from, offered only while that is still the
 * backend's last non-zero weight. Once the backend is seen at another weight (restored here or elsewhere) and then
 * set to 0 by another client, the old weight is not offered: nobody knows the weight to set back (README, Web UI).
 */
import { describe, expect, test } from "bun:test";
import { type BackendView, type ServiceView, Store } from "../../../src/ui/store.ts";

function backend(weight: number): BackendView {
  return {
    id: "b1",
    options: { host: "10.1.0.1", port: 80, weight, method: "nat" },
    metrics: { state: "up", health: 1, message: "", uptime: 1 },
    effective_weight: weight,
    stats: null,
    active_conns: 0,
    inactive_conns: 0,
  };
}

function service(weight: number): ServiceView {
  return { id: "web", options: { host: "10.0.0.1", port: 80, protocol: "tcp", method: "wrr" }, health: 1, backends: ["b1"], stats: null, backend_details: [backend(weight)] };
}

/** This tab's Weight 0 (src/ui/services.tsx): the PATCH's event, then the weight it had remembered. */
function weightZeroHere(store: Store, had: number): void {
  store.patchBackend("web", "b1", { weight: 0, configured: 0 }, 2);
  store.weightZeroed("web", "b1", had);
}

describe("Restore's offer", () => {
  test("after this tab's Weight 0 it offers the weight the backend had, through events and full reads at 0", () => {
    const store = new Store();
    store.setAll([service(40)], 1);
    weightZeroHere(store, 40);
    store.setAll([service(0)], 3);
    store.patchBackend("web", "b1", { weight: 0, configured: 0 }, 4);
    expect(store.restoreOffer("web", "b1")).toBe("40");
  });

  test("restored elsewhere (an event or a read at another weight), then Weight 0 from elsewhere: nothing is offered", () => {
    for (const restoredBy of ["event", "read"] as const) {
      const store = new Store();
      store.setAll([service(40)], 1);
      weightZeroHere(store, 40);
      if (restoredBy === "event") store.patchBackend("web", "b1", { weight: 70, configured: 70 }, 3);
      else store.setAll([service(70)], 3);
      store.patchBackend("web", "b1", { weight: 0, configured: 0 }, 4);
      expect(store.restoreOffer("web", "b1")).toBe("");
    }
  });

  test("a read or event older than this tab's Weight 0, answered after its PATCH and before its event, keeps the offer", () => {
    const store = new Store();
    store.setAll([service(40)], 1);
    // The PATCH answered before its event came; a full read started before the PATCH is answered at the old weight.
    store.weightZeroed("web", "b1", 40);
    store.setAll([service(40)], 2);
    store.patchBackend("web", "b1", { weight: 40, configured: 40 }, 2);
    store.patchBackend("web", "b1", { weight: 0, configured: 0 }, 3);
    expect(store.restoreOffer("web", "b1")).toBe("40");
    // Restore from here: nothing offered after.
    store.restored("web", "b1");
    expect(store.restoreOffer("web", "b1")).toBe("");
  });

  test("a backend deleted and added again at weight 0 by another client is not offered the old one", () => {
    const store = new Store();
    store.setAll([service(40)], 1);
    weightZeroHere(store, 40);
    store.removeBackend("web", "b1");
    store.putBackend("web", backend(0), 3);
    expect(store.restoreOffer("web", "b1")).toBe("");
  });
});
