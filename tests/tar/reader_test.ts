import assert from "node:assert/strict";
import { concatBytes } from "../../lib/bytes.ts";
import { KanikoError } from "../../lib/errors.ts";
import { encodeUstar } from "../../lib/tar/header.ts";
import {
  createTarStream,
  encodePaxRecords,
  readTar,
  type TarWriteEntry,
} from "../../lib/tar/mod.ts";
import { chunked, readAll, readEntries } from "./helpers.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function sample(): TarWriteEntry[] {
  return [
    { header: { name: "a.txt", type: "file" }, body: enc.encode("A".repeat(700)) },
    { header: { name: `${"x".repeat(120)}/b`, type: "file", mtime: 1_25n }, body: enc.encode("b") },
    { header: { name: "empty", type: "file" } },
    { header: { name: "c.bin", type: "file" }, body: new Uint8Array(1024).fill(9) },
  ];
}

async function archive(entries: TarWriteEntry[] = sample()): Promise<Uint8Array> {
  return await readAll(createTarStream(entries));
}

function block(typeflag: string, name: string, size: number): Uint8Array {
  return encodeUstar({
    typeflag,
    name: enc.encode(name),
    mode: 0o644,
    uid: 0,
    gid: 0,
    size,
    mtime: 0n,
  });
}

function padded(bytes: Uint8Array): Uint8Array {
  return concatBytes([bytes, new Uint8Array((512 - (bytes.length % 512)) % 512)]);
}

Deno.test("every chunking of the input gives the same entries", async () => {
  const bytes = await archive();
  const want = await readEntries(ReadableStream.from([bytes]));
  assert.deepEqual(want.map((e) => e.header.name), [
    "a.txt",
    `${"x".repeat(120)}/b`,
    "empty",
    "c.bin",
  ]);
  for (const size of [1, 7, 511, 512, 513, 4096]) {
    assert.deepEqual(await readEntries(chunked(bytes, size)), want, `chunks of ${size}`);
  }
});

Deno.test("unread and partly read bodies are skipped", async () => {
  const names: string[] = [];
  for await (const e of readTar(chunked(await archive(), 100))) {
    names.push(e.header.name);
    if (e.header.name === "c.bin") {
      const r = e.body.getReader();
      const first = await r.read();
      assert.ok(first.value && first.value.length > 0);
      r.releaseLock();
    }
  }
  assert.deepEqual(names, ["a.txt", `${"x".repeat(120)}/b`, "empty", "c.bin"]);
  const last: Uint8Array[] = [];
  for await (const e of readTar(ReadableStream.from([await archive()]))) {
    if (e.header.name === "a.txt") await e.body.cancel();
    else last.push(await readAll(e.body));
  }
  assert.equal(dec.decode(last[0]), "b");
});

Deno.test("reading a body after moving to the next entry errors", async () => {
  const it = readTar(ReadableStream.from([await archive()]));
  const first = (await it.next()).value!;
  await it.next();
  await assert.rejects(readAll(first.body), /an entry body was read after the next entry/);
  await it.return();
});

Deno.test("a truncated body is a clear error, for the body and the iterator", async () => {
  const bytes = (await archive()).subarray(0, 512 + 300);
  const it = readTar(ReadableStream.from([bytes]), { name: "layer.tar" });
  const e = (await it.next()).value!;
  await assert.rejects(readAll(e.body), /layer\.tar: entry a\.txt: archive truncated at byte 812/);
  await assert.rejects(
    it.next(),
    (err: unknown) => err instanceof KanikoError && /truncated/.test(err.message),
  );
  const unread = readTar(ReadableStream.from([bytes]));
  await unread.next();
  await assert.rejects(unread.next(), /archive truncated/);
});

Deno.test("truncation inside a header or an extension header is an error", async () => {
  const bytes = await archive();
  await assert.rejects(
    readEntries(ReadableStream.from([bytes.subarray(0, 2560 + 100)])),
    /inside a header/,
  );
  // entry 2 starts at 1536 with a PAX header; cut inside the PAX data block
  await assert.rejects(
    readEntries(ReadableStream.from([bytes.subarray(0, 1536 + 600)])),
    /extension header/,
  );
});

Deno.test("a stream ending at a block boundary without end blocks is accepted", async () => {
  const bytes = await archive();
  const entries = await readEntries(ReadableStream.from([bytes.subarray(0, bytes.length - 1024)]));
  assert.equal(entries.length, 4);
  assert.deepEqual(await readEntries(ReadableStream.from([new Uint8Array(0)])), []);
});

