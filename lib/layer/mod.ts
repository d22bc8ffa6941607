/**
 * Layer blobs: {@link writeLayer} turns tar entries into a compressed blob on disk in one
 * streaming pass (diff id and digest computed on the way, deterministic bytes), and
 * {@link decompress} reads gzip, zstd (every frame), bzip2, xz or plain data by content.
 * @module
 */
export {
  type Compression,
  compressionLevel,
  DEFAULT_GZIP_LEVEL,
  DEFAULT_ZSTD_LEVEL,
} from "./compress.ts";
export {
  decompress,
  decompressByContent,
  type DecompressOptions,
  detectCompression,
  type DetectedCompression,
  gunzip,
  peek,
} from "./decompress.ts";
export { DOCKER_LAYER_TAR, type LayerFormat, layerMediaType } from "./media.ts";
export { compressTarFile, type LayerBlob, writeLayer, type WriteLayerOptions } from "./write.ts";
export { LayerMemo, type LayerMemoStats } from "./memo.ts";
export { zstdDecompress } from "./zstd_frames.ts";
