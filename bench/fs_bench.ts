/**
 * lstat throughput: `lstatNs` (FFI, ns times) against `Deno.lstatSync` (ms times) and
 * `node:fs.lstatSync({bigint})` on 10,000 files (100 directories × 100 files, dentry cache warm).
 * Each iteration stats all 10,000 paths.
 *
 *   deno bench -A bench/fs_bench.ts
 * @module
 */
import { lstatSync } from "node:fs";
import { join } from "node:path";
import { lstatNs } from "../lib/fs/meta.ts";

const DIRS = 100;
const FILES = 100;

const root = Deno.makeTempDirSync({ prefix: "kaniko-fs-bench-" });
globalThis.addEventListener("unload", () => Deno.removeSync(root, { recursive: true }));
const paths: string[] = [];
for (let d = 0; d < DIRS; d++) {
  const dir = join(root, `dir-${d}`);
  Deno.mkdirSync(dir);
  for (let f = 0; f < FILES; f++) {
    const p = join(dir, `file-${f}.txt`);
    Deno.writeTextFileSync(p, "x");
    paths.push(p);
  }
}

let sink = 0n;

Deno.bench({
  name: "lstatNs (FFI, ns times) × 10k",
  group: "lstat",
  baseline: true,
  fn() {
    for (const p of paths) sink += lstatNs(p)!.mtimeNs;
  },
});

Deno.bench({
  name: "Deno.lstatSync (ms times) × 10k",
  group: "lstat",
  fn() {
    for (const p of paths) sink += BigInt(Deno.lstatSync(p).mtime!.getTime());
  },
});

Deno.bench({
  name: "node:fs lstatSync({ bigint: true }) × 10k",
  group: "lstat",
  fn() {
    for (const p of paths) sink += lstatSync(p, { bigint: true }).mtimeNs;
  },
});

Deno.bench({
  name: "lstatNs of absent paths × 10k",
  group: "absent",
  fn() {
    for (const p of paths) if (lstatNs(`${p}.missing`) !== undefined) sink++;
  },
});

Deno.bench({
  name: "Deno.lstatSync of absent paths (throws) × 10k",
  group: "absent",
  fn() {
    for (const p of paths) {
      try {
        Deno.lstatSync(`${p}.missing`);
        sink++;
      } catch {
        // absent
      }
    }
  },
});
