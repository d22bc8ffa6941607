/**
 * The views every source and sink of images shares, in the manner of go-containerregistry: a
 * source serves manifests and blobs (a registry, an OCI layout, later a build), a sink accepts
 * them (a registry, an OCI layout, a Docker archive), and a copy is `source → sink`.
 * @module
 */
import type { Digest } from "./digest.ts";
import type { Descriptor } from "./schemas.ts";

/** Manifest bytes exactly as stored or served, with their media type and digest. */
export interface RawManifest {
  /** The exact bytes; never re-serialised. */
  bytes: Uint8Array;
  /** The manifest's media type (its own `mediaType`, else the served `Content-Type`). */
  mediaType: string;
  /** Digest of `bytes`. */
  digest: Digest;
}

/** Options for {@link BlobSource.openBlob}. */
export interface OpenBlobOptions {
  /** Start at this byte (resuming an upload). The content is verified only from offset 0. */
  offset?: number;
  /** Aborts the read. */
  signal?: AbortSignal;
  /**
   * Verify the content against the descriptor (default true). Only a consumer that verifies the
   * bytes itself may turn this off: a registry checks the digest of every upload.
   */
  verify?: boolean;
}

/** Something blobs can be read from. */
export interface BlobSource {
  /** The registry repository the blobs live in, when they do: lets a sink mount instead of copy. */
  readonly origin?: { registry: string; repository: string };
  /** Where one blob lives, for sources whose blobs come from several places (a build). */
  originOf?(desc: Descriptor): { registry: string; repository: string } | undefined;
  /**
   * Opens a blob as a stream. From offset 0 the stream errors if the bytes do not match
   * `desc.digest` and `desc.size`. Each call opens a fresh stream (so a retry can re-open).
   */
  openBlob(desc: Descriptor, options?: OpenBlobOptions): Promise<ReadableStream<Uint8Array>>;
}

/** Where an image or index can be read from. */
export interface ImageSource extends BlobSource {
  /** Human-readable name for messages, e.g. `127.0.0.1:5000/library/busybox` or `oci:/tmp/l`. */
  readonly name: string;
  /** Fetches a manifest or index by tag or digest (`ref` undefined: the source's default). */
  getManifest(ref?: string): Promise<RawManifest>;
}

/** Options for {@link ImageSink.putBlob}. */
export interface PutBlobOptions {
  /** Where the blob already lives in the same registry, to try a cross-repository mount. */
  mountFrom?: { registry: string; repository: string };
  /** Progress callback: bytes of this blob written so far. */
  onProgress?: (written: number) => void;
  signal?: AbortSignal;
}

/** What {@link ImageSink.putBlob} did. */
export type PutBlobResult = "exists" | "mounted" | "uploaded";

/** Where an image or index can be written to. */
export interface ImageSink {
  /** Human-readable name for messages. */
  readonly name: string;
  /** True when the sink already holds this blob. */
  hasBlob(desc: Descriptor): Promise<boolean>;
  /**
   * Stores a blob read from `source`; a no-op when the sink already holds it. Says what it did:
   * `exists` (nothing moved), `mounted` (cross-repository mount) or `uploaded`.
   */
  putBlob(desc: Descriptor, source: BlobSource, options?: PutBlobOptions): Promise<PutBlobResult>;
  /** True when the sink already holds this manifest (by digest). */
  hasManifest(desc: Descriptor): Promise<boolean>;
  /**
   * Stores manifest bytes, by digest, and under `tag` when given. Blobs and children it refers to
   * must be stored first.
   */
  putManifest(manifest: RawManifest, tag?: string): Promise<void>;
  /**
   * Records an untagged top-level manifest, for sinks that list their roots (an OCI layout's
   * `index.json`). Registries need nothing more than {@link putManifest} by digest.
   */
  addToIndex?(desc: Descriptor): Promise<void>;
}
