/**
 * Builds tiny images by hand for the layout and docker-archive tests: a gzip layer made with our
 * tar writer and node:zlib, an OCI config and manifest, stored in an {@link OciLayout}.
 * @module
 */
import { Duplex } from "node:stream";
import { createGzip } from "node:zlib";
import { canonicalJson } from "../../lib/oci/canonical_json.ts";
import type { RawManifest } from "../../lib/oci/content.ts";
import { type Digest, digestOf, HashingStream } from "../../lib/oci/digest.ts";
import type { OciLayout } from "../../lib/oci/layout.ts";
import { OCI } from "../../lib/oci/media_types.ts";
import type { Descriptor } from "../../lib/oci/schemas.ts";
import { createTarStream, type TarWriteEntry } from "../../lib/tar/mod.ts";

/** What {@link buildImage} stored. */
export interface BuiltImage {
  manifest: RawManifest;
  config: Descriptor;
  layers: Descriptor[];
  diffIds: Digest[];
}

/** Options for {@link buildImage}. */
export interface BuildImageOptions {
  /** Tag in index.json; none: the manifest is only stored as a blob. */
  tag?: string;
  architecture?: string;
  variant?: string;
  /** Layers, each a map of file path to content. */
  layers?: Array<Record<string, string>>;
}

/** Gzips a stream with node:zlib. */
export function gzip(stream: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const gz = Duplex.toWeb(createGzip({ level: 6 })) as unknown as ReadableWritablePair<
    Uint8Array,
    Uint8Array
  >;
  return stream.pipeThrough(gz);
}

function layerEntries(files: Record<string, string>): TarWriteEntry[] {
  const enc = new TextEncoder();
  const dirs = new Set<string>();
  for (const path of Object.keys(files)) {
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join("/") + "/");
  }
  return [
    ...[...dirs].sort().map((name) => ({ header: { name, type: "dir" as const, mode: 0o755 } })),
    ...Object.entries(files).map(([name, text]) => ({
      header: { name, type: "file" as const, mode: 0o755, mtime: 1700000000_000000000n },
      body: enc.encode(text),
    })),
  ];
}

/** Writes one gzip layer into the layout; returns its descriptor and diff id. */
export async function writeLayer(
  layout: OciLayout,
  files: Record<string, string>,
): Promise<{ desc: Descriptor; diffId: Digest }> {
  const plain = new HashingStream();
  const { digest, size } = await layout.writeBlob(
    gzip(createTarStream(layerEntries(files)).pipeThrough(plain)),
  );
  return { desc: { mediaType: OCI.layerGzip, digest, size }, diffId: plain.digest() };
}

/** Stores a small JSON document as a blob and returns its descriptor. */
export async function writeJson(
  layout: OciLayout,
  mediaType: string,
  value: unknown,
): Promise<Descriptor> {
  const bytes = canonicalJson(value);
  const { digest, size } = await layout.writeBlob(bytes);
  return { mediaType, digest, size };
}

/** Builds a one-platform image in `layout`. */
export async function buildImage(
  layout: OciLayout,
  options: BuildImageOptions = {},
): Promise<BuiltImage> {
  const layerFiles = options.layers ?? [{ "hello.txt": "hello from kaniko\n", "etc/os": "test\n" }];
  const built = [];
  for (const files of layerFiles) built.push(await writeLayer(layout, files));
  const config = await writeJson(layout, OCI.config, {
    architecture: options.architecture ?? "amd64",
    os: "linux",
    ...(options.variant ? { variant: options.variant } : {}),
    created: "2023-11-14T22:13:20Z",
    config: { Cmd: ["/hello.txt"], Env: ["PATH=/usr/bin"] },
    rootfs: { type: "layers", diff_ids: built.map((l) => l.diffId) },
    history: built.map(() => ({ created: "2023-11-14T22:13:20Z", created_by: "test" })),
  });
  const bytes = canonicalJson({
    schemaVersion: 2,
    mediaType: OCI.manifest,
    config,
    layers: built.map((l) => l.desc),
  });
  const manifest = { bytes, mediaType: OCI.manifest, digest: digestOf(bytes) };
  await layout.putManifest(manifest, options.tag);
  return {
    manifest,
    config,
    layers: built.map((l) => l.desc),
    diffIds: built.map((l) => l.diffId),
  };
}
