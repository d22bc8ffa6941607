/**
 * BuildKit's own parser corpus (`frontend/dockerfile/parser/testfiles*`, vendored under
 * `testdata/buildkit/`, see its NOTICE): every `testfiles/<case>/Dockerfile` must give exactly
 * the `result` dump, every `testfiles-negative/<case>/Dockerfile` must fail with one error line,
 * and `testfile-line/Dockerfile` must give BuildKit's line numbers.
 *
 * The dump is made from `parse --raw`'s data alone (keyword, flags, `args` — or `rawArgs` for
 * ENV, LABEL and ARG, which BuildKit shows before quote removal — and the nested ONBUILD
 * instruction), so a match means that output carries what BuildKit's tree carries.
 */
import assert from "node:assert/strict";
import { dumpDockerfile } from "../../lib/dockerfile/dump.ts";
import { parseDockerfile } from "../../lib/dockerfile/parser.ts";
import { unquote } from "../../lib/dockerfile/words.ts";
import { parseError } from "./_parser_helpers.ts";

const BASE = new URL("./testdata/buildkit/", import.meta.url);

function caseDirs(dir: string): string[] {
  return [...Deno.readDirSync(new URL(dir, BASE))]
    .filter((e) => e.isDirectory)
    .map((e) => e.name)
    .sort();
}

const positive = caseDirs("testfiles/");
const negative = caseDirs("testfiles-negative/");

Deno.test("BuildKit corpus: the vendored cases are all there", () => {
  assert.ok(positive.length >= 33, `${positive.length} cases`);
  assert.deepEqual(negative, ["env_no_value", "shykes-nested-json"]);
});

for (const name of positive) {
  Deno.test(`BuildKit corpus: ${name}`, () => {
    const dockerfile = Deno.readTextFileSync(new URL(`testfiles/${name}/Dockerfile`, BASE));
    const result = Deno.readTextFileSync(new URL(`testfiles/${name}/result`, BASE));
    const df = parseDockerfile(dockerfile);
    assert.equal(dumpDockerfile(df), result);
    // `args` of ENV/LABEL are BuildKit's values with the quotes removed.
    for (const ins of df.instructions) {
      if (ins.keyword !== "ENV" && ins.keyword !== "LABEL") continue;
      assert.deepEqual(ins.args, ins.rawArgs?.map((v) => unquote(v, df.escape).value));
    }
  });
}

for (const name of negative) {
  Deno.test(`BuildKit corpus (negative): ${name}`, () => {
    const dockerfile = Deno.readTextFileSync(
      new URL(`testfiles-negative/${name}/Dockerfile`, BASE),
    );
    assert.match(parseError(dockerfile).message, /^Dockerfile:\d+: [A-Z]+: /);
  });
}

Deno.test("BuildKit corpus: testfile-line line numbers", () => {
  const df = parseDockerfile(Deno.readTextFileSync(new URL("testfile-line/Dockerfile", BASE)));
  assert.deepEqual(df.instructions.map((i) => [i.line, i.endLine]), [[5, 5], [11, 12], [17, 31]]);
  assert.deepEqual(df.directives, { escape: "\\" });
});

Deno.test("BuildKit notation with the key/value separators of current BuildKit", () => {
  const df = parseDockerfile("FROM a\nENV a=b c=d\nENV k v w\nLABEL x=y\n");
  assert.equal(
    dumpDockerfile(df, { keyValueSeparators: true }),
    '(from "a")\n(env "a" "b" "=" "c" "d" "=")\n(env "k" "v w" "")\n(label "x" "y" "=")\n',
  );
});

Deno.test("BuildKit's empty-continuation warning cases", () => {
  const df = parseDockerfile(
    "\nFROM alpine:3.6\n\nRUN valid \\\n    continuation\n\nRUN something \\\n\n    following \\\n\n" +
      "    more\n\nRUN another \\\n\n    thing\n\nRUN non-indented \\\n# this is a comment\n" +
      "   after-comment\n\nRUN indented \\\n    # this is an indented comment\n    comment\n\t",
  );
  assert.equal(df.warnings.length, 2);
  assert.deepEqual(df.instructions.map((i) => i.args[0]), [
    "alpine:3.6",
    "valid     continuation",
    "something     following     more",
    "another     thing",
    "non-indented    after-comment",
    "indented     comment",
  ]);
});
