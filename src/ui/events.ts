/**
 * Follows GET /events with fetch (not EventSource, which cannot send headers: the token goes in the
 * Authorization header, never in the URL). Parses the Server-Sent Events text, keeps the last id and sends it
 * as Last-Event-ID when it reconnects, so the daemon replays what was missed (or answers `resync`). A lost
 * connection is reported as "reconnecting" and retried with a growing pause (0.5 s doubling to 5 s). So is one
 * that stays silent for longer than three of the daemon's 15 s keepalives (a daemon or network path that vanished
 * without closing the socket): without that limit the page said "live" forever and showed nothing new.
 */
import { actionPath } from "./actions.ts";
import { authHeaders } from "./api.ts";
import { parseBlocks } from "./sse.ts";

export type StreamStatus = "connecting" | "live" | "reconnecting" | "unauthorized";

export interface StreamHandlers {
  /** The stream is open; `resumed` is false when there was no id to resume from (the state must be read). */
  onOpen(resumed: boolean): void;
  onEvent(type: string, data: Record<string, unknown>): void;
  onStatus(status: StreamStatus, detail: string): void;
}

/** How long a connection may deliver nothing (not even a keepalive) before it is dropped and reopened. */
const IDLE_MS = 45_000;

/** Starts following `url` (the page's own GET /events); returns the function that stops. */
export function followEvents(handlers: StreamHandlers, url: string = actionPath("events"), idleMs: number = IDLE_MS): () => void {
  let stopped = false;
  let lastId: string | null = null;
  let controller: AbortController | null = null;
  let pause = 500;

  const run = async (): Promise<void> => {
    while (!stopped) {
      const connection = new AbortController();
      controller = connection;
      let idle: ReturnType<typeof setTimeout> | undefined;
      const rearm = () => {
        clearTimeout(idle);
        idle = setTimeout(() => connection.abort(new Error(`nothing received for ${idleMs / 1000}s`)), idleMs);
      };
      rearm();
      try {
        const headers: Record<string, string> = { ...authHeaders(), Accept: "text/event-stream" };
        if (lastId !== null) headers["Last-Event-ID"] = lastId;
        const response = await fetch(url, { headers, signal: connection.signal, cache: "no-store" });
        if (response.status === 401) {
          handlers.onStatus("unauthorized", "the token was refused");
          return;
        }
        if (!response.ok || response.body === null) throw new Error(`HTTP ${response.status}`);
        pause = 500;
        handlers.onStatus("live", "");
        handlers.onOpen(lastId !== null);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          rearm();
          const { blocks, rest } = parseBlocks(buffer + value);
          buffer = rest;
          for (const block of blocks) {
            if (block.id !== null) lastId = block.id;
            let data: Record<string, unknown> = {};
            try {
              data = JSON.parse(block.data) as Record<string, unknown>;
            } catch {
              // an event without JSON data: pass it on empty
            }
            handlers.onEvent(block.type, data);
          }
        }
        if (!stopped) handlers.onStatus("reconnecting", "the stream ended");
      } catch (error) {
        if (stopped) return;
        const why = connection.signal.aborted ? connection.signal.reason : error;
        handlers.onStatus("reconnecting", why instanceof Error ? why.message : String(why));
      } finally {
        clearTimeout(idle);
        connection.abort(); // a connection given up on (ended, silent, refused) is closed, never left open
      }
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(pause * 2, 5000);
    }
  };
  void run();
  return () => {
    stopped = true;
    controller?.abort();
  };
}
