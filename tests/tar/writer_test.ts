import assert from "node:assert/strict";
import { concatBytes } from "../../lib/bytes.ts";
import { KanikoError } from "../../lib/errors.ts";
import {
  BLOCK_SIZE,
  createTarStream,
  encodeEntry,
  readTar,
  type TarHeader,
  type TarWriteEntry,
  TarWriter,
} from "../../lib/tar/mod.ts";
import { chunked, readAll, readEntries } from "./helpers.ts";

const enc = new TextEncoder();
const BIN = new Uint8Array([0xff, 0xfe, 0x80, 0xc3]);
const LONG_PATH = `${"sub/".repeat(74)}file-300.txt`; // 308 bytes
const LONG_LINK = `/${"t".repeat(250)}`;

function fixtures(): TarWriteEntry[] {
  return [
    { header: { name: "dir/", type: "dir", mode: 0o755, uid: 1, gid: 2, uname: "u", gname: "g" } },
    {
      header: {
        name: "dir/file.txt",
        type: "file",
        mode: 0o4755,
        uid: 3000000,
        gid: 3000001,
        mtime: 1700000000_123456789n,
        atime: 1700000001_5n,
        ctime: 1700000002_000000001n,
        xattrs: { "user.bin": BIN, "security.capability": new Uint8Array([1, 0, 0, 2, 0x80]) },
        pax: { "KANIKO.test": enc.encode("x") },
      },
      body: enc.encode("hello\n"),
    },
    { header: { name: LONG_PATH, type: "file", size: 3 }, body: chunked(enc.encode("abc"), 1) },
    { header: { name: "link", type: "symlink", linkname: LONG_LINK } },
    { header: { name: "hard", type: "hardlink", linkname: "dir/file.txt" } },
    { header: { name: "dev/null", type: "char", devmajor: 1, devminor: 3, mode: 0o666 } },
    { header: { name: "dev/sda", type: "block", devmajor: 8, devminor: 0 } },
    { header: { name: "fifo", type: "fifo" } },
    { header: { name: "ünïcödé/名前.txt", type: "file", mtime: -1_500000000n }, body: BIN },
    { header: { name: "owned", type: "file", uname: "a-very-long-user-name-over-32-bytes" } },
  ];
}

Deno.test("round trip: every type and every extended field", async () => {
  const entries = await readEntries(createTarStream(fixtures()));
  assert.equal(entries.length, 10);
  const [dir, file, long, link, hard, chr, blk, fifo, uni, owned] = entries;
  assert.deepEqual(
    [dir.header.name, dir.header.type, dir.header.mode, dir.header.uid, dir.header.uname],
    ["dir/", "dir", 0o755, 1, "u"],
  );
  assert.equal(file.header.mode, 0o4755);
  assert.equal(file.header.uid, 3000000);
  assert.equal(file.header.gid, 3000001);
  assert.equal(file.header.mtime, 1700000000_123456789n);
  assert.equal(file.header.atime, 1700000001_5n);
  assert.equal(file.header.ctime, 1700000002_000000001n);
  assert.deepEqual(file.header.xattrs?.["user.bin"], BIN);
  assert.deepEqual(file.header.xattrs?.["security.capability"], new Uint8Array([1, 0, 0, 2, 0x80]));
  assert.deepEqual(file.header.pax, { "KANIKO.test": enc.encode("x") });
  assert.equal(new TextDecoder().decode(file.body), "hello\n");
  assert.equal(long.header.name, LONG_PATH);
  assert.equal(new TextDecoder().decode(long.body), "abc");
  assert.deepEqual([link.header.type, link.header.linkname], ["symlink", LONG_LINK]);
  assert.deepEqual([hard.header.type, hard.header.linkname], ["hardlink", "dir/file.txt"]);
  assert.deepEqual([chr.header.type, chr.header.devmajor, chr.header.devminor], ["char", 1, 3]);
  assert.deepEqual([blk.header.type, blk.header.devmajor, blk.header.devminor], ["block", 8, 0]);
  assert.equal(fifo.header.type, "fifo");
  assert.equal(uni.header.name, "ünïcödé/名前.txt");
  assert.equal(uni.header.mtime, -1_500000000n);
  assert.deepEqual(uni.body, BIN);
  assert.equal(owned.header.uname, "a-very-long-user-name-over-32-bytes");
  assert.equal(owned.header.mode, 0o644);
});

Deno.test("output is deterministic and ends with two zero blocks", async () => {
  const a = await readAll(createTarStream(fixtures()));
  const b = await readAll(createTarStream(fixtures()));
  assert.deepEqual(a, b);
  assert.equal(a.length % BLOCK_SIZE, 0);
  assert.ok(a.subarray(a.length - 1024).every((x) => x === 0));
});

