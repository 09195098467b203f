/** Service discovery (Consul, or none). Re-exports only. */
export { ConsulDiscovery, type ConsulDiscoveryOptions } from "./consul.ts";
export type { Discovery, ServiceRegistration } from "./discovery.ts";
export { NoDiscovery } from "./none.ts";
