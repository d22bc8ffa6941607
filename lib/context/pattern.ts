/**
 * Go's path semantics, ported: `path.Clean` ({@link cleanPath}) and `path/filepath.Match`
 * ({@link goMatch}) with `/` as the separator, as Docker (BuildKit, Kaniko) applies them to COPY
 * sources and `.dockerignore` patterns.
 *
 * Match syntax (Go's): `*` any run of non-`/` characters (leading dots included), `?` one non-`/`
 * character, `[...]` a non-empty class with ranges `a-z` and negation `[^...]` (`[!...]` is NOT a
 * negation in Go: `!` is an ordinary member), `\c` the literal `c` (in and out of classes).
 * Malformed patterns (`[`, `[]a]`, `[-]`, `[a-b-c]`, a trailing `\`) raise
 * {@link BadPatternError}, Go's `ErrBadPattern`, even when the text before the error already failed
 * to match (Go validates the rest of the pattern).
 * @module
 */

/** Go's `filepath.ErrBadPattern`: the pattern is malformed. */
export class BadPatternError extends Error {
  /** The malformed pattern. */
  readonly pattern: string;
  constructor(pattern: string) {
    super(`syntax error in pattern ${JSON.stringify(pattern)}`);
    this.name = "BadPatternError";
    this.pattern = pattern;
  }
}

/**
 * Go's `path.Clean`: collapses repeated `/`, removes `.` elements, resolves `..` against the
 * element before it (a `..` at the start of a rooted path is dropped), removes trailing `/`;
 * `""` becomes `"."`.
 */
export function cleanPath(p: string): string {
  if (p === "") return ".";
  const rooted = p.startsWith("/");
  const out: string[] = [];
  for (const seg of p.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!rooted) out.push("..");
      continue;
    }
    out.push(seg);
  }
  const joined = out.join("/");
  if (rooted) return "/" + joined;
  return joined === "" ? "." : joined;
}

/**
 * Whether `name` contains an unescaped `*`, `?` or `[` (BuildKit's `containsWildcards`: a `\`
 * skips the next character, so `a\*b` is a literal name).
 */
export function hasWildcards(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = name[i];
    if (c === "\\") i++;
    else if (c === "*" || c === "?" || c === "[") return true;
  }
  return false;
}

/**
 * Go's `filepath.Match(pattern, name)` on Unix. Returns whether the whole of `name` matches;
 * throws {@link BadPatternError} for a malformed pattern.
 */
export function goMatch(pattern: string, name: string): boolean {
  let pat = Array.from(pattern);
  let s = Array.from(name);
  outer: while (pat.length > 0) {
    const { star, chunk, rest } = scanChunk(pat);
    pat = rest;
    if (star && chunk.length === 0) {
      // A trailing * matches the rest of the name unless it holds a /.
      return !s.includes("/");
    }
    const first = matchChunk(chunk, s, pattern);
    if (first !== null && (first.length === 0 || pat.length > 0)) {
      s = first;
      continue;
    }
    if (star) {
      // Try skipping i+1 characters; a star cannot skip a /.
      for (let i = 0; i < s.length && s[i] !== "/"; i++) {
        const t = matchChunk(chunk, s.slice(i + 1), pattern);
        if (t !== null) {
          if (pat.length === 0 && t.length > 0) continue; // the last chunk must end the name
          s = t;
          continue outer;
        }
      }
    }
    // Before answering false, make sure the rest of the pattern is well formed (as Go does).
    while (pat.length > 0) {
      const next = scanChunk(pat);
      pat = next.rest;
      matchChunk(next.chunk, [], pattern);
    }
    return false;
  }
  return s.length === 0;
}

/** Throws {@link BadPatternError} unless `pattern` is a well-formed Go match pattern. */
export function validatePattern(pattern: string): void {
  goMatch(pattern, ".");
}

/** Splits off the leading stars and the following star-free chunk (Go's `scanChunk`). */
function scanChunk(pattern: string[]): { star: boolean; chunk: string[]; rest: string[] } {
  let p = 0;
  let star = false;
  while (p < pattern.length && pattern[p] === "*") {
    p++;
    star = true;
  }
  let inRange = false;
  let i = p;
  scan: for (; i < pattern.length; i++) {
    switch (pattern[i]) {
      case "\\":
        if (i + 1 < pattern.length) i++; // a trailing \ is reported by matchChunk
        break;
      case "[":
        inRange = true;
        break;
      case "]":
        inRange = false;
        break;
      case "*":
        if (!inRange) break scan;
    }
  }
  return { star, chunk: pattern.slice(p, i), rest: pattern.slice(i) };
}

/**
 * Matches a star-free chunk against the start of `s`: the rest of `s`, or null when it does not
 * match. Keeps parsing after a mismatch so that a malformed chunk always throws.
 */
function matchChunk(chunk: string[], s: string[], whole: string): string[] | null {
  let failed = false;
  let c = 0;
  let at = 0;
  const bad = () => new BadPatternError(whole);
  while (c < chunk.length) {
    if (!failed && at >= s.length) failed = true;
    const ch = chunk[c];
    if (ch === "[") {
      let r = "";
      if (!failed) r = s[at++];
      c++;
      let negated = false;
      if (c < chunk.length && chunk[c] === "^") {
        negated = true;
        c++;
      }
      let matched = false;
      let ranges = 0;
      while (true) {
        if (c < chunk.length && chunk[c] === "]" && ranges > 0) {
          c++;
          break;
        }
        const lo = classChar(chunk, c);
        if (lo === null) throw bad();
        c = lo.next;
        let hi = lo.char;
        if (chunk[c] === "-") {
          const h = classChar(chunk, c + 1);
          if (h === null) throw bad();
          c = h.next;
          hi = h.char;
        }
        if (!failed && cp(lo.char) <= cp(r) && cp(r) <= cp(hi)) matched = true;
        ranges++;
      }
      if (matched === negated) failed = true;
    } else if (ch === "?") {
      if (!failed) {
        if (s[at] === "/") failed = true;
        at++;
      }
      c++;
    } else {
      if (ch === "\\") {
        c++;
        if (c >= chunk.length) throw bad();
      }
      if (!failed) {
        if (chunk[c] !== s[at]) failed = true;
        at++;
      }
      c++;
    }
  }
  return failed ? null : s.slice(at);
}

/**
 * One possibly escaped class character (Go's `getEsc`): null when malformed (end of pattern,
 * an unescaped `-` or `]`, or nothing after it).
 */
function classChar(chunk: string[], at: number): { char: string; next: number } | null {
  let i = at;
  if (i >= chunk.length || chunk[i] === "-" || chunk[i] === "]") return null;
  if (chunk[i] === "\\") {
    i++;
    if (i >= chunk.length) return null;
  }
  const char = chunk[i];
  i++;
  if (i >= chunk.length) return null; // a class must still be closed
  return { char, next: i };
}

function cp(ch: string): number {
  return ch.codePointAt(0) ?? -1;
}

/** Compares two strings by code point (= by UTF-8 bytes, Go's string order). */
export function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (astral code points) sort after every BMP character in code point order.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}
