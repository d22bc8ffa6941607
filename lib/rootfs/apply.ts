/**
 * Applying one image layer (an uncompressed tar) onto a root directory, with Docker's and
 * containerd's semantics, and without any write landing outside the root.
 *
 * Semantics, in archive order:
 * - `DIR/.wh.NAME` deletes `DIR/NAME` (recursively) as the lower layers left it; an entry of the
 *   same layer with that name is kept (whiteouts apply to lower layers only). `DIR/.wh..wh..opq`
 *   deletes everything under `DIR` that came from lower layers, whether it appears before or
 *   after the layer's own entries in `DIR`. Other `.wh..wh.*` names (AUFS metadata) are skipped.
 *   Whiteout entries never appear in the result.
 * - Regular files are created with `O_EXCL`; when something is at the path it is removed and the
 *   create retried, so a planted symlink is replaced, never followed. Directories: an existing directory is kept and
 *   gets the entry's metadata; anything else at the path is replaced. Symlink targets are stored
 *   verbatim. Hard links must name an existing non-directory inside the root. Devices and FIFOs
 *   are made with `devices: true`, else skipped with one warning per layer.
 * - Owner (numeric), then mode (setuid/setgid/sticky kept: chown clears them), then xattrs
 *   (binary, `security.capability` included; ENOTSUP/EPERM: one warning per layer), then times
 *   (nanoseconds, the entry itself). Directories get theirs once the whole layer is written, as
 *   writing into a directory changes its mtime. Hard links do not change the shared inode's
 *   metadata (GNU tar; Docker's chmod/chtimes of links are no-ops in practice).
 * - Missing parent directories are created (0755, root-owned), as Docker's `UnpackLayer` and
 *   containerd's `mkparent` do — for whiteouts too, so `a/.wh.x` leaves an empty `a` when there
 *   was none (umoci does not create it). A parent that is a file is an error (as in both).
 * - Sparse entries are refused (our tar reader does not expand them; layers SHOULD NOT have
 *   them). AUFS hard-link directories (`.wh..wh.plnk`) are not supported.
 * - A layer blob is applied while it streams: a failure leaves the root partly updated, and the
 *   caller discards it.
 *
 * Safety (Kaniko's CVE-2026-28406, its securejoin fixes and their regressions in mind):
 * - Names are cleaned lexically: a leading `/` is dropped (Docker, containerd and GNU tar read
 *   layer names relative to the root), `a/../b` is `b`, and a `..` that climbs above the root is
 *   refused — as Docker's `breakoutError` does (containerd clamps it to the root instead; a layer
 *   with such a name is hostile or broken, so it is refused here). NUL bytes are refused.
 * - Parent directories are resolved component by component inside the root with chroot
 *   semantics ({@link resolveDir}): a symlinked parent (`lib -> usr/lib`, every merged-/usr
 *   Debian image) is followed *inside* the root, and one that points out (`..`, `/`) stops at the
 *   root as if it were `/`. So no write, delete, chown or chmod ever goes through the host. The
 *   last component is never followed. Symlink loops fail after 40 links, as on Linux.
 * - Hard link targets are cleaned and resolved the same way; `../outside` is refused, `/etc/shadow`
 *   means ROOT/etc/shadow (and is refused when the root has no such entry).
 * - Entries that would replace the root itself are refused (a directory entry for the root, `./`,
 *   is skipped, as containerd does); whiteouts of `.`, `..` and the empty name are refused.
 * - Paths for which `options.ignore` holds — or for one of their parents — are never written or
 *   deleted: entries and whiteouts at or under them are skipped, hard links to them are skipped,
 *   and recursive deletions (whiteouts, opaque directories, replacements) leave them in place.
 *
 * Every failure is a one-line {@link KanikoError} naming the layer (`options.what`) and the entry.
 * @module
 */
import { describeError, KanikoError, oneLine } from "../errors.ts";
import { lchmod, lchown, lstatNs, mknod, setTimesNs, setXattr } from "../fs/meta.ts";
import { log } from "../log.ts";
import { readTar, type TarEntryHeader } from "../tar/mod.ts";
import {
  childPath,
  cleanPath,
  joinRoot,
  type PathProblem,
  resolveDir,
  ResolveError,
  splitPath,
} from "./safe_path.ts";

