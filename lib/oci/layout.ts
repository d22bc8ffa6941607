/**
 * OCI image layout directories (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`) as both an
 * {@link ImageSource} and an {@link ImageSink}.
 *
 * - Blobs are streamed to a temporary file inside the layout directory and renamed to
 *   `blobs/<alg>/<hex>` only after their digest and size were checked, so a blob path never
 *   holds partial or wrong content. Reads from offset 0 are verified.
 * - `index.json` changes are serialised within the process (per directory) and written to a
 *   temporary file renamed over the old one. Concurrent writers in other processes are not
 *   coordinated.
 * - Tags are the `org.opencontainers.image.ref.name` annotation of `index.json` entries.
 *   `putManifest(m)` without a tag stores the manifest as a blob only (children of an index);
 *   list an untagged top-level manifest in `index.json` with {@link OciLayout.addToIndex}.
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { KanikoError } from "../errors.ts";
import { readFileIfExists, writeFileAtomic } from "./atomic_file.ts";
import { canonicalJson } from "./canonical_json.ts";
import { checkLayoutTag } from "./layout_ref.ts";
import type {
  BlobSource,
  ImageSink,
  ImageSource,
  OpenBlobOptions,
  PutBlobOptions,
  PutBlobResult,
  RawManifest,
} from "./content.ts";
import {
  type Algorithm,
  type Digest,
  type Expected,
  HashingStream,
  isDigest,
  parseDigest,
  verifiableAlgorithm,
  verifyBytes,
  verifyStream,
} from "./digest.ts";
import { isImageManifestType, OCI } from "./media_types.ts";
import {
  type Descriptor,
  ImageConfigSchema,
  ImageManifestSchema,
  type Index,
  IndexSchema,
  LayoutHeaderSchema,
  parseJson,
  parseManifest,
  type Platform,
} from "./schemas.ts";

/** The annotation that names an `index.json` entry (its tag). */
export const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name";
/** The `imageLayoutVersion` we write. */
export const IMAGE_LAYOUT_VERSION = "1.0.0";
/** Largest manifest or config we read into memory. */
export const MAX_DOCUMENT_SIZE = 8 << 20;

export { checkLayoutTag, formatLayoutRef, type LayoutRef, parseLayoutRef } from "./layout_ref.ts";

const indexLocks = new Map<string, Promise<void>>();

/** Options for {@link OciLayout.open}. */
export interface OpenLayoutOptions {
  /** Create the directory and the layout files when missing (default false). */
  create?: boolean;
}

/** Options for {@link OciLayout.writeBlob}. */
export interface WriteBlobOptions {
  /** Digest and size the content must have; it is refused otherwise. */
  expected?: Expected;
  /** Hash algorithm when `expected` is not given (default sha256). */
  algorithm?: Algorithm;
  /** Called with the bytes written so far. */
  onProgress?: (written: number) => void;
  /** Aborts the write (the temporary file is removed). */
  signal?: AbortSignal;
}

/** An OCI image layout directory. Get one with {@link OciLayout.open}. */
export class OciLayout implements ImageSource, ImageSink {
  /** The layout directory as given. */
  readonly dir: string;
  /** `oci:DIR`, for messages. */
  readonly name: string;
  #key: string;

  private constructor(dir: string) {
    this.dir = dir;
    this.name = `oci:${dir}`;
    this.#key = resolve(dir);
  }

