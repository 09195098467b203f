/**
 * Follows GET /events with fetch (not EventSource, which cannot send headers: the token goes in the
 * Authorization header, never in the URL). Parses the Server-Sent Events text, keeps the last id and sends it
 * as Last-Event-ID when it reconnects, so the daemon replays what was missed (or answers `resync`). A lost
 * connection is reported as "reconnecting" and retried with a growing pause (0.5 s doubling to 5 s).
 */
import { actionPath } from "./actions.ts";
import { authHeaders } from "./api.ts";

export type StreamStatus = "connecting" | "live" | "reconnecting" | "unauthorized";

export interface StreamHandlers {
  /** The stream is open; `resumed` is false when there was no id to resume from (the state must be read). */
  onOpen(resumed: boolean): void;
  onEvent(type: string, data: Record<string, unknown>): void;
  onStatus(status: StreamStatus, detail: string): void;
}

/** One parsed event block. */
interface Block {
  id: string | null;
  type: string;
  data: string;
}

/** Splits SSE text into complete blocks; returns them and the unfinished rest. */
export function parseBlocks(text: string): { blocks: Block[]; rest: string } {
  const blocks: Block[] = [];
  const parts = text.replace(/\r\n?/g, "\n").split("\n\n");
  const rest = parts.pop() ?? "";
  for (const part of parts) {
    const block: Block = { id: null, type: "message", data: "" };
    const data: string[] = [];
    for (const line of part.split("\n")) {
      if (line === "" || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const key = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (key === "id") block.id = value;
      else if (key === "event") block.type = value;
      else if (key === "data") data.push(value);
    }
    block.data = data.join("\n");
    if (block.id !== null || data.length > 0) blocks.push(block);
  }
  return { blocks, rest };
}

/** Starts following; returns the function that stops. */
export function followEvents(handlers: StreamHandlers): () => void {
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
        const response = await fetch(actionPath("events"), { headers, signal: controller.signal, cache: "no-store" });
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
