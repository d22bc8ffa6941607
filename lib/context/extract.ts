/**
 * Safe extraction of a context archive into a fresh directory with our own tar reader. Nothing
 * may land outside the directory: absolute names and names with `..` are refused, no entry is
 * written through a symlink (an entry under a symlinked directory is refused), hard links must
 * name an earlier regular entry inside the archive, and files are created with `O_EXCL` after the
 * old entry is removed, so a planted symlink is never followed. Symlinks themselves are created
 * as they are (their targets are only checked when a COPY follows them). Devices and FIFOs are
 * skipped (a build context has no use for them); sparse entries are refused. Name cleaning and
 * the hard-link target check use `lib/rootfs/safe_path.ts`, shared with image layer extraction.
 * @module
 */
import { lutimesSync } from "node:fs";
import { KanikoError } from "../errors.ts";
import { log } from "../log.ts";
import { readTar } from "../tar/mod.ts";
import { cleanPath, joinRoot, resolveDir, ResolveError, splitPath } from "../rootfs/safe_path.ts";

/** Options for {@link extractTar}. */
export interface ExtractOptions {
  /** Names the archive in messages. */
  name: string;
  /** Stops the extraction. */
  signal?: AbortSignal;
}

/** What {@link extractTar} did. */
export interface ExtractResult {
  /** Entries written (directories, files, links). */
  entries: number;
  /** Entries skipped (devices, FIFOs). */
  skipped: number;
}

/**
 * Extracts the tar `stream` into the existing, empty directory `dest`. Throws a
 * {@link KanikoError} naming the archive and the entry on anything unsafe or corrupt.
 */
export async function extractTar(
  stream: ReadableStream<Uint8Array>,
  dest: string,
  options: ExtractOptions,
): Promise<ExtractResult> {
  const x = new Extractor(dest, options.name);
  let entries = 0;
  let skipped = 0;
  for await (const { header, body } of readTar(stream, { name: options.name })) {
    options.signal?.throwIfAborted();
    const rel = safeName(header.name, options.name);
    if (rel === "") {
      await body.cancel();
      continue; // the archive's root directory: ours already exists
    }
    if (header.sparse) {
      throw x.refuse(header.name, "is a sparse file, which is not supported in a build context");
    }
    const mtime = Number(header.mtime / 1_000_000n) / 1000;
    switch (header.type) {
      case "dir":
        await body.cancel();
        await x.dir(rel, header.mode & 0o7777, mtime);
        break;
      case "file":
        await x.file(rel, body, header.mode & 0o7777, mtime, header.size);
        break;
      case "symlink":
        await body.cancel();
        await x.symlink(rel, header.linkname, mtime);
        break;
      case "hardlink":
        await body.cancel();
        await x.hardlink(rel, safeName(header.linkname, options.name, header.name));
        break;
      default:
        await body.cancel();
        skipped++;
        log.warnOnce(
          `context-special:${options.name}`,
          `skipping device and FIFO entries of ${options.name} (first: ${header.name})`,
        );
        continue;
    }
    entries++;
  }
  await x.finish();
  return { entries, skipped };
}

/**
 * The entry name as a clean relative path (`""` for the root), or a refusal for absolute names
 * and names that climb out with `..`.
 */
export function safeName(name: string, archive: string, entry?: string): string {
  const what = entry === undefined
    ? `entry ${JSON.stringify(name)}`
    : `hard link ${JSON.stringify(entry)} (to ${JSON.stringify(name)})`;
  const cleaned = cleanPath(name, { absolute: "refuse", dotdot: "refuse" });
  switch (cleaned.problem) {
    case undefined:
      return cleaned.path;
    case "nul":
      throw unsafe(archive, `${what} has a NUL byte in its name`);
    case "absolute":
      throw unsafe(archive, `${what} has an absolute path`);
    default:
      throw unsafe(archive, `${what} climbs out of the archive with ".."`);
  }
}

function unsafe(archive: string, detail: string): KanikoError {
  return new KanikoError(`${archive}: ${detail}; refusing to extract it`, {
    hint: "build contexts must stay inside their directory; repack the archive with relative names",
    code: "UNSAFE_ARCHIVE",
  });
}

class Extractor {
  readonly #dest: string;
  readonly #name: string;
  /** Directories (relative) known to be real directories we may write into. */
  readonly #dirs = new Set<string>([""]);
  /** Final modes and times of directories, applied at the end (deepest first). */
  readonly #dirMeta = new Map<string, { mode: number; mtime: number }>();

  constructor(dest: string, name: string) {
    this.#dest = dest;
    this.#name = name;
  }

