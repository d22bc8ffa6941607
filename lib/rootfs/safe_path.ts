/**
 * Path safety shared by everything that writes archive entries into a directory (image layers in
 * {@link ./apply.ts}, build contexts in `lib/context/extract.ts`):
 *
 * - {@link cleanPath}: an entry name as a clean relative path, or why it is unsafe (a NUL byte, an
 *   absolute name where those are refused, `..` that climbs out).
 * - {@link resolveDir}: a directory path resolved component by component inside a root with
 *   chroot semantics — a symlink in the path is followed *inside* the root (`/lib -> usr/lib`
 *   lands on `ROOT/usr/lib`; `..` and absolute targets stop at the root, as if the root were
 *   `/`), never through the host — or refused (`symlinks: "refuse"`). Nothing is created.
 *
 * Paths inside roots are relative, slash-separated, without a leading `/` or `./`; `""` is the
 * root itself.
 * @module
 */
import { lstatNs } from "../fs/meta.ts";

/** Why {@link cleanPath} refused a name. */
export type PathProblem = "nul" | "absolute" | "dotdot" | "escape";

/** Options of {@link cleanPath}. */
export interface CleanPathOptions {
  /**
   * `strip` (default): `/etc/x` is `etc/x`, as Docker, containerd and GNU tar read layer names.
   * `refuse`: an absolute name is a problem.
   */
  absolute?: "strip" | "refuse";
  /**
   * `resolve` (default): `a/../b` is `b`, and only a `..` that climbs above the root is a problem
   * (`escape`). `refuse`: any `..` component is a problem (`dotdot`).
   */
  dotdot?: "resolve" | "refuse";
}

/**
 * `name` as a clean relative path (`""` for the root itself: `.`, `./`, `/`), or the problem that
 * makes it unsafe. Empty and `.` components are dropped; `..` is resolved lexically.
 */
export function cleanPath(
  name: string,
  options: CleanPathOptions = {},
): { path: string; problem?: undefined } | { path?: undefined; problem: PathProblem } {
  if (name.includes("\0")) return { problem: "nul" };
  if (name.startsWith("/") && options.absolute === "refuse") return { problem: "absolute" };
  const parts: string[] = [];
  for (const part of name.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (options.dotdot === "refuse") return { problem: "dotdot" };
      if (parts.length === 0) return { problem: "escape" };
      parts.pop();
      continue;
    }
    parts.push(part);
  }
  return { path: parts.join("/") };
}

/** `root` joined with the relative path `rel` (`""` is the root). */
export function joinRoot(root: string, rel: string): string {
  if (rel === "") return root;
  return root.endsWith("/") ? root + rel : `${root}/${rel}`;
}

/** `rel`'s parent (`""` for a top-level name) and last component. */
export function splitPath(rel: string): { parent: string; base: string } {
  const i = rel.lastIndexOf("/");
  return i < 0 ? { parent: "", base: rel } : { parent: rel.slice(0, i), base: rel.slice(i + 1) };
}

/** `parent/base`, or `base` at the root. */
export function childPath(parent: string, base: string): string {
  return parent === "" ? base : `${parent}/${base}`;
}

/** True when `rel` is `dir` or lies under it (`dir` `""` holds everything). */
export function isWithin(rel: string, dir: string): boolean {
  return dir === "" || rel === dir || rel.startsWith(dir + "/");
}

/** Linux's limit on symlinks followed in one path resolution (`MAXSYMLINKS`). */
export const MAX_SYMLINKS = 40;

/** Why {@link resolveDir} failed. */
export class ResolveError extends Error {
  /** `loop`: too many symlinks; `notdir`: a component is not a directory; `symlink`: refused. */
  readonly reason: "loop" | "notdir" | "symlink";
  /** The component (relative path, as reached) at fault. */
  readonly at: string;

  constructor(reason: "loop" | "notdir" | "symlink", at: string) {
    super(
      reason === "loop"
        ? `too many levels of symbolic links at ${JSON.stringify(at)}`
        : reason === "notdir"
        ? `${JSON.stringify(at)} is not a directory`
        : `${JSON.stringify(at)} is a symlink`,
    );
    this.name = "ResolveError";
    this.reason = reason;
    this.at = at;
  }
}

/** Where a directory path landed inside the root. */
export interface ResolvedDir {
  /** The resolved path, relative to the root, free of symlinks (`""`: the root). */
  path: string;
  /**
   * Leading components of {@link path} that exist as real directories; the rest do not exist yet
   * (they are what a writer creates, in order).
   */
  existing: number;
}

/** Options of {@link resolveDir}. */
export interface ResolveDirOptions {
  /** `follow` (default): symlinks are followed inside the root; `refuse`: a symlink is an error. */
  symlinks?: "follow" | "refuse";
  /** Paths already known to be real directories (skips their `lstat`). */
  knownDirs?: Set<string>;
}

/**
 * Resolves the directory path `rel` inside `root` with chroot semantics: each component is
 * looked at with `lstat`; a symlink's target is spliced in (absolute targets restart at the
 * root, `..` never climbs above it); a missing component and everything after it is reported as
 * not existing (its `..` components are still applied lexically). Throws a {@link ResolveError}
 * for a component that is a file (or a symlink with `symlinks: "refuse"`) and for more than
 * {@link MAX_SYMLINKS} links.
 */
export function resolveDir(
  root: string,
  rel: string,
  options: ResolveDirOptions = {},
): ResolvedDir {
  const follow = (options.symlinks ?? "follow") === "follow";
  const known = options.knownDirs;
  const out: string[] = [];
  let existing = 0;
  let links = 0;
  const todo = rel === "" ? [] : rel.split("/").reverse();
  while (todo.length > 0) {
    const c = todo.pop()!;
    if (c === "" || c === ".") continue;
    if (c === "..") {
      out.pop();
      if (existing > out.length) existing = out.length;
      continue;
    }
    out.push(c);
    if (existing < out.length - 1) continue; // under a missing directory
    const path = out.join("/");
    if (known?.has(path)) {
      existing = out.length;
      continue;
    }
    const meta = lstatNs(joinRoot(root, path));
    if (meta === undefined) continue; // missing: this one and the rest are to be created
    if (meta.type === "dir") {
      existing = out.length;
      continue;
    }
    if (meta.type !== "symlink") throw new ResolveError("notdir", path);
    if (!follow) throw new ResolveError("symlink", path);
    if (++links > MAX_SYMLINKS) throw new ResolveError("loop", path);
    out.pop();
    const target = Deno.readLinkSync(joinRoot(root, path));
    if (target.startsWith("/")) {
      out.length = 0;
      existing = 0;
    }
    todo.push(...target.split("/").reverse());
  }
  return { path: out.join("/"), existing };
}
