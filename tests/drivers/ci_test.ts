/**
 * The `ci` driver against the test bed's real registries: per-platform "jobs" push busybox's
 * per-arch images into a fresh repository and write digest files in every accepted form; the
 * driver checks them (files, then manifests and configs in the registry), and the index built
 * from its children is pushed and read back with skopeo. Every problem comes in one error.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ciDriver } from "../../drivers/ci/mod.ts";
import type { ChildImage, MultiPlatformBuild, PlatformTarget } from "../../drivers/types.ts";
import { parseInvocation } from "../../lib/cli/invocation.ts";
import { prepareContext } from "../../lib/context/mod.ts";
import { parseDockerfile } from "../../lib/dockerfile/parser.ts";
import { planBuild } from "../../lib/dockerfile/plan.ts";
import { describeError, KanikoError, UsageError } from "../../lib/errors.ts";
import { configureLog, resetLog } from "../../lib/log.ts";
import { assembleIndex, childEntry, childSource, IndexSource } from "../../lib/index/mod.ts";
import { copyImage } from "../../lib/oci/copy.ts";
import { digestOf } from "../../lib/oci/digest.ts";
import { DOCKER, OCI } from "../../lib/oci/media_types.ts";
import { formatPlatform, parsePlatform } from "../../lib/oci/platform.ts";
import { parseReference } from "../../lib/registry/reference.ts";
import { RegistrySession } from "../../lib/registry/session.ts";
import { cliFlags, tempDir, testbed, type TestbedEnv } from "../_testbed.ts";
import { freshRepo, RecordingSink, skopeoPlatform, skopeoRaw } from "../index/_registry.ts";

const OPTS = { sanitizeOps: false, sanitizeResources: false };
const PLATFORMS = ["linux/amd64", "linux/arm64", "linux/arm/v7", "linux/s390x"];
/** Test-bed per-arch tag of each platform. */
const TAGS: Record<string, string> = {
  "linux/amd64": "amd64",
  "linux/arm64": "arm64",
  "linux/arm/v7": "armv7",
  "linux/s390x": "s390x",
};

interface Setup extends AsyncDisposable {
  env: TestbedEnv;
  build: MultiPlatformBuild;
  session: RegistrySession;
  /** `HOST/REPO` of the destination. */
  repo: string;
  dir: string;
  /** Writes `<slug>.digest`. */
  write(slug: string, text: string): Promise<void>;
}

/** Busybox's manifest digest of a platform (OCI, or Docker v2s2). */
function busybox(env: TestbedEnv, platform: string, docker = false): string {
  const a = env.busybox.arches.find((x) => x.tag === TAGS[platform])!;
  return docker ? a.dockerDigest : a.digest;
}

function arch(env: TestbedEnv, platform: string) {
  return env.busybox.arches.find((x) => x.tag === TAGS[platform])!;
}

/**
 * A ci build as the CLI would make it (options from the real parser), with hand-made targets,
 * a fresh destination repository on the basic-auth TLS registry and an empty digests directory.
 */
async function setup(args: string[] = [], platforms = PLATFORMS): Promise<Setup> {
  const env = await testbed();
  const host = env.registries.basic.host;
  const repo = `${host}/${freshRepo("ci-test")}`;
  const tmp = await tempDir("kaniko-ci-");
  const dir = join(tmp.path, "digests");
  await Deno.mkdir(dir);
  const ctxDir = join(tmp.path, "ctx");
  await Deno.mkdir(ctxDir);
  await Deno.writeTextFile(join(ctxDir, "Dockerfile"), "FROM busybox\nCOPY a /a\n");
  const invocation = parseInvocation([
    "--context",
    ctxDir,
    "--destination",
    `${repo}:multi`,
    "--multi-platform",
    platforms.join(","),
    "--driver=ci",
    `--digests-from=${dir}`,
    "--publish-index",
    ...cliFlags(env, "basic"),
    ...args,
  ], { env: (name) => (name === "DOCKER_CONFIG" ? env.dockerConfigDir : undefined) });
  assert.equal(invocation.command, "build");
  const opts = invocation.command === "build" ? invocation.options : undefined!;
  const dockerfile = parseDockerfile("FROM busybox\nCOPY a /a\n");
  const context = await prepareContext(ctxDir);
  const targets: PlatformTarget[] = opts.multiPlatform.map((text) => {
    const parsed = parsePlatform(text);
    const platform = formatPlatform(parsed);
    return {
      platform,
      parsed,
      slug: platform.replaceAll("/", "-"),
      native: platform === "linux/amd64",
      plan: planBuild(dockerfile, { buildArgs: [], platform, file: "Dockerfile" }),
      hasRun: false,
    };
  });
  const format = opts.ociMode === "docker" || opts.legacyManifestList ? "docker" : "oci";
  const build = { opts, dockerfile, file: "Dockerfile", context, targets, format } as const;
  const session = new RegistrySession(opts.registry);
  return {
    env,
    build,
    session,
    repo,
    dir,
    write: (slug, text) => Deno.writeTextFile(join(dir, `${slug}.digest`), text),
    async [Symbol.asyncDispose]() {
      session.close();
      await context.cleanup();
      await tmp[Symbol.asyncDispose]();
    },
  };
}

