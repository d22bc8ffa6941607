/**
 * Outputs through real builds: push to two destinations (a plain and a token-auth registry),
 * `--tar-path` (read with `skopeo inspect docker-archive:`), `--oci-layout-path` (`umoci ls`),
 * the three digest files, `--no-push`; `--compression=zstd` (+zstd layers skopeo reads back) and
 * `--compression-level`; `--oci-mode=docker` (Docker media types); zstd with Docker media types and
 * a level outside the algorithm's range are usage errors (exit 2) before anything is built;
 * `--log-format=json` step records and a summary naming the digest.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  assertBuilt,
  build,
  type BuildResult,
  destination,
  type Engine,
  engine,
  exec,
  inspect,
  noEngine,
  readImage,
  sha256,
  skopeoRun,
  tagExists,
  tempDir,
  writeContext,
} from "./_engine.ts";

const OCI_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";
const OCI_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd";
const opts = { ignore: noEngine, sanitizeResources: false, sanitizeOps: false };

/** A context whose RUN writes 256 KiB of compressible, not trivial, data. */
function context(e: Engine) {
  return writeContext({
    Dockerfile: `FROM ${e.base}\nRUN seq 1 40000 > /numbers && echo done > /done\nENV K=v\n`,
  });
}

Deno.test(
  "push to two registries, --tar-path, --oci-layout-path, digest files, json log",
  opts,
  async () => {
    const e = await engine();
    await using out = await tempDir("kaniko-engine-out-");
    await using ctx = await context(e);
    const plain = destination(e, "two", "plain").replace(/:latest$/, ":v1");
    const token = destination(e, "two", "token").replace(/:latest$/, ":v2");
    const f = (name: string) => join(out.path, "files", name);
    const b = await build(e, ctx.path, {
      destinations: [plain, token],
      args: [
        "--tar-path",
        join(out.path, "image.tar"),
        "--oci-layout-path",
        join(out.path, "layout"),
        "--digest-file",
        f("digest"),
        "--image-name-with-digest-file",
        f("name-digest"),
        "--image-name-tag-with-digest-file",
        f("name-tag-digest"),
        "--log-format=json",
      ],
    });
    assertBuilt(b);
    const digest = await Deno.readTextFile(f("digest"));
    assert.match(digest, /^sha256:[0-9a-f]{64}$/);
    const pushed = [await inspect(e, plain), await inspect(e, token, "token")];
    for (const p of pushed) assert.equal(await sha256(p.raw), digest);
    assert.deepEqual(pushed[0].config, pushed[1].config);
    const repo = (r: string) => r.slice(0, r.lastIndexOf(":"));
    assert.equal(
      await Deno.readTextFile(f("name-digest")),
      `${repo(plain)}@${digest}\n${repo(token)}@${digest}\n`,
    );
    assert.equal(
      await Deno.readTextFile(f("name-tag-digest")),
      `${plain}@${digest}\n${token}@${digest}\n`,
    );

    // docker-archive: the same config, both names, loadable by skopeo.
    const archive = `docker-archive:${join(out.path, "image.tar")}`;
    const info = await skopeoRun(e, ["inspect", archive]);
    assert.equal(info.code, 0, info.stderr);
    const config = await skopeoRun(e, ["inspect", "--config", "--raw", archive]);
    assert.deepEqual(JSON.parse(config.stdout), pushed[0].config);
    const tags = await exec("tar", ["-xOf", join(out.path, "image.tar"), "manifest.json"]);
    assert.deepEqual(JSON.parse(new TextDecoder().decode(tags.stdout))[0].RepoTags, [plain, token]);
    const fromTar = await readImage(e, archive);
    assert.equal(fromTar.text("done"), "done\n");

    // OCI layout: umoci lists the tag; the manifest is the pushed one.
    const ls = await exec("umoci", ["ls", "--layout", join(out.path, "layout")]);
    assert.equal(new TextDecoder().decode(ls.stdout).trim(), "v1");
    const index = JSON.parse(await Deno.readTextFile(join(out.path, "layout", "index.json")));
    assert.equal(index.manifests[0].digest, digest);

    // JSON log: every line a record; step records carry stage and step; the summary names the digest.
    const records = b.stderr.trim().split("\n").map((l) => JSON.parse(l));
    const steps = records.filter((r) => /STEP \d+\/\d+: /.test(r.msg));
    assert.ok(steps.length >= 4, b.stderr);
    assert.ok(steps.every((r) => r.stage === 0 && typeof r.step === "number"), b.stderr);
    assert.ok(records.at(-1).msg.includes(digest), `summary: ${records.at(-1).msg}`);
  },
);