  refuse(entry: string, detail: string): KanikoError {
    return unsafe(this.#name, `entry ${JSON.stringify(entry)} ${detail}`);
  }

  #abs(rel: string): string {
    return joinRoot(this.#dest, rel);
  }

  /** Makes sure every parent of `rel` is a real directory inside dest (never a symlink). */
  async #parents(rel: string): Promise<void> {
    const parts = rel.split("/");
    let cur = "";
    for (let i = 0; i < parts.length - 1; i++) {
      cur = cur ? `${cur}/${parts[i]}` : parts[i];
      if (this.#dirs.has(cur)) continue;
      const info = await lstatOrNull(this.#abs(cur));
      if (info === null) {
        await Deno.mkdir(this.#abs(cur), { mode: 0o755 });
      } else if (info.isSymlink) {
        throw this.refuse(rel, `would be written through the symlink ${JSON.stringify(cur)}`);
      } else if (!info.isDirectory) {
        await this.#remove(cur);
        await Deno.mkdir(this.#abs(cur), { mode: 0o755 });
      }
      this.#dirs.add(cur);
    }
  }

  /** Removes whatever is at `rel` (a later entry replaces an earlier one, as tar does). */
  async #remove(rel: string): Promise<void> {
    const info = await lstatOrNull(this.#abs(rel));
    if (info === null) return;
    await Deno.remove(this.#abs(rel), { recursive: info.isDirectory });
    for (const d of [...this.#dirs]) {
      if (d === rel || d.startsWith(rel + "/")) this.#dirs.delete(d);
    }
    for (const d of [...this.#dirMeta.keys()]) {
      if (d === rel || d.startsWith(rel + "/")) this.#dirMeta.delete(d);
    }
  }

  async dir(rel: string, mode: number, mtime: number): Promise<void> {
    await this.#parents(rel);
    const info = await lstatOrNull(this.#abs(rel));
    if (info === null || !info.isDirectory || info.isSymlink) {
      if (info !== null) await this.#remove(rel);
      await Deno.mkdir(this.#abs(rel), { mode: 0o755 });
    }
    this.#dirs.add(rel);
    this.#dirMeta.set(rel, { mode, mtime });
  }

  async file(
    rel: string,
    body: ReadableStream<Uint8Array>,
    mode: number,
    mtime: number,
    size: number,
  ): Promise<void> {
    await this.#parents(rel);
    await this.#remove(rel);
    const path = this.#abs(rel);
    const file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
    try {
      if (size === 0) await body.cancel();
      for await (const chunk of body) {
        let off = 0;
        while (off < chunk.length) off += await file.write(chunk.subarray(off));
      }
    } finally {
      file.close();
    }
    await Deno.chmod(path, mode);
    await Deno.utime(path, mtime, mtime);
  }

  async symlink(rel: string, target: string, mtime: number): Promise<void> {
    await this.#parents(rel);
    await this.#remove(rel);
    const path = this.#abs(rel);
    await Deno.symlink(target, path);
    try {
      lutimesSync(path, mtime, mtime);
    } catch {
      // times on a symlink are cosmetic
    }
  }

  async hardlink(rel: string, target: string): Promise<void> {
    if (target === "") throw this.refuse(rel, "is a hard link to the archive's root");
    // The target's parents must be real directories inside dest: no symlink is followed.
    const { parent } = splitPath(target);
    let inside: boolean;
    try {
      inside = resolveDir(this.#dest, parent, { symlinks: "refuse" }).existing ===
        (parent === "" ? 0 : parent.split("/").length);
    } catch (e) {
      if (!(e instanceof ResolveError)) throw e;
      inside = false;
    }
    if (!inside) {
      throw this.refuse(
        rel,
        `is a hard link to ${JSON.stringify(target)}, which is not in the archive`,
      );
    }
    const info = await lstatOrNull(this.#abs(target));
    if (info === null) {
      throw this.refuse(
        rel,
        `is a hard link to ${JSON.stringify(target)}, which is not in the archive`,
      );
    }
    if (info.isDirectory) {
      throw this.refuse(rel, `is a hard link to the directory ${JSON.stringify(target)}`);
    }
    if (target === rel) return;
    await this.#parents(rel);
    await this.#remove(rel);
    await Deno.link(this.#abs(target), this.#abs(rel));
  }

  /** Applies directory modes and times, deepest first (children change a directory's mtime). */
  async finish(): Promise<void> {
    const dirs = [...this.#dirMeta.entries()].sort((a, b) =>
      b[0].split("/").length - a[0].split("/").length
    );
    for (const [rel, { mode, mtime }] of dirs) {
      const path = this.#abs(rel);
      await Deno.chmod(path, mode);
      await Deno.utime(path, mtime, mtime);
    }
  }
}

async function lstatOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}
