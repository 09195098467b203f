/**
 * One epoll set for every raw probe socket (ffi/probe-socket.ts), collected from a timer instead of one
 * event-loop wake-up per socket event.
 *
 * Bun offers no way to add a descriptor of our own to its event loop, so the set is polled (epoll_wait with no
 * wait) while anything is watched or a result is waiting: 1 ms after a socket is added, then at twice the last
 * step while polls find nothing, up to MAX_POLL_MS; a poll that finds something goes back to 1 ms. The monitor
 * starts checks in batches (up to 50 ms early), so one poll collects the replies of many checks: at 1,000 local
 * checks a second this costs tens of wake-ups a second, not two per HTTP check.
 *
 * What it costs in precision: a reply is seen up to one poll step after it arrived (1 ms while replies keep
 * coming, up to MAX_POLL_MS for a slow backend), so that is added to the check's measured duration. The monitor
 * polls before it times a check out (pollSockets), so a reply that arrived before the deadline still counts.
 *
 * Results a probe knows at once (a TCP handshake that completed inside connect, a refused connect) are not
 * delivered from inside the checker's `run`: they wait for the next poll (`defer`), so the monitor never
 * re-enters itself from a start and a batch of starts does not turn into a deep call chain.
 */
import { EVENT_DATA_OFFSET, EVENT_SIZE, epollAdd, epollCreate, epollPoll } from "../../../ffi/probe-socket.ts";

/** A watched socket: told the ready events of its descriptor; `tag` tells a reused descriptor number apart. */
export interface PollTarget {
  readonly tag: number;
  ready(events: number): void;
}

/** Something to run at the next poll (a result known when the check started). */
export interface Deferred {
  deliver(): void;
}

/** The longest step between two polls while sockets are watched. */
const MAX_POLL_MS = 16;
/** Events collected per epoll_wait call. */
const BATCH = 256;

let ep = -1;
const watched: (PollTarget | undefined)[] = [];
let count = 0;
let deferred: Deferred[] = [];
const events = new Uint8Array(BATCH * EVENT_SIZE);
const view = new DataView(events.buffer);
let timer: ReturnType<typeof setTimeout> | null = null;
let dueAt = 0;
let step = 1;
let nextTag = 1;

/** newTag gives a tag for a new watch. */
export function newTag(): number {
  nextTag = (nextTag + 1) >>> 0 || 1;
  return nextTag;
}

/** watch adds `fd` to the set for `events` (EPOLLET etc.): 0, or -errno (the caller still owns and closes `fd`). */
export function watch(fd: number, eventMask: number, target: PollTarget): number {
  if (ep < 0) {
    const e = epollCreate();
    if (e < 0) return e;
    ep = e;
  }
  const r = epollAdd(ep, fd, eventMask, target.tag);
  if (r < 0) return r;
  // Grown densely (a hole far past the end would turn the array into a slow sparse one).
  while (watched.length <= fd) watched.push(undefined);
  if (watched[fd] === undefined) count++;
  watched[fd] = target;
  soon();
  return 0;
}

/** forget drops `fd` before it is closed (closing removes it from the epoll set). */
export function forget(fd: number, target: PollTarget): void {
  if (watched[fd] === target) {
    watched[fd] = undefined;
    count--;
  }
}

/** defer runs `d.deliver()` at the next poll. */
export function defer(d: Deferred): void {
  deferred.push(d);
  soon();
}

/** pollSockets collects what is ready now: deferred results, then socket events. Returns how many it handled. */
export function pollSockets(): number {
  let handled = 0;
  if (deferred.length > 0) {
    const due = deferred;
    deferred = [];
    for (const d of due) d.deliver();
    handled += due.length;
  }
  if (count === 0) return handled;
  for (;;) {
    const n = epollPoll(ep, events);
    if (n <= 0) break;
    for (let i = 0; i < n; i++) {
      const at = i * EVENT_SIZE;
      const fd = view.getUint32(at + EVENT_DATA_OFFSET, true);
      const target = watched[fd];
      if (target !== undefined && target.tag === view.getUint32(at + EVENT_DATA_OFFSET + 4, true)) target.ready(view.getUint32(at, true));
    }
    handled += n;
    if (n < BATCH) break;
  }
  return handled;
}

/** soon makes the next poll come within 1 ms. */
function soon(): void {
  step = 1;
  if (timer !== null) {
    if (dueAt <= performance.now() + 1) return;
    clearTimeout(timer);
  }
  arm(1);
}

function arm(ms: number): void {
  dueAt = performance.now() + ms;
  timer = setTimeout(onTimer, ms);
}

function onTimer(): void {
  timer = null;
  const handled = pollSockets();
  if (timer !== null) return; // a delivery added work and armed the next poll
  if (count === 0 && deferred.length === 0) {
    step = 1;
    return;
  }
  step = handled > 0 ? 1 : Math.min(step * 2, MAX_POLL_MS);
  arm(step);
}
