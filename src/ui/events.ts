/**
 * Follows GET /events with fetch (not EventSource, which cannot send headers: the token goes in the
 * Authorization header, never in the URL). Parses the Server-Sent Events text, keeps the last id and sends it
 * as Last-Event-ID when it reconnects, so the daemon replays what was missed (or answers `resync`). A lost
 * connection is reported as "reconnecting" and retried with a growing pause (0.5 s doubling to 5 s).
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

/** Starts following `url` (the page's own GET /events); returns the function that stops. */
export function followEvents(handlers: StreamHandlers, url: string = actionPath("events")): () => void {
  let stopped = false;
  let lastId: string | null = null;
  let controller: AbortController | null = null;
  let pause = 500;

  const run = async (): Promise<void> => {
    while (!stopped) {
      controller = new AbortController();
      try {
        const headers: Record<string, string> = { ...authHeaders(), Accept: "text/event-stream" };
        if (lastId !== null) headers["Last-Event-ID"] = lastId;
        const response = await fetch(url, { headers, signal: controller.signal, cache: "no-store" });
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
        handlers.onStatus("reconnecting", error instanceof Error ? error.message : String(error));
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
