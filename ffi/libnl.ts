/**
 * bun:ffi bindings to libnl-3 and libnl-genl-3: socket lifetime, sending raw netlink bytes, and
 * generic-netlink family resolution. Message encoding and decoding are ours (src/netlink), so only
 * the handful of calls below cross the FFI boundary.
 *
 * Nothing is loaded when this module is imported: the libraries are opened on the first openLibnl().
 * The system copies come first, by the ABSOLUTE paths ./library-path.ts finds for their versioned sonames
 * (libnl-3.so.200, libnl-genl-3.so.200) in the ld.so cache and the system library directories, never by bare
 * soname: Bun's dlopen falls back to the current directory for a bare name, where a planted library would run
 * as root. Then comes the place a caller passes to openLibnl(place) (./libnl-copies.ts passes the copies the
 * compiled executable carries), tried for that call only: its files are gone afterwards, and a path that held them
 * could later hold anyone's file.
 *
 * The two libraries always come from the same place: libnl-genl-3 calls into libnl-3 and shares its socket
 * state, and a system libnl-3 mixed with another copy's libnl-genl-3 aborts the process (release_local_port:
 * Assertion '0' failed). A place is used only when it has both; once one of its libraries is mapped, no other
 * place is tried.
 */
import { CString, FFIType, type Pointer, dlopen } from "bun:ffi";
import { LibnlError, LibraryLoadError } from "./errors.ts";
import { findSystemLibrary } from "./library-path.ts";

export const LIBNL3_SONAME = "libnl-3.so.200";
export const LIBNL_GENL3_SONAME = "libnl-genl-3.so.200";

