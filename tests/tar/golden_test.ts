/**
 * Byte-identity of the tar writer (and header decoder) with the implementation it replaced: a
 * copy of the old code (lib/tar at ae7e5f3, before the speed-up) lives at the bottom of this
 * file, and large seeded random corpora (boundary lengths and values, every type, PAX records,
 * base-256 numbers, bodies of every size and kind, invalid input) go through both. A fixed
 * corpus' archive is also pinned by its SHA-256, computed with the old code.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { KanikoError } from "../../lib/errors.ts";
import {
  BLOCK_SIZE,
  checksum,
  decodeHeader,
  encodeUstar,
  FIELD,
  isZeroBlock,
  maxOctal,
  padding,
  readNumber,
  readString,
  sealHeader,
  type TarEntryType,
  type TarHeader,
  type UstarFields,
  utf8,
  writeNumber,
  writeString,
} from "../../lib/tar/header.ts";
import { encodePaxRecords, formatPaxTime } from "../../lib/tar/pax.ts";
import { fitsString, paxRecordsFor } from "../../lib/tar/pax_fields.ts";
import { readTar } from "../../lib/tar/reader.ts";
import {
  createTarStream,
  encodeEntry,
  splitUstarName,
  type TarWriteEntry,
  TarWriter,
} from "../../lib/tar/writer.ts";

/** SHA-256 of `createTarStream(goldenCorpus())`, computed with the old writer. */
const GOLDEN_SHA256 = "c1dd84ece91713c78f4d7f8f48edebb086650978206d713c08576689cb983057";

// ------------------------------------------------------------------------------ corpus

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

type R = () => number;
const int = (r: R, n: number) => Math.floor(r() * n);
const pick = <T>(r: R, xs: readonly T[]): T => xs[int(r, xs.length)];
const NS = 1_000_000_000n;
const MAX_OCT11 = 8n ** 11n - 1n;

const ALPHA = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+@ ~=%";
const ODD = ["é", "名前", "😀", "\ud800", "\x01", "\x1f", "\x7f", "\t", "\n", "ü", "\u00a0", "\\"];
const LENGTHS = [1, 2, 31, 32, 50, 98, 99, 100, 101, 102, 154, 155, 156, 157, 200, 255, 256, 257];

function randString(r: R, len: number, odd: number): string {
  let s = "";
  while (s.length < len) s += r() < odd ? pick(r, ODD) : ALPHA[int(r, ALPHA.length)];
  return s;
}

function randPath(r: R): string {
  const target = r() < 0.6 ? Math.max(1, pick(r, LENGTHS) + int(r, 5) - 2) : 1 + int(r, 420);
  const odd = r() < 0.15 ? 0.05 : 0;
  let s = r() < 0.08 ? "/" : r() < 0.08 ? "./" : "";
  while (s.length < target) {
    const seg = 1 + int(r, r() < 0.2 ? 130 : 24);
    s += randString(r, Math.min(seg, target - s.length), odd);
    if (s.length < target) s += r() < 0.03 ? "//" : "/";
  }
  if (r() < 0.15) s += "/".repeat(1 + int(r, 3));
  return s;
}

/** Hand-picked names at the ustar prefix/name split boundaries. */
const BOUNDARY_NAMES = [
  "a",
  "/",
  "//",
  "a/",
  "x".repeat(100),
  "x".repeat(101),
  `${"x".repeat(99)}/`,
  `${"x".repeat(100)}/`,
  `${"p".repeat(155)}/${"n".repeat(100)}`,
  `${"p".repeat(155)}/${"n".repeat(99)}/`,
  `${"p".repeat(155)}/${"n".repeat(100)}/`,
  `${"p".repeat(156)}/${"n".repeat(99)}`,
  `${"p".repeat(154)}/${"n".repeat(101)}`,
  `/${"n".repeat(100)}`,
  `${"p".repeat(10)}/${"n".repeat(101)}`,
  `${"p".repeat(100)}/`,
  `${"p".repeat(100)}//`,
  `${"p".repeat(120)}/q/`,
  `${"p/".repeat(128)}`,
  `${"é".repeat(60)}/x`,
  "ascii-then-名前.txt",
  "a\x7fb",
  "\ud83d\ude00".repeat(60),
];

const IDS = [0, 1, 1000, 65534, 2097151, 2097152, 3000000, 2 ** 32, 2 ** 40 + 7, 2 ** 53 - 1];
const MODES = [0, 0o644, 0o755, 0o4755, 0o7777, 0o10644, 0o177777, 0o40755];
const DEVS = [0, 1, 8, 259, 2097151, 2097152, 2 ** 33];
const NAMES = [
  "",
  "root",
  "u".repeat(31),
  "u".repeat(32),
  "ünï",
  "a\nb",
  "with space",
  "y".repeat(99),
];
const TIMES = [
  0n,
  1n,
  -1n,
  NS,
  -NS,
  1700000000n * NS,
  1700000000_123456789n,
  -1_500000000n,
  MAX_OCT11 * NS,
  MAX_OCT11 * NS + 1n,
  (MAX_OCT11 + 1n) * NS,
  2n ** 80n,
  -(2n ** 80n),
  2n ** 100n,
];
const TYPES: TarEntryType[] = ["file", "file", "file", "dir", "symlink", "hardlink", "char"];
const MORE_TYPES: TarEntryType[] = ["block", "fifo"];
const POOL = (() => {
  const r = rng(99);
  return Uint8Array.from({ length: 140_000 }, () => int(r, 256));
})();
const BODY_SIZES = [0, 1, 100, 511, 512, 513, 1024, 4096, 65535, 65536, 65537, 70000];

