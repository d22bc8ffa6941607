/**
 * The tar entries of a layer: changed paths with their real metadata, the directories above
 * them, whiteouts for deletions and opaque markers for re-created directories.
 *
 * Order: a tree walk, parents before children; within a directory first its opaque marker
 * (`.wh..wh..opq`), then its whiteouts (`.wh.<name>`), then the other entries, each group by
 * name bytes. The OCI layer spec asks for whiteouts before their siblings, so a layer that
 * deletes and re-adds a name applies correctly even on an applier that goes entry by entry.
 *
 * Each entry: name relative without `./`, directories ending in `/`; mode, uid, gid and the
 * nanosecond mtime from the file (PAX records carry what ustar cannot); no atime or ctime; empty
 * uname and gname; xattrs (all but `security.selinux`, which belongs to the build host, and
 * overlayfs' private `trusted.overlay.*`/`user.overlay.*`); device numbers; sockets left out (tar
 * cannot hold them). A second path to an inode already written in this layer (same device and
 * inode number) becomes a hardlink entry to the first path in layer order.
 *
 * Bodies: files up to {@link SMALL_FILE} bytes are read whole when their entry is produced
 * (one syscall, no stream machinery); larger ones are streamed from disk in
 * {@link CHUNK}-byte chunks, opened only when the consumer reads the body. A file whose size
 * changed since its `lstat` is an error.
 *
 * mtimes keep their nanoseconds unless `mtimeResolution: "s"` asks for whole seconds (what
 * Docker and buildah write; see {@link EntriesOptions}).
 *
 * Whiteouts are empty regular files, mode 0600, owned by root, with the mtime of the directory
 * they are in. `mtime` (reproducible builds, SOURCE_DATE_EPOCH) clamps every mtime to it:
 * newer times become `mtime`, older ones stay, as BuildKit's `rewrite-timestamp` does — so
 * files the build left untouched keep their real times and the layer is still byte-identical
 * on rebuild.
 * @module
 */
import { KanikoError } from "../errors.ts";
import { log } from "../log.ts";
import {
  ENOENT,
  ENOTDIR,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  S_IFSOCK,
} from "../fs/ffi.ts";
import { fileTypeOf, getXattr, listXattrs } from "../fs/meta.ts";
import {
  errnoName,
  lstatx,
  readWhole,
  strerror,
  sx,
  SX_DEV_MAJOR,
  SX_DEV_MINOR,
  SX_GID,
  SX_INO,
  SX_MODE,
  SX_MTIME,
  SX_NLINK,
  SX_RDEV_MAJOR,
  SX_RDEV_MINOR,
  SX_SIZE,
  SX_UID,
  sxSecondsNs,
  sxTimeNs,
} from "./native.ts";
import type { TarHeader, TarWriteEntry } from "../tar/mod.ts";
import type { Change } from "./diff.ts";

/** Files up to this size are read into memory whole; bigger ones are streamed. */
export const SMALL_FILE = 256 * 1024;
/** Read size for streamed bodies. */
export const CHUNK = 256 * 1024;

/** The whiteout prefix and the opaque marker of the OCI layer format. */
export const WHITEOUT_PREFIX = ".wh.";
export const OPAQUE_MARKER = ".wh..wh..opq";

/** Options of {@link layerEntries} and {@link entriesForPaths}. */
export interface EntriesOptions {
  /** Clamp every mtime to this (nanoseconds since the epoch): SOURCE_DATE_EPOCH. */
  mtime?: bigint;
  /**
   * `ns` (default): mtimes as the files have them, sub-second parts in PAX records. `s`:
   * truncated to whole seconds, as Docker and buildah write layers — no PAX header for most
   * entries, which makes a layer of small files about 2.4× smaller compressed and ~40% cheaper
   * to write.
   */
  mtimeResolution?: "ns" | "s";
}

/** What a path in the layer is. */
const ENTRY = 1; // a changed or added path
const PARENT = 2; // a directory above one
const WHITEOUT = 3; // `.wh.<name>` for a deleted path
const OPAQUE = 4; // the `.wh..wh..opq` marker of a re-created directory

