/**
 * AsyncMutex serialises async critical sections: every mutation of gorb's state and of the kernel table runs
 * inside `run`, one at a time, in call order. A section that throws releases the lock like one that returns.
 */
export class AsyncMutex {
  #tail: Promise<void> = Promise.resolve();

  /** Run `section` after every section queued before it has settled; resolves or rejects with its outcome. */
  run<T>(section: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(section);
    this.#tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
