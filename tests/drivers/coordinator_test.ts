/**
 * The coordinator through the CLI against the test bed: when it is used, its usage errors
 * (exit code 2, one line, before anything is pulled), what goes where — per-platform tags
 * without `--publish-index`, the index under every destination's tag with it, children by
 * digest in every repository, index annotations, the whole index in an OCI layout with
 * `--no-push` — and one platform as buildx does it (the plain image, or an index of one).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { requestedPlatforms, usesCoordinator } from "../../drivers/coordinator.ts";
import {
  assertBuilt,
  type Engine,
  engine,
  kaniko,
  noEngine,
  skopeoRun,
  tempDir,
  writeContext,
} from "../build/_engine.ts";
import { regFetch } from "../_testbed.ts";

const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const ACCEPT = [
  OCI_INDEX,
  "application/vnd.docker.distribution.manifest.list.v2+json",
  OCI_MANIFEST,
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

const DOCKERFILE = (base: string) => `FROM ${base}\nCOPY a.txt /a.txt\nENV X=1\n`;

async function cli(e: Engine, context: string, args: string[]) {
  await using kdir = await tempDir("kaniko-coord-dir-");
  return await kaniko(e, [
    "--context",
    context,
    "--dockerfile",
    join(context, "Dockerfile"),
    "--isolation",
    "chroot",
    "--kaniko-dir",
    kdir.path,
    ...e.flags,
    ...args,
  ]);
}

const repo = (name: string) => `coord/${name}-${crypto.randomUUID().slice(0, 8)}`;

/** A manifest of a test-bed registry, or undefined when it is not there. */
async function manifest(e: Engine, name: string, ref: string, variant: "plain" | "tls" = "plain") {
  const r = await regFetch(e.env, variant, `/v2/${name}/manifests/${ref}`, {
    headers: { accept: ACCEPT },
  });
  if (r.status === 404) return undefined;
  assert.equal(r.status, 200, `GET ${name}:${ref}: ${r.text()}`);
  return { json: r.json(), digest: r.headers.get("docker-content-digest")! };
}

async function tags(e: Engine, name: string): Promise<string[]> {
  const r = await regFetch(e.env, "plain", `/v2/${name}/tags/list`);
  return r.status === 200 ? (r.json().tags ?? []).sort() : [];
}

Deno.test("coordinator: used for --multi-platform, --publish-index or another driver", () => {
  const base = { multiPlatform: [], publishIndex: false, driver: "local" as const };
  assert.equal(usesCoordinator(base), false);
  assert.equal(usesCoordinator({ ...base, multiPlatform: ["linux/arm64"] }), true);
  assert.equal(usesCoordinator({ ...base, publishIndex: true }), true);
  assert.equal(usesCoordinator({ ...base, driver: "ci" }), true);
  assert.deepEqual(requestedPlatforms({ multiPlatform: ["linux/arm64"], customPlatform: "" }), [
    "linux/arm64",
  ]);
  assert.deepEqual(requestedPlatforms({ multiPlatform: [], customPlatform: "linux/s390x" }), [
    "linux/s390x",
  ]);
});

