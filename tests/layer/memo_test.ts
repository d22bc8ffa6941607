/**
 * LayerMemo: the same layer content written by several builds is compressed once and shared;
 * other content, compression, level or media type gives another blob; the blob equals what
 * writeLayer writes.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { LayerMemo, writeLayer, type WriteLayerOptions } from "../../lib/layer/mod.ts";
import type { TarWriteEntry } from "../../lib/tar/mod.ts";
import { tempDir } from "../tar/helpers.ts";

const enc = new TextEncoder();

function entries(text: string): TarWriteEntry[] {
  return [
    { header: { name: "app/", type: "dir", mode: 0o755, mtime: 0n } },
    { header: { name: "app/f", type: "file", mode: 0o644, mtime: 0n }, body: enc.encode(text) },
  ];
}

Deno.test("LayerMemo: one blob per distinct content, the bytes writeLayer writes", async () => {
  await using tmp = await tempDir();
  const dirs = ["a", "b", "c", "ref"].map((d) => join(tmp.dir, d));
  for (const d of dirs) await Deno.mkdir(d);
  const gzip = (dir: string): WriteLayerOptions => ({ dir, compression: "gzip", format: "oci" });
  const memo = new LayerMemo();
  // Two platforms at once, then a third: one blob, in the directory of whichever got first.
  const [a, b] = await Promise.all([
    memo.write(entries("same"), gzip(dirs[0])),
    memo.write(entries("same"), gzip(dirs[1])),
  ]);
  const c = await memo.write(entries("same"), gzip(dirs[2]));
  assert.equal(a.path, b.path);
  assert.equal(c.path, a.path);
  assert.deepEqual(memo.stats, { written: 1, reused: 2 });
  const ref = await writeLayer(entries("same"), gzip(dirs[3]));
  assert.deepEqual({ ...a, path: "" }, { ...ref, path: "" });
  assert.deepEqual(await Deno.readFile(a.path), await Deno.readFile(ref.path));
  // Nothing else is left behind: no uncompressed tar, no second blob.
  assert.ok(
    a.path === join(dirs[0], a.digest.slice(7)) || a.path === join(dirs[1], a.digest.slice(7)),
  );
  for (const d of dirs.slice(0, 3)) {
    const names = [...Deno.readDirSync(d)].map((e) => e.name);
    assert.deepEqual(names, a.path.startsWith(d + "/") ? [a.digest.slice(7)] : [], d);
  }
  // Other content, level, compression or media type: another blob.
  const other = await memo.write(entries("other"), gzip(dirs[1]));
  const level9 = await memo.write(entries("same"), { ...gzip(dirs[1]), level: 9 });
  const zstd = await memo.write(entries("same"), { ...gzip(dirs[1]), compression: "zstd" });
  const docker = await memo.write(entries("same"), { ...gzip(dirs[1]), format: "docker" });
  const digests = new Set([a, other, level9, zstd, docker].map((x) => x.digest + x.mediaType));
  assert.equal(digests.size, 5);
  assert.deepEqual(memo.stats, { written: 5, reused: 2 });
});

Deno.test("LayerMemo: uncompressed layers; the same content twice in one directory", async () => {
  await using tmp = await tempDir();
  const memo = new LayerMemo();
  const none: WriteLayerOptions = { dir: tmp.dir, compression: "none", format: "oci" };
  const first = await memo.write(entries("x"), none);
  const second = await memo.write(entries("x"), none);
  assert.equal(second.path, first.path);
  assert.equal(first.digest, first.diffId);
  assert.ok(Deno.statSync(first.path).isFile, "the shared blob is still there");
});