function randTime(r: R): bigint {
  const x = r();
  if (x < 0.3) return pick(r, TIMES);
  const sec = BigInt(int(r, 2 ** 31)) - (r() < 0.1 ? 2n ** 31n : 0n);
  return sec * NS + (r() < 0.5 ? BigInt(int(r, 1e9)) : 0n);
}

/** A body: bytes, or a stream made fresh on each call. */
type Body = Uint8Array | (() => ReadableStream<Uint8Array>);

interface Case {
  header: TarHeader;
  body?: Body;
}

function streamOf(bytes: Uint8Array, chunk: number): () => ReadableStream<Uint8Array> {
  return () => {
    let off = 0;
    return new ReadableStream({
      pull(c) {
        if (off >= bytes.length) return c.close();
        c.enqueue(bytes.slice(off, off + chunk));
        off += chunk;
      },
    });
  };
}

/** One random entry; `bad` makes some of them invalid on purpose. */
function randCase(r: R, bad: boolean): Case {
  const type = r() < 0.9 ? pick(r, TYPES) : pick(r, MORE_TYPES);
  const h: TarHeader = { name: r() < 0.05 ? pick(r, BOUNDARY_NAMES) : randPath(r), type };
  if (type === "symlink" || type === "hardlink" || r() < 0.03) h.linkname = randPath(r);
  if (r() < 0.7) h.mode = r() < 0.5 ? pick(r, MODES) : int(r, 0o200000);
  const id = () => (r() < 0.8 ? int(r, 2000) : pick(r, IDS));
  if (r() < 0.7) h.uid = id();
  if (r() < 0.7) h.gid = id();
  if (r() < 0.5) h.uname = r() < 0.5 ? pick(r, NAMES) : randString(r, int(r, 40), 0.05);
  if (r() < 0.5) h.gname = r() < 0.5 ? pick(r, NAMES) : randString(r, int(r, 40), 0.05);
  if (r() < 0.9) h.mtime = randTime(r);
  if (r() < 0.05) h.atime = randTime(r);
  if (r() < 0.05) h.ctime = randTime(r);
  if (type === "char" || type === "block" || r() < 0.02) {
    h.devmajor = r() < 0.7 ? int(r, 300) : pick(r, DEVS);
    h.devminor = r() < 0.7 ? int(r, 300) : pick(r, DEVS);
  }
  if (r() < 0.05) {
    h.xattrs = {};
    for (let i = int(r, 4); i >= 0; i--) {
      const name = r() < 0.7
        ? pick(r, ["user.bin", "security.capability", "user.名前", "trusted.x"])
        : `user.${randString(r, 1 + int(r, 120), 0.05).replace(/[=\n]/g, "_")}`;
      const off = int(r, POOL.length - 400);
      h.xattrs[name] = POOL.subarray(off, off + int(r, 300));
    }
  }
  if (r() < 0.03) {
    h.pax = {};
    for (let i = int(r, 3); i >= 0; i--) {
      const key = pick(r, ["KANIKO.test", "comment", "LIBARCHIVE.creationtime", "x.é"]);
      const off = int(r, POOL.length - 200);
      h.pax[key] = POOL.subarray(off, off + int(r, 150));
    }
  }
  let body: Body | undefined;
  if (type === "file") {
    const x = r();
    const size = r() < 0.15 ? pick(r, BODY_SIZES) : int(r, 3000);
    const off = int(r, POOL.length - size);
    const bytes = POOL.subarray(off, off + size);
    if (x < 0.45) body = bytes;
    else if (x < 0.55) {
      body = bytes;
      h.size = size;
    } else if (x < 0.65) {
      body = streamOf(bytes, 1 + int(r, 2000));
      h.size = size;
    } else if (x < 0.7) {
      h.size = pick(r, [1, 511, 512, 8 * 2 ** 30 + 1, 2 ** 33 - 1, 2 ** 33, 2 ** 50]);
    }
  }
  if (bad) corrupt(r, h, (b) => (body = b));
  return body === undefined ? { header: h } : { header: h, body };
}

/** Makes one field of `h` invalid (or out of range). */
function corrupt(r: R, h: TarHeader, setBody: (b: Body) => void): void {
  const k = int(r, 13);
  const any = h as unknown as Record<string, unknown>;
  if (k === 0) h.name = "";
  else if (k === 1) h.name += "\0x";
  else if (k === 2) {
    h.type = "symlink";
    delete h.linkname;
  } else if (k === 3) {
    any[pick(r, ["uid", "gid", "devmajor", "devminor"])] = pick(r, [-1, 1.5, NaN]);
  } else if (k === 4) any.mtime = 5;
  else if (k === 5) h.xattrs = { "a=b": POOL.subarray(0, 3) };
  else if (k === 6) h.xattrs = { "": POOL.subarray(0, 3) };
  else if (k === 7) h.pax = { "a\nb": POOL.subarray(0, 3) };
  else if (k === 8) h.pax = { "k=v": POOL.subarray(0, 3) };
  else if (k === 9) {
    h.type = "file";
    h.size = 10;
    setBody(POOL.subarray(0, 9));
  } else if (k === 10) {
    h.type = "dir";
    setBody(POOL.subarray(0, 3));
  } else if (k === 11) h.size = pick(r, [-1, 1.5, 2 ** 53]);
  else h.mtime = pick(r, [2n ** 126n, -(2n ** 126n)]);
}

function bodyOf(c: Case): Uint8Array | ReadableStream<Uint8Array> | undefined {
  return typeof c.body === "function" ? c.body() : c.body;
}

