/**
 * The index stage: assembling OCI indexes and Docker manifest lists (byte-exact, ordered,
 * refusing relabelled or duplicate children), recognising a registry's refusal of OCI types,
 * and pushing a whole tree (built and remote children) with `copyImage(new IndexSource(…))`
 * to the test bed's real registries, checked with skopeo.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { ChildImage, PlatformTarget } from "../../drivers/types.ts";
import { assembleImage, FileBlobSource, type LayerRef } from "../../lib/build/image.ts";
import { describeError, KanikoError, UsageError } from "../../lib/errors.ts";
import {
  assembleIndex,
  childEntry,
  childSource,
  type IndexEntry,
  IndexSource,
  isOciRefusal,
} from "../../lib/index/mod.ts";
import { copyImage } from "../../lib/oci/copy.ts";
import { digestOf } from "../../lib/oci/digest.ts";
import { DOCKER, OCI } from "../../lib/oci/media_types.ts";
import { ImageConfigSchema, parseJson, type Platform } from "../../lib/oci/schemas.ts";
import { responseError } from "../../lib/registry/errors.ts";
import type { HttpResponse } from "../../lib/registry/http_types.ts";
import { parseReference } from "../../lib/registry/reference.ts";
import { startFaultProxy } from "../../scripts/fault_proxy.ts";
import { tempDir, testbed, type TestbedEnv } from "../_testbed.ts";
import {
  freshRepo,
  RecordingSink,
  skopeoPlatform,
  skopeoRaw,
  testbedSession,
} from "./_registry.ts";

const OPTS = { sanitizeOps: false, sanitizeResources: false };
const D1 = `sha256:${"1".repeat(64)}`;
const D2 = `sha256:${"2".repeat(64)}`;
const D3 = `sha256:${"3".repeat(64)}`;
const S390X: Platform = { os: "linux", architecture: "s390x" };
const ARMV7: Platform = { os: "linux", architecture: "arm", variant: "v7" };
const ARM64: Platform = { os: "linux", architecture: "arm64" };

function entry(digest: string, platform: Platform, mediaType: string = OCI.manifest): IndexEntry {
  return { descriptor: { mediaType, digest, size: 100 + Number(digest.at(-1)) }, platform };
}

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

function thrown(fn: () => unknown): KanikoError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof KanikoError, `expected a KanikoError, got ${e}`);
    assert.ok(!describeError(e).includes("\n"));
    return e;
  }
  assert.fail("expected an error");
}

// ---------------------------------------------------------------------------------------------
// assembleIndex

Deno.test("assembleIndex: an OCI index is canonical JSON, byte for byte, in the entries' order", () => {
  const index = assembleIndex([entry(D1, S390X), entry(D2, ARMV7)], { format: "oci" });
  const expected = `{"manifests":[` +
    `{"digest":"${D1}","mediaType":"${OCI.manifest}",` +
    `"platform":{"architecture":"s390x","os":"linux"},"size":101},` +
    `{"digest":"${D2}","mediaType":"${OCI.manifest}",` +
    `"platform":{"architecture":"arm","os":"linux","variant":"v7"},"size":102}],` +
    `"mediaType":"${OCI.index}","schemaVersion":2}`;
  assert.equal(new TextDecoder().decode(index.bytes), expected);
  assert.equal(index.mediaType, OCI.index);
  assert.equal(index.digest, sha256(index.bytes));
});

Deno.test("assembleIndex: the same inputs give the same bytes; another order another digest", () => {
  const a = assembleIndex([entry(D1, S390X), entry(D2, ARMV7), entry(D3, ARM64)], {
    format: "oci",
    annotations: { "org.opencontainers.image.title": "t", "a.b": "1" },
  });
  const b = assembleIndex([entry(D1, S390X), entry(D2, ARMV7), entry(D3, ARM64)], {
    format: "oci",
    annotations: { "a.b": "1", "org.opencontainers.image.title": "t" },
  });
  assert.deepEqual(a.bytes, b.bytes);
  assert.equal(a.digest, b.digest);
  const c = assembleIndex([entry(D3, ARM64), entry(D1, S390X), entry(D2, ARMV7)], {
    format: "oci",
    annotations: { "a.b": "1", "org.opencontainers.image.title": "t" },
  });
  assert.notEqual(c.digest, a.digest);
  const order = JSON.parse(new TextDecoder().decode(c.bytes)).manifests.map(
    (m: { digest: string }) => m.digest,
  );
  assert.deepEqual(order, [D3, D1, D2]);
});

Deno.test("assembleIndex: annotations on the OCI index only; no timestamp is added", () => {
  const plain = JSON.parse(
    new TextDecoder().decode(assembleIndex([entry(D1, S390X)], { format: "oci" }).bytes),
  );
  assert.equal(plain.annotations, undefined);
  const annotated = JSON.parse(
    new TextDecoder().decode(
      assembleIndex([entry(D1, S390X)], {
        format: "oci",
        annotations: { "org.opencontainers.image.source": "https://example.com/x" },
      }).bytes,
    ),
  );
  assert.deepEqual(annotated.annotations, {
    "org.opencontainers.image.source": "https://example.com/x",
  });
  assert.equal(annotated.manifests[0].annotations, undefined);
  assert.ok(!JSON.stringify(annotated).includes("created"));
});

Deno.test("assembleIndex: a Docker manifest list of v2s2 manifests; annotations refused (usage)", () => {
  const list = assembleIndex(
    [entry(D1, ARM64, DOCKER.manifest), entry(D2, ARMV7, DOCKER.manifest)],
    { format: "docker", annotations: {} },
  );
  assert.equal(list.mediaType, DOCKER.manifestList);
  const parsed = JSON.parse(new TextDecoder().decode(list.bytes));
  assert.equal(parsed.mediaType, DOCKER.manifestList);
  assert.equal(parsed.schemaVersion, 2);
  assert.equal(parsed.annotations, undefined);
  assert.deepEqual(parsed.manifests.map((m: { mediaType: string }) => m.mediaType), [
    DOCKER.manifest,
    DOCKER.manifest,
  ]);
  const err = thrown(() =>
    assembleIndex([entry(D1, ARM64, DOCKER.manifest)], {
      format: "docker",
      annotations: { "a.b": "c" },
    })
  );
  assert.ok(err instanceof UsageError);
  assert.equal(err.exitCode, 2);
  assert.match(describeError(err), /annotations \(a\.b\) cannot be set on a Docker manifest list/);
  assert.match(describeError(err), /--oci-mode=oci/);
});

Deno.test("assembleIndex: a child of the other media types is refused, never relabelled", () => {
  const oci = thrown(() =>
    assembleIndex([entry(D1, S390X), entry(D2, ARMV7, DOCKER.manifest)], { format: "oci" })
  );
  assert.ok(
    oci.message.startsWith(
      `cannot put the linux/arm/v7 image (${D2}, ${DOCKER.manifest}) in an OCI image index: ` +
        `it takes OCI manifests (${OCI.manifest}) only`,
    ),
    oci.message,
  );
  const docker = thrown(() => assembleIndex([entry(D1, S390X)], { format: "docker" }));
  assert.match(docker.message, /linux\/s390x image .* in a Docker manifest list: it takes Docker/);
  const index = thrown(() => assembleIndex([entry(D1, S390X, OCI.index)], { format: "oci" }));
  assert.match(index.message, /takes OCI manifests/);
});

Deno.test("assembleIndex: duplicates (after normalisation), an empty list and bad descriptors", () => {
  const dup = thrown(() =>
    assembleIndex([
      entry(D1, ARM64),
      entry(D2, S390X),
      entry(D3, { os: "linux", architecture: "arm64", variant: "v8" }),
    ], { format: "oci" })
  );
  assert.match(dup.message, /platform linux\/arm64 is listed twice \(entries 1 and 3\)/);
  const armDup = thrown(() =>
    assembleIndex([entry(D1, ARMV7), entry(D2, { os: "linux", architecture: "arm" })], {
      format: "oci",
    })
  );
  assert.match(armDup.message, /linux\/arm\/v7 is listed twice/);
  // Windows images of two OS versions are two platforms.
  const win = (v: string): Platform => ({ os: "windows", architecture: "amd64", "os.version": v });
  const windows = assembleIndex([entry(D1, win("10.0.17763.1")), entry(D2, win("10.0.20348.1"))], {
    format: "oci",
  });
  assert.equal(JSON.parse(new TextDecoder().decode(windows.bytes)).manifests.length, 2);
  assert.match(
    thrown(() =>
      assembleIndex([entry(D1, win("10.0.1")), entry(D2, win("10.0.1"))], { format: "oci" })
    )
      .message,
    /platform windows\/amd64 \(os\.version 10\.0\.1\) is listed twice/,
  );
  assert.match(
    thrown(() => assembleIndex([], { format: "oci" })).message,
    /without any platform image/,
  );
  const bad = thrown(() =>
    assembleIndex([{
      descriptor: { mediaType: OCI.manifest, digest: "sha256:zz", size: 3 },
      platform: ARM64,
    }], {
      format: "oci",
    })
  );
  assert.match(bad.message, /linux\/arm64 image has an invalid digest/);
  const size = thrown(() =>
    assembleIndex([{
      descriptor: { mediaType: OCI.manifest, digest: D1, size: 0 },
      platform: ARM64,
    }], {
      format: "oci",
    })
  );
  assert.match(size.message, /invalid size 0/);
});

Deno.test("assembleIndex: the platform keeps os, architecture, variant and given OS fields only", () => {
  const index = assembleIndex([
    entry(D1, { os: "linux", architecture: "arm64", variant: "v8", extra: "x" } as Platform),
    entry(D2, { os: "windows", architecture: "amd64", "os.version": "10.0.20348.1" }),
    entry(D3, { os: "linux", architecture: "amd64", variant: "" }),
  ], { format: "oci" });
  const platforms = JSON.parse(new TextDecoder().decode(index.bytes)).manifests.map(
    (m: { platform: unknown }) => m.platform,
  );
  assert.deepEqual(platforms, [
    { architecture: "arm64", os: "linux", variant: "v8" },
    { architecture: "amd64", os: "windows", "os.version": "10.0.20348.1" },
    { architecture: "amd64", os: "linux" },
  ]);
});

// ---------------------------------------------------------------------------------------------
// childEntry

function target(platform: Platform, slug: string): PlatformTarget {
  return {
    platform: slug.replaceAll("-", "/"),
    parsed: platform,
    slug,
    native: false,
    plan: undefined as never,
    hasRun: false,
  };
}

Deno.test("childEntry: local children from their manifest, remote ones from the driver", () => {
  const bytes = new TextEncoder().encode('{"schemaVersion":2}');
  const local: ChildImage = {
    kind: "local",
    target: target(ARMV7, "linux-arm-v7"),
    image: {
      name: "x",
      manifest: { bytes, mediaType: OCI.manifest, digest: digestOf(bytes) },
      getManifest: () => Promise.reject(new Error("unused")),
      openBlob: () => Promise.reject(new Error("unused")),
    },
    dispose: () => Promise.resolve(),
  };
  assert.deepEqual(childEntry(local), {
    descriptor: { mediaType: OCI.manifest, digest: digestOf(bytes), size: bytes.byteLength },
    platform: ARMV7,
  });
  const remote: ChildImage = {
    kind: "remote",
    target: target(S390X, "linux-s390x"),
    repository: "127.0.0.1:5000/app",
    digest: D1,
    mediaType: DOCKER.manifest,
    size: 528,
  };
  assert.deepEqual(childEntry(remote), {
    descriptor: { mediaType: DOCKER.manifest, digest: D1, size: 528 },
    platform: S390X,
  });
});

// ---------------------------------------------------------------------------------------------
// isOciRefusal

function response(status: number, url: string, body = ""): HttpResponse {
  const res = new Response(body);
  return {
    status,
    headers: new Headers(),
    url,
    body: res.body,
    bytes: async () => new Uint8Array(await res.arrayBuffer()),
    text: () => res.text(),
    discard: async () => void await res.body?.cancel(),
  };
}

const MANIFEST_URL = "https://reg.example/v2/team/app/manifests/1.0";
const errorBody = (code: string) => JSON.stringify({ errors: [{ code, message: "m" }] });

Deno.test("isOciRefusal: 415 and 400 MANIFEST_INVALID / UNSUPPORTED on a manifest PUT", async () => {
  const cases: [number, string, string, boolean][] = [
    [415, MANIFEST_URL, "", true],
    [415, MANIFEST_URL, errorBody("UNKNOWN"), true],
    [400, MANIFEST_URL, errorBody("MANIFEST_INVALID"), true],
    [400, MANIFEST_URL, errorBody("UNSUPPORTED"), true],
    [400, MANIFEST_URL, "", true],
    [400, MANIFEST_URL, errorBody("MANIFEST_BLOB_UNKNOWN"), false],
    [400, MANIFEST_URL, errorBody("DIGEST_INVALID"), false],
    [400, MANIFEST_URL, errorBody("TAG_INVALID"), false],
    [401, MANIFEST_URL, errorBody("UNAUTHORIZED"), false],
    [403, MANIFEST_URL, errorBody("DENIED"), false],
    [404, MANIFEST_URL, errorBody("NAME_UNKNOWN"), false],
    [500, MANIFEST_URL, errorBody("UNKNOWN"), false],
    [415, "https://reg.example/v2/team/app/blobs/uploads/abc", "", false],
    [400, "https://reg.example/v2/team/app/blobs/uploads/abc", errorBody("UNSUPPORTED"), false],
  ];
  for (const [status, url, body, want] of cases) {
    const err = await responseError(response(status, url, body), "pushing manifest x");
    assert.equal(isOciRefusal(err), want, `${status} ${url} ${body}`);
  }
  assert.equal(
    isOciRefusal(new KanikoError("manifest invalid", { code: "MANIFEST_INVALID" })),
    false,
  );
  assert.equal(isOciRefusal(new Error("HTTP 415")), false);
  assert.equal(isOciRefusal(undefined), false);
});

Deno.test(
  "isOciRefusal: real refusals (415 for OCI types, unknown type) and a non-refusal",
  OPTS,
  async () => {
    const env = await testbed();
    const reg = env.registries.plain;
    const proxy = await startFaultProxy(reg.url, [{
      method: "PUT",
      path: "^/v2/.+/manifests/.+",
      matchHeaders: { "content-type": "^application/vnd\\.oci\\." },
      status: 415,
    }]);
    const session = testbedSession(env);
    try {
      const arch = env.busybox.arches[0];
      const source = session.repository(
        parseReference(`${reg.host}/library/busybox@${arch.digest}`),
        "pull",
      );
      const sink = session.repository(
        parseReference(`${proxy.host}/${freshRepo("refusal")}`),
        "push",
      );
      const oci = await copyImage(source, sink, { tags: ["oci"] }).catch((e) => e);
      assert.ok(oci instanceof KanikoError, `expected a refusal, got ${oci}`);
      assert.equal(isOciRefusal(oci), true, describeError(oci));
      const dockerSource = session.repository(
        parseReference(`${reg.host}/library/busybox@${arch.dockerDigest}`),
        "pull",
      );
      const docker = await copyImage(dockerSource, sink, { tags: ["docker"] });
      assert.equal(docker.manifest.digest, arch.dockerDigest);
      // The real registry: a media type it does not know is refused like OCI types by registries
      // without OCI support (400 MANIFEST_INVALID); an index whose children are missing is not.
      const direct = session.repository(
        parseReference(`${reg.host}/${freshRepo("refusal")}`),
        "push",
      );
      const raw = await dockerSource.getManifest();
      const unknown = await direct.putManifest({
        ...raw,
        mediaType: "application/vnd.example+json",
      }, "x")
        .catch((e) => e);
      assert.ok(unknown instanceof KanikoError, "distribution refuses an unknown media type");
      assert.equal(isOciRefusal(unknown), true, describeError(unknown));
      const orphan = assembleIndex([{
        descriptor: { mediaType: OCI.manifest, digest: arch.digest, size: 400 },
        platform: arch.platform,
      }], { format: "oci" });
      const missing = await direct.putManifest(orphan, "y").catch((e) => e);
      assert.ok(
        missing instanceof KanikoError,
        "distribution refuses an index of missing children",
      );
      assert.equal(missing.code, "MANIFEST_BLOB_UNKNOWN");
      assert.equal(isOciRefusal(missing), false);
    } finally {
      session.close();
      await proxy.stop();
    }
  },
);

// ---------------------------------------------------------------------------------------------
// IndexSource against the real registries

interface Tree {
  built: ReturnType<typeof assembleImage>;
  index: ReturnType<typeof assembleIndex>;
  children: ChildImage[];
  emptyLayer: string;
}

/**
 * amd64 and s390x: busybox from the plain registry (remote children); arm64: built here from
 * busybox's arm64 config and layer (read from the registry) plus an empty layer from a file.
 */
