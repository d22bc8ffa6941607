/**
 * `.dockerignore` with Docker's exact semantics: the file is read as BuildKit's
 * `dockerignore.ReadAll` reads it and patterns are matched as `moby/patternmatcher` matches them
 * (`MatchesOrParentMatches`, the matcher BuildKit's context transfer and Kaniko both use).
 *
 * Reading: a UTF-8 BOM is dropped; a line whose FIRST character is `#` is a comment (`  # x` is
 * a pattern); lines are trimmed (Go's `TrimSpace`); empty lines are skipped; `!` marks an
 * exception (spaces after it are trimmed too); each pattern is cleaned with Go's `path.Clean`
 * (`./a/../b/` → `b`) and one leading `/` is removed.
 *
 * Matching: patterns are evaluated in order and the last one that matches a path decides, so
 * `*.md` + `!README.md` keeps `README.md`. A pattern that matches a directory matches everything
 * below it. `*`, `?` and `[...]` never cross `/`; `**` matches any number of directories
 * (including none). Patterns are compiled to regular expressions exactly as patternmatcher does,
 * including its shortcuts (`dir/**` is a prefix test, a pattern starting with `**` such as
 * `**file` or `**.go` is a suffix test on the whole path).
 * @module
 */
import { KanikoError } from "../errors.ts";
import { BadPatternError, cleanPath, validatePattern } from "./pattern.ts";

/** How a compiled pattern is tested (patternmatcher's `matchType`). */
type MatchType = "exact" | "prefix" | "suffix" | "regexp";

/** One cleaned pattern. */
interface Pattern {
  /** The pattern without its `!`. */
  text: string;
  /** An exception (`!pattern`): a match re-includes. */
  exclusion: boolean;
  type: MatchType;
  regexp?: RegExp;
  /** Where it came from, for errors. */
  where: string;
}

/** Per-pattern results for a directory, handed to its children (patternmatcher's `MatchInfo`). */
export type ParentMatches = readonly boolean[];

const MAX_LINE = 64 * 1024;

/** The `.dockerignore` rules in force for a build context. */
export class IgnoreMatcher {
  readonly #patterns: Pattern[] = [];
  readonly #hasExclusions: boolean;
  readonly #onlyPrefixExceptions: boolean;
  /** Where the rules came from (a file path), or undefined. */
  readonly source?: string;

