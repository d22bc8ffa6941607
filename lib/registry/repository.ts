/**
 * A repository in a registry seen as an {@link ImageSource} and an {@link ImageSink}: the
 * registry's view in the source → sink model.
 * @module
 */
import type {
  BlobSource,
  ImageSink,
  ImageSource,
  OpenBlobOptions,
  PutBlobOptions,
  PutBlobResult,
  RawManifest,
} from "../oci/content.ts";
import type { Descriptor } from "../oci/schemas.ts";
import { headBlob, openRegistryBlob, uploadBlob } from "./blobs.ts";
import type { RegistryClient } from "./client.ts";

/** One repository of one registry, readable and writable. */
export class RegistryRepository implements ImageSource, ImageSink {
  readonly client: RegistryClient;
  readonly repository: string;
  readonly origin: { registry: string; repository: string };
  /** The tag or digest `getManifest()` fetches when given none. */
  readonly defaultRef: string;

  constructor(client: RegistryClient, repository: string, defaultRef = "latest") {
    this.client = client;
    this.repository = repository;
    this.defaultRef = defaultRef;
    this.origin = { registry: client.registry, repository };
  }

  /** `registry/repository`. */
  get name(): string {
    return `${this.client.registry}/${this.repository}`;
  }

  getManifest(ref?: string): Promise<RawManifest> {
    return this.client.getManifest(this.repository, ref ?? this.defaultRef);
  }

  openBlob(desc: Descriptor, options?: OpenBlobOptions): Promise<ReadableStream<Uint8Array>> {
    return openRegistryBlob(this.client, this.repository, desc, options);
  }

  async hasBlob(desc: Descriptor): Promise<boolean> {
    return await headBlob(this.client, this.repository, desc.digest) !== undefined;
  }

  putBlob(
    desc: Descriptor,
    source: BlobSource,
    options: PutBlobOptions = {},
  ): Promise<PutBlobResult> {
    const mountFrom = options.mountFrom ?? source.originOf?.(desc) ?? source.origin;
    return uploadBlob(this.client, this.repository, desc, source, { ...options, mountFrom });
  }

  async hasManifest(desc: Descriptor): Promise<boolean> {
    return await this.client.headManifest(this.repository, desc.digest) !== undefined;
  }

  putManifest(manifest: RawManifest, tag?: string): Promise<void> {
    return this.client.putManifest(this.repository, tag ?? manifest.digest, manifest);
  }
}