async function collect(
  gen: AsyncIterable<Uint8Array>,
): Promise<{ bytes?: Uint8Array; error?: string }> {
  const chunks: Uint8Array[] = [];
  try {
    for await (const c of gen) chunks.push(c);
  } catch (e) {
    return { error: `${(e as Error).constructor.name}: ${(e as Error).message}` };
  }
  return { bytes: concat(chunks) };
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

function firstDiff(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

function assertSameBytes(got: Uint8Array, want: Uint8Array, what: string): void {
  const at = firstDiff(got, want);
  if (at >= 0) {
    assert.fail(`${what}: differs at byte ${at} (lengths ${got.length} / ${want.length})`);
  }
}

function show(h: TarHeader): string {
  return JSON.stringify(h, (_, v) => typeof v === "bigint" ? `${v}n` : v).slice(0, 600);
}

/** The corpus behind {@link GOLDEN_SHA256}: valid entries only. */
function goldenCorpus(): Case[] {
  const r = rng(20240601);
  const out: Case[] = [];
  for (let i = 0; i < 4000; i++) {
    const c = randCase(r, false);
    // A size with no body makes an archive that cannot be read back; keep the stream readable.
    if (c.header.type === "file" && c.header.size !== undefined && c.body === undefined) continue;
    out.push(c);
  }
  return out;
}

function entriesOf(cases: Case[]): TarWriteEntry[] {
  return cases.map((c) => ({ header: c.header, body: bodyOf(c) }));
}

// ------------------------------------------------------------------------------ tests

Deno.test("encodeEntry: byte-identical to the old writer on 30,000 random entries", async () => {
  const r = rng(1);
  let errors = 0;
  for (let i = 0; i < 30_000; i++) {
    const c = randCase(r, r() < 0.04);
    const want = await collect(oldEncodeEntry(c.header, bodyOf(c)));
    const got = await collect(encodeEntry(c.header, bodyOf(c)));
    if (want.error !== undefined || got.error !== undefined) {
      errors++;
      assert.equal(got.error, want.error, `entry ${i}: ${show(c.header)}`);
      continue;
    }
    assertSameBytes(got.bytes!, want.bytes!, `entry ${i}: ${show(c.header)}`);
  }
  assert.ok(errors > 500, `only ${errors} invalid entries exercised`);
});

Deno.test("encodeEntry: chunks are never reused or changed after they are handed out", async () => {
  const r = rng(2);
  const cases = Array.from({ length: 3000 }, () => randCase(r, false));
  const chunks: Uint8Array[] = [];
  const copies: Uint8Array[] = [];
  for (const c of cases) {
    for await (const chunk of encodeEntry(c.header, bodyOf(c))) {
      chunks.push(chunk);
      copies.push(chunk.slice());
    }
  }
  const want: Uint8Array[] = [];
  for (const c of cases) {
    for await (const chunk of oldEncodeEntry(c.header, bodyOf(c))) want.push(chunk);
  }
  assertSameBytes(concat(chunks), concat(want), "archive");
  chunks.forEach((c, i) => assertSameBytes(c, copies[i], `chunk ${i}`));
});

Deno.test("createTarStream: a fixed corpus hashes to the pinned SHA-256", async () => {
  const cases = goldenCorpus();
  const chunks: Uint8Array[] = [];
  for await (const c of createTarStream(entriesOf(cases))) chunks.push(c);
  const hash = createHash("sha256");
  for (const c of chunks) hash.update(c);
  const want: Uint8Array[] = [];
  for (const c of cases) {
    for await (const chunk of oldEncodeEntry(c.header, bodyOf(c))) want.push(chunk);
  }
  want.push(new Uint8Array(1024));
  assertSameBytes(concat(chunks), concat(want), "archive");
  assert.equal(hash.digest("hex"), GOLDEN_SHA256);
});

Deno.test("createTarStream: async entries and stream bodies give the old bytes", async () => {
  const r = rng(3);
  const cases = Array.from({ length: 2000 }, () => randCase(r, false));
  async function* entries(): AsyncGenerator<TarWriteEntry> {
    for (const c of cases) {
      await null;
      yield { header: c.header, body: bodyOf(c) };
    }
  }
  const got = new Uint8Array(await new Response(createTarStream(entries())).arrayBuffer());
  const want: Uint8Array[] = [];
  for (const c of cases) {
    for await (const chunk of oldEncodeEntry(c.header, bodyOf(c))) want.push(chunk);
  }
  want.push(new Uint8Array(1024));
  assertSameBytes(got, concat(want), "archive");
});

Deno.test("createTarStream: an invalid entry ends the stream after the same bytes", async () => {
  const r = rng(9);
  let failed = 0;
  for (let round = 0; round < 300; round++) {
    const n = 1 + int(r, 40);
    const bad = int(r, n + 5); // sometimes none
    const cases = Array.from({ length: n }, (_, i) => randCase(r, i === bad));
    const asArray = r() < 0.7;
    const got = await drain(createTarStream(asArray ? entriesOf(cases) : lazily(cases)));
    const want = await drain(oldCreateTarStream(entriesOf(cases)));
    assert.equal(got.error, want.error, `round ${round}`);
    if (want.error) failed++;
    assertSameBytes(got.bytes, want.bytes, `round ${round}`);
  }
  assert.ok(failed > 100, `only ${failed} archives failed`);
});

Deno.test("TarWriter: byte-identical to the old writer", async () => {
  const r = rng(10);
  const cases = Array.from({ length: 3000 }, () => randCase(r, false));
  const chunks: Uint8Array[] = [];
  const w = new TarWriter(new WritableStream({ write: (c) => void chunks.push(c) }));
  for (const c of cases) await w.add(c.header, bodyOf(c));
  await w.close();
  const want = await drain(oldCreateTarStream(entriesOf(cases)));
  assertSameBytes(concat(chunks), want.bytes, "archive");
});

async function* lazily(cases: Case[]): AsyncGenerator<TarWriteEntry> {
  for (const c of cases) yield { header: c.header, body: bodyOf(c) };
}

/** Every chunk of a stream until its end or its error. */
async function drain(
  stream: ReadableStream<Uint8Array>,
): Promise<{ bytes: Uint8Array; error?: string }> {
  const chunks: Uint8Array[] = [];
  const reader = stream.getReader();
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
    }
  } catch (e) {
    return {
      bytes: concat(chunks),
      error: `${(e as Error).constructor.name}: ${(e as Error).message}`,
    };
  }
  return { bytes: concat(chunks) };
}

