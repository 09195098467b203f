/**
 * The rule sets the gorb benchmarks use, written every way they are fed in: an `ipvsadm -R` script (the anchor),
 * a `gorb apply -f` file, REST bodies, and a state directory for a restore. Service i is TCP vip(i):80 with the
 * wrr scheduler; its backend j is rip(i, j):8000, NAT, weight j%100+1, no health check (pulse type none), so every
 * form describes exactly the same kernel table.
 *
 * writeStateDir fills gorb's SQLite state directly (through src/state's store, as the daemon writes it): making
 * 20,000 backends through the daemon first would take longer than the restore being measured. It depends on the
 * saved-row shape of src/core/state.ts; if the store changes, this is the one function to adapt.
 */
import type { SavedBackend, SavedService } from "../src/core/state.ts";
import { SqliteStateStore } from "../src/state/sqlite-store.ts";
import type { Size } from "./stats.ts";

/** The port every backend listens on. */
export const BACKEND_PORT = 8000;

/** The address of service i: 10.100.x.y (10.101... past 65,535). */
export function vip(i: number): string {
  return `10.${100 + (i >> 16)}.${(i >> 8) & 0xff}.${i & 0xff}`;
}

/** The address of backend j of service i: 250 per /24 under 10.77.0.0/16 (never .0 or .255), then 10.78... */
export function rip(size: Size, i: number, j: number): string {
  const n = i * size.backends + j;
  const block = Math.floor(n / 250);
  return `10.${77 + (block >> 8)}.${block & 0xff}.${(n % 250) + 1}`;
}

export const serviceId = (i: number): string => `s${i}`;
export const backendId = (j: number): string => `b${j}`;

/** The REST / apply fields of service i. */
export function serviceBody(i: number): Record<string, unknown> {
  return { host: vip(i), port: 80, protocol: "tcp", method: "wrr" };
}

/** The REST / apply fields of backend j of service i. */
export function backendBody(size: Size, i: number, j: number): Record<string, unknown> {
  return { host: rip(size, i, j), port: BACKEND_PORT, weight: (j % 100) + 1, method: "nat", pulse: { type: "none" } };
}

/** The `ipvsadm -R` script of the whole set. */
export function ipvsadmRules(size: Size): string {
  const lines: string[] = [];
  for (let i = 0; i < size.services; i++) {
    lines.push(`-A -t ${vip(i)}:80 -s wrr`);
    for (let j = 0; j < size.backends; j++) lines.push(`-a -t ${vip(i)}:80 -r ${rip(size, i, j)}:${BACKEND_PORT} -m -w ${(j % 100) + 1}`);
  }
  return `${lines.join("\n")}\n`;
}

/** The JSON configuration file `gorb apply -f` reads: {"services": {id: {...fields, backends: {id: {...}}}}}. */
export function applyFile(size: Size): string {
  const services: Record<string, unknown> = {};
  for (let i = 0; i < size.services; i++) {
    const backends: Record<string, unknown> = {};
    for (let j = 0; j < size.backends; j++) backends[backendId(j)] = backendBody(size, i, j);
    services[serviceId(i)] = { ...serviceBody(i), backends };
  }
  return JSON.stringify({ services });
}

/** The routes the rule set needs (a NAT destination must be a unicast address the kernel can route). */
export function routesFor(size: Size): string[] {
  const last = rip(size, size.services - 1, Math.max(size.backends - 1, 0));
  const top = Number(last.split(".")[1]);
  const routes: string[] = [];
  for (let b = 77; b <= top; b++) routes.push(`10.${b}.0.0/16`);
  return routes;
}

/** Writes `size` as API-owned services and backends into a fresh state directory `dir` (see the module comment). */
export async function writeStateDir(dir: string, size: Size): Promise<void> {
  const store = SqliteStateStore.open(dir);
  try {
    const putServices: SavedService[] = [];
    const putBackends: SavedBackend[] = [];
    for (let i = 0; i < size.services; i++) {
      putServices.push({
        id: serviceId(i),
        source: "api",
        fields: serviceBody(i),
        key: { family: "inet", protocol: "tcp", address: vip(i), port: 80 },
        vip: false,
      });
      for (let j = 0; j < size.backends; j++) {
        putBackends.push({
          service: serviceId(i),
          id: backendId(j),
          source: "api",
          fields: backendBody(size, i, j),
          address: { address: rip(size, i, j), family: "inet" },
        });
      }
    }
    // A large commit is written in slices and settles later: the store is closed only once it is on disk.
    await store.commit({ putServices, deleteServices: [], putBackends, deleteBackends: [] });
  } finally {
    store.close();
  }
}
