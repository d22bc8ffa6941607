/**
 * Build contexts: where COPY and ADD read from.
 *
 * {@link prepareContext} turns a `--context` value into a local directory: a plain path or
 * `dir://PATH` is used in place; `tar://PATH`, `tar://stdin` and `http(s)://` tarballs (gzip, zstd
 * or plain, detected by content) are extracted safely into a temporary directory; git
 * repositories (`git://HOST/REPO`, `https://HOST/REPO.git`, `ssh://…`, `git@HOST:REPO`, with
 * `#REF[:SUBDIR]` and Kaniko's `#REF#COMMIT`) are cloned with the system `git`; `oci://REF@DIGEST`
 * artifacts (see `oci.ts`) are pulled from a registry and extracted.
 * `--context-sub-path` then selects a directory inside it (for every kind; Kaniko ignores it for a
 * plain path). The `.dockerignore` in force is chosen and parsed up front.
 *
 * {@link loadDockerfile} reads the Dockerfile; {@link resolveSources} and {@link walkContext}
 * read the context as COPY/ADD see it.
 *
 * ```ts
 * await using ctx = await prepareContext("git://github.com/org/repo#main:app", {});
 * const { text } = await loadDockerfile(undefined, ctx);
 * for (const src of await resolveSources(ctx, "src/*.ts")) console.log(src);
 * ```
 * @module
 */
import { KanikoError, UsageError } from "../errors.ts";
import { log } from "../log.ts";
import { decompressByContent } from "./decompress.ts";
import {
  DEFAULT_DOCKERFILE,
  type DockerfileLocation,
  locateDockerfile,
  locateIgnoreFile,
  readDockerfile,
} from "./dockerfile.ts";
import { IgnoreMatcher } from "./dockerignore.ts";
import { extractTar } from "./extract.ts";
import { cloneGit, type GitCloneOptions } from "./git.ts";
import { httpGet, type HttpOptions } from "./https.ts";
import { fetchOciContext } from "./oci.ts";
import type { RegistryOptions } from "../registry/options.ts";
import { cleanPath } from "./pattern.ts";
import { resolveInContext, setRootAliases } from "./resolve.ts";
import { type ContextSource, describeSpec, parseContextSpec } from "./source.ts";
import type { BuildContext, ContextKind } from "./types.ts";

export type { BuildContext, ContextKind } from "./types.ts";
export { IgnoreMatcher, readIgnoreLines } from "./dockerignore.ts";
export {
  contextRelative,
  isVisible,
  realPath,
  resolveSources,
  resolveVisible,
  walkContext,
  type WalkEntry,
} from "./resolve.ts";
export { BadPatternError, cleanPath, goMatch, hasWildcards, validatePattern } from "./pattern.ts";
export {
  type ContextSource,
  describeSpec,
  parseContextSpec,
  SUPPORTED_CONTEXTS,
} from "./source.ts";
export type { GitCloneOptions } from "./git.ts";
export type { HttpOptions } from "./https.ts";
export { detectCompression, zstdDecompress } from "./decompress.ts";
export { extractTar } from "./extract.ts";
export { DEFAULT_DOCKERFILE, type DockerfileLocation } from "./dockerfile.ts";
export {
  CONTEXT_ARTIFACT_TYPE,
  type ContextBlob,
  contextManifest,
  fetchOciContext,
  type OciSource,
  pushContextArtifact,
} from "./oci.ts";

/** Options for {@link prepareContext}. */
export interface PrepareContextOptions {
  /** `--context-sub-path`: a directory inside the context to use as its root. */
  subPath?: string;
  /** `--dockerfile`, to pick `<Dockerfile>.dockerignore` (default `Dockerfile`). */
  dockerfile?: string;
  /** Where temporary directories go (e.g. `<kaniko-dir>/buildcontext`); default: the system's. */
  workDir?: string;
  /** Kaniko's `--git` options. */
  gitOptions?: GitCloneOptions;
  /** HTTP settings for `http(s)://` tarballs. */
  http?: HttpOptions;
  /** Registry flags for `oci://` contexts (default: no insecure registries, `$DOCKER_CONFIG`). */
  registry?: RegistryOptions;
  /** What `tar://stdin` reads (default: the process's standard input). */
  stdin?: ReadableStream<Uint8Array>;
  /** Environment lookup for `GIT_*` variables (default: the process environment). */
  env?: (name: string) => string | undefined;
  /** Current directory for relative paths (default: the process's). */
  cwd?: string;
  signal?: AbortSignal;
}

