/**
 * Go `path.Clean` and `path/filepath.Match` ports: Go's own test table (match_test.go) plus
 * edge cases of classes, negation and escapes.
 */
import assert from "node:assert/strict";
import {
  BadPatternError,
  cleanPath,
  compareCodePoints,
  goMatch,
  hasWildcards,
  validatePattern,
} from "../../lib/context/pattern.ts";
import { BAD, GO_MATCH_TESTS } from "./_go_match_tests.ts";

// Further edge cases (same semantics as Go on Unix).
const EXTRA_TESTS: [string, string, boolean | typeof BAD][] = [
  // [!a] is NOT a negation in Go: ! is an ordinary member of the class.
  ["[!a]", "!", true],
  ["[!a]", "a", true],
  ["[!a]", "b", false],
  ["[^a]", "b", true],
  ["[^a]", "a", false],
  ["[^a]", "/", true], // a class may match the separator (Go does not exclude it)
  ["[a-c][0-9]", "b7", true],
  ["[a-c][0-9]", "d7", false],
  ["[z-a]", "m", false], // an empty range matches nothing but is well formed
  ["\\[x]", "[x]", true],
  ["\\a", "a", true],
  ["a\\", "a\\", BAD], // a trailing backslash
  ["a\\\\", "a\\", true],
  ["*", ".hidden", true], // * matches leading dots
  ["*", "", true],
  ["?", "", false],
  ["", "", true],
  ["", "a", false],
  ["a*", "a/", false],
  ["*/b", "a/b", true],
  ["**", "a/b", false], // no ** in Go: two stars are one
  ["[☺]", "☺", true],
  ["x[", "y", BAD], // the mismatch comes first, the syntax check still fails
  ["x*y[", "xy", BAD],
];

Deno.test("goMatch: Go's filepath.Match table", () => {
  for (const [pattern, name, want] of GO_MATCH_TESTS) {
    check(pattern, name, want);
  }
});

Deno.test("goMatch: classes, negation, escapes and other edges", () => {
  for (const [pattern, name, want] of EXTRA_TESTS) {
    check(pattern, name, want);
  }
});

function check(pattern: string, name: string, want: boolean | typeof BAD) {
  const desc = `Match(${JSON.stringify(pattern)}, ${JSON.stringify(name)})`;
  if (want === BAD) {
    assert.throws(() => goMatch(pattern, name), BadPatternError, desc);
  } else {
    assert.equal(goMatch(pattern, name), want, desc);
  }
}

Deno.test("validatePattern: throws BadPatternError with the pattern", () => {
  validatePattern("a*[bc]?");
  assert.throws(() => validatePattern("ab\\"), (e) => {
    assert.ok(e instanceof BadPatternError);
    assert.equal(e.pattern, "ab\\");
    assert.match(e.message, /syntax error in pattern/);
    return true;
  });
});

Deno.test("cleanPath: Go's path.Clean", () => {
  const cases: [string, string][] = [
    ["", "."],
    [".", "."],
    ["/", "/"],
    ["//", "/"],
    ["abc", "abc"],
    ["abc/", "abc"],
    ["a//b", "a/b"],
    ["./a", "a"],
    ["a/./b", "a/b"],
    ["a/../b", "b"],
    ["a/b/..", "a"],
    ["..", ".."],
    ["../..", "../.."],
    ["../a/..", ".."],
    ["/..", "/"],
    ["/../a", "/a"],
    ["a/../..", ".."],
    ["/a/b/../../../c", "/c"],
    ["abc/def/../../..", ".."],
    ["!./foo", "!./foo"],
  ];
  for (const [input, want] of cases) assert.equal(cleanPath(input), want, input);
});

Deno.test("hasWildcards: unescaped *, ? and [ only", () => {
  assert.equal(hasWildcards("a/b.txt"), false);
  assert.equal(hasWildcards("*.txt"), true);
  assert.equal(hasWildcards("a?"), true);
  assert.equal(hasWildcards("[ab]"), true);
  assert.equal(hasWildcards("a\\*b"), false);
  assert.equal(hasWildcards("a\\\\*"), true);
  assert.equal(hasWildcards("]"), false);
});

Deno.test("compareCodePoints: Go string order", () => {
  const names = ["b", "a", "B", "é", "😀", "\uffff", "a/b", "a-b", "aa"];
  const sorted = [...names].sort(compareCodePoints);
  const bytes = [...names].sort((x, y) => {
    const a = new TextEncoder().encode(x);
    const b = new TextEncoder().encode(y);
    for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
    return a.length - b.length;
  });
  assert.deepEqual(sorted, bytes);
});
