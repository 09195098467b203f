/**
 * The ip_vs module reloaded: the IPVS generic-netlink family gets a new id and the old one answers ENOENT. The
 * driver looks the family up again, sends the request again under the new id and tells its listeners; when the
 * family is gone the error says so. The fake socket stands in for the kernel (the host has no IPVS); the rig's
 * forwarding test reloads the real module.
 */
import { describe, expect, test } from "bun:test";
import { ERRNO } from "../../../src/errno.ts";
import { IpvsError } from "../../../src/ipvs/errors.ts";
import { KernelIpvsDriver } from "../../../src/ipvs/kernel-driver.ts";
import { IPVS_CMD } from "../../../src/ipvs/constants.ts";
import { NO_FLAGS, ZERO_STATS, type DestinationConfig, type ServiceConfig } from "../../../src/ipvs/types.ts";
import { ByteWriter } from "../../../src/netlink/attributes.ts";
import { NLMSG, NLM_F } from "../../../src/netlink/constants.ts";
import { decodeMessages } from "../../helpers/netlink-messages.ts";
import { TransportTimeoutError, type DatagramSocket } from "../../../src/transport/datagram-socket.ts";
import { writeServiceDump } from "../../helpers/ipvs-dump-kernel.ts";

function message(type: number, flags: number, seq: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(16 + payload.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, out.length, true);
  v.setUint16(4, type, true);
  v.setUint16(6, flags, true);
  v.setUint32(8, seq, true);
  out.set(payload, 16);
  return out;
}

/** NLMSG_ERROR with `errno` (0 = ACK) echoing a request header. */
function errorReply(seq: number, type: number, errno: number): Uint8Array {
  const body = new Uint8Array(20);
  const v = new DataView(body.buffer);
  v.setInt32(0, -errno, true);
  v.setUint32(4, 16, true);
  v.setUint16(8, type, true);
  v.setUint32(12, seq, true);
  return message(NLMSG.ERROR, 0, seq, body);
}

/** A kernel whose IPVS family is `family` (null: unloaded); every other id answers ENOENT, as genetlink does. */
class ReloadingKernel implements DatagramSocket {
  family: number | null = 0x20;
  readonly types: number[] = [];
  private readonly queue: Uint8Array[] = [];
  send(bytes: Uint8Array): void {
    for (const m of decodeMessages(bytes)) {
      this.types.push(m.type);
      if (m.type !== this.family) this.queue.push(errorReply(m.seq, m.type, ERRNO.ENOENT));
      else if ((m.flags & NLM_F.DUMP) === NLM_F.DUMP) this.queue.push(message(NLMSG.DONE, NLM_F.MULTI, m.seq, new Uint8Array(4)));
      else this.queue.push(errorReply(m.seq, m.type, 0));
    }
  }
  receive(): readonly Uint8Array[] {
    const next = this.queue.shift();
    if (next === undefined) throw new TransportTimeoutError("nothing queued");
    return [next];
  }
  close(): void {}
}

const key = { family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 } as const;
const service: ServiceConfig = { key, scheduler: "rr", flags: NO_FLAGS, timeout: 0, netmask: 32, pe: null };
const dest: DestinationConfig = { family: "inet", address: "10.1.0.1", port: 80, forward: "dr", weight: 1, upperThreshold: 0, lowerThreshold: 0, tunnel: null };

function setup() {
  const kernel = new ReloadingKernel();
  let lookups = 0;
  const driver = new KernelIpvsDriver({
    openSocket: () => kernel,
    familyId: 0x20,
    resolveFamily: () => {
      lookups++;
      return kernel.family;
    },
  });
  let changes = 0;
  driver.onFamilyChange(() => changes++);
  return { kernel, driver, lookups: () => lookups, changes: () => changes };
}

