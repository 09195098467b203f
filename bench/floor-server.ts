/**
 * `bun bench/floor-server.ts PORT DIR`, inside the rig guest: the least an apply and a GORB-style REST PUT must do,
 * as a second anchor for sections 1 and 2 of bench/gorb-guest.ts (with bench/floor-client.ts as the apply's client).
 * No framework, no checks, no health checks, no events, no undo:
 *   PUT /service/:service           JSON body {host, port}: one add-service through gorb's kernel driver, one row
 *   PUT /service/:service/:backend  JSON body {host, port, weight}: one add-destination (NAT), one row
 *   GET /service                    the service ids, sorted, tab-indented JSON (as gorb answers it)
 *   POST /apply                     {"services": {id: {host, port, backends: {id: {host, port, weight}}}}}: every
 *                                   service and backend as one driver batch, one transaction of their rows, and a
 *                                   report of one change per object
 * Each row is durable before the answer, as gorb's are: SQLite in WAL mode, synchronous=FULL. Prints "listening"
 * once it answers. A PUT the kernel refuses is a 500 with the kernel's error; an apply reports how many failed.
 */
import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { KernelIpvsDriver } from "../src/ipvs/kernel-driver.ts";
import { NO_FLAGS, type IpvsOp, type ServiceKey } from "../src/ipvs/types.ts";

const port = Number(process.argv[2]);
const dir = process.argv[3];
if (!Number.isInteger(port) || dir === undefined) throw new Error("usage: floor-server.ts PORT DIR");
mkdirSync(dir, { recursive: true });
const db = new Database(`${dir}/floor.db`, { create: true, strict: true });
db.run("PRAGMA locking_mode = EXCLUSIVE");
db.run("PRAGMA journal_mode = WAL");
db.run("PRAGMA synchronous = FULL");
db.run("CREATE TABLE IF NOT EXISTS rows (id TEXT PRIMARY KEY, data TEXT NOT NULL)");
const putRow = db.prepare("INSERT INTO rows (id, data) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET data = excluded.data");
const driver = new KernelIpvsDriver({ timeoutMs: 10_000 });
const services = new Map<string, ServiceKey>();

async function put(path: string[], body: Record<string, unknown>): Promise<Response> {
  const [, serviceId, backendId] = path;
  if (serviceId === undefined) return new Response(null, { status: 404 });
  let op: IpvsOp;
  if (backendId === undefined) {
    const key: ServiceKey = { family: "inet", protocol: "tcp", address: String(body.host), port: Number(body.port) };
    op = { op: "add-service", service: { key, scheduler: "wrr", flags: NO_FLAGS, timeout: 0, netmask: 32, pe: null } };
  } else {
    const key = services.get(serviceId);
    if (key === undefined) return new Response(null, { status: 404 });
    op = {
      op: "add-destination",
      service: key,
      destination: { family: "inet", address: String(body.host), port: Number(body.port), forward: "nat", weight: Number(body.weight), upperThreshold: 0, lowerThreshold: 0, tunnel: null },
    };
  }
  const [error] = await driver.apply([op]);
  if (error !== null && error !== undefined) return new Response(error.message, { status: 500 });
  if (op.op === "add-service") services.set(serviceId, op.service.key);
  putRow.run(path.slice(1).join("/"), JSON.stringify(body));
  return new Response(null, { status: 200 });
}

type DeclaredSet = Record<string, Record<string, unknown> & { backends?: Record<string, Record<string, unknown>> }>;

async function apply(set: DeclaredSet): Promise<Response> {
  const ops: IpvsOp[] = [];
  const rows: [string, string][] = [];
  const changes: { action: string; service: string; backend: string | null; status: string }[] = [];
  for (const [id, { backends = {}, ...fields }] of Object.entries(set)) {
    const key: ServiceKey = { family: "inet", protocol: "tcp", address: String(fields.host), port: Number(fields.port) };
    ops.push({ op: "add-service", service: { key, scheduler: "wrr", flags: NO_FLAGS, timeout: 0, netmask: 32, pe: null } });
    rows.push([id, JSON.stringify(fields)]);
    changes.push({ action: "create", service: id, backend: null, status: "done" });
    services.set(id, key);
    for (const [backendId, b] of Object.entries(backends)) {
      ops.push({
        op: "add-destination",
        service: key,
        destination: { family: "inet", address: String(b.host), port: Number(b.port), forward: "nat", weight: Number(b.weight), upperThreshold: 0, lowerThreshold: 0, tunnel: null },
      });
      rows.push([`${id}/${backendId}`, JSON.stringify(b)]);
      changes.push({ action: "create", service: id, backend: backendId, status: "done" });
    }
  }
  const failed = (await driver.apply(ops)).filter((e) => e !== null).length;
  db.transaction(() => {
    for (const [id, data] of rows) putRow.run(id, data);
  })();
  return Response.json({ ok: failed === 0, failed, changes });
}

Bun.serve({
  hostname: "127.0.0.1",
  port,
  async fetch(request) {
    const path = new URL(request.url).pathname.split("/").filter((p) => p !== "");
    if (request.method === "POST" && path.length === 1 && path[0] === "apply") return apply(((await request.json()) as { services: DeclaredSet }).services);
    if (path[0] !== "service") return new Response(null, { status: 404 });
    if (request.method === "GET" && path.length === 1) {
      return new Response(JSON.stringify([...services.keys()].sort(), null, "\t"), { headers: { "Content-Type": "application/json" } });
    }
    if (request.method === "PUT" && path.length <= 3) return put(path, (await request.json()) as Record<string, unknown>);
    return new Response(null, { status: 405 });
  },
});
console.log("listening");
