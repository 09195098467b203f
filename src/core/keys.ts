/**
 * Map keys of IPVS service and destination keys, in the same format as src/ipvs/address.ts's serviceKeyId
 * and destinationKeyId, without re-canonicalising the address: every address core holds is canonical already
 * (resolve.ts and state.ts canonicalise what comes in; the driver returns canonical text). Parsing an address
 * on every lookup was a measurable part of each request.
 */
import type { DestinationKey, ServiceKey } from "../ipvs/types.ts";
import { isFwmarkKey } from "../ipvs/types.ts";

/** A string that identifies a service key (canonical address). */
export function serviceKeyId(key: ServiceKey): string {
  return isFwmarkKey(key) ? `${key.family}/fwmark/${key.fwmark}` : `${key.family}/${key.protocol}/${key.address}/${key.port}`;
}

/** A string that identifies a destination within its service (canonical address). */
export function destinationKeyId(key: DestinationKey): string {
  return `${key.family}/${key.address}/${key.port}`;
}
