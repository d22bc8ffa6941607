/**
 * Media types of the OCI image spec v1.1 and of Docker's image manifest v2 schema 2.
 * @module
 */

/** OCI media types. */
export const OCI = {
  descriptor: "application/vnd.oci.descriptor.v1+json",
  layoutHeader: "application/vnd.oci.layout.header.v1+json",
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar",
  layerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  layerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  layerNondistributable: "application/vnd.oci.image.layer.nondistributable.v1.tar",
  layerNondistributableGzip: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  layerNondistributableZstd: "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
  empty: "application/vnd.oci.empty.v1+json",
} as const;

/** Docker image manifest v2 schema 2 media types. */
export const DOCKER = {
  manifest: "application/vnd.docker.distribution.manifest.v2+json",
  manifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  config: "application/vnd.docker.container.image.v1+json",
  layerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  layerForeignGzip: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  pluginConfig: "application/vnd.docker.plugin.v1+json",
  /** Schema 1 (signed): read-only legacy, refused with a clear error. */
  manifestV1Signed: "application/vnd.docker.distribution.manifest.v1+prettyjws",
  manifestV1: "application/vnd.docker.distribution.manifest.v1+json",
} as const;

/** Media types of single-image manifests we understand. */
export const IMAGE_MANIFEST_TYPES: readonly string[] = [OCI.manifest, DOCKER.manifest];
/** Media types of indexes (lists of manifests) we understand. */
export const INDEX_TYPES: readonly string[] = [OCI.index, DOCKER.manifestList];
/** Every manifest media type we accept from a registry, in `Accept` order. */
export const MANIFEST_ACCEPT: readonly string[] = [
  OCI.index,
  DOCKER.manifestList,
  OCI.manifest,
  DOCKER.manifest,
];

/** True for an OCI index or a Docker manifest list. */
export function isIndexType(mediaType: string | undefined): boolean {
  return mediaType !== undefined && INDEX_TYPES.includes(mediaType);
}

/** True for an OCI image manifest or a Docker v2s2 manifest. */
export function isImageManifestType(mediaType: string | undefined): boolean {
  return mediaType !== undefined && IMAGE_MANIFEST_TYPES.includes(mediaType);
}

/** Compression of a layer media type: `gzip`, `zstd` or `none`. */
export function layerCompression(mediaType: string): "gzip" | "zstd" | "none" {
  if (mediaType.endsWith("+gzip") || mediaType.endsWith(".tar.gzip")) return "gzip";
  if (mediaType.endsWith("+zstd") || mediaType.endsWith(".tar.zstd")) return "zstd";
  return "none";
}
