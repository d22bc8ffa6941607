import assert from "node:assert/strict";
import { KanikoError } from "../../lib/errors.ts";
import {
  digestOf,
  HashingStream,
  isDigest,
  parseDigest,
  verifiableAlgorithm,
  verifyBytes,
  verifyStream,
} from "../../lib/oci/digest.ts";

const EMPTY_SHA256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const EMPTY_SHA512 = "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce" +
  "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e";

function stream(...chunks: string[]): ReadableStream<Uint8Array> {
  return ReadableStream.from(chunks.map((c) => new TextEncoder().encode(c)));
}

async function drain(s: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(s).arrayBuffer());
}

Deno.test("parseDigest accepts the OCI grammar and checks registered algorithms", () => {
  assert.deepEqual(parseDigest(EMPTY_SHA256), {
    algorithm: "sha256",
    encoded: EMPTY_SHA256.slice(7),
  });
  assert.equal(parseDigest(EMPTY_SHA512).algorithm, "sha512");
  assert.deepEqual(parseDigest("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8"), {
    algorithm: "multihash+base58",
    encoded: "QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
  });
  for (
    const bad of [
      "",
      "sha256",
      "sha256:",
      ":abc",
      "SHA256:abc",
      "sha256:abc",
      "sha256:" + "A".repeat(64),
    ]
  ) {
    assert.throws(() => parseDigest(bad), KanikoError, bad);
    assert.equal(isDigest(bad), false);
  }
  assert.throws(() => parseDigest("sha512:" + "a".repeat(64)), /expected 128 lowercase hex/);
  assert.equal(isDigest(EMPTY_SHA256), true);
});

Deno.test("verifiableAlgorithm refuses algorithms we cannot hash", () => {
  assert.equal(verifiableAlgorithm(EMPTY_SHA256), "sha256");
  assert.equal(verifiableAlgorithm(EMPTY_SHA512), "sha512");
  assert.throws(
    () => verifiableAlgorithm("blake3:" + "a".repeat(64)),
    /unsupported digest algorithm "blake3"/,
  );
});

Deno.test("digestOf hashes strings and bytes", () => {
  assert.equal(digestOf(""), EMPTY_SHA256);
  assert.equal(digestOf(new Uint8Array(0), "sha512"), EMPTY_SHA512);
  assert.equal(
    digestOf("{}"),
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
  );
});

Deno.test("HashingStream passes bytes through while hashing and counting", async () => {
  const h = new HashingStream();
  const out = await drain(stream("ab", "", "c").pipeThrough(h));
  assert.equal(new TextDecoder().decode(out), "abc");
  assert.equal(h.size, 3);
  assert.equal(h.digest(), digestOf("abc"));
  assert.equal(h.digest(), digestOf("abc"), "digest() is stable when called again");
});

Deno.test("verifyStream passes matching content and rejects mismatches", async () => {
  const good = { digest: digestOf("abc"), size: 3 };
  assert.equal(
    new TextDecoder().decode(await drain(verifyStream(stream("a", "bc"), good, "b"))),
    "abc",
  );
  await drain(verifyStream(stream("abc"), { digest: good.digest }, "unknown size"));
  await drain(verifyStream(stream("abc"), { digest: good.digest, size: -1 }, "size -1"));
  await assert.rejects(
    drain(verifyStream(stream("ab"), good, "blob X")),
    (e: unknown) =>
      e instanceof KanikoError && e.code === "SIZE_INVALID" &&
      /blob X: received 2 bytes, expected 3/.test(e.message),
  );
  await assert.rejects(
    drain(verifyStream(stream("abcd"), good, "blob Y")),
    (e: unknown) =>
      e instanceof KanikoError && e.code === "SIZE_INVALID" &&
      /more than the expected 3/.test(e.message),
  );
  await assert.rejects(
    drain(verifyStream(stream("abd"), good, "blob Z")),
    (e: unknown) =>
      e instanceof KanikoError && e.code === "DIGEST_INVALID" &&
      /blob Z: content digest is sha256:/.test(e.message),
  );
});

Deno.test("verifyStream fails on oversize content before reading it all", async () => {
  let pulled = 0;
  const endless = new ReadableStream<Uint8Array>({
    pull(c) {
      pulled++;
      c.enqueue(new Uint8Array(1024));
    },
  });
  await assert.rejects(
    drain(verifyStream(endless, { digest: EMPTY_SHA256, size: 2048 }, "x")),
    /more than/,
  );
  assert.ok(pulled < 10);
});

Deno.test("verifyBytes checks in-memory documents", () => {
  verifyBytes(new TextEncoder().encode("{}"), digestOf("{}"), "config");
  assert.throws(
    () => verifyBytes(new TextEncoder().encode("[]"), digestOf("{}"), "config of x"),
    (e: unknown) =>
      e instanceof KanikoError && e.code === "DIGEST_INVALID" && /config of x/.test(e.message),
  );
});
