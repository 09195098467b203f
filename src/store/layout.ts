/**
 * Where gorb's rows live under the shared prefix, and how keys read back as rows:
 *   PREFIX/services/<service>              the saved service row (../core/state.ts), JSON
 *   PREFIX/backends/<service>/<backend>    a saved backend row; `PREFIX/backends/web/` holds web's backends
 *                                          and nothing of web2's
 *   PREFIX/addresses/<service address>     the id of the service on that address (inet/tcp/10.0.0.1/80): one
 *                                          service per address across the fleet (./claims.ts)
 *   PREFIX/nodes/<node>                    membership, on the node's lease (./membership.ts)
 *   PREFIX/restores/<node>                 the etcd revision the node's last start restored (./etcd-store.ts)
 * A key whose id the API could never have made ("a/b", "..", "") is not a gorb key: it is skipped. A value that
 * does not read back as a row makes its service unreadable (the caller leaves that service as it is).
 */
import { checkId } from "../core/ids.ts";
import { serviceKeyId } from "../core/keys.ts";
import { SavedStateError, decodeSavedBackend, decodeSavedService, type SavedBackend, type SavedService, type SavedState } from "../core/state.ts";
import type { Logger } from "../log.ts";
import type { KeyValue } from "./etcd-client.ts";
import { errorMessage } from "../core/errors.ts";

/** A key under the prefix that was left out of the rows: its revision and why. */
export interface SkippedKey {
  readonly key: string;
  readonly revision: number;
  readonly why: string;
}

/** What readRows found. */
export interface Rows {
  readonly state: SavedState;
  /** Services with a key that does not read back. */
  readonly unreadable: Set<string>;
  readonly skipped: SkippedKey[];
}

/** What makes the ids of a key ones the API could never have made, or null. */
function idError(service: string, backend: string): string | null {
  try {
    checkId("service", service);
    checkId("backend", backend);
    return null;
  } catch (error) {
    return errorMessage(error);
  }
}

/** The keys under one prefix ("/gorb", without a trailing "/"). */
export class KeyLayout {
  readonly services: string;
  readonly backends: string;
  readonly addresses: string;
  readonly restores: string;

  constructor(prefix: string) {
    this.services = `${prefix}/services/`;
    this.backends = `${prefix}/backends/`;
    this.addresses = `${prefix}/addresses/`;
    this.restores = `${prefix}/restores/`;
  }

  /** The key of the revision node `node`'s last start restored. */
  restoreKey(node: string): string {
    return `${this.restores}${node}`;
  }

  serviceKey(id: string): string {
    return `${this.services}${id}`;
  }

  backendKey(service: string, id: string): string {
    return `${this.backends}${service}/${id}`;
  }

  /** The address claim of a service on `key`. */
  claimKey(key: SavedService["key"]): string {
    return `${this.addresses}${serviceKeyId(key)}`;
  }

  /** The service key id (../core/keys.ts) an address claim `key` is for, or null for a key that is no claim. */
  claimedKeyId(key: string): string | null {
    return key.startsWith(this.addresses) ? key.slice(this.addresses.length) : null;
  }

  /** The service id a key concerns, or null for keys outside services/ and backends/. */
  serviceOf(key: string): string | null {
    if (key.startsWith(this.services)) return key.slice(this.services.length);
    if (key.startsWith(this.backends)) {
      const rest = key.slice(this.backends.length);
      const slash = rest.indexOf("/");
      return slash < 0 ? null : rest.slice(0, slash);
    }
    return null;
  }

  /** The address claim of service `id` in its row `kv`, or null (no row, or one that does not read). */
  claimOfRow(id: string, kv: KeyValue | undefined): string | null {
    if (kv === undefined) return null;
    try {
      return this.claimKey(decodeSavedService(id, JSON.parse(kv.value) as unknown).key);
    } catch {
      return null;
    }
  }

  /**
   * The rows of `ids` (every service when null) among `kvs` that read back, and the services with a key that
   * does not (not JSON, not a row); each key left out is logged.
   */
  readRows(kvs: Iterable<KeyValue>, ids: ReadonlySet<string> | null, log: Logger): Rows {
    const services: SavedService[] = [];
    const backends: SavedBackend[] = [];
    const unreadable = new Set<string>();
    const skipped: SkippedKey[] = [];
    for (const kv of kvs) {
      const service = this.serviceOf(kv.key);
      if (service === null || (ids !== null && !ids.has(service))) continue;
      const isService = kv.key.startsWith(this.services);
      const id = isService ? service : kv.key.slice(this.backendKey(service, "").length);
      // An id the API could never have made ("a/b", "..", ""): not a gorb key; it changes nothing.
      const problem = idError(service, id);
      if (problem !== null) {
        log.error(`etcd key ${kv.key} (revision ${kv.modRevision}) is not a gorb key (${problem}); ignoring it`);
        skipped.push({ key: kv.key, revision: kv.modRevision, why: problem });
        continue;
      }
      try {
        if (isService) services.push(decodeSavedService(service, JSON.parse(kv.value) as unknown));
        else backends.push(decodeSavedBackend(service, id, JSON.parse(kv.value) as unknown));
      } catch (error) {
        const what = error instanceof SavedStateError ? error.message : errorMessage(error);
        log.error(
          `etcd key ${kv.key} (revision ${kv.modRevision}) cannot be read (${what}); ` +
            `service ${JSON.stringify(service)} is left as it is on this node until its keys read again`,
        );
        unreadable.add(service);
        skipped.push({ key: kv.key, revision: kv.modRevision, why: what });
      }
    }
    return { state: { services, backends }, unreadable, skipped };
  }
}
