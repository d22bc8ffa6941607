/**
 * The `oci://REGISTRY/REPO@sha256:…` build context: a build context stored in a registry as an
 * OCI artifact (artifactType {@link CONTEXT_ARTIFACT_TYPE}, the OCI empty config, and one tar
 * layer, gzip, zstd or plain), as the `k8s` driver pushes a local directory for its Jobs. Anyone
 * can push one (`oras push`, or {@link pushContextArtifact}); a tag works too, a digest pins it.
 * The manifest and every layer are verified against their digests, and the layers are extracted
 * in order with the safe tar extractor (nothing lands outside the context directory).
 * @module
 */
import { KanikoError, UsageError } from "../errors.ts";
import { log } from "../log.ts";
import type { OpenBlobOptions, RawManifest } from "../oci/content.ts";
import { digestOf } from "../oci/digest.ts";
import { OCI } from "../oci/media_types.ts";
import { type Descriptor, parseManifest } from "../oci/schemas.ts";
import { defaultRegistryOptions, type RegistryOptions } from "../registry/options.ts";
import { parseReference, type Reference } from "../registry/reference.ts";
import { RegistrySession } from "../registry/session.ts";
import { decompressByContent } from "./decompress.ts";
import { extractTar } from "./extract.ts";

/** The artifactType of a build context artifact. */
export const CONTEXT_ARTIFACT_TYPE = "application/vnd.kaniko-deno.context.v1";
/** The OCI empty JSON descriptor (`{}`), the config of artifacts. */
export const EMPTY_DESCRIPTOR: Descriptor = {
  mediaType: OCI.empty,
  digest: "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
  size: 2,
  data: "e30=",
};

/** An `oci://` context. */
export interface OciSource {
  kind: "oci";
  /** The image reference after `oci://` (normalised). */
  reference: string;
}

/** Parses the part after `oci://`; a malformed reference is a usage error. */
export function parseOciSource(rest: string, spec: string): OciSource {
  if (rest === "") {
    throw new UsageError(`--context ${spec}: the artifact reference is missing`, {
      hint: "write oci://REGISTRY/REPOSITORY@sha256:DIGEST",
    });
  }
  const ref = parseReference(rest, { usage: true });
  return { kind: "oci", reference: ref.toString() };
}

/** Options of {@link fetchOciContext}. */
export interface OciFetchOptions {
  /** Registry flags (TLS, insecure registries, mirrors, Docker config). */
  registry?: RegistryOptions;
  /** A session to reuse (else one is created and closed). */
  session?: RegistrySession;
  signal?: AbortSignal;
}

/** Pulls the artifact `source` names and extracts its layers into `dest` (an empty directory). */
export async function fetchOciContext(
  source: OciSource,
  dest: string,
  what: string,
  options: OciFetchOptions = {},
): Promise<string> {
  const ref = parseReference(source.reference);
  const session = options.session ?? new RegistrySession(options.registry ?? registryDefaults());
  try {
    const repo = session.repository(ref, "pull");
    const manifest = await repo.getManifest();
    const layers = contextLayers(manifest, ref, what);
    for (const layer of layers) {
      const blob = await repo.openBlob(layer, { signal: options.signal });
      const { stream, compression } = await decompressByContent(blob, what);
      const result = await extractTar(stream, dest, { name: what, signal: options.signal });
      log.debug("extracted a build context layer", {
        context: what,
        layer: layer.digest,
        compression,
        entries: result.entries,
      });
    }
    return manifest.digest;
  } finally {
    if (!options.session) session.close();
  }
}

function registryDefaults(): RegistryOptions {
  const options = defaultRegistryOptions();
  options.dockerConfigDir = Deno.env.get("DOCKER_CONFIG") || undefined;
  return options;
}

function contextLayers(manifest: RawManifest, ref: Reference, what: string): Descriptor[] {
  const parsed = parseManifest(manifest.bytes, manifest.mediaType, what);
  if (parsed.kind === "index") {
    throw new KanikoError(`${what}: ${ref.toString()} is an image index, not a context artifact`, {
      hint: "reference the artifact's manifest by digest",
    });
  }
  const m = parsed.manifest as typeof parsed.manifest & { artifactType?: string };
  const type = m.artifactType ?? m.config?.mediaType;
  if (type !== CONTEXT_ARTIFACT_TYPE && m.config?.mediaType !== OCI.empty) {
    log.warn(`${what}: artifact type ${type ?? "none"} is not ${CONTEXT_ARTIFACT_TYPE}`);
  }
  const layers = (m.layers ?? []) as Descriptor[];
  if (layers.length === 0) {
    throw new KanikoError(`${what}: ${ref.toString()} has no layer to use as a build context`);
  }
  return layers;
}

/** A context tarball to push: a blob on disk (gzip tar) with its digest and size. */
export interface ContextBlob {
  path: string;
  digest: string;
  size: number;
  mediaType: string;
}

/** The artifact manifest of a context blob (deterministic bytes). */
export function contextManifest(blob: ContextBlob): RawManifest {
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI.manifest,
    artifactType: CONTEXT_ARTIFACT_TYPE,
    config: EMPTY_DESCRIPTOR,
    layers: [{
      mediaType: blob.mediaType,
      digest: blob.digest,
      size: blob.size,
      annotations: { "org.opencontainers.image.title": "context.tar.gz" },
    }],
  };
  const bytes = new TextEncoder().encode(JSON.stringify(manifest));
  return { bytes, mediaType: OCI.manifest, digest: digestOf(bytes) };
}

/**
 * Pushes a context blob as an artifact to `repository` (`REGISTRY/REPO`), by digest (no tag);
 * returns the `oci://REGISTRY/REPO@sha256:…` context value.
 */
export async function pushContextArtifact(
  session: RegistrySession,
  repository: string,
  blob: ContextBlob,
  signal?: AbortSignal,
): Promise<string> {
  const ref = parseReference(repository, { defaultTag: false });
  const repo = session.repository(ref, "push");
  const empty = new TextEncoder().encode("{}");
  const emptySource = {
    openBlob: (_: Descriptor, o?: OpenBlobOptions) =>
      Promise.resolve(ReadableStream.from([empty.subarray(o?.offset ?? 0)])),
  };
  await repo.putBlob(EMPTY_DESCRIPTOR, emptySource, { signal });
  const layer = { mediaType: blob.mediaType, digest: blob.digest, size: blob.size };
  const fileSource = {
    openBlob: async (_: Descriptor, o?: OpenBlobOptions) => {
      const file = await Deno.open(blob.path);
      if (o?.offset) await file.seek(o.offset, Deno.SeekMode.Start);
      return file.readable;
    },
  };
  await repo.putBlob(layer, fileSource, { signal });
  const manifest = contextManifest(blob);
  await repo.putManifest(manifest);
  return `oci://${ref.name}@${manifest.digest}`;
}
