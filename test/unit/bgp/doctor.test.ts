/** `gorb bgp doctor` against a fake BIRD answering with replies recorded from BIRD 2.0.12 (./_fake-bird.ts). */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runDoctor } from "../../../src/bgp/doctor.ts";
import { FakeBird, RECORDED } from "./_fake-bird.ts";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const PROTOCOLS =
  "2002-Name       Proto      Table      State  Since         Info\n1002-device1    Device     ---        up     14:50:15.745  \n" +
  " gorb_vips  Static     master4    up     14:50:15.745  \n gorb_vips6 Static     master6    up     14:50:15.745  \n" +
  " kern4      Kernel     master4    up     14:50:15.745  \n tor        BGP        ---        up     14:50:15.749  Established\n0000 \n";
const TOR_ALL = (filter: string) =>
  "2002-Name       Proto      Table      State  Since         Info\n1002-tor        BGP        ---        up     14:50:15.749  Established\n" +
  `1006-  BGP state:          Established\n   Channel ipv4\n     State:          UP\n     Input filter:   REJECT\n     Output filter:  ${filter}\n \n0000 \n`;
const ROUTE = "1007-Table master4:\n 203.0.113.10/32      blackhole [gorb_vips 14:50:15.745] * (200)\n0000 \n";

async function doctor(answers: Record<string, string>, conf = 'include "/run/gorb*/bird-vips*.conf";\n') {
  const bird = await FakeBird.start((command) => answers[command] ?? RECORDED.noSuchProtocol);
  const dir = mkdtempSync(join(tmpdir(), "gorb-doctor-"));
  cleanups.push(() => bird.close(), () => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "bird.conf"), conf);
  const findings = await runDoctor({ socket: bird.path, include: "/run/gorb/bird-vips.conf", protocol: "gorb_vips", birdConf: join(dir, "bird.conf") });
  return findings.map((f) => `${f.level} ${f.check}`);
}

const good = {
  "show protocols": PROTOCOLS,
  "show route protocol gorb_vips": ROUTE,
  "show route protocol gorb_vips6": RECORDED.showRouteEmpty,
  "show protocols all tor": TOR_ALL("(unnamed)"),
  "show route export tor": ROUTE,
  "show route export kern4": RECORDED.showRouteEmpty,
};

describe("gorb bgp doctor", () => {
  test("a BIRD set up as docs/bird.conf says passes every check", async () => {
    expect(await doctor(good)).toEqual(["ok include", "ok socket", "ok static", "ok static", "ok export", "ok kernel"]);
  });

  test("no include line, no export filter, VIPs exported to the kernel: each is a failure", async () => {
    const bad = { ...good, "show protocols all tor": TOR_ALL("REJECT"), "show route export tor": RECORDED.showRouteEmpty, "show route export kern4": ROUTE };
    expect(await doctor(bad, "# nothing\n")).toEqual(["fail include", "ok socket", "ok static", "ok static", "fail export", "fail export", "fail kernel"]);
  });

  test("an include line indented with blanks counts, as BIRD reads it; one commented out does not", async () => {
    expect((await doctor(good, 'protocol device {}\n  \tinclude "/run/gorb*/bird-vips*.conf";\n'))[0]).toBe("ok include");
    expect((await doctor(good, '# include "/run/gorb*/bird-vips*.conf";\n'))[0]).toBe("fail include");
  });

  test("gorb's protocols missing (file not loaded); BIRD not running", async () => {
    const missing = { ...good, "show protocols": "2002-Name       Proto      Table      State  Since         Info\n1002-device1    Device     ---        up     14:50:15.745  \n0000 \n" };
    expect(await doctor(missing)).toEqual(["ok include", "ok socket", "fail static", "fail static", "fail export"]);
    const findings = await runDoctor({ socket: "/nonexistent/bird.ctl", include: "/run/gorb/bird-vips.conf", protocol: "gorb_vips", birdConf: null });
    expect(findings).toEqual([{ level: "fail", check: "socket", message: expect.stringContaining("/nonexistent/bird.ctl") }]);
  });
});
