/**
 * Where COPY and ADD read local sources from, behind one interface ({@link TreeSource}):
 *
 * - the build context ({@link contextSource}), read through lib/context: `.dockerignore`d paths
 *   are invisible, symlinks are followed only inside the context;
 * - a directory tree ({@link rootSource}): an earlier stage's root, an unpacked image
 *   (`COPY --from`), a git checkout. Symlinks are resolved like a chroot (absolute targets from
 *   the tree's root), so `/usr/bin/x -> /bin/y` in a stage means the stage's `/bin/y`.
 *
 * As in BuildKit, a source path (and each wildcard match) is followed when it is a symlink;
 * inside a copied directory symlinks are copied as symlinks. Wildcards are matched one path
 * segment at a time with Go's `filepath.Match`; the directory before the first wildcard must
 * exist, and a pattern matching nothing in it matches nothing (no error, as BuildKit).
 * @module
 */
import { KanikoError } from "../errors.ts";
import {
  type BuildContext,
  contextRelative,
  goMatch,
  hasWildcards,
  resolveSources,
  resolveVisible,
  walkContext,
} from "../context/mod.ts";
import { compareCodePoints } from "../context/pattern.ts";
import { type FileMeta, lstatNs } from "../fs/meta.ts";
import { resolveInContext } from "../context/resolve.ts";
import { childPath, joinRoot, splitPath } from "../rootfs/safe_path.ts";
import { resolveInRoot } from "./copy_tree.ts";

/** A source path a pattern matched (not followed yet). */
export interface SourceMatch {
  /** Path relative to the tree's root. */
  rel: string;
  /** The name it gets in a directory destination (the last component, before following). */
  name: string;
  /** Path relative to the directory before the first wildcard (for `--exclude`); `""` if none. */
  fromBase: string;
}

/** A source path followed to what it names. */
export interface Followed {
  rel: string;
  absolute: string;
  meta: FileMeta;
}

/** An entry below a source directory. */
export interface WalkItem {
  /** Path relative to the walked directory. */
  relative: string;
  absolute: string;
}

/** A tree COPY/ADD reads from. */
export interface TreeSource {
  /** Whether copied entries keep their owner (stages, images) or become root's (context). */
  keepOwner: boolean;
  /** Names the tree in messages. */
  label: string;
  /** The paths a source argument names (wildcards expanded), sorted. */
  match(pattern: string): Promise<SourceMatch[]>;
  /** Follows `rel` (symlinks resolved); throws `SOURCE_NOT_FOUND` when it does not exist. */
  follow(rel: string, shown?: string): Followed;
  /** `rel` itself (a symlink is not followed), or undefined when it does not exist. */
  lookup(rel: string): Followed | undefined;
  /** The entries below the directory `rel` (followed), sorted, parents before children. */
  walk(rel: string): AsyncIterable<WalkItem>;
}

function baseOf(rel: string): string {
  return rel.slice(rel.lastIndexOf("/") + 1);
}

/** Splits a cleaned relative pattern at its first wildcard segment. */
function splitPattern(rel: string): { base: string; rest: string[] } | undefined {
  if (!hasWildcards(rel)) return undefined;
  const segments = rel.split("/");
  const first = segments.findIndex(hasWildcards);
  return {
    base: first === 0 ? "." : segments.slice(0, first).join("/"),
    rest: segments.slice(first),
  };
}

function relativeTo(path: string, base: string): string {
  if (base === "." || base === "") return path;
  return path.startsWith(base + "/") ? path.slice(base.length + 1) : path;
}

/** The build context as a {@link TreeSource}. */
export function contextSource(context: BuildContext): TreeSource {
  return {
    keepOwner: false,
    label: `the build context ${context.description}`,
    async match(pattern: string): Promise<SourceMatch[]> {
      const rel = contextRelative(pattern);
      const split = splitPattern(rel);
      if (split === undefined) {
        const [path] = await resolveSources(context, pattern);
        return [{ rel: path, name: baseOf(path), fromBase: "" }];
      }
      const base = resolveVisible(context, split.base, pattern).path;
      const found = await resolveSources(context, pattern);
      return found.map((m) => ({ rel: m, name: baseOf(m), fromBase: relativeTo(m, base) }));
    },
    follow(rel: string, shown = rel): Followed {
      const resolved = resolveVisible(context, rel, shown);
      const meta = lstatNs(resolved.absolute);
      if (meta === undefined) throw notFound(shown, this.label);
      return { rel: resolved.path, absolute: resolved.absolute, meta };
    },
    lookup(rel: string): Followed | undefined {
      const resolved = resolveInContext(context, contextRelative(rel), false);
      const meta = resolved ? lstatNs(resolved.absolute) : undefined;
      return meta && resolved
        ? { rel: resolved.path, absolute: resolved.absolute, meta }
        : undefined;
    },
    async *walk(rel: string): AsyncGenerator<WalkItem> {
      for await (const e of walkContext(context, rel)) {
        yield { relative: e.relative, absolute: e.absolute };
      }
    },
  };
}