interface Item {
  /** Name in the layer (without a directory's trailing slash). */
  name: string;
  kind: number;
  /** Sort key: see {@link sortKey}. */
  key: string;
}

/** Extended attributes never put in a layer. */
function keepXattr(name: string): boolean {
  return name !== "security.selinux" && !name.startsWith("trusted.overlay.") &&
    !name.startsWith("user.overlay.");
}

/** Checks a relative path from a caller: slash-separated, no empty, `.` or `..` parts. */
function checkPath(path: string): void {
  if (
    path === "" || path.startsWith("/") || path.endsWith("/") || path.includes("//") ||
    path.includes("\0") ||
    path.split("/").some((p) => p === "." || p === "..")
  ) {
    throw new KanikoError(`snapshot: bad path ${JSON.stringify(path)} for a layer`, {
      hint: "paths must be relative to the root, slash-separated, without . or .. parts",
    });
  }
}

const SURROGATE_OR_HIGH = /[\ud800-\uffff]/;

/**
 * A string whose plain `<` order is the layer order: components joined with `\0` (below any
 * name character, so a directory's subtree comes right after it), each prefixed with a rank
 * (`\x01` opaque marker, `\x02` whiteout, `\x03` others), and characters remapped so that UTF-16
 * code unit order becomes code point (= UTF-8 byte) order.
 */
function sortKey(name: string, kind: number): string {
  let s = name;
  if (SURROGATE_OR_HIGH.test(s)) {
    let mapped = "";
    for (let k = 0; k < s.length; k++) {
      const c = s.charCodeAt(k);
      mapped += String.fromCharCode(c >= 0xe000 ? c - 0x800 : c >= 0xd800 ? c + 0x2000 : c);
    }
    s = mapped;
  }
  const slash = s.lastIndexOf("/");
  const dir = slash < 0 ? "" : `\x03${s.slice(0, slash).replaceAll("/", "\0\x03")}\0`;
  const base = s.slice(slash + 1);
  const rank = kind === OPAQUE ? "\x01" : kind === WHITEOUT ? "\x02" : "\x03";
  return dir + rank + base;
}

function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "" : path.slice(0, i);
}

