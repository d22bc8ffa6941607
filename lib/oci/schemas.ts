/**
 * zod schemas for every OCI / Docker JSON document we read from outside: descriptors, image
 * manifests, indexes and manifest lists, image configs, `index.json` and `oci-layout`. Unknown
 * fields are kept (`looseObject`), as the specs require; we never re-serialise what we read, so
 * exact bytes are preserved anyway.
 * @module
 */
import { z } from "zod";
import { KanikoError } from "../errors.ts";
import { isDigest } from "./digest.ts";
import { DOCKER, INDEX_TYPES, OCI } from "./media_types.ts";

const digest = z.string().refine(isDigest, { message: "invalid digest" });
const annotations = z.record(z.string(), z.string());

/** A platform as it appears in an index entry or manifest list. */
export const PlatformSchema = z.looseObject({
  architecture: z.string(),
  os: z.string(),
  "os.version": z.string().optional(),
  "os.features": z.array(z.string()).optional(),
  variant: z.string().optional(),
  features: z.array(z.string()).optional(),
});
/** A platform as it appears in an index entry or manifest list. */
export type Platform = z.infer<typeof PlatformSchema>;

/** An OCI content descriptor (also Docker's). */
export const DescriptorSchema = z.looseObject({
  mediaType: z.string(),
  digest,
  size: z.number().int().nonnegative(),
  urls: z.array(z.string()).optional(),
  annotations: annotations.optional(),
  data: z.string().optional(),
  artifactType: z.string().optional(),
  platform: PlatformSchema.optional(),
});
/** An OCI content descriptor (also Docker's). */
export type Descriptor = z.infer<typeof DescriptorSchema>;

/** An OCI image manifest or a Docker v2 schema 2 manifest. */
export const ImageManifestSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  config: DescriptorSchema,
  layers: z.array(DescriptorSchema),
  subject: DescriptorSchema.optional(),
  annotations: annotations.optional(),
});
/** An OCI image manifest or a Docker v2 schema 2 manifest. */
export type ImageManifest = z.infer<typeof ImageManifestSchema>;

/** An OCI image index or a Docker manifest list. */
export const IndexSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  manifests: z.array(DescriptorSchema),
  subject: DescriptorSchema.optional(),
  annotations: annotations.optional(),
});
/** An OCI image index or a Docker manifest list. */
export type Index = z.infer<typeof IndexSchema>;

/** The runtime part of an image config (`config` field). Keys as OCI/Docker spell them. */
export const RuntimeConfigSchema = z.looseObject({
  User: z.string().optional(),
  ExposedPorts: z.record(z.string(), z.object({})).nullish(),
  Env: z.array(z.string()).nullish(),
  Entrypoint: z.array(z.string()).nullish(),
  Cmd: z.array(z.string()).nullish(),
  Volumes: z.record(z.string(), z.object({})).nullish(),
  WorkingDir: z.string().optional(),
  Labels: z.record(z.string(), z.string()).nullish(),
  StopSignal: z.string().optional(),
  ArgsEscaped: z.boolean().optional(),
  Healthcheck: z.looseObject({}).nullish(),
  OnBuild: z.array(z.string()).nullish(),
  Shell: z.array(z.string()).nullish(),
});
/** The runtime part of an image config. */
export type RuntimeConfig = z.infer<typeof RuntimeConfigSchema>;

/** One history entry of an image config. */
export const HistorySchema = z.looseObject({
  created: z.string().optional(),
  created_by: z.string().optional(),
  author: z.string().optional(),
  comment: z.string().optional(),
  empty_layer: z.boolean().optional(),
});
/** One history entry of an image config. */
export type History = z.infer<typeof HistorySchema>;

/** An OCI image config or Docker container image config. */
export const ImageConfigSchema = z.looseObject({
  created: z.string().optional(),
  author: z.string().optional(),
  architecture: z.string(),
  os: z.string(),
  "os.version": z.string().optional(),
  "os.features": z.array(z.string()).optional(),
  variant: z.string().optional(),
  config: RuntimeConfigSchema.nullish(),
  rootfs: z.looseObject({ type: z.literal("layers"), diff_ids: z.array(digest) }),
  history: z.array(HistorySchema).optional(),
});
/** An OCI image config or Docker container image config. */
export type ImageConfig = z.infer<typeof ImageConfigSchema>;

/** The `oci-layout` file of an image layout. */
export const LayoutHeaderSchema = z.looseObject({ imageLayoutVersion: z.string() });

/** A manifest of either kind, discriminated by shape. */
export type Manifest = ImageManifest | Index;

/**
 * Parses JSON `bytes` from outside against `schema`. Errors name `what` (e.g. `manifest of
 * REG/REPO:TAG`) and the first offending field, in one line.
 */
export function parseJson<T extends z.ZodType>(
  schema: T,
  bytes: Uint8Array | string,
  what: string,
): z.infer<T> {
  let value: unknown;
  try {
    value = JSON.parse(typeof bytes === "string" ? bytes : new TextDecoder().decode(bytes));
  } catch (e) {
    throw new KanikoError(`${what} is not valid JSON: ${(e as Error).message}`);
  }
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const path = issue.path.length ? issue.path.join(".") : "(top level)";
    throw new KanikoError(`${what} is malformed: ${path}: ${issue.message}`);
  }
  return result.data;
}

/**
 * Parses manifest bytes served with `contentType` (or its own `mediaType`), deciding between an
 * image manifest and an index. Refuses Docker schema 1 with a clear error.
 */
export function parseManifest(
  bytes: Uint8Array,
  contentType: string | undefined,
  what: string,
): { kind: "index"; manifest: Index; mediaType: string } | {
  kind: "image";
  manifest: ImageManifest;
  mediaType: string;
} {
  const probe = parseJson(
    z.looseObject({ mediaType: z.string().optional(), manifests: z.unknown().optional() }),
    bytes,
    what,
  );
  const mediaType = probe.mediaType ?? mediaTypeFromContentType(contentType) ??
    (probe.manifests !== undefined ? OCI.index : OCI.manifest);
  if (mediaType === DOCKER.manifestV1 || mediaType === DOCKER.manifestV1Signed) {
    throw new KanikoError(`${what} is a Docker schema 1 manifest, which is not supported`, {
      hint: "re-push the image with a current Docker or registry client",
    });
  }
  if (INDEX_TYPES.includes(mediaType) || probe.manifests !== undefined) {
    return { kind: "index", manifest: parseJson(IndexSchema, bytes, what), mediaType };
  }
  return { kind: "image", manifest: parseJson(ImageManifestSchema, bytes, what), mediaType };
}

/** The media type of a `Content-Type` header value, without parameters; undefined for generic types. */
export function mediaTypeFromContentType(
  contentType: string | undefined | null,
): string | undefined {
  if (!contentType) return undefined;
  const t = contentType.split(";")[0].trim().toLowerCase();
  if (!t || t === "application/json" || t === "text/plain" || t === "application/octet-stream") {
    return undefined;
  }
  return t;
}
