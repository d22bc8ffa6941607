import assert from "node:assert/strict";
import { KanikoError } from "../../lib/errors.ts";
import type {
  BlobSource,
  ImageSink,
  PutBlobOptions,
  PutBlobResult,
  RawManifest,
} from "../../lib/oci/content.ts";
import { copyImage } from "../../lib/oci/copy.ts";
import { OciLayout } from "../../lib/oci/layout.ts";
import { DOCKER, OCI } from "../../lib/oci/media_types.ts";
import type { Descriptor } from "../../lib/oci/schemas.ts";
import { defaultRegistryOptions } from "../../lib/registry/options.ts";
import { parseReference } from "../../lib/registry/reference.ts";
import type { RegistryRepository } from "../../lib/registry/repository.ts";
import { RegistrySession } from "../../lib/registry/session.ts";
import {
  type FakeImage,
  FakeRegistry,
  makeImage,
  makeIndex,
  ociError,
  randomBytes,
} from "../_fake_registry.ts";

interface Env {
  a: FakeRegistry;
  b: FakeRegistry;
  session: RegistrySession;
  src: (name: string) => RegistryRepository;
  dst: (name: string, reg?: FakeRegistry) => RegistryRepository;
}

async function withRegistries(fn: (env: Env) => Promise<void>): Promise<void> {
  const a = await FakeRegistry.start();
  const b = await FakeRegistry.start();
  const session = new RegistrySession({ ...defaultRegistryOptions(), pushRetryInitialDelay: 1 });
  const src = (name: string) => session.repository(parseReference(`${a.host}/${name}`), "pull");
  const dst = (name: string, reg = b) =>
    session.repository(parseReference(`${reg.host}/${name}`), "push");
  try {
    await fn({ a, b, session, src, dst });
  } finally {
    session.close();
    await a.close();
    await b.close();
  }
}

/** Manifest PUTs of a registry, as `ref` (tag or short digest). */
function manifestPuts(reg: FakeRegistry): string[] {
  return reg.find("PUT", "/manifests/").filter((r) => r.status === 201).map((r) =>
    r.path.split("/manifests/")[1]
  );
}

function imageWithLayers(n: number, seed: number, platform?: FakeImage["platform"]): FakeImage {
  return makeImage({
    layers: Array.from({ length: n }, (_, i) => randomBytes(3000 + i * 100, seed * 100 + i)),
    platform,
  });
}

Deno.test("copy: an image between registries, tag written last", async () => {
  await withRegistries(async ({ a, b, src, dst }) => {
    const img = imageWithLayers(3, 1);
    a.seedImage("app", img, "v1");
    const result = await copyImage(src("app"), dst("copy"), { ref: "v1", tags: ["v1", "stable"] });
    assert.equal(result.manifest.digest, img.manifest.digest);
    assert.equal(result.blobsCopied, 4);
    assert.equal(
      result.bytesCopied,
      img.config.size + img.layers.reduce((n, l) => n + l.size, 0),
    );
    assert.equal(result.blobsSkipped + result.blobsMounted, 0);
    assert.deepEqual(manifestPuts(b), ["v1", "stable"]);
    for (const tag of ["v1", "stable"]) {
      assert.deepEqual(b.getManifest("copy", tag)?.bytes, img.manifest.bytes);
    }
    for (const l of img.layers) assert.ok(b.hasBlob("copy", l.digest));
    // every blob was stored before the first manifest PUT
    const firstManifest = b.requests.findIndex((r) =>
      r.method === "PUT" && r.path.includes("/manifests/")
    );
    const lastBlob = b.requests.findLastIndex((r) =>
      r.method === "PUT" && r.path.includes("/blobs/")
    );
    assert.ok(lastBlob < firstManifest);
  });
});

Deno.test("copy: without tags the manifest is written by digest", async () => {
  await withRegistries(async ({ a, b, src, dst }) => {
    const img = makeImage();
    a.seedImage("app", img, "v1");
    await copyImage(src("app"), dst("copy"), { ref: "v1" });
    assert.deepEqual(manifestPuts(b), [img.manifest.digest]);
    assert.equal(b.tagsOf.get("copy"), undefined);
  });
});

