/**
 * Here-documents: finding `<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF` words in a RUN, COPY or ADD
 * line (BuildKit splits the line with its shell lexer, quotes and escapes kept, then matches each
 * word against `^(\d*)<<(-?)([^<]*)$`), and stripping leading tabs for `<<-`.
 * @module
 */

import { isSpace } from "./words.ts";

/** A here-document announced on an instruction line, before its body is read. */
export interface HeredocWord {
  /** The delimiter, quotes and escapes removed. */
  name: string;
  /** False when any part of the delimiter was quoted. */
  expand: boolean;
  /** True for `<<-`. */
  chomp: boolean;
  /** The file descriptor written before `<<`, when there is one. */
  fd?: number;
}

const HEREDOC_WORD = /^([0-9]*)<<(-?)([^<]*)$/;

/** The instructions whose (shell-form) lines may announce here-documents. */
export const HEREDOC_INSTRUCTIONS: readonly string[] = ["run", "copy", "add"];

/**
 * Splits `text` into shell words the way BuildKit's lexer does without variables: blanks split
 * words, `'…'` and `"…"` group (kept as written when `rawQuotes`), `\` escapes the next character
 * (kept when `rawEscapes`). Returns null for an unterminated quote, as the lexer fails then.
 */
export function shellWords(text: string, rawQuotes: boolean, rawEscapes: boolean): string[] | null {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const ch = text[i];
    if (ch === "'" || ch === '"') {
      const end = ch === "'" ? text.indexOf("'", i + 1) : closingDoubleQuote(text, i + 1);
      if (end < 0) return null;
      const inner = ch === "'"
        ? text.slice(i + 1, end)
        : unescapeDouble(text.slice(i + 1, end), rawEscapes);
      word += rawQuotes ? ch + inner + ch : inner;
      inWord = true;
      i = end;
    } else if (ch === "\\") {
      if (rawEscapes) word += ch;
      if (i + 1 >= n) break;
      word += text[++i];
      inWord = true;
    } else if (isSpace(ch.charCodeAt(0))) {
      if (inWord && word.length > 0) {
        words.push(word);
        word = "";
        inWord = false;
      }
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (word.length > 0) words.push(word);
  return words;
}

function closingDoubleQuote(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    if (text[i] === '"') return i;
    if (text[i] === "\\") i++;
  }
  return -1;
}

/** Inside `"…"`, `\` escapes only `"`, `$` and `\`; other backslashes stay. */
function unescapeDouble(inner: string, rawEscapes: boolean): string {
  if (!inner.includes("\\")) return inner;
  let out = "";
  for (let i = 0; i < inner.length; i++) {
    const ch = inner[i];
    const next = inner[i + 1];
    if (ch === "\\" && (next === '"' || next === "$" || next === "\\")) {
      out += rawEscapes ? ch + next : next;
      i++;
    } else out += ch;
  }
  return out;
}

/** Parses one word as a here-document announcement (`<<EOF`, `<<-'EOF'`, `2<<EOF`), or null. */
export function parseHeredocWord(word: string): HeredocWord | null {
  const match = HEREDOC_WORD.exec(word);
  if (!match || match[3] === "") return null;
  const rest = match[3];
  const plain = shellWords(rest, false, false);
  if (!plain || plain.length !== 1) return null;
  const raw = shellWords(rest, true, false);
  if (!raw || raw.length !== 1) return null;
  const heredoc: HeredocWord = {
    name: plain[0],
    expand: countQuotes(plain[0]) === countQuotes(raw[0]),
    chomp: match[2] === "-",
  };
  if (match[1] !== "") heredoc.fd = Number(match[1]);
  return heredoc;
}

function countQuotes(s: string): number {
  let count = 0;
  for (const ch of s) if (ch === "'" || ch === '"') count++;
  return count;
}

/** The here-documents a line announces, in order. */
export function heredocsFromLine(line: string): HeredocWord[] {
  const words = shellWords(line, true, true);
  if (!words) return [];
  const docs: HeredocWord[] = [];
  for (const word of words) {
    if (!word.includes("<<")) continue;
    const heredoc = parseHeredocWord(word);
    if (heredoc) docs.push(heredoc);
  }
  return docs;
}

/** Removes the leading tabs of every line (`<<-`); lines end at `\n` only. */
export function chompHeredoc(content: string): string {
  return content.split("\n").map((line) => line.replace(/^\t+/, "")).join("\n");
}
