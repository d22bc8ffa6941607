/**
 * Layer media types for a compression, in OCI or Docker manifests.
 * @module
 */
import { KanikoError } from "../errors.ts";
import { DOCKER, OCI } from "../oci/media_types.ts";
import type { Compression } from "./compress.ts";

/** Docker's uncompressed layer type (`docker save` and Docker v2s2 manifests). */
export const DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar";

/** Manifest flavour a layer goes into. */
export type LayerFormat = "oci" | "docker";

/**
 * The media type of a layer compressed with `compression` in a manifest of `format`. Docker
 * manifests have no zstd layer type: that fails with a {@link KanikoError}.
 */
export function layerMediaType(format: LayerFormat, compression: Compression): string {
  if (format === "oci") {
    return compression === "gzip"
      ? OCI.layerGzip
      : compression === "zstd"
      ? OCI.layerZstd
      : OCI.layer;
  }
  if (format !== "docker") throw new KanikoError(`unknown manifest format "${format}"`);
  if (compression === "zstd") {
    throw new KanikoError("zstd layers need OCI media types; Docker manifests have no zstd layer", {
      hint: "build with OCI media types, or use gzip compression",
    });
  }
  return compression === "gzip" ? DOCKER.layerGzip : DOCKER_LAYER_TAR;
}
