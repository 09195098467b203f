/** Desired-state records built by hand for the pure core tests (no Gorb): a service "web" on 10.0.0.1:80. */
import { DesiredState, type ServiceRecord } from "../../../src/core/desired-state.ts";
import { fieldsOf } from "../../../src/core/fields.ts";
import { normalizeService } from "../../../src/core/normalize.ts";

/** Service "web" (tcp 10.0.0.1:80, wrr) with `body`'s fields, no backends, in a new DesiredState. */
export function webService(body: Record<string, unknown> = {}): { desired: DesiredState; service: ServiceRecord } {
  const spec = normalizeService({ host: "10.0.0.1", port: 80, ...body });
  const service: ServiceRecord = {
    id: "web",
    source: "api",
    fields: fieldsOf({}),
    spec,
    config: {
      key: { family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 },
      scheduler: "wrr",
      flags: { persistent: false, onePacket: false, sched1: false, sched2: false, sched3: false },
      timeout: 0,
      netmask: 32,
      pe: null,
    },
    backends: new Map(),
    byDest: new Map(),
    keep: new Set(),
    panic: false,
  };
  const desired = new DesiredState();
  desired.addService(service);
  return { desired, service };
}
