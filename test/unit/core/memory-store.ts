/** A StateStore in memory for core tests: applies commits to maps, counts them, and can fail the next one. */
import type { SavedBackend, SavedService, SavedState, SetAsideRow, StagedCommit, StateChanges, StateStore } from "../../../src/core/state.ts";

export class MemoryStateStore implements StateStore {
  readonly location = "memory:state";
  readonly services = new Map<string, SavedService>();
  readonly backends = new Map<string, SavedBackend>();
  /** Every commit, in order. */
  readonly commits: StateChanges[] = [];
  #fail: string | null = null;
  /** While set, every commit and probe throws this message (a full disk); set it to null to repair. */
  broken: string | null = null;
  /** Probes tried. */
  probes = 0;

  /** Make the next commit throw `message` (and change nothing). */
  failNext(message = "disk full"): void {
    this.#fail = message;
  }

  probe(): void {
    this.probes++;
    if (this.broken !== null) throw new Error(this.broken);
  }

  commit(changes: StateChanges): void {
    if (this.broken !== null) throw new Error(this.broken);
    if (this.#fail !== null) {
      const message = this.#fail;
      this.#fail = null;
      throw new Error(message);
    }
    this.commits.push(changes);
    for (const id of changes.deleteServices) {
      this.services.delete(id);
      for (const [key, b] of this.backends) if (b.service === id) this.backends.delete(key);
    }
    for (const s of changes.putServices) this.services.set(s.id, s);
    for (const b of changes.deleteBackends) this.backends.delete(`${b.service}/${b.id}`);
    for (const b of changes.putBackends) this.backends.set(`${b.service}/${b.id}`, b);
  }

  /** The rows set aside (setAside), with their saved rows. */
  readonly setAsideRows: { readonly row: SetAsideRow; readonly saved: SavedService | SavedBackend }[] = [];

  setAside(rows: readonly SetAsideRow[]): void {
    if (this.broken !== null) throw new Error(this.broken);
    for (const row of rows) {
      if (row.backend === null) {
        const service = this.services.get(row.service);
        if (service !== undefined) this.setAsideRows.push({ row, saved: service });
        for (const [key, b] of this.backends) {
          if (b.service !== row.service) continue;
          this.setAsideRows.push({ row: { service: b.service, backend: b.id, why: `its service was set aside: ${row.why}` }, saved: b });
          this.backends.delete(key);
        }
        this.services.delete(row.service);
      } else {
        const key = `${row.service}/${row.backend}`;
        const backend = this.backends.get(key);
        if (backend === undefined) continue;
        this.setAsideRows.push({ row, saved: backend });
        this.backends.delete(key);
      }
    }
  }

  /** What a restart would load. */
  load(): SavedState {
    return { services: [...this.services.values()], backends: [...this.backends.values()] };
  }
}

/** A MemoryStateStore that stages (StateStore.stage): what was staged, aborted and committed is recorded. */
export class StagingMemoryStore extends MemoryStateStore {
  /** Every staging, in order, with how it ended: "open", "committed" or "aborted". */
  readonly stagings: { readonly changes: StateChanges; ended: "open" | "committed" | "aborted" }[] = [];
  #failStage: string | null = null;
  #failCommit: string | null = null;

  /** Make the next stage() reject with `message` (nothing written). */
  failNextStage(message = "disk full"): void {
    this.#failStage = message;
  }

  /** Make the next staged commit's commit() reject with `message` (nothing saved). */
  failNextStagedCommit(message = "disk full"): void {
    this.#failCommit = message;
  }

  stage(changes: StateChanges): Promise<StagedCommit> {
    if (this.#failStage !== null) {
      const message = this.#failStage;
      this.#failStage = null;
      return Promise.reject(new Error(message));
    }
    const entry: { readonly changes: StateChanges; ended: "open" | "committed" | "aborted" } = { changes, ended: "open" };
    this.stagings.push(entry);
    const end = (how: "committed" | "aborted") => {
      if (entry.ended !== "open") throw new Error("this staged commit was already committed or aborted");
      entry.ended = how;
    };
    return Promise.resolve({
      commit: async () => {
        end("committed");
        if (this.#failCommit !== null) {
          const message = this.#failCommit;
          this.#failCommit = null;
          throw new Error(message);
        }
        this.commit(changes);
      },
      abort: async () => end("aborted"),
    });
  }
}