Deno.test("--no-push writes the tarball but pushes nothing", opts, async () => {
  const e = await engine();
  await using out = await tempDir("kaniko-engine-out-");
  await using ctx = await context(e);
  const dest = destination(e, "nopush");
  const tar = join(out.path, "image.tar");
  const b = await build(e, ctx.path, {
    destinations: [dest],
    args: ["--no-push", "--tar-path", tar],
  });
  assertBuilt(b);
  assert.ok(!(await tagExists(e, dest)), "--no-push pushed");
  const img = await readImage(e, `docker-archive:${tar}`);
  assert.equal(img.text("done"), "done\n");
  assert.match(b.stderr, /built linux\/amd64 image sha256:[0-9a-f]{64}/);
});

/** Builds the context reproducibly into an OCI layout with `args`; returns the layout's image. */
async function layoutBuild(e: Engine, args: string[]): Promise<BuildResult & { dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "kaniko-engine-layout-" });
  await using ctx = await context(e);
  const b = await build(e, ctx.path, {
    destinations: [],
    args: ["--no-push", "--reproducible", "--oci-layout-path", dir, ...args],
  });
  assertBuilt(b);
  return { ...b, dir };
}

Deno.test(
  "--compression=zstd: +zstd layers skopeo reads back; --compression-level is applied",
  opts,
  async () => {
    const e = await engine();
    const [fast, best] = await Promise.all([
      layoutBuild(e, ["--compression=zstd", "--compression-level=1"]),
      layoutBuild(e, ["--compression=zstd", "--compression-level=19"]),
    ]);
    try {
      const [a, b] = await Promise.all([
        readImage(e, `oci:${fast.dir}:latest`),
        readImage(e, `oci:${best.dir}:latest`),
      ]);
      assert.deepEqual(a.manifest.layers.map((l: { mediaType: string }) => l.mediaType), [
        OCI_GZIP, // the base layer is reused as it is
        OCI_ZSTD,
      ]);
      // Each layer's diff_id is the sha256 of what zstd -d gives: a valid zstd stream.
      for (const [i, layer] of a.layers.entries()) {
        assert.equal(await sha256(layer.tar), a.config.rootfs.diff_ids[i]);
      }
      assert.equal(a.text("done"), "done\n", "unpacked through skopeo's recompression");
      assert.equal(a.tree.get("numbers")?.size, b.tree.get("numbers")?.size);
      assert.deepEqual(a.config.rootfs.diff_ids, b.config.rootfs.diff_ids);
      const size = (img: typeof a) => img.manifest.layers[1].size;
      assert.ok(
        size(b) < size(a),
        `level 19 (${size(b)} B) is not smaller than level 1 (${size(a)} B)`,
      );
    } finally {
      await Deno.remove(fast.dir, { recursive: true });
      await Deno.remove(best.dir, { recursive: true });
    }
  },
);

Deno.test(
  "--oci-mode=docker pushes Docker v2s2 media types (the base layer relabelled)",
  opts,
  async () => {
    const e = await engine();
    await using ctx = await context(e);
    const b = await build(e, ctx.path, { args: ["--oci-mode=docker"] });
    assertBuilt(b);
    const { manifest } = await inspect(e, b.destination);
    assert.equal(manifest.mediaType, "application/vnd.docker.distribution.manifest.v2+json");
    assert.equal(manifest.config.mediaType, "application/vnd.docker.container.image.v1+json");
    for (const l of manifest.layers) {
      assert.equal(l.mediaType, "application/vnd.docker.image.rootfs.diff.tar.gzip");
    }
    const img = await readImage(e, `docker://${b.destination}`);
    assert.equal(img.text("done"), "done\n");
  },
);

Deno.test(
  "usage errors before anything is built (exit 2, one line, nothing pushed): zstd with Docker media types, a bad --compression-level",
  opts,
  async () => {
    const e = await engine();
    await using ctx = await context(e);
    const [zstd, level] = await Promise.all([
      build(e, ctx.path, { args: ["--compression=zstd", "--oci-mode=docker"] }),
      build(e, ctx.path, { args: ["--compression-level=15"] }),
    ]);
    for (
      const [b, what] of [[zstd, /zstd.*OCI/], [
        level,
        /--compression-level: .*gzip.* 0 to 9/,
      ]] as const
    ) {
      assert.equal(b.code, 2, b.stderr);
      const lines = b.stderr.trim().split("\n");
      assert.equal(lines.length, 1, b.stderr);
      assert.match(lines[0], /^error: /);
      assert.match(lines[0], what);
      assert.ok(!(await tagExists(e, b.destination)));
    }
  },
);
