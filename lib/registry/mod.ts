/**
 * The registry client: references, credentials and authentication, the HTTP transport,
 * manifests, blobs and uploads, and a repository's source/sink view.
 * @module
 */
export * from "./auth.ts";
export * from "./blobs.ts";
export * from "./challenge.ts";
export * from "./client.ts";
export * from "./docker_config.ts";
export * from "./errors.ts";
export * from "./http_types.ts";
export * from "./options.ts";
export * from "./reference.ts";
export * from "./repository.ts";
export * from "./retry.ts";
export * from "./session.ts";
export * from "./transport.ts";
