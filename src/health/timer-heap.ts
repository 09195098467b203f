/**
 * An indexed binary min-heap of items keyed by time. Each item stores its own position, so changing or
 * removing an item's time is O(log n) without searching: the monitor keeps one entry per target in it.
 */

/** HeapItem is anything with a key `at` and a slot for its heap position (-1 when not in a heap). */
export interface HeapItem {
  at: number;
  heapIndex: number;
}

/** TimerHeap orders items by `at`, earliest first. */
export class TimerHeap<T extends HeapItem> {
  private readonly items: T[] = [];

  /** size is the number of items in the heap. */
  get size(): number {
    return this.items.length;
  }

  /** peek returns the earliest item without removing it. */
  peek(): T | undefined {
    return this.items[0];
  }

  /** set inserts `item` with key `at`, or moves it there if it is already in the heap. */
  set(item: T, at: number): void {
    item.at = at;
    if (item.heapIndex < 0) {
      item.heapIndex = this.items.length;
      this.items.push(item);
      this.up(item.heapIndex);
    } else {
      this.up(item.heapIndex);
      this.down(item.heapIndex);
    }
  }

  /** pop removes and returns the earliest item. */
  pop(): T | undefined {
    const top = this.items[0];
    if (top !== undefined) this.delete(top);
    return top;
  }

  /** delete removes `item` if it is in the heap. */
  delete(item: T): void {
    const i = item.heapIndex;
    if (i < 0) return;
    const last = this.items.pop() as T;
    item.heapIndex = -1;
    if (last === item) return;
    this.items[i] = last;
    last.heapIndex = i;
    this.up(i);
    this.down(last.heapIndex);
  }

  /** clear empties the heap. */
  clear(): void {
    for (const item of this.items) item.heapIndex = -1;
    this.items.length = 0;
  }

  private up(i: number): void {
    const items = this.items;
    const item = items[i] as T;
    while (i > 0) {
      const parentIndex = (i - 1) >> 1;
      const parent = items[parentIndex] as T;
      if (parent.at <= item.at) break;
      items[i] = parent;
      parent.heapIndex = i;
      i = parentIndex;
    }
    items[i] = item;
    item.heapIndex = i;
  }

  private down(i: number): void {
    const items = this.items;
    const n = items.length;
    const item = items[i] as T;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      const right = child + 1;
      if (right < n && (items[right] as T).at < (items[child] as T).at) child = right;
      const c = items[child] as T;
      if (c.at >= item.at) break;
      items[i] = c;
      c.heapIndex = i;
      i = child;
    }
    items[i] = item;
    item.heapIndex = i;
  }
}