/** Prepares the build context named by `spec` (a `--context` value). */
export async function prepareContext(
  spec: string,
  options: PrepareContextOptions = {},
): Promise<BuildContext> {
  const source = parseContextSpec(spec);
  const description = describeSpec(spec);
  const cwd = options.cwd ?? Deno.cwd();
  if (source.kind === "dir") {
    const { real, lexical } = await localDir(source.path, cwd, description);
    const ctx = await finish(real, source.kind, description, options, cwd, undefined, undefined);
    setRootAliases(ctx, [cleanPath(`${lexical}/${options.subPath ?? ""}`)]);
    return ctx;
  }
  const temp = await makeTemp(options.workDir);
  try {
    const dest = `${temp}/context`;
    await Deno.mkdir(dest, { mode: 0o755 });
    const commit = await fetchInto(source, dest, temp, description, options, cwd);
    const root = await Deno.realPath(dest);
    return await finish(root, source.kind, description, options, cwd, temp, commit, source);
  } catch (e) {
    await removeTree(temp);
    throw e;
  }
}

/**
 * Reads the Dockerfile named by `spec` (`--dockerfile`): from the context (default `Dockerfile`,
 * a path relative to the context), an absolute or current-directory path, or an http(s) URL.
 * Returns its text, the name to use in messages, and the ignore file of the context.
 */
export async function loadDockerfile(
  spec: string | undefined,
  context: BuildContext,
  options: { cwd?: string; http?: HttpOptions; signal?: AbortSignal } = {},
): Promise<{ text: string; name: string; ignoreFile?: string }> {
  const location = await locateDockerfile(spec, context, options.cwd);
  const text = await readDockerfile(location, { ...options.http, signal: options.signal });
  return { text, name: location.name, ignoreFile: context.ignoreFile };
}

async function fetchInto(
  source: Exclude<ContextSource, { kind: "dir" }>,
  dest: string,
  temp: string,
  description: string,
  options: PrepareContextOptions,
  cwd: string,
): Promise<string | undefined> {
  const what = `build context ${description}`;
  switch (source.kind) {
    case "tar": {
      const path = source.path.startsWith("/") ? source.path : `${cwd}/${source.path}`;
      let file: Deno.FsFile;
      try {
        file = await Deno.open(path);
      } catch (e) {
        throw new KanikoError(`${what}: cannot open ${path}: ${(e as Error).message}`, {
          hint: "tar:// takes the path of a tar archive (gzip, zstd or plain)",
          cause: e,
        });
      }
      if ((await file.stat()).isDirectory) {
        file.close();
        throw new KanikoError(`${what}: ${path} is a directory, not an archive`, {
          hint: `use --context=dir://${source.path} for a directory`,
        });
      }
      await unpack(file.readable, dest, what, options.signal);
      return undefined;
    }
    case "stdin": {
      let stream = options.stdin;
      if (!stream) {
        if (Deno.stdin.isTerminal()) {
          throw new UsageError(`--context tar://stdin: standard input is a terminal`, {
            hint: "pipe a tar archive into the command (docker run needs -i)",
          });
        }
        stream = Deno.stdin.readable;
      }
      await unpack(stream, dest, what, options.signal);
      return undefined;
    }
    case "http": {
      const download = `${temp}/download`;
      const { response, close } = await httpGet(source.url, what, {
        ...options.http,
        credentials: source.credentials,
        signal: options.signal,
      });
      try {
        const file = await Deno.open(download, { write: true, createNew: true, mode: 0o600 });
        if (response.body) await response.body.pipeTo(file.writable);
        else file.close();
      } catch (e) {
        const reason = e instanceof Error ? e.message : String(e);
        throw new KanikoError(`${what}: the download failed: ${reason}`, {
          hint: "try again; check the network and the URL",
          code: e instanceof KanikoError ? e.code : undefined,
          cause: e,
        });
      } finally {
        close();
      }
      const file = await Deno.open(download);
      await unpack(file.readable, dest, what, options.signal);
      await Deno.remove(download).catch(() => {});
      return undefined;
    }
    case "oci":
      await fetchOciContext(source, dest, what, {
        registry: options.registry,
        signal: options.signal,
      });
      return undefined;
    case "git": {
      const scratch = `${temp}/git`;
      await Deno.mkdir(scratch, { mode: 0o700 });
      try {
        return await cloneGit(source, {
          dest,
          scratch,
          git: options.gitOptions,
          env: options.env,
          description,
          signal: options.signal,
        });
      } finally {
        await removeTree(scratch);
      }
    }
  }
}

async function unpack(
  stream: ReadableStream<Uint8Array>,
  dest: string,
  what: string,
  signal?: AbortSignal,
): Promise<void> {
  const { stream: tar, compression } = await decompressByContent(stream, what);
  const result = await extractTar(tar, dest, { name: what, signal });
  log.debug("extracted build context", { context: what, compression, entries: result.entries });
}

