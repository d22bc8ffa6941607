/**
 * Reading a build context as COPY and ADD see it: paths are clamped to the root as Docker clamps
 * them (`../x` and `/x` both mean `<root>/x`), symlinks are followed only while they stay inside
 * the root (an escape is an error, never a read outside), and what `.dockerignore` excludes is
 * invisible, except directories that hold re-included paths (BuildKit transfers those).
 * @module
 */
import { KanikoError } from "../errors.ts";
import type { ParentMatches } from "./dockerignore.ts";
import {
  BadPatternError,
  cleanPath,
  compareCodePoints,
  goMatch,
  hasWildcards,
  validatePattern,
} from "./pattern.ts";
import type { BuildContext } from "./types.ts";

const MAX_LINKS = 40;

/** A context path resolved on disk. */
export interface ResolvedPath {
  /** The real path relative to the root (`.` for the root), symlinks resolved. */
  path: string;
  /** The absolute path on disk. */
  absolute: string;
  /** `lstat` of the resolved path (a symlink only when the last link was not followed). */
  info: Deno.FileInfo;
}

/** One entry yielded by {@link walkContext}. */
export interface WalkEntry {
  /** The real path relative to the context root, slash-separated. */
  path: string;
  /** The path relative to the walked directory. */
  relative: string;
  /** The absolute path on disk. */
  absolute: string;
  /** `lstat` information (symlinks are not followed inside a walk). */
  info: Deno.FileInfo;
}

/** The context-relative form of a COPY/ADD source: cleaned, clamped to the root, no leading `/`. */
export function contextRelative(path: string): string {
  const clean = cleanPath("/" + path).slice(1);
  return clean === "" ? "." : clean;
}

/**
 * Resolves a COPY/ADD source (already expanded, may contain globs) inside the context. A path
 * without wildcards is returned as given (cleaned) and must exist and be visible, else a
 * {@link KanikoError} coded `SOURCE_NOT_FOUND` is thrown. A pattern is matched one path
 * segment at a time with Go's `filepath.Match` (as BuildKit: the directories before the first
 * wildcard are resolved, following symlinks inside the root; below them nothing is followed, and
 * a matching directory is not searched further); its matches are returned as real paths, sorted,
 * possibly none.
 */
export async function resolveSources(context: BuildContext, pattern: string): Promise<string[]> {
  await Promise.resolve();
  const rel = contextRelative(pattern);
  if (!hasWildcards(rel)) {
    resolveVisible(context, rel, pattern);
    return [rel];
  }
  const segments = rel.split("/");
  const first = segments.findIndex(hasWildcards);
  const baseRel = first === 0 ? "." : segments.slice(0, first).join("/");
  const rest = segments.slice(first);
  const base = resolveInContext(context, baseRel, true);
  if (base === null || !base.info.isDirectory || !isVisible(context, base.path, base.info)) {
    return [];
  }
  const restPattern = rest.join("/");
  try {
    validatePattern(restPattern);
  } catch (e) {
    if (e instanceof BadPatternError) {
      throw new KanikoError(`invalid source pattern ${JSON.stringify(pattern)}: ${e.message}`, {
        hint: "check the brackets and escapes (Go filepath.Match syntax)",
      });
    }
    throw e;
  }
  const out: string[] = [];
  const visit = (dirReal: string, relParts: string[]) => {
    for (const name of sortedNames(absoluteOf(context, dirReal))) {
      const real = join(dirReal, name);
      const info = lstatOrNull(absoluteOf(context, real));
      if (info === null || !isVisible(context, real, info)) continue;
      const parts = [...relParts, name];
      if (parts.length === rest.length && goMatch(restPattern, parts.join("/"))) out.push(real);
      else if (info.isDirectory && parts.length < rest.length) visit(real, parts);
    }
  };
  visit(base.path, []);
  return out;
}

/**
 * Resolves `path` (relative to the root; clamped) following every symlink inside the root,
 * and checks that it exists and is not excluded. Throws `SOURCE_NOT_FOUND` otherwise.
 */
export function resolveVisible(context: BuildContext, path: string, shown = path): ResolvedPath {
  const rel = contextRelative(path);
  const resolved = resolveInContext(context, rel, true, shown);
  if (resolved === null) throw notFound(context, shown);
  return resolved;
}