function notFound(shown: string, label: string): KanikoError {
  return new KanikoError(`${JSON.stringify(shown)}: not found in ${label}`, {
    code: "SOURCE_NOT_FOUND",
    hint: "check the path",
  });
}

/** Cleans a source path inside a tree: `/a/../b/` → `b`, the root is `""`. */
function cleanRel(path: string): string {
  const rel = contextRelative(path);
  return rel === "." ? "" : rel;
}

/**
 * A directory tree (a stage's root, an unpacked image, a checkout) as a {@link TreeSource};
 * `label` names it in messages (`stage "build"`).
 */
export function rootSource(root: string, keepOwner: boolean, label: string): TreeSource {
  const follow = (rel: string, shown: string = rel): Followed => {
    const { path, meta } = resolveInRoot(root, cleanRel(rel), JSON.stringify(shown));
    if (meta === undefined) throw notFound(shown, label);
    return { rel: path, absolute: joinRoot(root, path), meta };
  };
  return {
    keepOwner,
    label,
    match: (pattern: string) => Promise.resolve(matchInRoot(root, pattern, follow)),
    follow,
    lookup(rel: string): Followed | undefined {
      const { parent, base } = splitPath(cleanRel(rel));
      const dir = resolveInRoot(root, parent, JSON.stringify(rel));
      if (dir.meta?.type !== "dir") return undefined;
      const path = childPath(dir.path, base);
      const meta = lstatNs(joinRoot(root, path));
      return meta ? { rel: path, absolute: joinRoot(root, path), meta } : undefined;
    },
    async *walk(rel: string): AsyncGenerator<WalkItem> {
      await Promise.resolve();
      const start = follow(rel);
      const stack: { dir: string; names: string[]; next: number }[] = [];
      const prefix = start.rel;
      stack.push({ dir: prefix, names: sortedNames(start.absolute), next: 0 });
      while (stack.length > 0) {
        const frame = stack[stack.length - 1];
        if (frame.next >= frame.names.length) {
          stack.pop();
          continue;
        }
        const path = childPath(frame.dir, frame.names[frame.next++]);
        const absolute = joinRoot(root, path);
        yield { relative: relativeTo(path, prefix === "" ? "." : prefix), absolute };
        if (lstatNs(absolute)?.type === "dir") {
          stack.push({ dir: path, names: sortedNames(absolute), next: 0 });
        }
      }
    },
  };
}

/** Expands `pattern` inside a directory tree (see the module notes). */
function matchInRoot(
  root: string,
  pattern: string,
  follow: (rel: string, shown?: string) => Followed,
): SourceMatch[] {
  const rel = cleanRel(pattern);
  const split = splitPattern(rel === "" ? "." : rel);
  if (split === undefined) {
    follow(rel, pattern);
    return [{ rel, name: baseOf(rel), fromBase: "" }];
  }
  const base = follow(split.base === "." ? "" : split.base, pattern);
  if (base.meta.type !== "dir") return [];
  const out: SourceMatch[] = [];
  const visit = (dir: string, depth: number, from: string) => {
    for (const name of sortedNames(joinRoot(root, dir))) {
      if (!goMatch(split.rest[depth], name)) continue;
      const path = childPath(dir, name);
      const fromBase = from === "" ? name : `${from}/${name}`;
      if (depth === split.rest.length - 1) {
        out.push({ rel: path, name, fromBase });
      } else if (lstatNs(joinRoot(root, path))?.type === "dir") {
        visit(path, depth + 1, fromBase);
      }
    }
  };
  visit(base.rel, 0, "");
  return out;
}

function sortedNames(dir: string): string[] {
  const names: string[] = [];
  try {
    for (const e of Deno.readDirSync(dir)) names.push(e.name);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return [];
    throw e;
  }
  return names.sort(compareCodePoints);
}
