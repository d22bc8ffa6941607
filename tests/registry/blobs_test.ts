import assert from "node:assert/strict";
import { KanikoError } from "../../lib/errors.ts";
import { configureLog } from "../../lib/log.ts";
import type { BlobSource, OpenBlobOptions } from "../../lib/oci/content.ts";
import { digestOf } from "../../lib/oci/digest.ts";
import type { Descriptor } from "../../lib/oci/schemas.ts";
import {
  ChunkReader,
  headBlob,
  openRegistryBlob,
  rangeEnd,
  uploadBlob,
} from "../../lib/registry/blobs.ts";
import { RegistryClient } from "../../lib/registry/client.ts";
import {
  defaultRegistryOptions,
  type Direction,
  type RegistryOptions,
} from "../../lib/registry/options.ts";
import { Transport } from "../../lib/registry/transport.ts";
import {
  bodyOf,
  FakeRegistry,
  type FakeRegistryOptions,
  ociError,
  randomBytes,
} from "../_fake_registry.ts";

// resume and retry messages are expected here: keep the test output quiet
configureLog({ level: "warn" });

/** Blobs in memory, served in 4 KiB chunks; records every open. */
class MemorySource implements BlobSource {
  opens: { digest: string; offset: number }[] = [];
  blobs = new Map<string, Uint8Array>();
  constructor(readonly origin?: { registry: string; repository: string }) {}

  add(bytes: Uint8Array): Descriptor {
    const digest = digestOf(bytes);
    this.blobs.set(digest, bytes);
    return { mediaType: "application/octet-stream", digest, size: bytes.byteLength };
  }

  openBlob(desc: Descriptor, options: OpenBlobOptions = {}): Promise<ReadableStream<Uint8Array>> {
    const offset = options.offset ?? 0;
    this.opens.push({ digest: desc.digest, offset });
    const bytes = this.blobs.get(desc.digest);
    if (!bytes) return Promise.reject(new KanikoError(`no blob ${desc.digest}`));
    let at = offset;
    return Promise.resolve(
      new ReadableStream({
        pull(c) {
          if (at >= bytes.byteLength) return c.close();
          c.enqueue(bytes.slice(at, at + 4096));
          at += 4096;
        },
      }),
    );
  }
}

interface Env {
  reg: FakeRegistry;
  client: RegistryClient;
}

async function withRegistry(
  fn: (env: Env) => Promise<void>,
  options: {
    fake?: FakeRegistryOptions;
    client?: Partial<RegistryOptions>;
    direction?: Direction;
  } = {},
): Promise<void> {
  const reg = await FakeRegistry.start(options.fake);
  const transport = new Transport();
  const dir = await Deno.makeTempDir();
  const auth = options.fake?.auth;
  await Deno.writeTextFile(
    `${dir}/config.json`,
    JSON.stringify({
      auths: auth ? { [reg.host]: { auth: btoa(`${auth.username}:${auth.password}`) } } : {},
    }),
  );
  const client = new RegistryClient(reg.host, {
    transport,
    options: {
      ...defaultRegistryOptions(),
      pushRetryInitialDelay: 1,
      dockerConfigDir: dir,
      ...options.client,
    },
    direction: options.direction ?? "push",
  });
  try {
    await fn({ reg, client });
  } finally {
    transport.close();
    await reg.close();
    await Deno.remove(dir, { recursive: true });
  }
}

