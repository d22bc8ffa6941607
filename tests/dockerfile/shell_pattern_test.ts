/**
 * Tests of the glob matcher behind `${v#p}`, `${v%p}`, `${v/p/r}`: a property test against a
 * reference built on JavaScript regular expressions (leftmost-first backtracking, like Go's
 * regexp on these patterns), and BuildKit's own conversion and reversal cases.
 * @module
 */
import assert from "node:assert/strict";
import {
  PatternError,
  replaceAll,
  replaceFirst,
  trimPrefix,
  trimSuffix,
} from "../../lib/dockerfile/shell_pattern.ts";

/** BuildKit's pattern-to-regexp conversion, as a JavaScript RegExp source (reference only). */
function referenceSource(pattern: string[], greedy: boolean): string {
  let out = "";
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === "*") out += greedy ? "[^\\n]*" : "[^\\n]*?";
    else if (ch === "?") out += "[^\\n]";
    else if (ch === "\\") {
      const next = pattern[i + 1];
      if (next === "}" || next === "/") continue;
      i++;
      if (next !== "*" && next !== "?" && next !== "\\") throw new PatternError("invalid escape");
      out += "\\" + next;
    } else out += ch.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&");
  }
  return out;
}

function refTrimPrefix(pattern: string[], value: string, greedy: boolean): string {
  const m = new RegExp("^(?:" + referenceSource(pattern, greedy) + ")", "u").exec(value);
  return m ? value.slice(m[0].length) : value;
}

function refReverse(pattern: string[]): string[] {
  const out = new Array<string>(pattern.length);
  const last = pattern.length - 1;
  for (let i = 0; i <= last;) {
    if (pattern[i] === "\\" && i !== last) {
      out[last - i - 1] = "\\";
      out[last - i] = pattern[i + 1];
      i += 2;
    } else {
      out[last - i] = pattern[i];
      i++;
    }
  }
  return out;
}

function refTrimSuffix(pattern: string[], value: string, greedy: boolean): string {
  const reversed = [...value].reverse().join("");
  return [...refTrimPrefix(refReverse(pattern), reversed, greedy)].reverse().join("");
}

/** Go's ReplaceAllString loop over the reference RegExp (template expansion left out). */
function refReplaceAll(pattern: string[], value: string, replacement: string): string {
  const re = new RegExp(referenceSource(pattern, true), "gu");
  let out = "", lastEnd = 0, searchPos = 0;
  while (searchPos <= value.length) {
    re.lastIndex = searchPos;
    const m = re.exec(value);
    if (!m) break;
    const start = m.index, end = m.index + m[0].length;
    out += value.slice(lastEnd, start);
    if (end > lastEnd || start === 0) out += replacement;
    lastEnd = end;
    const width = searchPos < value.length ? (value.codePointAt(searchPos)! > 0xffff ? 2 : 1) : 0;
    if (searchPos + width > end) searchPos += width;
    else if (searchPos + 1 > end) searchPos++;
    else searchPos = end;
  }
  return out + value.slice(lastEnd);
}

function refReplaceFirst(pattern: string[], value: string, replacement: string): string {
  const m = new RegExp(referenceSource(pattern, true), "u").exec(value);
  return m ? value.slice(0, m.index) + replacement + value.slice(m.index + m[0].length) : value;
}

Deno.test("matcher agrees with a leftmost-first regexp reference on random inputs", () => {
  let seed = 0xc0ffee;
  const rand = (n: number) => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed % n;
  };
  const patternAlphabet = ["a", "b", "*", "*", "?", "\\*", "\\?", "\\\\", "\n", "é", "[", "."];
  const valueAlphabet = ["a", "b", "a", "*", "?", "\\", "\n", "é", "😀", "[", "."];
  let compared = 0;
  for (let i = 0; i < 4000; i++) {
    const pattern: string[] = [];
    for (let j = rand(6); j > 0; j--) {
      pattern.push(...patternAlphabet[rand(patternAlphabet.length)]);
    }
    let value = "";
    for (let j = rand(10); j > 0; j--) value += valueAlphabet[rand(valueAlphabet.length)];
    const p = pattern.join("");
    for (const greedy of [false, true]) {
      assert.equal(
        trimPrefix(p, value, greedy),
        refTrimPrefix(pattern, value, greedy),
        `#${p} ${value}`,
      );
      assert.equal(
        trimSuffix(p, value, greedy),
        refTrimSuffix(pattern, value, greedy),
        `%${p} ${value}`,
      );
    }
    assert.equal(
      replaceFirst(p, value, "<>"),
      refReplaceFirst(pattern, value, "<>"),
      `/${p} ${value}`,
    );
    assert.equal(
      replaceAll(p, value, "<>"),
      refReplaceAll(pattern, value, "<>"),
      `//${p} ${value}`,
    );
    compared++;
  }
  assert.equal(compared, 4000);
});

Deno.test("BuildKit conversion cases: escapes, regexp metacharacters are literal", () => {
  assert.equal(trimPrefix("\\*", "*x", true), "x");
  assert.equal(trimPrefix("(()[]{\\}^$.\\*\\?|\\\\", "(()[]{}^$.*?|\\x", true), "x");
  for (const bad of ["\\", "\\x", "\\\\\\"]) {
    assert.throws(() => trimPrefix(bad, "x", true), PatternError, bad);
  }
});

Deno.test("suffix trimming reverses the pattern keeping escape pairs (BuildKit's reversePattern)", () => {
  assert.equal(trimSuffix("a\\*c", "xa*c", false), "x"); // pattern reversed to c\*a
  // `\\\ab` reverses to `b\a\\`, whose `\a` is invalid, like the forward pattern
  assert.throws(() => trimSuffix("\\\\\\ab", "x", false), PatternError);
  assert.equal(trimSuffix("*\\", "ab*", false), "ab"); // `*\` reverses to `\*`: a literal star
  assert.throws(() => trimSuffix("👽\\🚀🖖", "x", false), PatternError); // `\🚀` both ways
  assert.equal(trimSuffix("🚀?", "x👽🚀🖖", false), "x👽");
});

Deno.test("replaceAll follows Go: empty matches after a match are skipped, $0 is the match", () => {
  assert.equal(replaceAll("*", "abc", "X"), "X");
  assert.equal(replaceAll("", "ab", "-"), "-a-b-");
  assert.equal(replaceAll("", "", "-"), "-");
  assert.equal(replaceAll("b", "abab", "[$0]"), "a[b]a[b]");
  assert.equal(replaceAll("b", "abab", "[${0}]"), "a[b]a[b]");
  assert.equal(replaceAll("b", "abab", "$$"), "a$a$");
  assert.equal(replaceAll("b", "abab", "$1$x${y}$"), "a$a$");
  assert.equal(replaceAll("b", "abab", "${0"), "a${0a${0");
  assert.equal(replaceAll("b", "abab", "$00"), "aa");
  assert.equal(replaceFirst("b", "abab", "[$0]"), "a[$0]ab");
  assert.equal(replaceAll("?", "a😀", "."), "..");
});
