/**
 * Shared by `manifest` and `digest`: fetch the manifest a reference names, and with a platform
 * the matching child of an index.
 * @module
 */
import type { RawManifest } from "../oci/content.ts";
import { isIndexType } from "../oci/media_types.ts";
import { parsePlatform, selectManifest } from "../oci/platform.ts";
import { parseManifest } from "../oci/schemas.ts";
import type { RegistryOptions } from "../registry/options.ts";
import { RegistrySession } from "../registry/session.ts";
import { openSource } from "./endpoint.ts";

/** Options of `manifest` and `digest`. */
export interface InspectOptions {
  platform?: string;
  registry: RegistryOptions;
}

/** The manifest `ref` names; with `platform`, the child of an index for that platform. */
export async function fetchManifest(ref: string, options: InspectOptions): Promise<RawManifest> {
  const want = options.platform ? parsePlatform(options.platform) : undefined;
  const session = new RegistrySession(options.registry);
  try {
    const opened = await openSource(ref, session);
    const top = opened.manifest ?? await opened.source.getManifest(opened.ref);
    if (!want || !isIndexType(top.mediaType)) return top;
    const index = parseManifest(top.bytes, top.mediaType, `manifest of ${ref}`);
    if (index.kind !== "index") return top;
    const child = selectManifest(index.manifest, want);
    return await opened.source.getManifest(child.digest);
  } finally {
    session.close();
  }
}