Deno.test("header primitives: writeNumber, maxOctal, padding match the old code", () => {
  const r = rng(4);
  const fields = [
    FIELD.mode,
    FIELD.uid,
    FIELD.gid,
    FIELD.size,
    FIELD.mtime,
    FIELD.chksum,
    FIELD.devmajor,
    FIELD.devminor,
    [500, 1] as const,
    [490, 3] as const,
  ];
  for (let len = 1; len <= 16; len++) assert.equal(maxOctal(len), oldMaxOctal(len));
  const values: Array<number | bigint> = [0, 1, 7, 8, 0.5, -0, NaN, Infinity, -1, -1n, 2 ** 53];
  for (let e = 0; e <= 36; e++) {
    const p = 8n ** BigInt(e);
    values.push(p, p - 1n, p + 1n, -p, Number(p), Number(p) - 1, -Number(p));
  }
  for (let i = 0; i < 20_000; i++) {
    const bits = int(r, 100);
    let v = BigInt(Math.floor(r() * 2 ** 30)) << BigInt(Math.max(0, bits - 30));
    if (r() < 0.2) v = -v;
    values.push(
      r() < 0.5 && v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -(2n ** 53n) ? Number(v) : v,
    );
  }
  for (const field of fields) {
    for (const v of values) {
      const a = POOL.slice(0, BLOCK_SIZE);
      const b = POOL.slice(0, BLOCK_SIZE);
      const errA = attempt(() => writeNumber(a, field, v));
      const errB = attempt(() => oldWriteNumber(b, field, v));
      assert.equal(errA, errB, `${field} ${v}`);
      assertSameBytes(a, b, `writeNumber(${field}, ${v})`);
    }
  }
  for (const v of values) {
    assert.equal(attempt(() => padding(v)), attempt(() => oldPadding(v)), `padding ${v}`);
  }
});

Deno.test("header primitives: checksum, sealHeader, writeString, fitsString match", () => {
  const r = rng(5);
  for (let i = 0; i < 5000; i++) {
    const block = new Uint8Array(BLOCK_SIZE);
    const density = r();
    for (let j = 0; j < BLOCK_SIZE; j++) if (r() < density) block[j] = int(r, 256);
    assert.deepEqual(checksum(block), oldChecksum(block));
    assertSameBytes(sealHeader(block.slice()), oldSealHeader(block.slice()), "sealHeader");
    const s = randString(r, int(r, 120), 0.1);
    const field = pick(r, [FIELD.name, FIELD.uname, FIELD.prefix, FIELD.linkname]);
    const a = block.slice();
    const b = block.slice();
    const value = r() < 0.5 ? s : utf8(s);
    assert.equal(writeString(a, field, value), oldWriteString(b, field, value));
    assertSameBytes(a, b, "writeString");
    const len = int(r, 120);
    assert.equal(fitsString(s, len), oldFitsString(s, len), JSON.stringify([s, len]));
  }
  assert.equal(fitsString(undefined, 0), true);
});

Deno.test("encodeUstar: byte-identical on random fields, base-256 and errors included", () => {
  const r = rng(6);
  const num = () =>
    r() < 0.6 ? int(r, 5000) : r() < 0.5 ? pick(r, IDS) : pick(r, [-1, 2 ** 53, 8 ** 11, 1.5]);
  for (let i = 0; i < 20_000; i++) {
    const bytes = (n: number) => POOL.subarray(i % 1000, (i % 1000) + n);
    const f: UstarFields = {
      typeflag: String.fromCharCode(int(r, 128)),
      name: r() < 0.8 ? utf8(randPath(r)) : bytes(int(r, 200)),
      mode: r() < 0.5 ? pick(r, MODES) : int(r, 2 ** 31),
      uid: num(),
      gid: num(),
      size: num(),
      mtime: r() < 0.2 ? pick(r, TIMES) : randTime(r) / NS,
    };
    if (r() < 0.5) f.prefix = r() < 0.5 ? utf8(randPath(r)) : bytes(int(r, 200));
    if (r() < 0.5) f.linkname = r() < 0.5 ? utf8(randPath(r)) : bytes(int(r, 200));
    if (r() < 0.5) f.uname = pick(r, NAMES);
    if (r() < 0.5) f.gname = randString(r, int(r, 40), 0.1);
    if (r() < 0.3) f.devmajor = r() < 0.5 ? pick(r, DEVS) : num();
    if (r() < 0.3) f.devminor = r() < 0.5 ? pick(r, DEVS) : num();
    let want: Uint8Array | string;
    let got: Uint8Array | string;
    try {
      want = oldEncodeUstar(f);
    } catch (e) {
      want = String(e);
    }
    try {
      got = encodeUstar(f);
    } catch (e) {
      got = String(e);
    }
    if (typeof want === "string" || typeof got === "string") assert.equal(got, want);
    else assertSameBytes(got, want, `encodeUstar ${i}`);
  }
});