  /**
   * Rules from patterns as `patternmatcher.New` takes them: each is trimmed, cleaned, and a
   * leading `!` makes it an exception. Throws a {@link KanikoError} on a malformed pattern.
   */
  constructor(patterns: readonly string[], source?: string, lines?: readonly number[]) {
    this.source = source;
    patterns.forEach((raw, i) => {
      const where = `${source ?? ".dockerignore"}${lines ? `:${lines[i]}` : ""}`;
      let text = goTrimSpace(raw);
      if (text === "") return;
      text = cleanPath(text);
      let exclusion = false;
      if (text[0] === "!") {
        if (text.length === 1) {
          throw new KanikoError(`${where}: illegal exclusion pattern "!"`, {
            hint: "write the pattern to re-include after the !",
          });
        }
        exclusion = true;
        text = text.slice(1);
      }
      try {
        validatePattern(text);
      } catch (e) {
        if (e instanceof BadPatternError) throw badPattern(where, raw);
        throw e;
      }
      const compiled = compile(text);
      if (compiled.type === "regexp" && !compiled.regexp) throw badPattern(where, raw);
      this.#patterns.push({ text, exclusion, where, ...compiled });
    });
    const exceptions = this.#patterns.filter((p) => p.exclusion);
    this.#hasExclusions = exceptions.length > 0;
    this.#onlyPrefixExceptions = exceptions.every((p) =>
      !/[*[\]?^\\]/.test(withoutTrailingGlob(p.text))
    );
  }

  /** Rules from the text of a `.dockerignore` file (`source` names it in errors). */
  static parse(text: string, source = ".dockerignore"): IgnoreMatcher {
    const { patterns, lines } = readIgnoreLines(text, source);
    return new IgnoreMatcher(patterns, source, lines);
  }

  /** No rules: nothing is excluded. */
  static empty(): IgnoreMatcher {
    return new IgnoreMatcher([]);
  }

  /** The cleaned patterns, exceptions with their `!`. */
  get patterns(): string[] {
    return this.#patterns.map((p) => (p.exclusion ? "!" : "") + p.text);
  }

  /** Whether there is any rule at all. */
  get isEmpty(): boolean {
    return this.#patterns.length === 0;
  }

  /** Whether any rule is an exception (`!`). */
  get hasExceptions(): boolean {
    return this.#hasExclusions;
  }

  /**
   * True when `path` (slash-separated, relative to the context root) is excluded: the last
   * pattern matching it or one of its parent directories is not an exception. The root
   * itself (`.`) is never excluded.
   */
  matches(path: string): boolean {
    const file = normalize(path);
    if (file === ".") return false;
    const parents = parentPrefixes(file);
    let matched = false;
    for (const p of this.#patterns) {
      if (p.exclusion !== matched) continue;
      let hit = test(p, file);
      if (!hit) {
        for (const parent of parents) {
          if (test(p, parent)) {
            hit = true;
            break;
          }
        }
      }
      if (hit) matched = !p.exclusion;
    }
    return matched;
  }

  /**
   * As {@link matches}, reusing the per-pattern results of the parent directory (for walks;
   * patternmatcher's `MatchesUsingParentResults`). Pass `undefined` for a top-level entry.
   */
  matchesWithParent(
    path: string,
    parent: ParentMatches | undefined,
  ): { excluded: boolean; info: ParentMatches } {
    const file = normalize(path);
    const info: boolean[] = new Array(this.#patterns.length).fill(false);
    let matched = false;
    this.#patterns.forEach((p, i) => {
      let hit = parent ? parent[i] : false;
      if (!hit) {
        if (p.exclusion !== matched) return;
        hit = test(p, file);
        if (!hit && !parent) hit = parentPrefixes(file).some((d) => test(p, d));
      }
      info[i] = hit;
      if (hit) matched = !p.exclusion;
    });
    return { excluded: file !== "." && matched, info };
  }

  /**
   * True when the excluded directory `dir` may hold paths that an exception re-includes, so a
   * walk must look inside it (BuildKit's rule: always when an exception has wildcards besides a
   * trailing `/*` or `/**`, else when an exception names a path under `dir`).
   */
  mayContainExceptions(dir: string): boolean {
    if (!this.#hasExclusions) return false;
    if (!this.#onlyPrefixExceptions) return true;
    const d = normalize(dir);
    if (d === ".") return true;
    const prefix = d + "/";
    return this.#patterns.some((p) =>
      p.exclusion && (withoutTrailingGlob(p.text) + "/").startsWith(prefix)
    );
  }
}

/**
 * BuildKit's `dockerignore.ReadAll`: the patterns of an ignore file, with their line numbers.
 * Exceptions keep their `!`; `!` alone is kept (and rejected by the matcher).
 */
export function readIgnoreLines(
  text: string,
  source = ".dockerignore",
): { patterns: string[]; lines: number[] } {
  const patterns: string[] = [];
  const lines: number[] = [];
  const all = text.split("\n");
  if (all.length > 0 && all[all.length - 1] === "") all.pop();
  all.forEach((rawLine, index) => {
    let line = rawLine.endsWith("\r") ? rawLine.slice(0, -1) : rawLine;
    if (index === 0 && line.startsWith("\uFEFF")) line = line.slice(1);
    if (line.length * 3 >= MAX_LINE && new TextEncoder().encode(line).length >= MAX_LINE) {
      throw new KanikoError(`${source}:${index + 1}: line is longer than 64 KiB`, {
        hint: "Docker cannot read such a line either; shorten it",
      });
    }
    if (line.startsWith("#")) return;
    let pattern = goTrimSpace(line);
    if (pattern === "") return;
    const invert = pattern[0] === "!";
    if (invert) pattern = goTrimSpace(pattern.slice(1));
    if (pattern.length > 0) {
      pattern = cleanPath(pattern);
      if (pattern.length > 1 && pattern[0] === "/") pattern = pattern.slice(1);
    }
    patterns.push(invert ? "!" + pattern : pattern);
    lines.push(index + 1);
  });
  return { patterns, lines };
}

function badPattern(where: string, raw: string): KanikoError {
  return new KanikoError(
    `${where}: invalid pattern ${JSON.stringify(goTrimSpace(raw))}: syntax error in pattern`,
    { hint: "check the brackets and escapes (Go filepath.Match syntax)" },
  );
}

function normalize(path: string): string {
  let p = cleanPath(path);
  while (p.startsWith("/")) p = p.slice(1);
  return p === "" ? "." : p;
}

