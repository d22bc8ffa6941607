import assert from "node:assert/strict";
import { join } from "node:path";
import { KanikoError, UsageError } from "../../lib/errors.ts";
import { canonicalJson } from "../../lib/oci/canonical_json.ts";
import { digestOf } from "../../lib/oci/digest.ts";
import {
  formatLayoutRef,
  OciLayout,
  parseLayoutRef,
  REF_NAME_ANNOTATION,
} from "../../lib/oci/layout.ts";
import { OCI } from "../../lib/oci/media_types.ts";
import type { Descriptor } from "../../lib/oci/schemas.ts";
import { readAll, tempDir } from "../tar/helpers.ts";
import { buildImage } from "./image_fixture.ts";

const enc = new TextEncoder();

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

function blobDesc(bytes: Uint8Array): Descriptor {
  return { mediaType: "application/octet-stream", digest: digestOf(bytes), size: bytes.length };
}

Deno.test("parseLayoutRef splits at the last colon only before a valid tag", () => {
  const cases: Array<[string, { dir: string; tag?: string }]> = [
    ["oci:/tmp/layout", { dir: "/tmp/layout" }],
    ["oci:/tmp/layout:v1.2", { dir: "/tmp/layout", tag: "v1.2" }],
    ["oci:relative/dir:latest", { dir: "relative/dir", tag: "latest" }],
    ["oci:/a:b/c", { dir: "/a:b/c" }],
    ["oci:/a/x:1/", { dir: "/a/x:1/" }],
    ["oci:/a/x:1:v1", { dir: "/a/x:1", tag: "v1" }],
    ["oci:/a/b:-bad", { dir: "/a/b:-bad" }],
  ];
  for (const [text, want] of cases) {
    assert.deepEqual(parseLayoutRef(text), want, text);
    assert.equal(formatLayoutRef(want), text);
  }
  for (const bad of ["/tmp/x", "docker://x", "oci:", "oci:/tmp/x:", "oci::tag"]) {
    assert.throws(() => parseLayoutRef(bad), UsageError, bad);
  }
});

Deno.test("open: refuses a non-layout, creates one on request", async () => {
  await using tmp = await tempDir();
  const dir = join(tmp.dir, "l");
  await assert.rejects(
    OciLayout.open(dir),
    (e: unknown) =>
      e instanceof KanikoError &&
      e.message === `oci:${dir} is not an OCI image layout (no oci-layout file)`,
  );
  const layout = await OciLayout.open(dir, { create: true });
  assert.equal(layout.name, `oci:${dir}`);
  assert.deepEqual(await files(dir), ["blobs", "index.json", "oci-layout"]);
  assert.deepEqual(JSON.parse(await Deno.readTextFile(join(dir, "oci-layout"))), {
    imageLayoutVersion: "1.0.0",
  });
  assert.deepEqual(await layout.readIndex(), {
    schemaVersion: 2,
    mediaType: OCI.index,
    manifests: [],
  });
  await OciLayout.open(dir);
  await Deno.writeTextFile(join(dir, "oci-layout"), '{"imageLayoutVersion":"2.0.0"}');
  await assert.rejects(OciLayout.open(dir), /unsupported imageLayoutVersion "2\.0\.0"/);
  await Deno.writeTextFile(join(dir, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
  await Deno.writeTextFile(join(dir, "index.json"), "{}");
  await assert.rejects(OciLayout.open(dir), /index\.json is malformed: schemaVersion/);
});

Deno.test("writeBlob: verified, renamed into place, no temporary files left", async () => {
  await using tmp = await tempDir();
  const layout = await OciLayout.open(tmp.dir, { create: true });
  const bytes = enc.encode("some blob content");
  const progress: number[] = [];
  const got = await layout.writeBlob(
    ReadableStream.from([bytes.subarray(0, 4), bytes.subarray(4)]),
    {
      onProgress: (n) => progress.push(n),
    },
  );
  assert.deepEqual(got, { digest: digestOf(bytes), size: bytes.length });
  assert.deepEqual(progress, [4, bytes.length]);
  assert.deepEqual(await Deno.readFile(layout.blobPath(got.digest)), bytes);
  const sha512 = await layout.writeBlob(bytes, { algorithm: "sha512" });
  assert.equal(sha512.digest, digestOf(bytes, "sha512"));
  assert.ok((await Deno.stat(layout.blobPath(sha512.digest))).isFile);

  const other = enc.encode("other");
  await assert.rejects(
    layout.writeBlob(other, { expected: { digest: digestOf("nope"), size: 5 } }),
    (e: unknown) => e instanceof KanikoError && e.code === "DIGEST_INVALID",
  );
  await assert.rejects(
    layout.writeBlob(other, { expected: { digest: digestOf(other), size: 4 } }),
    (e: unknown) => e instanceof KanikoError && e.code === "SIZE_INVALID",
  );
  const failing = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(other);
      c.error(new Error("network reset"));
    },
  });
  await assert.rejects(layout.writeBlob(failing), /network reset/);
  assert.equal(await layout.hasBlob(blobDesc(other)), false);
  assert.deepEqual(await files(tmp.dir), ["blobs", "index.json", "oci-layout"]);
  assert.deepEqual(await files(join(tmp.dir, "blobs", "sha256")), [got.digest.slice(7)]);
});

