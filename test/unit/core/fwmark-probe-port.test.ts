/**
 * A fwmark service's backend without a port keeps the packet's port: a check that connects has no port to use
 * unless pulse.args.port gives one. Such a backend would be probed on port 0 and stay down for ever, so creating
 * it (or giving it such a check) is a 400 naming pulse.args.port, over the API and in a declarative set alike.
 */
import { describe, expect, test } from "bun:test";
import { ValidationError } from "../../../src/core/errors.ts";
import { PathError } from "../../../src/core/path.ts";
import { readServices } from "../../../src/config/services.ts";
import { makeGorb } from "./fakes.ts";

const REFUSED =
  "pulse.args.port: is required: this backend has no port (a fwmark service's backend keeps the packet's port), so its tcp check needs one; or use pulse type none";

async function refusal(p: Promise<unknown>): Promise<string> {
  const e = await p.catch((x: unknown) => x);
  expect(e).toBeInstanceOf(ValidationError);
  return (e as ValidationError).message;
}

describe("the check of a fwmark service's backend without a port", () => {
  test("the default (tcp) check or an explicit one without args.port is refused, and nothing is created", async () => {
    const { gorb, driver, health } = makeGorb();
    await gorb.createService("fw", { fwmark: 7 });
    expect(await refusal(gorb.createBackend("fw", "g", { host: "10.1.0.1" }))).toBe(REFUSED);
    expect(await refusal(gorb.createBackend("fw", "h", { host: "10.1.0.2", pulse: { type: "http", interval: "1s" } }))).toBe(REFUSED.replace("its tcp", "its http"));
    expect((await gorb.getService("fw")).backends).toEqual([]);
    expect(driver.peek()[0]?.destinations).toEqual([]);
    expect(health.targets.size).toBe(0);
  });

  test("args.port, a backend port, or a check that connects nowhere (none, exec) is accepted", async () => {
    const { gorb, health } = makeGorb();
    await gorb.createService("fw", { fwmark: 7 });
    await gorb.createBackend("fw", "p", { host: "10.1.0.1", pulse: { type: "tcp", args: { port: 8080 } } });
    await gorb.createBackend("fw", "q", { host: "10.1.0.2", port: 443 });
    await gorb.createBackend("fw", "n", { host: "10.1.0.3", pulse: { type: "none" } });
    expect((await gorb.getService("fw")).backends).toEqual(["n", "p", "q"]);
    expect([...health.targets.values()].map((t) => t.backend.port)).toEqual([0, 443, 0]);
  });

  test("a PATCH that gives such a backend a connecting check without args.port is refused and changes nothing", async () => {
    const { gorb } = makeGorb();
    await gorb.createService("fw", { fwmark: 7 });
    await gorb.createBackend("fw", "n", { host: "10.1.0.3", pulse: { type: "none" } });
    expect(await refusal(gorb.updateBackend("fw", "n", { pulse: { type: "tcp" } }))).toBe(REFUSED);
    expect((await gorb.getBackend("fw", "n")).options.pulse).toMatchObject({ type: "none" });
    await gorb.updateBackend("fw", "n", { weight: 5 }); // other fields do not re-check the pulse
  });

  test("in a declarative set the error names the path", () => {
    const e = (() => {
      try {
        readServices({ fw: { fwmark: 7, backends: { g: { host: "10.1.0.1" } } } });
      } catch (x) {
        return x;
      }
      return null;
    })();
    expect(e).toBeInstanceOf(PathError);
    expect((e as PathError).message).toBe(`services.fw.backends.g.${REFUSED}`);
  });
});