Deno.test({
  name: "coordinator: bad combinations are one usage error (exit 2) before anything is pulled",
  ignore: noEngine,
  async fn() {
    const e = await engine();
    // The base does not exist: a usage error must come before any pull.
    await using ctx = await writeContext({
      Dockerfile: DOCKERFILE("127.0.0.1:1/none/base:1"),
      "a.txt": "a\n",
    });
    const cases: [string[], RegExp][] = [
      [
        ["--multi-platform", "linux/amd64,linux/arm64", "--tar-path", join(ctx.path, "x.tar")],
        /--tar-path writes a docker load archive, which holds one platform; 2 platforms/,
      ],
      [
        ["--multi-platform", "linux/amd64,linux/arm64", "--oci-mode=docker", "--compression=zstd"],
        /--compression=zstd needs OCI media types/,
      ],
      [
        [
          "--multi-platform",
          "linux/amd64,linux/arm64",
          "--legacy-manifest-list",
          "--index-annotations",
          "a=b",
        ],
        /--index-annotations cannot be set on a Docker manifest list/,
      ],
      [
        ["--multi-platform", "linux/arm64,linux/arm64/v8"],
        /--multi-platform lists linux\/arm64 twice \(linux\/arm64 and linux\/arm64\/v8/,
      ],
      [["--multi-platform", "linux/arm/v9"], /unknown variant "v9" for arm/],
      [["--multi-platform", "linux/amd65,linux/arm64"], /unknown architecture "amd65"/],
    ];
    for (const [args, pattern] of cases) {
      const r = await cli(e, ctx.path, ["--no-push", ...args]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      const lines = r.stderr.trimEnd().split("\n").filter((l) => !l.includes("WARN"));
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /^error: /);
      assert.match(lines[0], pattern);
    }
  },
});

Deno.test({
  name: "coordinator: without --publish-index each child is tagged TAG-<platform>, no index",
  ignore: noEngine,
  async fn() {
    const e = await engine();
    await using ctx = await writeContext({ Dockerfile: DOCKERFILE(e.base), "a.txt": "a\n" });
    const [one, two] = [repo("tags"), repo("tags")];
    const r = await cli(e, ctx.path, [
      "--multi-platform",
      "linux/arm/v7,linux/amd64",
      "--destination",
      `${e.host}/${one}:1.0`,
      "--destination",
      `${e.host}/${two}:2.0`,
      "--digest-file",
      join(ctx.path, "digest"),
    ]);
    assertBuilt(r);
    assert.deepEqual(await tags(e, one), ["1.0-linux-amd64", "1.0-linux-arm-v7"]);
    assert.deepEqual(await tags(e, two), ["2.0-linux-amd64", "2.0-linux-arm-v7"]);
    const arm = await manifest(e, one, "1.0-linux-arm-v7");
    assert.equal(arm?.json.mediaType, OCI_MANIFEST);
    assert.equal((await manifest(e, two, "2.0-linux-arm-v7"))?.digest, arm?.digest);
    assert.match(r.stderr, /not pushing the index to .*:1\.0 \(no --publish-index\)/);
    // The index digest is still computed and reported (and written to the digest file).
    const digest = (await Deno.readTextFile(join(ctx.path, "digest"))).trim();
    assert.match(r.stderr, new RegExp(`the index would be ${digest}`));
    assert.equal(await manifest(e, one, digest), undefined);
  },
});

Deno.test({
  name: "coordinator: --publish-index puts the index under every destination, with annotations",
  ignore: noEngine,
  async fn() {
    const e = await engine();
    await using ctx = await writeContext({ Dockerfile: DOCKERFILE(e.base), "a.txt": "a\n" });
    const [one, two] = [repo("index"), repo("index")];
    const r = await cli(e, ctx.path, [
      "--multi-platform",
      "linux/s390x,linux/arm64",
      "--publish-index",
      "--index-annotations",
      "org.opencontainers.image.title=demo,org.example.k=v",
      "--destination",
      `${e.host}/${one}:1`,
      "--destination",
      `${e.env.registries.tls.host}/${two}:latest`,
    ]);
    assertBuilt(r);
    const a = await manifest(e, one, "1");
    const b = await manifest(e, two, "latest", "tls");
    assert.equal(a?.json.mediaType, OCI_INDEX);
    assert.equal(a?.digest, b?.digest);
    assert.deepEqual(a?.json.annotations, {
      "org.opencontainers.image.title": "demo",
      "org.example.k": "v",
    });
    assert.deepEqual(a?.json.manifests.map((m: any) => m.platform.architecture), [
      "s390x",
      "arm64",
    ]);
    for (const m of a?.json.manifests ?? []) {
      assert.ok(await manifest(e, one, m.digest), `child ${m.digest} in ${one}`);
      assert.ok(await manifest(e, two, m.digest, "tls"), `child ${m.digest} in ${two}`);
    }
    assert.deepEqual(await tags(e, one), ["1"]);
  },
});

Deno.test({
  name: "coordinator: --no-push with --oci-layout-path writes the whole index and its children",
  ignore: noEngine,
  async fn() {
    const e = await engine();
    await using ctx = await writeContext({ Dockerfile: DOCKERFILE(e.base), "a.txt": "a\n" });
    await using out = await tempDir("kaniko-coord-oci-");
    const layout = join(out.path, "oci");
    const r = await cli(e, ctx.path, [
      "--no-push",
      "--multi-platform",
      "linux/amd64,linux/arm/v7",
      "--oci-layout-path",
      layout,
      "--digest-file",
      join(out.path, "digest"),
    ]);
    assertBuilt(r);
    const raw = await skopeoRun(e, ["inspect", "--raw", `oci:${layout}:latest`]);
    assert.equal(raw.code, 0, raw.stderr);
    const index = JSON.parse(raw.stdout);
    assert.equal(index.mediaType, OCI_INDEX);
    assert.equal(index.manifests.length, 2);
    const digest = (await Deno.readTextFile(join(out.path, "digest"))).trim();
    const blob = async (d: string) =>
      JSON.parse(await Deno.readTextFile(join(layout, "blobs", ...d.split(":"))));
    const arm = await blob(index.manifests[1].digest);
    assert.equal((await blob(arm.config.digest)).variant, "v7");
    // The digest file names the index the layout holds at the top.
    const indexJson = JSON.parse(await Deno.readTextFile(join(layout, "index.json")));
    assert.equal(indexJson.manifests[0].digest, digest);
    assert.doesNotMatch(r.stderr, /pushed/);
  },
});

Deno.test({
  name:
    "coordinator: one --multi-platform platform is the plain image, or with --publish-index an index of one",
  ignore: noEngine,
  async fn() {
    const e = await engine();
    await using ctx = await writeContext({ Dockerfile: DOCKERFILE(e.base), "a.txt": "a\n" });
    const [plain, indexed] = [repo("one"), repo("one")];
    const a = await cli(e, ctx.path, [
      "--multi-platform",
      "linux/arm64",
      "--destination",
      `${e.host}/${plain}:1`,
    ]);
    assertBuilt(a);
    const image = await manifest(e, plain, "1");
    assert.equal(image?.json.mediaType, OCI_MANIFEST);
    assert.match(a.stderr, new RegExp(`built linux/arm64 image ${image?.digest}`));
    const b = await cli(e, ctx.path, [
      "--multi-platform",
      "linux/arm64",
      "--publish-index",
      "--destination",
      `${e.host}/${indexed}:1`,
    ]);
    assertBuilt(b);
    const index = await manifest(e, indexed, "1");
    assert.equal(index?.json.mediaType, OCI_INDEX);
    assert.equal(index?.json.manifests.length, 1);
    assert.equal(index?.json.manifests[0].platform.architecture, "arm64");
  },
});
