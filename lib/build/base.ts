/**
 * Base images of a build: resolving `FROM image` (and `COPY --from=image`) to the manifest and
 * config of the stage's platform, through the registry mirrors and maps, and unpacking an image
 * into a directory once per build.
 * @module
 */
import { KanikoError } from "../errors.ts";
import { log } from "../log.ts";
import type { ImageSource, RawManifest } from "../oci/content.ts";
import { isIndexType } from "../oci/media_types.ts";
import { formatPlatform, selectManifest } from "../oci/platform.ts";
import {
  type Descriptor,
  type ImageConfig,
  ImageConfigSchema,
  type ImageManifest,
  parseJson,
  parseManifest,
  type Platform,
} from "../oci/schemas.ts";
import { parseReference } from "../registry/reference.ts";
import type { RegistrySession } from "../registry/session.ts";
import { unpackImage } from "../rootfs/image.ts";

/** A resolved base image: where it lives, its manifest and config for one platform. */
export interface BaseImage {
  /** The reference as written (expanded). */
  ref: string;
  source: ImageSource;
  manifest: RawManifest;
  image: ImageManifest;
  config: ImageConfig;
}

/** Resolves base images once per build (by reference and platform). */
export class BaseImages {
  #session: RegistrySession;
  #images = new Map<string, Promise<BaseImage>>();
  #roots = new Map<string, Promise<string>>();

  constructor(session: RegistrySession) {
    this.#session = session;
  }

  /** The image `ref` for `platform`: pulled manifest (the platform's child of an index) and config. */
  resolve(ref: string, platform: Platform): Promise<BaseImage> {
    const key = `${ref}|${formatPlatform(platform)}`;
    let p = this.#images.get(key);
    if (!p) {
      p = this.#resolve(ref, platform);
      this.#images.set(key, p);
    }
    return p;
  }

  async #resolve(ref: string, platform: Platform): Promise<BaseImage> {
    const pulled = await this.#session.resolvePull(parseReference(ref));
    const source = pulled.repository;
    let manifest = pulled.manifest;
    if (isIndexType(manifest.mediaType)) {
      const index = parseManifest(manifest.bytes, manifest.mediaType, `manifest of ${ref}`);
      if (index.kind !== "index") throw new KanikoError(`${ref}: expected an index`);
      const child = selectManifest(index.manifest, platform, { what: ref });
      manifest = await source.getManifest(child.digest);
    }
    const parsed = parseManifest(manifest.bytes, manifest.mediaType, `manifest of ${ref}`);
    if (parsed.kind !== "image") throw new KanikoError(`${ref}: nested indexes are not supported`);
    const config = await readConfig(source, parsed.manifest.config, ref);
    if (config.os !== platform.os || config.architecture !== platform.architecture) {
      // BuildKit warns (InvalidBaseImagePlatform) and builds on.
      log.warn(
        `${ref} is for ${config.os}/${config.architecture}, not ${formatPlatform(platform)}`,
      );
    }
    return { ref, source, manifest, image: parsed.manifest, config };
  }

  /**
   * The image unpacked into a directory under `dir` (once per image and platform), for
   * `COPY --from=image`.
   */
  unpacked(ref: string, platform: Platform, dir: string): Promise<string> {
    const key = `${ref}|${formatPlatform(platform)}`;
    let p = this.#roots.get(key);
    if (!p) {
      p = (async () => {
        const base = await this.resolve(ref, platform);
        const root = await Deno.makeTempDir({ dir, prefix: "image-" });
        await unpackImage(root, base.source, base.manifest, {
          what: ref,
          diffIds: base.config.rootfs.diff_ids,
        });
        return root;
      })();
      this.#roots.set(key, p);
    }
    return p;
  }
}

/** Reads and validates an image config blob. */
export async function readConfig(
  source: ImageSource,
  desc: Descriptor,
  what: string,
): Promise<ImageConfig> {
  if (desc.size > 8 * 1024 * 1024) {
    throw new KanikoError(`${what}: config blob is ${desc.size} bytes, larger than 8 MiB`);
  }
  const stream = await source.openBlob(desc);
  const bytes = new Uint8Array(await new Response(stream).arrayBuffer());
  return parseJson(ImageConfigSchema, bytes, `config of ${what}`);
}