async function makeTree(env: TestbedEnv, dir: string): Promise<Tree> {
  const plain = env.registries.plain.host;
  const session = testbedSession(env);
  const busybox = session.repository(parseReference(`${plain}/library/busybox`), "pull");
  const arch = (tag: string) => env.busybox.arches.find((a) => a.tag === tag)!;
  const arm64 = arch("arm64");
  const stream = await busybox.openBlob({ mediaType: OCI.config, digest: arm64.config, size: -1 }, {
    verify: false,
  });
  const config = parseJson(ImageConfigSchema, await new Response(stream).bytes(), "config");
  const sizes = new Map<string, number>();
  for (const tag of ["amd64", "s390x"]) {
    sizes.set(tag, (await busybox.getManifest(arch(tag).digest)).bytes.byteLength);
  }
  session.close();
  config.config = { ...config.config, Labels: { "org.example.child": "built" } };
  const empty = new Uint8Array(1024);
  const emptyPath = join(dir, "empty.tar");
  await Deno.writeFile(emptyPath, empty);
  const files = new FileBlobSource();
  files.add(digestOf(empty), emptyPath);
  const layers: LayerRef[] = [
    {
      descriptor: { mediaType: OCI.layerGzip, digest: arm64.layer, size: arm64.layerSize },
      diffId: arm64.diffId,
      source: busybox,
    },
    {
      descriptor: { mediaType: OCI.layer, digest: digestOf(empty), size: empty.byteLength },
      diffId: digestOf(empty),
      source: files,
    },
  ];
  const built = assembleImage(config, layers, { format: "oci", name: "the arm64 image" });
  const remote = (tag: string, platform: Platform, slug: string): ChildImage => ({
    kind: "remote",
    target: target(platform, slug),
    repository: `${plain}/library/busybox`,
    digest: arch(tag).digest,
    mediaType: OCI.manifest,
    size: sizes.get(tag)!,
  });
  const children: ChildImage[] = [
    remote("amd64", { os: "linux", architecture: "amd64" }, "linux-amd64"),
    { kind: "local", target: target(ARM64, "linux-arm64"), image: built, dispose: async () => {} },
    remote("s390x", S390X, "linux-s390x"),
  ];
  const index = assembleIndex(children.map(childEntry), {
    format: "oci",
    annotations: { "org.opencontainers.image.title": "index test" },
  });
  return { built, index, children, emptyLayer: digestOf(empty) };
}

