/**
 * Address claims (PREFIX/addresses/<address>, holding the service's id): one service per address across the
 * fleet. Each node checks its own desired state, but two nodes creating two services on one address at the same
 * moment would both succeed, and each node would then refuse the other's service: the fleet would serve different
 * services on one VIP. So a commit that puts a service on a new address compares the claim's create revision
 * with 0 in its transaction, and puts the claim; deleting or moving a service deletes its old claim.
 */
import type { StateChanges } from "../core/state.ts";
import { decodeSavedService } from "../core/state.ts";
import type { Logger } from "../log.ts";
import type { Compare, EtcdClient, TxnOp } from "./etcd-client.ts";
import type { KeyLayout } from "./layout.ts";

/** The compares and operations of a change's claims; `taken`, the claims it needs free. */
export interface ClaimOps {
  readonly compare: Compare[];
  /** Deletes of the claims given up. */
  readonly release: TxnOp[];
  /** Puts of the claims held after the change (written after the rows). */
  readonly claim: TxnOp[];
  readonly taken: string[];
}

/** See the module comment; `held` is the claim of a service as this node has its row (null: none). */
export function claimOps(layout: KeyLayout, changes: StateChanges, held: (id: string) => string | null): ClaimOps {
  const compare: Compare[] = [];
  const taken: string[] = [];
  const claims = new Map<string, string>();
  // Every claim this change gives up, first: an address may move from one service to another in one change.
  const released = new Set<string>();
  for (const id of changes.deleteServices) released.add(held(id) ?? "");
  for (const s of changes.putServices) {
    const old = held(s.id);
    if (old !== null && old !== layout.claimKey(s.key)) released.add(old);
  }
  released.delete("");
  for (const s of changes.putServices) {
    const claim = layout.claimKey(s.key);
    // A new address must be free; one this change releases (a rename in one apply) is taken over.
    if (held(s.id) !== claim && !released.has(claim)) {
      compare.push({ key: claim, target: "create", op: "equal", revision: 0 });
      taken.push(claim);
    }
    claims.set(claim, s.id);
  }
  // etcd refuses a transaction that deletes and puts one key: a claim taken over is only put.
  const release: TxnOp[] = [...released].filter((key) => !claims.has(key)).map((key) => ({ deleteRange: { key } }));
  const claim: TxnOp[] = [...claims].map(([key, value]) => ({ put: { key, value } }));
  return { compare, release, claim, taken };
}

/**
 * Delete the claims of `keys` whose service, as etcd has it now, is gone or on another address (left by a gorb
 * from before claims, which deletes a service without its claim); true when one went. Each delete compares the
 * claim's and the service's revisions as read, so a service created meanwhile keeps its claim.
 */
export async function dropStaleClaims(client: EtcdClient, layout: KeyLayout, keys: readonly string[], log: Logger): Promise<boolean> {
  let dropped = false;
  for (const key of keys) {
    const claim = (await client.range(key)).kvs[0];
    if (claim === undefined) continue;
    const serviceKey = layout.serviceKey(claim.value);
    const row = (await client.range(serviceKey)).kvs[0];
    let address: string | null = null;
    if (row !== undefined) {
      try {
        address = layout.claimKey(decodeSavedService(claim.value, JSON.parse(row.value) as unknown).key);
      } catch {
        continue; // a service row that does not read: not this node's to judge
      }
    }
    if (address === key) continue;
    const serviceHolds: Compare =
      row === undefined ? { key: serviceKey, target: "create", op: "equal", revision: 0 } : { key: serviceKey, target: "mod", op: "equal", revision: row.modRevision };
    const { succeeded } = await client.txn([{ key, target: "mod", op: "equal", revision: claim.modRevision }, serviceHolds], [{ deleteRange: { key } }]);
    if (succeeded) {
      log.warn(`etcd key ${key} claimed ${JSON.stringify(claim.value)}, which is ${row === undefined ? "gone" : "on another address"}; dropped it`);
      dropped = true;
    }
  }
  return dropped;
}
