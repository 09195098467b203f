/**
 * The etcd store of `--store etcd://...` with its TLS files and password read, for `gorb serve` and
 * `gorb state export` alike (the files were checked first: ./secrets.ts checkEtcdFiles).
 */
import { readFileSync } from "node:fs";
import type { SharedStoreOptions } from "../config/daemon-options.ts";
import type { Logger } from "../log.ts";
import { EtcdStateStore } from "../store/etcd-store.ts";

/** See the module comment. */
export function openSharedStore(o: SharedStoreOptions, logger?: Logger): EtcdStateStore {
  const read = (file: string) => readFileSync(file, "utf8");
  const tls = {
    ...(o.caFile !== null ? { ca: read(o.caFile) } : {}),
    ...(o.certFile !== null ? { cert: read(o.certFile) } : {}),
    ...(o.keyFile !== null ? { key: read(o.keyFile) } : {}),
  };
  return new EtcdStateStore({
    endpoints: o.endpoints,
    prefix: o.prefix,
    ...(Object.keys(tls).length > 0 ? { tls } : {}),
    ...(o.user !== null && o.passwordFile !== null ? { auth: { user: o.user, password: read(o.passwordFile).trim() } } : {}),
    ...(logger !== undefined ? { logger } : {}),
  });
}
