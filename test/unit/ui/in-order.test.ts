/**
 * src/ui/in-order.ts: the page's reads of one service apply in the order they were asked for, whatever order their
 * answers come in; another service's reads are not held up; a failed read does not stop the next.
 */
import { describe, expect, test } from "bun:test";
import { InOrder } from "../../../src/ui/in-order.ts";

/** A read whose answer comes when the test says. */
function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe("InOrder", () => {
  test("a service's second read is applied after its first, even when its answer comes first", async () => {
    const q = new InOrder();
    const applied: string[] = [];
    const serviceAnswer = deferred();
    const first = q.run("web", async () => {
      await serviceAnswer.promise;
      applied.push("service");
    });
    const second = q.run("web", async () => {
      applied.push("backend");
    });
    // The backend's read has not run: it waits for the service's.
    await Promise.resolve();
    expect(applied).toEqual([]);
    serviceAnswer.resolve();
    await Promise.all([first, second]);
    expect(applied).toEqual(["service", "backend"]);
  });

  test("another service's read does not wait", async () => {
    const q = new InOrder();
    const held = deferred();
    const applied: string[] = [];
    const web = q.run("web", async () => {
      await held.promise;
      applied.push("web");
    });
    await q.run("db", async () => {
      applied.push("db");
    });
    expect(applied).toEqual(["db"]);
    held.resolve();
    await web;
    expect(applied).toEqual(["db", "web"]);
  });

  test("a read that fails rejects its own promise and the next read still runs", async () => {
    const q = new InOrder();
    const failed = q.run("web", async () => {
      throw new Error("network");
    });
    let ran = false;
    const next = q.run("web", async () => {
      ran = true;
    });
    await expect(failed).rejects.toThrow("network");
    await next;
    expect(ran).toBe(true);
  });
});
