/**
 * kaniko for Deno, as a library: OCI content and layouts, the registry client, copies from any
 * image source to any sink (registry, OCI layout, Docker archive), and image indexes assembled
 * from children anywhere (`assembleIndex`, `IndexSource`).
 *
 * ```ts
 * import { copyImage, defaultRegistryOptions, OciLayout, parseReference, RegistrySession } from "./mod.ts";
 * const session = new RegistrySession(defaultRegistryOptions());
 * const source = session.repository(parseReference("127.0.0.1:5000/library/busybox:latest"), "pull");
 * const sink = await OciLayout.open("/tmp/busybox", { create: true });
 * await copyImage(source, sink, { all: true, tags: ["latest"] });
 * session.close();
 * ```
 * @module
 */
export * from "./lib/errors.ts";
export * from "./lib/oci/mod.ts";
export * from "./lib/oci/copy.ts";
export * from "./lib/registry/mod.ts";
export * from "./lib/index/mod.ts";
export { PROGRAM_NAME, VERSION } from "./lib/version.ts";