/** `a`, `a/b` for `a/b/c` (the parent directories, outermost first). */
function parentPrefixes(file: string): string[] {
  const out: string[] = [];
  let i = file.indexOf("/");
  while (i !== -1) {
    out.push(file.slice(0, i));
    i = file.indexOf("/", i + 1);
  }
  return out;
}

function test(p: Pattern, path: string): boolean {
  switch (p.type) {
    case "exact":
      return path === p.text;
    case "prefix":
      return path.startsWith(p.text.slice(0, -2));
    case "suffix": {
      const suffix = p.text.slice(2);
      if (path.endsWith(suffix)) return true;
      return suffix[0] === "/" && path === suffix.slice(1);
    }
    case "regexp":
      return p.regexp!.test(path);
  }
}

function withoutTrailingGlob(text: string): string {
  let t = text;
  if (t.endsWith("/**")) t = t.slice(0, -3);
  if (t.endsWith("/*")) t = t.slice(0, -2);
  return t;
}

// Characters escaped by patternmatcher because they are regexp syntax but plain in a pattern.
const PLAIN_SPECIALS = new Set([".", "+", "(", ")", "|", "{", "}", "$"]);

/**
 * patternmatcher's `compile`: the match type and (for `regexp`) the Go regular expression,
 * translated to JavaScript. Undefined `regexp` for a `regexp` type means the expression does not
 * compile (Docker then fails with ErrBadPattern).
 */
function compile(pattern: string): { type: MatchType; regexp?: RegExp } {
  const chars = Array.from(pattern);
  let re = "^";
  let type: MatchType = "exact";
  let pos = 0;
  const peek = () => chars[pos];
  for (let i = 0; pos < chars.length; i++) {
    const ch = chars[pos++];
    if (ch === "*") {
      if (peek() === "*") {
        pos++;
        if (peek() === "/") pos++; // treat **/ as **
        if (pos >= chars.length) {
          // "**" at the end: everything below, as in .gitignore
          if (type === "exact") type = "prefix";
          else {
            re += ".*";
            type = "regexp";
          }
        } else {
          re += "(.*/)?";
          type = "regexp";
        }
        if (i === 0) type = "suffix";
      } else {
        re += "[^/]*";
        type = "regexp";
      }
    } else if (ch === "?") {
      re += "[^/]";
      type = "regexp";
    } else if (PLAIN_SPECIALS.has(ch)) {
      re += "\\" + ch;
    } else if (ch === "\\") {
      if (pos < chars.length) {
        re += "\\" + chars[pos++];
        type = "regexp";
      } else {
        re += "\\";
      }
    } else if (ch === "[" || ch === "]") {
      re += ch;
      type = "regexp";
    } else {
      re += ch;
    }
  }
  if (type !== "regexp") return { type };
  re += "$";
  return { type, regexp: goRegexp(re) };
}

/**
 * Translates the Go (RE2) regular expression patternmatcher builds into an equivalent JavaScript
 * one: classes (with RE2's literal `[` and leading `]` inside them, and POSIX `[:name:]`), RE2
 * escapes, and literal `]` outside classes. Undefined when RE2 would reject it too.
 */
export function goRegexp(source: string): RegExp | undefined {
  const s = Array.from(source);
  let out = "";
  let i = 0;
  let inClass = false;
  try {
    while (i < s.length) {
      const ch = s[i++];
      if (inClass) {
        if (ch === "]") {
          out += "]";
          inClass = false;
        } else if (ch === "\\") {
          if (i >= s.length) return undefined;
          const esc = goEscape(s, i, true);
          if (!esc) return undefined;
          out += esc.js;
          i = esc.next;
        } else if (ch === "[" && s[i] === ":") {
          const end = findPosixEnd(s, i + 1);
          if (end < 0) {
            out += "\\[";
          } else {
            const name = s.slice(i + 1, end).join("");
            const js = POSIX[name];
            if (js === undefined) return undefined;
            out += js;
            i = end + 2;
          }
        } else if (ch === "[" || ch === "/") {
          out += "\\" + ch;
        } else {
          out += ch;
        }
        continue;
      }
      switch (ch) {
        case "[":
          out += "[";
          inClass = true;
          if (s[i] === "^") {
            out += "^";
            i++;
          }
          if (s[i] === "]") {
            out += "\\]"; // RE2: a ] first in a class is a member
            i++;
          }
          break;
        case "]":
          out += "\\]";
          break;
        case "\\": {
          if (i >= s.length) return undefined; // trailing backslash: RE2 rejects it
          const esc = goEscape(s, i, false);
          if (!esc) return undefined;
          out += esc.js;
          i = esc.next;
          break;
        }
        case "/":
          out += "\\/";
          break;
        default:
          out += ch;
      }
    }
    if (inClass) return undefined;
    return new RegExp(out, "u");
  } catch {
    return undefined;
  }
}

