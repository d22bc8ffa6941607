import assert from "node:assert/strict";
import { createGunzip } from "node:zlib";
import { Duplex } from "node:stream";
import { join } from "node:path";
import { KanikoError } from "../../lib/errors.ts";
import { canonicalJson } from "../../lib/oci/canonical_json.ts";
import { digestOf, HashingStream } from "../../lib/oci/digest.ts";
import {
  layerFileName,
  normalizeRepoTag,
  writeDockerArchive,
} from "../../lib/oci/docker_archive.ts";
import { OciLayout } from "../../lib/oci/layout.ts";
import { OCI } from "../../lib/oci/media_types.ts";
import { ImageConfigSchema, ImageManifestSchema, parseJson } from "../../lib/oci/schemas.ts";
import { have, readEntries, run, tempDir } from "../tar/helpers.ts";
import { buildImage } from "./image_fixture.ts";

const hasSkopeo = await have("skopeo");

async function fixture(dir: string) {
  const layout = await OciLayout.open(join(dir, "layout"), { create: true });
  const img = await buildImage(layout, {
    tag: "v1",
    layers: [{ "a.txt": "a\n" }, { "b.txt": "b\n" }, { "a.txt": "a\n" }],
  });
  return { layout, img };
}

Deno.test("normalizeRepoTag adds :latest and refuses digests", () => {
  assert.equal(normalizeRepoTag("app"), "app:latest");
  assert.equal(normalizeRepoTag("reg:5000/team/app"), "reg:5000/team/app:latest");
  assert.equal(normalizeRepoTag("reg:5000/team/app:v1"), "reg:5000/team/app:v1");
  for (const bad of ["", "app@sha256:abc", "a b", "app:"]) {
    assert.throws(() => normalizeRepoTag(bad), KanikoError, bad);
  }
});

Deno.test("layerFileName keeps the compression visible", () => {
  const d = digestOf("x");
  assert.equal(
    layerFileName({ mediaType: OCI.layerGzip, digest: d, size: 1 }),
    `${d.slice(7)}.tar.gz`,
  );
  assert.equal(layerFileName({ mediaType: OCI.layer, digest: d, size: 1 }), `${d.slice(7)}.tar`);
  assert.equal(
    layerFileName({ mediaType: OCI.layerZstd, digest: d, size: 1 }),
    `${d.slice(7)}.tar.zst`,
  );
});

Deno.test("the archive holds config, layers (once each), manifest.json and repositories", async () => {
  await using tmp = await tempDir();
  const { layout, img } = await fixture(tmp.dir);
  const path = join(tmp.dir, "image.tar");
  await writeDockerArchive(path, {
    source: layout,
    manifest: img.manifest,
    tags: ["reg.example:5000/app:v1", "app"],
  });
  const listed = (await run("tar", ["-tvf", path])).stdout.trim().split("\n");
  const names = listed.map((l) => l.split(/\s+/).pop());
  const hexes = img.layers.map((l) => l.digest.slice(7));
  assert.deepEqual(names, [
    `${img.config.digest.slice(7)}.json`,
    `${hexes[0]}.tar.gz`,
    `${hexes[1]}.tar.gz`,
    "manifest.json",
    "repositories",
  ]);
  assert.equal(hexes[0], hexes[2], "the repeated layer has one digest");
  const entries = await readEntries((await Deno.open(path)).readable);
  const byName = new Map(entries.map((e) => [e.header.name, e.body]));
  assert.deepEqual(JSON.parse(new TextDecoder().decode(byName.get("manifest.json"))), [{
    Config: `${img.config.digest.slice(7)}.json`,
    RepoTags: ["reg.example:5000/app:v1", "app:latest"],
    Layers: hexes.map((h) => `${h}.tar.gz`),
  }]);
  assert.deepEqual(JSON.parse(new TextDecoder().decode(byName.get("repositories"))), {
    "reg.example:5000/app": { v1: hexes[2] },
    app: { latest: hexes[2] },
  });
  assert.equal(digestOf(byName.get(`${img.config.digest.slice(7)}.json`)!), img.config.digest);
  assert.equal(digestOf(byName.get(`${hexes[1]}.tar.gz`)!), img.layers[1].digest);
  assert.deepEqual(entries.map((e) => e.header.mtime), entries.map(() => 0n));
  const again = join(tmp.dir, "again.tar");
  await writeDockerArchive(again, {
    source: layout,
    manifest: img.manifest,
    tags: ["reg.example:5000/app:v1", "app"],
  });
  assert.deepEqual(await Deno.readFile(again), await Deno.readFile(path), "reproducible");
});

