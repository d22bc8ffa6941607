import assert from "node:assert/strict";
import { bodyOf, FakeRegistry, makeImage, makeIndex, runCli } from "../_fake_registry.ts";

Deno.test("digest: prints the manifest digest, and the platform's with --platform", async () => {
  const reg = await FakeRegistry.start();
  try {
    const amd = makeImage({ platform: { os: "linux", architecture: "amd64" } });
    const arm = makeImage({ platform: { os: "linux", architecture: "arm64", variant: "v8" } });
    const index = makeIndex([amd, arm]);
    reg.seedImage("team/app", index, "v1");
    const top = await runCli(["digest", `${reg.host}/team/app:v1`]);
    assert.equal(top.code, 0, top.err);
    assert.equal(top.out, `${index.manifest.digest}\n`);
    assert.equal(top.err, "");
    const child = await runCli(["digest", `${reg.host}/team/app:v1`, "--platform", "linux/arm64"]);
    assert.equal(child.code, 0, child.err);
    assert.equal(child.out, `${arm.manifest.digest}\n`);
    // the digest is of the served bytes: an answer without Docker-Content-Digest works too
    reg.intercept(
      { method: "GET", path: "/manifests/v1" },
      () =>
        new Response(bodyOf(index.manifest.bytes), {
          headers: { "content-type": index.manifest.mediaType },
        }),
    );
    const computed = await runCli(["digest", `${reg.host}/team/app:v1`]);
    assert.equal(computed.out, `${index.manifest.digest}\n`);
  } finally {
    await reg.close();
  }
});

Deno.test("digest: a registry lying about the digest is an error", async () => {
  const reg = await FakeRegistry.start();
  try {
    const img = makeImage();
    reg.seedImage("app", img, "v1");
    reg.intercept(
      { method: "GET", path: "/manifests/v1" },
      () =>
        new Response(bodyOf(img.manifest.bytes), {
          headers: {
            "content-type": img.manifest.mediaType,
            "docker-content-digest": `sha256:${"e".repeat(64)}`,
          },
        }),
    );
    const r = await runCli(["digest", `${reg.host}/app:v1`]);
    assert.equal(r.code, 1);
    assert.equal(r.out, "");
    assert.match(
      r.err,
      /^error: fetching manifest .*: content digest is sha256:[0-9a-f]{64}, expected sha256:e{64}\n$/,
    );
  } finally {
    await reg.close();
  }
});
