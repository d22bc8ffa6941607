/**
 * writeLayer: round trips through our tar reader, digests against sha256sum, blobs accepted by
 * gzip -t / zstd -t / tar -tvf, media types, levels, determinism and failure clean-up.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { KanikoError } from "../../lib/errors.ts";
import {
  type Compression,
  decompress,
  DEFAULT_GZIP_LEVEL,
  DOCKER_LAYER_TAR,
  type LayerBlob,
  layerMediaType,
  writeLayer,
} from "../../lib/layer/mod.ts";
import { fixedChunks } from "../../lib/layer/write.ts";
import type { TarWriteEntry } from "../../lib/tar/mod.ts";
import { rejects } from "../_helpers.ts";
import { chunked, readAll, readEntries, run, tempDir } from "../tar/helpers.ts";

const enc = new TextEncoder();
const COMPRESSIONS: Compression[] = ["gzip", "zstd", "none"];

/** Compressible pseudo-random bytes (seeded xorshift over 16 letters, with runs). */
function pseudoRandom(size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = (i >> 10) % 4 === 0 ? 0x61 : 0x61 + ((x >>> 0) % 16);
  }
  return out;
}

const BIG = pseudoRandom(3 * 1024 * 1024 + 777);

/**
 * A layer's entries; `chunk` sets how the big body is cut into stream chunks (the blob must not
 * depend on it).
 */
function sampleEntries(chunk = 65536): TarWriteEntry[] {
  return [
    { header: { name: "etc/", type: "dir", mode: 0o755, mtime: 1_700_000_000_000_000_000n } },
    { header: { name: "etc/hostname", type: "file", mode: 0o644 }, body: enc.encode("box\n") },
    { header: { name: "etc/big.bin", type: "file", size: BIG.length }, body: chunked(BIG, chunk) },
    { header: { name: "etc/link", type: "symlink", linkname: "hostname" } },
    {
      header: { name: `deep/${"x".repeat(150)}/${"y".repeat(120)}`, type: "file" },
      body: enc.encode("z"),
    },
    {
      header: { name: "etc/.wh.gone", type: "file", uid: 1000, gid: 1000 },
      body: new Uint8Array(0),
    },
  ];
}

async function* asAsync<T>(items: T[]): AsyncGenerator<T> {
  for (const item of items) yield item;
}

