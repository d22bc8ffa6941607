/**
 * A built image as an {@link ImageSource}: its manifest and config made here, its layers read
 * from where they are — the base image's repository (so a registry sink can mount them) or the
 * blob files the build wrote. Outputs (push, OCI layout, docker archive) copy from it.
 * @module
 */
import type { BlobSource, ImageSource, OpenBlobOptions, RawManifest } from "../oci/content.ts";
import { canonicalJson } from "../oci/canonical_json.ts";
import { digestOf, verifyStream } from "../oci/digest.ts";
import { DOCKER, OCI } from "../oci/media_types.ts";
import type { Descriptor, ImageConfig } from "../oci/schemas.ts";
import { KanikoError } from "../errors.ts";

/** A layer of a built image and where its blob can be read. */
export interface LayerRef {
  descriptor: Descriptor;
  diffId: string;
  source: BlobSource;
}

/** Reads blobs from files on disk (the layers a build wrote). */
export class FileBlobSource implements BlobSource {
  #paths = new Map<string, string>();

  /** Registers the file holding a blob. */
  add(digest: string, path: string): void {
    this.#paths.set(digest, path);
  }

  async openBlob(desc: Descriptor, options: OpenBlobOptions = {}) {
    const path = this.#paths.get(desc.digest);
    if (!path) throw new KanikoError(`blob ${desc.digest} is not one this build wrote`);
    const file = await Deno.open(path);
    if (options.offset) await file.seek(options.offset, Deno.SeekMode.Start);
    const stream = file.readable;
    return options.offset || options.verify === false
      ? stream
      : verifyStream(stream, desc, `layer ${desc.digest} (${path})`);
  }
}

/** Options for {@link assembleImage}. */
export interface AssembleOptions {
  /** Manifest and layer media types: OCI (default) or Docker v2 schema 2. */
  format: "oci" | "docker";
  /** Manifest annotations (OCI only). */
  annotations?: Record<string, string>;
  /** Name for messages. */
  name?: string;
}

/** The image a build produced. */
export class BuiltImage implements ImageSource {
  readonly name: string;
  readonly manifest: RawManifest;
  readonly config: Uint8Array;
  readonly configDescriptor: Descriptor;
  readonly layers: LayerRef[];

  constructor(init: {
    name: string;
    manifest: RawManifest;
    config: Uint8Array;
    configDescriptor: Descriptor;
    layers: LayerRef[];
  }) {
    this.name = init.name;
    this.manifest = init.manifest;
    this.config = init.config;
    this.configDescriptor = init.configDescriptor;
    this.layers = init.layers;
  }

  getManifest(ref?: string): Promise<RawManifest> {
    if (ref && ref !== this.manifest.digest) {
      return Promise.reject(new KanikoError(`${this.name} has no manifest ${ref}`));
    }
    return Promise.resolve(this.manifest);
  }

  openBlob(desc: Descriptor, options?: OpenBlobOptions): Promise<ReadableStream<Uint8Array>> {
    if (desc.digest === this.configDescriptor.digest) {
      const bytes = this.config.subarray(options?.offset ?? 0);
      return Promise.resolve(ReadableStream.from([bytes]));
    }
    const layer = this.layers.find((l) => l.descriptor.digest === desc.digest);
    if (!layer) return Promise.reject(new KanikoError(`${this.name} has no blob ${desc.digest}`));
    return layer.source.openBlob(desc, options);
  }

  originOf(desc: Descriptor): { registry: string; repository: string } | undefined {
    const layer = this.layers.find((l) => l.descriptor.digest === desc.digest);
    return layer?.source.originOf?.(desc) ?? layer?.source.origin;
  }
}

/** Builds the manifest and config of an image from its config and layers. */
export function assembleImage(
  config: ImageConfig,
  layers: LayerRef[],
  options: AssembleOptions,
): BuiltImage {
  const docker = options.format === "docker";
  const full: ImageConfig = {
    ...config,
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
  };
  const configBytes = canonicalJson(full);
  const configDescriptor: Descriptor = {
    mediaType: docker ? DOCKER.config : OCI.config,
    digest: digestOf(configBytes),
    size: configBytes.byteLength,
  };
  const manifest: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: docker ? DOCKER.manifest : OCI.manifest,
    config: configDescriptor,
    layers: layers.map((l) => l.descriptor),
  };
  if (!docker && options.annotations && Object.keys(options.annotations).length) {
    manifest.annotations = options.annotations;
  }
  const bytes = canonicalJson(manifest);
  return new BuiltImage({
    name: options.name ?? "the built image",
    manifest: { bytes, mediaType: manifest.mediaType as string, digest: digestOf(bytes) },
    config: configBytes,
    configDescriptor,
    layers,
  });
}
