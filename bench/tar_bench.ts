/**
 * Tar writer and reader throughput on 10,000 entries (seeded, so every run sees the same input):
 *
 * - `header`: encoding typical headers alone — ustar blocks (`encodeUstar`), and whole header-only
 *   entries through `encodeEntry` (files with 40–120-byte names, directories, symlinks, a few
 *   long or non-ASCII names needing PAX, small uid/gid, whole-second mtimes and some with
 *   nanoseconds); then the same entries with nanosecond mtimes everywhere, as the snapshotter
 *   writes them by default (a PAX `mtime` record per entry).
 * - `write`: 10,000 small in-memory files (1–4 KiB bodies, plus directories) through
 *   `createTarStream`, read to the end, and through `encodeEntry` as `writeLayer` drives it.
 * - `read`: `readTar` over a 10,000-entry archive served in 64 KiB chunks, every body read.
 *
 *     deno bench -A bench/tar_bench.ts
 * @module
 */
import { encodeUstar } from "../lib/tar/header.ts";
import {
  createTarStream,
  encodeEntry,
  readTar,
  type TarHeader,
  type TarWriteEntry,
} from "../lib/tar/mod.ts";

const N = 10_000;
const enc = new TextEncoder();

/** mulberry32: a small seeded PRNG. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = ["usr", "lib", "share", "python3", "site-packages", "node_modules", "include", "doc"];

function pathOf(r: () => number, len: number, suffix = ""): string {
  let p = "";
  while (p.length < len) {
    p += (p ? "/" : "") + WORDS[Math.floor(r() * WORDS.length)] + "-" +
      Math.floor(r() * 1e6).toString(36);
  }
  return p.slice(0, len - suffix.length).replace(/\/+$/, "x") + suffix;
}

/** Typical layer headers: mostly files, some dirs and symlinks, a few PAX names. */
function headers(nsEverywhere: boolean): TarHeader[] {
  const r = rng(42);
  const out: TarHeader[] = [];
  for (let i = 0; i < N; i++) {
    const kind = r();
    const long = r() < 0.02;
    const name = long
      ? (r() < 0.5 ? pathOf(r, 300) : `${pathOf(r, 60)}/naïve-名前-${i}.txt`)
      : pathOf(r, 40 + Math.floor(r() * 81));
    const sec = 1_600_000_000n + BigInt(Math.floor(r() * 1e8));
    const mtime = sec * 1_000_000_000n +
      (nsEverywhere || r() < 0.3 ? BigInt(Math.floor(r() * 1e9)) : 0n);
    const uid = r() < 0.8 ? 0 : 1000 + Math.floor(r() * 100);
    const base = { uid, gid: uid, mtime, uname: "", gname: "" };
    if (kind < 0.75) {
      out.push({ ...base, name, type: "file", mode: r() < 0.9 ? 0o644 : 0o755 });
    } else if (kind < 0.9) {
      out.push({ ...base, name: `${name}/`, type: "dir", mode: 0o755 });
    } else {
      out.push({ ...base, name, type: "symlink", linkname: pathOf(r, 10 + Math.floor(r() * 60)) });
    }
  }
  return out;
}

const typical = headers(false);
const snapshotLike = headers(true);

/** 10,000 small files (1–4 KiB) and, every 20th entry, a directory. */
function smallFiles(): TarWriteEntry[] {
  const r = rng(7);
  const out: TarWriteEntry[] = [];
  for (let i = 0; i < N; i++) {
    const name = pathOf(r, 40 + Math.floor(r() * 81));
    const mtime = (1_700_000_000n + BigInt(i)) * 1_000_000_000n;
    if (i % 20 === 0) {
      out.push({ header: { name: `${name}/`, type: "dir", mtime } });
      continue;
    }
    const body = new Uint8Array(1024 + Math.floor(r() * 3073));
    for (let j = 0; j < body.length; j += 64) body[j] = (r() * 256) | 0;
    out.push({ header: { name, type: "file", mode: 0o644, mtime }, body });
  }
  return out;
}

const files = smallFiles();
const archive = new Uint8Array(await new Response(createTarStream(files)).arrayBuffer());
const ustarFields = typical.map((h) => ({
  typeflag: h.type === "dir" ? "5" : h.type === "symlink" ? "2" : "0",
  name: enc.encode(h.name.slice(0, 100)),
  linkname: h.linkname ? enc.encode(h.linkname) : undefined,
  mode: h.mode ?? 0o644,
  uid: h.uid ?? 0,
  gid: h.gid ?? 0,
  size: 0,
  mtime: (h.mtime ?? 0n) / 1_000_000_000n,
  uname: "",
  gname: "",
}));

let sink = 0;

async function drainEntries(list: TarHeader[]): Promise<void> {
  for (const h of list) for await (const c of encodeEntry(h)) sink += c.length;
}

Deno.bench({
  name: "encodeUstar × 10k (ustar blocks only)",
  group: "header",
  fn() {
    for (const f of ustarFields) sink += encodeUstar(f)[148];
  },
});

Deno.bench({
  name: "encodeEntry × 10k header-only, typical (≈30% ns mtimes, 2% PAX names)",
  group: "header",
  baseline: true,
  async fn() {
    await drainEntries(typical);
  },
});

Deno.bench({
  name: "encodeEntry × 10k header-only, ns mtimes everywhere (PAX per entry)",
  group: "header",
  async fn() {
    await drainEntries(snapshotLike);
  },
});

Deno.bench({
  name: "createTarStream 10k small files (1–4 KiB), read to the end",
  group: "write",
  baseline: true,
  async fn() {
    const reader = createTarStream(files).getReader();
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      sink += value.length;
    }
  },
});

Deno.bench({
  name: "encodeEntry 10k small files (as writeLayer drives it)",
  group: "write",
  async fn() {
    for (const { header, body } of files) {
      for await (const c of encodeEntry(header, body)) sink += c.length;
    }
  },
});

function serve(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream({
    pull(c) {
      if (off >= bytes.length) return c.close();
      c.enqueue(bytes.subarray(off, off + size));
      off += size;
    },
  });
}

Deno.bench({
  name: `readTar 10k entries (${(archive.length / 1e6).toFixed(1)} MB, 64 KiB chunks), bodies read`,
  group: "read",
  baseline: true,
  async fn() {
    for await (const e of readTar(serve(archive, 65536))) {
      const r = e.body.getReader();
      while (true) {
        const { done, value } = await r.read();
        if (done) break;
        sink += value.length;
      }
    }
  },
});

Deno.bench({
  name: "readTar 10k entries, bodies skipped",
  group: "read",
  async fn() {
    for await (const e of readTar(serve(archive, 65536))) sink += e.header.size;
  },
});

globalThis.addEventListener("unload", () => {
  if (sink < 0) console.log(sink);
});
