/**
 * The etcd store of `--store etcd://...` with its TLS files and password read, for `gorb serve` and
 * `gorb state export` alike (the files were checked first: ./secrets.ts checkEtcdFiles). The client key and the
 * password are read as they were checked, from the descriptor checked (./secrets.ts readPrivateFile).
 */
import { readFileSync } from "node:fs";
import type { SharedStoreOptions } from "../config/daemon-options.ts";
import type { Logger } from "../log.ts";
import { readPrivateFile } from "./secrets.ts";
import { EtcdStateStore } from "../store/etcd-store.ts";

/** See the module comment. `node`: the daemon's node name, whose starts the store records (EtcdStoreOptions.node). */
export function openSharedStore(o: SharedStoreOptions, logger?: Logger, node?: string): EtcdStateStore {
  const read = (file: string) => readFileSync(file, "utf8");
  const tls = {
    ...(o.caFile !== null ? { ca: read(o.caFile) } : {}),
    ...(o.certFile !== null ? { cert: read(o.certFile) } : {}),
    ...(o.keyFile !== null ? { key: readPrivateFile("etcd-key", o.keyFile) } : {}),
  };
  return new EtcdStateStore({
    endpoints: o.endpoints,
    prefix: o.prefix,
    ...(Object.keys(tls).length > 0 ? { tls } : {}),
    ...(o.user !== null && o.passwordFile !== null ? { auth: { user: o.user, password: readPrivateFile("etcd-password-file", o.passwordFile).trim() } } : {}),
    ...(logger !== undefined ? { logger } : {}),
    ...(node !== undefined ? { node } : {}),
  });
}
