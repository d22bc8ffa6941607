/**
 * OCI content: digests, media types, schemas, the source/sink views, platforms, canonical JSON,
 * OCI image layouts and `docker load` archives.
 * @module
 */
export * from "./canonical_json.ts";
export * from "./content.ts";
export * from "./digest.ts";
export * from "./docker_archive.ts";
export * from "./layout.ts";
export * from "./media_types.ts";
export * from "./platform.ts";
export * from "./schemas.ts";
