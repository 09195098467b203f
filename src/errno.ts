/**
 * Linux errno numbers by name (asm-generic/errno-base.h, asm-generic/errno.h), the one table every layer
 * (transport, ipvs, netif) uses instead of bare numbers. x86-64 and arm64 share these values. And errorCode, the
 * one reading of the code (an errno name) a thrown value carries, for every layer.
 */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ERANGE: 34,
  EMSGSIZE: 90,
  ENOPROTOOPT: 92,
  EOPNOTSUPP: 95,
  EAFNOSUPPORT: 97,
  EADDRNOTAVAIL: 99,
  ENOBUFS: 105,
  ETIMEDOUT: 110,
} as const;

export type ErrnoName = keyof typeof ERRNO;

/** The errno name for a number, or "E<number>" for one not listed. */
export function errnoName(errno: number): string {
  for (const [name, value] of Object.entries(ERRNO)) if (value === errno) return name;
  return `E${errno}`;
}

/**
 * The code a thrown value carries as text (a system call's errno name, "ENOENT"; Bun's "ConnectionRefused"; SQLite's
 * "SQLITE_BUSY"; a TLS library's code), or "" when it carries none. Anything may be thrown, null and strings included.
 */
export function errorCode(error: unknown): string {
  return typeof error === "object" && error !== null && "code" in error && typeof error.code === "string" ? error.code : "";
}
