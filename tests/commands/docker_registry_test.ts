/**
 * The utility commands and the registry client against a real registry: `docker-registry`
 * (distribution 2.8) started on a free port with storage in a temporary directory.
 */
import assert from "node:assert/strict";
import { configureLog } from "../../lib/log.ts";
import type { BlobSource, OpenBlobOptions } from "../../lib/oci/content.ts";
import { digestOf } from "../../lib/oci/digest.ts";
import { OciLayout } from "../../lib/oci/layout.ts";
import type { Descriptor } from "../../lib/oci/schemas.ts";
import { headBlob, uploadBlob } from "../../lib/registry/blobs.ts";
import { RegistryClient } from "../../lib/registry/client.ts";
import { defaultRegistryOptions } from "../../lib/registry/options.ts";
import { Transport } from "../../lib/registry/transport.ts";
import {
  FakeRegistry,
  hasDockerRegistry,
  makeImage,
  makeIndex,
  randomBytes,
  runCli,
  startDockerRegistry,
  TcpProxy,
} from "../_fake_registry.ts";

// resume and retry messages are expected here: keep the test output quiet
configureLog({ level: "warn" });

const ignore = !hasDockerRegistry();

function platformImage(arch: string, seed: number, variant?: string) {
  return makeImage({
    layers: [randomBytes(30_000, seed), randomBytes(7000, seed + 1)],
    platform: { os: "linux", architecture: arch, ...(variant ? { variant } : {}) },
  });
}

function ok(r: { code: number; err: string }) {
  assert.equal(r.code, 0, r.err);
}

async function skopeoRaw(ref: string): Promise<Uint8Array | undefined> {
  try {
    const out = await new Deno.Command("skopeo", {
      args: ["inspect", "--raw", "--tls-verify=false", `docker://${ref}`],
      stdout: "piped",
      stderr: "piped",
      env: { REGISTRY_AUTH_FILE: "/dev/null/none" },
    }).output();
    return out.success ? out.stdout : undefined;
  } catch {
    return undefined; // no skopeo
  }
}