Deno.test(
  "IndexSource: copyImage pushes children first, each blob once, the index last",
  OPTS,
  async () => {
    const env = await testbed();
    await using tmp = await tempDir();
    const tree = await makeTree(env, tmp.path);
    const session = testbedSession(env);
    try {
      const plain = env.registries.plain.host;
      const repo = freshRepo("index-test");
      const sink = new RecordingSink(
        session.repository(parseReference(`${plain}/${repo}`), "push"),
      );
      const source = new IndexSource(tree.index, tree.children.map((c) => childSource(c, session)));
      const result = await copyImage(source, sink, { all: true, tags: ["multi", "v1"] });
      assert.equal(result.manifest.digest, tree.index.digest);
      // Children (by digest) first, then the index under each tag.
      const children = tree.children.map((c) => childEntry(c).descriptor.digest);
      assert.deepEqual(
        sink.manifests.slice(0, 3).map((m) => m.digest).sort(),
        [...children].sort(),
      );
      assert.ok(sink.manifests.slice(0, 3).every((m) => m.tag === undefined));
      assert.deepEqual(sink.manifests.slice(3), [
        { digest: tree.index.digest, mediaType: OCI.index, tag: "multi" },
        { digest: tree.index.digest, mediaType: OCI.index, tag: "v1" },
      ]);
      // Each blob once: the built config and the empty layer uploaded, busybox's mounted.
      for (const [digest, results] of sink.blobs) assert.equal(results.length, 1, digest);
      const arches = ["amd64", "arm64", "s390x"].map((t) =>
        env.busybox.arches.find((a) => a.tag === t)!
      );
      const expected = [
        ...arches.map((a) => a.layer),
        arches[0].config,
        arches[2].config,
        tree.built.configDescriptor.digest,
        tree.emptyLayer,
      ].sort();
      assert.deepEqual([...sink.blobs.keys()].sort(), expected);
      assert.deepEqual(sink.blobs.get(tree.emptyLayer), ["uploaded"]);
      assert.deepEqual(sink.blobs.get(tree.built.configDescriptor.digest), ["uploaded"]);
      for (const a of arches) assert.deepEqual(sink.blobs.get(a.layer), ["mounted"], a.tag);
      await checkTree(env, "plain", `${plain}/${repo}:multi`, tree);
    } finally {
      session.close();
    }
  },
);