const nlSymbols = {
  nl_socket_alloc: { args: [], returns: FFIType.ptr },
  nl_socket_free: { args: [FFIType.ptr], returns: FFIType.void },
  nl_connect: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  nl_close: { args: [FFIType.ptr], returns: FFIType.void },
  nl_socket_get_fd: { args: [FFIType.ptr], returns: FFIType.i32 },
  nl_socket_get_local_port: { args: [FFIType.ptr], returns: FFIType.u32 },
  nl_socket_set_buffer_size: { args: [FFIType.ptr, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  nl_sendto: { args: [FFIType.ptr, FFIType.ptr, FFIType.u64], returns: FFIType.i32 },
  nl_geterror: { args: [FFIType.i32], returns: FFIType.ptr },
} as const;

const genlSymbols = {
  genl_connect: { args: [FFIType.ptr], returns: FFIType.i32 },
  genl_ctrl_resolve: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
} as const;

type NlSymbols = ReturnType<typeof dlopen<typeof nlSymbols>>["symbols"];
type GenlSymbols = ReturnType<typeof dlopen<typeof genlSymbols>>["symbols"];

/** An opaque struct nl_sock pointer. */
export type NlSocketHandle = Pointer;

/** The loaded libnl functions, wrapped so that failures throw LibnlError. */
export interface Libnl {
  /** Where the libraries were loaded from ("system" or a directory). */
  readonly source: string;
  /** nl_socket_alloc + nl_connect(protocol). */
  openSocket(protocol: number): NlSocketHandle;
  /** nl_close + nl_socket_free. */
  freeSocket(sock: NlSocketHandle): void;
  fd(sock: NlSocketHandle): number;
  localPort(sock: NlSocketHandle): number;
  /** nl_socket_set_buffer_size (SO_RCVBUF / SO_SNDBUF). */
  setBufferSize(sock: NlSocketHandle, rx: number, tx: number): void;
  /** nl_sendto: send raw bytes to the kernel; returns the bytes sent. */
  send(sock: NlSocketHandle, bytes: Uint8Array): number;
  /**
   * Resolve a generic-netlink family id by name on a short-lived socket of its own,
   * or null when the kernel has no such family.
   */
  resolveGenlFamily(name: string): number | null;
}

interface Candidate {
  readonly source: string;
  /** The absolute paths of both libraries, or why this place does not have both. */
  paths(): { readonly libnl3: string; readonly libnlGenl3: string } | string;
}

const systemCandidate: Candidate = {
  source: "system",
  paths() {
    const libnl3 = findSystemLibrary(LIBNL3_SONAME);
    const libnlGenl3 = findSystemLibrary(LIBNL_GENL3_SONAME);
    if (libnl3 !== null && libnlGenl3 !== null) return { libnl3, libnlGenl3 };
    const missing = [libnl3 === null ? LIBNL3_SONAME : null, libnlGenl3 === null ? LIBNL_GENL3_SONAME : null];
    return `${missing.filter((m) => m !== null).join(" and ")} not found in the ld.so cache or the system library directories`;
  },
};

let loaded: Libnl | null = null;
/** The place whose libnl-3 is mapped although loading failed after it: nothing else may be loaded beside it. */
let partlyLoaded: string | null = null;

/** A place other than the system holding both libraries, by absolute path. */
export interface LibnlPlace {
  /** What Libnl.source says when the libraries came from here ("embedded:memfd"). */
  readonly source: string;
  readonly libnl3: string;
  readonly libnlGenl3: string;
}

function placeCandidate(place: LibnlPlace): Candidate {
  if (!place.libnl3.startsWith("/") || !place.libnlGenl3.startsWith("/")) {
    throw new TypeError(`openLibnl: ${place.source}: the library paths must be absolute`);
  }
  return { source: place.source, paths: () => ({ libnl3: place.libnl3, libnlGenl3: place.libnlGenl3 }) };
}

/** True once openLibnl() has loaded the libraries (tests use it to prove imports load nothing). */
export function libnlLoaded(): boolean {
  return loaded !== null;
}

/** Why one place's libnl could not be used. */
export interface LibnlFailure {
  /** "system", "embedded:memfd", "embedded:<dir>". */
  readonly source: string;
  readonly reason: string;
}

/** libnl could be loaded from no place; `failures` says why for each place tried, in order. */
export class LibnlLoadError extends LibraryLoadError {
  readonly failures: readonly LibnlFailure[];

  constructor(failures: readonly LibnlFailure[]) {
    const reasons = failures.map((f) => `${f.source}: ${f.reason}`).join("; ");
    super(`${LIBNL3_SONAME} and ${LIBNL_GENL3_SONAME}`, "libnl-3-200 libnl-genl-3-200", new Error(reasons));
    this.failures = failures;
  }
}

/** NLE_OBJ_NOTFOUND: genl_ctrl_resolve's answer for an unknown family. */
const NLE_OBJ_NOTFOUND = 12;
/** NLE_AGAIN: libnl's code for EAGAIN (a send that hit SO_SNDTIMEO). */
export const NLE_AGAIN = 4;
/** NLE_NOMEM: libnl's out-of-memory code. */
const NLE_NOMEM = 5;

/**
 * Load libnl-3 and libnl-genl-3 (once), both from the same place, and return the wrapped calls: from the system,
 * else from `place` (tried in this call only, never remembered).
 */
export function openLibnl(place?: LibnlPlace): Libnl {
  if (loaded) return loaded;
  const candidates = place === undefined ? [systemCandidate] : [systemCandidate, placeCandidate(place)];
  const errors: LibnlFailure[] = [];
  if (partlyLoaded !== null) {
    errors.push({ source: partlyLoaded, reason: "libnl-3 is already loaded from there, and copies of libnl are never mixed" });
  } else {
    for (const c of candidates) {
      const paths = c.paths();
      if (typeof paths === "string") {
        errors.push({ source: c.source, reason: paths });
        continue;
      }
      let nl: NlSymbols;
      try {
        nl = dlopen(paths.libnl3, nlSymbols).symbols;
      } catch (e) {
        errors.push({ source: c.source, reason: e instanceof Error ? e.message : String(e) });
        continue;
      }
      let genl: GenlSymbols;
      try {
        genl = dlopen(paths.libnlGenl3, genlSymbols).symbols;
      } catch (e) {
        // This place's libnl-3 stays mapped: loading another place's libnl-genl-3 would mix the two.
        partlyLoaded = c.source;
        errors.push({ source: c.source, reason: `${e instanceof Error ? e.message : String(e)} (not mixing with another copy of libnl-3)` });
        break;
      }
      loaded = wrap(c.source, nl, genl);
      return loaded;
    }
  }
  throw new LibnlLoadError(errors);
}

function wrap(source: string, nl: NlSymbols, genl: GenlSymbols): Libnl {
  const errorText = (code: number): string => {
    const p = nl.nl_geterror(code);
    return p === null ? `error ${code}` : new CString(p).toString();
  };
  const check = (fn: string, rc: number): number => {
    if (rc < 0) throw new LibnlError(fn, -rc, errorText(-rc));
    return rc;
  };
  const alloc = (): NlSocketHandle => {
    const p = nl.nl_socket_alloc();
    if (p === null || typeof p === "bigint") throw new LibnlError("nl_socket_alloc", NLE_NOMEM, "out of memory");
    return p;
  };
  return {
    source,
    openSocket(protocol) {
      const sock = alloc();
      try {
        check("nl_connect", nl.nl_connect(sock, protocol));
      } catch (e) {
        nl.nl_socket_free(sock);
        throw e;
      }
      return sock;
    },
    freeSocket(sock) {
      nl.nl_close(sock);
      nl.nl_socket_free(sock);
    },
    fd: (sock) => check("nl_socket_get_fd", nl.nl_socket_get_fd(sock)),
    localPort: (sock) => nl.nl_socket_get_local_port(sock),
    setBufferSize(sock, rx, tx) {
      check("nl_socket_set_buffer_size", nl.nl_socket_set_buffer_size(sock, rx, tx));
    },
    send: (sock, bytes) => check("nl_sendto", nl.nl_sendto(sock, bytes, bytes.length)),
    resolveGenlFamily(name) {
      const sock = alloc();
      try {
        check("genl_connect", genl.genl_connect(sock));
        const rc = genl.genl_ctrl_resolve(sock, Buffer.from(`${name}\0`));
        if (rc === -NLE_OBJ_NOTFOUND) return null;
        return check("genl_ctrl_resolve", rc);
      } finally {
        nl.nl_close(sock);
        nl.nl_socket_free(sock);
      }
    },
  };
}
