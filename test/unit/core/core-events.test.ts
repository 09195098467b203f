/** What core publishes on the event bus, once each change is committed (or repaired). */
import { describe, expect, test } from "bun:test";
import { EventBus, type GorbEvent } from "../../../src/core/events.ts";
import { makeGorb } from "./fakes.ts";
import { MemoryStateStore } from "./memory-store.ts";

function follow(bus: EventBus) {
  const events: GorbEvent[] = [];
  bus.subscribe((e) => events.push(e));
  return () => events.splice(0).map((e) => `${e.type} ${JSON.stringify(e.data)}`);
}

describe("core events", () => {
  test("creates, changes, deletes, health transitions, effective-weight changes and repairs", async () => {
    const events = new EventBus();
    const { gorb, health, driver } = makeGorb({ events });
    expect(gorb.events).toBe(events);
    const seen = follow(events);
    await gorb.createService("web", { host: "10.0.0.1", port: 80 });
    await gorb.createBackend("web", "b1", { host: "10.1.0.1", weight: 10 });
    expect(seen()).toEqual([
      'service.created {"service":"web","source":"api"}',
      'backend.created {"service":"web","backend":"b1","source":"api","health":"unknown"}',
    ]);
    health.report("web", "b1", "down");
    await gorb.idle();
    expect(seen()).toEqual([
      'backend.health {"service":"web","backend":"b1","from":"unknown","to":"down","message":"connection refused"}',
      'backend.weight {"service":"web","backend":"b1","from":10,"to":0,"configured":10}',
    ]);
    health.report("web", "b1", "up", { samplesOk: 50, consecutiveOk: 1 });
    await gorb.idle();
    expect(seen()).toEqual([
      'backend.health {"service":"web","backend":"b1","from":"down","to":"up","message":"connected"}',
      'backend.weight {"service":"web","backend":"b1","from":0,"to":5,"configured":10}',
    ]);
    await gorb.updateBackend("web", "b1", { weight: 40 });
    await gorb.updateService("web", { method: "rr" });
    expect(seen()).toEqual([
      'backend.changed {"service":"web","backend":"b1"}',
      'backend.weight {"service":"web","backend":"b1","from":5,"to":20,"configured":40}',
      'service.changed {"service":"web"}',
    ]);
    await driver.deleteDestination({ family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 }, { family: "inet", address: "10.1.0.1", port: 80 });
    await gorb.reconcile();
    expect(seen()).toEqual(['reconcile.repair {"service":"web","backend":"b1","reason":"10.1.0.1:80 is missing from IPVS","status":"done"}']);
    await gorb.deleteBackend("web", "b1");
    await gorb.deleteService("web");
    expect(seen()).toEqual(['backend.deleted {"service":"web","backend":"b1"}', 'service.deleted {"service":"web"}']);
  });

  test("a refused or undone change publishes nothing", async () => {
    const store = new MemoryStateStore();
    const { gorb, driver } = makeGorb({ store });
    const seen = follow(gorb.events);
    driver.failNext("add-service", "ENOMEM");
    await expect(gorb.createService("web", { host: "10.0.0.1", port: 80 })).rejects.toThrow();
    store.failNext("No space left on device");
    await expect(gorb.createService("web", { host: "10.0.0.1", port: 80 })).rejects.toThrow();
    expect(seen()).toEqual([]);
  });
});
