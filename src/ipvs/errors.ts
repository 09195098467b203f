/**
 * Typed IPVS errors. Both drivers (kernel and memory) throw IpvsError with the kernel's errno name,
 * so the layers above can map "exists", "no such service" and friends without knowing the driver.
 */

/** errno values the IPVS family returns, by name (asm-generic/errno-base.h, errno.h). */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENOMEM: 12,
  EBUSY: 16,
  EEXIST: 17,
  EINVAL: 22,
  ERANGE: 34,
  EAGAIN: 11,
  ENOBUFS: 105,
  ENOPROTOOPT: 92,
  EOPNOTSUPP: 95,
  EAFNOSUPPORT: 97,
  ETIMEDOUT: 110,
} as const;

export type ErrnoName = keyof typeof ERRNO;

/** The errno name for a number, or "E<number>" for one not listed. */
export function errnoName(errno: number): string {
  for (const [name, value] of Object.entries(ERRNO)) if (value === errno) return name;
  return `E${errno}`;
}

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

/** An IPVS operation failed; `code` is the errno name (e.g. "ESRCH") and `message` says it in words. */
export class IpvsError extends Error {
  override readonly name = "IpvsError";
  readonly errno: number;
  readonly code: string;
  readonly op: IpvsOperation;

  constructor(op: IpvsOperation, errno: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.op = op;
    this.errno = errno;
    this.code = errnoName(errno);
  }
}