Deno.test("PAX helpers: paxRecordsFor, encodePaxRecords, formatPaxTime, splitUstarName", () => {
  const r = rng(7);
  for (let i = 0; i < 20_000; i++) {
    const { header } = randCase(r, false);
    const size = header.size ?? 0;
    const fit = { name: r() < 0.5, linkname: r() < 0.5 };
    const want = oldPaxRecordsFor({ ...header, size }, fit);
    const got = paxRecordsFor({ ...header, size }, fit);
    assert.deepEqual(got, want);
    assertSameBytes(encodePaxRecords(got), oldEncodePaxRecords(want), "encodePaxRecords");
    const t = randTime(r);
    assert.equal(formatPaxTime(t), oldFormatPaxTime(t));
    const name = header.name;
    assert.deepEqual(splitUstarName(name), oldSplitUstarName(name), name);
  }
  for (const name of BOUNDARY_NAMES) {
    assert.deepEqual(splitUstarName(name), oldSplitUstarName(name), name);
  }
  for (const key of ["", "a=b", "a\nb", "a\0b", "é"]) {
    assert.equal(
      attempt(() => encodePaxRecords([[key, "v"]])),
      attempt(() => oldEncodePaxRecords([[key, "v"]])),
    );
  }
});

Deno.test("decodeHeader: same fields and errors as the old decoder on mutated headers", async () => {
  const r = rng(8);
  const blocks: Uint8Array[] = [];
  for (let i = 0; i < 3000; i++) {
    const c = randCase(r, false);
    if (typeof c.body === "function") continue;
    const { bytes } = await collect(oldEncodeEntry(c.header, c.body));
    if (bytes) blocks.push(bytes.subarray(0, BLOCK_SIZE));
  }
  const spaces = new TextEncoder().encode("  0755 \0 12\0\0  ");
  for (let i = 0; i < 40_000; i++) {
    const block = pick(r, blocks).slice();
    const edits = int(r, 4);
    for (let j = 0; j < edits; j++) {
      const at = int(r, BLOCK_SIZE);
      const x = r();
      if (x < 0.4) block[at] = int(r, 256);
      else if (x < 0.6) block[at] = pick(r, [0, 0x20, 0x30, 0x37, 0x38, 0x80, 0xff]);
      else if (x < 0.8) block.set(spaces.subarray(0, int(r, 16)), Math.min(at, 496));
      else block.set(pick(r, MAGICS), 257);
    }
    if (r() < 0.7) oldSealHeader(block);
    if (r() < 0.05) block.fill(0);
    let want: unknown;
    let got: unknown;
    try {
      want = oldDecodeHeader(block, "t at byte 0");
    } catch (e) {
      want = `${(e as Error).name}: ${(e as Error).message}`;
    }
    try {
      got = decodeHeader(block, "t at byte 0");
    } catch (e) {
      got = `${(e as Error).name}: ${(e as Error).message}`;
    }
    assert.deepEqual(got, want);
    assert.equal(isZeroBlock(block), oldIsZeroBlock(block));
    for (const field of [FIELD.mode, FIELD.uid, FIELD.size, FIELD.mtime, FIELD.chksum]) {
      assert.equal(
        attempt(() => readNumber(block, field)),
        attempt(() => oldReadNumber(block, field)),
      );
    }
    assert.equal(readString(block, FIELD.uname), oldReadString(block, FIELD.uname));
  }
});

Deno.test("readTar: the writer's corpus reads back the same in any chunking", async () => {
  const r = rng(11);
  const cases = Array.from({ length: 600 }, () => randCase(r, false))
    .filter((c) => !(c.header.type === "file" && c.header.size !== undefined && !c.body));
  const archive = new Uint8Array(
    await new Response(createTarStream(entriesOf(cases))).arrayBuffer(),
  );
  let first: unknown[] | undefined;
  for (const chunk of [1, 100, 511, 512, 4096, 65536, 0]) {
    const rr = rng(chunk);
    let off = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        if (off >= archive.length) return c.close();
        const n = chunk || 1 + int(rr, 5000);
        c.enqueue(archive.slice(off, off + n));
        off += n;
      },
    });
    const got: unknown[] = [];
    let i = 0;
    for await (const e of readTar(stream)) {
      const c = cases[i++];
      const body = new Uint8Array(await new Response(e.body).arrayBuffer());
      const want = typeof c.body === "function" ? await new Response(c.body()).bytes() : c.body;
      assertSameBytes(body, want ?? new Uint8Array(0), `entry ${i - 1} body`);
      assert.equal(e.header.type, c.header.type);
      if (c.header.name.isWellFormed()) assert.equal(e.header.name, c.header.name);
      got.push(e.header);
    }
    assert.equal(i, cases.length);
    if (first) assert.deepEqual(got, first, `chunks of ${chunk}`);
    first = got;
  }
});

Deno.test("readTar: a truncated extension header is reported before a malformed record", async () => {
  const records = new TextEncoder().encode("99 path=x\n"); // its length is wrong
  const pax = oldEncodeUstar({
    typeflag: "x",
    name: utf8("PaxHeaders.0/x"),
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: records.length,
    mtime: 0n,
  });
  const whole = concat([pax, records, new Uint8Array(padding(records.length))]);
  const read = async (bytes: Uint8Array) => {
    for await (const _ of readTar(ReadableStream.from([bytes]), { name: "t.tar" })) {
      // nothing
    }
  };
  await assert.rejects(read(whole), /t\.tar: extension header at byte 0: malformed PAX/);
  await assert.rejects(
    read(whole.subarray(0, BLOCK_SIZE + records.length + 3)),
    /t\.tar: extension header at byte 0: archive truncated at byte 525/,
  );
});

const MAGICS = [
  "ustar\x0000",
  "ustar  \x00",
  "ustar\x00xx",
  "ustar\x00\xff\xfe",
  "\0\0\0\0\0\0\0\0",
  "ustar\x20\x20\x20",
  "ustar \x20\x00",
  "ustar\x01\x00\x00",
  "\xef\xbb\xbfustar",
  "\xef\xbb\xbfustar\x00",
  "USTAR\x0000",
].map((s) => Uint8Array.from(s, (c) => c.charCodeAt(0)));

