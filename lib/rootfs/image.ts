/**
 * Unpacking an image into a root directory: the manifest's layers, in order, each streamed from
 * its {@link ImageSource} (a registry repository, an OCI layout), verified against its digest
 * while it streams, decompressed by content (gzip with every member, zstd with every frame, or
 * plain — media types are not trusted for this), hashed for its diff_id, and applied with
 * {@link applyLayer}. No layer is ever held in memory or written to disk as a blob.
 *
 * A layer is applied as it arrives, so a blob whose digest turns out wrong has already been
 * partly applied when the error is thrown: the root is then unusable (as after any failed
 * apply) and the caller discards it.
 * @module
 */
import { KanikoError } from "../errors.ts";
import type { ImageSource, RawManifest } from "../oci/content.ts";
import { decompressByContent } from "../layer/mod.ts";
import { HashingStream } from "../oci/digest.ts";
import { hostPlatform, selectManifest } from "../oci/platform.ts";
import {
  type Descriptor,
  type ImageManifest,
  parseManifest,
  type Platform,
} from "../oci/schemas.ts";
import { applyLayer, type ApplyOptions } from "./apply.ts";

/** Options of {@link unpackImage}. */
export interface UnpackOptions {
  /** The ignore list (see {@link ApplyOptions.ignore}). */
  ignore?: ApplyOptions["ignore"];
  /** Create device nodes (see {@link ApplyOptions.devices}). */
  devices?: boolean;
  /** Leave these files out (see {@link ApplyOptions.skipFile}). */
  skipFile?: ApplyOptions["skipFile"];
  /** Names the image in messages (default: the source's name). */
  what?: string;
  /** The platform to pick when the manifest is an index (default: this host's). */
  platform?: Platform;
  /**
   * The image config's `rootfs.diff_ids`: each layer's uncompressed digest is checked against
   * them (the compressed digest is always checked).
   */
  diffIds?: string[];
  /** Aborts the download. */
  signal?: AbortSignal;
  /** Called before each layer is applied (`done` false) and after (`done` true). */
  onLayer?: (event: LayerEvent) => void;
}

/** Progress of {@link unpackImage}. */
export interface LayerEvent {
  /** 0-based index of the layer. */
  index: number;
  /** Number of layers. */
  count: number;
  /** The layer's descriptor. */
  layer: Descriptor;
  /** False before the layer is applied, true after. */
  done: boolean;
}

/** What {@link unpackImage} applied. */
export interface UnpackResult {
  /** The image manifest whose layers were applied (the platform's, for an index). */
  manifest: ImageManifest;
  /** Its digest, when known (a {@link RawManifest} was given). */
  digest?: string;
  /** Each layer, in order, with its uncompressed digest and the compression found. */
  layers: { descriptor: Descriptor; diffId: string; compression: string }[];
}

const LAYER_SUFFIXES = [".tar", ".tar+gzip", ".tar+zstd", ".tar.gzip", ".tar.zstd"];

/**
 * Applies the layers of `manifest` onto `root`, in order. `manifest` is the raw manifest (an
 * image manifest, or an index resolved with `options.platform`), its descriptor (fetched from
 * `source` by digest), or an already parsed image manifest. Throws a {@link KanikoError} naming
 * the image and the layer on any failure (download, digest, decompression, unsafe entry).
 */
export async function unpackImage(
  root: string,
  source: ImageSource,
  manifest: RawManifest | ImageManifest | Descriptor,
  options: UnpackOptions = {},
): Promise<UnpackResult> {
  const name = options.what ?? source.name;
  const { image, digest } = await resolveImage(source, manifest, name, options);
  const count = image.layers.length;
  if (options.diffIds && options.diffIds.length !== count) {
    throw new KanikoError(
      `${name}: the manifest has ${count} layers but the config lists ${options.diffIds.length} diff_ids`,
      { hint: "the image is corrupt" },
    );
  }
  const layers: UnpackResult["layers"] = [];
  for (const [index, layer] of image.layers.entries()) {
    const what = `${name} layer ${index + 1}/${count} (${layer.digest})`;
    if (!LAYER_SUFFIXES.some((s) => layer.mediaType.endsWith(s))) {
      throw new KanikoError(
        `${what} has media type ${layer.mediaType}, which is not a filesystem layer`,
        { hint: "only OCI and Docker image layers (tar, gzip, zstd) can be unpacked" },
      );
    }
    options.onLayer?.({ index, count, layer, done: false });
    const blob = await source.openBlob(layer, { signal: options.signal });
    const { stream, compression } = await decompressByContent(blob, what, { external: false });
    const hashing = new HashingStream("sha256");
    await applyLayer(root, stream.pipeThrough(hashing), {
      what,
      ignore: options.ignore,
      devices: options.devices,
      skipFile: options.skipFile,
    });
    const diffId = hashing.digest();
    const want = options.diffIds?.[index];
    if (want !== undefined && want !== diffId) {
      throw new KanikoError(`${what}: uncompressed digest is ${diffId}, expected ${want}`, {
        hint: "the image config does not match the layer; the image is corrupt",
        code: "DIGEST_INVALID",
      });
    }
    layers.push({ descriptor: layer, diffId, compression });
    options.onLayer?.({ index, count, layer, done: true });
  }
  return { manifest: image, digest, layers };
}

/** The image manifest to unpack: `manifest` itself, or the platform's entry of an index. */
async function resolveImage(
  source: ImageSource,
  manifest: RawManifest | ImageManifest | Descriptor,
  name: string,
  options: UnpackOptions,
): Promise<{ image: ImageManifest; digest?: string }> {
  if (Array.isArray((manifest as ImageManifest).layers)) {
    return { image: manifest as ImageManifest };
  }
  let raw = isRaw(manifest) ? manifest : await source.getManifest((manifest as Descriptor).digest);
  for (let depth = 0; depth < 4; depth++) {
    const what = `manifest ${raw.digest} of ${name}`;
    const parsed = parseManifest(raw.bytes, raw.mediaType, what);
    if (parsed.kind === "image") return { image: parsed.manifest, digest: raw.digest };
    const desc = selectManifest(parsed.manifest, options.platform ?? hostPlatform(), {
      what: name,
    });
    raw = await source.getManifest(desc.digest); // verified against the digest by the source
  }
  throw new KanikoError(`${name}: indexes nested too deeply`, { hint: "the image is corrupt" });
}

function isRaw(m: RawManifest | ImageManifest | Descriptor): m is RawManifest {
  return m.bytes instanceof Uint8Array;
}