function findPosixEnd(s: string[], from: number): number {
  for (let j = from; j + 1 < s.length; j++) {
    if (s[j] === ":" && s[j + 1] === "]") return j;
    if (!/[a-z^]/.test(s[j])) return -1;
  }
  return -1;
}

const POSIX: Record<string, string> = {
  alnum: "0-9A-Za-z",
  alpha: "A-Za-z",
  ascii: "\\x00-\\x7F",
  blank: "\\t ",
  cntrl: "\\x00-\\x1F\\x7F",
  digit: "0-9",
  graph: "!-~",
  lower: "a-z",
  print: " -~",
  punct: "!-\\/:-@\\[-`{-~",
  space: "\\t\\n\\v\\f\\r ",
  upper: "A-Z",
  word: "0-9A-Za-z_",
  xdigit: "0-9A-Fa-f",
};

const JS_SYNTAX = new Set([
  "^",
  "$",
  "\\",
  ".",
  "*",
  "+",
  "?",
  "(",
  ")",
  "[",
  "]",
  "{",
  "}",
  "|",
  "/",
]);

/** One RE2 escape at `s[at]` (after the backslash) as JavaScript; undefined when RE2 rejects it. */
function goEscape(
  s: string[],
  at: number,
  inClass: boolean,
): { js: string; next: number } | undefined {
  const c = s[at];
  if (!/[0-9A-Za-z]/.test(c)) {
    // Punctuation (and any non-ASCII character) escapes to itself.
    if (JS_SYNTAX.has(c) || (inClass && c === "-")) return { js: "\\" + c, next: at + 1 };
    if (c.codePointAt(0)! > 0x7f) return undefined; // RE2: invalid escape
    return { js: c, next: at + 1 };
  }
  switch (c) {
    case "a":
      return { js: "\\x07", next: at + 1 };
    case "f":
    case "t":
    case "n":
    case "r":
    case "v":
    case "d":
    case "D":
    case "w":
    case "W":
      return { js: "\\" + c, next: at + 1 };
    case "s":
      return { js: inClass ? "\\t\\n\\f\\r " : "[\\t\\n\\f\\r ]", next: at + 1 };
    case "S":
      return inClass ? undefined : { js: "[^\\t\\n\\f\\r ]", next: at + 1 };
    case "b":
    case "B":
      return inClass ? undefined : { js: "\\" + c, next: at + 1 };
    case "A":
      return inClass ? undefined : { js: "^", next: at + 1 };
    case "z":
      return inClass ? undefined : { js: "$", next: at + 1 };
    case "p":
    case "P": {
      if (s[at + 1] === "{") {
        const end = s.indexOf("}", at + 2);
        if (end < 0) return undefined;
        return { js: `\\${c}{${s.slice(at + 2, end).join("")}}`, next: end + 1 };
      }
      if (at + 1 >= s.length) return undefined;
      return { js: `\\${c}{${s[at + 1]}}`, next: at + 2 };
    }
    case "x": {
      if (s[at + 1] === "{") {
        const end = s.indexOf("}", at + 2);
        if (end < 0) return undefined;
        const hex = s.slice(at + 2, end).join("");
        if (!/^[0-9A-Fa-f]+$/.test(hex)) return undefined;
        return { js: `\\u{${hex}}`, next: end + 1 };
      }
      const hex = s.slice(at + 1, at + 3).join("");
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return undefined;
      return { js: `\\x${hex}`, next: at + 3 };
    }
    default:
      return undefined; // backreferences, octal and other escapes: not supported here
  }
}

/** Go's `strings.TrimSpace` (Unicode White_Space; unlike `String.trim`, keeps U+FEFF). */
export function goTrimSpace(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && isGoSpace(text.charCodeAt(start))) start++;
  while (end > start && isGoSpace(text.charCodeAt(end - 1))) end--;
  return text.slice(start, end);
}

function isGoSpace(c: number): boolean {
  return (c >= 0x09 && c <= 0x0d) || c === 0x20 || c === 0x85 || c === 0xa0 ||
    c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 ||
    c === 0x202f || c === 0x205f || c === 0x3000;
}