/** A per-platform job: pushes busybox's image of `platform` to `repo:build-<slug>`. */
async function pushJob(s: Setup, platform: string, docker = false): Promise<string> {
  const host = s.env.registries.basic.host;
  const digest = busybox(s.env, platform, docker);
  const source = s.session.repository(parseReference(`${host}/library/busybox@${digest}`), "pull");
  const sink = s.session.repository(parseReference(s.repo), "push");
  const slug = platform.replaceAll("/", "-");
  await copyImage(source, sink, { tags: [`build-${slug}`] });
  return digest;
}

async function rejection(p: Promise<unknown>): Promise<KanikoError> {
  const e = await p.then(() => undefined, (e) => e);
  assert.ok(e instanceof KanikoError, `expected a KanikoError, got ${e}`);
  assert.ok(!describeError(e).includes("\n"), "one line");
  return e;
}

const ctx = (s: Setup) => ({ session: s.session, signal: new AbortController().signal });

Deno.test(
  "ci: aggregates four per-platform images into an index, checked with skopeo",
  OPTS,
  async () => {
    await using s = await setup(["--index-annotations", "org.opencontainers.image.version=1.0"]);
    const host = s.env.registries.basic.host;
    const amd64 = await pushJob(s, "linux/amd64");
    const armv7 = await pushJob(s, "linux/arm/v7");
    const s390x = await pushJob(s, "linux/s390x");
    // Every accepted form: a bare digest, REPO@DIGEST naming another repository (busybox's own:
    // its blobs are mounted at push), REPO:TAG@DIGEST, whitespace around.
    const arm64 = busybox(s.env, "linux/arm64");
    await s.write("linux-amd64", `${amd64}\n`);
    await s.write("linux-arm64", `  ${host}/library/busybox@${arm64}\n`);
    await s.write("linux-arm-v7", `${s.repo}:build-linux-arm-v7@${armv7}`);
    await s.write("linux-s390x", `\n${s390x}\n\n`);
    assert.deepEqual(ciDriver.describe(s.build), [
      `linux/amd64: ci (digest from ${s.dir}/linux-amd64.digest)`,
      `linux/arm64: ci (digest from ${s.dir}/linux-arm64.digest)`,
      `linux/arm/v7: ci (digest from ${s.dir}/linux-arm-v7.digest)`,
      `linux/s390x: ci (digest from ${s.dir}/linux-s390x.digest)`,
    ]);
    await ciDriver.preflight(s.build, ctx(s));
    const children = await ciDriver.build(s.build, ctx(s));
    const sizes = await Promise.all(
      [amd64, arm64, armv7, s390x].map(async (d) =>
        (await s.session.repository(parseReference(`${host}/library/busybox`), "pull")
          .getManifest(d)).bytes.byteLength
      ),
    );
    assert.deepEqual(
      children.map((c) =>
        c.kind === "remote" && [c.target.platform, c.repository, c.digest, c.size]
      ),
      [
        ["linux/amd64", s.repo, amd64, sizes[0]],
        ["linux/arm64", `${host}/library/busybox`, arm64, sizes[1]],
        ["linux/arm/v7", s.repo, armv7, sizes[2]],
        ["linux/s390x", s.repo, s390x, sizes[3]],
      ],
    );
    assert.ok(children.every((c) => c.kind === "remote" && c.mediaType === OCI.manifest));
    await publishAndCheck(s, children);
  },
);

