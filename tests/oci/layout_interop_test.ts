/**
 * Layouts we write, checked with umoci and skopeo; layouts skopeo writes, read by us.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { OciLayout } from "../../lib/oci/layout.ts";
import { OCI } from "../../lib/oci/media_types.ts";
import { ImageManifestSchema, parseJson } from "../../lib/oci/schemas.ts";
import { have, isRoot, run, tempDir } from "../tar/helpers.ts";
import { buildImage } from "./image_fixture.ts";

const hasSkopeo = await have("skopeo");
const hasUmoci = await have("umoci");

Deno.test(
  { name: "umoci lists and unpacks a layout we wrote", ignore: !hasUmoci || !isRoot },
  async () => {
    await using tmp = await tempDir();
    const dir = join(tmp.dir, "layout");
    const layout = await OciLayout.open(dir, { create: true });
    const img = await buildImage(layout, {
      tag: "v1",
      layers: [{ "hello.txt": "hello\n", "etc/os": "one\n" }, {
        "etc/os": "two\n",
        "bin/tool": "#!x\n",
      }],
    });
    const ls = await run("umoci", ["ls", "--layout", dir]);
    assert.deepEqual(ls.stdout.trim().split("\n"), ["v1"]);
    const bundle = join(tmp.dir, "bundle");
    await run("umoci", ["unpack", "--image", `${dir}:v1`, bundle]);
    const rootfs = join(bundle, "rootfs");
    assert.equal(await Deno.readTextFile(join(rootfs, "hello.txt")), "hello\n");
    assert.equal(await Deno.readTextFile(join(rootfs, "etc/os")), "two\n");
    assert.equal(await Deno.readTextFile(join(rootfs, "bin/tool")), "#!x\n");
    assert.equal((await Deno.stat(join(rootfs, "bin/tool"))).mode! & 0o777, 0o755);
    const config = JSON.parse(await Deno.readTextFile(join(bundle, "config.json")));
    assert.deepEqual(config.process.args, ["/hello.txt"]);
    assert.equal(img.layers.length, 2);
  },
);

Deno.test(
  { name: "skopeo inspects and copies a layout we wrote", ignore: !hasSkopeo },
  async () => {
    await using tmp = await tempDir();
    const dir = join(tmp.dir, "layout");
    const layout = await OciLayout.open(dir, { create: true });
    const img = await buildImage(layout, { tag: "v1", architecture: "arm64" });
    await buildImage(layout, { tag: "other", layers: [{ "x": "y" }] });
    const info = JSON.parse((await run("skopeo", ["inspect", `oci:${dir}:v1`])).stdout);
    assert.equal(info.Digest, img.manifest.digest);
    assert.equal(info.Architecture, "arm64");
    assert.equal(info.Os, "linux");
    assert.deepEqual(info.Layers, img.layers.map((l) => l.digest));
    const raw = (await run("skopeo", ["inspect", "--raw", `oci:${dir}:v1`])).stdout;
    assert.equal(raw, new TextDecoder().decode(img.manifest.bytes));

    const copy = join(tmp.dir, "copy");
    await run("skopeo", ["--insecure-policy", "copy", `oci:${dir}:v1`, `oci:${copy}:c1`]);
    await run("skopeo", ["--insecure-policy", "copy", `oci:${dir}:other`, `oci:${copy}:c2`]);
    const theirs = await OciLayout.open(copy);
    assert.deepEqual(await theirs.tags(), ["c1", "c2"]);
    const m = await theirs.getManifest("c1");
    assert.equal(m.mediaType, OCI.manifest);
    const manifest = parseJson(ImageManifestSchema, m.bytes, "copied manifest");
    assert.equal(manifest.config.digest, img.config.digest);
    for (const layer of manifest.layers) {
      await new Response(await theirs.openBlob(layer)).arrayBuffer(); // verified read
    }
    // and we can keep writing to a layout skopeo made
    await theirs.putManifest(m, "c3");
    assert.deepEqual(await theirs.tags(), ["c1", "c2", "c3"]);
    const again = JSON.parse((await run("skopeo", ["inspect", `oci:${copy}:c3`])).stdout);
    assert.equal(again.Digest, m.digest);
  },
);
