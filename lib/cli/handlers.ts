/**
 * The command implementations the CLI dispatches to, loaded on demand from `lib/commands/*.ts`.
 * This module declares the signature each of those modules must export; a module that does not
 * exist yet ends the command with `error: the <name> command is not available yet in this version`.
 * @module
 */

import { loadCommandModule, requireExport } from "./module_loader.ts";
import type {
  BuildOptions,
  CopyCommandOptions,
  ManifestCommandOptions,
  ParseCommandOptions,
  TagsCommandOptions,
} from "./options.ts";

/** `lib/commands/build.ts` exports `buildCommand`: builds (and pushes); resolves to the exit code. */
export type BuildCommand = (opts: BuildOptions) => Promise<number>;
/** `lib/commands/copy.ts` exports `copyCommand`: copies an image or index from `src` to `dst`. */
export type CopyCommand = (src: string, dst: string, opts: CopyCommandOptions) => Promise<void>;
/** `lib/commands/manifest.ts` exports `manifestCommand`: writes the raw manifest bytes to stdout. */
export type ManifestCommand = (ref: string, opts: ManifestCommandOptions) => Promise<void>;
/** `lib/commands/digest.ts` exports `digestCommand`: writes `sha256:…` and a newline to stdout. */
export type DigestCommand = (ref: string, opts: ManifestCommandOptions) => Promise<void>;
/** `lib/commands/tags.ts` exports `tagsCommand`: writes the tags, one a line, to stdout. */
export type TagsCommand = (repo: string, opts: TagsCommandOptions) => Promise<void>;
/** `lib/commands/parse.ts` exports `parseCommand`: writes the parsed Dockerfile as JSON. */
export type ParseCommand = (opts: ParseCommandOptions) => Promise<void>;

/** The command implementations, by command name. */
export interface Handlers {
  /** See {@link BuildCommand}. */
  build: BuildCommand;
  /** See {@link CopyCommand}. */
  copy: CopyCommand;
  /** See {@link ManifestCommand}. */
  manifest: ManifestCommand;
  /** See {@link DigestCommand}. */
  digest: DigestCommand;
  /** See {@link TagsCommand}. */
  tags: TagsCommand;
  /** See {@link ParseCommand}. */
  parse: ParseCommand;
}

/** Runs `buildCommand` from `lib/commands/build.ts`; resolves to its exit code. */
export async function runBuild(opts: BuildOptions): Promise<number> {
  const mod = await loadCommandModule("build", () => import("../commands/build.ts"));
  const run: BuildCommand = requireExport(mod.buildCommand, "build", "buildCommand");
  return await run(opts);
}

/** Runs `copyCommand` from `lib/commands/copy.ts`. */
export async function runCopy(src: string, dst: string, opts: CopyCommandOptions): Promise<void> {
  const mod = await loadCommandModule("copy", () => import("../commands/copy.ts"));
  const run: CopyCommand = requireExport(mod.copyCommand, "copy", "copyCommand");
  await run(src, dst, opts);
}

/** Runs `manifestCommand` from `lib/commands/manifest.ts`. */
export async function runManifest(ref: string, opts: ManifestCommandOptions): Promise<void> {
  const mod = await loadCommandModule("manifest", () => import("../commands/manifest.ts"));
  const run: ManifestCommand = requireExport(mod.manifestCommand, "manifest", "manifestCommand");
  await run(ref, opts);
}

/** Runs `digestCommand` from `lib/commands/digest.ts`. */
export async function runDigest(ref: string, opts: ManifestCommandOptions): Promise<void> {
  const mod = await loadCommandModule("digest", () => import("../commands/digest.ts"));
  const run: DigestCommand = requireExport(mod.digestCommand, "digest", "digestCommand");
  await run(ref, opts);
}

/** Runs `tagsCommand` from `lib/commands/tags.ts`. */
export async function runTags(repo: string, opts: TagsCommandOptions): Promise<void> {
  const mod = await loadCommandModule("tags", () => import("../commands/tags.ts"));
  const run: TagsCommand = requireExport(mod.tagsCommand, "tags", "tagsCommand");
  await run(repo, opts);
}

/** Runs `parseCommand` from `lib/commands/parse.ts`. */
export async function runParse(opts: ParseCommandOptions): Promise<void> {
  const mod = await loadCommandModule("parse", () => import("../commands/parse.ts"));
  const run: ParseCommand = requireExport(mod.parseCommand, "parse", "parseCommand");
  await run(opts);
}

/** The real implementations: each loads its module from `lib/commands/` on first use. */
export const HANDLERS: Handlers = {
  build: runBuild,
  copy: runCopy,
  manifest: runManifest,
  digest: runDigest,
  tags: runTags,
  parse: runParse,
};