function attempt(f: () => unknown): string {
  try {
    const v = f();
    return `ok ${typeof v === "bigint" ? `${v}n` : JSON.stringify(v)}`;
  } catch (e) {
    return `${(e as Error).constructor.name}: ${(e as Error).message}`;
  }
}

// ------------------------------------------------------------------------------ the old code
// lib/tar/{header,pax,pax_fields,writer}.ts as of ae7e5f3, verbatim but for names and imports.

const oldEncoder = new TextEncoder();
const oldDecoder = new TextDecoder();
const OLD_TYPEFLAG: Record<TarEntryType, string> = {
  file: "0",
  hardlink: "1",
  symlink: "2",
  char: "3",
  block: "4",
  dir: "5",
  fifo: "6",
};

function oldUtf8(s: string): Uint8Array {
  return oldEncoder.encode(s);
}

function oldMaxOctal(len: number): bigint {
  return 8n ** BigInt(len - 1) - 1n;
}

function oldWriteNumber(
  block: Uint8Array,
  field: readonly [number, number],
  value: number | bigint,
): void {
  const [off, len] = field;
  const v = BigInt(value);
  if (v >= 0n && v <= oldMaxOctal(len)) {
    const digits = v.toString(8).padStart(len - 1, "0");
    block.set(oldUtf8(digits), off);
    block[off + len - 1] = 0;
    return;
  }
  let rest = v;
  for (let i = len - 1; i >= 1; i--) {
    block[off + i] = Number(BigInt.asUintN(8, rest));
    rest >>= 8n;
  }
  if (rest !== 0n && rest !== -1n) throw new RangeError(`${value} does not fit a tar field`);
  block[off] = v < 0n ? 0xff : 0x80;
}

function oldReadNumber(block: Uint8Array, field: readonly [number, number]): bigint {
  const [off, len] = field;
  const first = block[off];
  if (first & 0x80) {
    let v = BigInt(first & 0x7f);
    if (first === 0xff) v = -1n;
    for (let i = 1; i < len; i++) v = (v << 8n) | BigInt(block[off + i]);
    return v;
  }
  let i = off;
  const end = off + len;
  while (i < end && (block[i] === 0x20 || block[i] === 0)) i++;
  let v = 0;
  for (; i < end; i++) {
    const c = block[i];
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) throw new RangeError(`invalid octal digit in tar field at ${off}`);
    v = v * 8 + (c - 0x30);
  }
  return BigInt(v);
}

function oldWriteString(
  block: Uint8Array,
  field: readonly [number, number],
  value: string | Uint8Array,
): boolean {
  const [off, len] = field;
  const bytes = typeof value === "string" ? oldUtf8(value) : value;
  block.set(bytes.subarray(0, len), off);
  return bytes.length <= len;
}

function oldReadBytes(block: Uint8Array, field: readonly [number, number]): Uint8Array {
  const [off, len] = field;
  let end = off;
  while (end < off + len && block[end] !== 0) end++;
  return block.subarray(off, end);
}

function oldReadString(block: Uint8Array, field: readonly [number, number]): string {
  return oldDecoder.decode(oldReadBytes(block, field));
}

function oldChecksum(block: Uint8Array): { unsigned: number; signed: number } {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK_SIZE; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i];
    unsigned += b;
    signed += b >= 0x80 ? b - 256 : b;
  }
  return { unsigned, signed };
}

function oldSealHeader(block: Uint8Array): Uint8Array {
  const sum = oldChecksum(block).unsigned;
  block.set(oldUtf8(sum.toString(8).padStart(6, "0")), 148);
  block[154] = 0;
  block[155] = 0x20;
  return block;
}

function oldIsZeroBlock(block: Uint8Array): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

function oldDecodeHeader(block: Uint8Array, where: string) {
  const stored = block.subarray(148, 156);
  let want: bigint;
  try {
    want = oldReadNumber(block, FIELD.chksum);
  } catch {
    want = -1n;
  }
  const sum = oldChecksum(block);
  if (want !== BigInt(sum.unsigned) && want !== BigInt(sum.signed)) {
    const text = oldDecoder.decode(stored).replace(/[^ -~]/g, "?");
    throw new KanikoError(
      `${where}: corrupt tar header (checksum "${text}" does not match ${sum.unsigned})`,
      { hint: "the archive is damaged or not a tar file" },
    );
  }
  try {
    return oldDecodeFields(block);
  } catch (e) {
    throw new KanikoError(`${where}: corrupt tar header (${(e as Error).message})`, {
      hint: "the archive is damaged or not a tar file",
    });
  }
}

function oldDecodeFields(block: Uint8Array) {
  const magic = oldDecoder.decode(block.subarray(257, 265));
  const format = magic === "ustar\x0000" || magic.startsWith("ustar\x00")
    ? "ustar"
    : magic === "ustar  \x00"
    ? "gnu"
    : "v7";
  let name = oldReadBytes(block, FIELD.name);
  if (format === "ustar") {
    const prefix = oldReadBytes(block, FIELD.prefix);
    if (prefix.length > 0) {
      const joined = new Uint8Array(prefix.length + 1 + name.length);
      joined.set(prefix);
      joined[prefix.length] = 0x2f;
      joined.set(name, prefix.length + 1);
      name = joined;
    }
  }
  const flag = block[156];
  const hasDev = format !== "v7";
  return {
    typeflag: flag === 0 ? "\0" : String.fromCharCode(flag),
    name,
    linkname: oldReadBytes(block, FIELD.linkname),
    mode: Number(oldReadNumber(block, FIELD.mode) & 0o7777n),
    uid: oldReadNumber(block, FIELD.uid),
    gid: oldReadNumber(block, FIELD.gid),
    size: oldReadNumber(block, FIELD.size),
    mtime: oldReadNumber(block, FIELD.mtime),
    uname: format === "v7" ? "" : oldReadString(block, FIELD.uname),
    gname: format === "v7" ? "" : oldReadString(block, FIELD.gname),
    devmajor: hasDev ? Number(oldReadNumber(block, FIELD.devmajor)) : 0,
    devminor: hasDev ? Number(oldReadNumber(block, FIELD.devminor)) : 0,
    format,
  };
}