Deno.test("IndexSource: the same tree streams to another registry (TLS, auth)", OPTS, async () => {
  const env = await testbed();
  await using tmp = await tempDir();
  const tree = await makeTree(env, tmp.path);
  const session = testbedSession(env);
  try {
    const basic = env.registries.basic.host;
    const repo = freshRepo("index-test");
    const sink = new RecordingSink(session.repository(parseReference(`${basic}/${repo}`), "push"));
    const source = new IndexSource(tree.index, tree.children.map((c) => childSource(c, session)));
    await copyImage(source, sink, { all: true, tags: ["multi"] });
    for (const [digest, results] of sink.blobs) assert.equal(results.length, 1, digest);
    assert.ok([...sink.blobs.values()].flat().every((r) => r === "uploaded" || r === "exists"));
    await checkTree(env, "basic", `${basic}/${repo}:multi`, tree);
  } finally {
    session.close();
  }
});

async function checkTree(env: TestbedEnv, reg: "plain" | "basic", ref: string, tree: Tree) {
  assert.equal(await skopeoRaw(env, reg, ref), new TextDecoder().decode(tree.index.bytes));
  const repo = ref.slice(0, ref.lastIndexOf(":"));
  // Each child as served by digest, and skopeo's platform choice reads the right one.
  const built = await skopeoRaw(env, reg, `${repo}@${tree.built.manifest.digest}`);
  assert.equal(built, new TextDecoder().decode(tree.built.manifest.bytes));
  const arch = (tag: string) => env.busybox.arches.find((a) => a.tag === tag)!;
  const arm64 = await skopeoPlatform(env, reg, ref, "arm64");
  assert.equal(arm64.Architecture, "arm64");
  assert.deepEqual(arm64.Labels, { "org.example.child": "built" });
  assert.deepEqual(arm64.Layers, [arch("arm64").layer, tree.emptyLayer]);
  for (const tag of ["s390x", "amd64"]) {
    const child = await skopeoPlatform(env, reg, ref, tag);
    assert.equal(child.Architecture, tag);
    assert.deepEqual(child.Layers, [arch(tag).layer]);
    assert.equal(child.Labels, null);
  }
}

