/**
 * File metadata the platform lacks, through libc (FFI): `lstat` with nanosecond times,
 * `utimensat` without following symlinks, `lchown`, `mknod`, and binary-safe xattrs.
 * `Deno.lstat` and `node:fs` only give millisecond times and cannot make device nodes or
 * touch xattrs.
 *
 * Everything is synchronous: each call is one or two syscalls. {@link lstatNs} is built for
 * scanning ~100k paths: it reuses one path buffer and one `struct stat` buffer and allocates only
 * the result object and its bigints.
 *
 * Errors are {@link KanikoError}s with one line `cannot OP PATH: ENAME (strerror)` and `code` set
 * to the errno name (`EACCES`, `EPERM`, `ENOTSUP`, …), so callers can branch on `code`.
 *
 * Needs `--allow-ffi` and glibc (`libc.so.6`) on x86_64 or aarch64.
 * @module
 */
import { KanikoError } from "../errors.ts";
import {
  AT_FDCWD,
  AT_SYMLINK_NOFOLLOW,
  CString,
  devMajor,
  devMinor,
  ENODATA,
  ENOENT,
  ENOTDIR,
  ENOTSUP,
  ERANGE,
  errno,
  errnoName,
  libc,
  makedev,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  S_IFSOCK,
  type StatLayout,
  statLayout,
  strerror,
} from "./ffi.ts";

/** The kind of a filesystem entry. */
export type FileType = "file" | "dir" | "symlink" | "char" | "block" | "fifo" | "socket";

/** What {@link lstatNs} returns: the entry itself, never a symlink's target. */
export interface FileMeta {
  type: FileType;
  /** Permission bits incl. setuid/setgid/sticky (`0o7777`). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
  dev: bigint;
  nlink: number;
  /** Device number of a char/block device (0 otherwise). */
  rdevMajor: number;
  rdevMinor: number;
}

/** Metadata {@link applyMetadata} writes. */
export interface AppliedMeta {
  type: FileType;
  /** Permission bits incl. setuid/setgid/sticky; ignored for symlinks. */
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
  /** Access time; defaults to `mtimeNs`. */
  atimeNs?: bigint;
  /** Extended attributes, set in name order. Existing ones not listed are left alone. */
  xattrs?: Record<string, Uint8Array>;
}

const NS_PER_S = 1_000_000_000n;
/** Linux' XATTR_SIZE_MAX and XATTR_LIST_MAX: one buffer this size always suffices. */
const XATTR_MAX = 65536;

// Reused buffers: two C strings (path, xattr name), the stat struct, the timespec pair.
const pathBuf = new CString();
const nameBuf = new CString();
let layout: StatLayout | undefined;
let statBuf: Uint8Array<ArrayBuffer> | undefined;
let statView: DataView | undefined;
const timesBuf = new Uint8Array(32);
const timesView = new DataView(timesBuf.buffer);
let xattrBuf: Uint8Array<ArrayBuffer> | undefined;
const decoder = new TextDecoder();