function oldEncodeUstar(f: UstarFields): Uint8Array {
  const block = new Uint8Array(BLOCK_SIZE);
  oldWriteString(block, FIELD.name, f.name);
  oldWriteNumber(block, FIELD.mode, f.mode & 0o7777);
  oldWriteNumber(block, FIELD.uid, f.uid);
  oldWriteNumber(block, FIELD.gid, f.gid);
  oldWriteNumber(block, FIELD.size, f.size);
  oldWriteNumber(block, FIELD.mtime, f.mtime);
  block[156] = f.typeflag.charCodeAt(0);
  if (f.linkname) oldWriteString(block, FIELD.linkname, f.linkname);
  block.set(oldUtf8("ustar\x0000"), 257);
  oldWriteString(block, FIELD.uname, f.uname ?? "");
  oldWriteString(block, FIELD.gname, f.gname ?? "");
  oldWriteNumber(block, FIELD.devmajor, f.devmajor ?? 0);
  oldWriteNumber(block, FIELD.devminor, f.devminor ?? 0);
  if (f.prefix) oldWriteString(block, FIELD.prefix, f.prefix);
  return oldSealHeader(block);
}

function oldPadding(size: number | bigint): number {
  const rem = Number(BigInt(size) % BigInt(BLOCK_SIZE));
  return rem === 0 ? 0 : BLOCK_SIZE - rem;
}

function oldEncodePaxRecords(records: Iterable<[string, Uint8Array | string]>): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (const [key, value] of records) {
    if (!key || key.includes("=") || /[\n\0]/.test(key)) {
      throw new KanikoError(`invalid PAX record key "${key}"`);
    }
    const k = oldUtf8(key);
    const v = typeof value === "string" ? oldUtf8(value) : value;
    const base = k.length + v.length + 3;
    const digits = String(base).length;
    let len = base + digits;
    if (String(len).length !== digits) len = base + String(len).length;
    const record = new Uint8Array(len);
    const head = oldUtf8(`${len} `);
    record.set(head);
    record.set(k, head.length);
    record[head.length + k.length] = 0x3d;
    record.set(v, head.length + k.length + 1);
    record[len - 1] = 0x0a;
    parts.push(record);
    total += len;
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

function oldFormatPaxTime(ns: bigint): string {
  const neg = ns < 0n;
  const abs = neg ? -ns : ns;
  const sec = abs / NS;
  const frac = (abs % NS).toString().padStart(9, "0").replace(/0+$/, "");
  return `${neg ? "-" : ""}${sec}${frac ? `.${frac}` : ""}`;
}

function oldFitsString(s: string | undefined, len: number): boolean {
  return s === undefined || (s.length <= len && /^[\x20-\x7e]*$/.test(s));
}

function oldPaxRecordsFor(
  h: TarHeader,
  ustar: { name: boolean; linkname: boolean },
): Array<[string, Uint8Array]> {
  const out: Array<[string, Uint8Array]> = [];
  const add = (k: string, v: string | Uint8Array) =>
    out.push([k, typeof v === "string" ? oldUtf8(v) : v]);
  if (!ustar.name) add("path", h.name);
  if (!ustar.linkname) add("linkpath", h.linkname ?? "");
  if (BigInt(h.size ?? 0) > oldMaxOctal(FIELD.size[1])) add("size", String(h.size));
  if (BigInt(h.uid ?? 0) > oldMaxOctal(FIELD.uid[1])) add("uid", String(h.uid));
  if (BigInt(h.gid ?? 0) > oldMaxOctal(FIELD.gid[1])) add("gid", String(h.gid));
  if (!oldFitsString(h.uname, FIELD.uname[1] - 1)) add("uname", h.uname ?? "");
  if (!oldFitsString(h.gname, FIELD.gname[1] - 1)) add("gname", h.gname ?? "");
  const mtime = h.mtime ?? 0n;
  const sec = mtime / 1_000_000_000n;
  if (mtime % 1_000_000_000n !== 0n || mtime < 0n || sec > oldMaxOctal(FIELD.mtime[1])) {
    add("mtime", oldFormatPaxTime(mtime));
  }
  if (h.atime !== undefined) add("atime", oldFormatPaxTime(h.atime));
  if (h.ctime !== undefined) add("ctime", oldFormatPaxTime(h.ctime));
  if ((h.devmajor ?? 0) > Number(oldMaxOctal(FIELD.devmajor[1]))) {
    add("SCHILY.devmajor", String(h.devmajor));
  }
  if ((h.devminor ?? 0) > Number(oldMaxOctal(FIELD.devminor[1]))) {
    add("SCHILY.devminor", String(h.devminor));
  }
  for (const name of Object.keys(h.xattrs ?? {}).sort()) {
    if (!name || name.includes("=")) {
      throw new KanikoError(`tar entry ${h.name}: invalid xattr name "${name}"`);
    }
    add("SCHILY.xattr." + name, h.xattrs![name]);
  }
  for (const key of Object.keys(h.pax ?? {}).sort()) add(key, h.pax![key]);
  return out;
}

const OLD_DEFAULT_MODE: Record<TarEntryType, number> = {
  file: 0o644,
  dir: 0o755,
  symlink: 0o777,
  hardlink: 0o644,
  char: 0o644,
  block: 0o644,
  fifo: 0o644,
};

function oldCreateTarStream(
  entries: AsyncIterable<TarWriteEntry> | Iterable<TarWriteEntry>,
): ReadableStream<Uint8Array> {
  async function* chunks(): AsyncGenerator<Uint8Array, void, undefined> {
    for await (const { header, body } of entries) yield* oldEncodeEntry(header, body);
    yield new Uint8Array(2 * BLOCK_SIZE);
  }
  return ReadableStream.from(chunks());
}

async function* oldEncodeEntry(
  header: TarHeader,
  body?: ReadableStream<Uint8Array> | Uint8Array,
): AsyncGenerator<Uint8Array, void, undefined> {
  const size = oldEntrySize(header, body);
  yield* oldHeaderBlocks(header, size);
  if (body instanceof Uint8Array) {
    if (size > 0) yield body;
  } else if (body) {
    yield* oldStreamBody(body, size, header.name);
  }
  const pad = oldPadding(size);
  if (pad > 0) yield new Uint8Array(pad);
}

function oldEntrySize(h: TarHeader, body: ReadableStream<Uint8Array> | Uint8Array | undefined) {
  const size = h.size ?? (body instanceof Uint8Array ? body.length : 0);
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new KanikoError(`tar entry ${h.name}: invalid size ${size}`);
  }
  if (h.type !== "file" && (size !== 0 || body !== undefined)) {
    throw new KanikoError(`tar entry ${h.name}: a ${h.type} entry cannot have a body`);
  }
  if (body instanceof Uint8Array && body.length !== size) {
    throw new KanikoError(`tar entry ${h.name}: body is ${body.length} bytes, header says ${size}`);
  }
  return size;
}