describe("ip_vs module reload", () => {
  test("a write, a dump and a batch are sent again under the new family id; listeners hear of it once per change", async () => {
    const t = setup();
    await t.driver.addService(service);
    expect(t.lookups()).toBe(0);
    t.kernel.family = 0x21; // modprobe -r ip_vs; modprobe ip_vs
    await t.driver.addService(service);
    expect(t.kernel.types.slice(-2)).toEqual([0x20, 0x21]);
    expect(t.changes()).toBe(1);
    t.kernel.family = 0x22;
    expect(await t.driver.listServices()).toEqual([]);
    expect(t.changes()).toBe(2);
    t.kernel.family = 0x23;
    const results = await t.driver.apply([
      { op: "add-service", service },
      { op: "add-destination", service: key, destination: dest },
    ]);
    expect(results).toEqual([null, null]);
    expect(t.kernel.types.slice(-4)).toEqual([0x22, 0x22, 0x23, 0x23]);
    expect(t.changes()).toBe(3);
  });

  test("a big apply goes out in chunks; after a reload every write refused under the old id is sent again, once", async () => {
    const t = setup();
    const ops = Array.from({ length: 5_000 }, (_, i) => ({ op: "add-destination" as const, service: key, destination: { ...dest, port: 1 + i } }));
    t.kernel.family = 0x21;
    const results = await t.driver.apply(ops);
    expect(results.every((r) => r === null)).toBe(true);
    expect(t.changes()).toBe(1);
    expect(t.lookups()).toBe(1);
    // Every write reached the kernel under the new id exactly once.
    expect(t.kernel.types.filter((type) => type === 0x21)).toHaveLength(5_000);
    const old = t.kernel.types.filter((type) => type === 0x20).length;
    expect(old).toBeGreaterThanOrEqual(2_048);
    expect(t.kernel.types).toHaveLength(5_000 + old);
  });

  test("a big apply whose first chunk gets no answer fails with the timeout once every chunk has settled", async () => {
    const t = setup();
    const kernel = t.kernel;
    kernel.send = () => {}; // nothing answers: every receive times out
    const ops = Array.from({ length: 5_000 }, (_, i) => ({ op: "add-destination" as const, service: key, destination: { ...dest, port: 1 + i } }));
    const error = await t.driver.apply(ops).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IpvsError);
    expect((error as IpvsError).code).toBe("ETIMEDOUT");
  });

  test("a snapshot whose destination dumps meet a reload sends them again under the new id", async () => {
    const t = setup();
    const kernel = t.kernel;
    const served = kernel.send.bind(kernel);
    // The service dump lists one service; the module is reloaded right after it.
    kernel.send = function (bytes: Uint8Array) {
      const [m] = decodeMessages(bytes);
      if (m !== undefined && m.type === kernel.family && m.payload[0] === IPVS_CMD.GET_SERVICE) {
        const w = new ByteWriter();
        w.putBytes(Uint8Array.of(IPVS_CMD.NEW_SERVICE, 1, 0, 0));
        writeServiceDump(w, { ...service, stats: ZERO_STATS });
        const queue = (this as unknown as { queue: Uint8Array[] }).queue;
        queue.push(message(m.type, NLM_F.MULTI, m.seq, w.toBytes()), message(NLMSG.DONE, NLM_F.MULTI, m.seq, new Uint8Array(4)));
        kernel.family = 0x21;
        return;
      }
      served(bytes);
    };
    expect(await t.driver.snapshot()).toEqual([{ service: { ...service, stats: ZERO_STATS }, destinations: [] }]);
    expect(kernel.types.slice(-2)).toEqual([0x20, 0x21]); // the destination dump, under the old id and again
    expect(t.changes()).toBe(1);
  });

  test("an ENOENT under the current id is the kernel's answer: no retry, no change", async () => {
    const t = setup();
    t.kernel.family = 0x20;
    // A request type the fake does not serve stands for "no such destination": the id is unchanged.
    const results = await t.driver.apply([{ op: "delete-destination", service: key, destination: dest }]);
    expect(results[0]).toBeNull();
    const kernel = t.kernel;
    kernel.send = function (bytes: Uint8Array) {
      for (const m of decodeMessages(bytes)) (this as unknown as { queue: Uint8Array[] }).queue.push(errorReply(m.seq, m.type, ERRNO.ENOENT));
    };
    const error = await t.driver.deleteDestination(key, dest).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IpvsError);
    expect((error as IpvsError).code).toBe("ENOENT");
    expect(t.lookups()).toBe(1);
    expect(t.changes()).toBe(0);
  });

  test("the family gone (module unloaded): the error says the module is not loaded", async () => {
    const t = setup();
    t.kernel.family = null;
    const error = await t.driver.listServices().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IpvsError);
    expect((error as IpvsError).code).toBe("ENOENT");
    expect((error as IpvsError).message).toContain("ip_vs module was unloaded");
    t.kernel.family = 0x30;
    expect(await t.driver.listServices()).toEqual([]);
    expect(t.changes()).toBe(1);
  });
});