/** Options of {@link applyLayer}. */
export interface ApplyOptions {
  /** Paths (relative, slash-separated, no leading slash) never written or deleted: the ignore list. */
  ignore?: (path: string) => boolean;
  /** Create device nodes (root in a real container); otherwise they are skipped with one warning. */
  devices?: boolean;
  /** Name of the layer for messages (image reference + digest). */
  what: string;
  /**
   * Regular files, hard links, devices and FIFOs at paths for which this holds are not written:
   * what is at the path is removed as a full apply would replace it, so the directories and
   * symlinks of the result are exactly those of a full apply (a sparse root, for stages that run
   * nothing; see `lib/build/sparse.ts`).
   */
  skipFile?: (path: string) => boolean;
}

/** The whiteout prefix of OCI layers. */
export const WHITEOUT_PREFIX = ".wh.";
/** The opaque-directory marker. */
export const WHITEOUT_OPAQUE = ".wh..wh..opq";
/** Prefix of AUFS metadata entries (`.wh..wh.plnk`, `.wh..wh.aufs`), skipped. */
const WHITEOUT_META_PREFIX = ".wh..wh.";

/**
 * Applies the layer tar `tar` (already decompressed) onto the directory `root`, in archive order.
 * Throws a {@link KanikoError} naming the layer and the entry on anything unsafe or failing; the
 * root is then partly updated.
 */
export async function applyLayer(
  root: string,
  tar: ReadableStream<Uint8Array>,
  options: ApplyOptions,
): Promise<void> {
  const applier = new LayerApplier(root, options);
  for await (const { header, body } of readTar(tar, { name: options.what })) {
    await applier.entry(header, body);
  }
  applier.finish();
}

/** Metadata of an entry as it is applied. */
interface EntryMeta {
  mode: number;
  uid: number;
  gid: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  xattrs?: Record<string, Uint8Array>;
}

const PROBLEMS: Record<PathProblem, string> = {
  nul: "has a NUL byte in its name",
  absolute: "has an absolute name",
  dotdot: 'has a ".." component',
  escape: 'climbs out of the root with ".."',
};

/** The state of one layer being applied. */
class LayerApplier {
  readonly #root: string;
  readonly #what: string;
  readonly #ignore?: (path: string) => boolean;
  readonly #devices: boolean;
  readonly #skipFile?: (path: string) => boolean;
  readonly #uid = Deno.uid() ?? 0;
  readonly #gid = Deno.gid() ?? 0;
  readonly #isRoot = this.#uid === 0;
  /** The group a new entry gets in a directory (its own when it is setgid). */
  readonly #newGid = new Map<string, number>();
  /** Resolved paths known to be real directories. */
  readonly #dirs = new Set<string>();
  /** Parent paths as named in the archive → their resolved path (all components exist). */
  readonly #parents = new Map<string, string>();
  /** Ignore verdicts for directories (a path is ignored when it or a parent is). */
  readonly #ignoredDirs = new Map<string, boolean>();
  /** Resolved paths this layer wrote, and their parents: what opaque whiteouts keep. */
  readonly #touched = new Set<string>([""]);
  /** Directories this layer declared, with the metadata applied at the end. */
  readonly #dirMeta = new Map<string, EntryMeta>();
  /** Warnings given for this layer (one of each kind). */
  readonly #warned = new Set<string>();
  /** The entry being applied, for messages. */
  #entry = "";

  constructor(root: string, options: ApplyOptions) {
    this.#root = root;
    this.#what = options.what;
    this.#ignore = options.ignore;
    this.#devices = options.devices ?? false;
    this.#skipFile = options.skipFile;
  }

  async entry(header: TarEntryHeader, body: ReadableStream<Uint8Array>): Promise<void> {
    this.#entry = header.name;
    try {
      await this.#apply(header, body);
    } catch (e) {
      // Refusals, and tar errors (which name the layer), are already complete.
      if (e instanceof KanikoError && e.message.startsWith(`${this.#what}: `)) throw e;
      if (e instanceof ResolveError) throw this.#refuse(e.message);
      throw new KanikoError(
        `${this.#what}: cannot apply entry ${JSON.stringify(header.name)}: ${
          oneLine(e instanceof KanikoError ? e.message : describeError(e))
        }`,
        {
          cause: e,
          hint: e instanceof KanikoError ? e.hint : undefined,
          code: e instanceof KanikoError ? e.code : (e as { code?: string })?.code,
        },
      );
    }
  }