/** Assembles and pushes the index as the coordinator does, then reads it back with skopeo. */
async function publishAndCheck(s: Setup, children: ChildImage[]): Promise<void> {
  const index = assembleIndex(children.map(childEntry), {
    format: s.build.format,
    annotations: s.build.opts.indexAnnotations,
  });
  const sink = new RecordingSink(s.session.repository(parseReference(s.repo), "push"));
  const source = new IndexSource(index, children.map((c) => childSource(c, s.session)));
  await copyImage(source, sink, { all: true, tags: ["multi"] });
  // Only arm64 was not in the repository yet: its manifest is written, its blobs mounted.
  const arm64 = arch(s.env, "linux/arm64");
  assert.deepEqual(sink.manifests, [
    { digest: arm64.digest, mediaType: OCI.manifest, tag: undefined },
    { digest: index.digest, mediaType: OCI.index, tag: "multi" },
  ]);
  assert.deepEqual(
    [...sink.blobs].sort(),
    [[arm64.config, ["mounted"]], [arm64.layer, ["mounted"]]].sort(),
  );
  const ref = `${s.repo}:multi`;
  const raw = await skopeoRaw(s.env, "basic", ref);
  assert.equal(raw, new TextDecoder().decode(index.bytes));
  const parsed = JSON.parse(raw);
  assert.equal(parsed.mediaType, OCI.index);
  assert.deepEqual(parsed.annotations, { "org.opencontainers.image.version": "1.0" });
  assert.deepEqual(parsed.manifests.map((m: { platform: unknown }) => m.platform), [
    { architecture: "amd64", os: "linux" },
    { architecture: "arm64", os: "linux" },
    { architecture: "arm", os: "linux", variant: "v7" },
    { architecture: "s390x", os: "linux" },
  ]);
  const picks: [string, string | undefined, string][] = [
    ["arm64", undefined, "linux/arm64"],
    ["arm", "v7", "linux/arm/v7"],
    ["s390x", undefined, "linux/s390x"],
    ["amd64", undefined, "linux/amd64"],
  ];
  for (const [cpu, variant, platform] of picks) {
    const child = await skopeoPlatform(s.env, "basic", ref, cpu, variant);
    assert.equal(child.Architecture, cpu);
    assert.deepEqual(child.Layers, [arch(s.env, platform).layer], platform);
  }
}

Deno.test(
  "ci: missing, empty and malformed digest files are listed in one error",
  OPTS,
  async () => {
    await using s = await setup();
    const armv7 = await pushJob(s, "linux/arm/v7");
    await s.write("linux-arm64", "sha256:xyz\n");
    await s.write("linux-arm-v7", armv7);
    await s.write("linux-s390x", "  \n");
    await s.write("linux-ppc64le", armv7); // not a target: warned about (once), ignored
    const logs: string[] = [];
    configureLog({ level: "info", format: "text" }, { write: (line) => logs.push(line) });
    const err = await rejection(ciDriver.preflight(s.build, ctx(s)));
    const again = await rejection(ciDriver.build(s.build, ctx(s))).finally(resetLog);
    assert.equal(
      err.message,
      "ci driver: 3 of 4 platforms cannot be aggregated: " +
        `linux/amd64: missing file ${s.dir}/linux-amd64.digest; ` +
        `linux/arm64: bad digest in ${s.dir}/linux-arm64.digest: "sha256:xyz" is not ` +
        "sha256:<64 hex digits> or REPOSITORY@sha256:<64 hex digits>; " +
        `linux/s390x: bad digest in ${s.dir}/linux-s390x.digest: the file is empty`,
    );
    assert.match(err.hint ?? "", /--digest-file=.*linux-amd64\.digest, linux-arm64\.digest/);
    assert.equal(err.exitCode, 1);
    assert.equal(again.message, err.message);
    assert.deepEqual(logs.map((l) => l.replace(/^\S+\s+/, "")), [
      `ignoring ${s.dir}/linux-ppc64le.digest: its platform is not in --multi-platform`,
    ]);
    await Deno.remove(join(s.dir, "linux-ppc64le.digest"));
    await s.write("linux-amd64", `${s.repo}:tag`);
    await s.write("linux-arm64", `${s.repo}@sha256:${"a".repeat(63)}`);
    await s.write("linux-s390x", `${armv7} ${armv7}`);
    const more = await rejection(ciDriver.preflight(s.build, ctx(s)));
    assert.match(more.message, /^ci driver: 3 of 4 platforms cannot be aggregated: linux\/amd64: /);
    assert.ok(more.message.includes(`linux/amd64: bad digest in ${s.dir}/linux-amd64.digest: "`));
    assert.ok(more.message.includes(`linux/arm64: bad digest in ${s.dir}/linux-arm64.digest: "`));
    assert.ok(more.message.includes("linux/s390x: bad digest in"));
    assert.ok(more.message.includes("is more than one word"));
    assert.ok(!more.message.includes("linux/arm/v7"));
  },
);