function baseOf(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** Adds every ancestor directory of `path` as a {@link PARENT} item (unless present). */
function addParents(items: Map<string, Item>, path: string): void {
  for (let dir = parentOf(path); dir !== ""; dir = parentOf(dir)) {
    if (items.has(dir)) return; // its own ancestors were added with it
    items.set(dir, { name: dir, kind: PARENT, key: "" });
  }
}

/**
 * The tar entries of a layer holding `changes` (from `diffTrees`), sorted as described in the
 * module documentation, with the metadata the files have now under `root`.
 */
export function layerEntries(
  root: string,
  changes: Change[],
  options: EntriesOptions = {},
): AsyncIterable<TarWriteEntry> {
  const items = new Map<string, Item>();
  const opaque = new Set<string>();
  const deleted = new Set<string>();
  for (const c of changes) {
    checkPath(c.path);
    if (c.kind === "deleted") {
      deleted.add(c.path);
    } else {
      items.set(c.path, { name: c.path, kind: ENTRY, key: "" });
      if (c.opaque) opaque.add(c.path);
    }
  }
  for (const path of deleted) {
    // A path that exists again is simply written (it replaces the old one). A deletion below a
    // deleted or opaque directory is already covered.
    if (items.has(path)) continue;
    let covered = false;
    for (let dir = parentOf(path); dir !== "" && !covered; dir = parentOf(dir)) {
      covered = deleted.has(dir) || opaque.has(dir);
    }
    if (covered) continue;
    const dir = parentOf(path);
    const name = (dir === "" ? "" : `${dir}/`) + WHITEOUT_PREFIX + baseOf(path);
    items.set(name, { name, kind: WHITEOUT, key: "" });
  }
  for (const dir of opaque) {
    const name = `${dir}/${OPAQUE_MARKER}`;
    items.set(name, { name, kind: OPAQUE, key: "" });
  }
  for (const item of [...items.values()]) addParents(items, item.name);
  return emit(root, items, options);
}

/**
 * The tar entries for exactly `paths` (relative to `root`; a directory stands for itself, not
 * its contents) plus the directories above them, for COPY and ADD, which know what they wrote:
 * no scan needed. Same order and metadata rules as {@link layerEntries}.
 */
export function entriesForPaths(
  root: string,
  paths: string[],
  options: EntriesOptions = {},
): AsyncIterable<TarWriteEntry> {
  const items = new Map<string, Item>();
  for (const path of paths) {
    checkPath(path);
    items.set(path, { name: path, kind: ENTRY, key: "" });
  }
  for (const item of [...items.values()]) addParents(items, item.name);
  return emit(root, items, options);
}

/** Sorts the items and produces their entries. */
async function* emit(
  rootIn: string,
  items: Map<string, Item>,
  options: EntriesOptions,
): AsyncGenerator<TarWriteEntry> {
  const root = rootIn.length > 1 ? rootIn.replace(/\/+$/, "") : rootIn;
  const prefix = root === "/" ? "/" : `${root}/`;
  const sorted = [...items.values()];
  for (const it of sorted) it.key = sortKey(it.name, it.kind);
  sorted.sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
  items.clear();
  const clamp = options.mtime;
  const seconds = options.mtimeResolution === "s";
  /** mtime of directories written, for their whiteouts (root: 0 or the clamp). */
  const dirMtimes = new Map<string, bigint>();
  /** First path written for a multiply linked inode: `dev:ino` → path. */
  const linked = new Map<string, string>();
  for (const it of sorted) {
    if (it.kind === WHITEOUT || it.kind === OPAQUE) {
      const dir = parentOf(it.name);
      // A parent that is no longer a directory replaced the whole old one: nothing to delete.
      if (dir !== "" && !dirMtimes.has(dir)) continue;
      const mtime = dirMtimes.get(dir) ?? dirMtime(prefix, root, dir, clamp, seconds);
      yield {
        header: { name: it.name, type: "file", size: 0, mode: 0o600, uid: 0, gid: 0, mtime },
      };
      continue;
    }
    const abs = prefix + it.name;
    const err = lstatx(abs);
    if (err !== 0) {
      if (err === ENOENT || err === ENOTDIR) {
        throw new KanikoError(`snapshot: ${it.name} disappeared while its layer was written`, {
          hint: "a process still running in the build root changed it; stop background processes",
        });
      }
      throw new KanikoError(
        `snapshot: cannot stat ${it.name}: ${errnoName(err)} (${strerror(err)})`,
      );
    }
    const stMode = sx[SX_MODE] & 0xffff;
    const fmt = stMode & S_IFMT;
    if (it.kind === PARENT && fmt !== S_IFDIR) {
      throw new KanikoError(
        `snapshot: ${it.name} is a ${
          fileTypeOf(stMode)
        }, not a directory, but the layer has paths below it`,
      );
    }
    if (baseOf(it.name).startsWith(WHITEOUT_PREFIX)) {
      log.warnOnce(
        `snapshot-wh:${it.name}`,
        `snapshot: leaving out ${it.name}: a name starting with .wh. would read as a whiteout`,
      );
      continue;
    }
    if (fmt === S_IFSOCK) {
      log.debug(`snapshot: leaving out socket ${it.name}`);
      continue;
    }
    let mtime = seconds ? sxSecondsNs(SX_MTIME) : sxTimeNs(SX_MTIME);
    if (clamp !== undefined && mtime > clamp) mtime = clamp;
    const header: TarHeader = {
      name: it.name,
      type: "file",
      mode: stMode & 0o7777,
      uid: sx[SX_UID],
      gid: sx[SX_GID],
      mtime,
      uname: "",
      gname: "",
    };
    const size = sx[SX_SIZE] + sx[SX_SIZE + 1] * 2 ** 32;
    const rdevMajor = sx[SX_RDEV_MAJOR];
    const rdevMinor = sx[SX_RDEV_MINOR];
    if (fmt !== S_IFDIR && sx[SX_NLINK] > 1) {
      const key = `${sx[SX_DEV_MAJOR]}:${sx[SX_DEV_MINOR]}:${sx[SX_INO + 1]}:${sx[SX_INO]}`;
      const first = linked.get(key);
      if (first !== undefined) {
        header.type = "hardlink";
        header.linkname = first;
        header.size = 0;
        yield { header };
        continue;
      }
      linked.set(key, it.name);
    }
    const names = listXattrs(abs);
    if (names.length > 0) {
      let xattrs: Record<string, Uint8Array> | undefined;
      for (const name of names) {
        if (!keepXattr(name)) continue;
        const value = getXattr(abs, name);
        if (value !== undefined) (xattrs ??= {})[name] = value;
      }
      if (xattrs) header.xattrs = xattrs;
    }
    switch (fmt) {
      case S_IFDIR:
        header.type = "dir";
        header.name = `${it.name}/`;
        dirMtimes.set(it.name, mtime);
        yield { header };
        break;
      case S_IFLNK:
        header.type = "symlink";
        header.linkname = Deno.readLinkSync(abs);
        yield { header };
        break;
      case S_IFCHR:
      case S_IFBLK:
        header.type = fmt === S_IFCHR ? "char" : "block";
        header.devmajor = rdevMajor;
        header.devminor = rdevMinor;
        yield { header };
        break;
      case S_IFIFO:
        header.type = "fifo";
        yield { header };
        break;
      case S_IFREG:
        header.size = size;
        yield {
          header,
          body: size <= SMALL_FILE ? readSmall(abs, it.name, size) : fileStream(abs, it.name, size),
        };
        break;
    }
  }
}

/** mtime for whiteouts in `dir` when the directory itself was not written (the root). */
function dirMtime(
  prefix: string,
  root: string,
  dir: string,
  clamp: bigint | undefined,
  seconds: boolean,
): bigint {
  const found = lstatx(dir === "" ? root : prefix + dir) === 0;
  const t = !found ? 0n : seconds ? sxSecondsNs(SX_MTIME) : sxTimeNs(SX_MTIME);
  return clamp !== undefined && t > clamp ? clamp : t;
}

function sizeChanged(name: string, size: number, got: string): KanikoError {
  return new KanikoError(
    `snapshot: ${name} changed while its layer was written (${size} bytes when listed, ${got})`,
    { hint: "a process still running in the build root changed it; stop background processes" },
  );
}

/** A small file's bytes, checked against the listed size. */
function readSmall(abs: string, name: string, size: number): Uint8Array {
  const data = readWhole(abs, size);
  if (typeof data !== "number") return data;
  if (data < 0) {
    throw new KanikoError(
      `snapshot: cannot read ${name}: ${errnoName(-data)} (${strerror(-data)})`,
    );
  }
  throw sizeChanged(name, size, data > size ? "more now" : `${data} now`);
}

/**
 * A file's bytes as a stream of {@link CHUNK}-byte chunks: opened on the first read, closed at
 * the end or on cancel; exactly `size` bytes or an error.
 */
function fileStream(abs: string, name: string, size: number): ReadableStream<Uint8Array> {
  let file: Deno.FsFile | undefined;
  let done = 0;
  const close = () => {
    try {
      file?.close();
    } catch { /* already closed */ }
    file = undefined;
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        file ??= await Deno.open(abs, { read: true });
        if (done === size) {
          // One more read: the file must end here.
          const extra = await file.read(new Uint8Array(1));
          close();
          if (extra !== null) throw sizeChanged(name, size, "more now");
          controller.close();
          return;
        }
        const buf = new Uint8Array(Math.min(CHUNK, size - done));
        let filled = 0;
        while (filled < buf.length) {
          const n = await file.read(buf.subarray(filled));
          if (n === null) throw sizeChanged(name, size, `${done + filled} now`);
          filled += n;
        }
        done += filled;
        controller.enqueue(buf);
      } catch (e) {
        close();
        throw e instanceof KanikoError
          ? e
          : new KanikoError(`snapshot: cannot read ${name}: ${(e as Error).message}`, { cause: e });
      }
    },
    cancel() {
      close();
    },
  }, { highWaterMark: 0 });
}