async function sha256sum(path: string): Promise<string> {
  return `sha256:${(await run("sha256sum", [path])).stdout.split(" ")[0]}`;
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

async function blobStream(path: string): Promise<ReadableStream<Uint8Array>> {
  return (await Deno.open(path)).readable;
}

for (const compression of COMPRESSIONS) {
  Deno.test(`writeLayer ${compression}: round trip through our tar reader`, async () => {
    await using tmp = await tempDir();
    const blob = await writeLayer(asAsync(sampleEntries()), {
      dir: tmp.dir,
      compression,
      format: "oci",
    });
    const entries = await readEntries(decompress(await blobStream(blob.path)));
    assert.deepEqual(entries.map((e) => [e.header.name, e.header.type]), [
      ["etc/", "dir"],
      ["etc/hostname", "file"],
      ["etc/big.bin", "file"],
      ["etc/link", "symlink"],
      [`deep/${"x".repeat(150)}/${"y".repeat(120)}`, "file"],
      ["etc/.wh.gone", "file"],
    ]);
    assert.equal(new TextDecoder().decode(entries[1].body), "box\n");
    assert.deepEqual(entries[2].body, BIG);
    assert.equal(entries[3].header.linkname, "hostname");
    assert.equal(entries[0].header.mtime, 1_700_000_000_000_000_000n);
    assert.equal(entries[5].header.uid, 1000);
  });

  Deno.test(`writeLayer ${compression}: digests, size and path match the file on disk`, async () => {
    await using tmp = await tempDir();
    const blob = await writeLayer(sampleEntries(), { dir: tmp.dir, compression, format: "oci" });
    assert.equal(blob.path, join(tmp.dir, blob.digest.slice("sha256:".length)));
    assert.deepEqual(await listDir(tmp.dir), [blob.digest.slice(7)], "no temporary file left");
    assert.equal(blob.size, (await Deno.stat(blob.path)).size);
    assert.equal(blob.digest, await sha256sum(blob.path));
    assert.equal(blob.mediaType, layerMediaType("oci", compression));
    // The diff id is the sha256 of the tar the system tools decompress.
    const tar = join(tmp.dir, "plain.tar");
    if (compression === "none") await Deno.copyFile(blob.path, tar);
    else {
      const tool = compression === "gzip" ? "gzip" : "zstd";
      const out = await new Deno.Command(tool, { args: ["-dc", blob.path], stdout: "piped" })
        .output();
      assert.equal(out.code, 0);
      await Deno.writeFile(tar, out.stdout);
    }
    assert.equal(blob.diffId, await sha256sum(tar));
    if (compression === "none") assert.equal(blob.diffId, blob.digest);
  });

  Deno.test(`writeLayer ${compression}: system tools accept the blob`, async () => {
    await using tmp = await tempDir();
    const blob = await writeLayer(sampleEntries(), { dir: tmp.dir, compression, format: "oci" });
    if (compression !== "none") await run(compression, ["-t", blob.path]);
    if (compression === "zstd") {
      const info = (await run("zstd", ["-lv", blob.path])).stdout;
      assert.match(info, /Zstandard Frames: 1\n/);
      assert.match(info, /Check: XXH64/);
    }
    const listing = (await run("tar", ["-tvf", blob.path])).stdout.trim().split("\n");
    assert.equal(listing.length, 6);
    assert.match(listing[0], /^drwxr-xr-x 0\/0 +0 2023-11-1\d \d\d:\d\d etc\/$/);
    assert.match(listing[2], new RegExp(`^-rw-r--r-- 0/0 +${BIG.length} .* etc/big\\.bin$`));
    assert.match(listing[3], /^lrwxrwxrwx .* etc\/link -> hostname$/);
    assert.match(listing[4], /deep\/x{150}\/y{120}$/);
  });
}

Deno.test("writeLayer: deterministic bytes, whatever the body chunking and iterable kind", async () => {
  await using tmp = await tempDir();
  for (const compression of COMPRESSIONS) {
    const blobs: LayerBlob[] = [];
    for (const [i, chunk] of [65536, 1000, 5_000_000].entries()) {
      const dir = join(tmp.dir, `${compression}-${i}`);
      await Deno.mkdir(dir);
      const entries = sampleEntries(chunk);
      blobs.push(
        await writeLayer(i % 2 ? entries : asAsync(entries), { dir, compression, format: "oci" }),
      );
    }
    const bytes = await Promise.all(blobs.map((b) => Deno.readFile(b.path)));
    assert.deepEqual(bytes[1], bytes[0], `${compression}: same bytes`);
    assert.deepEqual(bytes[2], bytes[0], `${compression}: same bytes`);
    assert.equal(new Set(blobs.map((b) => `${b.digest} ${b.diffId} ${b.size}`)).size, 1);
    if (compression === "gzip") {
      // No name, mtime 0, XFL 4 ("fastest", level 1), OS 3 (Unix): nothing that varies.
      assert.deepEqual([...bytes[0].subarray(0, 10)], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 3]);
    }
  }
});

Deno.test("writeLayer: an empty layer is the two end blocks", async () => {
  await using tmp = await tempDir();
  const blob = await writeLayer([], { dir: tmp.dir, compression: "none", format: "docker" });
  assert.equal(blob.size, 1024);
  assert.equal(
    blob.diffId,
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef",
  );
  assert.equal(blob.mediaType, DOCKER_LAYER_TAR);
  const gz = await writeLayer([], { dir: tmp.dir, compression: "gzip", format: "docker" });
  assert.equal(gz.diffId, blob.diffId);
  assert.deepEqual(await readAll(decompress(await blobStream(gz.path))), new Uint8Array(1024));
});

Deno.test("layerMediaType: OCI and Docker types; Docker has no zstd", async () => {
  assert.equal(layerMediaType("oci", "gzip"), "application/vnd.oci.image.layer.v1.tar+gzip");
  assert.equal(layerMediaType("oci", "zstd"), "application/vnd.oci.image.layer.v1.tar+zstd");
  assert.equal(layerMediaType("oci", "none"), "application/vnd.oci.image.layer.v1.tar");
  assert.equal(
    layerMediaType("docker", "gzip"),
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
  );
  assert.equal(layerMediaType("docker", "none"), "application/vnd.docker.image.rootfs.diff.tar");
  assert.throws(() => layerMediaType("docker", "zstd"), (e) => {
    assert.ok(e instanceof KanikoError);
    assert.match(e.message, /zstd layers need OCI media types/);
    return true;
  });
  await using tmp = await tempDir();
  const err = await rejects(
    writeLayer(sampleEntries(), { dir: tmp.dir, compression: "zstd", format: "docker" }),
  );
  assert.match(err.message, /zstd layers need OCI media types/);
  assert.deepEqual(await listDir(tmp.dir), []);
});