Deno.test({
  name: "docker-registry: copy, manifest, digest and tags against distribution 2.8",
  ignore,
  async fn(t) {
    const real = await startDockerRegistry();
    const fake = await FakeRegistry.start();
    const dir = await Deno.makeTempDir();
    try {
      const amd = platformImage("amd64", 1);
      const arm = platformImage("arm", 3, "v7");
      const arm64 = platformImage("arm64", 5);
      const index = makeIndex([amd, arm, arm64]);
      fake.seedImage("src/app", index, "v1");
      const R = real.host;

      await t.step("copy --all into the registry (monolithic uploads)", async () => {
        const r = await runCli(["copy", "--all", `${fake.host}/src/app:v1`, `${R}/team/app:v1`]);
        ok(r);
        assert.equal(r.out, `${index.manifest.digest}\n`);
        assert.match(r.err, /9 blobs uploaded/);
      });

      await t.step("manifest prints the stored bytes exactly", async () => {
        const r = await runCli(["manifest", `${R}/team/app:v1`]);
        ok(r);
        assert.deepEqual(r.stdout, index.manifest.bytes);
        const child = await runCli(["manifest", `${R}/team/app:v1`, "--platform", "linux/arm/v7"]);
        ok(child);
        assert.deepEqual(child.stdout, arm.manifest.bytes);
        const raw = await skopeoRaw(`${R}/team/app:v1`);
        if (raw) assert.deepEqual(raw, index.manifest.bytes, "skopeo reads the same bytes");
      });

      await t.step("digest, of the index and of a platform's image", async () => {
        const top = await runCli(["digest", `${R}/team/app:v1`]);
        ok(top);
        assert.equal(top.out, `${index.manifest.digest}\n`);
        const child = await runCli(["digest", `${R}/team/app:v1`, "--platform=linux/arm64"]);
        ok(child);
        assert.equal(child.out, `${arm64.manifest.digest}\n`);
      });

      await t.step("copy within the registry mounts every blob", async () => {
        const r = await runCli(["copy", "--all", `${R}/team/app:v1`, `${R}/other/app:v1`]);
        ok(r);
        assert.match(r.err, /0 blobs uploaded \(0 B\), 9 mounted, 0 already present/);
        const again = await runCli(["copy", "--all", `${R}/team/app:v1`, `${R}/other/app:v1`]);
        ok(again);
        assert.match(again.err, /0 blobs uploaded \(0 B\), 0 mounted/);
      });

      await t.step("copy one platform with chunked uploads", async () => {
        const r = await runCli([
          "copy",
          "--platform",
          "linux/arm",
          "--upload-chunk-size=8KiB",
          `${fake.host}/src/app:v1`,
          `${R}/chunked/app:arm`,
        ]);
        ok(r);
        assert.equal(r.out, `${arm.manifest.digest}\n`);
        const back = await runCli(["manifest", `${R}/chunked/app:arm`]);
        assert.deepEqual(back.stdout, arm.manifest.bytes);
      });

      await t.step("tags lists every tag", async () => {
        for (const tag of ["v2", "v3", "latest"]) {
          ok(await runCli(["copy", "--all", `${R}/team/app:v1`, `${R}/team/app:${tag}`]));
        }
        const r = await runCli(["tags", `${R}/team/app`]);
        ok(r);
        assert.equal(r.out, "latest\nv1\nv2\nv3\n");
        const transport = new Transport();
        try {
          const client = new RegistryClient(R, {
            transport,
            options: defaultRegistryOptions(),
            direction: "pull",
          });
          assert.deepEqual(await client.listTags("team/app", 1), ["latest", "v1", "v2", "v3"]);
          assert.deepEqual(await client.listTags("team/app", 3), ["latest", "v1", "v2", "v3"]);
        } finally {
          transport.close();
        }
      });

      await t.step("copy from the registry into an OCI layout", async () => {
        const r = await runCli(["copy", "--all", `${R}/team/app:v1`, `oci:${dir}:v1`]);
        ok(r);
        const layout = await OciLayout.open(dir);
        assert.deepEqual((await layout.getManifest("v1")).bytes, index.manifest.bytes);
        for (const l of [...amd.layers, ...arm.layers, ...arm64.layers]) {
          assert.ok(await layout.hasBlob(l));
        }
      });

      await t.step("errors are one line", async () => {
        const missing = await runCli(["manifest", `${R}/team/app:missing`]);
        assert.equal(missing.code, 1);
        assert.match(
          missing.err,
          /^error: fetching manifest .*:missing failed: MANIFEST_UNKNOWN: .*\(HTTP 404\).*\n$/,
        );
        assert.equal(missing.err.split("\n").length, 2);
        const noRepo = await runCli(["tags", `${R}/no/such`]);
        assert.equal(noRepo.code, 1);
        assert.match(noRepo.err, /^error: listing tags of .* failed: NAME_UNKNOWN: .*\n$/);
        assert.equal(noRepo.err.split("\n").length, 2);
      });
    } finally {
      await fake.close();
      await real.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** Blobs in memory, recording the offsets they are opened at. */
class MemorySource implements BlobSource {
  opens: number[] = [];
  constructor(readonly bytes: Uint8Array) {}
  openBlob(_desc: Descriptor, options: OpenBlobOptions = {}): Promise<ReadableStream<Uint8Array>> {
    const offset = options.offset ?? 0;
    this.opens.push(offset);
    return Promise.resolve(ReadableStream.from([this.bytes.slice(offset)]));
  }
}

Deno.test({
  name: "docker-registry: a chunked upload resumes after a dropped connection",
  ignore,
  async fn() {
    const real = await startDockerRegistry();
    const proxy = new TcpProxy(Number(real.host.split(":")[1]));
    const transport = new Transport();
    try {
      const host = `127.0.0.1:${proxy.port}`;
      const client = new RegistryClient(host, {
        transport,
        options: { ...defaultRegistryOptions(), uploadChunkSize: 10_000 },
        direction: "push",
      });
      const bytes = randomBytes(45_000, 77);
      const desc = { mediaType: "application/octet-stream", digest: digestOf(bytes), size: 45_000 };
      const source = new MemorySource(bytes);
      proxy.drop({ method: "PATCH", skip: 2, afterBodyBytes: 4000 });
      assert.equal(await uploadBlob(client, "resume/app", desc, source), "uploaded");
      assert.equal(source.opens.length, 2, `opened at ${source.opens}`);
      assert.equal(source.opens[0], 0);
      // distribution 2.8 cancels a session whose file no longer matches its `_state` (the cut
      // PATCH left 4000 bytes): the upload restarts from 0 in a new session. Had nothing of the
      // cut chunk landed, the session would resume at 20 000.
      assert.ok([0, 20_000].includes(source.opens[1]), `resumed at ${source.opens[1]}`);
      assert.equal(await headBlob(client, "resume/app", desc.digest), 45_000);
      const res = await fetch(`http://${real.host}/v2/resume/app/blobs/${desc.digest}`);
      assert.deepEqual(new Uint8Array(await res.arrayBuffer()), bytes);
    } finally {
      transport.close();
      proxy.close();
      await proxy.done();
      await real.stop();
    }
  },
});
