/**
 * COPY and ADD with BuildKit's semantics (`dockerfile2llb` `dispatchCopy` + tonistiigi/fsutil
 * `copy`), written into a stage root by {@link copyStep}:
 *
 * - the destination is relative to WORKDIR; it is a directory when it ends with `/` (or `/.`),
 *   when there are several sources (after wildcard expansion, as the classic builder and buildah
 *   require), or when the source is a directory; otherwise a file;
 * - a source directory copies its contents; a source path or wildcard match that is a symlink
 *   is followed, symlinks inside copied directories are copied as symlinks;
 * - wildcards match one segment at a time (Go `filepath.Match`); the directory before the first
 *   wildcard must exist; a pattern that matches nothing there copies nothing (as BuildKit);
 * - owners: `--chown` (names from the root's /etc/passwd and /etc/group, or ids; a lone uid is
 *   also the gid) for everything written, created parent directories included; else root for the
 *   context, heredocs, URLs and git, the source's owner for `--from` stages and images;
 * - `--chmod` (octal or symbolic) for copied files and directories; `--exclude` patterns
 *   (dockerignore syntax) on paths relative to the source; `--parents` keeps the source's
 *   directories (up to a `/./` pivot);
 * - ADD: local tar archives (gzip, bzip2, xz, zstd, plain) are extracted, URLs downloaded (mode
 *   0600, `Last-Modified` time, `--checksum`), git repositories cloned.
 * @module
 */
import { KanikoError } from "../errors.ts";
import { log } from "../log.ts";
import { type BuildContext, cleanPath, IgnoreMatcher } from "../context/mod.ts";
import { compareCodePoints } from "../context/pattern.ts";
import type { GitCloneOptions } from "../context/git.ts";
import type { HttpOptions } from "../context/https.ts";
import { lstatNs } from "../fs/meta.ts";
import { childPath, splitPath } from "../rootfs/safe_path.ts";
import { type ModeChange, parseChmod } from "./chmod.ts";
import { type Entry, type Owner, TreeWriter } from "./copy_tree.ts";
import { contextSource, rootSource, type TreeSource } from "./copy_sources.ts";
import { collectItems, type Item } from "./copy_items.ts";
import { extractArchive } from "./archive.ts";
import { resolveChown } from "./copy_owner.ts";

/** Where a COPY/ADD reads from. */
export type CopySource =
  | { from: "context"; context: BuildContext }
  /** An earlier stage's root or an unpacked image (`--from`); `name` is for messages. */
  | { from: "stage" | "image"; root: string; name?: string }
  | { heredoc: { name: string; content: string; mode?: number } }
  | { url: string }
  | { git: string };

/** One COPY or ADD instruction, expanded. */
export interface CopySpec {
  /** The root of the stage being built. */
  root: string;
  kind: "COPY" | "ADD";
  /**
   * The sources, in order. A context, stage or image source reads every path in `patterns`;
   * heredoc, URL and git sources stand alone.
   */
  sources: CopySource[];
  /** The local source arguments (expanded): paths with wildcards, relative to the source. */
  patterns: string[];
  /** The destination argument (expanded); relative to `workdir` unless absolute. */
  dest: string;
  /** The WORKDIR in force (absolute). */
  workdir: string;
  chown?: string;
  chmod?: string;
  parents?: boolean;
  exclude?: string[];
  /** `--link`: nothing changes on disk (the caller may build the layer independently). */
  link?: boolean;
  /** `ADD --checksum`: `sha256:…` of a URL's content, or a git commit. */
  checksum?: string;
  /** `ADD --keep-git-dir`. */
  keepGitDir?: boolean;
  /** Extract archives: default true for ADD of local files, false for URLs; never for COPY. */
  unpack?: boolean;
  /** A fixed mtime (ns since the epoch) for everything written (reproducible builds). */
  reproducibleMtime?: bigint;
  /** The mtime (ns) of directories created on the way (the build's timestamp). */
  createdMtime?: bigint;
  signal?: AbortSignal;
  /** HTTP settings for ADD of URLs. */
  http?: HttpOptions;
  /** git settings for ADD of repositories. */
  git?: GitCloneOptions;
  /** Where downloads and clones are kept while copying (default: the system's temp dir). */
  tempDir?: string;
}

