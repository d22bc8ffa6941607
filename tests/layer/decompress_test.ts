/**
 * decompress: detection by content; multi-member gzip and multi-frame zstd (skippable frames,
 * checksums, no content size, bytes cut anywhere) decoded fully; bzip2 and xz through their
 * programs; clear errors for damaged data and a missing program; cancellation leaks nothing.
 */
import assert from "node:assert/strict";
import zlib from "node:zlib";
import { join } from "node:path";
import { KanikoError } from "../../lib/errors.ts";
import {
  decompress,
  decompressByContent,
  detectCompression,
  zstdDecompress,
} from "../../lib/layer/mod.ts";
import { ZstdFrameSplitter } from "../../lib/layer/zstd_frames.ts";
import { chunked, readAll, tempDir } from "../tar/helpers.ts";

const enc = new TextEncoder();

function pseudoRandom(size: number, seed = 7): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = (i >> 9) % 3 === 0 ? 0x20 : 0x61 + ((x >>> 0) % 20);
  }
  return out;
}

const A = pseudoRandom(1_500_000, 3);
const B = pseudoRandom(2_000_000, 5);
const AB = concat(A, B);

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Runs `cmd args` with `input` on stdin; returns stdout. */
async function pipe(cmd: string, args: string[], input: Uint8Array): Promise<Uint8Array> {
  const child = new Deno.Command(cmd, { args, stdin: "piped", stdout: "piped" }).spawn();
  const [, out] = await Promise.all([
    chunked(input, 1 << 20).pipeTo(child.stdin),
    child.output(),
  ]);
  assert.equal(out.code, 0, `${cmd} ${args.join(" ")}`);
  return out.stdout;
}

function skippable(payload: Uint8Array, nibble = 0): Uint8Array {
  const head = new Uint8Array(8);
  const view = new DataView(head.buffer);
  view.setUint32(0, 0x184d2a50 + nibble, true);
  view.setUint32(4, payload.length, true);
  return concat(head, payload);
}

async function decoded(bytes: Uint8Array, chunk = 65536): Promise<Uint8Array> {
  return await readAll(decompress(chunked(bytes, chunk), "test blob"));
}

async function failure(bytes: Uint8Array, chunk = 65536): Promise<KanikoError> {
  try {
    await decoded(bytes, chunk);
  } catch (e) {
    assert.ok(e instanceof KanikoError, `expected a KanikoError, got ${e}`);
    return e;
  }
  assert.fail("expected a failure");
}

Deno.test("detectCompression: by magic bytes", () => {
  assert.equal(detectCompression(new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0])), "gzip");
  assert.equal(detectCompression(new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0, 0])), "zstd");
  assert.equal(detectCompression(new Uint8Array([0x5f, 0x2a, 0x4d, 0x18, 0, 0])), "zstd");
  assert.equal(detectCompression(enc.encode("BZh91AY")), "bzip2");
  assert.equal(detectCompression(new Uint8Array([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0])), "xz");
  assert.equal(detectCompression(enc.encode("etc/passwd")), "none");
  assert.equal(detectCompression(new Uint8Array([0x1f])), "none");
});

Deno.test("decompress: multi-member gzip (gzip CLI) decodes fully", async () => {
  const gz = concat(
    await pipe("gzip", ["-c", "-1"], A),
    await pipe("gzip", ["-c", "-9"], B),
    zlib.gzipSync(enc.encode("tail")),
  );
  assert.deepEqual(await decoded(gz), concat(AB, enc.encode("tail")));
  assert.deepEqual(await decoded(gz, 997), concat(AB, enc.encode("tail")));
});