Deno.test("copy: only missing blobs move", async () => {
  await withRegistries(async ({ a, b, src, dst }) => {
    const img = imageWithLayers(3, 2);
    a.seedImage("app", img, "v1");
    b.putBlob("copy", img.configBytes);
    b.putBlob("copy", img.layerBytes[0]);
    b.putBlob("copy", img.layerBytes[2]);
    const result = await copyImage(src("app"), dst("copy"), { ref: "v1", tags: ["v1"] });
    assert.equal(result.blobsSkipped, 3);
    assert.equal(result.blobsCopied, 1);
    assert.equal(result.bytesCopied, img.layers[1].size);
    assert.equal(b.find("POST").length, 1);
    assert.deepEqual(
      a.find("GET", "/blobs/").map((r) => r.path.split("/blobs/")[1]),
      [img.layers[1].digest],
      "only the missing blob is read from the source",
    );
  });
});

Deno.test("copy: within one registry blobs are mounted", async () => {
  await withRegistries(async ({ a, src, dst }) => {
    const img = imageWithLayers(2, 3);
    a.seedImage("base", img, "v1");
    const result = await copyImage(src("base"), dst("app", a), { ref: "v1", tags: ["v1"] });
    assert.equal(result.blobsMounted, 3);
    assert.equal(result.blobsCopied, 0);
    assert.equal(a.find("GET", "/blobs/").length, 0);
    assert.deepEqual(a.getManifest("app", "v1")?.bytes, img.manifest.bytes);
  });
});

Deno.test("copy: an index with --all writes children before the index, the tag last", async () => {
  await withRegistries(async ({ a, b, src, dst }) => {
    const amd = imageWithLayers(2, 4, { os: "linux", architecture: "amd64" });
    const arm = imageWithLayers(2, 5, { os: "linux", architecture: "arm64" });
    const index = makeIndex([amd, arm]);
    a.seedImage("app", index, "v1");
    const result = await copyImage(src("app"), dst("copy"), { ref: "v1", tags: ["v1"], all: true });
    assert.equal(result.manifest.digest, index.manifest.digest);
    assert.equal(result.blobsCopied, 6);
    const puts = manifestPuts(b);
    assert.equal(puts.length, 3);
    assert.deepEqual(
      new Set(puts.slice(0, 2)),
      new Set([amd.manifest.digest, arm.manifest.digest]),
    );
    assert.equal(puts[2], "v1");
    assert.deepEqual(b.getManifest("copy", "v1")?.bytes, index.manifest.bytes);
    // each child's blobs were stored before the child
    for (const child of [amd, arm]) {
      const at = b.requests.findIndex((r) =>
        r.method === "PUT" && r.path.endsWith(child.manifest.digest)
      );
      for (const l of child.layers) {
        const blobAt = b.requests.findIndex((r) =>
          r.method === "PUT" && r.query.get("digest") === l.digest
        );
        assert.ok(blobAt >= 0 && blobAt < at);
      }
    }
  });
});

Deno.test("copy: --all skips children the sink already holds", async () => {
  await withRegistries(async ({ a, b, src, dst }) => {
    const amd = imageWithLayers(1, 6, { os: "linux", architecture: "amd64" });
    const arm = imageWithLayers(1, 7, { os: "linux", architecture: "arm64" });
    const index = makeIndex([amd, arm]);
    a.seedImage("app", index, "v1");
    b.seedImage("copy", amd);
    const result = await copyImage(src("app"), dst("copy"), { ref: "v1", tags: ["v1"], all: true });
    assert.equal(result.blobsCopied, 2);
    assert.deepEqual(manifestPuts(b), [arm.manifest.digest, "v1"]);
    assert.equal(a.find("GET", `/manifests/${amd.manifest.digest}`).length, 0);
  });
});

Deno.test("copy: blobs shared by children move once", async () => {
  await withRegistries(async ({ a, b, src, dst }) => {
    const shared = randomBytes(4000, 8);
    const one = makeImage({
      layers: [shared, "one"],
      platform: { os: "linux", architecture: "amd64" },
    });
    const two = makeImage({
      layers: [shared, "two"],
      platform: { os: "linux", architecture: "arm64" },
    });
    a.seedImage("app", makeIndex([one, two]), "v1");
    await copyImage(src("app"), dst("copy"), { ref: "v1", all: true, tags: ["v1"] });
    const uploads = b.find("PUT", "/blobs/uploads/").map((r) => r.query.get("digest"));
    assert.equal(uploads.filter((d) => d === one.layers[0].digest).length, 1);
    assert.equal(a.find("GET", `/blobs/${one.layers[0].digest}`).length, 1);
  });
});

