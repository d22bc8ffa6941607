/**
 * Tree scans: one pass over a root directory recording, per path, what a later scan is compared
 * with — type, mode, owner, size, nanosecond mtime and ctime, birth time, inode, device, link
 * count, device numbers and symlink targets — in a compact, string-free form.
 *
 * How it walks: one `open(O_DIRECTORY)` per directory, `getdents64` on it for the names (raw
 * bytes, straight into the name arena, no string unless the ignore predicate needs one), and one
 * `statx(dirfd, name, AT_SYMLINK_NOFOLLOW)` per entry (libc through FFI, `native.ts`; relative to
 * the directory's descriptor, so the kernel resolves one component per call). `statx` rather than
 * `lstatNs` (`lib/fs/meta.ts`) because it also gives the birth time — the only way to tell a
 * directory that was removed and re-created from the old one, as ext4 and tmpfs hand the freed
 * inode number straight back to the next `mkdir` — and because its result is copied field by
 * field into a typed array without allocating an object and four bigints per path.
 *
 * Storage (see {@link TreeState}): 80 bytes of `Uint32Array` per entry plus the name's UTF-8
 * bytes in one arena; children of a directory are contiguous and sorted by name bytes, so a diff
 * is a merge of two sorted lists, with no hash map and no path strings. Symlink targets are kept
 * in a map by index. About 105 bytes a path all told (112 measured after GC on a copy of /usr,
 * 138k entries; `bench/snapshot_bench.ts`).
 *
 * What is skipped: paths the `ignore` predicate accepts (and everything below them), and
 * directories on another device than their parent (mount points: in chroot mode `/proc`, `/sys`
 * and `/dev` are unmounted before the scan, but whatever is still mounted inside the root is not
 * part of the image). The device check applies to directories only: overlayfs reports a
 * per-layer device for non-directories when its layers sit on different filesystems, and a
 * bind-mounted file is on the ignore list anyway. Names that are not valid UTF-8 cannot be represented in a Deno string: they
 * are skipped with a warning. Sockets are recorded (a diff reports them) but never put in a layer.
 *
 * Racy timestamps: a file changed twice within one tick of the kernel's timestamp clock, with a
 * scan between the two changes and the same size, would keep its mtime and ctime. The scan
 * therefore does not return before the kernel's coarse clock has moved past the newest ctime it
 * saw (past the whole second when that ctime has no sub-second part, as on filesystems with
 * one-second timestamps); every later change then gets a different ctime. In practice this waits
 * at most one tick, and only when something changed during the last tick before the scan ended.
 * @module
 */
import { KanikoError } from "../errors.ts";
import { log } from "../log.ts";
import { ENOENT, ENOTDIR, makedev, S_IFDIR, S_IFLNK, S_IFMT } from "../fs/ffi.ts";
import { type FileMeta, fileTypeOf } from "../fs/meta.ts";
import {
  AT_FDCWD,
  AT_SYMLINK_NOFOLLOW,
  coarseNow,
  cpath,
  errno,
  errnoName,
  libc,
  O_DIR,
  STATX_BTIME,
  STATX_MASK,
  strerror,
  sx,
  SX_BTIME,
  SX_CTIME,
  SX_DEV_MAJOR,
  SX_DEV_MINOR,
  SX_GID,
  SX_INO,
  SX_MASK,
  SX_MODE,
  SX_MTIME,
  SX_NLINK,
  SX_RDEV_MAJOR,
  SX_RDEV_MINOR,
  SX_SIZE,
  SX_UID,
  sxBuf,
  type Symbols,
} from "./native.ts";

// --- record layout ----------------------------------------------------------------------------