/**
 * The path on disk of a context path, every symlink followed inside the root (absolute, for
 * reading a COPY source). Throws `SOURCE_NOT_FOUND` for missing or excluded paths.
 */
export function realPath(context: BuildContext, path: string): string {
  return resolveVisible(context, path).absolute;
}

/**
 * Walks a directory of the context (symlinks in `dir` followed inside the root), yielding every
 * visible entry below it in sorted order, parents before children; symlinks below `dir` are
 * yielded as they are. An excluded directory is entered only when `.dockerignore` exceptions
 * may re-include something in it, and is yielded just before the first such entry.
 */
export async function* walkContext(
  context: BuildContext,
  dir: string,
): AsyncGenerator<WalkEntry, void, undefined> {
  const start = resolveVisible(context, dir);
  if (!start.info.isDirectory) {
    throw new KanikoError(`${JSON.stringify(dir)} is not a directory in the build context`);
  }
  const ignore = context.ignore;
  let parentInfo: ParentMatches | undefined;
  if (start.path !== ".") {
    const parts = start.path.split("/");
    for (let i = 0; i < parts.length; i++) {
      parentInfo = ignore.matchesWithParent(parts.slice(0, i + 1).join("/"), parentInfo).info;
    }
  }
  const prefixLength = start.path === "." ? 0 : start.path.length + 1;
  const entry = (real: string, info: Deno.FileInfo): WalkEntry => ({
    path: real,
    relative: real.slice(prefixLength),
    absolute: absoluteOf(context, real),
    info,
  });
  // Depth-first with an explicit stack (nested generators would cost a hop per level per entry).
  interface Frame {
    dir: string;
    names: string[];
    next: number;
    info: ParentMatches | undefined;
    /** The entry of an excluded directory entered for its exceptions, until yielded. */
    held?: WalkEntry;
  }
  const pending: WalkEntry[] = [];
  const stack: Frame[] = [{
    dir: start.path,
    names: sortedNames(start.absolute),
    next: 0,
    info: parentInfo,
  }];
  while (stack.length > 0) {
    const frame = stack[stack.length - 1];
    if (frame.next >= frame.names.length) {
      stack.pop();
      if (frame.held && pending[pending.length - 1] === frame.held) pending.pop();
      continue;
    }
    const name = frame.names[frame.next++];
    const real = join(frame.dir, name);
    const abs = absoluteOf(context, real);
    const stat = lstatOrNull(abs);
    if (stat === null) continue;
    const m = ignore.isEmpty ? NOT_EXCLUDED : ignore.matchesWithParent(real, frame.info);
    if (m.excluded) {
      if (stat.isDirectory && ignore.mayContainExceptions(real)) {
        const held = entry(real, stat);
        pending.push(held);
        stack.push({ dir: real, names: sortedNames(abs), next: 0, info: m.info, held });
      }
      continue;
    }
    while (pending.length > 0) yield pending.shift()!;
    yield entry(real, stat);
    if (stat.isDirectory) {
      stack.push({ dir: real, names: sortedNames(abs), next: 0, info: m.info });
    }
  }
}

const NOT_EXCLUDED = { excluded: false, info: [] as ParentMatches };

/**
 * Follows `rel` component by component from the root. Symlinks (intermediate ones, and the last
 * one when `followLast`) are resolved inside the root: an absolute target must lie under the
 * root, a relative one must not climb above it; an escape throws. Excluded components make the
 * path missing (null).
 */