  /**
   * Opens an existing layout, or creates one with `{create: true}`. Throws a
   * {@link KanikoError} when `dir` is not a layout (and `create` is not set) or is malformed.
   */
  static async open(dir: string, options: OpenLayoutOptions = {}): Promise<OciLayout> {
    const layout = new OciLayout(dir);
    const header = await readFileIfExists(join(dir, "oci-layout"));
    if (header === undefined) {
      if (!options.create) {
        throw new KanikoError(`${layout.name} is not an OCI image layout (no oci-layout file)`, {
          hint: "check the path, or write an image there first",
        });
      }
      await Deno.mkdir(join(dir, "blobs", "sha256"), { recursive: true });
      if ((await readFileIfExists(join(dir, "index.json"))) === undefined) {
        await writeFileAtomic(join(dir, "index.json"), emptyIndex());
      }
      const json = canonicalJson({ imageLayoutVersion: IMAGE_LAYOUT_VERSION });
      await writeFileAtomic(join(dir, "oci-layout"), json);
      return layout;
    }
    const parsed = parseJson(LayoutHeaderSchema, header, `${dir}/oci-layout`);
    if (!parsed.imageLayoutVersion.startsWith("1.")) {
      throw new KanikoError(
        `${dir}/oci-layout: unsupported imageLayoutVersion "${parsed.imageLayoutVersion}"`,
        { hint: "only OCI image layout 1.x is supported" },
      );
    }
    if ((await readFileIfExists(join(dir, "index.json"))) === undefined) {
      if (!options.create) {
        throw new KanikoError(`${layout.name} has no index.json`, {
          hint: "the layout is incomplete; recreate it",
        });
      }
      await writeFileAtomic(join(dir, "index.json"), emptyIndex());
    }
    await layout.readIndex();
    return layout;
  }

  /** Path of a blob inside the layout (`blobs/<alg>/<encoded>`). */
  blobPath(digest: Digest): string {
    const { algorithm, encoded } = parseDigest(digest);
    return join(this.dir, "blobs", algorithm, encoded);
  }

  /** The parsed `index.json`. */
  async readIndex(): Promise<Index> {
    const path = join(this.dir, "index.json");
    const bytes = await readFileIfExists(path);
    if (bytes === undefined) throw new KanikoError(`${this.name} has no index.json`);
    return parseJson(IndexSchema, bytes, path);
  }

  /** Tags (ref.name annotations) of `index.json`, in entry order. */
  async tags(): Promise<string[]> {
    return (await this.readIndex()).manifests.flatMap((d) => {
      const tag = d.annotations?.[REF_NAME_ANNOTATION];
      return tag === undefined ? [] : [tag];
    });
  }

  /** True when the blob exists with the descriptor's size. */
  async hasBlob(desc: Descriptor): Promise<boolean> {
    try {
      const st = await Deno.stat(this.blobPath(desc.digest));
      return st.isFile && (desc.size < 0 || st.size === desc.size);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return false;
      throw e;
    }
  }

  /** True when the manifest blob exists. */
  hasManifest(desc: Descriptor): Promise<boolean> {
    return this.hasBlob(desc);
  }

