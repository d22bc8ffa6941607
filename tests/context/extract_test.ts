/**
 * Safe extraction of context archives and decompression by content (gzip, zstd multi-frame and
 * skippable frames, plain; bzip2/xz refused).
 */
import assert from "node:assert/strict";
import zlib from "node:zlib";
import {
  decompressByContent,
  detectCompression,
  zstdDecompress,
} from "../../lib/context/decompress.ts";
import { extractTar } from "../../lib/context/extract.ts";
import { KanikoError } from "../../lib/errors.ts";
import { createTarStream, type TarWriteEntry } from "../../lib/tar/mod.ts";
import { captureLog, rejects } from "../_helpers.ts";

const enc = new TextEncoder();

async function tarBytes(entries: TarWriteEntry[]): Promise<Uint8Array> {
  return new Uint8Array(await new Response(createTarStream(entries)).arrayBuffer());
}

function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new Blob([bytes as Uint8Array<ArrayBuffer>]).stream();
}

async function withDirs(fn: (dest: string, outside: string) => Promise<void>) {
  const base = await Deno.makeTempDir({ prefix: "ctx-extract-" });
  const dest = `${base}/dest`;
  const outside = `${base}/outside`;
  await Deno.mkdir(dest);
  await Deno.mkdir(outside);
  await Deno.writeTextFile(`${outside}/victim`, "original");
  try {
    await fn(dest, outside);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
}

function file(name: string, text: string, mode = 0o644, mtime = 1_700_000_000n): TarWriteEntry {
  return {
    header: { name, type: "file", mode, mtime: mtime * 1_000_000_000n },
    body: enc.encode(text),
  };
}

Deno.test("extractTar: files, directories, links, modes and times", async () => {
  await withDirs(async (dest) => {
    const tar = await tarBytes([
      { header: { name: "./", type: "dir", mode: 0o755 } },
      {
        header: { name: "bin/", type: "dir", mode: 0o750, mtime: 1_600_000_000n * 1_000_000_000n },
      },
      file("bin/run.sh", "#!/bin/sh\necho hi\n", 0o755),
      file("deep/nested/file.txt", "nested"), // parents created on the fly
      { header: { name: "link", type: "symlink", linkname: "bin/run.sh" } },
      { header: { name: "abs-link", type: "symlink", linkname: "/etc/passwd" } },
      { header: { name: "hard", type: "hardlink", linkname: "bin/run.sh" } },
      { header: { name: "ro/", type: "dir", mode: 0o555 } },
      file("ro/inside", "still written"),
      { header: { name: "dev/null", type: "char", devmajor: 1, devminor: 3 } },
      { header: { name: "fifo", type: "fifo" } },
      file("setuid", "x", 0o4755),
    ]);
    const log = captureLog();
    let result;
    try {
      result = await extractTar(streamOf(tar), dest, { name: "test.tar" });
    } finally {
      log.restore();
    }
    assert.equal(result.skipped, 2);
    assert.deepEqual(log.lines.length, 1); // one warning per archive
    assert.match(
      log.lines[0],
      /skipping device and FIFO entries of test\.tar \(first: dev\/null\)/,
    );
    assert.equal(await Deno.readTextFile(`${dest}/bin/run.sh`), "#!/bin/sh\necho hi\n");
    assert.equal((await Deno.stat(`${dest}/bin/run.sh`)).mode! & 0o7777, 0o755);
    assert.equal((await Deno.stat(`${dest}/bin`)).mode! & 0o7777, 0o750);
    assert.equal((await Deno.stat(`${dest}/bin`)).mtime!.getTime(), 1_600_000_000_000);
    assert.equal((await Deno.stat(`${dest}/bin/run.sh`)).mtime!.getTime(), 1_700_000_000_000);
    assert.equal(await Deno.readTextFile(`${dest}/deep/nested/file.txt`), "nested");
    assert.equal(await Deno.readLink(`${dest}/link`), "bin/run.sh");
    assert.equal(await Deno.readLink(`${dest}/abs-link`), "/etc/passwd"); // created, never followed
    assert.equal(
      (await Deno.stat(`${dest}/hard`)).ino,
      (await Deno.stat(`${dest}/bin/run.sh`)).ino,
    );
    assert.equal((await Deno.stat(`${dest}/ro`)).mode! & 0o777, 0o555);
    assert.equal(await Deno.readTextFile(`${dest}/ro/inside`), "still written");
    assert.equal((await Deno.stat(`${dest}/setuid`)).mode! & 0o7777, 0o4755);
    await assert.rejects(() => Deno.lstat(`${dest}/dev/null`), Deno.errors.NotFound);
    await Deno.chmod(`${dest}/ro`, 0o755);
  });
});

Deno.test("extractTar: refuses names that leave the directory", async () => {
  const hostile: [string, TarWriteEntry[], RegExp][] = [
    ["dotdot", [file("../victim", "pwned")], /entry "\.\.\/victim" climbs out/],
    ["nested dotdot", [file("a/../../victim", "pwned")], /climbs out/],
    ["absolute", [file("/tmp/victim", "pwned")], /has an absolute path/],
    [
      "symlink parent (absolute)",
      [
        { header: { name: "link", type: "symlink", linkname: "OUTSIDE" } },
        file("link/victim", "pwned"),
      ],
      /entry "link\/victim" would be written through the symlink "link"/,
    ],
    [
      "symlink parent (relative)",
      [
        { header: { name: "up", type: "symlink", linkname: ".." } },
        file("up/outside/victim", "pwned"),
      ],
      /written through the symlink "up"/,
    ],
    [
      "symlink directory for a directory entry",
      [
        { header: { name: "d", type: "symlink", linkname: "OUTSIDE" } },
        { header: { name: "d/sub/", type: "dir" } },
      ],
      /written through the symlink "d"/,
    ],
    [
      "hard link out",
      [{ header: { name: "h", type: "hardlink", linkname: "../outside/victim" } }],
      /hard link "h" \(to "\.\.\/outside\/victim"\) climbs out/,
    ],
    [
      "hard link absolute",
      [{ header: { name: "h", type: "hardlink", linkname: "/etc/passwd" } }],
      /has an absolute path/,
    ],
    [
      "hard link through a symlink",
      [
        { header: { name: "l", type: "symlink", linkname: "OUTSIDE" } },
        { header: { name: "h", type: "hardlink", linkname: "l/victim" } },
      ],
      /is a hard link to "l\/victim", which is not in the archive/,
    ],
    [
      "hard link to nothing",
      [{ header: { name: "h", type: "hardlink", linkname: "missing" } }],
      /which is not in the archive/,
    ],
  ];
  for (const [label, entries, want] of hostile) {
    await withDirs(async (dest, outside) => {
      const fixed = entries.map((e) =>
        e.header.linkname === "OUTSIDE" ? { header: { ...e.header, linkname: outside } } : e
      );
      const err = await rejects(
        extractTar(streamOf(await tarBytes(fixed)), dest, { name: "evil.tar" }),
      );
      assert.match(err.message, want, label);
      assert.match(err.message, /^evil\.tar: .*refusing to extract it$/, label);
      assert.equal(err.code, "UNSAFE_ARCHIVE", label);
      assert.equal(await Deno.readTextFile(`${outside}/victim`), "original", label);
      assert.deepEqual([...Deno.readDirSync(outside)].map((e) => e.name), ["victim"], label);
    });
  }
});

Deno.test("extractTar: a later entry replaces a planted symlink instead of writing through it", async () => {
  await withDirs(async (dest, outside) => {
    const tar = await tarBytes([
      { header: { name: "target", type: "symlink", linkname: `${outside}/victim` } },
      file("target", "replaced"),
    ]);
    await extractTar(streamOf(tar), dest, { name: "t.tar" });
    assert.equal(await Deno.readTextFile(`${outside}/victim`), "original");
    assert.equal((await Deno.lstat(`${dest}/target`)).isFile, true);
    assert.equal(await Deno.readTextFile(`${dest}/target`), "replaced");
  });
});

Deno.test("extractTar: a directory replaced by a file, and duplicates (last wins)", async () => {
  await withDirs(async (dest) => {
    const tar = await tarBytes([
      file("x/a", "1"),
      file("x", "now a file"),
      file("y", "first"),
      file("y", "second"),
      file("x2/b", "b"),
      { header: { name: "x2/", type: "dir", mode: 0o700 } },
    ]);
    await extractTar(streamOf(tar), dest, { name: "t.tar" });
    assert.equal(await Deno.readTextFile(`${dest}/x`), "now a file");
    assert.equal(await Deno.readTextFile(`${dest}/y`), "second");
    assert.equal(await Deno.readTextFile(`${dest}/x2/b`), "b"); // a later dir entry keeps contents
  });
});

Deno.test("extractTar: truncated and corrupt archives fail clearly", async () => {
  await withDirs(async (dest) => {
    const tar = await tarBytes([file("big", "x".repeat(5000))]);
    const err = await rejects(extractTar(streamOf(tar.slice(0, 2000)), dest, { name: "cut.tar" }));
    assert.match(err.message, /cut\.tar.*truncated/);
    const junk = enc.encode("this is not a tar archive at all".repeat(40));
    const err2 = await rejects(extractTar(streamOf(junk), dest, { name: "junk.tar" }));
    assert.match(err2.message, /junk\.tar/);
  });
});

Deno.test("detectCompression: by magic bytes", () => {
  assert.equal(detectCompression(new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0])), "gzip");
  assert.equal(detectCompression(new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0, 0])), "zstd");
  assert.equal(detectCompression(new Uint8Array([0x50, 0x2a, 0x4d, 0x18, 0, 0])), "zstd");
  assert.equal(detectCompression(enc.encode("BZh91AY")), "bzip2");
  assert.equal(detectCompression(new Uint8Array([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0])), "xz");
  assert.equal(detectCompression(enc.encode("hello.txt")), "none");
  assert.equal(detectCompression(new Uint8Array(0)), "none");
});

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

