/** NoDiscovery: the Discovery used when no registry (Consul URL) is configured. */
import type { Discovery } from "./discovery.ts";

/** NoDiscovery announces nothing. */
export class NoDiscovery implements Discovery {
  expose(): void {}
  remove(): void {}
  async close(): Promise<void> {}
}