Deno.test("ci: --digests-from unset or not a directory", OPTS, async () => {
  {
    await using s = await setup();
    const unset = { ...s.build, opts: { ...s.build.opts, digestsFrom: undefined } };
    const err = await rejection(ciDriver.preflight(unset, ctx(s)));
    assert.ok(err instanceof UsageError);
    assert.match(describeError(err), /^the ci driver needs --digests-from=DIR; DIR holds one/);
    assert.deepEqual(
      ciDriver.describe(unset)[2],
      "linux/arm/v7: ci (needs --digests-from=DIR with linux-arm-v7.digest)",
    );
    const gone = { ...s.build, opts: { ...s.build.opts, digestsFrom: join(s.dir, "nope") } };
    const missing = await rejection(ciDriver.build(gone, ctx(s)));
    assert.equal(missing.message, `--digests-from=${join(s.dir, "nope")}: no such directory`);
  }
});

Deno.test(
  "ci: manifests missing, of another platform, an index or Docker-typed are listed",
  OPTS,
  async () => {
    await using s = await setup();
    const host = s.env.registries.basic.host;
    const s390x = await pushJob(s, "linux/s390x");
    const nowhere = digestOf(crypto.randomUUID());
    await s.write("linux-amd64", s390x); // pushed by the s390x job: wrong platform
    await s.write("linux-arm64", nowhere);
    await s.write("linux-arm-v7", `${host}/library/busybox@${s.env.busybox.indexDigest}`);
    await s.write("linux-s390x", `${host}/library/busybox@${busybox(s.env, "linux/s390x", true)}`);
    await ciDriver.preflight(s.build, ctx(s)); // the files are well-formed
    const err = await rejection(ciDriver.build(s.build, ctx(s)));
    const bb = `${host}/library/busybox`;
    assert.equal(
      err.message,
      "ci driver: 4 of 4 platforms cannot be aggregated: " +
        `linux/amd64: platform mismatch: the config of ${s.repo}@${s390x} says linux/s390x; ` +
        `linux/arm64: manifest ${nowhere} not found in ${s.repo}; ` +
        `linux/arm/v7: ${bb}@${s.env.busybox.indexDigest} is an image index (${OCI.index}), ` +
        "not one platform's image; " +
        `linux/s390x: ${bb}@${busybox(s.env, "linux/s390x", true)} is a ${DOCKER.manifest} ` +
        `manifest, but the index is built with OCI media types (${OCI.manifest})`,
    );
    assert.equal(err.code, "CI_AGGREGATION");
  },
);

Deno.test(
  "ci: Docker v2s2 children make a Docker manifest list (--oci-mode=docker)",
  OPTS,
  async () => {
    await using s = await setup(["--oci-mode=docker"], ["linux/arm64/v8", "linux/amd64"]);
    assert.equal(s.build.format, "docker");
    const host = s.env.registries.basic.host;
    const amd64 = await pushJob(s, "linux/amd64", true);
    const arm64 = busybox(s.env, "linux/arm64", true);
    await s.write("linux-arm64", `${host}/library/busybox@${arm64}`);
    await s.write("linux-amd64", amd64);
    const children = await ciDriver.build(s.build, ctx(s));
    assert.deepEqual(children.map((c) => c.kind === "remote" && c.mediaType), [
      DOCKER.manifest,
      DOCKER.manifest,
    ]);
    const list = assembleIndex(children.map(childEntry), { format: "docker" });
    const sink = s.session.repository(parseReference(s.repo), "push");
    const source = new IndexSource(list, children.map((c) => childSource(c, s.session)));
    await copyImage(source, sink, { all: true, tags: ["multi"] });
    const raw = JSON.parse(await skopeoRaw(s.env, "basic", `${s.repo}:multi`));
    assert.equal(raw.mediaType, DOCKER.manifestList);
    assert.deepEqual(raw.manifests.map((m: { digest: string }) => m.digest), [arm64, amd64]);
    const child = await skopeoPlatform(s.env, "basic", `${s.repo}:multi`, "arm64");
    assert.deepEqual(child.Layers, [arch(s.env, "linux/arm64").layer]);
  },
);
