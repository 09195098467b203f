/**
 * The configuration file's services at start-up and on SIGHUP (src/daemon/declared-apply.ts): a set refused because
 * a name could not be looked up for a reason that may pass (EAI_AGAIN, a lookup that did not answer in time) is
 * applied again with a back-off until it goes through; a name that does not exist is not retried; a newer set, a
 * SIGHUP and the stop end the retry. A fake resolver and a hand-driven clock.
 */
import { describe, expect, test } from "bun:test";
import { parseConfigFile } from "../../../src/config/load.ts";
import { DEFAULTS } from "../../../src/contract/fields.ts";
import type { DeclaredService } from "../../../src/core/plan.ts";
import { ResolveTimeoutError, type HostResolver } from "../../../src/core/resolve.ts";
import { DeclaredApplier } from "../../../src/daemon/declared-apply.ts";
import { ManualClock } from "../health/_manual-clock.ts";
import { RecordingLogger, makeGorb } from "../core/fakes.ts";

const FILE = "/etc/gorb/gorb.yaml";

function services(text: string): readonly DeclaredService[] {
  const parsed = parseConfigFile("gorb.yaml", text).services;
  if (parsed === null) throw new Error("no services");
  return parsed;
}

const WEB = services("services:\n  web:\n    host: vip.example\n    port: 80\n    backends:\n      a: { host: 10.0.0.2, port: 80 }\n");
const API = services("services:\n  api: { host: 192.0.2.7, port: 443 }\n");

/** A resolver that answers vip.example with 192.0.2.10 once `failure` is null, and rejects with it until then. */
function flakyResolver(): { resolver: HostResolver; fail: (error: unknown) => void; calls: () => number } {
  let failure: unknown = null;
  let calls = 0;
  return {
    resolver: async (host) => {
      calls++;
      if (failure !== null) throw failure;
      if (host === "vip.example") return [{ address: "192.0.2.10", family: "inet" }];
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: "ENOTFOUND" });
    },
    fail: (error) => {
      failure = error;
    },
    calls: () => calls,
  };
}

function eaiAgain(): Error {
  return Object.assign(new Error("getaddrinfo EAI_AGAIN"), { code: "EAI_AGAIN", errno: -3001 });
}

function setup() {
  const dns = flakyResolver();
  const { gorb } = makeGorb({ resolver: dns.resolver });
  const clock = new ManualClock();
  const log = new RecordingLogger();
  const applier = new DeclaredApplier({ apply: (d) => gorb.apply(d), clock, log });
  const ids = () => gorb.listServices().sort();
  return { dns, gorb, clock, log, applier, ids };
}

describe("the configuration file's services", () => {
  test("refused on EAI_AGAIN (the resolver not ready at boot): tried again after 2 s, 4 s, ... until the name resolves", async () => {
    const { dns, clock, log, applier, ids } = setup();
    dns.fail(eaiAgain());
    await applier.apply(WEB, FILE);
    expect(ids()).toEqual([]);
    expect(log.lines).toEqual([
      `warn ${FILE}: services.web.host: cannot resolve "vip.example": getaddrinfo EAI_AGAIN; its services are refused whole and nothing changed: trying again in 2s (attempt 2)`,
    ]);
    await clock.advance(DEFAULTS.declaredRetryMs - 1);
    expect(dns.calls()).toBe(1);
    await clock.advance(1);
    expect(dns.calls()).toBe(2);
    expect(log.lines[1]).toEndWith("trying again in 4s (attempt 3)");
    dns.fail(null);
    await clock.advance(4000);
    expect(ids()).toEqual(["web"]);
    expect(log.lines.slice(2)).toEqual([
      `info ${FILE}: its services were applied at attempt 3 (the names resolved)`,
      `info ${FILE}: create web: tcp 192.0.2.10:80, wrr, 1 backend`,
      `info ${FILE}: create web/a: 10.0.0.2:80, nat, weight 100`,
    ]);
    expect(clock.pending).toBe(0);
  });

  test("a lookup that did not answer in time is retried too; the wait doubles up to 60 s", async () => {
    const { dns, clock, log, applier, ids } = setup();
    dns.fail(new ResolveTimeoutError(2000));
    await applier.apply(WEB, FILE);
    await clock.advance((2 + 4 + 8 + 16 + 32 + 60 + 60) * 1000);
    const waits = log.lines.map((line) => /trying again in (\d+)s/.exec(line)?.[1]);
    expect(waits).toEqual(["2", "4", "8", "16", "32", "60", "60", "60"]);
    expect(log.lines.every((line) => line.startsWith("warn "))).toBe(true);
    dns.fail(null);
    await clock.advance(DEFAULTS.declaredRetryMaxMs);
    expect(ids()).toEqual(["web"]);
  });

  test("a name that does not exist (ENOTFOUND) is refused and not retried, as any other refusal", async () => {
    const { dns, clock, log, applier, ids } = setup();
    await applier.apply(services("services:\n  web: { host: nowhere.example, port: 80 }\n"), FILE);
    expect(log.lines).toEqual([
      `error ${FILE}: services.web.host: cannot resolve "nowhere.example": getaddrinfo ENOTFOUND nowhere.example; its services are refused whole and nothing changed`,
    ]);
    await applier.apply(services("services:\n  web: { host: 192.0.2.1, port: 70 }\n  web2: { host: 192.0.2.1, port: 70 }\n"), FILE);
    expect(log.lines[1]).toStartWith("error ");
    expect(clock.pending).toBe(0);
    await clock.advance(DEFAULTS.declaredRetryMaxMs);
    expect(dns.calls()).toBe(1);
    expect(ids()).toEqual([]);
  });

  test("a newer set (SIGHUP) replaces the retry: the older set is never applied", async () => {
    const { dns, clock, applier, ids } = setup();
    dns.fail(eaiAgain());
    await applier.apply(WEB, FILE);
    await applier.apply(API, FILE);
    dns.fail(null);
    await clock.advance(DEFAULTS.declaredRetryMaxMs);
    expect(ids()).toEqual(["api"]);
    expect(clock.pending).toBe(0);
  });

  test("a SIGHUP (whatever the file now holds) and the stop end the retry, logged once", async () => {
    const { dns, clock, log, applier, ids } = setup();
    dns.fail(eaiAgain());
    await applier.apply(WEB, FILE);
    applier.cancel("SIGHUP: the file is read again");
    expect(log.lines[1]).toBe(`info ${FILE}: its services are no longer retried (SIGHUP: the file is read again)`);
    applier.cancel("SIGHUP: the file is read again");
    expect(log.lines).toHaveLength(2);
    await applier.apply(WEB, FILE);
    await applier.stop();
    expect(log.lines[3]).toBe(`info ${FILE}: its services are no longer retried (gorb is stopping)`);
    dns.fail(null);
    await clock.advance(DEFAULTS.declaredRetryMaxMs);
    expect(ids()).toEqual([]);
    expect(dns.calls()).toBe(2);
  });

  test("an attempt still running when a newer set comes schedules nothing after it", async () => {
    const { dns, clock, log, applier, ids } = setup();
    dns.fail(eaiAgain());
    const first = applier.apply(WEB, FILE);
    const second = applier.apply(API, FILE);
    await Promise.all([first, second]);
    expect(log.lines).toContain(`warn ${FILE}: services.web.host: cannot resolve "vip.example": getaddrinfo EAI_AGAIN; its services are refused whole and nothing changed`);
    expect(clock.pending).toBe(0);
    expect(ids()).toEqual(["api"]);
  });
});