Deno.test("a corrupt header names the archive and byte offset", async () => {
  const bytes = (await archive()).slice();
  bytes[1536 + 10] ^= 0x01; // inside the name field of the second entry's PAX header
  await assert.rejects(
    readEntries(ReadableStream.from([bytes])),
    /tar archive at byte 1536: corrupt tar header \(checksum/,
  );
  const garbage = new Uint8Array(1024).fill(0x41);
  await assert.rejects(readEntries(ReadableStream.from([garbage])), /corrupt tar header/);
});

Deno.test("after the end blocks the rest of the input is drained; break cancels", async () => {
  let pulls = 0;
  let cancelled = false;
  const bytes = concatBytes([await archive(), new Uint8Array(10240)]);
  const source = (n: number) =>
    new ReadableStream<Uint8Array>({
      pull(c) {
        if (pulls * n >= bytes.length) return c.close();
        c.enqueue(bytes.slice(pulls * n, ++pulls * n));
      },
      cancel() {
        cancelled = true;
      },
    });
  await readEntries(source(1000));
  assert.equal(pulls, Math.ceil(bytes.length / 1000));
  assert.equal(cancelled, false);
  pulls = 0;
  for await (const _ of readTar(source(512))) break;
  assert.equal(cancelled, true);
});

Deno.test("PAX global headers apply to later entries; local records override them", async () => {
  const g = encodePaxRecords([["uname", "global"], ["SCHILY.xattr.user.g", "1"]]);
  const x = encodePaxRecords([["uname", "local"], ["path", "renamed"]]);
  const unset = encodePaxRecords([["uname", ""]]);
  const bytes = concatBytes([
    block("g", "pax_global_header", g.length),
    padded(g),
    block("0", "one", 0),
    block("x", "PaxHeaders/two", x.length),
    padded(x),
    block("0", "two", 0),
    block("g", "pax_global_header", unset.length),
    padded(unset),
    block("0", "three", 0),
    new Uint8Array(1024),
  ]);
  const entries = await readEntries(ReadableStream.from([bytes]));
  assert.deepEqual(entries.map((e) => [e.header.name, e.header.uname]), [
    ["one", "global"],
    ["renamed", "local"],
    ["three", ""],
  ]);
  assert.deepEqual(entries[2].header.xattrs, { "user.g": enc.encode("1") });
});

Deno.test("GNU L/K long names and LIBARCHIVE xattrs", async () => {
  const longName = `${"n".repeat(200)}/file\0`;
  const longLink = `${"l".repeat(150)}\0`;
  const x = encodePaxRecords([["LIBARCHIVE.xattr.user.a%3Db", btoa("\xff\x00")]]);
  const bytes = concatBytes([
    block("L", "././@LongLink", longName.length),
    padded(enc.encode(longName)),
    block("K", "././@LongLink", longLink.length),
    padded(enc.encode(longLink)),
    block("x", "p", x.length),
    padded(x),
    encodeUstar({
      typeflag: "2",
      name: enc.encode("short"),
      linkname: enc.encode("short"),
      mode: 0o777,
      uid: 0,
      gid: 0,
      size: 0,
      mtime: 0n,
    }),
    new Uint8Array(1024),
  ]);
  const [e] = await readEntries(ReadableStream.from([bytes]));
  assert.equal(e.header.name, longName.slice(0, -1));
  assert.equal(e.header.linkname, longLink.slice(0, -1));
  assert.deepEqual(e.header.xattrs, { "user.a=b": new Uint8Array([0xff, 0]) });
});

Deno.test("old v7 headers: a trailing slash means a directory", async () => {
  const b = block("\0", "olddir/", 0);
  b.fill(0, 257, 265); // no magic
  b.fill(0, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : b[i];
  b.set(enc.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
  const [e] = await readEntries(ReadableStream.from([concatBytes([b, new Uint8Array(1024)])]));
  assert.deepEqual([e.header.name, e.header.type], ["olddir/", "dir"]);
});

Deno.test("oversized extension headers are refused", async () => {
  const bytes = concatBytes([block("x", "p", 5000), new Uint8Array(5120), new Uint8Array(1024)]);
  assert.equal((await readEntries(ReadableStream.from([bytes]))).length, 0);
  const it = readTar(ReadableStream.from([bytes]), { maxMetadataSize: 4096 });
  await assert.rejects(it.next(), /is 5000 bytes, more than 4096/);
});
