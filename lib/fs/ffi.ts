/**
 * Raw libc bindings for {@link ./meta.ts}: one lazy `Deno.dlopen("libc.so.6")`, errno through
 * `__errno_location`, `strerror` for messages, the `struct stat` layout of the running
 * architecture, and reusable NUL-terminated path buffers so hot calls (`lstat`) allocate nothing.
 *
 * Nothing here throws a {@link KanikoError} except {@link libc} (FFI unavailable); callers check
 * return values and turn `errno()` into errors.
 * @module
 */
import { KanikoError } from "../errors.ts";

/** `AT_FDCWD` from `<fcntl.h>`. */
export const AT_FDCWD = -100;
/** `AT_SYMLINK_NOFOLLOW` from `<fcntl.h>`. */
export const AT_SYMLINK_NOFOLLOW = 0x100;

/** File type bits of `st_mode` (`<sys/stat.h>`). */
export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;

/** Linux errno values used by name (identical on x86_64 and aarch64). */
export const ENOENT = 2;
export const ENOTDIR = 20;
export const ERANGE = 34;
export const ENODATA = 61;
export const ENOTSUP = 95; // == EOPNOTSUPP on Linux

/** Errno names by number, for error codes (the generic Linux table: x86_64 and aarch64). */
const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  5: "EIO",
  7: "E2BIG",
  9: "EBADF",
  12: "ENOMEM",
  13: "EACCES",
  14: "EFAULT",
  16: "EBUSY",
  17: "EEXIST",
  18: "EXDEV",
  19: "ENODEV",
  20: "ENOTDIR",
  21: "EISDIR",
  22: "EINVAL",
  24: "EMFILE",
  26: "ETXTBSY",
  27: "EFBIG",
  28: "ENOSPC",
  30: "EROFS",
  31: "EMLINK",
  34: "ERANGE",
  36: "ENAMETOOLONG",
  38: "ENOSYS",
  39: "ENOTEMPTY",
  40: "ELOOP",
  61: "ENODATA",
  75: "EOVERFLOW",
  95: "ENOTSUP",
  116: "ESTALE",
  122: "EDQUOT",
};

