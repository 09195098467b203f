/** Deterministic pseudo-random numbers for tests, so a failure reproduces from its seed. */

/** mulberry32: a tiny seeded generator of numbers in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Draws from one seeded generator: integers, chances, picks. */
export class Draw {
  readonly #next: () => number;
  constructor(seed: number) {
    this.#next = mulberry32(seed);
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.#next() * n);
  }
  /** True with probability p. */
  chance(p: number): boolean {
    return this.#next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }
}

/**
 * The problems `run` reports for each of `seeds` (null: the sequence kept every promise), in seed order: a random
 * test's body, which expects none.
 */
export async function brokenSeeds(seeds: Iterable<number>, run: (seed: number) => Promise<string | null>): Promise<string[]> {
  const broken: string[] = [];
  for (const seed of seeds) {
    const problem = await run(seed);
    if (problem !== null) broken.push(problem);
  }
  return broken;
}

/** `count` seeds from `first` on. */
export function seedRange(first: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => first + i);
}

/** `count` seeds from `first` on, then the seeds of `found` (those that once found a defect) not among them. */
export function seedsWithFound(first: number, count: number, found: readonly number[]): number[] {
  const seeds = seedRange(first, count);
  return [...seeds, ...found.filter((s) => !seeds.includes(s))];
}
