/**
 * Writes the `docker load` tarball format (what `docker save` produces and `--tar-path` asks
 * for): `manifest.json` (`[{"Config", "RepoTags", "Layers"}]`), the config blob as
 * `<hex>.json`, each layer blob as `<hex>.tar[.gz|.zst]` (kept compressed: `docker load`
 * detects compression), and the legacy `repositories` file. Every blob is streamed from the
 * source through our tar writer into a temporary file that is renamed into place at the end.
 * @module
 */
import { basename, dirname, join } from "node:path";
import { KanikoError } from "../errors.ts";
import { TarWriter } from "../tar/writer.ts";
import type { BlobSource, RawManifest } from "./content.ts";
import { parseDigest } from "./digest.ts";
import { layerCompression } from "./media_types.ts";
import { type Descriptor, parseManifest } from "./schemas.ts";

/** Options for {@link writeDockerArchive}. */
export interface DockerArchiveOptions {
  /** Where the config and layer blobs are read from. */
  source: BlobSource;
  /** The image manifest (an index is refused: pick a platform first). */
  manifest: RawManifest;
  /** `RepoTags`, e.g. `registry.example/app:v1`; a name without tag gets `:latest`. */
  tags?: string[];
  /** Aborts the write (the temporary file is removed). */
  signal?: AbortSignal;
}

/** One entry of `manifest.json`. */
export interface DockerArchiveManifestEntry {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

/**
 * Writes `path` as a `docker load` archive of one image. Nothing is left at `path` when it
 * fails. Throws a {@link KanikoError} for an index, a bad tag, or a blob the source lacks.
 */
export async function writeDockerArchive(
  path: string,
  options: DockerArchiveOptions,
): Promise<void> {
  const what = `image ${options.manifest.digest}`;
  const parsed = parseManifest(options.manifest.bytes, options.manifest.mediaType, what);
  if (parsed.kind !== "image") {
    throw new KanikoError(`cannot write ${path}: ${what} is an index, not a single image`, {
      hint: "select one platform's manifest for a docker archive",
    });
  }
  const tags = (options.tags ?? []).map(normalizeRepoTag);
  const { config, layers } = parsed.manifest;
  const entry: DockerArchiveManifestEntry = {
    Config: `${parseDigest(config.digest).encoded}.json`,
    RepoTags: tags,
    Layers: layers.map(layerFileName),
  };
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${crypto.randomUUID()}`);
  const file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
  const tar = new TarWriter(file.writable);
  try {
    await addBlob(tar, options, config, entry.Config);
    const written = new Set<string>();
    for (const [i, layer] of layers.entries()) {
      if (written.has(entry.Layers[i])) continue;
      written.add(entry.Layers[i]);
      await addBlob(tar, options, layer, entry.Layers[i]);
    }
    await addJson(tar, "manifest.json", [entry]);
    const repositories = legacyRepositories(tags, layers);
    if (repositories) await addJson(tar, "repositories", repositories);
    await tar.close();
    await Deno.rename(tmp, path);
  } catch (e) {
    await tar.abort(e);
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/** The file name of a layer inside the archive: `<hex>.tar`, `<hex>.tar.gz` or `<hex>.tar.zst`. */
export function layerFileName(layer: Descriptor): string {
  const hex = parseDigest(layer.digest).encoded;
  const ext =
    { gzip: ".tar.gz", zstd: ".tar.zst", none: ".tar" }[layerCompression(layer.mediaType)];
  return `${hex}${ext}`;
}

/**
 * Normalises a `RepoTags` entry: `name[:tag]` with `:latest` added when there is no tag.
 * Digest references and malformed names are refused.
 */
export function normalizeRepoTag(ref: string): string {
  if (!ref || /[\s@]/.test(ref) || ref.startsWith("/") || ref.endsWith(":")) {
    throw new KanikoError(`invalid image name "${ref}" for a docker archive`, {
      hint: "use NAME or NAME:TAG, e.g. registry.example/app:v1",
    });
  }
  const slash = ref.lastIndexOf("/");
  return ref.indexOf(":", slash + 1) >= 0 ? ref : `${ref}:latest`;
}

async function addBlob(
  tar: TarWriter,
  options: DockerArchiveOptions,
  desc: Descriptor,
  name: string,
): Promise<void> {
  options.signal?.throwIfAborted();
  const body = await options.source.openBlob(desc, { signal: options.signal });
  await tar.add({ name, type: "file", size: desc.size, mode: 0o644, mtime: 0n }, body);
}

async function addJson(tar: TarWriter, name: string, value: unknown): Promise<void> {
  const body = new TextEncoder().encode(JSON.stringify(value));
  await tar.add({ name, type: "file", mode: 0o644, mtime: 0n }, body);
}

/** `{"repo": {"tag": "<top layer id>"}}`, as old `docker load` reads it. */
function legacyRepositories(
  tags: string[],
  layers: Descriptor[],
): Record<string, Record<string, string>> | undefined {
  if (tags.length === 0 || layers.length === 0) return undefined;
  const top = parseDigest(layers[layers.length - 1].digest).encoded;
  const repos: Record<string, Record<string, string>> = {};
  for (const t of tags) {
    const i = t.lastIndexOf(":");
    (repos[t.slice(0, i)] ??= {})[t.slice(i + 1)] = top;
  }
  return repos;
}