Deno.test("zstdDecompress: every frame, skippable frames skipped", async () => {
  const a = zlib.zstdCompressSync(enc.encode("hello "));
  const b = zlib.zstdCompressSync(enc.encode("world"));
  const skippable = new Uint8Array([0x5e, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 9, 9, 9]);
  const all = new Uint8Array([...skippable, ...a, ...skippable, ...b]);
  const out = await readAll(zstdDecompress(streamOf(all), "two.zst"));
  assert.equal(new TextDecoder().decode(out), "hello world");
});

Deno.test("zstdDecompress: trailing garbage, truncation and empty input fail loudly", async () => {
  const a = zlib.zstdCompressSync(enc.encode("hello ".repeat(1000)));
  const garbage = new Uint8Array([...a, 1, 2, 3, 4, 5]);
  const e1 = await rejects(readAll(zstdDecompress(streamOf(garbage), "g.zst")));
  assert.match(
    e1.message,
    /g\.zst: zstd data has \d+ bytes of zstd frames followed by data that is not/,
  );
  const e2 = await rejects(readAll(zstdDecompress(streamOf(a.slice(0, a.length - 3)), "t.zst")));
  assert.match(e2.message, /t\.zst: zstd data ends inside frame 1/);
  const e3 = await rejects(readAll(zstdDecompress(streamOf(new Uint8Array(0)), "e.zst")));
  assert.match(e3.message, /e\.zst: zstd data is empty/);
});

