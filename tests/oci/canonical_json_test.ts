import assert from "node:assert/strict";
import { KanikoError } from "../../lib/errors.ts";
import { canonicalJson, canonicalJsonString } from "../../lib/oci/canonical_json.ts";
import { digestOf } from "../../lib/oci/digest.ts";

Deno.test("keys are sorted recursively, whitespace removed, undefined dropped", () => {
  const value = {
    schemaVersion: 2,
    mediaType: "m",
    layers: [{ size: 1, digest: "d", annotations: { z: "1", a: "2" }, urls: undefined }],
    config: { b: undefined, a: null },
  };
  assert.equal(
    canonicalJsonString(value),
    '{"config":{"a":null},"layers":[{"annotations":{"a":"2","z":"1"},"digest":"d","size":1}],' +
      '"mediaType":"m","schemaVersion":2}',
  );
});

Deno.test("equal content in any key order gives equal bytes and digests", () => {
  const a = { x: 1, y: { p: [1, 2, { r: 1, q: 2 }], o: "s" } };
  const b = { y: { o: "s", p: [1, 2, { q: 2, r: 1 }] }, x: 1 };
  assert.deepEqual(canonicalJson(a), canonicalJson(b));
  assert.equal(digestOf(canonicalJson(a)), digestOf(canonicalJson(b)));
  assert.deepEqual(JSON.parse(new TextDecoder().decode(canonicalJson(a))), a);
});

Deno.test("strings and numbers as JSON.stringify writes them; arrays keep order", () => {
  assert.equal(
    canonicalJsonString(["é", "\u2028", "<&>", "\n", 1e21, 0.1, -0]),
    '["é","\u2028","<&>","\\n",1e+21,0.1,0]',
  );
  assert.equal(canonicalJsonString([undefined, () => 1]), "[null,null]");
  assert.equal(canonicalJsonString({ d: new Date(0) }), '{"d":"1970-01-01T00:00:00.000Z"}');
  assert.equal(
    canonicalJsonString({ "b": 1, "B": 2, "a": 3, "é": 4 }),
    '{"B":2,"a":3,"b":1,"é":4}',
  );
});

Deno.test("unserialisable values are refused", () => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.throws(
    () => canonicalJson(cyclic),
    (e: unknown) => e instanceof KanikoError && /cycle at \$\.self/.test(e.message),
  );
  assert.throws(() => canonicalJson({ n: NaN }), /non-finite number at \$\.n/);
  assert.throws(() => canonicalJson({ n: [1n] }), /bigint at \$\.n\[0\]/);
  assert.throws(() => canonicalJson(undefined), /not serialisable/);
  const shared = { a: 1 };
  assert.equal(canonicalJsonString({ x: shared, y: shared }), '{"x":{"a":1},"y":{"a":1}}');
});
