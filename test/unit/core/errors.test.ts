import { describe, expect, test } from "bun:test";
import {
  ConflictError,
  GorbError,
  KernelError,
  NotFoundError,
  ValidationError,
  fromIpvsError,
} from "../../../src/core/errors.ts";
import { ERRNO, IpvsError, type ErrnoName, type IpvsField, type IpvsOperation } from "../../../src/ipvs/errors.ts";
import { ipvsErrorFor } from "../../../src/ipvs/messages.ts";
import type { ServiceConfig } from "../../../src/ipvs/types.ts";
import { NO_FLAGS } from "../../../src/ipvs/types.ts";

const key = { family: "inet", protocol: "tcp", address: "10.0.0.1", port: 80 } as const;
const config: ServiceConfig = { key, scheduler: "wrr", flags: NO_FLAGS, timeout: 0, netmask: 32, pe: null };
const dest = {
  family: "inet",
  address: "10.1.0.1",
  port: 80,
  forward: "nat",
  weight: 1,
  upperThreshold: 0,
  lowerThreshold: 0,
  tunnel: null,
} as const;

describe("GorbError classes", () => {
  test("status and code per class; ValidationError carries the field", () => {
    const v = new ValidationError("port", "must be 1-65535, got 70000");
    expect([v.status, v.code, v.field, v.message]).toEqual([400, "VALIDATION", "port", "port: must be 1-65535, got 70000"]);
    expect(new NotFoundError("x").status).toBe(404);
    expect(new ConflictError("x").status).toBe(409);
    const k = new KernelError("x", "EPERM");
    expect([k.status, k.code, k.errno]).toEqual([500, "KERNEL", "EPERM"]);
    expect(k).toBeInstanceOf(GorbError);
  });
});

describe("fromIpvsError", () => {
  test("EEXIST is a 409 that says the kernel has it", () => {
    const error = fromIpvsError(ipvsErrorFor("add-service", ERRNO.EEXIST, { serviceConfig: config }));
    expect(error).toBeInstanceOf(ConflictError);
    expect(error.message).toBe("service tcp 10.0.0.1:80 already exists in the kernel (not managed by gorb)");
  });

  test("an unknown scheduler is a 400 on method, an unknown persistence engine on pe", () => {
    const sched = fromIpvsError(ipvsErrorFor("add-service", ERRNO.ENOENT, { serviceConfig: { ...config, scheduler: "nope" } }));
    expect(sched).toBeInstanceOf(ValidationError);
    expect((sched as ValidationError).field).toBe("method");
    const pe = fromIpvsError(
      ipvsErrorFor("add-service", ERRNO.ENOENT, { serviceConfig: { ...config, pe: "rtsp" } }),
    );
    expect((pe as ValidationError).field).toBe("pe");
  });

  test("a missing object gorb manages is a 500 (the kernel lost it)", () => {
    const error = fromIpvsError(ipvsErrorFor("update-destination", ERRNO.ENOENT, { service: key, destination: dest }));
    expect(error).toBeInstanceOf(KernelError);
    expect((error as KernelError).errno).toBe("ENOENT");
    expect(fromIpvsError(ipvsErrorFor("get-service", ERRNO.ESRCH, { service: key })).status).toBe(500);
  });

  test("EINVAL names the field it is about", () => {
    const error = fromIpvsError(ipvsErrorFor("add-destination", ERRNO.EINVAL, { service: key, destination: dest }));
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).field).toBe("host");
  });

  test("EPERM and other errnos are 500 with the errno name", () => {
    const error = fromIpvsError(ipvsErrorFor("add-service", ERRNO.EPERM, { serviceConfig: config }));
    expect([error.status, (error as KernelError).errno]).toEqual([500, "EPERM"]);
    expect(error.message).toContain("CAP_NET_ADMIN");
  });

  test("GorbErrors pass through; anything else is an internal 500 keeping its cause", () => {
    const v = new ValidationError("x", "y");
    expect(fromIpvsError(v)).toBe(v);
    const boom = new TypeError("boom");
    const error = fromIpvsError(boom);
    expect([error.status, error.message, error.cause]).toEqual([500, "internal error: boom", boom]);
  });

});

describe("the IPVS -> HTTP mapping is a table over data", () => {
  const cases: readonly [op: IpvsOperation, errno: ErrnoName, field: IpvsField | null, status: number, code: string, wire: string | null][] = [
    ["add-service", "EEXIST", null, 409, "CONFLICT", null],
    ["add-destination", "EEXIST", null, 409, "CONFLICT", null],
    ["add-service", "ENOENT", "scheduler", 400, "VALIDATION", "method"],
    ["update-service", "ENOENT", "pe", 400, "VALIDATION", "pe"],
    ["update-destination", "ENOENT", null, 500, "KERNEL", null],
    ["get-service", "ESRCH", null, 500, "KERNEL", null],
    ["add-destination", "EINVAL", "address", 400, "VALIDATION", "host"],
    ["add-destination", "ERANGE", "weight", 400, "VALIDATION", "weight"],
    ["add-destination", "ERANGE", "lowerThreshold", 400, "VALIDATION", "lower_threshold"],
    ["add-destination", "EINVAL", "tunnelPort", 400, "VALIDATION", "tunnel_port"],
    ["update-service", "EINVAL", "netmask", 400, "VALIDATION", "persistence_netmask"],
    ["add-service", "EINVAL", null, 400, "VALIDATION", "body"],
    ["add-service", "EPERM", null, 500, "KERNEL", null],
    ["apply", "ENOMEM", null, 500, "KERNEL", null],
  ];
  test.each(cases)("%s %s (field %s) -> %d %s, field %s", (op, errno, field, status, code, wire) => {
    // The message says nothing about the field: the mapping must come from the data, never from the words.
    const error = fromIpvsError(new IpvsError(op, ERRNO[errno], "the kernel said no", { field }));
    expect([error.status, error.code as string]).toEqual([status, code]);
    expect(error instanceof ValidationError ? error.field : null).toBe(wire);
  });

  test("the kernel's extended-ack text and the cause are kept", () => {
    const cause = new Error("netlink");
    const ipvs = new IpvsError("add-destination", ERRNO.EINVAL, "bad destination", { field: "port", kernelMessage: "Attribute failed policy validation", cause });
    const error = fromIpvsError(ipvs);
    expect([error.message, error.cause]).toEqual(["port: bad destination (kernel: Attribute failed policy validation)", ipvs]);
    expect(ipvs.cause).toBe(cause);
  });
});