/** Number of `Uint32` fields per entry. */
export const STRIDE = 20;
/** st_mode in bits 0–15, name length in bits 16–23, flags in bits 24–31. */
export const F_MODE = 0;
export const F_UID = 1;
export const F_GID = 2;
export const F_NLINK = 3;
export const F_SIZE_LO = 4;
export const F_SIZE_HI = 5;
export const F_MTIME_LO = 6;
export const F_MTIME_HI = 7;
export const F_MTIME_NS = 8;
export const F_CTIME_LO = 9;
export const F_CTIME_HI = 10;
export const F_CTIME_NS = 11;
/** Birth time, low 32 bits of the seconds and the nanoseconds (valid when {@link FLAG_BTIME}). */
export const F_BTIME_LO = 12;
export const F_BTIME_NS = 13;
export const F_INO_LO = 14;
export const F_INO_HI = 15;
/** Index into {@link TreeState.devs}. */
export const F_DEV = 16;
/** Offset of the name in {@link TreeState.names}. */
export const F_NAME = 17;
/** Directories: index of the first child; char/block devices: rdev major. */
export const F_CHILD = 18;
/** Directories: number of children; char/block devices: rdev minor. */
export const F_NCHILD = 19;

/** The birth time fields are valid. */
export const FLAG_BTIME = 1 << 24;
/** Something below this directory was skipped (ignored path or mount point). */
export const FLAG_SKIPPED = 1 << 25;

/** The st_mode bits of a record's first field. */
export const MODE_MASK = 0xffff;
const NAME_SHIFT = 16;

/** Linux' NAME_MAX: the longest name a directory entry can have, in bytes. */
const NAME_MAX = 255;
const nameBuf = new Uint8Array(4 * NAME_MAX + 8);
const pathEncoder = new TextEncoder();

// --- the state --------------------------------------------------------------------------------

/** Metadata of one scanned path: {@link FileMeta} plus what the scan also records. */
export interface ScannedMeta extends FileMeta {
  /** Target of a symlink. */
  linkTarget?: string;
  /** Birth time, when the filesystem reports it (only the low 32 bits of its seconds). */
  btime?: { sec: number; nsec: number };
}

const utf8 = new TextDecoder();
const utf8Fatal = new TextDecoder("utf-8", { fatal: true });

/** Decodes a name from the arena (ASCII without a decoder call). */
export function decodeName(buf: Uint8Array, off: number, len: number): string {
  for (let k = off, end = off + len; k < end; k++) {
    if (buf[k] >= 0x80) return utf8.decode(buf.subarray(off, end));
  }
  return String.fromCharCode.apply(null, buf.subarray(off, off + len) as unknown as number[]);
}

/** Compares two names by bytes (= code point order). */
export function compareBytes(
  a: Uint8Array,
  aOff: number,
  aLen: number,
  b: Uint8Array,
  bOff: number,
  bLen: number,
): number {
  const n = aLen < bLen ? aLen : bLen;
  for (let k = 0; k < n; k++) {
    const d = a[aOff + k] - b[bOff + k];
    if (d !== 0) return d;
  }
  return aLen - bLen;
}

/**
 * The result of {@link scanTree}: every path under a root with its metadata. Treat it as opaque
 * (pass it to `diffTrees`); {@link get}, {@link paths} and {@link size} are for inspection.
 *
 * Internals (used by the diff): entry 0 is the root; entry `i`'s fields are
 * `rec[i * STRIDE + F_*]`; its name is `names[rec[F_NAME]] …` (length in bits 16–23 of
 * `F_MODE`); a directory's children are the entries `rec[F_CHILD] …  + rec[F_NCHILD]`, sorted
 * by name bytes.
 */
export class TreeState {
  /** The scanned directory, as given to {@link scanTree}. */
  readonly root: string;
  /** Number of records, the root included. */
  readonly count: number;
  /** The records. */
  readonly rec: Uint32Array;
  /** UTF-8 names, back to back. */
  readonly names: Uint8Array;
  /** Symlink targets by record index. */
  readonly links: Map<number, string>;
  /** Distinct `st_dev` values; records hold an index. */
  readonly devs: bigint[];

  /** @internal Built by {@link scanTree}. */
  constructor(
    root: string,
    count: number,
    rec: Uint32Array,
    names: Uint8Array,
    links: Map<number, string>,
    devs: bigint[],
  ) {
    this.root = root;
    this.count = count;
    this.rec = rec;
    this.names = names;
    this.links = links;
    this.devs = devs;
  }