Deno.test(
  "IndexSource: the test bed's busybox index and list, rebuilt from their children, are byte-identical",
  OPTS,
  async () => {
    const env = await testbed();
    const arches = env.busybox.arches;
    const session = testbedSession(env);
    try {
      const repo = session.repository(
        parseReference(`${env.registries.plain.host}/library/busybox`),
        "pull",
      );
      const sized = async (digest: string, mediaType: string, platform: Platform) => ({
        descriptor: {
          mediaType,
          digest,
          size: (await repo.getManifest(digest)).bytes.byteLength,
        },
        platform,
      });
      const ociEntries = await Promise.all(
        arches.map((a) => sized(a.digest, OCI.manifest, a.platform)),
      );
      const dockerEntries = await Promise.all(
        arches.map((a) => sized(a.dockerDigest, DOCKER.manifest, a.platform)),
      );
      assert.equal(assembleIndex(ociEntries, { format: "oci" }).digest, env.busybox.indexDigest);
      const list = assembleIndex(dockerEntries, { format: "docker" });
      assert.equal(list.digest, env.busybox.dockerListDigest);
      // A Docker list of the registry's own children: IndexSource serves it back unchanged.
      const source = new IndexSource(list, [repo]);
      assert.equal((await source.getManifest()).digest, list.digest);
      const child = await source.getManifest(arches[2].dockerDigest);
      assert.equal(child.mediaType, DOCKER.manifest);
      await assert.rejects(
        source.getManifest(D1),
        (e: Error) => e instanceof KanikoError && /has no manifest sha256:1111/.test(e.message),
      );
    } finally {
      session.close();
    }
  },
);

