/**
 * Character classes and word splitting shared by the Dockerfile parser, with BuildKit's exact
 * notions of "space": Go's `unicode.IsSpace` for trimming and word splitting, and the ASCII set
 * `[\t\v\f\r ]` where BuildKit splits with a regular expression.
 * @module
 */

/** Go's `unicode.IsSpace` for one code point. */
export function isSpace(cp: number): boolean {
  if (cp <= 0xff) {
    return cp === 0x20 || (cp >= 0x09 && cp <= 0x0d) || cp === 0x85 || cp === 0xa0;
  }
  return cp === 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp === 0x2028 || cp === 0x2029 ||
    cp === 0x202f || cp === 0x205f || cp === 0x3000;
}

/** True for the characters of BuildKit's `[\t\v\f\r ]` class. */
export function isAsciiBlank(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0b || code === 0x0c || code === 0x0d;
}

/** Removes leading Go whitespace (`bytes.TrimLeftFunc(s, unicode.IsSpace)`). */
export function trimLeftSpace(s: string): string {
  let i = 0;
  while (i < s.length) {
    const cp = s.codePointAt(i)!;
    if (!isSpace(cp)) break;
    i += cp > 0xffff ? 2 : 1;
  }
  return i === 0 ? s : s.slice(i);
}

/** Removes trailing Go whitespace. */
export function trimRightSpace(s: string): string {
  let end = s.length;
  while (end > 0) {
    const code = s.charCodeAt(end - 1);
    // Every Go space is in the Basic Multilingual Plane, so no surrogate needs decoding.
    if (!isSpace(code)) break;
    end--;
  }
  return end === s.length ? s : s.slice(0, end);
}

/** `strings.TrimSpace`. */
export function trimSpace(s: string): string {
  return trimRightSpace(trimLeftSpace(s));
}

/** Splits on runs of `[\t\v\f\r ]` (Go's `regexp.Split(s, -1)`), keeping empty edge parts. */
export function splitAsciiBlank(s: string): string[] {
  const parts: string[] = [];
  let start = 0;
  let i = 0;
  while (i < s.length) {
    if (!isAsciiBlank(s.charCodeAt(i))) {
      i++;
      continue;
    }
    parts.push(s.slice(start, i));
    while (i < s.length && isAsciiBlank(s.charCodeAt(i))) i++;
    start = i;
  }
  parts.push(s.slice(start));
  return parts;
}

/** Splits at the first run of `[\t\v\f\r ]` into at most two parts (`regexp.Split(s, 2)`). */
export function splitAsciiBlankOnce(s: string): string[] {
  for (let i = 0; i < s.length; i++) {
    if (!isAsciiBlank(s.charCodeAt(i))) continue;
    let j = i;
    while (j < s.length && isAsciiBlank(s.charCodeAt(j))) j++;
    return [s.slice(0, i), s.slice(j)];
  }
  return [s];
}

/**
 * BuildKit's `parseWords`: splits the arguments of ENV, LABEL and ARG into words at unquoted
 * spaces, keeping quotes and escapes in the words (they are removed later, with expansion).
 */
export function parseWords(rest: string, escape: string): string[] {
  const words: string[] = [];
  let phase: "spaces" | "word" | "quote" = "spaces";
  let quote = "";
  let blankOK = false;
  let word = "";
  const endWord = () => {
    if (blankOK || word.length > 0) words.push(word);
    word = "";
    blankOK = false;
  };
  // Quotes, escapes and Go spaces are all in the BMP: code units will do.
  for (let pos = 0; pos < rest.length; pos++) {
    const ch = rest[pos];
    const space = isSpace(ch.charCodeAt(0));
    if (phase === "spaces" && space) continue;
    if (phase === "spaces") phase = "word";
    if (phase === "word" && space) {
      phase = "spaces";
      endWord();
    } else if (phase === "word" && (ch === "'" || ch === '"')) {
      [quote, blankOK, phase] = [ch, true, "quote"];
      word += ch;
    } else if (phase === "quote" && ch === quote) {
      phase = "word";
      word += ch;
    } else if (ch === escape && (phase === "word" || quote !== "'")) {
      // An escape keeps the next character in the word, escape included; a final one is dropped.
      if (pos + 1 === rest.length) phase = "word";
      else word += ch + rest[++pos];
    } else word += ch;
  }
  if (phase !== "spaces") endWord();
  return words;
}

/** The result of {@link unquote}. */
export interface Unquoted {
  /** The word with quotes and escapes removed (variables left as written). */
  value: string;
  /** Set when a quote is not closed: which one. */
  unterminated?: "single" | "double";
}

/**
 * Removes shell quoting from one word as BuildKit's lexer does, without expanding variables:
 * `'…'` is literal, inside `"…"` the escape character only escapes `"`, `$` and itself, and
 * outside quotes it escapes any character. An escape at the very end is dropped.
 */
export function unquote(word: string, escape: string): Unquoted {
  let out = "";
  let i = 0;
  const n = word.length;
  while (i < n) {
    const ch = word[i];
    if (ch === "'") {
      const close = word.indexOf("'", i + 1);
      if (close < 0) return { value: out + word.slice(i + 1), unterminated: "single" };
      out += word.slice(i + 1, close);
      i = close + 1;
    } else if (ch === '"') {
      const r = unquoteDouble(word, i + 1, escape);
      out += r.text;
      if (r.end < 0) return { value: out, unterminated: "double" };
      i = r.end + 1;
    } else if (ch === escape) {
      if (i + 1 < n) out += word[i + 1];
      i += 2;
    } else {
      out += ch;
      i++;
    }
  }
  return { value: out };
}

function unquoteDouble(word: string, from: number, escape: string): { text: string; end: number } {
  let text = "";
  for (let i = from; i < word.length; i++) {
    const ch = word[i];
    if (ch === '"') return { text, end: i };
    if (ch === escape && i + 1 < word.length) {
      const next = word[i + 1];
      if (next === '"' || next === "$" || next === escape) {
        text += next;
        i++;
        continue;
      }
    } else if (ch === escape) continue;
    text += ch;
  }
  return { text, end: -1 };
}