export function resolveInContext(
  context: BuildContext,
  rel: string,
  followLast: boolean,
  shown: string = rel,
): ResolvedPath | null {
  const root = context.root;
  const stack: string[] = [];
  const queue = rel === "." ? [] : rel.split("/");
  let links = 0;
  let lastLink: { link: string; target: string } | undefined;
  let info: Deno.FileInfo | null = lstatOrNull(root);
  if (info === null) throw notFound(context, shown);
  while (queue.length > 0) {
    const part = queue.shift()!;
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (stack.length === 0) throw escape(context, shown, lastLink?.link, lastLink?.target);
      stack.pop();
      continue;
    }
    const candidate = [...stack, part].join("/");
    info = lstatOrNull(absoluteOf(context, candidate));
    if (info === null || !isVisible(context, candidate, info)) return null;
    if (info.isSymlink && (queue.length > 0 || followLast)) {
      if (++links > MAX_LINKS) {
        throw new KanikoError(
          `${JSON.stringify(shown)}: too many levels of symbolic links in the build context`,
        );
      }
      const target = Deno.readLinkSync(absoluteOf(context, candidate));
      lastLink = { link: candidate, target };
      if (target.startsWith("/")) {
        // An absolute target must name the root (or an alias of it) component by component;
        // what follows is resolved like a relative path from the root.
        const parts = target.split("/").filter((p) => p !== "" && p !== ".");
        let inside: string[] | undefined;
        for (const base of [root, ...(rootAliases.get(context) ?? [])]) {
          const baseParts = base.split("/").filter((p) => p !== "");
          if (baseParts.every((p, i) => parts[i] === p)) {
            inside = parts.slice(baseParts.length);
            break;
          }
        }
        if (inside === undefined) throw escape(context, shown, candidate, target);
        stack.length = 0;
        queue.unshift(...inside);
      } else {
        queue.unshift(...target.split("/"));
      }
      continue;
    }
    if (queue.length > 0 && !info.isDirectory) return null;
    stack.push(part);
  }
  const path = stack.length === 0 ? "." : stack.join("/");
  return { path, absolute: absoluteOf(context, path), info: info ?? Deno.lstatSync(root) };
}

const rootAliases = new WeakMap<BuildContext, string[]>();

/**
 * Other absolute paths of the context root (e.g. `/workspace` when it is a symlink to the real
 * root): absolute symlink targets under them are inside the context too.
 */
export function setRootAliases(context: BuildContext, aliases: string[]): void {
  rootAliases.set(context, aliases.filter((a) => a !== context.root && a !== "/"));
}

const descendantCache = new WeakMap<BuildContext, Map<string, boolean>>();

/**
 * Whether a context path exists for COPY: not excluded, or an excluded directory that holds a
 * re-included path.
 */
export function isVisible(context: BuildContext, real: string, info: Deno.FileInfo): boolean {
  if (real === "." || context.ignore.isEmpty || !context.ignore.matches(real)) return true;
  if (!info.isDirectory || !context.ignore.mayContainExceptions(real)) return false;
  let cache = descendantCache.get(context);
  if (!cache) descendantCache.set(context, cache = new Map());
  const known = cache.get(real);
  if (known !== undefined) return known;
  let found = false;
  for (const name of sortedNames(absoluteOf(context, real))) {
    const child = join(real, name);
    const childInfo = lstatOrNull(absoluteOf(context, child));
    if (childInfo !== null && isVisible(context, child, childInfo)) {
      found = true;
      break;
    }
  }
  cache.set(real, found);
  return found;
}

function notFound(context: BuildContext, shown: string): KanikoError {
  return new KanikoError(
    `${JSON.stringify(shown)}: not found in the build context ${context.description}`,
    {
      code: "SOURCE_NOT_FOUND",
      hint: !context.ignore.isEmpty
        ? "check the path, and that .dockerignore does not exclude it"
        : "check the path (it is relative to the context root)",
    },
  );
}

function escape(context: BuildContext, shown: string, link?: string, target?: string): KanikoError {
  const via = link
    ? ` (the symlink ${JSON.stringify(link)} points to ${JSON.stringify(target)})`
    : "";
  return new KanikoError(
    `${JSON.stringify(shown)} leads outside the build context ${context.description}${via}`,
    {
      code: "SOURCE_ESCAPES_CONTEXT",
      hint: "COPY and ADD may only read files inside the context; copy the target into it",
    },
  );
}

function join(dir: string, name: string): string {
  return dir === "." ? name : `${dir}/${name}`;
}

function absoluteOf(context: BuildContext, real: string): string {
  if (real === ".") return context.root;
  return context.root === "/" ? `/${real}` : `${context.root}/${real}`;
}

function sortedNames(abs: string): string[] {
  const names: string[] = [];
  try {
    for (const e of Deno.readDirSync(abs)) names.push(e.name);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return [];
    throw e;
  }
  return names.sort(compareCodePoints);
}

function lstatOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.lstatSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return null;
    throw e;
  }
}
