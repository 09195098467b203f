/**
 * MemoryVipManager: a VIP interface in memory, for tests. It remembers which addresses are on the "interface"
 * and can be told to fail the next add or remove.
 */
import type { Family } from "../../src/ipvs/types.ts";
import type { VipManager } from "../../src/core/vip.ts";

/** A VIP interface in memory. */
export class MemoryVipManager implements VipManager {
  readonly #addresses = new Set<string>();
  readonly #faults = new Map<"add" | "remove", string>();

  /** `present` are addresses the interface has before gorb starts (gorb must never remove them). */
  constructor(present: readonly string[] = []) {
    for (const address of present) this.#addresses.add(address);
  }

  /** The addresses on the interface now, sorted. */
  addresses(): string[] {
    return [...this.#addresses].sort();
  }

  /** Make the next call of `op` reject with `message`. */
  failNext(op: "add" | "remove", message = `cannot ${op} the address: operation not permitted`): void {
    this.#faults.set(op, message);
  }

  async add(address: string, _family: Family): Promise<boolean> {
    this.#fault("add");
    if (this.#addresses.has(address)) return false;
    this.#addresses.add(address);
    return true;
  }

  async remove(address: string, _family: Family): Promise<boolean> {
    this.#fault("remove");
    return this.#addresses.delete(address);
  }

  #fault(op: "add" | "remove"): void {
    const message = this.#faults.get(op);
    if (message === undefined) return;
    this.#faults.delete(op);
    throw new Error(message);
  }
}