  /** Number of paths recorded (the root not counted). */
  get size(): number {
    return this.count - 1;
  }

  /** Bytes held by the state's arrays (the symlink map estimated at 64 bytes an entry). */
  get byteLength(): number {
    let links = 0;
    for (const t of this.links.values()) links += 64 + t.length;
    return this.rec.buffer.byteLength + this.names.buffer.byteLength + links;
  }

  /** Name of record `i` ("" for the root). */
  nameOf(i: number): string {
    const r = i * STRIDE;
    return decodeName(
      this.names,
      this.rec[r + F_NAME],
      (this.rec[r + F_MODE] >>> NAME_SHIFT) & 0xff,
    );
  }

  /** Index of `path` (relative, slash-separated; "" is the root), or -1. */
  indexOf(path: string): number {
    if (path === "") return 0;
    let i = 0;
    for (const part of path.split("/")) {
      const r = i * STRIDE;
      if ((this.rec[r + F_MODE] & S_IFMT) !== S_IFDIR) return -1;
      const want = pathEncoder.encode(part);
      let lo = this.rec[r + F_CHILD];
      let hi = lo + this.rec[r + F_NCHILD] - 1;
      i = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >>> 1;
        const m = mid * STRIDE;
        const c = compareBytes(
          this.names,
          this.rec[m + F_NAME],
          (this.rec[m + F_MODE] >>> NAME_SHIFT) & 0xff,
          want,
          0,
          want.length,
        );
        if (c === 0) {
          i = mid;
          break;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
      }
      if (i < 0) return -1;
    }
    return i;
  }

  /** Metadata of record `i`. */
  metaAt(i: number): ScannedMeta {
    const r = i * STRIDE;
    const rec = this.rec;
    const mode = rec[r + F_MODE] & MODE_MASK;
    const type = fileTypeOf(mode);
    const device = type === "char" || type === "block";
    const meta: ScannedMeta = {
      type,
      mode: mode & 0o7777,
      uid: rec[r + F_UID],
      gid: rec[r + F_GID],
      size: rec[r + F_SIZE_LO] + rec[r + F_SIZE_HI] * 2 ** 32,
      mtimeNs: timeNs(rec[r + F_MTIME_LO], rec[r + F_MTIME_HI], rec[r + F_MTIME_NS]),
      ctimeNs: timeNs(rec[r + F_CTIME_LO], rec[r + F_CTIME_HI], rec[r + F_CTIME_NS]),
      ino: (BigInt(rec[r + F_INO_HI]) << 32n) | BigInt(rec[r + F_INO_LO]),
      dev: this.devs[rec[r + F_DEV]],
      nlink: rec[r + F_NLINK],
      rdevMajor: device ? rec[r + F_CHILD] : 0,
      rdevMinor: device ? rec[r + F_NCHILD] : 0,
    };
    const target = this.links.get(i);
    if (target !== undefined) meta.linkTarget = target;
    if (rec[r + F_MODE] & FLAG_BTIME) {
      meta.btime = { sec: rec[r + F_BTIME_LO], nsec: rec[r + F_BTIME_NS] };
    }
    return meta;
  }

  /** Metadata of `path` ("" is the root), or undefined when it was not recorded. */
  get(path: string): ScannedMeta | undefined {
    const i = this.indexOf(path);
    return i < 0 ? undefined : this.metaAt(i);
  }

  /** Every recorded path (the root excluded), parents before children, siblings by name bytes. */
  *paths(): IterableIterator<string> {
    const stack: Array<[number, string]> = [[0, ""]];
    while (stack.length > 0) {
      const [i, path] = stack.pop()!;
      if (i !== 0) yield path;
      const r = i * STRIDE;
      if ((this.rec[r + F_MODE] & S_IFMT) !== S_IFDIR) continue;
      const first = this.rec[r + F_CHILD];
      for (let c = first + this.rec[r + F_NCHILD] - 1; c >= first; c--) {
        stack.push([c, path === "" ? this.nameOf(c) : `${path}/${this.nameOf(c)}`]);
      }
    }
  }
}

