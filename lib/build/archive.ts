/**
 * `ADD` of a local archive, as BuildKit does it: a regular file is an archive when, once
 * decompressed by content (gzip, bzip2, xz, zstd or none), a tar header can be read from it;
 * it is then extracted into the destination directory instead of being copied.
 *
 * Extraction stays inside the stage root: names are cleaned (a leading `/` is dropped, `..` that
 * would climb out of the destination is refused), directories on the way are resolved like a
 * chroot (a symlink in the image is followed inside the root, never to the host), an existing
 * entry is replaced without being followed, hard links must name a path inside the destination.
 * Entries keep the archive's owners (unless `--chown`), modes and times; directories the archive
 * does not list are created 0755 and owned by root. bzip2 and xz are decompressed by the system
 * `bzip2` and `xz` programs (lib/layer; Docker also runs `xz`); gzip and zstd in-process.
 * @module
 */
import { KanikoError } from "../errors.ts";
import { decompressByContent } from "../layer/decompress.ts";
import { lchmod, lchown, lstatNs, mknod, setTimesNs } from "../fs/meta.ts";
import { childPath, cleanPath, resolveDir, splitPath } from "../rootfs/safe_path.ts";
import { readTar, type TarEntryHeader } from "../tar/mod.ts";
import type { Owner, TreeWriter } from "./copy_tree.ts";

/**
 * The decompressed content of the file at `path` (compression detected by content; bzip2 and xz
 * through their programs, by lib/layer). `what` names the file in errors. Cancel to stop early.
 */
export async function openDecompressed(
  path: string,
  what: string,
): Promise<ReadableStream<Uint8Array>> {
  const file = await Deno.open(path);
  return (await decompressByContent(file.readable, what)).stream;
}

/** Whether the regular file at `path` is a (possibly compressed) tar archive. */
export async function isTarArchive(path: string, what: string): Promise<boolean> {
  let stream: ReadableStream<Uint8Array>;
  try {
    stream = await openDecompressed(path, what);
  } catch (e) {
    if (e instanceof KanikoError && /not installed|cannot run/.test(e.message)) throw e;
    return false;
  }
  const entries = readTar(stream, { name: what });
  try {
    const first = await entries.next();
    return !first.done;
  } catch {
    return false;
  } finally {
    await entries.return(undefined).catch(() => {});
    await stream.cancel().catch(() => {});
  }
}

/**
 * Extracts the archive at `path` into the directory `destDir` (resolved, relative to the root,
 * existing). `shown` names the source in errors. Written paths are recorded in `w`.
 */
export async function extractArchive(
  w: TreeWriter,
  path: string,
  destDir: string,
  shown: string,
): Promise<void> {
  const stream = await openDecompressed(path, shown);
  const dirTimes: { path: string; mtime: bigint }[] = [];
  const chown = w.options.chown;
  for await (const { header, body } of readTar(stream, { name: shown })) {
    w.options.signal?.throwIfAborted();
    const cleaned = cleanPath(header.name);
    if (cleaned.problem !== undefined) {
      await body.cancel();
      throw unsafe(shown, header.name);
    }
    if (cleaned.path === "") {
      await body.cancel();
      continue;
    }
    const target = placeEntry(w, destDir, cleaned.path, header.type === "dir");
    if (target === "") {
      await body.cancel();
      continue; // a directory symlink to the root: nothing to create
    }
    const owner = chown ?? { uid: header.uid, gid: header.gid };
    if (header.type === "file") {
      await writeBody(w.abs(target), body);
    } else {
      await body.cancel();
      if (!makeEntry(w, destDir, target, header, shown)) continue;
    }
    if (header.type === "dir") dirTimes.push({ path: target, mtime: header.mtime });
    finishEntry(w.abs(target), header, owner);
    w.touch(target);
  }
  for (let i = dirTimes.length - 1; i >= 0; i--) {
    setTimesNs(w.abs(dirTimes[i].path), dirTimes[i].mtime, dirTimes[i].mtime);
  }
}

function unsafe(shown: string, name: string): KanikoError {
  return new KanikoError(
    `${shown}: the archive entry ${JSON.stringify(name)} is outside the extraction directory`,
    { hint: "repack the archive with relative names", code: "UNSAFE_ARCHIVE" },
  );
}

/**
 * Resolves where an entry goes (parents created 0755 root-owned, symlinks in them followed inside
 * the root; a directory entry follows a symlink at its own name too) and clears the way: an
 * existing entry is removed unless a directory meets a directory.
 */
function placeEntry(
  w: TreeWriter,
  destDir: string,
  name: string,
  isDir: boolean,
): string {
  const { parent, base } = splitPath(childPath(destDir, name));
  const parentPath = w.mkdirAll(parent, `/${parent}`, { uid: 0, gid: 0 });
  let target = childPath(parentPath, base);
  let current = lstatNs(w.abs(target));
  if (isDir && current?.type === "symlink") {
    const followed = resolveDir(w.root, target);
    if (followed.existing === (followed.path === "" ? 0 : followed.path.split("/").length)) {
      target = followed.path;
      current = lstatNs(w.abs(target));
    }
  }
  if (target !== "" && current !== undefined && !(isDir && current.type === "dir")) {
    Deno.removeSync(w.abs(target), { recursive: current.type === "dir" });
  }
  return target;
}

async function writeBody(path: string, body: ReadableStream<Uint8Array>): Promise<void> {
  const file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
  try {
    for await (const chunk of body) {
      let off = 0;
      while (off < chunk.length) off += await file.write(chunk.subarray(off));
    }
  } finally {
    file.close();
  }
}

/** Creates a non-file entry; false when it was skipped. */
function makeEntry(
  w: TreeWriter,
  destDir: string,
  target: string,
  header: TarEntryHeader,
  shown: string,
): boolean {
  const path = w.abs(target);
  switch (header.type) {
    case "dir":
      if (lstatNs(path) === undefined) Deno.mkdirSync(path, { mode: 0o700 });
      return true;
    case "symlink":
      Deno.symlinkSync(header.linkname, path);
      return true;
    case "hardlink": {
      const cleaned = cleanPath(header.linkname);
      if (cleaned.problem !== undefined || cleaned.path === "") {
        throw unsafe(shown, header.linkname);
      }
      const { parent, base } = splitPath(childPath(destDir, cleaned.path));
      const from = childPath(resolveDir(w.root, parent).path, base);
      const meta = lstatNs(w.abs(from));
      if (meta === undefined || meta.type === "dir") {
        throw new KanikoError(
          `${shown}: the hard link ${JSON.stringify(header.name)} points to ${
            JSON.stringify(header.linkname)
          }, which is not a file extracted before it`,
          { hint: "the archive is damaged", code: "UNSAFE_ARCHIVE" },
        );
      }
      Deno.linkSync(w.abs(from), path);
      return true;
    }
    case "char":
    case "block":
    case "fifo":
      mknod(path, header.type, header.mode, header.devmajor ?? 0, header.devminor ?? 0);
      return true;
  }
  return false;
}

/** Owner, mode and (for non-directories) times of an extracted entry. */
function finishEntry(path: string, header: TarEntryHeader, owner: Owner): void {
  lchown(path, owner.uid, owner.gid);
  if (header.type === "symlink") {
    setTimesNs(path, header.mtime, header.mtime);
    return;
  }
  lchmod(path, header.mode & 0o7777);
  if (header.type !== "dir") setTimesNs(path, header.mtime, header.mtime);
}