Deno.test("IndexSource: refuses a non-index; serves a built child's manifest and blobs", async () => {
  await using tmp = await tempDir();
  const empty = new Uint8Array(1024);
  const path = join(tmp.path, "empty.tar");
  await Deno.writeFile(path, empty);
  const files = new FileBlobSource();
  files.add(digestOf(empty), path);
  const built = assembleImage(
    { os: "linux", architecture: "arm", variant: "v7", rootfs: { type: "layers", diff_ids: [] } },
    [{
      descriptor: { mediaType: OCI.layer, digest: digestOf(empty), size: 1024 },
      diffId: digestOf(empty),
      source: files,
    }],
    { format: "oci" },
  );
  assert.throws(
    () => new IndexSource(built.manifest, [built]),
    (e: Error) => e instanceof KanikoError && /is not an index/.test(e.message),
  );
  const index = assembleIndex([{
    descriptor: {
      mediaType: OCI.manifest,
      digest: built.manifest.digest,
      size: built.manifest.bytes.byteLength,
    },
    platform: ARMV7,
  }], { format: "oci" });
  const source = new IndexSource(index, [built], { name: "test index" });
  assert.equal(source.name, "test index");
  assert.equal(await source.getManifest(index.digest), index);
  assert.equal(await source.getManifest(built.manifest.digest), built.manifest);
  const layer = await source.openBlob({
    mediaType: OCI.layer,
    digest: digestOf(empty),
    size: 1024,
  });
  assert.deepEqual(await new Response(layer).bytes(), empty);
  const config = await source.openBlob(built.configDescriptor);
  assert.deepEqual(await new Response(config).bytes(), built.config);
  assert.equal(source.originOf(built.configDescriptor), undefined);
  await assert.rejects(source.openBlob({ mediaType: OCI.layer, digest: D1, size: 1 }));
});
