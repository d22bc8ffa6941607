import assert from "node:assert/strict";
import { OciLayout } from "../../lib/oci/layout.ts";
import { FakeRegistry, makeImage, makeIndex, randomBytes, runCli } from "../_fake_registry.ts";

async function withFakes(fn: (a: FakeRegistry, b: FakeRegistry) => Promise<void>): Promise<void> {
  const a = await FakeRegistry.start();
  const b = await FakeRegistry.start();
  try {
    await fn(a, b);
  } finally {
    await a.close();
    await b.close();
  }
}

function platformImage(arch: string, seed: number, variant?: string) {
  return makeImage({
    layers: [randomBytes(20_000, seed), randomBytes(5000, seed + 1)],
    platform: { os: "linux", architecture: arch, ...(variant ? { variant } : {}) },
  });
}

Deno.test("copy: an image between registries prints the digest and a summary", async () => {
  await withFakes(async (a, b) => {
    const img = platformImage("amd64", 1);
    a.seedImage("app", img, "v1");
    const r = await runCli(["copy", `${a.host}/app:v1`, `${b.host}/team/app:v1`]);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, `${img.manifest.digest}\n`);
    assert.match(r.err, /copied .* 3 blobs uploaded \(.*\), 0 mounted, 0 already present/);
    assert.deepEqual(b.getManifest("team/app", "v1")?.bytes, img.manifest.bytes);
    const again = await runCli(["copy", `${a.host}/app:v1`, `${b.host}/team/app:v1`]);
    assert.equal(again.code, 0, again.err);
    assert.match(again.err, /0 blobs uploaded \(0 B\), 0 mounted, 3 already present/);
  });
});

Deno.test("copy: --all copies the whole index; --platform one image", async () => {
  await withFakes(async (a, b) => {
    const amd = platformImage("amd64", 10);
    const v6 = platformImage("arm", 20, "v6");
    const v7 = platformImage("arm", 30, "v7");
    const index = makeIndex([amd, v6, v7]);
    a.seedImage("app", index, "v1");
    const all = await runCli(["copy", "--all", `${a.host}/app:v1`, `${b.host}/all:v1`]);
    assert.equal(all.code, 0, all.err);
    assert.equal(all.out, `${index.manifest.digest}\n`);
    assert.deepEqual(b.getManifest("all", "v1")?.bytes, index.manifest.bytes);
    for (const child of [amd, v6, v7]) assert.ok(b.getManifest("all", child.manifest.digest));
    const one = await runCli([
      "copy",
      "--platform=linux/arm/v7",
      `${a.host}/app:v1`,
      `${b.host}/one:v1`,
    ]);
    assert.equal(one.code, 0, one.err);
    assert.equal(one.out, `${v7.manifest.digest}\n`);
    assert.deepEqual(b.getManifest("one", "v1")?.bytes, v7.manifest.bytes);
    assert.ok(!b.getManifest("one", amd.manifest.digest));
    // within one registry, blobs are mounted
    const mounted = await runCli(["copy", "--all", `${b.host}/all:v1`, `${b.host}/mounted:v1`]);
    assert.equal(mounted.code, 0, mounted.err);
    assert.match(mounted.err, /0 blobs uploaded \(0 B\), 9 mounted, 0 already present/);
  });
});

Deno.test("copy: --all with --platform is a usage error", async () => {
  const r = await runCli([
    "copy",
    "--all",
    "--platform",
    "linux/amd64",
    "a.example/x:1",
    "b.example/y:1",
  ]);
  assert.equal(r.code, 2);
  assert.equal(r.out, "");
  assert.match(r.err, /^error: --all and --platform cannot be used together.*\n$/);
});

Deno.test("copy: registry → OCI layout → registry, with chunked uploads", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await withFakes(async (a, b) => {
      const amd = platformImage("amd64", 40);
      const arm = platformImage("arm64", 50);
      const index = makeIndex([amd, arm], { docker: true });
      a.seedImage("app", index, "v1");
      const down = await runCli(["copy", "--all", `${a.host}/app:v1`, `oci:${dir}:v1`]);
      assert.equal(down.code, 0, down.err);
      const layout = await OciLayout.open(dir);
      assert.deepEqual(await layout.tags(), ["v1"]);
      assert.deepEqual((await layout.getManifest("v1")).bytes, index.manifest.bytes);
      const up = await runCli([
        "copy",
        "--all",
        "--upload-chunk-size=8KiB",
        `oci:${dir}:v1`,
        `${b.host}/back:v1`,
      ]);
      assert.equal(up.code, 0, up.err);
      assert.equal(up.out, `${index.manifest.digest}\n`);
      assert.deepEqual(b.getManifest("back", "v1")?.bytes, index.manifest.bytes);
      assert.ok(b.find("PATCH").length >= 6, "the 20 000-byte layers went in 8 KiB chunks");
      for (const p of b.find("PATCH")) assert.match(p.headers["content-range"], /^\d+-\d+$/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("copy: into an OCI layout without a tag, the image is listed in index.json", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await withFakes(async (a) => {
      const img = platformImage("amd64", 70);
      a.seedImage("app", img, "v1");
      const r = await runCli(["copy", `${a.host}/app:v1`, `oci:${dir}`]);
      assert.equal(r.code, 0, r.err);
      const back = await runCli(["manifest", `oci:${dir}`]);
      assert.equal(back.code, 0, back.err);
      assert.deepEqual(back.stdout, img.manifest.bytes);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("copy: a destination pinned to another digest is refused", async () => {
  await withFakes(async (a, b) => {
    const img = makeImage();
    a.seedImage("app", img, "v1");
    const r = await runCli(["copy", `${a.host}/app:v1`, `${b.host}/x@sha256:${"d".repeat(64)}`]);
    assert.equal(r.code, 1);
    assert.match(r.err, /^error: .*sha256:d{64}/m);
    assert.equal(r.err.trim().split("\n").filter((l) => l.startsWith("error:")).length, 1);
  });
});

Deno.test("copy: a failing upload leaves no tag and ends in one error line", async () => {
  await withFakes(async (a, b) => {
    const img = platformImage("amd64", 60);
    a.seedImage("app", img, "v1");
    b.intercept(
      { method: "PUT", path: "/blobs/uploads/" },
      () =>
        new Response(JSON.stringify({ errors: [{ code: "UNKNOWN", message: "disk full" }] }), {
          status: 500,
        }),
      100,
    );
    const r = await runCli(["copy", `${a.host}/app:v1`, `${b.host}/app:v1`]);
    assert.equal(r.code, 1);
    assert.equal(r.out, "");
    const lines = r.err.trimEnd().split("\n");
    assert.equal(lines.length, 1, r.err);
    assert.match(
      lines[0],
      /^error: uploading blob sha256:[0-9a-f]{64} to .*failed: UNKNOWN: disk full \(HTTP 500\)$/,
    );
    assert.equal(b.getManifest("app", "v1"), undefined);
    // with --push-retry the same failure is retried, logged, and still leaves no tag
    const retried = await runCli([
      "copy",
      "--push-retry=1",
      "--push-retry-initial-delay=1",
      `${a.host}/app:v1`,
      `${b.host}/app:v1`,
    ]);
    assert.equal(retried.code, 1);
    assert.match(retried.err, /retrying upload of sha256:/);
    assert.equal(b.getManifest("app", "v1"), undefined);
  });
});