function timeNs(lo: number, hi: number, ns: number): bigint {
  return ((BigInt(hi | 0) << 32n) | BigInt(lo)) * 1_000_000_000n + BigInt(ns);
}

// --- scanning ---------------------------------------------------------------------------------

/** Options of {@link scanTree}. */
export interface ScanOptions {
  /** Paths (relative, slash-separated) to leave out, with everything below them. */
  ignore?: (path: string) => boolean;
}

/**
 * Size of the last scan: the next one (usually of the same root, a step later) starts with room
 * for it, as growing by doubling costs a copy and fresh pages each time.
 */
const lastScan = { count: 0, nameBytes: 0 };

/** Growable storage while scanning. */
class Builder {
  rec: Uint32Array;
  names: Uint8Array;
  nameLen = 0;
  count = 0;
  /** Parent index per record, for propagating {@link FLAG_SKIPPED}; dropped after the scan. */
  parent: Int32Array;
  links = new Map<number, string>();
  devs: bigint[] = [];
  devKeys = new Map<string, number>();
  lastDevMajor = -1;
  lastDevMinor = -1;
  lastDev = -1;
  maxCtimeSec = -Infinity;
  maxCtimeNs = 0;

  constructor() {
    const cap = Math.max(1024, Math.ceil(lastScan.count * 1.1));
    this.rec = new Uint32Array(cap * STRIDE);
    this.parent = new Int32Array(cap);
    this.names = new Uint8Array(Math.max(16384, Math.ceil(lastScan.nameBytes * 1.1)));
  }

  /** Makes room for `n` more records with `bytes` more name bytes. */
  reserve(n: number, bytes: number): void {
    if ((this.count + n) * STRIDE > this.rec.length) {
      let cap = this.rec.length / STRIDE;
      while (cap < this.count + n) cap *= 2;
      const rec = new Uint32Array(cap * STRIDE);
      rec.set(this.rec.subarray(0, this.count * STRIDE));
      this.rec = rec;
      const parent = new Int32Array(cap);
      parent.set(this.parent.subarray(0, this.count));
      this.parent = parent;
    }
    if (this.nameLen + bytes > this.names.length) {
      let cap = this.names.length;
      while (cap < this.nameLen + bytes) cap *= 2;
      const names = new Uint8Array(cap);
      names.set(this.names.subarray(0, this.nameLen));
      this.names = names;
    }
  }

  /** Index of the device in {@link sx}. */
  devIndex(): number {
    const major = sx[SX_DEV_MAJOR];
    const minor = sx[SX_DEV_MINOR];
    if (major === this.lastDevMajor && minor === this.lastDevMinor) return this.lastDev;
    const key = `${major}:${minor}`;
    let idx = this.devKeys.get(key);
    if (idx === undefined) {
      idx = this.devs.length;
      this.devs.push(makedev(major, minor));
      this.devKeys.set(key, idx);
    }
    this.lastDevMajor = major;
    this.lastDevMinor = minor;
    this.lastDev = idx;
    return idx;
  }

