/**
 * Differential test: random words from a grammar over the POSIX subset BuildKit shares with
 * `sh` are expanded by {@link ShellLex.processWord} and by `/bin/sh` (dash here), which must
 * agree byte for byte.
 *
 * Each word is evaluated by sh as the value of an assignment, `x=WORD; printf '%s\001' "$x"`:
 * an assignment gets quote removal and parameter expansion but neither field splitting nor
 * pathname expansion, which is what processWord does.
 *
 * Left out of the grammar on purpose, because BuildKit intentionally differs from POSIX sh:
 * - `${v/p/r}`, `${v//p/r}`: not POSIX; `${v:?m}`, `${v?m}`: errors, tested in the table tests.
 * - Bracket expressions: BuildKit's patterns treat `[` literally, sh as a bracket expression.
 * - Quotes inside a pattern: sh matches quoted characters literally, BuildKit removes the
 *   quotes and keeps `*`/`?` as wildcards. Escapes in a pattern other than `\*`, `\?`, `\\`:
 *   sh drops the backslash, BuildKit rejects the pattern.
 * - Quotes or escapes in a `${v:-w}` word inside double quotes: sh keeps `'` and `\x`
 *   literally there, BuildKit processes them as at top level.
 * - `` ` ``, `$(`, `~`, `$'…'`, positional and special parameters (`$1`, `$10` is `$1` then
 *   `0` in sh, one name in BuildKit; `$$`, `$-` have values in sh), unicode letters right
 *   after `$name` (name characters for BuildKit, not for sh), `?` against non-ASCII values
 *   (dash matches bytes), newlines (BuildKit's `\` before a newline inside double quotes stays),
 *   and an escape at the very end of the word (sh would read a line continuation).
 * @module
 */
import assert from "node:assert/strict";
import { envFrom, ShellLex } from "../../lib/dockerfile/shell_lex.ts";

/** The variables set in both evaluators; `u` and `w` stay unset. */
const VARS: Record<string, string> = {
  a: "abc",
  b: "a*b?c",
  e: "",
  s: "x  y z",
  n: "archive.tar.gz",
  p: "/usr/local/bin",
  q: `it's "q" \\ $x`,
  k: "한국어 ✓",
};
/** Variables whose value is safe as a pattern and whose value may be trimmed with `?`. */
const PATTERN_VARS = ["a", "b", "e", "n", "p", "u"];
const ALL_VARS = [...Object.keys(VARS), "u", "w"];

const CASES = 500;
const BATCH = 100;
const SEPARATOR = "\u0001";

/** mulberry32: a small seeded PRNG, so every run tests the same words. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Characters by context. None of them is a newline, `` ` ``, `~` or `$`. */
const UNQUOTED = "abcxyz019._-/,:=+@%#!^*?[]{}";
const BRACE_WORD = "abcxyz019._-/,:=+@%#!^*?[]";
const ESCAPABLE = `abz09.-/ '"\\$*?{}#%|&;<>()[]=`;
const SINGLE_QUOTED = `abc xyz09.-/ "\\$*?{}#%|&;<>()[]=!한✓`;
const DOUBLE_QUOTED = "abc xyz09.-/ '*?{}#%|&;<>()[]=!한✓";
const PATTERN = "abcxyz019._-/,:=+@!^";

type Context = "top" | "brace" | "dq" | "dqbrace";

class Generator {
  constructor(private readonly rand: () => number) {}

  int(n: number): number {
    return Math.floor(this.rand() * n);
  }

  pick<T>(items: readonly T[] | string): T {
    return items[this.int(items.length)] as T;
  }

  chars(alphabet: string, min: number, max: number): string {
    let out = "";
    const len = min + this.int(max - min + 1);
    for (let i = 0; i < len; i++) out += this.pick<string>(alphabet);
    return out;
  }

  /** A whole word: 1–4 parts at top level. */
  word(): string {
    return this.parts("top", 1 + this.int(4), 0);
  }

  /** `count` parts in `context`, rendering `$name` as `${name}` when a name character follows. */
  parts(context: Context, count: number, depth: number): string {
    const parts: string[] = [];
    for (let i = 0; i < count; i++) parts.push(this.part(context, depth));
    let out = "";
    for (let i = parts.length - 1; i >= 0; i--) {
      let part = parts[i];
      const simple = /^\$([a-z])$/.exec(part);
      if (simple && /^[\p{L}\p{Nd}_]/u.test(out)) part = "${" + simple[1] + "}";
      if (part === "$" && !/^[./,:=]/.test(out)) part = "$/";
      out = part + out;
    }
    return out;
  }

