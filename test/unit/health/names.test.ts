/**
 * The looked-up names of probes (src/health/checkers/names.ts), against a stand-in for dns.lookup that answers at
 * once and counts what it is asked: a known name is answered without waiting; one no check asked for in ten minutes
 * is forgotten, so a daemon whose backends' names churn does not keep every name it ever checked.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import dns from "node:dns";
import { ageNames, lookupName } from "../../../src/health/checkers/names.ts";

const asked: string[] = [];
const realLookup = dns.lookup;
beforeAll(() => {
  const lookup = (host: string, callback: (error: Error | null, address: string) => void): void => {
    asked.push(host);
    queueMicrotask(() => callback(null, "192.0.2.7"));
  };
  Object.assign(dns, { lookup });
});
afterAll(() => {
  Object.assign(dns, { lookup: realLookup });
});

/** Asks for `host`: whether it was answered at once (a known name), and the address. */
function ask(host: string): Promise<{ known: boolean; address: string }> {
  let during = true;
  return new Promise((resolve, reject) => {
    lookupName(host, (error, address) => (error === null ? resolve({ known: during, address }) : reject(error)));
    during = false;
  });
}

const MINUTE = 60_000;

describe("lookupName", () => {
  test("a name no check asked for in ten minutes is forgotten; one still asked for is kept", async () => {
    expect(await ask("gone.names.gorb.test")).toEqual({ known: false, address: "192.0.2.7" });
    expect(await ask("kept.names.gorb.test")).toEqual({ known: false, address: "192.0.2.7" });
    expect(await ask("gone.names.gorb.test")).toEqual({ known: true, address: "192.0.2.7" });
    ageNames(6 * MINUTE);
    // Only kept.* is still checked (gone.*'s backend was removed); a stale address is answered, and looked up again.
    expect(await ask("kept.names.gorb.test")).toEqual({ known: true, address: "192.0.2.7" });
    ageNames(6 * MINUTE);
    expect(await ask("kept.names.gorb.test")).toEqual({ known: true, address: "192.0.2.7" });
    const before = asked.filter((h) => h === "gone.names.gorb.test").length;
    expect(await ask("gone.names.gorb.test")).toEqual({ known: false, address: "192.0.2.7" });
    expect(asked.filter((h) => h === "gone.names.gorb.test").length).toBe(before + 1);
  });
});