async function finish(
  base: string,
  kind: ContextKind,
  description: string,
  options: PrepareContextOptions,
  cwd: string,
  temp: string | undefined,
  commit: string | undefined,
  source?: ContextSource,
): Promise<BuildContext> {
  let root = base;
  const subdirs: [string, string][] = [];
  if (source?.kind === "git" && source.subdir) {
    subdirs.push([source.subdir, "the sub-directory after # and :"]);
  }
  if (options.subPath) subdirs.push([options.subPath, `--context-sub-path=${options.subPath}`]);
  for (const [sub, flag] of subdirs) root = subDirectory(root, sub, flag, description);
  const partial = { root, description, kind, ignore: IgnoreMatcher.empty() };
  let dockerfile: DockerfileLocation | undefined;
  try {
    dockerfile = await locateDockerfile(options.dockerfile ?? DEFAULT_DOCKERFILE, partial, cwd);
  } catch (e) {
    // A missing Dockerfile is reported when it is loaded; the context's .dockerignore applies.
    if (!(e instanceof KanikoError) || e.code !== "DOCKERFILE_NOT_FOUND") throw e;
  }
  const ignoreFile = await locateIgnoreFile(dockerfile, partial);
  const ignore = ignoreFile
    ? IgnoreMatcher.parse(await Deno.readTextFile(ignoreFile), ignoreFile)
    : IgnoreMatcher.empty();
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned || temp === undefined) return;
    cleaned = true;
    await removeTree(temp);
  };
  return {
    root,
    description,
    ignore,
    ignoreFile,
    kind,
    commit,
    cleanup,
    [Symbol.asyncDispose]: cleanup,
  };
}

function subDirectory(root: string, sub: string, flag: string, description: string): string {
  const ctx: BuildContext = {
    root,
    description,
    ignore: IgnoreMatcher.empty(),
    kind: "dir",
    cleanup: () => Promise.resolve(),
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
  const parts = sub.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..") || sub.startsWith("/")) {
    throw new UsageError(`${flag}: the sub-directory must be a relative path inside the context`);
  }
  let resolved;
  try {
    resolved = resolveInContext(ctx, parts.length === 0 ? "." : parts.join("/"), true, sub);
  } catch (e) {
    if (e instanceof KanikoError) {
      throw new KanikoError(`${flag}: ${e.message}`, { hint: e.hint, code: e.code });
    }
    throw e;
  }
  if (resolved === null || !resolved.info.isDirectory) {
    throw new KanikoError(
      `${flag}: ${JSON.stringify(sub)} is not a directory of the build context ${description}`,
      { hint: "check the sub-directory name" },
    );
  }
  return resolved.absolute;
}

async function localDir(
  path: string,
  cwd: string,
  description: string,
): Promise<{ real: string; lexical: string }> {
  const abs = path.startsWith("/") ? path : `${cwd}/${path}`;
  let real: string;
  try {
    real = await Deno.realPath(abs);
  } catch (e) {
    throw new KanikoError(`build context ${description}: ${abs} does not exist`, {
      hint: "pass --context with a directory (or tar://, https://, git:// for other sources)",
      cause: e,
    });
  }
  const info = await Deno.stat(real);
  if (!info.isDirectory) {
    throw new KanikoError(`build context ${description}: ${abs} is not a directory`, {
      hint: `for an archive use --context=tar://${path}`,
    });
  }
  return { real, lexical: cleanPath(abs) };
}

async function makeTemp(workDir: string | undefined): Promise<string> {
  if (workDir === undefined) return await Deno.makeTempDir({ prefix: "kaniko-context-" });
  await Deno.mkdir(workDir, { recursive: true });
  return await Deno.makeTempDir({ dir: workDir, prefix: "context-" });
}

/** Removes a directory tree we created, making read-only directories writable first. */
async function removeTree(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
    return;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    if (!(e instanceof Deno.errors.PermissionDenied)) {
      log.warn("could not remove a temporary build context", { path, error: e });
      return;
    }
  }
  const chmodAll = (dir: string) => {
    try {
      Deno.chmodSync(dir, 0o700);
      for (const entry of Deno.readDirSync(dir)) {
        if (entry.isDirectory) chmodAll(`${dir}/${entry.name}`);
      }
    } catch {
      // best effort
    }
  };
  chmodAll(path);
  await Deno.remove(path, { recursive: true }).catch((e) =>
    log.warn("could not remove a temporary build context", { path, error: e })
  );
}
