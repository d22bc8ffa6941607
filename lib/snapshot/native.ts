/**
 * The libc calls of the snapshot hot paths, through FFI: `statx` into one reused buffer (no
 * object or bigint per call, birth time included), directory reading with `getdents64`,
 * `readlinkat`, whole small files with `open`/`read`/`close`, and the coarse clock file
 * timestamps come from. `lib/fs/meta.ts` has the general-purpose versions; these exist because a
 * scan makes ~150k calls and a layer of small files three per file, where an allocation or a
 * second path lookup per call shows.
 *
 * `struct statx` has one layout on every Linux architecture; only the `open` flags differ.
 * @module
 */
import { KanikoError } from "../errors.ts";
import { errno, errnoName, strerror } from "../fs/ffi.ts";

const SYMBOLS = {
  statx: { parameters: ["i32", "buffer", "i32", "u32", "buffer"], result: "i32" },
  open: { parameters: ["buffer", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  getdents64: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  readlinkat: { parameters: ["i32", "buffer", "buffer", "usize"], result: "isize" },
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
} as const;

/** The bound symbols. */
export type Symbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let lib: Symbols | undefined;

/** The libc symbols, loaded on first use; a {@link KanikoError} when FFI is unavailable. */
export function libc(): Symbols {
  if (lib) return lib;
  if (Deno.build.os !== "linux") {
    throw new KanikoError(`snapshots need Linux, this is ${Deno.build.os}`);
  }
  try {
    lib = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
  } catch (e) {
    throw new KanikoError(`cannot load statx from libc.so.6: ${(e as Error).message}`, {
      hint: "run with --allow-ffi (or -A) on a glibc ≥ 2.30 system",
      cause: e,
    });
  }
  return lib;
}

export { errno, errnoName, strerror };

export const AT_FDCWD = -100;
export const AT_SYMLINK_NOFOLLOW = 0x100;
/** STATX_BASIC_STATS | STATX_BTIME. */
export const STATX_MASK = 0x0fff;
export const STATX_BTIME = 0x0800;
const CLOCK_REALTIME_COARSE = 5;
const AARCH64 = Deno.build.arch === "aarch64";
/** O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC. */
export const O_DIR = AARCH64 ? 0o40000 | 0o100000 | 0o2000000 : 0o200000 | 0o400000 | 0o2000000;
/** O_RDONLY | O_NOFOLLOW | O_CLOEXEC. */
export const O_FILE = AARCH64 ? 0o100000 | 0o2000000 : 0o400000 | 0o2000000;

// struct statx as Uint32 indexes.
export const SX_MASK = 0;
export const SX_NLINK = 4;
export const SX_UID = 5;
export const SX_GID = 6;
/** st_mode in the low 16 bits. */
export const SX_MODE = 7;
export const SX_INO = 8;
export const SX_SIZE = 10;
/** Timestamps: tv_sec low, tv_sec high, tv_nsec. */
export const SX_BTIME = 20;
export const SX_CTIME = 24;
export const SX_MTIME = 28;
export const SX_RDEV_MAJOR = 32;
export const SX_RDEV_MINOR = 33;
export const SX_DEV_MAJOR = 34;
export const SX_DEV_MINOR = 35;

/** The reused `struct statx` buffer and its Uint32 view. */
export const sxBuf = new Uint8Array(256);
export const sx = new Uint32Array(sxBuf.buffer);

const encoder = new TextEncoder();
let pathBuf = new Uint8Array(4096);

/** `s` NUL-terminated in a reused buffer (valid until the next call). */
export function cpath(s: string): Uint8Array<ArrayBuffer> {
  if (s.length * 3 + 1 > pathBuf.length) pathBuf = new Uint8Array(s.length * 3 + 1);
  const { written } = encoder.encodeInto(s, pathBuf);
  pathBuf[written] = 0;
  return pathBuf as Uint8Array<ArrayBuffer>;
}

/** `statx` of `path` itself (not a symlink's target) into {@link sx}; 0 or errno. */
export function lstatx(path: string): number {
  return libc().statx(AT_FDCWD, cpath(path), AT_SYMLINK_NOFOLLOW, STATX_MASK, sxBuf) === 0
    ? 0
    : errno();
}

/** The nanoseconds of a timestamp in {@link sx} (`at` = SX_MTIME, …). */
export function sxTimeNs(at: number): bigint {
  return ((BigInt(sx[at + 1] | 0) << 32n) | BigInt(sx[at])) * 1_000_000_000n + BigInt(sx[at + 2]);
}

/** A timestamp in {@link sx} truncated to whole seconds, in nanoseconds. */
export function sxSecondsNs(at: number): bigint {
  return ((BigInt(sx[at + 1] | 0) << 32n) | BigInt(sx[at])) * 1_000_000_000n;
}

const clockBuf = new Uint8Array(16);
const clockView = new DataView(clockBuf.buffer);

/** The kernel's coarse realtime clock (the one file timestamps come from) as [sec, nsec]. */
export function coarseNow(): [number, number] {
  if (libc().clock_gettime(CLOCK_REALTIME_COARSE, clockBuf) !== 0) {
    const ms = Date.now();
    return [Math.floor(ms / 1000), (ms % 1000) * 1e6];
  }
  return [Number(clockView.getBigInt64(0, true)), Number(clockView.getBigInt64(8, true))];
}

/**
 * The whole content of the regular file `path`, expected to be `size` bytes (no symlink is
 * followed). Returns the bytes, or a number: the size found when it differs (`size + 1` means
 * "more"), or `-errno` when the file cannot be opened or read.
 */
export function readWhole(path: string, size: number): Uint8Array | number {
  const l = libc();
  const fd = l.open(cpath(path), O_FILE);
  if (fd < 0) return -errno();
  try {
    // One byte more than expected, to notice a file that grew.
    const buf = new Uint8Array(size + 1);
    let got = 0;
    while (got <= size) {
      const n = Number(l.read(fd, got === 0 ? buf : buf.subarray(got), BigInt(size + 1 - got)));
      if (n < 0) {
        const err = errno();
        if (err === 4) continue; // EINTR
        return -err;
      }
      if (n === 0) break;
      got += n;
    }
    return got === size ? buf.subarray(0, size) : got;
  } finally {
    l.close(fd);
  }
}
