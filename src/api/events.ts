/**
 * GET /events: the event bus (../core/events.ts) as Server-Sent Events. Each event is written as
 *
 *   id: 42@3f9c2a1b
 *   event: backend.health
 *   data: {"service":"web","backend":"b1","from":"up","to":"down","message":"connection refused","time":"..."}
 *
 * The id is "<number>@<run>": the bus's monotonic id and the name of this daemon run, so a follower coming back
 * after a restart is told to `resync` instead of being handed the new run's events as if they followed its own.
 * `data` is the event's payload with its publication `time`.
 *
 * Resuming: the `Last-Event-ID` header (EventSource sends it by itself when it reconnects) or the
 * `?last_event_id=` query (for a client that stored an id and opens a new EventSource, or curl); the header wins,
 * because an EventSource reconnecting keeps its first URL. The events after that id come first (or one `resync`
 * event when they are no longer kept or the id is from another run), then live events. A bare number is taken
 * as an id of this run. Without an id the stream starts with the next event.
 *
 * A comment line (`: keepalive`) every 15 s keeps proxies and the client's idle timers from closing a quiet
 * stream. The route is behind the same bearer check as every route (the app's onRequest hook). When the bus
 * closes (the daemon stops), every stream ends, so that the server's graceful stop does not wait for them.
 *
 * Why a ReadableStream and not Elysia's generator handlers (`sse()`): a generator only notices a closed
 * connection at its next `yield`, so a quiet stream would keep its subscription until the next event or
 * heartbeat; the stream's `cancel` (and the request's abort signal) fire as soon as Bun sees the client go, and
 * the bus listener gathers what one turn of the event loop publishes into one chunk of the stream. The stream also exposes its backlog
 * (`desiredSize`): a follower that stops reading is dropped once more than `maxQueuedBytes` wait for it (it
 * reconnects with its last id and gets the rest, or a `resync`), so it cannot make the daemon buffer without end.
 * A backlog larger than that allowance is sent as one `resync` instead, so a resuming follower is not dropped by
 * its own backlog again and again.
 * Bun's idle timeout (10 s by default) would cut a stream between two heartbeats, so it is turned off for this
 * request.
 *
 * HEAD gets the stream's headers and no stream: Bun answers a HEAD once its body has ended, which a stream never
 * does, so a HEAD was never answered and held a follower and a stream slot until its client gave up.
 */
import { ValidationError } from "../core/errors.ts";
import type { EventBus, EventPosition, GorbEvent } from "../core/events.ts";

/** Default interval of the `: keepalive` comment. */
const DEFAULT_HEARTBEAT_MS = 15_000;
/** Default bytes that may wait for one follower before it is dropped (a full default ring is ~1 MiB). */
const DEFAULT_MAX_QUEUED_BYTES = 8 * 1024 * 1024;
/** What the stream buffers before it counts as behind. */
const HIGH_WATER_MARK = 64 * 1024;

/** What GET /events needs. */
export interface EventStreamOptions {
  readonly bus: EventBus;
  /** Milliseconds between two `: keepalive` comments. @default 15000 */
  readonly heartbeatMs?: number;
  /** Bytes waiting for a follower that does not read, past which it is dropped. @default 8 MiB */
  readonly maxQueuedBytes?: number;
  /** Called once when the stream ends, however it ends (the follower left or was dropped, the bus closed). */
  readonly onEnd?: () => void;
}

/** The part of Bun's server the route uses (Elysia passes null when the app is called with `.handle()`). */
interface IdleTimeout {
  timeout(request: Request, seconds: number): void;
}

/** The stream's headers; Cache-Control: no-store, as every answer of the API (./app.ts). */
const STREAM_HEADERS = {
  "Content-Type": "text/event-stream; charset=utf-8",
  // nginx and similar proxies would otherwise hold events back in their buffers.
  "X-Accel-Buffering": "no",
} as const;

const encoder = new TextEncoder();
const EVENT_ID = /^(\d{1,15})(?:@([0-9A-Za-z_-]{1,64}))?$/;

/** The position in a Last-Event-ID header or last_event_id query value; undefined when none or empty. */
function position(text: string | null, field: string, run: string): EventPosition | undefined {
  if (text === null || text.trim() === "") return undefined;
  const match = EVENT_ID.exec(text.trim());
  if (match === null) {
    throw new ValidationError(field, `must be an event id such as 42@${run} (the id of the last event seen), got ${JSON.stringify(text.slice(0, 80))}`);
  }
  return { id: Number(match[1]), run: match[2] ?? run };
}

/** The event framed last, with its bytes: the bus hands an event to every follower in turn, so it is framed once. */
let lastFramed: { readonly event: GorbEvent; readonly run: string; readonly bytes: Uint8Array } | null = null;

