/**
 * The page's reads of one service and its backends (after an event) applied in the order the events came. A
 * service's read answered after its backend's would drop that backend: the backend is put into a service the page
 * does not hold yet (service.created, then backend.created, read at once), or the service's older answer, read
 * before the backend existed, takes it out again. So the reads of one key run one after the other; reads of
 * different keys still run side by side.
 */
export class InOrder {
  readonly #tails = new Map<string, Promise<void>>();

  /** Runs `work` once every earlier work of `key` has ended (whether it worked or not). */
  run(key: string, work: () => Promise<void>): Promise<void> {
    const tail = this.#tails.get(key) ?? Promise.resolve();
    const next = tail.then(work, work);
    const mine = next.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(key, mine);
    void mine.then(() => {
      if (this.#tails.get(key) === mine) this.#tails.delete(key);
    });
    return next;
  }
}
