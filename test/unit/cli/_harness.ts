/**
 * CLI test harness: a real gorb REST API (createApp over the in-memory core from test/unit/core/fakes.ts)
 * listening on a loopback port, and runGorb() running the CLI in-process with captured stdout/stderr.
 */
import type { BgpSource } from "../../../src/api/bgp.ts";
import { createApp } from "../../../src/api/app.ts";
import type { CliIo } from "../../../src/cli/context.ts";
import { runCli } from "../../../src/cli/run.ts";
import { EventBus } from "../../../src/core/events.ts";
import { type TestStack, makeGorb } from "../core/fakes.ts";

/** What one CLI run printed and returned. */
export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A listening API with its in-memory stack. */
export interface TestServer {
  readonly url: string;
  readonly stack: TestStack;
  /** The bus GET /events follows. */
  readonly bus: EventBus;
  /** Every request the server received, as "METHOD /path?query". */
  readonly requests: string[];
  /** The JSON bodies of PUT/PATCH requests, in order. */
  readonly bodies: unknown[];
  stop(): Promise<void>;
}

/** startServer runs createApp on 127.0.0.1:0 (a token makes every route require it). */
export function startServer(options: { token?: string; bgp?: BgpSource } = {}): TestServer {
  const stack = makeGorb();
  const bus = new EventBus();
  const app = createApp({ gorb: stack.gorb, logger: stack.logger, events: bus, ...options });
  const requests: string[] = [];
  const bodies: unknown[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      const url = new URL(request.url);
      requests.push(`${request.method} ${url.pathname}${url.search}`);
      if (request.method === "PUT" || request.method === "PATCH") {
        const text = await request.clone().text();
        bodies.push(text === "" ? undefined : (JSON.parse(text) as unknown));
      }
      return app.handle(request);
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    stack,
    bus,
    requests,
    bodies,
    async stop() {
      await server.stop(true);
    },
  };
}

/** runGorb runs `gorb <args>` in-process with the given environment (no GORB_* from the real one). */
export async function runGorb(
  args: readonly string[],
  env: Record<string, string | undefined> = {},
  options: { signal?: AbortSignal; onStdout?: (text: string) => void } = {},
): Promise<CliRun> {
  let stdout = "";
  let stderr = "";
  const io: CliIo = {
    stdout: (output) => {
      const text = typeof output === "string" ? output : new TextDecoder().decode(output);
      stdout += text;
      options.onStdout?.(text);
    },
    stderr: (text) => {
      stderr += text;
    },
    isTTY: false,
  };
  const code = await runCli(args, { io, env: { NO_COLOR: "1", ...env }, ...(options.signal ? { signal: options.signal } : {}) });
  return { code, stdout, stderr };
}

/** A loopback port nothing listens on (bound, then released). */
export function closedPort(): number {
  const probe = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
  const port = probe.port ?? 0;
  probe.stop(true);
  return port;
}
