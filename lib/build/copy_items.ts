/**
 * The first half of a COPY/ADD: every source argument turned into the items to write — files and
 * directories found in the context or a stage (wildcards expanded, symlinks followed, `--exclude`
 * applied to wildcard matches), `--parents` selections, local archives to extract (ADD),
 * downloaded URLs, cloned repositories and heredocs. Nothing is written to the root yet; the
 * number of items decides whether the destination is a directory.
 * @module
 */
import { KanikoError } from "../errors.ts";
import { log } from "../log.ts";
import { BadPatternError, cleanPath, hasWildcards, IgnoreMatcher } from "../context/mod.ts";
import type { FileMeta } from "../fs/meta.ts";
import { lstatNs } from "../fs/meta.ts";
import { cloneGitSource, downloadUrl, urlFileName } from "./add_sources.ts";
import { isTarArchive } from "./archive.ts";
import type { CopySource, CopySpec } from "./copy.ts";
import type { Entry } from "./copy_tree.ts";
import { rootSource, type TreeSource } from "./copy_sources.ts";

/** Something to write at the destination. */
export type Item =
  /** A file (or special file) or a directory whose contents are copied. */
  | { kind: "entry"; name: string; entry: Entry; tree?: TreeSource; rel?: string; shown: string }
  /** A local archive (ADD) to extract into the destination directory. */
  | { kind: "archive"; absolute: string; shown: string }
  /**
   * `--parents`: paths under `pivot` matching `include`, with their directories. `literal` is
   * the path when the pattern has no wildcards; `prefix` the directories before the first one.
   */
  | {
    kind: "parents";
    tree: TreeSource;
    pivot: string;
    literal?: string;
    prefix: string;
    include: IgnoreMatcher;
    shown: string;
  };

/** Metadata for content that does not come from a file of the same kind. */
export function syntheticMeta(mode: number, mtimeNs: bigint, size = 0): FileMeta {
  return {
    type: "file",
    mode,
    uid: 0,
    gid: 0,
    size,
    mtimeNs,
    ctimeNs: mtimeNs,
    ino: 0n,
    dev: 0n,
    nlink: 1,
    rdevMajor: 0,
    rdevMinor: 0,
  };
}

/** Collects the items of `spec`, in order; downloads and clones go to `temp`. */
export async function collectItems(
  spec: CopySpec,
  exclude: IgnoreMatcher | undefined,
  temp: string,
  treeOf: (source: CopySource) => TreeSource,
): Promise<Item[]> {
  const items: Item[] = [];
  let n = 0;
  for (const source of spec.sources) {
    spec.signal?.throwIfAborted();
    if ("from" in source) {
      const tree = treeOf(source);
      for (const pattern of spec.patterns) {
        if (spec.parents) items.push(parentsItem(tree, pattern));
        else items.push(...await localItems(spec, tree, pattern, exclude));
      }
    } else if ("heredoc" in source) {
      const { name, content, mode } = source.heredoc;
      const data = new TextEncoder().encode(content);
      const now = BigInt(Date.now()) * 1_000_000n;
      const entry = {
        absolute: "",
        meta: syntheticMeta(mode ?? 0o644, now, data.length),
        keepOwner: false,
        data,
      };
      items.push({ kind: "entry", name, entry, shown: `<<${name}` });
    } else if ("url" in source) {
      items.push(await urlItem(spec, source.url, `${temp}/${n++}`));
    } else {
      items.push(await gitItem(spec, source.git, `${temp}/${n++}`));
    }
  }
  return items;
}

async function localItems(
  spec: CopySpec,
  tree: TreeSource,
  pattern: string,
  exclude: IgnoreMatcher | undefined,
): Promise<Item[]> {
  let matches;
  try {
    matches = await tree.match(pattern);
  } catch (e) {
    if (e instanceof BadPatternError) {
      throw new KanikoError(`invalid source pattern ${JSON.stringify(pattern)}: ${e.message}`, {
        hint: "check the brackets and escapes (Go filepath.Match syntax)",
      });
    }
    throw e;
  }
  if (matches.length === 0) {
    log.warn(`${spec.kind} ${pattern}: no file in ${tree.label} matches; nothing is copied for it`);
  }
  const items: Item[] = [];
  for (const m of matches) {
    if (exclude && m.fromBase !== "" && exclude.matches(m.fromBase)) continue;
    const f = tree.follow(m.rel, pattern);
    const entry: Entry = { absolute: f.absolute, meta: f.meta, keepOwner: tree.keepOwner };
    const shown = m.rel === "" ? "." : m.rel;
    const unpack = spec.kind === "ADD" && spec.unpack !== false;
    if (unpack && f.meta.type === "file" && await isTarArchive(f.absolute, shown)) {
      items.push({ kind: "archive", absolute: f.absolute, shown });
    } else {
      items.push({ kind: "entry", name: m.name, entry, tree, rel: f.rel, shown });
    }
  }
  return items;
}

/** `--parents`: the pivot is the part before `/./` (else the source's root). */
function parentsItem(tree: TreeSource, pattern: string): Item {
  const cut = pattern.indexOf("/./");
  const pivotText = cut < 0 ? "/" : pattern.slice(0, cut);
  const rest = cleanPath("/" + (cut < 0 ? pattern : pattern.slice(cut + 3))).slice(1);
  const pivot = tree.follow(pivotText, pivotText);
  if (pivot.meta.type !== "dir") {
    throw new KanikoError(`--parents ${pattern}: ${JSON.stringify(pivotText)} is not a directory`);
  }
  const segments = rest === "" ? [] : rest.split("/");
  const firstWild = segments.findIndex((s) => hasWildcards(s) || s.includes("**"));
  const literal = firstWild < 0 ? rest : undefined;
  const prefix = segments.slice(0, firstWild < 0 ? 0 : firstWild).join("/");
  const include = new IgnoreMatcher([rest === "" ? "*" : rest], "--parents");
  return { kind: "parents", tree, pivot: pivot.rel, literal, prefix, include, shown: pattern };
}

async function urlItem(spec: CopySpec, url: string, dir: string): Promise<Item> {
  await Deno.mkdir(dir, { mode: 0o700 });
  const got = await downloadUrl(url, dir, {
    checksum: spec.checksum,
    http: spec.http,
    signal: spec.signal,
  });
  const shown = url;
  if (spec.unpack === true && await isTarArchive(got.path, urlFileName(url))) {
    return { kind: "archive", absolute: got.path, shown };
  }
  const size = (await Deno.stat(got.path)).size;
  const entry: Entry = {
    absolute: got.path,
    meta: syntheticMeta(0o600, got.mtimeNs, size),
    keepOwner: false,
  };
  return { kind: "entry", name: got.name, entry, shown };
}

async function gitItem(spec: CopySpec, url: string, dir: string): Promise<Item> {
  await Deno.mkdir(dir, { mode: 0o700 });
  const checkout = await cloneGitSource(url, dir, {
    keepGitDir: spec.keepGitDir,
    checksum: spec.checksum,
    git: spec.git,
    signal: spec.signal,
  });
  const tree = rootSource(checkout.dir, false, `the repository ${url}`);
  const meta = lstatNs(checkout.dir)!;
  const entry: Entry = { absolute: checkout.dir, meta, keepOwner: false };
  return { kind: "entry", name: "", entry, tree, rel: "", shown: url };
}
