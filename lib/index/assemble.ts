/**
 * Assembling an image index: an OCI image index of OCI manifests, or a Docker manifest list of
 * Docker v2s2 manifests, from one descriptor per platform. Entries keep the caller's order, the
 * bytes are canonical JSON and nothing time-dependent is added, so equal inputs give equal
 * digests. A child whose media type does not match the index format is refused, never relabelled.
 * @module
 */
import type { ChildImage } from "../../drivers/types.ts";
import { KanikoError, UsageError } from "../errors.ts";
import { canonicalJson } from "../oci/canonical_json.ts";
import type { RawManifest } from "../oci/content.ts";
import { digestOf, parseDigest } from "../oci/digest.ts";
import { DOCKER, OCI } from "../oci/media_types.ts";
import { formatPlatform } from "../oci/platform.ts";
import type { Descriptor, Platform } from "../oci/schemas.ts";

/** One platform's image in an index. */
export interface IndexEntry {
  /** The child manifest: its `mediaType`, `digest` and `size` (other fields are not copied). */
  descriptor: Descriptor;
  /** The platform the index entry declares. */
  platform: Platform;
}

/** Options for {@link assembleIndex}. */
export interface AssembleIndexOptions {
  /** `oci`: an OCI image index of OCI manifests; `docker`: a Docker manifest list of v2s2. */
  format: "oci" | "docker";
  /** Index annotations (OCI only: a Docker manifest list has none). */
  annotations?: Record<string, string>;
}

const FORMS = {
  oci: { index: OCI.index, child: OCI.manifest, what: "an OCI image index", childName: "OCI" },
  docker: {
    index: DOCKER.manifestList,
    child: DOCKER.manifest,
    what: "a Docker manifest list",
    childName: "Docker v2s2",
  },
} as const;

/**
 * Builds the index of `entries`, in their order. Throws a {@link KanikoError} for an empty list,
 * a child whose manifest media type is not the format's, a bad descriptor or a platform listed
 * twice, and a {@link UsageError} for annotations on a Docker manifest list (as buildx does).
 */
export function assembleIndex(entries: IndexEntry[], options: AssembleIndexOptions): RawManifest {
  const form = FORMS[options.format];
  if (entries.length === 0) {
    throw new KanikoError(`cannot assemble ${form.what} without any platform image`);
  }
  const annotations = checkAnnotations(options);
  const seen = new Map<string, number>();
  const manifests = entries.map((entry, i) => {
    const version = entry.platform["os.version"];
    const platform = formatPlatform(entry.platform) + (version ? ` (os.version ${version})` : "");
    const first = seen.get(platform);
    if (first !== undefined) {
      throw new KanikoError(
        `cannot assemble ${form.what}: platform ${platform} is listed twice (entries ${
          first + 1
        } and ${i + 1})`,
        { hint: "give each platform once" },
      );
    }
    seen.set(platform, i);
    return indexDescriptor(entry, form, platform);
  });
  const index: Record<string, unknown> = { schemaVersion: 2, mediaType: form.index, manifests };
  if (annotations) index.annotations = annotations;
  const bytes = canonicalJson(index);
  return { bytes, mediaType: form.index, digest: digestOf(bytes) };
}

function checkAnnotations(options: AssembleIndexOptions): Record<string, string> | undefined {
  const annotations = options.annotations ?? {};
  const keys = Object.keys(annotations);
  if (keys.length === 0) return undefined;
  if (options.format === "docker") {
    throw new UsageError(
      `index annotations (${keys.join(", ")}) cannot be set on a Docker manifest list`,
      { hint: "Docker manifest lists have no annotations; use --oci-mode=oci for an OCI index" },
    );
  }
  if (keys.some((k) => k.trim() === "")) {
    throw new UsageError("an index annotation has an empty key", { hint: "use key=value" });
  }
  return { ...annotations };
}

function indexDescriptor(
  entry: IndexEntry,
  form: typeof FORMS[keyof typeof FORMS],
  platform: string,
): Descriptor {
  const { mediaType, digest, size } = entry.descriptor;
  if (mediaType !== form.child) {
    throw new KanikoError(
      `cannot put the ${platform} image (${digest}, ${mediaType}) in ${form.what}: ` +
        `it takes ${form.childName} manifests (${form.child}) only`,
      {
        hint: "build every platform with the same media types (--oci-mode); " +
          "children are never relabelled",
      },
    );
  }
  try {
    parseDigest(digest);
  } catch (e) {
    throw new KanikoError(`the ${platform} image has an invalid digest: ${(e as Error).message}`);
  }
  if (!Number.isSafeInteger(size) || size <= 0) {
    throw new KanikoError(`the ${platform} image (${digest}) has an invalid size ${size}`);
  }
  return { mediaType, digest, size, platform: indexPlatform(entry.platform) };
}

/** The platform of an index entry: os, architecture, variant and the OS fields, when given. */
function indexPlatform(p: Platform): Platform {
  const out: Platform = { architecture: p.architecture, os: p.os };
  if (p.variant) out.variant = p.variant;
  if (p["os.version"]) out["os.version"] = p["os.version"];
  if (p["os.features"]?.length) out["os.features"] = [...p["os.features"]];
  if (p.features?.length) out.features = [...p.features];
  return out;
}

/** The index entry of a driver's child image: its manifest descriptor and its target platform. */
export function childEntry(child: ChildImage): IndexEntry {
  const descriptor: Descriptor = child.kind === "local"
    ? {
      mediaType: child.image.manifest.mediaType,
      digest: child.image.manifest.digest,
      size: child.image.manifest.bytes.byteLength,
    }
    : { mediaType: child.mediaType, digest: child.digest, size: child.size };
  return { descriptor, platform: child.target.parsed };
}
