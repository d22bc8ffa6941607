/**
 * The registry side of the `ci` driver: each platform's manifest must exist in its repository,
 * be one image (not an index) in the build's media types, and carry a config whose platform is
 * the one its digest file was named for.
 * @module
 */
import { describeError, KanikoError } from "../../lib/errors.ts";
import { DOCKER, OCI } from "../../lib/oci/media_types.ts";
import { formatPlatform, platformMatches } from "../../lib/oci/platform.ts";
import {
  type Descriptor,
  ImageConfigSchema,
  parseJson,
  parseManifest,
} from "../../lib/oci/schemas.ts";
import { RegistryError } from "../../lib/registry/errors.ts";
import { parseReference } from "../../lib/registry/reference.ts";
import type { RegistryRepository } from "../../lib/registry/repository.ts";
import type { ChildImage, DriverContext, MultiPlatformBuild } from "../types.ts";
import type { DigestRef, Problem } from "./digest_files.ts";

/** Largest image config we read (configs are a few KiB). */
const MAX_CONFIG = 8 * 1024 * 1024;

const NOT_FOUND = new Set(["MANIFEST_UNKNOWN", "NAME_UNKNOWN", "NOT_FOUND", "BLOB_UNKNOWN"]);

/**
 * Checks one platform's manifest in the registry: a remote {@link ChildImage}, or a
 * {@link Problem} saying what is wrong (not found, an index, wrong media type, platform mismatch).
 */
export async function verifyChild(
  build: MultiPlatformBuild,
  ctx: DriverContext,
  ref: DigestRef,
): Promise<ChildImage | Problem> {
  const { target, reference } = ref;
  const digest = reference.digest!;
  const where = reference.name;
  const repo = ctx.session.repository(reference, direction(build, ref));
  const fail = (problem: string): Problem => ({ target, problem });
  ctx.signal.throwIfAborted();
  let raw;
  try {
    raw = await repo.getManifest(digest);
  } catch (e) {
    if (isNotFound(e)) return fail(`manifest ${digest} not found in ${where}`);
    return fail(`cannot fetch ${where}@${digest}: ${describeError(e)}`);
  }
  const parsed = parseManifest(raw.bytes, raw.mediaType, `manifest ${where}@${digest}`);
  if (parsed.kind === "index") {
    return fail(
      `${where}@${digest} is an image index (${raw.mediaType}), not one platform's image`,
    );
  }
  const want = build.format === "docker" ? DOCKER.manifest : OCI.manifest;
  if (raw.mediaType !== want) {
    return fail(
      `${where}@${digest} is a ${raw.mediaType} manifest, but the index is built with ` +
        `${build.format === "docker" ? "Docker" : "OCI"} media types (${want})`,
    );
  }
  let config;
  try {
    config = await readConfig(repo, parsed.manifest.config, ctx.signal);
  } catch (e) {
    return fail(`cannot read the config of ${where}@${digest}: ${describeError(e)}`);
  }
  if (!platformMatches(target.parsed, config)) {
    return fail(
      `platform mismatch: the config of ${where}@${digest} says ${formatPlatform(config)}`,
    );
  }
  return {
    kind: "remote",
    target,
    repository: where,
    digest,
    mediaType: raw.mediaType,
    size: raw.bytes.byteLength,
  };
}

/** Push access for the first destination's repository (the index goes there), else pull. */
function direction(build: MultiPlatformBuild, ref: DigestRef): "pull" | "push" {
  const dest = build.opts.destinations[0];
  return dest && parseReference(dest).name === ref.reference.name ? "push" : "pull";
}

function isNotFound(e: unknown): boolean {
  if (e instanceof RegistryError && e.status === 404) return true;
  return e instanceof KanikoError && NOT_FOUND.has(e.code ?? "");
}

async function readConfig(repo: RegistryRepository, desc: Descriptor, signal: AbortSignal) {
  if (desc.size > MAX_CONFIG) {
    throw new KanikoError(`config ${desc.digest} is ${desc.size} bytes, larger than 8 MiB`);
  }
  const stream = await repo.openBlob(desc, { signal });
  const bytes = new Uint8Array(await new Response(stream).arrayBuffer());
  return parseJson(ImageConfigSchema, bytes, `config ${desc.digest}`);
}