/** Shows a path in a message; quoted when it holds whitespace, quotes or control characters. */
function showPath(path: string): string {
  // deno-lint-ignore no-control-regex
  return /[\x00-\x20\x7f"]/.test(path) ? JSON.stringify(path) : path;
}

/** The error for a failed call: `cannot OP PATH: ENAME (strerror)`, code ENAME. */
function failure(op: string, path: string, err: number, hint?: string): KanikoError {
  const name = errnoName(err);
  return new KanikoError(`cannot ${op} ${showPath(path)}: ${name} (${strerror(err)})`, {
    code: name,
    hint,
  });
}

/** A hint for permission errors. */
function privilegeHint(err: number): string | undefined {
  return err === 1
    ? "this needs root (CAP_CHOWN, CAP_MKNOD, CAP_FOWNER, CAP_SYS_ADMIN)"
    : undefined;
}

/** `path` as a C string; a path with a NUL character is rejected with code EINVAL. */
function cpath(path: string, op: string): Uint8Array<ArrayBuffer> {
  const c = pathBuf.encode(path);
  if (!c) {
    throw new KanikoError(`cannot ${op} ${showPath(path)}: the path contains a NUL character`, {
      code: "EINVAL",
    });
  }
  return c;
}

/** `name` as a C string (second buffer, so it can be passed with a path). */
function cname(name: string, path: string, op: string): Uint8Array<ArrayBuffer> {
  const c = nameBuf.encode(name);
  if (!c || name === "") {
    throw new KanikoError(
      `cannot ${op} ${showPath(path)}: bad xattr name ${JSON.stringify(name)}`,
      {
        code: "EINVAL",
      },
    );
  }
  return c;
}

/** The file type of an `st_mode`. */
export function fileTypeOf(stMode: number): FileType {
  switch (stMode & S_IFMT) {
    case S_IFREG:
      return "file";
    case S_IFDIR:
      return "dir";
    case S_IFLNK:
      return "symlink";
    case S_IFCHR:
      return "char";
    case S_IFBLK:
      return "block";
    case S_IFIFO:
      return "fifo";
    case S_IFSOCK:
      return "socket";
    default:
      throw new KanikoError(`unknown file type in st_mode 0o${stMode.toString(8)}`);
  }
}

/** Calls lstat into the reused buffer; 0 on success, else errno. */
function rawLstat(path: string): number {
  const c = cpath(path, "lstat");
  const lib = libc();
  if (!statBuf) {
    layout = statLayout();
    statBuf = new Uint8Array(layout.size);
    statView = new DataView(statBuf.buffer);
  }
  const r = lib.lstat ? lib.lstat(c, statBuf) : lib.__lxstat!(layout!.statVer, c, statBuf);
  return r === 0 ? 0 : errno();
}

/** Reads a `struct timespec` at `off` as nanoseconds. */
function timespecAt(v: DataView, off: number): bigint {
  return v.getBigInt64(off, true) * NS_PER_S + BigInt(v.getUint32(off + 8, true));
}

/**
 * `lstat(2)` with nanosecond times. Returns `undefined` when the path does not exist (ENOENT,
 * or ENOTDIR: a parent is not a directory); throws a {@link KanikoError} for other errors.
 */
export function lstatNs(path: string): FileMeta | undefined {
  const err = rawLstat(path);
  if (err !== 0) {
    if (err === ENOENT || err === ENOTDIR) return undefined;
    throw failure("lstat", path, err);
  }
  const v = statView!;
  const l = layout!;
  const stMode = v.getUint32(l.mode, true);
  const rdevLo = v.getUint32(l.rdev, true);
  const rdevHi = v.getUint32(l.rdev + 4, true);
  return {
    type: fileTypeOf(stMode),
    mode: stMode & 0o7777,
    uid: v.getUint32(l.uid, true),
    gid: v.getUint32(l.gid, true),
    size: Number(v.getBigInt64(l.fileSize, true)),
    mtimeNs: timespecAt(v, l.mtime),
    ctimeNs: timespecAt(v, l.ctime),
    ino: v.getBigUint64(l.ino, true),
    dev: v.getBigUint64(l.dev, true),
    // st_nlink is u64 on x86_64, u32 on aarch64; link counts fit in 32 bits in practice.
    nlink: l.nlinkSize === 8
      ? v.getUint32(l.nlink, true) + v.getUint32(l.nlink + 4, true) * 2 ** 32
      : v.getUint32(l.nlink, true),
    rdevMajor: devMajor(rdevLo, rdevHi),
    rdevMinor: devMinor(rdevLo, rdevHi),
  };
}

/** The access time of `path` in nanoseconds (not following symlinks), or undefined if absent. */
export function atimeNs(path: string): bigint | undefined {
  const err = rawLstat(path);
  if (err === ENOENT || err === ENOTDIR) return undefined;
  if (err !== 0) throw failure("lstat", path, err);
  return timespecAt(statView!, layout!.atime);
}

/** Writes nanoseconds as a `struct timespec` (tv_nsec always in [0, 1e9)). */
function putTimespec(off: number, ns: bigint): void {
  let sec = ns / NS_PER_S;
  let nsec = ns % NS_PER_S;
  if (nsec < 0n) {
    sec -= 1n;
    nsec += NS_PER_S;
  }
  timesView.setBigInt64(off, sec, true);
  timesView.setBigInt64(off + 8, nsec, true);
}

/**
 * Sets access and modification times with nanosecond precision, on the entry itself (a symlink
 * gets its own times): `utimensat(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW)`. Times before
 * 1970 (negative) are allowed.
 */
export function setTimesNs(path: string, atimeNs: bigint, mtimeNs: bigint): void {
  const c = cpath(path, "set times of");
  putTimespec(0, atimeNs);
  putTimespec(16, mtimeNs);
  if (libc().utimensat(AT_FDCWD, c, timesBuf, AT_SYMLINK_NOFOLLOW) !== 0) {
    const err = errno();
    throw failure("set times of", path, err, privilegeHint(err));
  }
}

/** Checks that `id` is a valid uid/gid (0 … 2³²−2; −1 would mean "unchanged"). */
function checkId(id: number, what: string, path: string): void {
  if (!Number.isInteger(id) || id < 0 || id > 0xfffffffe) {
    throw new KanikoError(`cannot chown ${showPath(path)}: bad ${what} ${id}`, { code: "EINVAL" });
  }
}

/**
 * Changes owner and group of the entry itself (a symlink, not its target). As on Linux for
 * root, this clears setuid/setgid on regular files and drops `security.capability`: set the mode
 * and xattrs afterwards (as {@link applyMetadata} does).
 */
export function lchown(path: string, uid: number, gid: number): void {
  checkId(uid, "uid", path);
  checkId(gid, "gid", path);
  const c = cpath(path, "chown");
  if (libc().lchown(c, uid, gid) !== 0) {
    const err = errno();
    throw failure("chown", path, err, privilegeHint(err));
  }
}

/**
 * Sets permission bits (incl. setuid/setgid/sticky) of `path`, refusing a symlink (Linux has no
 * lchmod; `chmod` would change the target, possibly outside a root). One lstat + one chmod.
 */
export function lchmod(path: string, mode: number): void {
  const err = rawLstat(path);
  if (err !== 0) throw failure("chmod", path, err);
  if ((statView!.getUint32(layout!.mode, true) & S_IFMT) === S_IFLNK) {
    throw new KanikoError(`cannot chmod ${showPath(path)}: it is a symlink`, { code: "ELOOP" });
  }
  const c = cpath(path, "chmod");
  if (libc().chmod(c, mode & 0o7777) !== 0) {
    const e = errno();
    throw failure("chmod", path, e, privilegeHint(e));
  }
}

/**
 * Creates a device node or fifo with exactly `mode`'s permission bits (the umask is undone by a
 * chmod). Devices need root (CAP_MKNOD): EPERM otherwise. An existing path fails with EEXIST.
 */
export function mknod(
  path: string,
  type: "char" | "block" | "fifo",
  mode: number,
  major = 0,
  minor = 0,
): void {
  const typeBits = type === "char" ? S_IFCHR : type === "block" ? S_IFBLK : S_IFIFO;
  const dev = type === "fifo" ? 0n : makedev(major, minor);
  const c = cpath(path, `mknod ${type}`);
  const lib = libc();
  const stMode = typeBits | (mode & 0o7777);
  let r: number;
  if (lib.mknod) {
    r = lib.mknod(c, stMode, dev);
  } else {
    const devBuf = new Uint8Array(8);
    new DataView(devBuf.buffer).setBigUint64(0, dev, true);
    r = lib.__xmknod!(0, c, stMode, devBuf);
  }
  if (r !== 0) {
    const err = errno();
    throw failure(`mknod ${type}`, path, err, privilegeHint(err));
  }
  if (lib.chmod(c, mode & 0o7777) !== 0) {
    const err = errno();
    throw failure("chmod", path, err, privilegeHint(err));
  }
}

/** The shared 64 KiB xattr buffer. */
function xbuf(): Uint8Array<ArrayBuffer> {
  return xattrBuf ??= new Uint8Array(XATTR_MAX);
}

/**
 * Names of the extended attributes of the entry itself (not a symlink's target), sorted.
 * A filesystem without xattr support (ENOTSUP) gives `[]`. Lists only what the caller may see
 * (`trusted.*` needs root).
 */
export function listXattrs(path: string): string[] {
  const c = cpath(path, "list xattrs of");
  const lib = libc();
  let buf = xbuf();
  let n = Number(lib.llistxattr(c, buf, BigInt(buf.length)));
  while (n < 0) {
    const err = errno();
    if (err === ENOTSUP) return [];
    if (err !== ERANGE) throw failure("list xattrs of", path, err);
    // Only possible beyond XATTR_LIST_MAX; ask for the size.
    const size = Number(lib.llistxattr(c, null, 0n));
    if (size < 0) throw failure("list xattrs of", path, errno());
    buf = new Uint8Array(size + 1);
    n = Number(lib.llistxattr(c, buf, BigInt(buf.length)));
  }
  if (n === 0) return [];
  const names = decoder.decode(buf.subarray(0, n)).split("\0");
  names.pop(); // the list ends with a NUL
  return names.sort();
}

/**
 * The value of one extended attribute of the entry itself, or `undefined` when it is not set
 * (ENODATA) or the filesystem has no xattrs (ENOTSUP). The bytes are returned as stored.
 */
export function getXattr(path: string, name: string): Uint8Array | undefined {
  const c = cpath(path, "get xattr of");
  const nm = cname(name, path, "get xattr of");
  const lib = libc();
  let buf = xbuf();
  let n = Number(lib.lgetxattr(c, nm, buf, BigInt(buf.length)));
  while (n < 0) {
    const err = errno();
    if (err === ENODATA || err === ENOTSUP) return undefined;
    if (err !== ERANGE) throw failure(`get xattr ${name} of`, path, err);
    const size = Number(lib.lgetxattr(c, nm, null, 0n));
    if (size < 0) throw failure(`get xattr ${name} of`, path, errno());
    buf = new Uint8Array(size + 1);
    n = Number(lib.lgetxattr(c, nm, buf, BigInt(buf.length)));
  }
  return buf.slice(0, n);
}

/**
 * Sets (creates or replaces) one extended attribute on the entry itself. A filesystem without
 * support for it throws a {@link KanikoError} with code `ENOTSUP`, so callers can warn instead.
 * Linux refuses `user.*` on symlinks and devices (EPERM); `trusted.*` and `security.*` need root.
 */
export function setXattr(path: string, name: string, value: Uint8Array): void {
  const c = cpath(path, "set xattr of");
  const nm = cname(name, path, "set xattr of");
  if (libc().lsetxattr(c, nm, value, BigInt(value.byteLength), 0) !== 0) {
    const err = errno();
    const hint = err === ENOTSUP
      ? `the filesystem does not support ${name.split(".")[0]}.* xattrs here`
      : privilegeHint(err);
    throw failure(`set xattr ${name} of`, path, err, hint);
  }
}

/**
 * Applies an entry's metadata in the order Linux needs: owner first (chown clears setuid/setgid
 * and `security.capability`), then the mode (not for symlinks), then xattrs, then the times.
 *
 * Directories: creating or removing entries inside a directory changes its mtime, so the caller
 * applies a directory's metadata after it has filled the directory (e.g. deepest first, once the
 * whole layer is written).
 */
export function applyMetadata(path: string, meta: AppliedMeta): void {
  lchown(path, meta.uid, meta.gid);
  if (meta.type !== "symlink") lchmod(path, meta.mode);
  if (meta.xattrs) {
    for (const name of Object.keys(meta.xattrs).sort()) setXattr(path, name, meta.xattrs[name]);
  }
  setTimesNs(path, meta.atimeNs ?? meta.mtimeNs, meta.mtimeNs);
}