/** The symbolic name of an errno value (`EACCES`), or `E<n>` for one not in the table. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `E${errno}`;
}

const SYMBOLS = {
  lstat: { parameters: ["buffer", "buffer"], result: "i32", optional: true },
  /** glibc < 2.33 only exported the versioned wrapper: `__lxstat(ver, path, buf)`. */
  __lxstat: { parameters: ["i32", "buffer", "buffer"], result: "i32", optional: true },
  utimensat: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  lchown: { parameters: ["buffer", "u32", "u32"], result: "i32" },
  chmod: { parameters: ["buffer", "u32"], result: "i32" },
  mknod: { parameters: ["buffer", "u32", "u64"], result: "i32", optional: true },
  /** glibc < 2.33: `__xmknod(ver, path, mode, dev_t *dev)`, ver 0 on both architectures. */
  __xmknod: { parameters: ["i32", "buffer", "u32", "buffer"], result: "i32", optional: true },
  llistxattr: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
  lgetxattr: { parameters: ["buffer", "buffer", "buffer", "usize"], result: "isize" },
  lsetxattr: { parameters: ["buffer", "buffer", "buffer", "usize", "i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const;

/** The libc symbols {@link libc} returns. */
export type LibcSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let lib: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;
let errnoView: Deno.UnsafePointerView | undefined;

/** The libc symbols, opened on first use. Throws a {@link KanikoError} when FFI is unavailable. */
export function libc(): LibcSymbols {
  if (lib) return lib.symbols;
  if (Deno.build.os !== "linux") {
    throw new KanikoError(`file metadata needs Linux, this is ${Deno.build.os}`);
  }
  try {
    lib = Deno.dlopen("libc.so.6", SYMBOLS);
  } catch (e) {
    throw new KanikoError(`cannot load libc.so.6 for file metadata: ${(e as Error).message}`, {
      hint: "run with --allow-ffi (or -A) on a glibc system",
      cause: e,
    });
  }
  return lib.symbols;
}

/**
 * The calling thread's errno. The `__errno_location` pointer is per thread and stable, so it is
 * looked up once (each worker evaluates this module on its own thread); reading it is a plain
 * memory read. Call right after the failing libc call.
 */
export function errno(): number {
  if (!errnoView) {
    const p = libc().__errno_location();
    if (!p) return 0;
    errnoView = new Deno.UnsafePointerView(p);
  }
  return errnoView.getInt32(0);
}

/** `strerror(errno)`, e.g. "Permission denied". */
export function strerror(errno: number): string {
  const p = libc().strerror(errno);
  return p ? Deno.UnsafePointerView.getCString(p) : `errno ${errno}`;
}

// --- struct stat -----------------------------------------------------------------------------

/**
 * Byte offsets of the `struct stat` fields read, per architecture (glibc, 64-bit).
 *
 * x86_64 (`sysdeps/unix/sysv/linux/x86/bits/struct_stat.h`), 144 bytes:
 *   0 st_dev u64 · 8 st_ino u64 · 16 st_nlink u64 · 24 st_mode u32 · 28 st_uid u32 ·
 *   32 st_gid u32 · 36 pad · 40 st_rdev u64 · 48 st_size i64 · 56 st_blksize i64 ·
 *   64 st_blocks i64 · 72 st_atim · 88 st_mtim · 104 st_ctim (timespec: i64 sec, i64 nsec) ·
 *   120 reserved[3].
 * aarch64 (the generic layout, `sysdeps/unix/sysv/linux/generic/bits/struct_stat.h`), 128 bytes:
 *   0 st_dev u64 · 8 st_ino u64 · 16 st_mode u32 · 20 st_nlink u32 · 24 st_uid u32 ·
 *   28 st_gid u32 · 32 st_rdev u64 · 40 pad · 48 st_size i64 · 56 st_blksize i32 · 60 pad ·
 *   64 st_blocks i64 · 72 st_atim · 88 st_mtim · 104 st_ctim · 120 reserved[2].
 */
export interface StatLayout {
  size: number;
  dev: number;
  ino: number;
  nlink: number;
  /** Width of st_nlink in bytes (8 on x86_64, 4 on aarch64). */
  nlinkSize: 4 | 8;
  mode: number;
  uid: number;
  gid: number;
  rdev: number;
  fileSize: number;
  atime: number;
  mtime: number;
  ctime: number;
  /** `_STAT_VER` for the `__lxstat` fallback. */
  statVer: number;
}

/** The layouts by `Deno.build.arch`. */
export const STAT_LAYOUTS: Record<"x86_64" | "aarch64", StatLayout> = {
  x86_64: {
    size: 144,
    dev: 0,
    ino: 8,
    nlink: 16,
    nlinkSize: 8,
    mode: 24,
    uid: 28,
    gid: 32,
    rdev: 40,
    fileSize: 48,
    atime: 72,
    mtime: 88,
    ctime: 104,
    statVer: 1,
  },
  aarch64: {
    size: 128,
    dev: 0,
    ino: 8,
    nlink: 20,
    nlinkSize: 4,
    mode: 16,
    uid: 24,
    gid: 28,
    rdev: 32,
    fileSize: 48,
    atime: 72,
    mtime: 88,
    ctime: 104,
    statVer: 0,
  },
};

/** The `struct stat` layout of this process's architecture. */
export function statLayout(): StatLayout {
  const layout = STAT_LAYOUTS[Deno.build.arch as "x86_64" | "aarch64"];
  if (!layout) {
    throw new KanikoError(`file metadata is not implemented for ${Deno.build.arch}`);
  }
  return layout;
}

// --- C strings -------------------------------------------------------------------------------

const encoder = new TextEncoder();

/** A reusable buffer for NUL-terminated strings; grows as needed. */
export class CString {
  #buf = new Uint8Array(4096);

  /**
   * Encodes `s` plus a NUL into the reused buffer and returns it (valid until the next call on
   * this instance). Returns `undefined` when `s` contains a NUL character (it cannot be passed).
   */
  encode(s: string): Uint8Array<ArrayBuffer> | undefined {
    // UTF-8 needs at most 3 bytes per UTF-16 code unit.
    if (s.length * 3 + 1 > this.#buf.length) {
      this.#buf = new Uint8Array(Math.max(s.length * 3 + 1, this.#buf.length * 2));
    }
    if (s.indexOf("\0") !== -1) return undefined;
    const { written } = encoder.encodeInto(s, this.#buf);
    this.#buf[written] = 0;
    return this.#buf as Uint8Array<ArrayBuffer>;
  }
}

/** glibc's `makedev`: the 64-bit `dev_t` of a major/minor pair. */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major >>> 0);
  const mi = BigInt(minor >>> 0);
  return ((ma & 0xfffn) << 8n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n) | ((ma & ~0xfffn) << 32n);
}

/** glibc's `major` of a `dev_t` read as two 32-bit halves (`lo` = bits 0–31, `hi` = 32–63). */
export function devMajor(lo: number, hi: number): number {
  return (((lo >>> 8) & 0xfff) | (hi & 0xfffff000)) >>> 0;
}

/** glibc's `minor` of a `dev_t` read as two 32-bit halves. */
export function devMinor(lo: number, hi: number): number {
  return ((lo & 0xff) | ((lo >>> 12) & 0xfff00) | ((hi & 0xfff) << 20)) >>> 0;
}
