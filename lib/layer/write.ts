/**
 * Writing a layer blob in one streaming pass: tar bytes → sha256 (diff id) → compressor →
 * sha256 (digest) → a temporary file in the blob directory, renamed to `<dir>/<hex digest>` once
 * complete. Nothing but one input chunk and its compressed output is held in memory. The file is
 * not fsynced: the blob directory is build scratch, and blobs are named by their digest.
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { KanikoError } from "../errors.ts";
import { encodeEntry, endOfArchive, type TarWriteEntry } from "../tar/mod.ts";
import {
  type Compression,
  compressionLevel,
  createCompressor,
  INPUT_CHUNK_SIZE,
  type ZlibDriver,
} from "./compress.ts";
import { type LayerFormat, layerMediaType } from "./media.ts";

/** A layer blob on disk. */
export interface LayerBlob {
  /** The blob (compressed as asked) on disk: `<dir>/<hex of digest>`. */
  path: string;
  /** Digest of the blob. */
  digest: string;
  /** Size of the blob in bytes. */
  size: number;
  /** Digest of the uncompressed tar. */
  diffId: string;
  /** OCI or Docker layer media type for the compression. */
  mediaType: string;
}

/** Options of {@link writeLayer}. */
export interface WriteLayerOptions {
  /** Directory the blob is written to (it must exist). */
  dir: string;
  /** Compression of the blob. */
  compression: Compression;
  /**
   * Compression level: gzip 0–9 (default {@link DEFAULT_GZIP_LEVEL}), zstd 1–22 (default
   * {@link DEFAULT_ZSTD_LEVEL}); ignored for `none`.
   */
  level?: number;
  /** Manifest flavour, for the media type (Docker has no zstd layers). */
  format: LayerFormat;
}

const COMPRESSIONS: readonly string[] = ["gzip", "zstd", "none"];

/**
 * Writes the tar archive of `entries` as a layer blob in `options.dir`, in one pass, and returns
 * where it is with its digests. The same entries give the same bytes on every run (see
 * `compress.ts`). On failure the temporary file is removed and the entries are not read further.
 */
export function writeLayer(
  entries: AsyncIterable<TarWriteEntry> | Iterable<TarWriteEntry>,
  options: WriteLayerOptions,
): Promise<LayerBlob> {
  return writeTarBytes(tarChunks(entries), options);
}

/**
 * Writes a layer blob from an uncompressed tar archive already on disk (`tarPath`), as
 * {@link writeLayer} would from its entries: the same bytes and digests.
 */
export async function compressTarFile(
  tarPath: string,
  options: WriteLayerOptions,
): Promise<LayerBlob> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(tarPath);
  } catch (e) {
    throw fileError(`cannot read the layer tar ${tarPath}`, e);
  }
  return await writeTarBytes(file.readable, options);
}

/** Hashes, compresses and writes the bytes of a tar archive as a layer blob. */
async function writeTarBytes(
  tar: AsyncIterable<Uint8Array>,
  options: WriteLayerOptions,
): Promise<LayerBlob> {
  const { dir, compression, format } = options;
  if (!COMPRESSIONS.includes(compression)) {
    throw new KanikoError(`unknown layer compression "${compression}"`, {
      hint: "use gzip, zstd or none",
    });
  }
  const mediaType = layerMediaType(format, compression);
  const level = compressionLevel(compression, options.level);
  const tmp = join(dir, `.layer-${crypto.randomUUID()}.tmp`);
  let file: Deno.FsFile;
  try {
    file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
  } catch (e) {
    throw fileError(`cannot create a layer file in ${dir}`, e);
  }
  const compressor = compression === "none" ? undefined : createCompressor(compression, level);
  const diff = createHash("sha256");
  const blob = createHash("sha256");
  let size = 0;
  const emit = async (chunks: Uint8Array[]) => {
    for (const bytes of chunks) {
      blob.update(bytes);
      size += bytes.length;
      try {
        for (let off = 0; off < bytes.length;) off += await file.write(bytes.subarray(off));
      } catch (e) {
        throw fileError(`cannot write the layer file ${tmp}`, e);
      }
    }
  };
  const compress = async (driver: ZlibDriver, chunk?: Uint8Array) => {
    try {
      return chunk ? await driver.write(chunk) : await driver.end();
    } catch (e) {
      throw new KanikoError(`${compression} compression of a layer failed: ${errorText(e)}`, {
        cause: e,
      });
    }
  };
  let closed = false;
  try {
    // One reused input buffer: each chunk is hashed, compressed and written before the next.
    for await (const chunk of fixedChunks(tar, INPUT_CHUNK_SIZE, true)) {
      diff.update(chunk);
      await emit(compressor ? await compress(compressor, chunk) : [chunk]);
    }
    if (compressor) await emit(await compress(compressor));
    file.close();
    closed = true;
    const hex = blob.digest("hex");
    const path = join(dir, hex);
    try {
      await Deno.rename(tmp, path);
    } catch (e) {
      throw fileError(`cannot move the layer file to ${path}`, e);
    }
    return {
      path,
      digest: `sha256:${hex}`,
      size,
      diffId: `sha256:${diff.digest("hex")}`,
      mediaType,
    };
  } catch (e) {
    compressor?.destroy();
    if (!closed) file.close();
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/** The bytes of the tar archive of `entries`, as the tar writer produces them. */
async function* tarChunks(
  entries: AsyncIterable<TarWriteEntry> | Iterable<TarWriteEntry>,
): AsyncGenerator<Uint8Array, void, undefined> {
  for await (const { header, body } of entries) yield* encodeEntry(header, body);
  yield endOfArchive();
}

/**
 * Regroups `source` into chunks of exactly `size` bytes (the last one shorter): the compressed
 * output must not depend on how the source happens to be cut. With `reuse`, every chunk is the
 * same buffer, refilled once the consumer asks for the next one (no garbage: V8 frees dead
 * buffers late, and each one costs resident memory until then).
 */
export async function* fixedChunks(
  source: AsyncIterable<Uint8Array>,
  size: number,
  reuse = false,
): AsyncGenerator<Uint8Array, void, undefined> {
  let buf = new Uint8Array(size);
  let fill = 0;
  for await (const chunk of source) {
    let off = 0;
    while (off < chunk.length) {
      const take = Math.min(size - fill, chunk.length - off);
      buf.set(take === chunk.length ? chunk : chunk.subarray(off, off + take), fill);
      fill += take;
      off += take;
      if (fill === size) {
        yield buf;
        if (!reuse) buf = new Uint8Array(size);
        fill = 0;
      }
    }
  }
  if (fill > 0) yield buf.subarray(0, fill);
}

function fileError(what: string, e: unknown): KanikoError {
  return new KanikoError(`${what}: ${errorText(e)}`, {
    hint: "check that the directory exists, is writable and has free space",
    cause: e,
  });
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
