import assert from "node:assert/strict";
import { FakeRegistry, makeImage, runCli } from "../_fake_registry.ts";

Deno.test("tags: lists every tag, following Link pagination", async () => {
  const reg = await FakeRegistry.start();
  try {
    const img = makeImage();
    reg.seedImage("team/app", img);
    const names = Array.from({ length: 2345 }, (_, i) => `v${String(i).padStart(4, "0")}`);
    for (const tag of names) reg.putManifest("team/app", img.manifest, tag);
    const r = await runCli(["tags", `${reg.host}/team/app`]);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, names.join("\n") + "\n");
    assert.equal(reg.find("GET", "/tags/list").length, 3);
  } finally {
    await reg.close();
  }
});

Deno.test("tags: follows `last` when the registry sends no Link", async () => {
  const reg = await FakeRegistry.start({ linkHeader: false });
  try {
    const img = makeImage();
    reg.seedImage("app", img);
    const names = Array.from({ length: 1500 }, (_, i) => `t${String(i).padStart(4, "0")}`);
    for (const tag of names) reg.putManifest("app", img.manifest, tag);
    const r = await runCli(["tags", `${reg.host}/app`]);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, names.join("\n") + "\n");
    assert.deepEqual(reg.find("GET", "/tags/list").map((x) => x.query.get("last")), [
      null,
      "t0999",
    ]);
  } finally {
    await reg.close();
  }
});

Deno.test("tags: an empty repository prints nothing; an unknown one is an error", async () => {
  const reg = await FakeRegistry.start();
  try {
    reg.putBlob("empty", new Uint8Array([1]));
    const empty = await runCli(["tags", `${reg.host}/empty`]);
    assert.equal(empty.code, 0, empty.err);
    assert.equal(empty.out, "");
    const unknown = await runCli(["tags", `${reg.host}/nope`]);
    assert.equal(unknown.code, 1);
    assert.match(
      unknown.err,
      /^error: listing tags of .*\/nope failed: NAME_UNKNOWN: .*\(HTTP 404\); check the repository name\n$/,
    );
    const bad = await runCli(["tags", `${reg.host}/app:v1`]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.err, /^error: invalid repository .*a repository has no tag or digest/);
    assert.equal(bad.err.split("\n").length, 2);
  } finally {
    await reg.close();
  }
});
