/**
 * Decompression of context archives, chosen by content (magic bytes), never by file name. The
 * implementation is the layer one (`lib/layer/decompress.ts`): gzip (multi-member too), zstd
 * (every frame, skippable frames skipped, trailing garbage fails), or none. Context archives stay
 * gzip / zstd / plain, as Kaniko's: bzip2 and xz are recognised and refused with a clear error.
 * @module
 */
import {
  decompressByContent as decompressLayer,
  type DetectedCompression,
} from "../layer/decompress.ts";

export { detectCompression, peek } from "../layer/decompress.ts";
export { zstdDecompress } from "../layer/zstd_frames.ts";

/** What the first bytes of an archive say. */
export type Compression = DetectedCompression;

/**
 * Peeks at the first bytes of `stream`, and returns the decompressed stream with the
 * compression found. `what` names the archive in errors; bzip2 and xz are refused.
 */
export function decompressByContent(
  stream: ReadableStream<Uint8Array>,
  what: string,
): Promise<{ stream: ReadableStream<Uint8Array>; compression: Compression }> {
  return decompressLayer(stream, what, { external: false });
}
