/**
 * How many turns of the event loop ran while `work` did: a chain of immediates started before it (each schedules the
 * next) runs once per turn, and a turn is where sockets and timers are served. Counted, not timed: fast work can be
 * over within a timer's 1 ms, and a timer set before it needs two turns to fire. 0 when `work` never yielded.
 */
export async function turnsDuring(work: () => Promise<unknown>): Promise<number> {
  return (await stretchesDuring(work)).turns;
}

/** What stretchesDuring saw: the turns, and the longest stretches without one (milliseconds, longest first). */
export interface Stretches {
  readonly turns: number;
  /** Of this thread's CPU time: the work done between two turns, whatever else the machine runs meanwhile. */
  readonly cpu: readonly number[];
  /** Of wall-clock time (longer on a loaded machine: the process waits for a CPU too). */
  readonly wall: readonly number[];
}

/** The longest `count` stretches between the readings `marks`, in milliseconds (rounded to 0.1), longest first. */
function longest(marks: readonly number[], count: number): number[] {
  const stretches: number[] = [];
  for (let i = 1; i < marks.length; i++) stretches.push((marks[i] as number) - (marks[i - 1] as number));
  return stretches
    .sort((a, b) => b - a)
    .slice(0, count)
    .map((ms) => Math.round(ms * 10) / 10);
}

/** This thread's CPU time (user and system), in milliseconds. */
function cpuMs(): number {
  const { user, system } = process.threadCpuUsage();
  return (user + system) / 1000;
}

/**
 * The turns of the event loop while `work` ran (as turnsDuring counts them) and the five longest stretches of it
 * without one: each immediate of the chain reads the clocks; the first stretch starts when the work does, the last
 * ends when it is over.
 */
export async function stretchesDuring(work: () => Promise<unknown>): Promise<Stretches> {
  const cpu: number[] = [];
  const wall: number[] = [];
  const read = (): void => {
    cpu.push(cpuMs());
    wall.push(performance.now());
  };
  let turns = 0;
  let ticking = true;
  const tick = (): void => {
    turns++;
    read();
    if (ticking) setImmediate(tick);
  };
  setImmediate(tick);
  read();
  await work();
  ticking = false;
  read();
  return { turns, cpu: longest(cpu, 5), wall: longest(wall, 5) };
}
