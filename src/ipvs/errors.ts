/**
 * Typed IPVS errors. Both drivers (kernel and memory) throw IpvsError with the kernel's errno name, the
 * attribute of the request it concerns (when it is known) and the kernel's own extended-ack text (when the
 * kernel sent one), so the layers above map "exists", "no such service" and "bad weight" from data, never
 * from the wording of the message.
 */
import { ERRNO, errnoName, type ErrnoName } from "../errno.ts";

export { ERRNO, errnoName, type ErrnoName };

/** The IPVS operation that failed, for messages. */
export type IpvsOperation =
  | "info"
  | "get-timeouts"
  | "set-timeouts"
  | "flush"
  | "zero"
  | "add-service"
  | "update-service"
  | "delete-service"
  | "get-service"
  | "list-services"
  | "add-destination"
  | "update-destination"
  | "delete-destination"
  | "list-destinations"
  | "apply";

/**
 * The attribute of a service or destination config an error is about (the driver's names, see ./types.ts).
 * `address`, `port` and `family` belong to the service for service operations and to the destination for
 * destination operations.
 */
export type IpvsField =
  | "family"
  | "protocol"
  | "address"
  | "port"
  | "fwmark"
  | "scheduler"
  | "pe"
  | "flags"
  | "timeout"
  | "netmask"
  | "forward"
  | "weight"
  | "upperThreshold"
  | "lowerThreshold"
  | "tunnelType"
  | "tunnelPort"
  | "tunnelChecksum"
  | "timeouts";

/** What an IpvsError may carry besides op, errno and message. */
export interface IpvsErrorOptions {
  readonly cause?: unknown;
  /** The attribute the error is about; null or absent when it is about the request as a whole. */
  readonly field?: IpvsField | null;
  /** The kernel's extended-ack message (NLMSGERR_ATTR_MSG), when it sent one. */
  readonly kernelMessage?: string | null;
}

/** An IPVS operation failed; `code` is the errno name (e.g. "ESRCH") and `message` says it in words. */
export class IpvsError extends Error {
  override readonly name = "IpvsError";
  readonly errno: number;
  readonly code: string;
  readonly op: IpvsOperation;
  /** The attribute the error is about, or null. */
  readonly field: IpvsField | null;
  /** The kernel's extended-ack text, or null when it sent none (or the error did not come from the kernel). */
  readonly kernelMessage: string | null;

  constructor(op: IpvsOperation, errno: number, message: string, options: IpvsErrorOptions = {}) {
    const ext = options.kernelMessage ?? null;
    const text = ext === null || message.includes(ext) ? message : `${message} (kernel: ${ext})`;
    super(text, ...(options.cause === undefined ? [] : [{ cause: options.cause }]));
    this.op = op;
    this.errno = errno;
    this.code = errnoName(errno);
    this.field = options.field ?? null;
    this.kernelMessage = ext;
  }
}
