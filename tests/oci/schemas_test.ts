import assert from "node:assert/strict";
import { KanikoError } from "../../lib/errors.ts";
import { digestOf } from "../../lib/oci/digest.ts";
import { DOCKER, OCI } from "../../lib/oci/media_types.ts";
import {
  DescriptorSchema,
  ImageConfigSchema,
  ImageManifestSchema,
  IndexSchema,
  mediaTypeFromContentType,
  parseJson,
  parseManifest,
} from "../../lib/oci/schemas.ts";

const enc = new TextEncoder();
const D = digestOf("x");
const desc = (mediaType: string, extra: Record<string, unknown> = {}) => ({
  mediaType,
  digest: D,
  size: 1,
  ...extra,
});
const image = {
  schemaVersion: 2,
  mediaType: OCI.manifest,
  config: desc(OCI.config),
  layers: [desc(OCI.layerGzip)],
  "x-unknown": { kept: true },
};
const index = {
  schemaVersion: 2,
  mediaType: OCI.index,
  manifests: [
    desc(OCI.manifest, { platform: { os: "linux", architecture: "arm64", variant: "v8" } }),
  ],
};

Deno.test("parseJson: valid documents keep unknown fields", () => {
  const m = parseJson(ImageManifestSchema, enc.encode(JSON.stringify(image)), "manifest");
  assert.deepEqual(m["x-unknown"], { kept: true });
  assert.equal(m.layers[0].mediaType, OCI.layerGzip);
  const i = parseJson(IndexSchema, JSON.stringify(index), "index");
  assert.equal(i.manifests[0].platform?.variant, "v8");
});

Deno.test("parseJson: one-line errors naming the document and the field", () => {
  assert.throws(
    () => parseJson(ImageManifestSchema, "{not json", "manifest of r/x:1"),
    (e: unknown) =>
      e instanceof KanikoError && /^manifest of r\/x:1 is not valid JSON/.test(e.message),
  );
  const bad = { ...image, layers: [desc(OCI.layer, { digest: "sha256:nothex" })] };
  assert.throws(
    () => parseJson(ImageManifestSchema, JSON.stringify(bad), "manifest of r/x:1"),
    /manifest of r\/x:1 is malformed: layers\.0\.digest: invalid digest/,
  );
  assert.throws(
    () => parseJson(ImageManifestSchema, JSON.stringify({ ...image, schemaVersion: 1 }), "m"),
    /m is malformed: schemaVersion/,
  );
  assert.throws(() => parseJson(ImageManifestSchema, "[]", "m"), /m is malformed: \(top level\)/);
});

Deno.test("DescriptorSchema refuses negative sizes and bad digests", () => {
  assert.equal(DescriptorSchema.safeParse(desc(OCI.layer)).success, true);
  assert.equal(DescriptorSchema.safeParse(desc(OCI.layer, { size: -1 })).success, false);
  assert.equal(DescriptorSchema.safeParse(desc(OCI.layer, { size: 1.5 })).success, false);
  assert.equal(DescriptorSchema.safeParse(desc(OCI.layer, { digest: "md5:x" })).success, true);
  assert.equal(DescriptorSchema.safeParse(desc(OCI.layer, { digest: "sha256:ab" })).success, false);
});

Deno.test("ImageConfigSchema accepts null optional fields and requires rootfs", () => {
  const config = {
    architecture: "amd64",
    os: "linux",
    config: { Env: null, Cmd: ["sh"], Labels: null, ExposedPorts: { "80/tcp": {} } },
    rootfs: { type: "layers", diff_ids: [D] },
    history: [{ created_by: "x", empty_layer: true }],
  };
  const c = parseJson(ImageConfigSchema, JSON.stringify(config), "config");
  assert.deepEqual(c.config?.Cmd, ["sh"]);
  assert.throws(
    () =>
      parseJson(
        ImageConfigSchema,
        JSON.stringify({ ...config, rootfs: { type: "x", diff_ids: [] } }),
        "c",
      ),
    /c is malformed: rootfs\.type/,
  );
});

Deno.test("parseManifest tells images from indexes", () => {
  const img = parseManifest(enc.encode(JSON.stringify(image)), undefined, "m");
  assert.deepEqual([img.kind, img.mediaType], ["image", OCI.manifest]);
  const idx = parseManifest(enc.encode(JSON.stringify(index)), "application/json", "m");
  assert.deepEqual([idx.kind, idx.mediaType], ["index", OCI.index]);
  const { mediaType: _m, ...bare } = index;
  const noType = parseManifest(enc.encode(JSON.stringify(bare)), undefined, "m");
  assert.deepEqual([noType.kind, noType.mediaType], ["index", OCI.index]);
  const { mediaType: _n, ...bareImage } = image;
  const fromHeader = parseManifest(
    enc.encode(JSON.stringify(bareImage)),
    `${DOCKER.manifest}; charset=utf-8`,
    "m",
  );
  assert.deepEqual([fromHeader.kind, fromHeader.mediaType], ["image", DOCKER.manifest]);
  const list = parseManifest(
    enc.encode(JSON.stringify({ ...index, mediaType: DOCKER.manifestList })),
    undefined,
    "m",
  );
  assert.deepEqual([list.kind, list.mediaType], ["index", DOCKER.manifestList]);
});

Deno.test("parseManifest refuses Docker schema 1 with a hint", () => {
  const v1 = { schemaVersion: 1, name: "x", tag: "y", fsLayers: [] };
  assert.throws(
    () =>
      parseManifest(enc.encode(JSON.stringify(v1)), DOCKER.manifestV1Signed, "manifest of r/x:1"),
    (e: unknown) =>
      e instanceof KanikoError && /schema 1/.test(e.message) && /re-push/.test(e.hint ?? ""),
  );
});

Deno.test("mediaTypeFromContentType strips parameters and generic types", () => {
  assert.equal(mediaTypeFromContentType(`${OCI.index}; charset=utf-8`), OCI.index);
  assert.equal(mediaTypeFromContentType("Application/JSON"), undefined);
  assert.equal(mediaTypeFromContentType("text/plain; charset=utf-8"), undefined);
  assert.equal(mediaTypeFromContentType("application/octet-stream"), undefined);
  assert.equal(mediaTypeFromContentType(null), undefined);
  assert.equal(mediaTypeFromContentType(""), undefined);
});