/** What {@link copyStep} did. */
export interface CopyResult {
  /** Paths written or created, relative to the root, sorted (code point order). */
  touched: string[];
}

/** Runs one COPY/ADD into `spec.root`. Errors name the source or destination, not the line. */
export async function copyStep(spec: CopySpec): Promise<CopyResult> {
  checkSpec(spec);
  const chmod: ModeChange | undefined = spec.chmod ? parseChmod(spec.chmod) : undefined;
  const chown: Owner | undefined = spec.chown ? resolveChown(spec.root, spec.chown) : undefined;
  const exclude = spec.exclude?.length ? new IgnoreMatcher(spec.exclude, "--exclude") : undefined;
  const w = new TreeWriter({
    root: spec.root,
    chown,
    chmod,
    mtimeNs: spec.reproducibleMtime,
    createdMtimeNs: spec.createdMtime,
    signal: spec.signal,
  });
  const temp = await Deno.makeTempDir({ dir: spec.tempDir, prefix: "kaniko-copy-" });
  try {
    const trees = new Map<CopySource, TreeSource>();
    const items = await collectItems(spec, exclude, temp, (source) => {
      let tree = trees.get(source);
      if (!tree) trees.set(source, tree = treeOf(source));
      return tree;
    });
    const dest = destination(spec.dest, spec.workdir);
    const asDir = dest.dirSyntax || items.length > 1;
    for (const item of items) await place(w, item, dest.rel, asDir, exclude);
    w.finish();
  } catch (e) {
    throw asKanikoError(spec, e);
  } finally {
    await Deno.remove(temp, { recursive: true }).catch(() => {});
  }
  return { touched: [...w.touched].sort(compareCodePoints) };
}

function treeOf(source: CopySource): TreeSource {
  if ("from" in source) {
    if (source.from === "context") return contextSource(source.context);
    const what = source.from === "stage" ? "stage" : "image";
    return rootSource(source.root, true, source.name ? `${what} ${source.name}` : `the ${what}`);
  }
  throw new Error("not a tree source");
}

function checkSpec(spec: CopySpec): void {
  const remote = spec.sources.filter((s) => "url" in s || "git" in s);
  if (spec.kind === "COPY" && remote.length > 0) {
    throw new KanikoError(`COPY cannot read a URL or a git repository`, {
      hint: "use ADD for remote sources",
    });
  }
  if (spec.checksum !== undefined) {
    if (spec.kind === "COPY") throw new KanikoError("--checksum can't be specified for COPY");
    if (remote.length !== 1 || spec.sources.length !== 1) {
      throw new KanikoError(
        "--checksum requires exactly one source, an HTTP(S) URL or a git repository",
      );
    }
  }
}

/** BuildKit's `pathRelativeToWorkingDir`, keeping whether the destination names a directory. */
export function destination(dest: string, workdir: string): { rel: string; dirSyntax: boolean } {
  const text = dest === "" || dest === "." ? "./" : dest;
  const joined = text.startsWith("/") ? text : `${workdir.replace(/\/*$/, "")}/${text}`;
  const dirSyntax = joined.endsWith("/") || joined.endsWith("/.");
  const clean = cleanPath("/" + joined).slice(1);
  return { rel: clean, dirSyntax };
}

/** Writes one item at the destination. */
async function place(
  w: TreeWriter,
  item: Item,
  destRel: string,
  asDir: boolean,
  exclude: IgnoreMatcher | undefined,
): Promise<void> {
  const shown = `/${destRel}`;
  if (item.kind === "archive") {
    const dir = w.mkdirAll(destRel, shown);
    return await extractArchive(w, item.absolute, dir, item.shown);
  }
  if (item.kind === "parents" || item.entry.meta.type === "dir") {
    const found = w.resolveDestination(destRel, shown);
    if (found.meta !== undefined && found.meta.type !== "dir") {
      throw new KanikoError(`cannot copy the directory ${item.shown} to ${shown}: it is a file`, {
        hint: "remove it first, or copy to another path",
        code: "DEST_NOT_DIR",
      });
    }
    const dir = found.meta ? found.path : w.mkdirAll(destRel, shown);
    if (item.kind === "parents") return await copyParents(w, item, dir);
    return await copyContents(w, item.tree!, item.rel!, dir, { exclude });
  }
  let target: string;
  if (asDir) {
    target = childPath(w.mkdirAll(destRel, shown), item.name);
  } else {
    const found = w.resolveDestination(destRel, shown);
    if (found.meta?.type === "dir") target = childPath(found.path, item.name);
    else {
      const { parent, base } = splitPath(found.path);
      target = childPath(w.mkdirAll(parent, `/${parent}`), base);
    }
  }
  await w.leaf(target, item.entry);
}