async function read(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function blobRequests(reg: FakeRegistry): string[] {
  return reg.requests.filter((r) => r.path !== "/v2/" && r.path !== "/token").map((r) => {
    const path = r.path.replace(/uploads\/up-\d+/, "uploads/ID").replace(
      /sha256:[0-9a-f]{64}/,
      "D",
    );
    const range = r.headers["content-range"] ? ` ${r.headers["content-range"]}` : "";
    return `${r.method} ${path}${range} → ${r.status}`;
  });
}

Deno.test("blobs: a blob the repository has is not uploaded", async () => {
  await withRegistry(async ({ reg, client }) => {
    const source = new MemorySource();
    const desc = source.add(randomBytes(1000));
    reg.putBlob("app", source.blobs.get(desc.digest)!);
    assert.equal(await uploadBlob(client, "app", desc, source), "exists");
    assert.deepEqual(blobRequests(reg), ["HEAD /v2/app/blobs/D → 200"]);
    assert.equal(source.opens.length, 0);
    assert.equal(await headBlob(client, "app", desc.digest), 1000);
    assert.equal(await headBlob(client, "app", `sha256:${"2".repeat(64)}`), undefined);
  });
});

Deno.test("blobs: monolithic upload is POST then one PUT with a real Content-Length", async () => {
  await withRegistry(async ({ reg, client }) => {
    const source = new MemorySource();
    const bytes = randomBytes(100_000, 3);
    const desc = source.add(bytes);
    const progress: number[] = [];
    assert.equal(
      await uploadBlob(client, "team/app", desc, source, { onProgress: (n) => progress.push(n) }),
      "uploaded",
    );
    assert.deepEqual(blobRequests(reg), [
      "HEAD /v2/team/app/blobs/D → 404",
      "POST /v2/team/app/blobs/uploads/ → 202",
      "PUT /v2/team/app/blobs/uploads/ID → 201",
    ]);
    const put = reg.find("PUT")[0];
    assert.equal(put.headers["content-length"], "100000");
    assert.equal(put.headers["transfer-encoding"], undefined);
    assert.equal(put.headers["content-type"], "application/octet-stream");
    assert.equal(put.query.get("digest"), desc.digest);
    assert.ok(put.query.get("_state"), "the Location's own query is kept");
    assert.deepEqual(reg.blobs.get(desc.digest), bytes);
    assert.ok(reg.hasBlob("team/app", desc.digest));
    assert.equal(progress.at(-1), 100_000);
    assert.deepEqual(progress, [...progress].sort((a, b) => a - b));
  });
});

Deno.test("blobs: an empty blob uploads, monolithic and chunked", async () => {
  for (const uploadChunkSize of [0, 1000]) {
    await withRegistry(async ({ reg, client }) => {
      const source = new MemorySource();
      const desc = source.add(new Uint8Array(0));
      assert.equal(await uploadBlob(client, "app", desc, source), "uploaded");
      assert.ok(reg.hasBlob("app", desc.digest));
      assert.equal(reg.find("PATCH").length, 0);
      assert.equal(reg.find("PUT")[0].headers["content-length"], "0");
    }, { client: { uploadChunkSize } });
  }
});

Deno.test("blobs: chunked upload sends ordered PATCHes with Content-Range, then PUT", async () => {
  await withRegistry(async ({ reg, client }) => {
    const source = new MemorySource();
    const bytes = randomBytes(3500, 5);
    const desc = source.add(bytes);
    assert.equal(await uploadBlob(client, "app", desc, source), "uploaded");
    assert.deepEqual(blobRequests(reg), [
      "HEAD /v2/app/blobs/D → 404",
      "POST /v2/app/blobs/uploads/ → 202",
      "PATCH /v2/app/blobs/uploads/ID 0-999 → 202",
      "PATCH /v2/app/blobs/uploads/ID 1000-1999 → 202",
      "PATCH /v2/app/blobs/uploads/ID 2000-2999 → 202",
      "PATCH /v2/app/blobs/uploads/ID 3000-3499 → 202",
      "PUT /v2/app/blobs/uploads/ID → 201",
    ]);
    const patches = reg.find("PATCH");
    assert.deepEqual(patches.map((p) => p.headers["content-length"]), [
      "1000",
      "1000",
      "1000",
      "500",
    ]);
    for (const p of patches) assert.equal(p.headers["transfer-encoding"], undefined);
    // each PATCH goes to the Location the previous answer gave
    assert.deepEqual(patches.slice(1).map((p) => p.query.get("_state")), [
      "p1000",
      "p2000",
      "p3000",
    ]);
    const put = reg.find("PUT")[0];
    assert.equal(put.query.get("_state"), "p3500");
    assert.equal(put.headers["content-length"], "0");
    assert.deepEqual(reg.blobs.get(desc.digest), bytes);
    assert.deepEqual(source.opens, [{ digest: desc.digest, offset: 0 }]);
  }, { client: { uploadChunkSize: 1000 } });
});

Deno.test("blobs: chunked upload of an exact multiple of the chunk size", async () => {
  await withRegistry(async ({ reg, client }) => {
    const source = new MemorySource();
    const desc = source.add(randomBytes(3000, 9));
    assert.equal(await uploadBlob(client, "app", desc, source), "uploaded");
    assert.deepEqual(reg.find("PATCH").map((p) => p.headers["content-range"]), [
      "0-999",
      "1000-1999",
      "2000-2999",
    ]);
    assert.ok(reg.hasBlob("app", desc.digest));
  }, { client: { uploadChunkSize: 1000 } });
});

Deno.test("blobs: after a 416 the upload resumes from the registry's Range", async () => {
  await withRegistry(async ({ reg, client }) => {
    const source = new MemorySource();
    const bytes = randomBytes(4000, 11);
    const desc = source.add(bytes);
    // on the third PATCH the registry has lost the second chunk: it holds 1000 bytes
    reg.intercept({
      method: "PATCH",
      when: (req) => req.headers.get("content-range") === "2000-2999",
    }, (_req, url) => {
      const up = reg.uploads.get(url.pathname.split("/").pop()!)!;
      const kept = up.chunks.reduce((a, c) => [...a, ...c], [] as number[]).slice(0, 1000);
      up.chunks = [new Uint8Array(kept)];
      up.size = 1000;
      return new Response(null, {
        status: 416,
        headers: { range: "0-999", location: url.pathname },
      });
    });
    assert.equal(await uploadBlob(client, "app", desc, source), "uploaded");
    assert.deepEqual(blobRequests(reg), [
      "HEAD /v2/app/blobs/D → 404",
      "POST /v2/app/blobs/uploads/ → 202",
      "PATCH /v2/app/blobs/uploads/ID 0-999 → 202",
      "PATCH /v2/app/blobs/uploads/ID 1000-1999 → 202",
      "PATCH /v2/app/blobs/uploads/ID 2000-2999 → 416",
      "GET /v2/app/blobs/uploads/ID → 204",
      "PATCH /v2/app/blobs/uploads/ID 1000-1999 → 202",
      "PATCH /v2/app/blobs/uploads/ID 2000-2999 → 202",
      "PATCH /v2/app/blobs/uploads/ID 3000-3999 → 202",
      "PUT /v2/app/blobs/uploads/ID → 201",
    ]);
    assert.deepEqual(source.opens.map((o) => o.offset), [0, 1000]);
    assert.deepEqual(reg.blobs.get(desc.digest), bytes);
  }, { client: { uploadChunkSize: 1000 } });
});

Deno.test("blobs: after a connection dropped mid-PATCH the upload resumes from the registry's Range", async () => {
  await withRegistry(async ({ reg, client }) => {
    const source = new MemorySource();
    const bytes = randomBytes(4000, 13);
    const desc = source.add(bytes);
    // the second PATCH's connection is cut after 300 of its 1000 bytes reached the registry
    reg.dropConnection({ method: "PATCH", skip: 1, afterBodyBytes: 300 });
    assert.equal(await uploadBlob(client, "app", desc, source), "uploaded");
    const patches = reg.find("PATCH").map((p) => `${p.headers["content-range"]} ${p.status}`);
    assert.deepEqual(patches, [
      "0-999 202",
      "1000-1999 202", // answered to nobody: the client saw the connection drop
      "1300-2299 202",
      "2300-3299 202",
      "3300-3999 202",
    ]);
    assert.equal(reg.find("GET", "/blobs/uploads/").length, 1);
    assert.deepEqual(source.opens.map((o) => o.offset), [0, 1300]);
    assert.deepEqual(reg.blobs.get(desc.digest), bytes);
  }, { fake: { proxy: true }, client: { uploadChunkSize: 1000 } });
});

Deno.test("blobs: a first PATCH failing with 503 resumes at byte 0 despite `Range: 0-0`", async () => {
  await withRegistry(async ({ reg, client }) => {
    const source = new MemorySource();
    const bytes = randomBytes(2500, 15);
    const desc = source.add(bytes);
    reg.intercept({ method: "PATCH" }, async (req) => {
      await req.body?.cancel();
      return ociError(503, "UNAVAILABLE", "busy");
    });
    assert.equal(await uploadBlob(client, "app", desc, source), "uploaded");
    const status = reg.find("GET", "/blobs/uploads/");
    assert.equal(status.length, 1);
    assert.deepEqual(source.opens.map((o) => o.offset), [0, 0]);
    assert.equal(reg.find("POST").length, 1, "the same session goes on");
    assert.deepEqual(reg.blobs.get(desc.digest), bytes);
  }, { client: { uploadChunkSize: 1000 } });
});

Deno.test("blobs: a session the registry dropped after a cut PATCH is restarted from 0", async () => {
  await withRegistry(async ({ reg, client }) => {
    const source = new MemorySource();
    const bytes = randomBytes(3000, 14);
    const desc = source.add(bytes);
    reg.dropConnection({ method: "PATCH", skip: 1, afterBodyBytes: 300 });
    // as distribution 2.8 does when its file no longer matches the session state
    reg.intercept(
      { method: "GET", path: "/blobs/uploads/" },
      () => ociError(404, "BLOB_UPLOAD_INVALID", "blob upload invalid"),
    );
    assert.equal(await uploadBlob(client, "app", desc, source), "uploaded");
    assert.deepEqual(source.opens.map((o) => o.offset), [0, 0]);
    assert.equal(reg.find("POST").length, 2);
    assert.deepEqual(
      reg.find("PATCH").map((p) => p.headers["content-range"]),
      ["0-999", "1000-1999", "0-999", "1000-1999", "2000-2999"],
    );
    assert.deepEqual(reg.blobs.get(desc.digest), bytes);
  }, { fake: { proxy: true }, client: { uploadChunkSize: 1000 } });
});

Deno.test("blobs: a chunked upload that never advances gives up with one line", async () => {
  await withRegistry(async ({ reg, client }) => {
    const source = new MemorySource();
    const desc = source.add(randomBytes(3000, 17));
    reg.intercept(
      { method: "PATCH" },
      (_req, url) =>
        new Response(null, { status: 416, headers: { range: "0--1", location: url.pathname } }),
      100,
    );
    const err = await uploadBlob(client, "app", desc, source).catch((e) => e);
    assert.ok(err instanceof KanikoError);
    assert.match(err.message, /could not be resumed after 3 attempts/);
    assert.ok(!err.message.includes("\n"));
  }, { client: { uploadChunkSize: 1000 } });
});

Deno.test("blobs: a cross-repository mount with from → 201 moves nothing", async () => {
  await withRegistry(async ({ reg, client }) => {
    const bytes = randomBytes(2000, 19);
    const desc = reg.putBlob("base/img", bytes);
    const source = new MemorySource({ registry: reg.host, repository: "base/img" });
    source.blobs.set(desc.digest, bytes);
    const result = await uploadBlob(client, "app", desc, source, { mountFrom: source.origin });
    assert.equal(result, "mounted");
    const post = reg.find("POST")[0];
    assert.equal(post.query.get("mount"), desc.digest);
    assert.equal(post.query.get("from"), "base/img");
    assert.equal(reg.find("PUT").length + reg.find("PATCH").length, 0);
    assert.equal(source.opens.length, 0);
    assert.ok(reg.hasBlob("app", desc.digest));
  });
});

Deno.test("blobs: a mount answered with 202 continues in that upload session", async () => {
  await withRegistry(async ({ reg, client }) => {
    const source = new MemorySource({ registry: reg.host, repository: "base/img" });
    const bytes = randomBytes(2000, 23);
    const desc = source.add(bytes); // the registry's base/img does not hold it
    reg.putBlob("base/img", randomBytes(10));
    const result = await uploadBlob(client, "app", desc, source, { mountFrom: source.origin });
    assert.equal(result, "uploaded");
    assert.deepEqual(blobRequests(reg), [
      "HEAD /v2/app/blobs/D → 404",
      "POST /v2/app/blobs/uploads/ → 202",
      "PUT /v2/app/blobs/uploads/ID → 201",
    ]);
    assert.deepEqual(reg.blobs.get(desc.digest), bytes);
  });
});

Deno.test("blobs: a refused mount with from falls back to a mount without from", async () => {
  await withRegistry(async ({ reg, client }) => {
    const bytes = randomBytes(2000, 29);
    const desc = reg.putBlob("base/img", bytes);
    reg.intercept(
      { method: "POST", when: (_r, url) => url.searchParams.has("from") },
      () => ociError(403, "DENIED", "no pull access to base/img"),
    );
    const source = new MemorySource({ registry: reg.host, repository: "base/img" });
    source.blobs.set(desc.digest, bytes);
    assert.equal(
      await uploadBlob(client, "app", desc, source, { mountFrom: source.origin }),
      "mounted",
    );
    const posts = reg.find("POST");
    assert.equal(posts.length, 2);
    assert.equal(posts[1].query.get("from"), null);
    assert.equal(posts[1].query.get("mount"), desc.digest);
  }, { fake: { anonymousMount: true } });
});

Deno.test("blobs: when both mounts fail, the blob is uploaded", async () => {
  await withRegistry(async ({ reg, client }) => {
    const source = new MemorySource({ registry: reg.host, repository: "base/img" });
    const bytes = randomBytes(2000, 31);
    const desc = source.add(bytes);
    reg.intercept(
      { method: "POST", when: (_r, url) => url.searchParams.has("mount") },
      () => ociError(403, "DENIED", "no"),
      2,
    );
    assert.equal(
      await uploadBlob(client, "app", desc, source, { mountFrom: source.origin }),
      "uploaded",
    );
    assert.equal(reg.find("POST").length, 3);
    assert.deepEqual(reg.blobs.get(desc.digest), bytes);
  });
});

Deno.test("blobs: no mount is tried from another registry or the same repository", async () => {
  await withRegistry(async ({ reg, client }) => {
    const source = new MemorySource();
    const a = source.add(randomBytes(500, 37));
    const b = source.add(randomBytes(500, 41));
    await uploadBlob(client, "app", a, source, {
      mountFrom: { registry: "other.example", repository: "base" },
    });
    await uploadBlob(client, "app", b, source, {
      mountFrom: { registry: reg.host, repository: "app" },
    });
    for (const post of reg.find("POST")) assert.equal(post.query.get("mount"), null);
  });
});

Deno.test("blobs: a failed upload is retried from the start with --push-retry", async () => {
  await withRegistry(async ({ reg, client }) => {
    const source = new MemorySource();
    const bytes = randomBytes(5000, 43);
    const desc = source.add(bytes);
    reg.intercept(
      { method: "PUT", path: "/blobs/uploads/" },
      () => ociError(500, "UNKNOWN", "disk full"),
    );
    assert.equal(await uploadBlob(client, "app", desc, source), "uploaded");
    assert.deepEqual(blobRequests(reg), [
      "HEAD /v2/app/blobs/D → 404",
      "POST /v2/app/blobs/uploads/ → 202",
      "PUT /v2/app/blobs/uploads/ID → 500",
      "HEAD /v2/app/blobs/D → 404",
      "POST /v2/app/blobs/uploads/ → 202",
      "PUT /v2/app/blobs/uploads/ID → 201",
    ]);
    assert.equal(source.opens.length, 2);
    assert.deepEqual(reg.blobs.get(desc.digest), bytes);
  }, { client: { pushRetry: 2 } });
});

Deno.test("blobs: without retries a failed upload is one error line", async () => {
  await withRegistry(async ({ reg, client }) => {
    const source = new MemorySource();
    const desc = source.add(randomBytes(500, 47));
    reg.intercept(
      { method: "PUT", path: "/blobs/uploads/" },
      () => ociError(500, "UNKNOWN", "disk full"),
    );
    const err = await uploadBlob(client, "app", desc, source).catch((e) => e);
    assert.ok(err instanceof KanikoError);
    assert.equal(
      err.message,
      `uploading blob ${desc.digest} to ${reg.host}/app failed: UNKNOWN: disk full (HTTP 500)`,
    );
  });
});

Deno.test("blobs: a token expiring mid-upload is refreshed and the upload replayed", async () => {
  await withRegistry(async ({ reg, client }) => {
    const source = new MemorySource();
    const bytes = randomBytes(20_000, 53);
    const desc = source.add(bytes);
    reg.intercept({ method: "PUT", path: "/blobs/uploads/" }, async (req) => {
      await req.body?.cancel();
      reg.revokeTokens();
      return ociError(401, "UNAUTHORIZED", "token expired", {
        "www-authenticate":
          `Bearer realm="${reg.url}/token",service="fake",scope="repository:app:pull,push"`,
      });
    });
    assert.equal(await uploadBlob(client, "app", desc, source), "uploaded");
    assert.deepEqual(reg.blobs.get(desc.digest), bytes);
    assert.equal(source.opens.length, 2, "the source is read again for the replay");
  }, { fake: { auth: { kind: "bearer", username: "u", password: "p" } } });
});

Deno.test("blobs: a token expiring mid-PATCH resumes the chunked upload", async () => {
  await withRegistry(async ({ reg, client }) => {
    const source = new MemorySource();
    const bytes = randomBytes(3000, 59);
    const desc = source.add(bytes);
    reg.intercept({
      method: "PATCH",
      when: (req) => req.headers.get("content-range") === "1000-1999",
    }, async (req) => {
      await req.body?.cancel();
      reg.revokeTokens();
      return ociError(401, "UNAUTHORIZED", "token expired", {
        "www-authenticate":
          `Bearer realm="${reg.url}/token",service="fake",scope="repository:app:pull,push"`,
      });
    });
    assert.equal(await uploadBlob(client, "app", desc, source), "uploaded");
    assert.deepEqual(reg.blobs.get(desc.digest), bytes);
  }, {
    fake: { auth: { kind: "bearer", username: "u", password: "p" } },
    client: { uploadChunkSize: 1000 },
  });
});

Deno.test("blobs: downloads are verified", async () => {
  await withRegistry(async ({ reg, client }) => {
    const bytes = randomBytes(50_000, 61);
    const desc = reg.putBlob("app", bytes);
    assert.deepEqual(await read(await openRegistryBlob(client, "app", desc)), bytes);

    const corrupt = bytes.slice();
    corrupt[1234] ^= 0xff;
    reg.intercept({ method: "GET", path: "/blobs/" }, () => new Response(bodyOf(corrupt)));
    const err = await read(await openRegistryBlob(client, "app", desc)).catch((e) => e);
    assert.ok(err instanceof KanikoError);
    assert.equal(err.code, "DIGEST_INVALID");
    assert.match(err.message, new RegExp(`blob ${desc.digest} from ${reg.host}/app`));

    reg.intercept(
      { method: "GET", path: "/blobs/" },
      () => new Response(bodyOf(randomBytes(50_001))),
    );
    const long = await read(await openRegistryBlob(client, "app", desc)).catch((e) => e);
    assert.equal(long.code, "SIZE_INVALID");

    reg.intercept(
      { method: "GET", path: "/blobs/" },
      () => new Response(bodyOf(bytes.slice(0, 100))),
    );
    const short = await read(await openRegistryBlob(client, "app", desc)).catch((e) => e);
    assert.equal(short.code, "SIZE_INVALID");

    const missing = await openRegistryBlob(client, "app", {
      ...desc,
      digest: `sha256:${"3".repeat(64)}`,
    })
      .catch((e) => e);
    assert.equal(missing.code, "BLOB_UNKNOWN");
  }, { direction: "pull" });
});

Deno.test("blobs: a download from an offset asks for a Range", async () => {
  await withRegistry(async ({ reg, client }) => {
    const bytes = randomBytes(20_000, 67);
    const desc = reg.putBlob("app", bytes);
    const tail = await read(await openRegistryBlob(client, "app", desc, { offset: 12_345 }));
    assert.deepEqual(tail, bytes.slice(12_345));
    const get = reg.find("GET", "/blobs/")[0];
    assert.equal(get.headers["range"], "bytes=12345-");
    assert.equal(get.status, 206);
  }, { direction: "pull" });
});

Deno.test("blobs: a registry ignoring Range still yields the bytes from the offset", async () => {
  await withRegistry(async ({ reg, client }) => {
    const bytes = randomBytes(20_000, 71);
    const desc = reg.putBlob("app", bytes);
    const tail = await read(await openRegistryBlob(client, "app", desc, { offset: 5000 }));
    assert.deepEqual(tail, bytes.slice(5000));
    assert.equal(reg.find("GET", "/blobs/")[0].status, 200);
  }, { direction: "pull", fake: { ignoreRange: true } });
});

Deno.test("blobs: a blob GET redirected to another host gets no Authorization", async () => {
  const cdn = await FakeRegistry.start();
  const reg = await FakeRegistry.start({
    auth: { kind: "basic", username: "u", password: "p4ssw0rd" },
    blobRedirect: cdn.url,
  });
  const dir = await Deno.makeTempDir();
  const transport = new Transport();
  try {
    await Deno.writeTextFile(
      `${dir}/config.json`,
      JSON.stringify({ auths: { [reg.host]: { auth: btoa("u:p4ssw0rd") } } }),
    );
    const client = new RegistryClient(reg.host, {
      transport,
      options: { ...defaultRegistryOptions(), dockerConfigDir: dir },
      direction: "pull",
    });
    const bytes = randomBytes(30_000, 73);
    const desc = reg.putBlob("app", bytes);
    cdn.putBlob("anything", bytes);
    assert.deepEqual(await read(await openRegistryBlob(client, "app", desc)), bytes);
    const get = reg.find("GET", "/blobs/")[0];
    assert.equal(get.status, 307);
    assert.equal(get.headers["authorization"], `Basic ${btoa("u:p4ssw0rd")}`);
    assert.deepEqual(cdn.cdnAuthorizations, [null]);
  } finally {
    transport.close();
    await reg.close();
    await cdn.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("blobs: ChunkReader cuts a stream into exact pieces", async () => {
  const bytes = randomBytes(10_000, 79);
  const source = new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < bytes.byteLength; i += 3333) c.enqueue(bytes.slice(i, i + 3333));
      c.close();
    },
  });
  const reader = new ChunkReader(source);
  const parts = [];
  for (const n of [1, 999, 4000, 5000]) parts.push(await read(reader.take(n)));
  assert.deepEqual(parts.map((p) => p.byteLength), [1, 999, 4000, 5000]);
  assert.deepEqual(
    new Uint8Array(parts.flatMap((p) => [...p])),
    bytes,
  );
  await assert.rejects(read(reader.take(1)), /ended early/);
  await reader.cancel();
});