function oldValidate(h: TarHeader): void {
  if (!h.name || h.name.includes("\0")) {
    throw new KanikoError(`tar entry "${h.name}": invalid name (empty or containing NUL)`);
  }
  if (!(h.type in OLD_TYPEFLAG)) {
    throw new KanikoError(`tar entry ${h.name}: unknown type ${h.type}`);
  }
  if ((h.type === "symlink" || h.type === "hardlink") && !h.linkname) {
    throw new KanikoError(`tar entry ${h.name}: a ${h.type} needs a linkname`);
  }
  for (const key of ["uid", "gid", "devmajor", "devminor"] as const) {
    const v = h[key] ?? 0;
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new KanikoError(`tar entry ${h.name}: invalid ${key} ${v}`);
    }
  }
  if (h.mtime !== undefined && typeof h.mtime !== "bigint") {
    throw new KanikoError(`tar entry ${h.name}: mtime must be a bigint of nanoseconds`);
  }
}

function oldHeaderBlocks(h: TarHeader, size: number): Uint8Array[] {
  oldValidate(h);
  const name = oldUtf8(h.name);
  const split = oldSplitUstarName(h.name);
  const linkname = h.linkname ?? "";
  const fit = { name: split !== undefined, linkname: oldFitsString(linkname, 100) };
  const records = oldPaxRecordsFor({ ...h, size }, fit);
  const blocks: Uint8Array[] = [];
  const mtime = h.mtime ?? 0n;
  const sec = mtime >= 0n ? mtime / NS : -((-mtime + NS - 1n) / NS);
  if (records.length > 0) {
    const data = oldEncodePaxRecords(records);
    blocks.push(
      oldEncodeUstar({
        typeflag: "x",
        name: oldUtf8(oldPaxHeaderName(h.name)),
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: data.length,
        mtime: sec,
      }),
      data,
      new Uint8Array(oldPadding(data.length)),
    );
  }
  blocks.push(oldEncodeUstar({
    typeflag: OLD_TYPEFLAG[h.type],
    name: split?.name ?? name,
    prefix: split?.prefix,
    linkname: oldUtf8(linkname),
    mode: h.mode ?? OLD_DEFAULT_MODE[h.type],
    uid: h.uid ?? 0,
    gid: h.gid ?? 0,
    size,
    mtime: sec,
    uname: oldFitsString(h.uname, 31) ? h.uname : "",
    gname: oldFitsString(h.gname, 31) ? h.gname : "",
    devmajor: h.devmajor,
    devminor: h.devminor,
  }));
  return blocks;
}

function oldSplitUstarName(
  name: string,
): { name: Uint8Array; prefix?: Uint8Array } | undefined {
  if (!oldFitsString(name, 256)) return undefined;
  if (name.length <= 100) return { name: oldUtf8(name) };
  let limit = Math.min(name.length, 156);
  if (limit === name.length && name.endsWith("/")) limit--;
  const i = name.lastIndexOf("/", limit - 1);
  if (i <= 0 || name.length - i - 1 > 100 || name.length - i - 1 === 0) return undefined;
  return { name: oldUtf8(name.slice(i + 1)), prefix: oldUtf8(name.slice(0, i)) };
}

function oldPaxHeaderName(name: string): string {
  const trimmed = name.replace(/\/+$/, "");
  const slash = trimmed.lastIndexOf("/");
  const dir = slash >= 0 ? trimmed.slice(0, slash + 1) : "";
  const base = trimmed.slice(slash + 1);
  return `${dir}PaxHeaders.0/${base}`.replace(/[^\x20-\x7e]/g, "_").slice(0, 100);
}

async function* oldStreamBody(
  body: ReadableStream<Uint8Array>,
  size: number,
  name: string,
): AsyncGenerator<Uint8Array, void, undefined> {
  const reader = body.getReader();
  let got = 0;
  let ok = false;
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      got += value.length;
      if (got > size) {
        throw new KanikoError(`tar entry ${name}: body has more than the ${size} bytes declared`);
      }
      if (value.length > 0) yield value;
    }
    if (got !== size) {
      throw new KanikoError(`tar entry ${name}: body has ${got} bytes, header says ${size}`);
    }
    ok = true;
  } finally {
    if (!ok) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}