  /** Appends the record in {@link sx}; returns its index. */
  add(parent: number, nameLen: number): number {
    const i = this.count++;
    const r = i * STRIDE;
    const rec = this.rec;
    const mode = sx[SX_MODE] & MODE_MASK;
    const hasBtime = (sx[SX_MASK] & STATX_BTIME) !== 0;
    rec[r + F_MODE] = mode | (nameLen << NAME_SHIFT) | (hasBtime ? FLAG_BTIME : 0);
    rec[r + F_UID] = sx[SX_UID];
    rec[r + F_GID] = sx[SX_GID];
    rec[r + F_NLINK] = sx[SX_NLINK];
    rec[r + F_SIZE_LO] = sx[SX_SIZE];
    rec[r + F_SIZE_HI] = sx[SX_SIZE + 1];
    rec[r + F_MTIME_LO] = sx[SX_MTIME];
    rec[r + F_MTIME_HI] = sx[SX_MTIME + 1];
    rec[r + F_MTIME_NS] = sx[SX_MTIME + 2];
    const cLo = sx[SX_CTIME];
    const cHi = sx[SX_CTIME + 1];
    const cNs = sx[SX_CTIME + 2];
    rec[r + F_CTIME_LO] = cLo;
    rec[r + F_CTIME_HI] = cHi;
    rec[r + F_CTIME_NS] = cNs;
    const cSec = (cHi | 0) * 4294967296 + cLo;
    if (cSec > this.maxCtimeSec || (cSec === this.maxCtimeSec && cNs > this.maxCtimeNs)) {
      this.maxCtimeSec = cSec;
      this.maxCtimeNs = cNs;
    }
    if (hasBtime) {
      rec[r + F_BTIME_LO] = sx[SX_BTIME];
      rec[r + F_BTIME_NS] = sx[SX_BTIME + 2];
    } else {
      rec[r + F_BTIME_LO] = 0;
      rec[r + F_BTIME_NS] = 0;
    }
    rec[r + F_INO_LO] = sx[SX_INO];
    rec[r + F_INO_HI] = sx[SX_INO + 1];
    rec[r + F_DEV] = this.devIndex();
    rec[r + F_NAME] = this.nameLen;
    const type = mode & S_IFMT;
    if (type === 0o020000 || type === 0o060000) {
      rec[r + F_CHILD] = sx[SX_RDEV_MAJOR];
      rec[r + F_NCHILD] = sx[SX_RDEV_MINOR];
    } else {
      rec[r + F_CHILD] = 0;
      rec[r + F_NCHILD] = 0;
    }
    const names = this.names;
    for (let k = 0, o = this.nameLen; k < nameLen; k++) names[o + k] = nameBuf[k];
    this.nameLen += nameLen;
    this.parent[i] = parent;
    return i;
  }

  /** Marks `dir` and its ancestors as having skipped descendants. */
  markSkipped(dir: number): void {
    for (let i = dir; i >= 0; i = i === 0 ? -1 : this.parent[i]) {
      const r = i * STRIDE + F_MODE;
      if (this.rec[r] & FLAG_SKIPPED) return;
      this.rec[r] |= FLAG_SKIPPED;
    }
  }

  finish(root: string): TreeState {
    lastScan.count = this.count;
    lastScan.nameBytes = this.nameLen;
    // A state lives for a whole build step: trim arrays with much room to spare.
    const rec = this.rec.length > this.count * STRIDE * 1.15
      ? this.rec.slice(0, this.count * STRIDE)
      : this.rec.subarray(0, this.count * STRIDE);
    const names = this.names.length > this.nameLen * 1.15
      ? this.names.slice(0, this.nameLen)
      : this.names.subarray(0, this.nameLen);
    return new TreeState(root, this.count, rec, names, this.links, this.devs);
  }
}

function scanError(what: string, path: string, err: number): KanikoError {
  return new KanikoError(`cannot scan ${path}: ${errnoName(err)} (${strerror(err)})`, {
    code: errnoName(err),
    hint: what,
  });
}

/**
 * Walks `root` and records every path under it (see the module documentation for what is
 * recorded and skipped). Resolves once the kernel clock has passed the newest ctime seen, so
 * that any later change shows in a later scan.
 */
export async function scanTree(root: string, options: ScanOptions = {}): Promise<TreeState> {
  const state = scanSync(root, options);
  await settle(state.maxCtimeSec, state.maxCtimeNs);
  return state.finish(state.root);
}

/** Reusable buffers of the walk: raw directory entries, one directory's names, a link target. */
const dentBuf = new Uint8Array(64 * 1024);
const linkBuf = new Uint8Array(4096 + 1);
const DENT_LEN = BigInt(dentBuf.length);
const LINK_LEN = BigInt(linkBuf.length);
let pending = new Uint8Array(64 * 1024);
let pendingOff = new Int32Array(1024);
let pendingLen = new Uint8Array(1024);
/** Total bytes of the names {@link readNames} read last. */
let pendingBytes = 0;