Deno.test("a long ASCII path that splits into prefix/name needs no PAX header", async () => {
  const name = `${"p".repeat(150)}/${"n".repeat(99)}`;
  const bytes = await readAll(createTarStream([{ header: { name, type: "file" } }]));
  assert.equal(bytes.length, 512 + 1024);
  assert.equal(bytes[156], "0".charCodeAt(0));
  const [e] = await readEntries(ReadableStream.from([bytes]));
  assert.equal(e.header.name, name);
});

Deno.test("ids, sizes and whole-second mtimes that fit stay in the ustar header", async () => {
  const h: TarHeader = { name: "a", type: "file", uid: 2097151, mtime: 1700000000_000000000n };
  const bytes = await readAll(createTarStream([{ header: h }]));
  assert.equal(bytes.length, 512 + 1024);
});

Deno.test("sizes of 8 GiB and more go to a PAX size record", async () => {
  const size = 8 * 1024 ** 3 + 1;
  const never = new ReadableStream<Uint8Array>({ pull() {} });
  const gen = encodeEntry({ name: "big", type: "file", size }, never);
  const head: Uint8Array[] = [];
  for (let i = 0; i < 4; i++) head.push((await gen.next()).value as Uint8Array);
  await gen.return();
  const stream = ReadableStream.from(head);
  for await (const e of readTar(stream)) {
    assert.equal(e.header.size, size);
    await e.body.cancel();
    break;
  }
});

Deno.test("a body with the wrong length is refused", async () => {
  const short = createTarStream([
    { header: { name: "a", type: "file", size: 5 }, body: chunked(enc.encode("abc"), 2) },
  ]);
  await assert.rejects(readAll(short), /tar entry a: body has 3 bytes, header says 5/);
  const long = createTarStream([
    { header: { name: "b", type: "file", size: 2 }, body: chunked(enc.encode("abc"), 2) },
  ]);
  await assert.rejects(readAll(long), /tar entry b: body has more than the 2 bytes declared/);
  await assert.rejects(
    readAll(createTarStream([{ header: { name: "c", type: "file", size: 1 }, body: BIN }])),
    /body is 4 bytes, header says 1/,
  );
});

Deno.test("invalid headers are refused with KanikoError", async () => {
  const bad: TarWriteEntry[] = [
    { header: { name: "", type: "file" } },
    { header: { name: "l", type: "symlink" } },
    { header: { name: "d", type: "dir" }, body: BIN },
    { header: { name: "u", type: "file", uid: -1 } },
    { header: { name: "m", type: "file", mtime: 5 as unknown as bigint } },
    { header: { name: "x", type: "file", xattrs: { "a=b": BIN } } },
  ];
  for (const entry of bad) {
    await assert.rejects(readAll(createTarStream([entry])), KanikoError, entry.header.name);
  }
});

Deno.test("TarWriter writes into a WritableStream with backpressure", async () => {
  const chunks: Uint8Array[] = [];
  const sink = new WritableStream<Uint8Array>({
    async write(chunk) {
      chunks.push(chunk);
      await new Promise((r) => setTimeout(r, 1));
    },
  }, new CountQueuingStrategy({ highWaterMark: 1 }));
  const w = new TarWriter(sink);
  let pulled = 0;
  let maxAhead = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      maxAhead = Math.max(maxAhead, pulled - chunks.length);
      if (pulled++ === 50) return c.close();
      c.enqueue(new Uint8Array(1000).fill(7));
    },
  }, { highWaterMark: 0 });
  await w.add({ name: "big", type: "file", size: 50000 }, body);
  assert.ok(maxAhead <= 3, `body read ${maxAhead} chunks ahead of the sink`);
  await w.add({ name: "d/", type: "dir" });
  const first = w.add({ name: "x", type: "file" });
  await assert.rejects(w.add({ name: "y", type: "file" }), /before the previous finished/);
  await first;
  await w.close();
  await assert.rejects(w.add({ name: "z", type: "file" }), /already closed/);
  const all = concatBytes(chunks);
  const entries = await readEntries(ReadableStream.from([all]));
  assert.deepEqual(entries.map((e) => e.header.name), ["big", "d/", "x"]);
  assert.equal(entries[0].body.length, 50000);
  assert.ok(entries[0].body.every((b) => b === 7));
});

Deno.test("TarWriter refuses further entries after a failed one", async () => {
  const w = new TarWriter(new WritableStream());
  await assert.rejects(w.add({ name: "a", type: "file", size: 9 }, BIN));
  await assert.rejects(w.add({ name: "b", type: "file" }), /an earlier entry failed/);
  await w.abort();
});