Deno.test("writeLayer: levels are checked, and change the bytes", async () => {
  await using tmp = await tempDir();
  const opts = { dir: tmp.dir, format: "oci" } as const;
  for (
    const [compression, level] of [["gzip", 10], ["gzip", -1], ["zstd", 0], ["zstd", 23], [
      "gzip",
      1.5,
    ]] as const
  ) {
    const err = await rejects(writeLayer(sampleEntries(), { ...opts, compression, level }));
    assert.match(err.message, new RegExp(`invalid ${compression} compression level`));
  }
  const unknown = await rejects(
    writeLayer([], { ...opts, compression: "lz4" as Compression }),
  );
  assert.match(unknown.message, /unknown layer compression "lz4"/);
  const byDefault = await writeLayer(sampleEntries(), { ...opts, compression: "gzip" });
  const explicit = await writeLayer(sampleEntries(), {
    ...opts,
    compression: "gzip",
    level: DEFAULT_GZIP_LEVEL,
  });
  const best = await writeLayer(sampleEntries(), { ...opts, compression: "gzip", level: 9 });
  assert.equal(explicit.digest, byDefault.digest);
  assert.notEqual(best.digest, byDefault.digest);
  assert.equal(best.diffId, byDefault.diffId);
  assert.ok(best.size < byDefault.size);
  const z1 = await writeLayer(sampleEntries(), { ...opts, compression: "zstd", level: 1 });
  const z19 = await writeLayer(sampleEntries(), { ...opts, compression: "zstd", level: 19 });
  assert.notEqual(z1.digest, z19.digest);
  await run("zstd", ["-t", z19.path]);
  // A level given with no compression is ignored.
  const none = await writeLayer(sampleEntries(), { ...opts, compression: "none", level: 99 });
  assert.equal(none.digest, byDefault.diffId);
});

Deno.test("writeLayer: a failing entry removes the temporary file and stops reading", async () => {
  await using tmp = await tempDir();
  let pulled = 0;
  let cleanedUp = false;
  async function* failing(): AsyncGenerator<TarWriteEntry> {
    try {
      pulled++;
      yield { header: { name: "a", type: "file" }, body: BIG.subarray(0, 2_500_000) };
      pulled++;
      yield { header: { name: "b", type: "file", size: 10 }, body: enc.encode("short") };
      pulled++;
      yield { header: { name: "c", type: "file" }, body: enc.encode("never") };
    } finally {
      cleanedUp = true;
    }
  }
  for (const compression of COMPRESSIONS) {
    pulled = 0;
    cleanedUp = false;
    const err = await rejects(writeLayer(failing(), { dir: tmp.dir, compression, format: "oci" }));
    assert.match(err.message, /tar entry b: body is 5 bytes, header says 10/);
    assert.equal(pulled, 2);
    assert.ok(cleanedUp);
    assert.deepEqual(await listDir(tmp.dir), []);
  }
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      c.error(new Error("disk went away"));
    },
  });
  await assert.rejects(
    writeLayer([{ header: { name: "x", type: "file", size: 3 }, body }], {
      dir: tmp.dir,
      compression: "gzip",
      format: "oci",
    }),
    /disk went away/,
  );
  assert.deepEqual(await listDir(tmp.dir), []);
});

Deno.test("writeLayer: a missing directory is one clear error", async () => {
  await using tmp = await tempDir();
  const err = await rejects(
    writeLayer([], { dir: join(tmp.dir, "nope"), compression: "gzip", format: "oci" }),
  );
  assert.match(err.message, /cannot create a layer file in .*nope: /);
});

Deno.test("fixedChunks: exact sizes whatever the input cut, last one shorter", async () => {
  const data = pseudoRandom(10_000);
  const cutInto = async function* (cut: number) {
    for (let i = 0; i < data.length; i += cut) yield data.subarray(i, i + cut);
  };
  for (const reuse of [false, true]) {
    for (const cut of [1, 7, 100, 4096, 10_000]) {
      const sizes: number[] = [];
      const parts: Uint8Array<ArrayBuffer>[] = [];
      const buffers = new Set<ArrayBufferLike>();
      for await (const c of fixedChunks(cutInto(cut), 4096, reuse)) {
        sizes.push(c.length);
        parts.push(c.slice());
        buffers.add(c.buffer);
      }
      assert.deepEqual(sizes, [4096, 4096, 1808]);
      assert.deepEqual(new Uint8Array(await new Blob(parts).arrayBuffer()), data);
      assert.equal(buffers.size, reuse ? 1 : 3);
    }
  }
});
