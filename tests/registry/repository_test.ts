import assert from "node:assert/strict";
import { KanikoError } from "../../lib/errors.ts";
import { OCI } from "../../lib/oci/media_types.ts";
import { RegistryClient } from "../../lib/registry/client.ts";
import { defaultRegistryOptions, type Direction } from "../../lib/registry/options.ts";
import { RegistryRepository } from "../../lib/registry/repository.ts";
import { Transport } from "../../lib/registry/transport.ts";
import { FakeRegistry, makeImage, randomBytes } from "../_fake_registry.ts";

interface Env {
  a: FakeRegistry;
  b: FakeRegistry;
  repo: (
    reg: FakeRegistry,
    name: string,
    direction?: Direction,
    ref?: string,
  ) => RegistryRepository;
}

async function withRegistries(fn: (env: Env) => Promise<void>): Promise<void> {
  const a = await FakeRegistry.start();
  const b = await FakeRegistry.start();
  const transport = new Transport();
  const clients = new Map<string, RegistryClient>();
  const repo = (reg: FakeRegistry, name: string, direction: Direction = "pull", ref?: string) => {
    const key = `${reg.host}|${direction}`;
    let client = clients.get(key);
    if (!client) {
      client = new RegistryClient(reg.host, {
        transport,
        options: defaultRegistryOptions(),
        direction,
      });
      clients.set(key, client);
    }
    return new RegistryRepository(client, name, ref);
  };
  try {
    await fn({ a, b, repo });
  } finally {
    transport.close();
    await a.close();
    await b.close();
  }
}

async function read(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

Deno.test("repository: names, origin and the default reference", async () => {
  await withRegistries(async ({ a, repo }) => {
    const img = makeImage();
    a.seedImage("team/app", img, "latest");
    a.putManifest("team/app", makeImage({ layers: ["x"] }).manifest, "v2");
    const r = repo(a, "team/app");
    assert.equal(r.name, `${a.host}/team/app`);
    assert.deepEqual(r.origin, { registry: a.host, repository: "team/app" });
    assert.equal(r.defaultRef, "latest");
    assert.equal((await r.getManifest()).digest, img.manifest.digest);
    const pinned = repo(a, "team/app", "pull", img.manifest.digest);
    assert.equal((await pinned.getManifest()).digest, img.manifest.digest);
    assert.notEqual((await r.getManifest("v2")).digest, img.manifest.digest);
  });
});

Deno.test("repository: hasBlob, hasManifest and openBlob", async () => {
  await withRegistries(async ({ a, repo }) => {
    const img = makeImage({ layers: [randomBytes(9000)] });
    a.seedImage("app", img, "v1");
    const r = repo(a, "app");
    assert.ok(await r.hasBlob(img.layers[0]));
    assert.ok(!(await r.hasBlob({ ...img.layers[0], digest: `sha256:${"4".repeat(64)}` })));
    assert.ok(
      await r.hasManifest({
        mediaType: OCI.manifest,
        digest: img.manifest.digest,
        size: img.manifest.bytes.byteLength,
      }),
    );
    assert.ok(
      !(await repo(a, "other").hasManifest({
        mediaType: OCI.manifest,
        digest: img.manifest.digest,
        size: 1,
      })),
    );
    assert.deepEqual(await read(await r.openBlob(img.layers[0])), img.layerBytes[0]);
    assert.deepEqual(
      await read(await r.openBlob(img.layers[0], { offset: 100 })),
      img.layerBytes[0].slice(100),
    );
  });
});

Deno.test("repository: putBlob mounts from a repository of the same registry", async () => {
  await withRegistries(async ({ a, repo }) => {
    const img = makeImage({ layers: [randomBytes(5000)] });
    a.seedImage("base", img);
    const source = repo(a, "base");
    const sink = repo(a, "app", "push");
    assert.equal(await sink.putBlob(img.layers[0], source), "mounted");
    assert.equal(a.find("POST")[0].query.get("from"), "base");
    assert.equal(await sink.putBlob(img.layers[0], source), "exists");
    assert.ok(a.hasBlob("app", img.layers[0].digest));
  });
});

Deno.test("repository: putBlob copies across registries, verified", async () => {
  await withRegistries(async ({ a, b, repo }) => {
    const img = makeImage({ layers: [randomBytes(70_000, 3)] });
    a.seedImage("base", img);
    const source = repo(a, "base");
    const sink = repo(b, "app", "push");
    assert.equal(await sink.putBlob(img.layers[0], source), "uploaded");
    assert.equal(b.find("POST")[0].query.get("mount"), null);
    assert.deepEqual(b.blobs.get(img.layers[0].digest), img.layerBytes[0]);
    // a corrupt source makes the upload fail instead of storing bad content
    const other = makeImage({ layers: [randomBytes(1000, 5)] });
    a.putBlob("base", randomBytes(1000, 6)); // different bytes...
    a.blobs.set(other.layers[0].digest, randomBytes(1000, 6)); // ...served under the wrong digest
    a.repoBlobs.get("base")!.add(other.layers[0].digest);
    const err = await sink.putBlob(other.layers[0], source).catch((e) => e);
    assert.ok(err instanceof KanikoError, String(err));
    assert.equal(err.code, "DIGEST_INVALID", err.message);
    assert.ok(!b.hasBlob("app", other.layers[0].digest));
  });
});

Deno.test("repository: putManifest by digest and by tag", async () => {
  await withRegistries(async ({ a, repo }) => {
    const img = makeImage();
    a.seedImage("app", img);
    const sink = repo(a, "app", "push");
    await sink.putManifest(img.manifest);
    assert.ok(a.find("PUT", `/manifests/${img.manifest.digest}`).length === 1);
    await sink.putManifest(img.manifest, "v1");
    assert.deepEqual(a.getManifest("app", "v1")?.bytes, img.manifest.bytes);
  });
});