Deno.test("decompress: multi-frame zstd with skippable frames, cut anywhere", async () => {
  const withChecksum = await pipe("zstd", ["-c", "-3"], A); // streamed: no content size
  const noChecksum = await pipe("zstd", ["-c", "-1", "--no-check"], B);
  const empty = await pipe("zstd", ["-c"], new Uint8Array(0));
  const zeros = await pipe("zstd", ["-c", "--no-check"], new Uint8Array(300_000)); // RLE blocks
  const raw = await pipe("zstd", ["-c"], crypto.getRandomValues(new Uint8Array(60_000))); // raw blocks
  const random = await readAll(zstdDecompress(chunked(raw, 4096)));
  const zst = concat(
    skippable(enc.encode("leading metadata")),
    withChecksum,
    skippable(new Uint8Array(0), 15),
    noChecksum,
    empty,
    zeros,
    raw,
    skippable(enc.encode("zstd:chunked manifest"), 3),
  );
  const want = concat(AB, new Uint8Array(300_000), random);
  for (const chunk of [1 << 20, 65536, 4097, 13]) {
    const got = await decoded(zst, chunk);
    assert.equal(got.length, want.length, `chunk ${chunk}`);
    assert.deepEqual(got, want, `chunk ${chunk}`);
  }
  // The CLI agrees.
  assert.deepEqual(await pipe("zstd", ["-dc"], zst), want);
});

Deno.test("ZstdFrameSplitter: byte-at-a-time gives the same frames as one chunk", async () => {
  const zst = concat(
    zlib.zstdCompressSync(enc.encode("one ".repeat(1000))),
    skippable(enc.encode("skip me")),
    await pipe("zstd", ["-c", "--no-check"], enc.encode("two ".repeat(100_000))),
  );
  const frames = (cut: number) => {
    const s = new ZstdFrameSplitter("t");
    const out: number[][] = [];
    for (let i = 0; i < zst.length; i += cut) {
      for (const e of s.push(zst.subarray(i, i + cut))) {
        if (e.type === "end") out.push([e.frame, -1]);
        else {
          out[e.frame - 1] ??= [];
          out[e.frame - 1].push(...e.bytes);
        }
      }
    }
    s.finish();
    assert.equal(s.frames, 2);
    return out;
  };
  const whole = frames(zst.length);
  assert.deepEqual(frames(1), whole);
  assert.deepEqual(frames(3), whole);
});

Deno.test("decompress: plain data passes through; empty stays empty", async () => {
  assert.deepEqual(await decoded(AB, 50_000), AB);
  assert.deepEqual(await decoded(enc.encode("ab")), enc.encode("ab"));
  assert.deepEqual(await decoded(new Uint8Array(0)), new Uint8Array(0));
});

Deno.test("decompress: bzip2 and xz through their programs", async () => {
  const [a, b] = [A.subarray(0, 300_000), B.subarray(0, 200_000)];
  for (const [tool, kind] of [["bzip2", "bzip2"], ["xz", "xz"]] as const) {
    const packed = concat(await pipe(tool, ["-c"], a), await pipe(tool, ["-c"], b));
    assert.deepEqual(await decoded(packed), concat(a, b), tool);
    const { compression } = await decompressByContent(chunked(packed, 1 << 20), "x")
      .then(async (r) => {
        await r.stream.cancel();
        return r;
      });
    assert.equal(compression, kind);
    const cut = await failure(packed.slice(0, packed.length - 1000));
    assert.match(cut.message, new RegExp(`test blob: ${tool} data is corrupt or truncated: .+`));
  }
});

Deno.test("decompress: a missing bzip2 or xz program is one clear error", async () => {
  const programs = { bzip2: "/nonexistent/bzip2", xz: "/nonexistent/xz" };
  const missing = async (bytes: Uint8Array) => {
    const err = await decompressByContent(chunked(bytes, 4), "test blob", { programs })
      .then(() => undefined, (e) => e);
    assert.ok(err instanceof KanikoError, `expected a KanikoError, got ${err}`);
    return err;
  };
  const bz = await missing(enc.encode("BZh91AY&SY and more"));
  assert.match(bz.message, /test blob is bzip2-compressed, and the bzip2 program is not installed/);
  assert.match(bz.hint ?? "", /apt-get install bzip2/);
  const xz = await missing(new Uint8Array([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0, 0, 4]));
  assert.match(xz.message, /test blob is xz-compressed, and the xz program is not installed/);
  assert.match(xz.hint ?? "", /apt-get install xz-utils/);
});

