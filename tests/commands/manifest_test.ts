import assert from "node:assert/strict";
import { digestOf } from "../../lib/oci/digest.ts";
import { OciLayout } from "../../lib/oci/layout.ts";
import { DOCKER } from "../../lib/oci/media_types.ts";
import { makeImage, makeIndex, runCli, withFakeRegistry } from "../_fake_registry.ts";

function assertOk(r: { code: number; err: string }) {
  assert.equal(r.code, 0, r.err);
  assert.equal(r.err, "");
}

Deno.test("manifest: prints the bytes exactly as served, with no newline added", async () => {
  await withFakeRegistry(async (reg) => {
    const img = makeImage({ docker: true });
    reg.seedImage("app", img);
    // unusual formatting: indentation, key order, CRLF and no final newline
    const text = JSON.stringify(
      JSON.parse(new TextDecoder().decode(img.manifest.bytes)),
      null,
      "\t",
    )
      .replaceAll("\n", "\r\n");
    const bytes = new TextEncoder().encode(text);
    reg.putManifest("app", { bytes, mediaType: DOCKER.manifest, digest: digestOf(bytes) }, "odd");
    const r = await runCli(["manifest", `${reg.host}/app:odd`]);
    assertOk(r);
    assert.deepEqual(r.stdout, bytes);
  });
});

Deno.test("manifest: an index, a platform's manifest, and by digest", async () => {
  await withFakeRegistry(async (reg) => {
    const amd = makeImage({ platform: { os: "linux", architecture: "amd64" } });
    const v7 = makeImage({ platform: { os: "linux", architecture: "arm", variant: "v7" } });
    const index = makeIndex([amd, v7]);
    reg.seedImage("app", index, "v1");
    const all = await runCli(["manifest", `${reg.host}/app:v1`]);
    assertOk(all);
    assert.deepEqual(all.stdout, index.manifest.bytes);
    const arm = await runCli(["manifest", `${reg.host}/app:v1`, "--platform", "linux/arm"]);
    assertOk(arm);
    assert.deepEqual(arm.stdout, v7.manifest.bytes);
    const pinned = await runCli(["manifest", `${reg.host}/app@${amd.manifest.digest}`]);
    assertOk(pinned);
    assert.deepEqual(pinned.stdout, amd.manifest.bytes);
    // --platform on a single image prints the image itself
    const single = await runCli([
      "manifest",
      `${reg.host}/app@${amd.manifest.digest}`,
      "--platform=linux/arm64",
    ]);
    assertOk(single);
    assert.deepEqual(single.stdout, amd.manifest.bytes);
  });
});

Deno.test("manifest: reads OCI layouts", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const layout = await OciLayout.open(dir, { create: true });
    const img = makeImage();
    await layout.writeBlob(img.configBytes);
    for (const l of img.layerBytes) await layout.writeBlob(l);
    await layout.putManifest(img.manifest, "v1");
    const r = await runCli(["manifest", `oci:${dir}:v1`]);
    assertOk(r);
    assert.deepEqual(r.stdout, img.manifest.bytes);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("manifest: a platform missing from the index is one error line", async () => {
  await withFakeRegistry(async (reg) => {
    reg.seedImage("app", makeIndex([makeImage()]), "v1");
    const r = await runCli(["manifest", `${reg.host}/app:v1`, "--platform", "linux/ppc64le"]);
    assert.equal(r.code, 1);
    assert.equal(r.out, "");
    assert.match(
      r.err,
      /^error: no image for platform linux\/ppc64le.*available platforms: linux\/amd64\n$/,
    );
  });
});