  part(context: Context, depth: number): string {
    const roll = this.int(10);
    if (roll < 4 && depth < 3) return this.variable(context, depth);
    if (roll === 4) return "$"; // a lone dollar, followed by a character that is no name
    if (context === "dq" || context === "dqbrace") {
      if (context === "dq" && roll === 5) return "\\" + this.pick<string>(`$"\\abc.`);
      return this.chars(context === "dq" ? DOUBLE_QUOTED : BRACE_WORD, 1, 3);
    }
    if (roll === 5) return "\\" + this.pick<string>(ESCAPABLE);
    if (roll === 6) return "'" + this.chars(SINGLE_QUOTED, 0, 4) + "'";
    if (roll === 7) return '"' + this.parts("dq", this.int(4), depth + 1) + '"';
    return this.chars(context === "top" ? UNQUOTED : BRACE_WORD, 1, 3);
  }

  variable(context: Context, depth: number): string {
    const quoted = context === "dq" || context === "dqbrace";
    const roll = this.int(6);
    if (roll === 0) return "$" + this.pick(ALL_VARS);
    if (roll === 1) return "${" + this.pick(ALL_VARS) + "}";
    if (roll <= 3) {
      const op = this.pick([":-", "-", ":+", "+"]);
      const inner = this.parts(quoted ? "dqbrace" : "brace", this.int(3), depth + 1);
      return "${" + this.pick(ALL_VARS) + op + inner + "}";
    }
    const op = this.pick(["#", "##", "%", "%%"]);
    const name = this.pick(PATTERN_VARS);
    const pattern = this.int(3) === 0 ? this.pattern(depth) : this.derived(name, op[0]);
    return "${" + name + op + pattern + "}";
  }

  /** A pattern made from the variable's own value (prefix for `#`, suffix for `%`), so it matches often. */
  derived(name: string, op: string): string {
    const chars = [...(VARS[name] ?? "abc")];
    const len = this.int(chars.length + 1);
    const part = op === "#" ? chars.slice(0, len) : chars.slice(chars.length - len);
    let out = this.int(4) === 0 ? "*" : "";
    for (let i = 0; i < part.length; i++) {
      const roll = this.int(10);
      if (roll < 2) out += "?";
      else if (roll < 4) {
        out += "*";
        i += this.int(3);
      } else out += /[*?\\]/.test(part[i]) ? "\\" + part[i] : part[i];
    }
    return out + (this.int(4) === 0 ? "*" : "");
  }

  /** A pattern: literals, `*`, `?`, escaped wildcards and pattern-safe variables. */
  pattern(depth: number): string {
    let out = "";
    const count = this.int(4);
    for (let i = 0; i < count; i++) {
      const roll = this.int(8);
      if (roll === 0) out += "*";
      else if (roll === 1) out += "?";
      else if (roll === 2) out += "\\" + this.pick(["*", "?", "\\"]);
      else if (roll === 3 && depth < 3) out += "${" + this.pick(PATTERN_VARS) + "}";
      else out += this.chars(PATTERN, 1, 2);
    }
    return out;
  }
}

/** Evaluates the words with /bin/sh, one process per batch. */
async function shellValues(words: string[]): Promise<string[]> {
  const script = words.map((w) => `x=${w}; printf '%s\\001' "$x"`).join("\n");
  const { code, stdout, stderr } = await new Deno.Command("/bin/sh", {
    args: ["-c", script],
    env: VARS,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(stderr);
  assert.equal(code, 0, `sh failed: ${err}`);
  assert.equal(err, "");
  const values = new TextDecoder().decode(stdout).split(SEPARATOR);
  assert.equal(values.pop(), "");
  return values;
}

Deno.test({
  name: `differential: ${CASES} generated words, processWord vs /bin/sh`,
  ignore: Deno.build.os === "windows",
  async fn() {
    const gen = new Generator(prng(0x5eed));
    const words: string[] = [];
    const seen = new Set<string>();
    while (words.length < CASES) {
      const word = gen.word();
      if (seen.has(word)) continue;
      seen.add(word);
      words.push(word);
    }
    const lex = new ShellLex("\\");
    const env = envFrom(VARS);
    const mismatches: string[] = [];
    for (let i = 0; i < words.length; i += BATCH) {
      const batch = words.slice(i, i + BATCH);
      const expected = await shellValues(batch);
      assert.equal(expected.length, batch.length);
      batch.forEach((word, j) => {
        const actual = lex.processWord(word, env);
        if (actual !== expected[j]) {
          mismatches.push(
            `${JSON.stringify(word)}: sh ${JSON.stringify(expected[j])}, ours ${
              JSON.stringify(actual)
            }`,
          );
        }
      });
    }
    assert.deepEqual(mismatches, [], mismatches.slice(0, 20).join("\n"));
    // The grammar really exercises every construct.
    const all = words.join(" ");
    for (const op of [":-", "-", ":+", "+", "#", "##", "%", "%%", "'", '"', "\\"]) {
      assert.ok(all.includes(op), `no ${op} generated`);
    }
  },
});