Deno.test("openBlob: verifies from offset 0, seeks for an offset, clear errors", async () => {
  await using tmp = await tempDir();
  const layout = await OciLayout.open(tmp.dir, { create: true });
  const bytes = enc.encode("0123456789");
  const desc = { ...blobDesc(bytes), ...(await layout.writeBlob(bytes)) };
  assert.deepEqual(await readAll(await layout.openBlob(desc)), bytes);
  assert.equal(
    new TextDecoder().decode(await readAll(await layout.openBlob(desc, { offset: 7 }))),
    "789",
  );
  assert.equal(await layout.hasBlob(desc), true);
  assert.equal(await layout.hasBlob({ ...desc, size: 11 }), false);
  await assert.rejects(layout.openBlob(desc, { offset: 11 }), /offset 11 is past its size 10/);
  const missing = blobDesc(enc.encode("missing"));
  await assert.rejects(
    layout.openBlob(missing),
    (e: unknown) =>
      e instanceof KanikoError && e.code === "BLOB_UNKNOWN" && e.message.includes(layout.name),
  );
  const aborted = new AbortController();
  aborted.abort();
  await assert.rejects(layout.openBlob(desc, { signal: aborted.signal }));
  await Deno.writeTextFile(layout.blobPath(desc.digest), "0123456780");
  await assert.rejects(
    readAll(await layout.openBlob(desc)),
    (e: unknown) => e instanceof KanikoError && e.code === "DIGEST_INVALID",
  );
});

Deno.test("putBlob copies from another source once", async () => {
  await using tmp = await tempDir();
  const a = await OciLayout.open(join(tmp.dir, "a"), { create: true });
  const b = await OciLayout.open(join(tmp.dir, "b"), { create: true });
  const bytes = new Uint8Array(300_000).map((_, i) => i % 251);
  const desc = { ...blobDesc(bytes), ...(await a.writeBlob(bytes)) };
  let last = 0;
  assert.equal(await b.putBlob(desc, a, { onProgress: (n) => (last = n) }), "uploaded");
  assert.equal(last, bytes.length);
  assert.equal(await b.putBlob(desc, a), "exists");
  assert.deepEqual(await Deno.readFile(b.blobPath(desc.digest)), bytes);
  await assert.rejects(b.putBlob({ ...blobDesc(enc.encode("x")) }, a), /not found/);
});

Deno.test("manifests: tags, digests, the single default, and clear errors", async () => {
  await using tmp = await tempDir();
  const layout = await OciLayout.open(tmp.dir, { create: true });
  await assert.rejects(layout.getManifest(), /holds no image \(index\.json is empty\)/);
  const one = await buildImage(layout, { tag: "v1" });
  const def = await layout.getManifest();
  assert.deepEqual(def, one.manifest);
  assert.deepEqual(await layout.getManifest("v1"), one.manifest);
  assert.deepEqual(await layout.getManifest(one.manifest.digest), one.manifest);
  const [entry] = (await layout.readIndex()).manifests;
  assert.deepEqual(entry, {
    mediaType: OCI.manifest,
    digest: one.manifest.digest,
    size: one.manifest.bytes.length,
    platform: { architecture: "amd64", os: "linux" },
    annotations: { [REF_NAME_ANNOTATION]: "v1" },
  });

  const arm = await buildImage(layout, { architecture: "arm", variant: "v7" });
  assert.equal((await layout.readIndex()).manifests.length, 1, "untagged: blob only");
  assert.deepEqual(await layout.getManifest(arm.manifest.digest), arm.manifest);
  await layout.putManifest(arm.manifest, "arm");
  await layout.putManifest(arm.manifest, "v1");
  assert.deepEqual(await layout.tags(), ["v1", "arm"]);
  assert.equal((await layout.readIndex()).manifests[0].platform?.variant, "v7");
  await assert.rejects(layout.getManifest(), /holds 2 images; name one/);
  await assert.rejects(
    layout.getManifest("nope"),
    (e: unknown) =>
      e instanceof KanikoError && e.code === "MANIFEST_UNKNOWN" &&
      e.hint === "available tags: v1, arm",
  );
  await assert.rejects(layout.getManifest(digestOf("absent")), /not found in oci:/);
  await assert.rejects(layout.putManifest(arm.manifest, "bad tag"), UsageError);
  await assert.rejects(
    layout.putManifest({ ...arm.manifest, digest: digestOf("x") }),
    (e: unknown) => (e as KanikoError).code === "DIGEST_INVALID",
  );
  assert.equal(await layout.removeTag("arm"), true);
  assert.equal(await layout.removeTag("arm"), false);
  await layout.addToIndex({
    mediaType: OCI.manifest,
    digest: arm.manifest.digest,
    size: arm.manifest.bytes.length,
  });
  await layout.addToIndex({
    mediaType: OCI.manifest,
    digest: arm.manifest.digest,
    size: arm.manifest.bytes.length,
  });
  assert.equal((await layout.readIndex()).manifests.length, 2);
});

Deno.test("index.json updates are serialised across instances and written whole", async () => {
  await using tmp = await tempDir();
  const a = await OciLayout.open(tmp.dir, { create: true });
  const b = await OciLayout.open(tmp.dir);
  const bytes = canonicalJson({ schemaVersion: 2, mediaType: OCI.index, manifests: [] });
  const desc = { mediaType: OCI.index, digest: digestOf(bytes), size: bytes.length };
  await a.putManifest({ bytes, mediaType: OCI.index, digest: desc.digest });
  const tags = Array.from({ length: 30 }, (_, i) => `t${i}`);
  await Promise.all(tags.map((t, i) => (i % 2 ? a : b).setTag(t, desc)));
  assert.deepEqual((await a.tags()).sort(), [...tags].sort());
  assert.deepEqual(await files(tmp.dir), ["blobs", "index.json", "oci-layout"]);
  const index = JSON.parse(await Deno.readTextFile(join(tmp.dir, "index.json")));
  assert.equal(index.manifests[0].mediaType, OCI.index);
  assert.equal(index.manifests[0].platform, undefined);
});
