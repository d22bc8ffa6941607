/**
 * How the Jobs get the build's sources. Git, `http(s)://` and `oci://` contexts pass through
 * unchanged (each Job fetches them). A local context (a directory, or a `tar://` archive already
 * extracted) is packed as a gzip tar — the files `.dockerignore` lets through, plus the
 * Dockerfile and the ignore file — and pushed as an OCI artifact to the first destination's
 * repository; the Jobs get `--context=oci://REGISTRY/REPO@sha256:…`. A Dockerfile outside the
 * context travels in the artifact as `.kaniko-deno/Dockerfile`, with an ignore file next to it
 * that hides that directory from COPY.
 * @module
 */
import { join } from "node:path";
import type { BuildOptions } from "../../lib/cli/options.ts";
import { locateDockerfile } from "../../lib/context/dockerfile.ts";
import {
  type BuildContext,
  parseContextSpec,
  pushContextArtifact,
  walkContext,
} from "../../lib/context/mod.ts";
import { KanikoError } from "../../lib/errors.ts";
import { writeLayer } from "../../lib/layer/mod.ts";
import { log } from "../../lib/log.ts";
import { parseReference } from "../../lib/registry/reference.ts";
import type { RegistrySession } from "../../lib/registry/session.ts";
import type { TarHeader, TarWriteEntry } from "../../lib/tar/mod.ts";
import type { JobSource } from "./jobs.ts";

/** Where a Dockerfile from outside the context goes in the artifact. */
export const SIDE_DIR = ".kaniko-deno";

/** An extra file for the artifact: `path` inside it, the bytes or a file on disk. */
interface Extra {
  path: string;
  bytes?: Uint8Array;
  file?: string;
}

/** Decides the Jobs' `--context` and `--dockerfile`, pushing a local context when needed. */
export async function jobSource(
  opts: BuildOptions,
  context: BuildContext,
  session: RegistrySession,
  signal?: AbortSignal,
): Promise<JobSource> {
  const kind = parseContextSpec(opts.context).kind;
  if (kind === "git" || kind === "http" || kind === "oci") {
    if (opts.dockerfile.startsWith("/")) {
      throw new KanikoError(
        `--dockerfile ${opts.dockerfile}: a local file cannot reach the Jobs of a ${kind} context`,
        { hint: "name the Dockerfile relative to the context, or by an https:// URL" },
      );
    }
    return {
      context: opts.context,
      contextSubPath: opts.contextSubPath,
      dockerfile: opts.dockerfile,
    };
  }
  if (opts.destinations.length === 0) {
    throw new KanikoError("--driver=k8s needs a --destination to push the build context to");
  }
  const location = await locateDockerfile(opts.dockerfile, context);
  const extras: Extra[] = [];
  let dockerfile: string;
  if (location.kind === "url") {
    dockerfile = location.url;
  } else if (location.path.startsWith(context.root + "/")) {
    dockerfile = location.path.slice(context.root.length + 1);
    extras.push({ path: dockerfile, file: location.path });
  } else {
    dockerfile = `${SIDE_DIR}/Dockerfile`;
    const rules = context.ignoreFile ? await Deno.readTextFile(context.ignoreFile) : "";
    extras.push({ path: dockerfile, file: location.path });
    extras.push({
      path: `${dockerfile}.dockerignore`,
      bytes: new TextEncoder().encode(`${rules}\n${SIDE_DIR}\n`),
    });
  }
  if (context.ignoreFile?.startsWith(context.root + "/")) {
    extras.push({
      path: context.ignoreFile.slice(context.root.length + 1),
      file: context.ignoreFile,
    });
  }
  const repository = parseReference(opts.destinations[0]).name;
  const ref = await pushContext(context, extras, repository, session, signal);
  log.info(`pushed the build context for the Jobs as ${ref}`);
  return { context: ref, dockerfile };
}

/** Packs `context` (with `extras`) and pushes it; returns the `oci://` value. */
export async function pushContext(
  context: BuildContext,
  extras: Extra[],
  repository: string,
  session: RegistrySession,
  signal?: AbortSignal,
): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "kaniko-k8s-context-" });
  try {
    const blob = await writeLayer(contextEntries(context, extras), {
      dir,
      compression: "gzip",
      format: "oci",
    });
    log.debug("packed the build context", { digest: blob.digest, size: blob.size });
    return await pushContextArtifact(session, repository, blob, signal);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** The tar entries of the visible context, then the extras it lacks. */
export async function* contextEntries(
  context: BuildContext,
  extras: readonly Extra[] = [],
): AsyncGenerator<TarWriteEntry> {
  const seen = new Set<string>();
  for await (const entry of walkContext(context, ".")) {
    if (entry.path === ".") continue;
    seen.add(entry.path);
    const tar = await entryFor(entry.path, entry.absolute, entry.info);
    if (tar) yield tar;
  }
  for (const extra of extras) {
    if (seen.has(extra.path)) continue;
    seen.add(extra.path);
    if (extra.bytes) {
      yield { header: { name: extra.path, type: "file", mode: 0o644 }, body: extra.bytes };
    } else if (extra.file) {
      const tar = await entryFor(extra.path, extra.file, await Deno.stat(extra.file));
      if (tar) yield tar;
    }
  }
}

async function entryFor(
  path: string,
  absolute: string,
  info: Deno.FileInfo,
): Promise<TarWriteEntry | undefined> {
  const header: TarHeader = {
    name: path,
    type: "file",
    mode: (info.mode ?? 0o644) & 0o7777,
    uid: 0,
    gid: 0,
    mtime: BigInt(info.mtime?.getTime() ?? 0) * 1_000_000n,
  };
  if (info.isDirectory) return { header: { ...header, name: `${path}/`, type: "dir" as const } };
  if (info.isSymlink) {
    return {
      header: { ...header, type: "symlink" as const, linkname: await Deno.readLink(absolute) },
    };
  }
  if (!info.isFile) {
    log.warn(`build context: skipping ${join(".", path)}: not a file, directory or symlink`);
    return undefined;
  }
  const file = await Deno.open(absolute);
  return { header: { ...header, size: info.size }, body: file.readable };
}