Deno.test("blobs: rangeEnd reads Range headers", () => {
  assert.equal(rangeEnd("0-999"), 999);
  assert.equal(rangeEnd("bytes=0-5"), 5);
  assert.equal(rangeEnd("0--1"), undefined);
  assert.equal(rangeEnd(null), undefined);
  assert.equal(rangeEnd("garbage"), undefined);
});

Deno.test("fake registry: chunked upload protocol (416 out of order, status 204, Range)", async () => {
  const reg = await FakeRegistry.start();
  try {
    const post = await fetch(`${reg.url}/v2/app/blobs/uploads/`, { method: "POST" });
    assert.equal(post.status, 202);
    const loc = new URL(post.headers.get("location")!, reg.url);
    const patch = (range: string, body: Uint8Array) =>
      fetch(loc, { method: "PATCH", headers: { "content-range": range }, body: bodyOf(body) });
    const data = randomBytes(30, 83);
    const first = await patch("0-9", data.slice(0, 10));
    assert.equal(first.status, 202);
    assert.equal(first.headers.get("range"), "0-9");
    const gap = await patch("20-29", data.slice(20));
    assert.equal(gap.status, 416);
    assert.equal(gap.headers.get("range"), "0-9");
    const status = await fetch(new URL(first.headers.get("location")!, reg.url));
    assert.equal(status.status, 204);
    assert.equal(status.headers.get("range"), "0-9");
    assert.equal((await patch("10-19", data.slice(10, 20))).status, 202);
    const put = await fetch(`${loc}&digest=${digestOf(data)}`, {
      method: "PUT",
      body: bodyOf(data.slice(20)),
    });
    assert.equal(put.status, 201);
    assert.equal(put.headers.get("docker-content-digest"), digestOf(data));
    assert.deepEqual(reg.blobs.get(digestOf(data)), data);
    const blob = await fetch(`${reg.url}/v2/app/blobs/${digestOf(data)}`, {
      headers: { range: "bytes=25-" },
    });
    assert.equal(blob.status, 206);
    assert.equal(blob.headers.get("content-range"), "bytes 25-29/30");
    assert.deepEqual(new Uint8Array(await blob.arrayBuffer()), data.slice(25));
  } finally {
    await reg.close();
  }
});
