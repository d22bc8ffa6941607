import assert from "node:assert/strict";
import {
  encodePaxRecords,
  formatPaxTime,
  parsePaxRecords,
  parsePaxTime,
} from "../../lib/tar/pax.ts";

Deno.test("PAX record lengths count their own digits, across digit-count boundaries", () => {
  for (let n = 80; n < 1100; n++) {
    const value = "v".repeat(n);
    const bytes = encodePaxRecords([["path", value]]);
    const text = new TextDecoder().decode(bytes);
    const len = Number(text.slice(0, text.indexOf(" ")));
    assert.equal(len, bytes.length, `value of ${n} bytes`);
    assert.deepEqual(parsePaxRecords(bytes, "t"), [["path", new TextEncoder().encode(value)]]);
  }
});

Deno.test("PAX values are binary-safe (no UTF-8 decoding)", () => {
  const bin = new Uint8Array([0xff, 0xfe, 0x80, 0xc3, 0x0a, 0x3d, 0x00]);
  const bytes = encodePaxRecords([["SCHILY.xattr.user.bin", bin], ["uid", "3000000"]]);
  const records = parsePaxRecords(bytes, "t");
  assert.equal(records[0][0], "SCHILY.xattr.user.bin");
  assert.deepEqual(records[0][1], bin);
  assert.equal(new TextDecoder().decode(records[1][1]), "3000000");
});

Deno.test("malformed PAX records are rejected", () => {
  const enc = new TextEncoder();
  assert.throws(() => parsePaxRecords(enc.encode("5 a=b"), "f.tar"), /f\.tar: malformed PAX/);
  assert.throws(() => parsePaxRecords(enc.encode("99 a=b\n"), "t"), /malformed/);
  assert.throws(() => parsePaxRecords(enc.encode("x a=b\n"), "t"), /malformed/);
  assert.throws(() => parsePaxRecords(enc.encode("6 ab\n"), "t"), /malformed/);
  assert.throws(() => encodePaxRecords([["a=b", "c"]]), /invalid PAX record key/);
});

Deno.test("PAX times keep every nanosecond", () => {
  assert.equal(formatPaxTime(1700000000_123456789n), "1700000000.123456789");
  assert.equal(formatPaxTime(1700000000_000000000n), "1700000000");
  assert.equal(formatPaxTime(1_500000000n), "1.5");
  assert.equal(formatPaxTime(-1_500000000n), "-1.5");
  assert.equal(parsePaxTime("1700000000.123456789"), 1700000000_123456789n);
  assert.equal(parsePaxTime("1.5"), 1_500000000n);
  assert.equal(parsePaxTime("-1.5"), -1_500000000n);
  assert.equal(parsePaxTime("12.1234567891234"), 12_123456789n);
  assert.equal(parsePaxTime("7"), 7_000000000n);
  assert.throws(() => parsePaxTime("1e9"), /invalid PAX time/);
});
