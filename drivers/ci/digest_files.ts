/**
 * The digest files of the `ci` driver: `--digests-from=DIR` holds one `<slug>.digest` file per
 * platform (`linux-amd64.digest`, `linux-arm-v7.digest`), as the per-platform jobs wrote them with
 * `--digest-file` (`sha256:…`) or `--image-name-with-digest-file` (`registry/repo[:tag]@sha256:…`).
 * @module
 */
import { join } from "node:path";
import { KanikoError, UsageError } from "../../lib/errors.ts";
import { log } from "../../lib/log.ts";
import { parseDigest } from "../../lib/oci/digest.ts";
import { parseReference, Reference } from "../../lib/registry/reference.ts";
import type { MultiPlatformBuild, PlatformTarget } from "../types.ts";

/** Longest digest file we read: a reference with a digest is far shorter. */
const MAX_FILE = 4096;

/** One platform's digest, and the repository its image is in. */
export interface DigestRef {
  target: PlatformTarget;
  /** The file it was read from. */
  path: string;
  /** `registry/repository@digest`: the file's repository, else the first destination's. */
  reference: Reference;
}

/** One platform and what is wrong with it. */
export interface Problem {
  target: PlatformTarget;
  problem: string;
}

/** The digest file of a platform in `dir`. */
export function digestFilePath(dir: string, target: PlatformTarget): string {
  return join(dir, `${target.slug}.digest`);
}

/** `--digests-from`, checked: set, and an existing directory. */
export async function digestsDir(build: MultiPlatformBuild): Promise<string> {
  const dir = build.opts.digestsFrom;
  if (!dir) {
    throw new UsageError("the ci driver needs --digests-from=DIR", {
      hint: "DIR holds one <os>-<arch>[-<variant>].digest file per platform " +
        "(e.g. linux-amd64.digest, linux-arm-v7.digest) written by the per-platform jobs",
    });
  }
  const info = await Deno.stat(dir).catch(() => undefined);
  if (!info?.isDirectory) {
    throw new KanikoError(
      `--digests-from=${dir}: ${info ? "not a directory" : "no such directory"}`,
      {
        hint: "collect the per-platform jobs' digest files into it first",
      },
    );
  }
  return dir;
}

/**
 * Reads every target's digest file. The result has one entry per target, in target order:
 * its {@link DigestRef}, or a {@link Problem} (missing file, bad digest, no repository).
 */
export async function readDigestFiles(
  build: MultiPlatformBuild,
  dir: string,
): Promise<Array<DigestRef | Problem>> {
  const destination = build.opts.destinations[0];
  const fallback = destination ? parseReference(destination) : undefined;
  await warnUnused(build, dir);
  return await Promise.all(build.targets.map((target) => readOne(target, dir, fallback)));
}

async function readOne(
  target: PlatformTarget,
  dir: string,
  fallback: Reference | undefined,
): Promise<DigestRef | Problem> {
  const path = digestFilePath(dir, target);
  let text: string;
  try {
    const bytes = await Deno.readFile(path);
    if (bytes.byteLength > MAX_FILE) return { target, problem: `${path} is not a digest file` };
    text = new TextDecoder().decode(bytes).trim();
  } catch (e) {
    const problem = e instanceof Deno.errors.NotFound
      ? `missing file ${path}`
      : `cannot read ${path}: ${(e as Error).message}`;
    return { target, problem };
  }
  const parsed = parseDigestText(text);
  if (typeof parsed === "string") return { target, problem: `bad digest in ${path}: ${parsed}` };
  const base = parsed.repository ?? fallback;
  if (!base) {
    return { target, problem: `${path} names no repository and no --destination is given` };
  }
  const reference = new Reference({
    registry: base.registry,
    repository: base.repository,
    digest: parsed.digest,
  });
  return { target, path, reference };
}

/**
 * Parses a digest file's content (already trimmed): `sha256:…`, `repo@sha256:…` or
 * `registry/repo:tag@sha256:…`. Returns what is wrong, as text, when it is none of them.
 */
export function parseDigestText(text: string): { digest: string; repository?: Reference } | string {
  const shown = JSON.stringify(text.length > 100 ? `${text.slice(0, 97)}...` : text);
  if (text === "") return "the file is empty";
  if (/\s/.test(text)) return `${shown} is more than one word`;
  if (!text.includes("@")) {
    try {
      parseDigest(text);
      return { digest: text };
    } catch {
      return `${shown} is not sha256:<64 hex digits> or REPOSITORY@sha256:<64 hex digits>`;
    }
  }
  let reference: Reference;
  try {
    reference = parseReference(text);
    parseDigest(reference.digest ?? "");
  } catch (e) {
    return `${shown}: ${(e as Error).message}`;
  }
  return { digest: reference.digest!, repository: reference };
}

/** Warns about `.digest` files of platforms the build does not list (a likely typo). */
async function warnUnused(build: MultiPlatformBuild, dir: string): Promise<void> {
  const wanted = new Set(build.targets.map((t) => `${t.slug}.digest`));
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.name.endsWith(".digest") && !wanted.has(entry.name)) {
        const path = join(dir, entry.name);
        log.warnOnce(`ci|${path}`, `ignoring ${path}: its platform is not in --multi-platform`);
      }
    }
  } catch {
    // Unreadable directory: each file's own read reports it.
  }
}

/** True for a {@link Problem}. */
export function isProblem(x: DigestRef | Problem | unknown): x is Problem {
  return typeof x === "object" && x !== null && "problem" in x;
}