Deno.test("failures leave nothing at the path", async () => {
  await using tmp = await tempDir();
  const { layout, img } = await fixture(tmp.dir);
  const path = join(tmp.dir, "out.tar");
  const index = canonicalJson({ schemaVersion: 2, mediaType: OCI.index, manifests: [] });
  await assert.rejects(
    writeDockerArchive(path, {
      source: layout,
      manifest: { bytes: index, mediaType: OCI.index, digest: digestOf(index) },
    }),
    /is an index, not a single image/,
  );
  await assert.rejects(
    writeDockerArchive(path, { source: layout, manifest: img.manifest, tags: ["x@sha256:1"] }),
    /invalid image name/,
  );
  await Deno.remove(layout.blobPath(img.layers[1].digest));
  await assert.rejects(
    writeDockerArchive(path, { source: layout, manifest: img.manifest, tags: ["app:v1"] }),
    (e: unknown) => e instanceof KanikoError && e.code === "BLOB_UNKNOWN",
  );
  const left = [];
  for await (const e of Deno.readDir(tmp.dir)) left.push(e.name);
  assert.deepEqual(left, ["layout"]);
});

async function diffIdOf(stream: ReadableStream<Uint8Array>): Promise<string> {
  const h = new HashingStream();
  const gunzip = Duplex.toWeb(createGunzip()) as unknown as ReadableWritablePair<
    Uint8Array,
    Uint8Array
  >;
  await stream.pipeThrough(gunzip).pipeThrough(h).pipeTo(new WritableStream());
  return h.digest();
}

Deno.test(
  { name: "skopeo reads the archive and copies it to a layout", ignore: !hasSkopeo },
  async () => {
    await using tmp = await tempDir();
    const { layout, img } = await fixture(tmp.dir);
    const path = join(tmp.dir, "image.tar");
    await writeDockerArchive(path, { source: layout, manifest: img.manifest, tags: ["app:v1"] });
    const info = JSON.parse((await run("skopeo", ["inspect", `docker-archive:${path}`])).stdout);
    const byTag = JSON.parse(
      (await run("skopeo", ["inspect", `docker-archive:${path}:app:v1`])).stdout,
    );
    assert.equal(byTag.Name, "docker.io/library/app", "RepoTags are found by skopeo");
    assert.equal(byTag.Digest, info.Digest);
    assert.equal(info.Architecture, "amd64");
    assert.equal(info.Os, "linux");
    assert.equal(info.Layers.length, 3);
    const cfg = JSON.parse(
      (await run("skopeo", ["inspect", "--config", `docker-archive:${path}`])).stdout,
    );
    assert.deepEqual(cfg.rootfs.diff_ids, img.diffIds);

    const out = join(tmp.dir, "copied");
    await run("skopeo", ["--insecure-policy", "copy", `docker-archive:${path}`, `oci:${out}:x`]);
    const copied = await OciLayout.open(out);
    const manifest = parseJson(ImageManifestSchema, (await copied.getManifest("x")).bytes, "copy");
    const config = parseJson(
      ImageConfigSchema,
      await copied.readBlobBytes(manifest.config),
      "config",
    );
    assert.deepEqual(config.rootfs.diff_ids, img.diffIds);
    assert.equal(manifest.layers.length, 3);
    for (const [i, layer] of manifest.layers.entries()) {
      const stream = await copied.openBlob(layer);
      if (layer.mediaType.endsWith("gzip")) assert.equal(await diffIdOf(stream), img.diffIds[i]);
      else await stream.cancel();
    }
  },
);