/** One event in the text/event-stream format. */
function frame(event: GorbEvent, run: string): Uint8Array {
  if (lastFramed !== null && lastFramed.event === event && lastFramed.run === run) return lastFramed.bytes;
  const data = JSON.stringify({ ...event.data, time: event.time });
  const bytes = encoder.encode(`id: ${event.id}@${run}\nevent: ${event.type}\ndata: ${data}\n\n`);
  lastFramed = { event, run, bytes };
  return bytes;
}

/**
 * The frames of a resuming follower's backlog; a single `resync` in their place when they are more than may wait
 * for a follower (`maxQueued`): sent whole, they would get it dropped at once, and it would come back with the
 * same id and be dropped again, for as long as those events are kept.
 */
function backlogFrames(backlog: readonly GorbEvent[], run: string, maxQueued: number): Uint8Array[] {
  const frames: Uint8Array[] = [];
  let bytes = 0;
  for (const event of backlog) {
    const bytesOf = frame(event, run);
    bytes += bytesOf.byteLength;
    if (bytes > maxQueued) {
      const last = backlog[backlog.length - 1] ?? event;
      const reason = "too many events were missed to send them again";
      return [frame({ id: last.id, time: new Date().toISOString(), type: "resync", data: { reason } }, run)];
    }
    frames.push(bytesOf);
  }
  return frames;
}

/** `parts` as one array (one chunk for the stream). */
function concat(parts: readonly Uint8Array[], bytes: number): Uint8Array {
  if (parts.length === 1) return parts[0] as Uint8Array;
  const out = new Uint8Array(bytes);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

/** The response of GET /events for `request`; see the module comment. */
export function eventStream(request: Request, server: IdleTimeout | null | undefined, options: EventStreamOptions): Response {
  const { bus } = options;
  const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  const maxQueued = options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
  const query = new URL(request.url).searchParams.get("last_event_id");
  const header = request.headers.get("last-event-id");
  const after = header !== null && header.trim() !== "" ? position(header, "last-event-id", bus.run) : position(query, "last_event_id", bus.run);
  if (request.method === "HEAD") {
    options.onEnd?.();
    return new Response(null, { headers: STREAM_HEADERS });
  }

  let cleanup = () => {};
  const stream = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        let open = true;
        // What this turn of the event loop sent, enqueued as one chunk at its end: an apply publishes thousands
        // of events in one synchronous run, and a stream enqueue per event and follower held the loop for
        // seconds with a few hundred followers.
        let batch: Uint8Array[] = [];
        let batchBytes = 0;
        /** The stream's desiredSize when the batch began (nothing is read from it until the batch is flushed). */
        let room = 0;
        const drop = () => {
          // The follower stopped reading: drop it rather than buffer for it without end. Erroring the stream
          // resets the connection and frees its queue; with no reason, Bun does not log it as a server error.
          cleanup();
          batch = [];
          controller.error();
        };
        const flush = () => {
          if (!open || batch.length === 0) return;
          const chunk = concat(batch, batchBytes);
          batch = [];
          batchBytes = 0;
          try {
            controller.enqueue(chunk);
          } catch {
            cleanup(); // the stream is closed already
            return;
          }
          if ((controller.desiredSize ?? 0) < -maxQueued) drop();
        };
        const send = (bytes: Uint8Array) => {
          if (!open) return;
          if (batch.length === 0) {
            queueMicrotask(flush);
            room = controller.desiredSize ?? 0;
          }
          batch.push(bytes);
          batchBytes += bytes.byteLength;
          if (room - batchBytes < -maxQueued) drop();
        };
        const end = () => {
          // The daemon is stopping: end the response, so the server's graceful stop does not wait for it.
          if (!open) return;
          flush();
          if (!open) return; // the flush found the follower too far behind and dropped it
          cleanup();
          controller.close();
        };
        const subscription = bus.subscribe((event) => send(frame(event, bus.run)), after, end);
        const heartbeat = setInterval(() => send(encoder.encode(": keepalive\n\n")), heartbeatMs);
        cleanup = () => {
          if (!open) return;
          open = false;
          clearInterval(heartbeat);
          subscription.unsubscribe();
          request.signal.removeEventListener("abort", cleanup);
          options.onEnd?.();
        };
        request.signal.addEventListener("abort", cleanup, { once: true });
        if (request.signal.aborted) cleanup();
        // A first line, so the client sees the response (and the subscription exists) before any event.
        send(encoder.encode(": gorb events\n\n"));
        for (const bytes of backlogFrames(subscription.backlog, bus.run, maxQueued)) send(bytes);
      },
      cancel() {
        cleanup();
      },
    },
    new ByteLengthQueuingStrategy({ highWaterMark: HIGH_WATER_MARK }),
  );
  server?.timeout(request, 0);
  return new Response(stream, { headers: STREAM_HEADERS });
}
