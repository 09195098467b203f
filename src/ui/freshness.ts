/**
 * Whether a read's answer is older than an event the page has already applied. A read started before an event and
 * answered after it describes the past: a full read (GET /service?detail=true) started before `service.deleted`
 * would put the deleted service back on the page until the next poll, and a service's read started before it would
 * do the same for good. Events are counted as they come; a read takes the count when it starts (`begin`), and its
 * answer is stale for a key that had an event since (`newer`).
 */
export class Freshness {
  /** Events counted so far. */
  #clock = 0;
  /** Per key, the count at its last event. */
  readonly #last = new Map<string, number>();
  /** Marks of the reads in flight, each once per read. */
  readonly #open: number[] = [];

  /** An event about `key` came. */
  touch(key: string): void {
    this.#last.set(key, ++this.#clock);
  }

  /** A read starts: its mark, to give to `newer` and `end`. */
  begin(): number {
    this.#open.push(this.#clock);
    return this.#clock;
  }

  /** Whether `key` had an event after the read marked `mark` started: its answer about `key` is older than that. */
  newer(key: string, mark: number): boolean {
    return (this.#last.get(key) ?? 0) > mark;
  }

  /** The read marked `mark` ended; what no read in flight can ask about any more is forgotten. */
  end(mark: number): void {
    const at = this.#open.indexOf(mark);
    if (at >= 0) this.#open.splice(at, 1);
    const oldest = this.#open.length === 0 ? this.#clock : Math.min(...this.#open);
    for (const [key, count] of this.#last) if (count <= oldest) this.#last.delete(key);
  }

  /** How many keys are remembered (for tests: it does not grow without reads in flight). */
  get size(): number {
    return this.#last.size;
  }
}
