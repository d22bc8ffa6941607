/**
 * Layers shared by the builds of one multi-platform build: a layer whose uncompressed tar is the
 * same for several platforms (a COPY of the same files) is compressed once and written once, and
 * every platform's image refers to that one blob.
 *
 * Each layer is first written uncompressed while its diff_id is computed (cheap next to
 * compression); a later layer with the same diff_id, compression, level and media type then
 * reuses the first one's blob (builds running at once wait for it), and a new one is compressed
 * from the uncompressed file. The blob stays where the first build wrote it (in that build's
 * layer directory): every build of the memo must live until the images are written.
 * @module
 */
import { compressionLevel } from "./compress.ts";
import { compressTarFile, type LayerBlob, writeLayer, type WriteLayerOptions } from "./write.ts";
import type { TarWriteEntry } from "../tar/mod.ts";

/** What {@link LayerMemo} did so far. */
export interface LayerMemoStats {
  /** Layers compressed (new content). */
  written: number;
  /** Layers that reused an earlier blob. */
  reused: number;
}

/** Writes layer blobs, once per distinct content (see the module doc). */
export class LayerMemo {
  readonly #blobs = new Map<string, Promise<LayerBlob>>();
  readonly stats: LayerMemoStats = { written: 0, reused: 0 };

  /** Writes the layer of `entries` as {@link writeLayer} does, or returns the same blob again. */
  async write(
    entries: AsyncIterable<TarWriteEntry> | Iterable<TarWriteEntry>,
    options: WriteLayerOptions,
  ): Promise<LayerBlob> {
    const tar = await writeLayer(entries, { ...options, compression: "none" });
    const level = options.compression === "none"
      ? 0
      : compressionLevel(options.compression, options.level);
    const key = [tar.diffId, options.compression, level, options.format].join(" ");
    const known = this.#blobs.get(key);
    if (known) {
      const blob = await known;
      // (The same content written twice into one directory lands on the same path.)
      if (tar.path !== blob.path) await Deno.remove(tar.path).catch(() => {});
      this.stats.reused++;
      return blob;
    }
    const blob = options.compression === "none"
      ? Promise.resolve(tar)
      : compressTarFile(tar.path, options).finally(() => Deno.remove(tar.path).catch(() => {}));
    this.#blobs.set(key, blob);
    blob.catch(() => this.#blobs.delete(key)); // a failed write is not remembered
    this.stats.written++;
    return await blob;
  }
}
