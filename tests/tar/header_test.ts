import assert from "node:assert/strict";
import {
  BLOCK_SIZE,
  checksum,
  decodeHeader,
  encodeUstar,
  FIELD,
  padding,
  readNumber,
  writeNumber,
} from "../../lib/tar/header.ts";
import { KanikoError } from "../../lib/errors.ts";

Deno.test("numeric fields: octal when it fits, NUL-terminated and zero-padded", () => {
  const block = new Uint8Array(BLOCK_SIZE);
  writeNumber(block, FIELD.uid, 2097151);
  assert.equal(new TextDecoder().decode(block.subarray(108, 116)), "7777777\0");
  assert.equal(readNumber(block, FIELD.uid), 2097151n);
  writeNumber(block, FIELD.size, 8589934591);
  assert.equal(new TextDecoder().decode(block.subarray(124, 136)), "77777777777\0");
});

Deno.test("numeric fields: base-256 above the octal range and for negative values", () => {
  const block = new Uint8Array(BLOCK_SIZE);
  writeNumber(block, FIELD.uid, 3000000);
  assert.equal(block[108], 0x80);
  assert.equal(readNumber(block, FIELD.uid), 3000000n);
  writeNumber(block, FIELD.size, 8n * 1024n ** 3n);
  assert.equal(readNumber(block, FIELD.size), 8n * 1024n ** 3n);
  writeNumber(block, FIELD.mtime, -1234567890n);
  assert.equal(block[136], 0xff);
  assert.equal(readNumber(block, FIELD.mtime), -1234567890n);
});

Deno.test("numeric fields: leading spaces and space terminators are accepted", () => {
  const block = new Uint8Array(BLOCK_SIZE);
  block.set(new TextEncoder().encode("  755 \0"), 100);
  assert.equal(readNumber(block, FIELD.mode), 0o755n);
  block.set(new TextEncoder().encode("0009\0\0\0\0"), 100);
  assert.throws(() => readNumber(block, FIELD.mode), /invalid octal digit/);
});

Deno.test("ustar header round trip with prefix, devices and checksum", () => {
  const enc = new TextEncoder();
  const block = encodeUstar({
    typeflag: "3",
    name: enc.encode("null"),
    prefix: enc.encode("dev"),
    mode: 0o4755,
    uid: 1,
    gid: 2,
    size: 0,
    mtime: 1700000000n,
    uname: "root",
    gname: "wheel",
    devmajor: 1,
    devminor: 3,
  });
  assert.equal(checksum(block).unsigned, Number(readNumber(block, FIELD.chksum)));
  const raw = decodeHeader(block, "test");
  assert.equal(new TextDecoder().decode(raw.name), "dev/null");
  assert.equal(raw.typeflag, "3");
  assert.equal(raw.mode, 0o4755);
  assert.equal(raw.mtime, 1700000000n);
  assert.deepEqual([raw.uname, raw.gname, raw.devmajor, raw.devminor], ["root", "wheel", 1, 3]);
  assert.equal(raw.format, "ustar");
});

Deno.test("a corrupt header fails with a clear KanikoError", () => {
  const block = encodeUstar({
    typeflag: "0",
    name: new TextEncoder().encode("a"),
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: 1,
    mtime: 0n,
  });
  block[0] = 0x62; // "a" -> "b"
  assert.throws(
    () => decodeHeader(block, "x.tar at byte 0"),
    (e: unknown) =>
      e instanceof KanikoError && /x\.tar at byte 0: corrupt tar header \(checksum/.test(e.message),
  );
});

Deno.test("padding to the next block", () => {
  assert.deepEqual([padding(0), padding(1), padding(512), padding(513)], [0, 511, 0, 511]);
});