  async #apply(h: TarEntryHeader, body: ReadableStream<Uint8Array>): Promise<void> {
    const cleaned = cleanPath(h.name);
    if (cleaned.problem) throw this.#refuse(PROBLEMS[cleaned.problem]);
    const rel = cleaned.path;
    const { parent, base } = splitPath(rel);
    if (base.startsWith(WHITEOUT_PREFIX)) {
      if (base === WHITEOUT_OPAQUE) return this.#opaque(parent);
      if (base.startsWith(WHITEOUT_META_PREFIX)) return; // AUFS metadata
      const name = base.slice(WHITEOUT_PREFIX.length);
      if (name === "" || name === "." || name === "..") {
        throw this.#refuse(`is a whiteout of ${JSON.stringify(name)}, which is not a name`);
      }
      return this.#whiteout(parent, name);
    }
    if (rel === "") {
      if (h.type === "dir") return; // the root's own entry (`./`): the root stays as it is
      throw this.#refuse("would replace the root itself");
    }
    if (h.sparse) throw this.#refuse("is a sparse file, which is not supported in image layers");

    if (h.type !== "dir" && h.type !== "symlink" && this.#skip(parent, base)) return;
    // Resolve the link target first: nothing is created for a refused entry.
    let linkTarget: string | undefined;
    if (h.type === "hardlink") {
      linkTarget = this.#hardlinkTarget(h.linkname);
      if (linkTarget === undefined) return; // target ignored
    } else if (h.type === "symlink" && h.linkname.includes("\0")) {
      throw this.#refuse("is a symlink whose target has a NUL byte");
    }

    const dir = this.#resolveParent(parent);
    const path = childPath(dir.path, base);
    if (this.#ignored(path)) return;
    if (h.type === "hardlink" && linkTarget === path) return; // a link to itself
    if (
      (h.type === "char" || h.type === "block" || h.type === "fifo") && !this.#devices
    ) {
      this.#warnOnce(
        "devices",
        `${this.#what}: skipping device and FIFO entries (first: ${JSON.stringify(h.name)})`,
      );
      return;
    }
    this.#makeParents(dir);
    const abs = joinRoot(this.#root, path);
    const meta = entryMeta(h);
    switch (h.type) {
      case "dir": {
        const cur = lstatNs(abs);
        if (cur?.type !== "dir") {
          if (cur !== undefined) this.#remove(path);
          Deno.mkdirSync(abs, { mode: 0o700 });
        }
        this.#dirs.add(path);
        this.#dirMeta.set(path, meta);
        break;
      }
      case "file":
        await this.#file(path, abs, dir.path, body, h.size, meta);
        break;
      case "symlink": {
        this.#create(path, () => Deno.symlinkSync(h.linkname, abs));
        this.#setMeta(abs, "symlink", meta, this.#isNewOwner(dir.path, meta));
        break;
      }
      case "hardlink": {
        const target = joinRoot(this.#root, linkTarget!);
        this.#create(path, () => Deno.linkSync(target, abs));
        break;
      }
      case "char":
      case "block":
      case "fifo": {
        const type = h.type;
        this.#create(path, () => mknod(abs, type, meta.mode, h.devmajor, h.devminor));
        this.#setMeta(abs, type, meta);
        break;
      }
    }
    this.#touch(path);
  }

  /**
   * With `skipFile`: when it holds for the entry `parent/base` (not a directory or symlink), removes
   * what is at the path, as writing the entry would, and says the entry is done.
   */
  #skip(parent: string, base: string): boolean {
    if (!this.#skipFile) return false;
    const dir = this.#resolveParent(parent);
    const path = childPath(dir.path, base);
    if (path === "" || this.#ignored(path) || !this.#skipFile(path)) return false;
    this.#makeParents(dir);
    this.#remove(path);
    this.#touch(path);
    return true;
  }

  /**
   * Writes a regular file: created with `O_EXCL` (whatever was at the path is removed first, so
   * a planted symlink is never followed). Small files are written in one call that also sets the
   * exact mode; the owner is changed only when it differs from what a new file gets.
   */
  async #file(
    path: string,
    abs: string,
    dir: string,
    body: ReadableStream<Uint8Array>,
    size: number,
    meta: EntryMeta,
  ): Promise<void> {
    const owned = this.#isNewOwner(dir, meta);
    if (size <= SMALL_FILE) {
      const data = await readSmall(body, size);
      // Deno applies `mode` exactly (fchmod: setuid bits kept, no umask)
      const mode = owned ? meta.mode : 0o600;
      this.#create(path, () => Deno.writeFileSync(abs, data, { createNew: true, mode }));
      this.#setMeta(abs, "file", meta, owned, owned);
      return;
    }
    const file = this.#create(
      path,
      () => Deno.openSync(abs, { write: true, createNew: true, mode: 0o600 }),
    );
    try {
      for await (const chunk of body) {
        let off = 0;
        while (off < chunk.length) off += file.writeSync(chunk.subarray(off));
      }
    } finally {
      file.close();
    }
    this.#setMeta(abs, "file", meta, owned);
  }

  /**
   * Runs `make` (which creates `path` exclusively); when something is already there, removes it
   * and tries again. Saves an `lstat` per entry in the common case (a fresh path).
   */
  #create<T>(path: string, make: () => T): T {
    try {
      return make();
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists) && (e as KanikoError).code !== "EEXIST") {
        throw e;
      }
    }
    this.#remove(path);
    return make();
  }

  /** True when a new entry in `dir` is already owned as `meta` says (no chown needed). */
  #isNewOwner(dir: string, meta: EntryMeta): boolean {
    if (meta.uid !== this.#uid) return false;
    let gid = this.#newGid.get(dir);
    if (gid === undefined) {
      const m = lstatNs(joinRoot(this.#root, dir));
      gid = m !== undefined && (m.mode & 0o2000) !== 0 ? m.gid : this.#gid; // setgid directory
      this.#newGid.set(dir, gid);
    }
    return meta.gid === gid;
  }

  /** Applies the metadata of the layer's directories, deepest first. */
  finish(): void {
    const dirs = [...this.#dirMeta.entries()].sort((a, b) => depth(b[0]) - depth(a[0]));
    for (const [path, meta] of dirs) {
      this.#entry = path;
      const abs = joinRoot(this.#root, path);
      try {
        if (lstatNs(abs)?.type !== "dir") continue;
        this.#setMeta(abs, "dir", meta);
      } catch (e) {
        throw new KanikoError(
          `${this.#what}: cannot set the metadata of directory ${JSON.stringify(path)}: ${
            oneLine(e instanceof KanikoError ? e.message : describeError(e))
          }`,
          { cause: e, code: (e as { code?: string })?.code },
        );
      }
    }
  }

  // --- whiteouts ---------------------------------------------------------------------------

  #whiteout(parent: string, name: string): void {
    const dir = this.#resolveParent(parent);
    const path = childPath(dir.path, name);
    if (this.#ignored(path)) return;
    this.#makeParents(dir);
    this.#touch(dir.path);
    if (this.#touched.has(path)) return; // this layer's own entry: whiteouts hide lower layers only
    this.#remove(path);
  }

  #opaque(parent: string): void {
    const dir = this.#resolveParent(parent);
    if (this.#ignored(dir.path)) return;
    this.#makeParents(dir);
    this.#touch(dir.path);
    this.#clearLower(dir.path);
  }

  /** Deletes what lower layers left under the directory `dir`, keeping this layer's entries. */
  #clearLower(dir: string): void {
    for (const e of [...Deno.readDirSync(joinRoot(this.#root, dir))]) {
      const path = childPath(dir, e.name);
      if (this.#ignored(path)) continue;
      if (!this.#touched.has(path)) this.#remove(path);
      else if (e.isDirectory && !e.isSymlink) this.#clearLower(path);
    }
  }

  // --- paths ---------------------------------------------------------------------------------

  /** Resolves a parent directory named in the archive inside the root (nothing is created). */
  #resolveParent(parent: string): { path: string; missing: string[] } {
    const known = this.#parents.get(parent);
    if (known !== undefined) return { path: known, missing: [] };
    let r;
    try {
      r = resolveDir(this.#root, parent, { knownDirs: this.#dirs });
    } catch (e) {
      if (!(e instanceof ResolveError)) throw e;
      throw this.#refuse(
        e.reason === "notdir"
          ? `cannot be written: its parent ${JSON.stringify(e.at)} is not a directory`
          : `cannot be written: ${e.message}`,
      );
    }
    const parts = r.path === "" ? [] : r.path.split("/");
    const missing: string[] = [];
    for (let i = r.existing; i < parts.length; i++) missing.push(parts.slice(0, i + 1).join("/"));
    if (missing.length === 0) {
      this.#parents.set(parent, r.path);
      for (let i = 1; i <= parts.length; i++) this.#dirs.add(parts.slice(0, i).join("/"));
    }
    return { path: r.path, missing };
  }

  /** Creates the missing directories of a resolved parent (0755, as Docker does). */
  #makeParents(dir: { path: string; missing: string[] }): void {
    for (const path of dir.missing) {
      const abs = joinRoot(this.#root, path);
      try {
        Deno.mkdirSync(abs, { mode: 0o755 });
        Deno.chmodSync(abs, 0o755); // whatever the umask
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists) || lstatNs(abs)?.type !== "dir") throw e;
      }
      this.#dirs.add(path);
    }
    dir.missing = [];
  }

  /** Resolves a hard link's target inside the root; undefined when it is ignored. */
  #hardlinkTarget(linkname: string): string | undefined {
    const what = `is a hard link to ${JSON.stringify(linkname)}`;
    const cleaned = cleanPath(linkname);
    if (cleaned.problem === "escape") throw this.#refuse(`${what}, outside the root`);
    if (cleaned.problem) throw this.#refuse(`${what}, which ${PROBLEMS[cleaned.problem]}`);
    if (cleaned.path === "") throw this.#refuse(`${what}: the root itself`);
    const { parent, base } = splitPath(cleaned.path);
    let dir;
    try {
      dir = resolveDir(this.#root, parent, { knownDirs: this.#dirs });
    } catch (e) {
      if (!(e instanceof ResolveError)) throw e;
      throw this.#refuse(`${what}, which is not in the root (${e.message})`);
    }
    const path = childPath(dir.path, base);
    if (dir.existing !== depth(dir.path)) throw this.#refuse(`${what}, which is not in the root`);
    if (this.#ignored(path)) return undefined;
    const meta = lstatNs(joinRoot(this.#root, path));
    if (meta === undefined) throw this.#refuse(`${what}, which is not in the root`);
    if (meta.type === "dir") throw this.#refuse(`${what}, which is a directory`);
    return path;
  }

  /** True when `path` or one of its parents is on the ignore list. */
  #ignored(path: string): boolean {
    if (!this.#ignore || path === "") return false;
    return this.#ignore(path) || this.#ignoredDir(splitPath(path).parent);
  }

  #ignoredDir(dir: string): boolean {
    if (dir === "") return false;
    let v = this.#ignoredDirs.get(dir);
    if (v === undefined) {
      v = this.#ignore!(dir) || this.#ignoredDir(splitPath(dir).parent);
      this.#ignoredDirs.set(dir, v);
    }
    return v;
  }

  /** Records `path` and its parents as written by this layer. */
  #touch(path: string): void {
    let p = path;
    while (!this.#touched.has(p)) {
      this.#touched.add(p);
      p = splitPath(p).parent;
    }
  }

  // --- changes -------------------------------------------------------------------------------

  /**
   * Removes whatever is at `path` (recursively, the entry itself: a symlink is never followed),
   * leaving ignored paths in place. Throws when an ignored path is in the way.
   */
  #remove(path: string): void {
    const abs = joinRoot(this.#root, path);
    const meta = lstatNs(abs);
    if (meta === undefined) return;
    if (meta.type === "dir" || meta.type === "symlink") this.#forget(path);
    if (meta.type !== "dir") {
      Deno.removeSync(abs);
      return;
    }
    if (!this.#ignore) {
      Deno.removeSync(abs, { recursive: true });
      return;
    }
    if (!this.#removeTree(path)) {
      throw new KanikoError(
        `${this.#what}: entry ${JSON.stringify(this.#entry)} would delete ${
          JSON.stringify(path)
        }, which holds paths on the ignore list`,
        { hint: "the layer replaces or deletes a directory the build must keep" },
      );
    }
  }

  /** Deletes the tree at `path` except ignored paths; true when it is gone. */
  #removeTree(path: string): boolean {
    if (this.#ignored(path)) return false;
    const abs = joinRoot(this.#root, path);
    const meta = lstatNs(abs);
    if (meta === undefined) return true;
    if (meta.type !== "dir") {
      Deno.removeSync(abs);
      return true;
    }
    let all = true;
    for (const e of [...Deno.readDirSync(abs)]) {
      if (!this.#removeTree(childPath(path, e.name))) all = false;
    }
    if (all) Deno.removeSync(abs);
    return all;
  }

  /** Drops cached knowledge about `path` and what is under it (it is being removed). */
  #forget(path: string): void {
    this.#parents.clear();
    this.#dirs.clear();
    this.#newGid.clear();
    const prefix = path + "/";
    for (const key of this.#dirMeta.keys()) {
      if (key === path || key.startsWith(prefix)) this.#dirMeta.delete(key);
    }
  }

  /**
   * Owner, mode (not for symlinks), xattrs, times — in the order Linux needs. `owned`: the entry
   * is new and already has the right owner; `moded`: it is new and already has the right mode.
   */
  #setMeta(abs: string, type: string, meta: EntryMeta, owned = false, moded = false): void {
    if (!owned) {
      try {
        lchown(abs, meta.uid, meta.gid);
      } catch (e) {
        if (this.#isRoot || (e as KanikoError).code !== "EPERM") throw e;
        this.#warnOnce("owners", `${this.#what}: not running as root, file owners are not kept`);
      }
    }
    if (type === "file") {
      if (!moded) Deno.chmodSync(abs, meta.mode); // a regular file just made: no symlink here
    } else if (type !== "symlink" && type !== "file") lchmod(abs, meta.mode);
    if (meta.xattrs) {
      for (const name of Object.keys(meta.xattrs).sort()) {
        try {
          setXattr(abs, name, meta.xattrs[name]);
        } catch (e) {
          const code = (e as KanikoError).code;
          if (code !== "ENOTSUP" && code !== "EPERM") throw e;
          this.#warnOnce(
            "xattrs",
            `${this.#what}: extended attributes not kept (first: ${name} of ${
              JSON.stringify(this.#entry)
            }: ${code})`,
          );
        }
      }
    }
    setTimesNs(abs, meta.atimeNs, meta.mtimeNs);
  }

  #refuse(detail: string): KanikoError {
    return new KanikoError(
      `${this.#what}: entry ${JSON.stringify(this.#entry)} ${detail}; refusing to apply the layer`,
      { code: "UNSAFE_LAYER", hint: "the layer is corrupt or hostile" },
    );
  }

  #warnOnce(kind: string, msg: string): void {
    if (this.#warned.has(kind)) return;
    this.#warned.add(kind);
    log.warn(msg);
  }
}

function entryMeta(h: TarEntryHeader): EntryMeta {
  return {
    mode: h.mode & 0o7777,
    uid: h.uid,
    gid: h.gid,
    mtimeNs: h.mtime,
    atimeNs: h.atime ?? h.mtime,
    xattrs: h.xattrs && Object.keys(h.xattrs).length > 0 ? h.xattrs : undefined,
  };
}

function depth(path: string): number {
  if (path === "") return 0;
  let n = 1;
  for (let i = 0; i < path.length; i++) if (path.charCodeAt(i) === 47) n++;
  return n;
}

/** Files up to this size are read whole and written in one call. */
const SMALL_FILE = 1 << 20;

/** The whole body of a small entry. */
async function readSmall(body: ReadableStream<Uint8Array>, size: number): Promise<Uint8Array> {
  if (size === 0) {
    await body.cancel();
    return new Uint8Array(0);
  }
  const out = new Uint8Array(size);
  let off = 0;
  for await (const chunk of body) {
    if (off + chunk.length > size) throw new Error(`the body is longer than ${size} bytes`);
    out.set(chunk, off);
    off += chunk.length;
  }
  return out;
}