Deno.test("copy: platform selection picks the first matching entry (arm/v7 included)", async (t) => {
  await withRegistries(async ({ a, b, src, dst }) => {
    const amd = makeImage({ platform: { os: "linux", architecture: "amd64" } });
    const v6 = makeImage({ platform: { os: "linux", architecture: "arm", variant: "v6" } });
    const v7a = makeImage({
      platform: { os: "linux", architecture: "arm", variant: "v7" },
      annotations: { n: "a" },
    });
    const v7b = makeImage({
      platform: { os: "linux", architecture: "arm" },
      annotations: { n: "b" },
    });
    const arm64 = makeImage({ platform: { os: "linux", architecture: "arm64", variant: "v8" } });
    const index = makeIndex([amd, v6, v7a, v7b, arm64]);
    a.seedImage("app", index, "v1");
    const cases: [string, { os: string; architecture: string; variant?: string }, FakeImage][] = [
      ["linux/arm/v7", { os: "linux", architecture: "arm", variant: "v7" }, v7a],
      ["linux/arm (means v7)", { os: "linux", architecture: "arm" }, v7a],
      ["linux/arm/v6", { os: "linux", architecture: "arm", variant: "v6" }, v6],
      ["linux/arm64 (matches arm64/v8)", { os: "linux", architecture: "arm64" }, arm64],
    ];
    for (const [name, platform, want] of cases) {
      await t.step(name, async () => {
        const repo = `p${cases.findIndex((c) => c[0] === name)}`;
        const result = await copyImage(src("app"), dst(repo), { ref: "v1", platform, tags: ["x"] });
        assert.equal(result.manifest.digest, want.manifest.digest);
        assert.deepEqual(b.getManifest(repo, "x")?.bytes, want.manifest.bytes);
      });
    }
    await t.step("the first of two equivalent entries wins", async () => {
      const first = makeIndex([amd, v7b, v7a]);
      a.seedImage("app", first, "v2");
      const result = await copyImage(src("app"), dst("q"), {
        ref: "v2",
        platform: { os: "linux", architecture: "arm", variant: "v7" },
      });
      assert.equal(result.manifest.digest, v7b.manifest.digest);
    });
    await t.step("an absent platform fails before anything is written", async () => {
      b.clearLog();
      const err = await copyImage(src("app"), dst("none"), {
        ref: "v1",
        platform: { os: "linux", architecture: "s390x" },
        tags: ["x"],
      }).catch((e) => e);
      assert.ok(err instanceof KanikoError);
      assert.equal(err.code, "PLATFORM_NOT_FOUND");
      assert.match(err.hint ?? "", /linux\/amd64, linux\/arm\/v6, linux\/arm\/v7, linux\/arm64/);
      assert.equal(b.requests.filter((r) => r.method !== "GET" && r.method !== "HEAD").length, 0);
    });
  });
});

Deno.test("copy: a failure part-way leaves no tag", async (t) => {
  await t.step("image: a blob upload fails", async () => {
    await withRegistries(async ({ a, b, src, dst }) => {
      const img = imageWithLayers(3, 9);
      a.seedImage("app", img, "v1");
      b.intercept(
        {
          method: "PUT",
          when: (_r, url) => url.searchParams.get("digest") === img.layers[1].digest,
        },
        () => ociError(500, "UNKNOWN", "storage failure"),
      );
      const err = await copyImage(src("app"), dst("copy"), { ref: "v1", tags: ["v1"] }).catch((e) =>
        e
      );
      assert.ok(err instanceof KanikoError);
      assert.match(err.message, /storage failure/);
      assert.equal(b.getManifest("copy", "v1"), undefined);
      assert.deepEqual(manifestPuts(b), []);
    });
  });
  await t.step("index: one child's blob is corrupt at the source", async () => {
    await withRegistries(async ({ a, b, src, dst }) => {
      const one = imageWithLayers(1, 10, { os: "linux", architecture: "amd64" });
      const two = imageWithLayers(1, 11, { os: "linux", architecture: "arm64" });
      const index = makeIndex([one, two]);
      a.seedImage("app", index, "v1");
      a.blobs.set(two.layers[0].digest, randomBytes(two.layers[0].size, 99));
      const err = await copyImage(src("app"), dst("copy"), { ref: "v1", tags: ["v1"], all: true })
        .catch((e) => e);
      assert.ok(err instanceof KanikoError);
      assert.equal(err.code, "DIGEST_INVALID");
      assert.equal(b.getManifest("copy", "v1"), undefined);
      assert.ok(!manifestPuts(b).includes(two.manifest.digest));
      assert.ok(!manifestPuts(b).includes("v1"));
    });
  });
});

