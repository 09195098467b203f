/**
 * Map keys of IPVS service and destination keys ("inet/tcp/10.0.0.1/80", "inet/10.1.0.1/8080"), without
 * re-canonicalising the address: every address core holds is canonical already
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