/** Options of {@link copyContents}. */
interface ContentsOptions {
  /** `--exclude`, on paths relative to the copied directory. */
  exclude?: IgnoreMatcher;
  /** `--parents`: only paths matching (or under a match) are copied. */
  include?: IgnoreMatcher;
  /** Walk `rel/prefix` only, naming entries `prefix/…`. */
  prefix?: string;
}

/**
 * Copies what is inside the source directory `rel` into the directory `targetDir` (resolved).
 * Directories left out by a filter are created only when something inside them is copied.
 */
async function copyContents(
  w: TreeWriter,
  tree: TreeSource,
  rel: string,
  targetDir: string,
  options: ContentsOptions,
): Promise<void> {
  const made = new Set<string>();
  const prefix = options.prefix ?? "";
  for await (const found of tree.walk(childPath(rel, prefix))) {
    const relative = prefix === "" ? found.relative : `${prefix}/${found.relative}`;
    if (options.include && !options.include.matches(relative)) continue;
    if (options.exclude?.matches(relative)) continue;
    const meta = lstatNs(found.absolute);
    if (meta === undefined) continue;
    ensureParents(w, tree, rel, targetDir, relative, made);
    const entry: Entry = { absolute: found.absolute, meta, keepOwner: tree.keepOwner };
    const target = childPath(targetDir, relative);
    if (meta.type === "dir") {
      w.directory(target, entry, true);
      made.add(relative);
    } else {
      await w.leaf(target, entry);
    }
  }
}

/**
 * Creates (or takes over) the directories above `relative` in the destination with the metadata
 * of the source's directories, unless already done (`made`).
 */
function ensureParents(
  w: TreeWriter,
  tree: TreeSource,
  rel: string,
  targetDir: string,
  relative: string,
  made: Set<string>,
): void {
  const parts = relative.split("/");
  for (let i = 1; i < parts.length; i++) {
    const dir = parts.slice(0, i).join("/");
    if (made.has(dir)) continue;
    const src = tree.follow(childPath(rel, dir));
    const entry: Entry = { absolute: src.absolute, meta: src.meta, keepOwner: tree.keepOwner };
    w.directory(childPath(targetDir, dir), entry, true);
    made.add(dir);
  }
}

/** `COPY --parents`: the matched paths with their directories, relative to the pivot. */
async function copyParents(
  w: TreeWriter,
  item: Extract<Item, { kind: "parents" }>,
  targetDir: string,
): Promise<void> {
  const { tree, pivot, literal, prefix, include } = item;
  if (literal === undefined) {
    return await copyContents(w, tree, pivot, targetDir, { include, prefix });
  }
  const found = literal === "" ? tree.follow(pivot) : tree.lookup(childPath(pivot, literal));
  if (found === undefined) {
    throw new KanikoError(`${JSON.stringify(item.shown)}: not found in ${tree.label}`, {
      code: "SOURCE_NOT_FOUND",
      hint: "check the path",
    });
  }
  const made = new Set<string>();
  if (literal !== "") ensureParents(w, tree, pivot, targetDir, literal, made);
  const entry: Entry = { absolute: found.absolute, meta: found.meta, keepOwner: tree.keepOwner };
  if (found.meta.type !== "dir") return await w.leaf(childPath(targetDir, literal), entry);
  if (literal !== "") w.directory(childPath(targetDir, literal), entry, true);
  await copyContents(w, tree, found.rel, childPath(targetDir, literal), {});
}

/** Rewords unexpected failures as one-line errors naming the instruction. */
function asKanikoError(spec: CopySpec, e: unknown): unknown {
  if (e instanceof KanikoError) return e;
  if (spec.signal?.aborted) return e;
  const message = e instanceof Error ? e.message : String(e);
  log.debug(`${spec.kind} failed`, { error: e });
  return new KanikoError(`${spec.kind} to ${spec.dest}: ${message}`, { cause: e });
}