/**
 * Reads the names of the directory open as `fd` into {@link pending} (without `.` and `..`);
 * returns how many, or -errno.
 */
function readNames(lib: Symbols, fd: number): number {
  let count = 0;
  let pos = 0;
  while (true) {
    const n = Number(lib.getdents64(fd, dentBuf, DENT_LEN));
    if (n < 0) return -errno();
    if (n === 0) {
      pendingBytes = pos;
      return count;
    }
    for (let off = 0; off < n;) {
      const reclen = dentBuf[off + 16] | (dentBuf[off + 17] << 8);
      const start = off + 19;
      let end = start;
      while (dentBuf[end] !== 0) end++;
      const len = end - start;
      off += reclen;
      if (dentBuf[start] === 0x2e && (len === 1 || (len === 2 && dentBuf[start + 1] === 0x2e))) {
        continue;
      }
      if (pos + len > pending.length) {
        const grown = new Uint8Array(Math.max(pending.length * 2, pos + len));
        grown.set(pending.subarray(0, pos));
        pending = grown;
      }
      if (count === pendingOff.length) {
        const off2 = new Int32Array(count * 2);
        off2.set(pendingOff);
        pendingOff = off2;
        const len2 = new Uint8Array(count * 2);
        len2.set(pendingLen);
        pendingLen = len2;
      }
      for (let k = 0; k < len; k++) pending[pos + k] = dentBuf[start + k];
      pendingOff[count] = pos;
      pendingLen[count] = len;
      pos += len;
      count++;
    }
  }
}

/** The order of the `count` pending names by bytes. */
function sortedPending(count: number): number[] {
  const order = new Array<number>(count);
  for (let k = 0; k < count; k++) order[k] = k;
  if (count > 1) {
    order.sort((x, y) =>
      compareBytes(pending, pendingOff[x], pendingLen[x], pending, pendingOff[y], pendingLen[y])
    );
  }
  return order;
}

