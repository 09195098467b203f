/**
 * How many turns of the event loop ran while `work` did: a chain of immediates started before it (each schedules the
 * next) runs once per turn, and a turn is where sockets and timers are served. Counted, not timed: fast work can be
 * over within a timer's 1 ms, and a timer set before it needs two turns to fire. 0 when `work` never yielded.
 */
export async function turnsDuring(work: () => Promise<unknown>): Promise<number> {
  let turns = 0;
  let ticking = true;
  const tick = (): void => {
    turns++;
    if (ticking) setImmediate(tick);
  };
  setImmediate(tick);
  await work();
  ticking = false;
  return turns;
}