  /** Opens a blob; verified against the descriptor when read from offset 0. */
  async openBlob(
    desc: Descriptor,
    options: OpenBlobOptions = {},
  ): Promise<ReadableStream<Uint8Array>> {
    const what = `blob ${desc.digest} in ${this.name}`;
    const offset = options.offset ?? 0;
    options.signal?.throwIfAborted();
    let file: Deno.FsFile;
    try {
      file = await Deno.open(this.blobPath(desc.digest), { read: true });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new KanikoError(`${what} not found`, { code: "BLOB_UNKNOWN" });
      }
      throw e;
    }
    if (offset > 0) {
      if (desc.size >= 0 && offset > desc.size) {
        file.close();
        throw new KanikoError(`${what}: offset ${offset} is past its size ${desc.size}`);
      }
      await file.seek(offset, Deno.SeekMode.Start);
    }
    let stream: ReadableStream<Uint8Array> = file.readable;
    if (offset === 0 && options.verify !== false) {
      stream = verifyStream(stream, { digest: desc.digest, size: desc.size }, what);
    }
    if (options.signal) {
      stream = stream.pipeThrough(new TransformStream(), { signal: options.signal });
    }
    return stream;
  }

  /** Reads a small blob (config, manifest) into memory, verified. */
  async readBlobBytes(desc: Descriptor, options: { maxSize?: number } = {}): Promise<Uint8Array> {
    const max = options.maxSize ?? MAX_DOCUMENT_SIZE;
    if (desc.size > max) {
      throw new KanikoError(`blob ${desc.digest} in ${this.name} is ${desc.size} bytes`, {
        hint: `documents over ${max} bytes are refused`,
      });
    }
    return new Uint8Array(await new Response(await this.openBlob(desc)).arrayBuffer());
  }

  /**
   * Streams `content` into the layout and returns its digest and size. With `expected`, the
   * content must match it; nothing lands at a blob path unless it was verified.
   */
  async writeBlob(
    content: ReadableStream<Uint8Array> | Uint8Array,
    options: WriteBlobOptions = {},
  ): Promise<{ digest: Digest; size: number }> {
    const exp = options.expected;
    const algorithm = exp ? verifiableAlgorithm(exp.digest) : options.algorithm ?? "sha256";
    let stream = content instanceof Uint8Array ? ReadableStream.from([content]) : content;
    if (exp) stream = verifyStream(stream, exp, `blob ${exp.digest} written to ${this.name}`);
    const hasher = new HashingStream(algorithm);
    stream = stream.pipeThrough(hasher);
    if (options.onProgress) stream = stream.pipeThrough(progress(options.onProgress));
    const tmp = join(this.dir, `.tmp-blob-${crypto.randomUUID()}`);
    try {
      const file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
      await stream.pipeTo(file.writable, { signal: options.signal });
      const digest = hasher.digest();
      const final = this.blobPath(digest);
      await Deno.mkdir(dirname(final), { recursive: true });
      await Deno.rename(tmp, final);
      return { digest, size: hasher.size };
    } catch (e) {
      await Deno.remove(tmp).catch(() => {});
      if (content instanceof ReadableStream) await content.cancel(e).catch(() => {});
      throw e;
    }
  }

  /** Copies a blob from `source` unless the layout already holds it (then `exists`). */
  async putBlob(
    desc: Descriptor,
    source: BlobSource,
    options: PutBlobOptions = {},
  ): Promise<PutBlobResult> {
    if (await this.hasBlob(desc)) return "exists";
    const stream = await source.openBlob(desc, { signal: options.signal });
    await this.writeBlob(stream, {
      expected: { digest: desc.digest, size: desc.size },
      onProgress: options.onProgress,
      signal: options.signal,
    });
    return "uploaded";
  }

  /**
   * A manifest by tag, by digest, or (ref undefined) the single entry of `index.json`. Throws
   * a {@link KanikoError} when it is missing or ambiguous.
   */
  async getManifest(ref?: string): Promise<RawManifest> {
    const found = await this.#lookup(ref);
    const desc = found.desc ?? await this.#descriptorOfBlob(found.digest);
    const bytes = await this.readBlobBytes(desc);
    verifyBytes(bytes, desc.digest, `manifest ${desc.digest} in ${this.name}`);
    const mediaType = desc.mediaType ||
      parseManifest(bytes, undefined, `manifest ${desc.digest} in ${this.name}`).mediaType;
    return { bytes, mediaType, digest: desc.digest };
  }

  /**
   * Stores manifest bytes as a blob and, with `tag`, points the tag at them in `index.json`
   * (replacing the entry that had the tag). Without a tag only the blob is stored.
   */
  async putManifest(manifest: RawManifest, tag?: string): Promise<void> {
    if (tag !== undefined) checkLayoutTag(tag);
    verifyBytes(manifest.bytes, manifest.digest, `manifest for ${this.name}`);
    const desc: Descriptor = {
      mediaType: manifest.mediaType,
      digest: manifest.digest,
      size: manifest.bytes.length,
    };
    if (!(await this.hasBlob(desc))) {
      await this.writeBlob(manifest.bytes, { expected: { digest: desc.digest, size: desc.size } });
    }
    if (tag === undefined) return;
    const platform = await this.#inferPlatform(manifest);
    await this.setTag(tag, platform ? { ...desc, platform } : desc);
  }

  /** Points `tag` at `desc` in `index.json`, replacing any entry with that tag in place. */
  async setTag(tag: string, desc: Descriptor): Promise<void> {
    checkLayoutTag(tag);
    const entry: Descriptor = {
      ...desc,
      annotations: { ...desc.annotations, [REF_NAME_ANNOTATION]: tag },
    };
    await this.#updateIndex((index) => {
      const at = index.manifests.findIndex((d) => d.annotations?.[REF_NAME_ANNOTATION] === tag);
      const rest = index.manifests.filter((d) => d.annotations?.[REF_NAME_ANNOTATION] !== tag);
      if (at < 0) rest.push(entry);
      else rest.splice(at, 0, entry);
      index.manifests = rest;
    });
  }

  /** Lists `desc` in `index.json` as is (untagged unless its annotations name it); idempotent. */
  async addToIndex(desc: Descriptor): Promise<void> {
    await this.#updateIndex((index) => {
      const name = desc.annotations?.[REF_NAME_ANNOTATION];
      const dup = index.manifests.some((d) =>
        d.digest === desc.digest && d.annotations?.[REF_NAME_ANNOTATION] === name
      );
      if (!dup) index.manifests.push(desc);
    });
  }

  /** Removes the entries tagged `tag` from `index.json` (blobs stay); true when one existed. */
  async removeTag(tag: string): Promise<boolean> {
    let removed = false;
    await this.#updateIndex((index) => {
      const kept = index.manifests.filter((d) => d.annotations?.[REF_NAME_ANNOTATION] !== tag);
      removed = kept.length !== index.manifests.length;
      index.manifests = kept;
    });
    return removed;
  }

  async #lookup(ref: string | undefined): Promise<{ desc?: Descriptor; digest: Digest }> {
    const entries = (await this.readIndex()).manifests;
    if (ref === undefined) {
      if (entries.length === 1) return { desc: entries[0], digest: entries[0].digest };
      const tags = await this.tags();
      throw new KanikoError(
        entries.length === 0
          ? `${this.name} holds no image (index.json is empty)`
          : `${this.name} holds ${entries.length} images; name one`,
        { hint: tags.length ? `tags: ${tags.join(", ")}` : "use oci:DIR:TAG or a digest" },
      );
    }
    if (isDigest(ref)) {
      return { desc: entries.find((d) => d.digest === ref), digest: ref };
    }
    const desc = entries.find((d) => d.annotations?.[REF_NAME_ANNOTATION] === ref);
    if (desc) return { desc, digest: desc.digest };
    const tags = await this.tags();
    throw new KanikoError(`tag "${ref}" not found in ${this.name}`, {
      hint: tags.length ? `available tags: ${tags.join(", ")}` : "the layout has no tags",
      code: "MANIFEST_UNKNOWN",
    });
  }

  async #descriptorOfBlob(digest: Digest): Promise<Descriptor> {
    const path = this.blobPath(digest);
    let size: number;
    try {
      size = (await Deno.stat(path)).size;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      throw new KanikoError(`manifest ${digest} not found in ${this.name}`, {
        code: "MANIFEST_UNKNOWN",
      });
    }
    return { mediaType: "", digest, size };
  }

  async #inferPlatform(manifest: RawManifest): Promise<Platform | undefined> {
    if (!isImageManifestType(manifest.mediaType)) return undefined;
    try {
      const m = parseJson(ImageManifestSchema, manifest.bytes, "manifest");
      if (!(await this.hasBlob(m.config))) return undefined;
      const config = parseJson(ImageConfigSchema, await this.readBlobBytes(m.config), "config");
      const p: Platform = { architecture: config.architecture, os: config.os };
      if (config.variant) p.variant = config.variant;
      if (config["os.version"]) p["os.version"] = config["os.version"];
      return p;
    } catch {
      return undefined; // not an image config (an artifact): no platform
    }
  }

  async #updateIndex(mutate: (index: Index) => void): Promise<void> {
    const prev = indexLocks.get(this.#key) ?? Promise.resolve();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const mine = prev.then(() => gate);
    indexLocks.set(this.#key, mine);
    await prev;
    try {
      const index = await this.readIndex();
      mutate(index);
      index.mediaType ??= OCI.index;
      await writeFileAtomic(join(this.dir, "index.json"), canonicalJson(index));
    } finally {
      release();
      if (indexLocks.get(this.#key) === mine) indexLocks.delete(this.#key);
    }
  }
}

function emptyIndex(): Uint8Array {
  return canonicalJson({ schemaVersion: 2, mediaType: OCI.index, manifests: [] });
}

function progress(onProgress: (written: number) => void): TransformStream<Uint8Array, Uint8Array> {
  let written = 0;
  return new TransformStream({
    transform(chunk, controller) {
      written += chunk.length;
      controller.enqueue(chunk);
      onProgress(written);
    },
  });
}