Deno.test("copy: foreign layers with URLs are referenced, not copied", async () => {
  await withRegistries(async ({ a, b, src, dst }) => {
    const img = makeImage({ docker: true, layers: ["base"] });
    const foreign: Descriptor = {
      mediaType: DOCKER.layerForeignGzip,
      digest: `sha256:${"f".repeat(64)}`,
      size: 1234,
      urls: ["https://example.invalid/layer.tar.gz"],
    };
    const doc = JSON.parse(new TextDecoder().decode(img.manifest.bytes));
    doc.layers = [foreign, ...doc.layers];
    const bytes = new TextEncoder().encode(JSON.stringify(doc));
    const { digestOf } = await import("../../lib/oci/digest.ts");
    const manifest: RawManifest = { bytes, mediaType: DOCKER.manifest, digest: digestOf(bytes) };
    a.seedImage("app", img);
    a.putManifest("app", manifest, "win");
    const result = await copyImage(src("app"), dst("copy"), { ref: "win", tags: ["win"] });
    assert.equal(result.blobsCopied, 2);
    assert.equal(b.find("HEAD", foreign.digest).length, 0);
    assert.deepEqual(b.getManifest("copy", "win")?.bytes, bytes);
  });
});

Deno.test("copy: registry → OCI layout → registry keeps every byte", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await withRegistries(async ({ a, b, src, dst }) => {
      const amd = imageWithLayers(2, 12, { os: "linux", architecture: "amd64" });
      const arm = imageWithLayers(2, 13, { os: "linux", architecture: "arm", variant: "v7" });
      const index = makeIndex([amd, arm], { docker: true });
      a.seedImage("app", index, "v1");
      const layout = await OciLayout.open(dir, { create: true });
      await copyImage(src("app"), layout, { ref: "v1", tags: ["v1"], all: true });
      assert.deepEqual(await layout.tags(), ["v1"]);
      assert.deepEqual((await layout.getManifest("v1")).bytes, index.manifest.bytes);
      const again = await copyImage(src("app"), layout, { ref: "v1", tags: ["v1"], all: true });
      assert.equal(again.blobsCopied, 0, "a second copy moves nothing");
      const back = await copyImage(layout, dst("back"), { ref: "v1", tags: ["v1"], all: true });
      assert.equal(back.manifest.digest, index.manifest.digest);
      assert.equal(b.getManifest("back", "v1")?.mediaType, DOCKER.manifestList);
      assert.deepEqual(b.getManifest("back", "v1")?.bytes, index.manifest.bytes);
      for (const l of [...amd.layers, ...arm.layers]) assert.ok(b.hasBlob("back", l.digest));
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A sink that only counts: putBlob takes a while, so concurrency can be observed. */
class SlowSink implements ImageSink {
  name = "slow";
  running = 0;
  max = 0;
  blobs = new Set<string>();
  manifests: string[] = [];
  hasBlob(desc: Descriptor) {
    return Promise.resolve(this.blobs.has(desc.digest));
  }
  async putBlob(desc: Descriptor, _s: BlobSource, _o?: PutBlobOptions): Promise<PutBlobResult> {
    this.running++;
    this.max = Math.max(this.max, this.running);
    await new Promise((r) => setTimeout(r, 5 + (parseInt(desc.digest.slice(7, 9), 16) % 7)));
    this.blobs.add(desc.digest);
    this.running--;
    return "uploaded";
  }
  hasManifest() {
    return Promise.resolve(false);
  }
  putManifest(m: RawManifest, tag?: string) {
    this.manifests.push(tag ?? m.digest);
    return Promise.resolve();
  }
}

Deno.test("copy: no more blobs in flight than the concurrency limit", async () => {
  await withRegistries(async ({ a, src }) => {
    const children = Array.from(
      { length: 6 },
      (_, i) =>
        imageWithLayers(5, 20 + i, { os: "linux", architecture: "amd64", variant: `v${i + 1}` }),
    );
    a.seedImage("app", makeIndex(children), "v1");
    for (const limit of [1, 2, 3]) {
      const sink = new SlowSink();
      await copyImage(src("app"), sink, { ref: "v1", all: true, concurrency: limit, tags: ["t"] });
      assert.ok(sink.max <= limit, `limit ${limit}: ${sink.max} at once`);
      assert.equal(sink.blobs.size, 36);
      assert.equal(sink.manifests.at(-1), "t");
      assert.equal(sink.manifests.length, 7);
    }
  });
});

Deno.test("copy: the media type of what is written is the source's", async () => {
  await withRegistries(async ({ a, b, src, dst }) => {
    const img = makeImage({ docker: true });
    a.seedImage("app", img, "v1");
    await copyImage(src("app"), dst("copy"), { ref: "v1", tags: ["v1"] });
    assert.equal(b.find("PUT", "/manifests/v1")[0].headers["content-type"], DOCKER.manifest);
    const oci = makeImage();
    a.seedImage("app", oci, "v2");
    await copyImage(src("app"), dst("copy"), { ref: "v2", tags: ["v2"] });
    assert.equal(b.find("PUT", "/manifests/v2")[0].headers["content-type"], OCI.manifest);
  });
});

Deno.test("copy: a blob finishing as a child manifest arrives does not exceed the limit", async () => {
  // Timing-controlled: child 2's manifest arrives in the same few microtasks in which child 1's
  // first blob finishes and hands its slot to child 1's queued second blob.
  const deferred = () => {
    let resolve!: () => void;
    const p = new Promise<void>((r) => resolve = r);
    return { p, resolve };
  };
  const settle = async (n: number) => {
    for (let i = 0; i < n; i++) await Promise.resolve();
  };
  for (let delay = 0; delay < 12; delay++) {
    for (const blobFirst of [true, false]) {
      const c1 = makeImage({
        layers: ["a", "b"],
        platform: { os: "linux", architecture: "amd64" },
      });
      const c2 = makeImage({ layers: ["c"], platform: { os: "linux", architecture: "arm64" } });
      const index = makeIndex([c1, c2]);
      const manifests = new Map<string | undefined, RawManifest>([
        [undefined, index.manifest],
        [c1.manifest.digest, c1.manifest],
        [c2.manifest.digest, c2.manifest],
      ]);
      const child2 = deferred();
      const gates: ReturnType<typeof deferred>[] = [];
      let running = 0;
      let max = 0;
      const source = {
        name: "memory",
        openBlob: () => Promise.reject(new Error("not read")),
        getManifest: async (ref?: string) => {
          if (ref === c2.manifest.digest) await child2.p;
          return manifests.get(ref)!;
        },
      };
      const sink: ImageSink = {
        name: "gated",
        hasBlob: () => Promise.resolve(false),
        hasManifest: () => Promise.resolve(false),
        putManifest: () => Promise.resolve(),
        putBlob: async () => {
          max = Math.max(max, ++running);
          const gate = deferred();
          gates.push(gate);
          await gate.p;
          running--;
          return "uploaded";
        },
      };
      const done = copyImage(source, sink, { all: true, concurrency: 1 });
      await settle(20);
      if (blobFirst) {
        gates[0].resolve();
        await settle(delay);
        child2.resolve();
      } else {
        child2.resolve();
        await settle(delay);
        gates[0].resolve();
      }
      let finished = false;
      const result = done.finally(() => finished = true);
      while (!finished) {
        await settle(50);
        for (const g of gates) g.resolve();
        await new Promise((r) => setTimeout(r, 0));
      }
      await result;
      assert.equal(gates.length, 5);
      assert.equal(max, 1, `delay ${delay}, blob first ${blobFirst}`);
    }
  }
});
