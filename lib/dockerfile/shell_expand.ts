/**
 * The lexer behind `ShellLex`: one pass over one word, following BuildKit's
 * `shellWord` — `processStopOn`, quotes, `$` and the `${…}` forms — with the same error texts.
 * Internal: use `shell_lex.ts`.
 * @module
 */
import type { EnvLookup, ShellLexOptions } from "./shell_lex.ts";
import { PatternError, replaceAll, replaceFirst, trimPrefix, trimSuffix } from "./shell_pattern.ts";

/** Nesting depth of `${…}` beyond which expansion fails instead of exhausting the stack. */
const MAX_NESTING = 1000;

/** Characters BuildKit accepts in a variable name (Go's `unicode.IsLetter`/`IsDigit`, `_`). */
const NAME_CHAR = /^[\p{L}\p{Nd}_]$/u;
const DIGIT = /^\p{Nd}$/u;
/** Go's `unicode.IsSpace`. */
const SPACE = /^\p{White_Space}$/u;
/** POSIX special parameters, each a one-character name. */
const SPECIAL_PARAMS = new Set(["@", "*", "#", "?", "-", "$", "!", "0"]);

/** A failure inside the lexer; `ShellLex` turns it into an `ExpansionError`. */
export class LexFailure extends Error {}

/** Accumulates the words of `ShellLex.processWords` exactly as BuildKit splits them. */
class Words {
  readonly words: string[] = [];
  private buf = "";
  private inWord = false;

  /** A character subject to splitting (unquoted text, expansion results). */
  addChar(ch: string): void {
    if (!SPACE.test(ch)) this.addRawChar(ch);
    else if (this.inWord && this.buf.length > 0) {
      this.words.push(this.buf);
      this.buf = "";
      this.inWord = false;
    }
  }

  /** A character that never splits (escaped). */
  addRawChar(ch: string): void {
    this.buf += ch;
    this.inWord = true;
  }

  /** An expansion result: split on whitespace. */
  addString(text: string): void {
    for (const ch of text) this.addChar(ch);
  }

  /** A quoted string: never split, and marks a word as started even when empty. */
  addRawString(text: string): void {
    this.buf += text;
    this.inWord = true;
  }

  /** The words so far, flushing the current one. */
  finish(): string[] {
    if (this.buf.length > 0) {
      this.words.push(this.buf);
      this.buf = "";
      this.inWord = false;
    }
    return this.words;
  }
}

/** The result of one lexer pass over (part of) a word. */
export interface Processed {
  text: string;
  words: string[];
}

/** One expansion of one word: a cursor over its code points plus the lexer's settings. */
export class Expansion {
  private readonly chars: string[];
  private pos = 0;
  private rawEscapes: boolean;
  private depth = 0;
  readonly used = new Set<string>();

  constructor(
    word: string,
    private readonly escape: string,
    private readonly options: ShellLexOptions,
    private readonly env: EnvLookup,
  ) {
    this.chars = Array.from(word);
    this.rawEscapes = options.rawEscapes ?? false;
  }

  private peek(): string | undefined {
    return this.chars[this.pos];
  }

  private next(): string | undefined {
    return this.pos < this.chars.length ? this.chars[this.pos++] : undefined;
  }

  private atEnd(): boolean {
    return this.pos >= this.chars.length;
  }

  private lookup(name: string): string | undefined {
    this.used.add(name);
    return this.env.get(name);
  }

