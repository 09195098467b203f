/** The BIRD control-socket client against replies recorded from BIRD 2.0.12 (a fake server on a unix socket). */
import { afterEach, describe, expect, test } from "bun:test";
import { BirdControl, BirdReplyError, BirdSocketError, routePrefixes } from "../../../src/bgp/bird-control.ts";
import { FakeBird, RECORDED } from "./_fake-bird.ts";

let bird: FakeBird | null = null;
afterEach(async () => {
  await bird?.close();
  bird = null;
});

describe("replies", () => {
  /** The reply to one command from a fake BIRD that answers `text`. */
  async function replyTo(text: string) {
    bird = await FakeBird.start(() => text);
    const control = await BirdControl.connect(bird.path);
    try {
      return await control.command("show route");
    } finally {
      control.close();
    }
  }

  test("a reply ends at its `CODE text` line; continuation lines keep the previous code", async () => {
    const reply = await replyTo(RECORDED.showRouteV4);
    expect(reply.code).toBe(0);
    expect(reply.lines.map((l) => l.code)).toEqual([1007, 1007, 1007, 0]);
    expect(routePrefixes(reply)).toEqual(["203.0.113.11/32", "203.0.113.10/32"]);
  });

  test("asynchronous `+` lines belong to no reply", async () => {
    const reply = await replyTo(`+ some log line\n${RECORDED.configureOk}`);
    expect(reply.code).toBe(3);
    expect(reply.lines.map((l) => l.text)).toEqual(["Reading configuration from /etc/bird/bird.conf", "Reconfigured"]);
  });

  test("a line that is not BIRD's is a protocol error", async () => {
    expect(await replyTo("HTTP/1.1 200 OK\n").catch((e: unknown) => e)).toMatchObject({ name: "BirdSocketError", reason: "protocol" });
  });

  test("a line that never ends is a protocol error once it passes 64 KiB, not memory held until the timeout (30 s)", async () => {
    const error = await replyTo("A".repeat(65 * 1024)).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "BirdSocketError", reason: "protocol", message: expect.stringContaining("longer than 65536") });
  });

  test("show route of two tables (master4 then master6) lists both families", async () => {
    const reply = await replyTo(
      "1007-Table master4:\n 203.0.113.10/32      blackhole [gorb_vips 14:41:16.445] * (200)\n \n Table master6:\n 2001:db8::10/128     blackhole [gorb_vips6 14:41:16.445] * (200)\n0000 \n",
    );
    expect(routePrefixes(reply)).toEqual(["203.0.113.10/32", "2001:db8::10/128"]);
  });
});

describe("BirdControl", () => {
  test("greets, sends commands in order and returns each reply", async () => {
    bird = await FakeBird.start((c) => (c === "configure check" ? RECORDED.configureCheckOk : RECORDED.configureOk));
    const control = await BirdControl.connect(bird.path);
    expect(control.greeting).toBe("BIRD 2.0.12 ready.");
    const [check, configure] = await Promise.all([control.command("configure check"), control.command("configure")]);
    expect(check.code).toBe(20);
    expect(configure.code).toBe(3);
    expect(bird.commands).toEqual(["configure check", "configure"]);
    control.close();
  });

  test("8002 and 9001 are thrown as BirdReplyError with the code and BIRD's text", async () => {
    bird = await FakeBird.start((c) => (c === "configure check" ? RECORDED.configureError : RECORDED.noSuchProtocol));
    const control = await BirdControl.connect(bird.path);
    const error = await control.command("configure check").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BirdReplyError);
    expect(error).toMatchObject({ code: 8002, command: "configure check", text: expect.stringContaining("bird-vips.conf:4:1 syntax error") });
    expect(await control.command("show route protocol nosuch").catch((e: unknown) => e)).toMatchObject({ code: 9001 });
    control.close();
  });

  test("no socket: a connect error naming the path; BIRD going away fails the command in flight and fires onClose", async () => {
    const missing = await BirdControl.connect("/nonexistent/bird.ctl").catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(BirdSocketError);
    expect(missing).toMatchObject({ reason: "connect", path: "/nonexistent/bird.ctl" });

    bird = await FakeBird.start(() => ""); // never answers
    const control = await BirdControl.connect(bird.path);
    const closed = new Promise<void>((resolve) => control.onClose(resolve));
    const pending = control.command("configure").catch((e: unknown) => e);
    await bird.stop();
    expect(await pending).toMatchObject({ name: "BirdSocketError", reason: "closed" });
    await closed;
    expect(control.open).toBe(false);
  });

  test("a character whose UTF-8 bytes come in two reads is decoded whole, not as two replacement characters", async () => {
    const second = new TextEncoder().encode("1007-Table café:\n0000 \n");
    const cut = second.indexOf(0xa9); // é is c3 a9: the first read ends after c3
    bird = await FakeBird.start((command) => (command === "first" ? Buffer.concat([Buffer.from("0000 \n"), second.subarray(0, cut)]) : second.subarray(cut)));
    const control = await BirdControl.connect(bird.path);
    // The first reply and the start of the second come in one write, read before "second" is sent; the rest comes after.
    await control.command("first");
    const reply = await control.command("second");
    expect(reply.lines.map((l) => l.text)).toEqual(["Table café:", ""]);
    control.close();
  });

  test("a command with a newline is refused before anything is sent", async () => {
    bird = await FakeBird.start(() => RECORDED.showRouteEmpty);
    const control = await BirdControl.connect(bird.path);
    await expect(control.command("configure\nshow status")).rejects.toThrow("command: must be one line");
    expect(bird.commands).toEqual([]);
    control.close();
  });
});