Deno.test("decompressByContent: external: false refuses bzip2 and xz", async () => {
  const err = await decompressByContent(chunked(enc.encode("BZh91AY&SY"), 4), "ctx.tar.bz2", {
    external: false,
  }).then(() => undefined, (e) => e);
  assert.ok(err instanceof KanikoError);
  assert.match(err.message, /ctx\.tar\.bz2 is bzip2-compressed, which is not supported/);
});

Deno.test("decompress: damaged gzip and zstd fail with one clear line", async () => {
  const gz = zlib.gzipSync(A);
  assert.match(
    (await failure(gz.subarray(0, gz.length - 100))).message,
    /test blob: gzip data is corrupt or truncated/,
  );
  const bad = gz.slice();
  bad[5000] ^= 0xff;
  bad[5001] ^= 0xff;
  assert.match((await failure(bad)).message, /test blob: gzip data is corrupt or truncated/);
  const zst = await pipe("zstd", ["-c"], A); // one frame
  assert.match(
    (await failure(zst.subarray(0, zst.length - 10), 1000)).message,
    /test blob: zstd data ends inside frame 1 \(block\)/,
  );
  assert.match(
    (await failure(concat(zst, zst.subarray(0, 5)))).message,
    /test blob: zstd data ends inside frame 2 \(frame header\)/,
  );
  assert.match(
    (await failure(concat(zst, enc.encode("garbage!")))).message,
    new RegExp(`test blob: zstd data has ${zst.length} bytes of zstd frames followed by data`),
  );
  assert.match(
    (await failure(concat(zst, skippable(new Uint8Array(100)).subarray(0, 50)))).message,
    /ends inside a skippable frame/,
  );
  const corrupt = zst.slice();
  for (let i = 1000; i < 1100; i++) corrupt[i] ^= 0x55;
  assert.match((await failure(corrupt)).message, /test blob: zstd data (frame 1 is corrupt|has)/);
  // A wrong content checksum (Deno's decoder throws it outside the stream: caught all the same).
  const badSum = concat(zst, zst);
  badSum[badSum.length - 2] ^= 0x55;
  assert.match(
    (await failure(badSum)).message,
    /test blob: zstd data frame 2 is corrupt: .*checksum/,
  );
});

Deno.test("decompress: cancelling mid-stream stops the decoder and the source", async () => {
  for (const tool of ["gzip", "zstd", "bzip2", "xz"]) {
    // Concatenated members / frames / streams, without end: only a cancel stops this.
    const packed = await pipe(tool, ["-c"], A.subarray(0, 200_000));
    let cancelled = false;
    let sent = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(c) {
        c.enqueue(packed.slice());
        sent++;
      },
      cancel() {
        cancelled = true;
      },
    }, { highWaterMark: 0 });
    const out = decompress(endless, tool).getReader();
    let got = 0;
    while (got < 1_000_000) {
      const r = await out.read();
      assert.ok(!r.done, tool);
      got += r.value.length;
    }
    await out.cancel();
    assert.ok(cancelled, `${tool}: source cancelled`);
    assert.ok(sent < 1000, `${tool}: read ${sent} copies`);
  }
});

Deno.test("decompress: a blob on disk, read by content", async () => {
  await using tmp = await tempDir();
  const path = join(tmp.dir, "layer.bin");
  await Deno.writeFile(path, zlib.zstdCompressSync(B));
  const file = await Deno.open(path);
  assert.deepEqual(await readAll(decompress(file.readable)), B);
});

Deno.test("decompress: an error of the source itself passes through unchanged", async () => {
  const bz = await pipe("bzip2", ["-c"], A.subarray(0, 200_000));
  for (const packed of [zlib.gzipSync(A), await pipe("zstd", ["-c"], A), bz, A]) {
    let sent = 0;
    const failing = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent++ < 3) c.enqueue(packed.slice((sent - 1) * 10_000, sent * 10_000));
        else c.error(new TypeError("connection reset"));
      },
    }, { highWaterMark: 0 });
    await assert.rejects(readAll(decompress(failing)), (e) => {
      assert.ok(e instanceof TypeError, `got ${e}`);
      assert.equal(e.message, "connection reset");
      return true;
    });
  }
});