/** The synchronous walk; returns the builder (for {@link settle}'s inputs). */
function scanSync(rootIn: string, options: ScanOptions): Builder & { root: string } {
  const lib = libc();
  const root = rootIn.length > 1 ? rootIn.replace(/\/+$/, "") : rootIn;
  const ignore = options.ignore;
  const b = new Builder() as Builder & { root: string };
  b.root = root;
  if (lib.statx(AT_FDCWD, cpath(root), 0, STATX_MASK, sxBuf) !== 0) {
    const err = errno();
    throw new KanikoError(
      `cannot scan ${root}: ${errnoName(err)} (${strerror(err)})`,
      { code: errnoName(err), hint: "the build root must be an existing directory" },
    );
  }
  if ((sx[SX_MODE] & S_IFMT) !== S_IFDIR) {
    throw new KanikoError(`cannot scan ${root}: not a directory`);
  }
  b.reserve(1, 0);
  b.add(-1, 0);
  const stackIdx: number[] = [0];
  const stackPath: string[] = [""];
  const prefix = root === "/" ? "/" : `${root}/`;
  while (stackIdx.length > 0) {
    const dir = stackIdx.pop()!;
    const rel = stackPath.pop()!;
    const abs = rel === "" ? root : prefix + rel;
    const fd = lib.open(cpath(abs), O_DIR);
    if (fd < 0) {
      const err = errno();
      if (err === ENOENT || err === ENOTDIR) continue; // removed while scanning: nothing below
      throw scanError("the build root must be readable by the builder", abs, err);
    }
    try {
      const count = readNames(lib, fd);
      if (count < 0) throw scanError("", abs, -count);
      const order = sortedPending(count);
      b.reserve(count, pendingBytes);
      const first = b.count;
      const dirDev = b.rec[dir * STRIDE + F_DEV];
      const relPrefix = rel === "" ? "" : `${rel}/`;
      for (let n = 0; n < count; n++) {
        const p = order[n];
        const off = pendingOff[p];
        const len = pendingLen[p];
        let ascii = true;
        for (let k = 0; k < len; k++) {
          const c = pending[off + k];
          if (c >= 0x80) ascii = false;
          nameBuf[k] = c;
        }
        nameBuf[len] = 0;
        let name: string | undefined;
        if (!ascii) {
          try {
            name = utf8Fatal.decode(nameBuf.subarray(0, len));
          } catch {
            const shown = relPrefix + utf8.decode(nameBuf.subarray(0, len));
            log.warnOnce(
              `snapshot-utf8:${shown}`,
              `snapshot: skipping ${JSON.stringify(shown)}: its name is not valid UTF-8`,
            );
            b.markSkipped(dir);
            continue;
          }
        }
        if (ignore !== undefined) {
          name ??= decodeName(nameBuf, 0, len);
          if (ignore(relPrefix + name)) {
            b.markSkipped(dir);
            continue;
          }
        }
        if (lib.statx(fd, nameBuf, AT_SYMLINK_NOFOLLOW, STATX_MASK, sxBuf) !== 0) {
          const err = errno();
          if (err === ENOENT) continue; // removed since readdir
          throw scanError("", `${abs}/${name ?? decodeName(nameBuf, 0, len)}`, err);
        }
        const type = sx[SX_MODE] & S_IFMT;
        // A mount point: another filesystem is not part of the image.
        if (type === S_IFDIR && b.devIndex() !== dirDev) {
          b.markSkipped(dir);
          continue;
        }
        const i = b.add(dir, len);
        if (type === S_IFLNK) {
          const t = Number(lib.readlinkat(fd, nameBuf, linkBuf, LINK_LEN));
          if (t < 0) {
            const err = errno();
            throw scanError("", `${abs}/${name ?? decodeName(nameBuf, 0, len)}`, err);
          }
          b.links.set(i, utf8.decode(linkBuf.subarray(0, t)));
        } else if (type === S_IFDIR) {
          stackIdx.push(i);
          stackPath.push(relPrefix + (name ?? decodeName(nameBuf, 0, len)));
        }
      }
      const r = dir * STRIDE;
      b.rec[r + F_CHILD] = first;
      b.rec[r + F_NCHILD] = b.count - first;
    } finally {
      lib.close(fd);
    }
  }
  return b;
}

/** Longest wait for the clock (a newer ctime means a clock that went back: do not wait). */
const MAX_SETTLE_S = 2;

/**
 * Waits until the kernel's coarse clock is past the newest ctime (a whole second past it when
 * the ctime has no sub-second part), so any later change gets a later ctime.
 */
async function settle(sec: number, nsec: number): Promise<void> {
  if (sec === -Infinity) return;
  for (let waited = 0;; waited++) {
    const [nowSec, nowNs] = coarseNow();
    const past = nsec === 0 ? nowSec > sec : nowSec > sec || (nowSec === sec && nowNs > nsec);
    if (past) return;
    if (sec - nowSec > MAX_SETTLE_S) {
      log.debug(`snapshot: newest ctime is ${sec - nowSec}s in the future; not waiting`);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/**
 * A predicate for {@link ScanOptions.ignore}: true for each of `paths` (relative, or absolute
 * meaning relative to the root) and everything below it.
 */
export function ignorePaths(paths: Iterable<string>): (path: string) => boolean {
  const set = new Set<string>();
  for (const p of paths) {
    const clean = p.replace(/^\/+|\/+$/g, "").replace(/\/{2,}/g, "/");
    if (clean !== "") set.add(clean);
  }
  if (set.size === 0) return () => false;
  return (path) => {
    if (set.has(path)) return true;
    for (let i = path.indexOf("/"); i >= 0; i = path.indexOf("/", i + 1)) {
      if (set.has(path.slice(0, i))) return true;
    }
    return false;
  };
}

/** For tests: scans without waiting for the clock (see {@link scanTree}). */
export function scanTreeNoSettle(root: string, options: ScanOptions = {}): TreeState {
  const b = scanSync(root, options);
  return b.finish(b.root);
}