  /** Processes up to `stop` (consumed) or, without `stop`, to the end of the word. */
  processStopOn(stop: string | undefined, rawEscapes: boolean): Processed {
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      return this.scan(stop);
    } finally {
      this.rawEscapes = saved;
    }
  }

  private scan(stop: string | undefined): Processed {
    let text = "";
    const words = new Words();
    while (!this.atEnd()) {
      const ch = this.peek()!;
      if (stop !== undefined && ch === stop) {
        this.next();
        return { text, words: words.finish() };
      }
      if (ch === "$") {
        const value = this.processDollar();
        text += value;
        words.addString(value);
      } else if (ch === "'" || ch === '"') {
        const value = ch === "'" ? this.processSingleQuote() : this.processDoubleQuote();
        text += value;
        words.addRawString(value);
      } else if (this.next() === this.escape) {
        if (this.rawEscapes) {
          words.addRawChar(ch);
          text += ch;
        }
        const escaped = this.next();
        if (escaped === undefined) break; // an escape at the end of the word is dropped
        words.addRawChar(escaped);
        text += escaped;
      } else {
        words.addChar(ch);
        text += ch;
      }
    }
    if (stop !== undefined) {
      throw new LexFailure(`unexpected end of statement while looking for matching ${stop}`);
    }
    return { text, words: words.finish() };
  }

  /** `'…'`: everything literal up to the next single quote. */
  private processSingleQuote(): string {
    const raw = this.options.rawQuotes ?? false;
    const open = this.next()!;
    let out = raw ? open : "";
    for (;;) {
      const ch = this.next();
      if (ch === undefined) {
        throw new LexFailure("unexpected end of statement while looking for matching single-quote");
      }
      if (ch === "'") return raw ? out + ch : out;
      out += ch;
    }
  }

  /** `"…"`: expansions inside; the escape character escapes only `"`, `$` and itself. */
  private processDoubleQuote(): string {
    const raw = this.options.rawQuotes ?? false;
    const open = this.next()!;
    let out = raw ? open : "";
    for (;;) {
      const ch = this.peek();
      if (ch === undefined) {
        throw new LexFailure("unexpected end of statement while looking for matching double-quote");
      }
      if (ch === '"') {
        this.next();
        return raw ? out + ch : out;
      }
      if (ch === "$") {
        out += this.processDollar();
        continue;
      }
      out += this.doubleQuotedChar();
    }
  }

  /** One character inside double quotes other than `"` and `$`, handling the escape character. */
  private doubleQuotedChar(): string {
    const ch = this.next()!;
    if (ch !== this.escape) return ch;
    const prefix = this.rawEscapes ? ch : "";
    const following = this.peek();
    if (following === undefined) return prefix; // ignored at the end (the quote is unterminated)
    if (following === '"' || following === "$" || following === this.escape) {
      return prefix + this.next()!;
    }
    return prefix + ch;
  }

  /** `$name`, `${…}` or a lone `$`, at the `$`. */
  private processDollar(): string {
    this.next();
    if (this.peek() !== "{") {
      const name = this.processName();
      if (name === "") return "$";
      const value = this.lookup(name);
      if (value === undefined && this.options.skipUnsetEnv) return "$" + name;
      return value ?? "";
    }
    this.next();
    const first = this.peek();
    if (first === undefined) throw new LexFailure("syntax error: missing '}'");
    if (first === "{" || first === "}" || first === ":") {
      throw new LexFailure("syntax error: bad substitution");
    }
    if (++this.depth > MAX_NESTING) {
      throw new LexFailure(`syntax error: more than ${MAX_NESTING} nested expansions`);
    }
    try {
      return this.processBraced(this.processName());
    } finally {
      this.depth--;
    }
  }

  /** The rest of `${name…}` after the name. */
  private processBraced(name: string): string {
    const ch = this.next();
    if (ch === "}") {
      const value = this.lookup(name);
      if (value === undefined && this.options.skipUnsetEnv) return "${" + name + "}";
      return value ?? "";
    }
    if (ch === ":") return this.processModifier(name, this.next(), true);
    if (ch === "+" || ch === "-" || ch === "?" || ch === "#" || ch === "%") {
      return this.processModifier(name, ch, false);
    }
    if (ch === "/") return this.processSubstitution(name);
    if (ch === undefined) throw new LexFailure("syntax error: missing '}'");
    throw new LexFailure(`unsupported modifier (${ch}) in substitution`);
  }

  /** Runs a nested {@link processStopOn}, reporting a missing `}` when it ran off the end. */
  private nested(stop: string, rawEscapes: boolean, missing: string): string {
    try {
      return this.processStopOn(stop, rawEscapes).text;
    } catch (e) {
      if (e instanceof LexFailure && this.atEnd()) throw new LexFailure(missing);
      throw e;
    }
  }

  /** `${v-w}`, `${v:-w}`, `${v+w}`, `${v:+w}`, `${v?w}`, `${v:?w}`, `${v#p}`, `${v%p}`… */
  private processModifier(name: string, ch: string | undefined, nullIsUnset: boolean): string {
    const chs = (nullIsUnset ? ":" : "") + (ch ?? "");
    const pattern = ch === "#" || ch === "%";
    if (nullIsUnset && pattern) {
      throw new LexFailure(`unsupported modifier (${chs}) in substitution`);
    }
    const word = this.nested("}", pattern, "syntax error: missing '}'");
    const value = this.lookup(name);
    if (value === undefined && this.options.skipUnsetEnv) return "${" + name + chs + word + "}";
    const empty = value === undefined || (nullIsUnset && value === "");
    switch (ch) {
      case "-":
        return empty ? word : value;
      case "+":
        return empty ? "" : word;
      case "?":
        if (!empty) return value;
        if (word !== "") throw new LexFailure(`${name}: ${word}`);
        throw new LexFailure(
          `${name}: is not allowed to be ${value === undefined ? "unset" : "empty"}`,
        );
      case "#":
      case "%":
        return this.trim(ch, word, value ?? "");
      default:
        throw new LexFailure(`unsupported modifier (${chs}) in substitution`);
    }
  }

  /** `#`/`##` (prefix) and `%`/`%%` (suffix) removal; a doubled operator is greedy. */
  private trim(op: string, word: string, value: string): string {
    const greedy = word.startsWith(op);
    const pattern = greedy ? word.slice(1) : word;
    try {
      return op === "%" ? trimSuffix(pattern, value, greedy) : trimPrefix(pattern, value, greedy);
    } catch (e) {
      if (e instanceof PatternError) {
        throw new LexFailure(`invalid pattern (${pattern}) in substitution: ${e.message}`);
      }
      throw e;
    }
  }

  /** `${v/p/r}` and `${v//p/r}`. */
  private processSubstitution(name: string): string {
    const all = this.peek() === "/";
    if (all) this.next();
    const pattern = this.nested("/", true, "syntax error: missing '/' in ${}");
    const replacement = this.nested("}", true, "syntax error: missing '}'");
    const value = this.lookup(name);
    if (value === undefined && this.options.skipUnsetEnv) {
      return "${" + name + "/" + pattern + "/" + replacement + "}";
    }
    try {
      return all
        ? replaceAll(pattern, value ?? "", replacement)
        : replaceFirst(pattern, value ?? "", replacement);
    } catch (e) {
      if (e instanceof PatternError) {
        throw new LexFailure(`invalid pattern (${pattern}) in substitution: ${e.message}`);
      }
      throw e;
    }
  }

  /** A name: letters, digits and `_`; or a run of digits; or one special parameter. */
  private processName(): string {
    let name = "";
    for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
      if (name === "" && DIGIT.test(ch)) {
        while (this.peek() !== undefined && DIGIT.test(this.peek()!)) name += this.next();
        return name;
      }
      if (name === "" && SPECIAL_PARAMS.has(ch)) return this.next()!;
      if (!NAME_CHAR.test(ch)) break;
      name += this.next();
    }
    return name;
  }
}