Deno.test("decompressByContent: multi-member gzip, zstd and plain", async () => {
  const one = zlib.gzipSync(enc.encode("abc"));
  const two = zlib.gzipSync(enc.encode("def"));
  const gz = await decompressByContent(streamOf(new Uint8Array([...one, ...two])), "x");
  assert.equal(gz.compression, "gzip");
  assert.equal(new TextDecoder().decode(await readAll(gz.stream)), "abcdef");
  const plain = await decompressByContent(streamOf(enc.encode("plain text")), "x");
  assert.equal(plain.compression, "none");
  assert.equal(new TextDecoder().decode(await readAll(plain.stream)), "plain text");
  const tiny = await decompressByContent(streamOf(enc.encode("ab")), "x");
  assert.equal(new TextDecoder().decode(await readAll(tiny.stream)), "ab");
  const bad = await decompressByContent(streamOf(one.slice(0, 10)), "cut.tgz");
  const err = await rejects(readAll(bad.stream));
  assert.match(err.message, /cut\.tgz: gzip data is corrupt or truncated/);
});

Deno.test("decompressByContent: bzip2 and xz are refused by name", async () => {
  for (
    const [head, kind] of [[enc.encode("BZh91AY&SY"), "bzip2"], [
      new Uint8Array([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0, 0, 4]),
      "xz",
    ]] as const
  ) {
    const err = await rejects(decompressByContent(streamOf(head), "ctx.tar.x"));
    assert.ok(err instanceof KanikoError);
    assert.match(
      err.message,
      new RegExp(`ctx\\.tar\\.x is ${kind}-compressed, which is not supported`),
    );
  }
});
