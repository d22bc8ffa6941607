/**
 * The image locations utility commands accept: a registry reference, or an OCI image layout
 * written `oci:DIR[:TAG]`.
 * @module
 */
import type { ImageSink, ImageSource, RawManifest } from "../oci/content.ts";
import { OciLayout, parseLayoutRef } from "../oci/layout.ts";
import { parseReference, type Reference } from "../registry/reference.ts";
import type { RegistrySession } from "../registry/session.ts";

/** An opened source: where to read, and which tag or digest. */
export interface OpenedSource {
  source: ImageSource;
  /** Tag or digest to read; undefined for the source's only image. */
  ref?: string;
  /** The registry reference, when the source is a registry. */
  reference?: Reference;
  /** The manifest at `ref`, when opening already fetched it. */
  manifest?: RawManifest;
}

/** An opened sink: where to write, and under which tags. */
export interface OpenedSink {
  sink: ImageSink;
  tags: string[];
  /** The digest the user pinned in the destination reference, if any. */
  digest?: string;
  reference?: Reference;
}

/** True for `oci:DIR[:TAG]`. */
export function isLayoutRef(text: string): boolean {
  return text.startsWith("oci:");
}

/** Opens `text` for reading; registry references go through mirrors and registry maps. */
export async function openSource(text: string, session: RegistrySession): Promise<OpenedSource> {
  if (isLayoutRef(text)) {
    const { dir, tag } = parseLayoutRef(text);
    return { source: await OciLayout.open(dir), ref: tag };
  }
  const resolved = await session.resolvePull(parseReference(text));
  const ref = resolved.reference;
  return {
    source: resolved.repository,
    ref: ref.digest ?? ref.tag,
    reference: ref,
    manifest: resolved.manifest,
  };
}

/** Opens `text` for writing (creating an OCI layout when needed). */
export async function openSink(text: string, session: RegistrySession): Promise<OpenedSink> {
  if (isLayoutRef(text)) {
    const { dir, tag } = parseLayoutRef(text);
    return { sink: await OciLayout.open(dir, { create: true }), tags: tag ? [tag] : [] };
  }
  const reference = parseReference(text);
  return {
    sink: session.repository(reference, "push"),
    tags: reference.tag ? [reference.tag] : [],
    digest: reference.digest,
    reference,
  };
}
