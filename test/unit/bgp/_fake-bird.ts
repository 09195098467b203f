/**
 * A stand-in for BIRD's control socket: a real unix socket server that greets and answers each command with
 * replies recorded from BIRD 2.0.12, for what the real BIRD cannot be made to do on demand: hang, answer slowly or
 * with garbage, refuse a `configure check` (8002) at a given moment. The answers come from a script function.
 * real-bird.test.ts (and the rig's bgp.test.ts) run the real BIRD.
 */
import { createServer, type Server, type Socket } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Replies recorded from BIRD 2.0.12 (`\n`-terminated lines, as sent on the socket). */
export const RECORDED = {
  greeting: "0001 BIRD 2.0.12 ready.\n",
  configureCheckOk: "0002-Reading configuration from /etc/bird/bird.conf\n0020 Configuration OK\n",
  configureOk: "0002-Reading configuration from /etc/bird/bird.conf\n0003 Reconfigured\n",
  configureError: "0002-Reading configuration from /etc/bird/bird.conf\n8002 /run/gorb/bird-vips.conf:4:1 syntax error, unexpected '}', expecting ';' or '{'\n",
  noSuchProtocol: "9001 syntax error, unexpected CF_SYM_UNDEFINED, expecting CF_SYM_KNOWN\n",
  showRouteV4:
    "1007-Table master4:\n 203.0.113.11/32      blackhole [gorb_vips 14:41:16.445] * (200)\n 203.0.113.10/32      blackhole [gorb_vips 14:41:16.445] * (200)\n0000 \n",
  showRouteV6: "1007-Table master6:\n 2001:db8::10/128     blackhole [gorb_vips6 14:41:16.445] * (200)\n0000 \n",
  showRouteEmpty: "0000 \n",
  showProtocols:
    "2002-Name       Proto      Table      State  Since         Info\n1002-device1    Device     ---        up     14:41:16.445  \n gorb_vips  Static     master4    up     14:41:16.445  \n gorb_vips6 Static     master6    up     14:41:16.445  \n0000 \n",
} as const;

/** The reply to a command (text, or bytes as sent), or a promise of it (a BIRD that answers late). */
export type Script = (command: string) => string | Uint8Array | Promise<string>;

/** The fake server; `commands` records every command received, in order. */
export class FakeBird {
  readonly path: string;
  readonly commands: string[] = [];
  readonly #dir: string;
  #server: Server;
  readonly #sockets = new Set<Socket>();
  script: Script;

  private constructor(dir: string, script: Script) {
    this.#dir = dir;
    this.path = join(dir, "bird.ctl");
    this.script = script;
    this.#server = this.#create();
  }

  static async start(script: Script): Promise<FakeBird> {
    const bird = new FakeBird(mkdtempSync(join(tmpdir(), "fake-bird-")), script);
    await bird.listen();
    return bird;
  }

  #create(): Server {
    return createServer((socket) => {
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
      socket.write(RECORDED.greeting);
      let buffer = "";
      socket.on("data", (chunk) => {
        buffer += chunk.toString();
        for (let nl = buffer.indexOf("\n"); nl >= 0; nl = buffer.indexOf("\n")) {
          const command = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          this.commands.push(command);
          const reply = this.script(command);
          if (reply instanceof Promise) void reply.then((text) => socket.write(text));
          else socket.write(reply);
        }
      });
    });
  }

  listen(): Promise<void> {
    return new Promise((resolve) => this.#server.listen(this.path, () => resolve()));
  }

  /** Stops like BIRD does: every connection closes and the socket goes away. */
  async stop(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** Starts again on the same path (a BIRD restart). */
  async restart(): Promise<void> {
    this.#server = this.#create();
    await this.listen();
  }

  async close(): Promise<void> {
    await this.stop().catch(() => undefined);
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** A script answering like a healthy BIRD whose static protocols hold `routes()`. */
export function healthyBird(routes: () => readonly string[]): Script {
  return (command) => {
    if (command === "configure check") return RECORDED.configureCheckOk;
    if (command === "configure") return RECORDED.configureOk;
    const show = /^show route protocol (\S+)$/.exec(command);
    if (show !== null) {
      const v6 = show[1]?.endsWith("6") ?? false;
      const list = routes().filter((p) => p.includes(":") === v6);
      if (list.length === 0) return RECORDED.showRouteEmpty;
      const rows = list.map((p) => ` ${p.padEnd(20)} blackhole [${show[1]} 14:41:16.445] * (200)\n`).join("");
      return `1007-Table master${v6 ? 6 : 4}:\n${rows}0000 \n`;
    }
    if (command === "show protocols") return RECORDED.showProtocols;
    return RECORDED.noSuchProtocol;
  };
}
