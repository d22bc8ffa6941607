/**
 * Shell-word expansion as Dockerfile instructions do it: BuildKit's `shell.Lex` (quotes, the
 * escape character, `$v`, `${v}` and the `${v…}` modifiers), not a real shell — no command
 * substitution, globbing, tilde or arithmetic expansion, and word splitting only in
 * {@link ShellLex.processWords}.
 *
 * Deliberate departures from BuildKit, none of which changes the value of a word BuildKit
 * expands: more than 1000 nested `${…}` fail (instead of growing the stack); `processWords` keeps
 * text before a `${v:-w}` in the same word (some BuildKit versions share one buffer between
 * nested passes and lose it); error messages shorten very long words and say "missing '}'" for
 * an unterminated `${name`.
 *
 * ```ts
 * const lex = new ShellLex("\\");
 * lex.processWord("${HOME:-/root}/app", envFrom(["HOME=/home/me"])); // "/home/me/app"
 * ```
 * @module
 */
import { KanikoError } from "../errors.ts";
import { Expansion, LexFailure, type Processed } from "./shell_expand.ts";

/** Variable lookup: undefined means unset (not empty). */
export interface EnvLookup {
  /** The value of `name`, or undefined when it is unset. */
  get(name: string): string | undefined;
}

/**
 * Helper: an EnvLookup over a Map, a record or a `K=V` list (last wins; an entry without `=` is
 * set to the empty string, as BuildKit does).
 */
export function envFrom(
  source: Map<string, string> | Record<string, string> | string[],
): EnvLookup {
  if (source instanceof Map) return { get: (name) => source.get(name) };
  if (Array.isArray(source)) {
    const map = new Map<string, string>();
    for (const entry of source) {
      const eq = entry.indexOf("=");
      if (eq < 0) map.set(entry, "");
      else map.set(entry.slice(0, eq), entry.slice(eq + 1));
    }
    return { get: (name) => map.get(name) };
  }
  return { get: (name) => (Object.hasOwn(source, name) ? source[name] : undefined) };
}

/** Options of {@link ShellLex}, named after BuildKit's `Lex` fields. */
export interface ShellLexOptions {
  /** keep quotes in the output (BuildKit RawQuotes) */
  rawQuotes?: boolean;
  /** keep escapes (RawEscapes) */
  rawEscapes?: boolean;
  /** leave unset $VARs as written instead of expanding to "" (SkipUnsetEnv) */
  skipUnsetEnv?: boolean;
}

/**
 * A malformed expansion (`${`, bad modifier, `${v:?msg}` with v unset…): a KanikoError whose
 * message is one line, `failed to process "WORD": REASON` as BuildKit words it.
 */
export class ExpansionError extends KanikoError {
  /** What is wrong, without the word (e.g. `syntax error: missing '}'`). */
  readonly reason: string;
  /** The word being expanded, when known. */
  readonly word?: string;

  /** `reason` is BuildKit's text; `word`, when given, is quoted in front of it. */
  constructor(reason: string, word?: string) {
    const clean = reason.replace(/[\r\n]+/g, " ");
    super(word === undefined ? clean : `failed to process ${quoteWord(word)}: ${clean}`);
    this.name = "ExpansionError";
    this.reason = clean;
    this.word = word;
  }
}

/** Longest part of a word quoted in an error message (the whole word stays in `word`). */
const MAX_QUOTED = 240;

/** The word as BuildKit's `%q` shows it, shortened when very long. */
function quoteWord(word: string): string {
  if (word.length <= MAX_QUOTED) return JSON.stringify(word);
  return JSON.stringify(word.slice(0, MAX_QUOTED)) + `… (${word.length} characters)`;
}

/**
 * BuildKit's shell lexer: expands variables and removes quotes in Dockerfile words, with `\` or
 * `` ` `` as the escape character (the `# escape=` directive). Stateless: one instance serves
 * any number of words.
 */
export class ShellLex {
  /** The escape character. */
  readonly escape: "\\" | "`";
  /** The options given to the constructor. */
  readonly options: Readonly<ShellLexOptions>;

  /** `escape` is the Dockerfile's escape character (`# escape=`), `\` by default. */
  constructor(escape: "\\" | "`" = "\\", options: ShellLexOptions = {}) {
    this.escape = escape;
    this.options = { ...options };
  }

  /** One word: expansion and quote removal, no word splitting. */
  processWord(word: string, env: EnvLookup): string {
    return this.run(word, env).result.text;
  }

  /** Several words: like processWord, then split on unquoted whitespace (used for ADD/COPY/EXPOSE/VOLUME… argument lists). */
  processWords(word: string, env: EnvLookup): string[] {
    return this.run(word, env).result.words;
  }

  /** processWord plus the names of the variables it read (set or unset), for "unused build arg" warnings. */
  processWordWithUsage(word: string, env: EnvLookup): { value: string; used: Set<string> } {
    const { result, used } = this.run(word, env);
    return { value: result.text, used };
  }

  private run(word: string, env: EnvLookup): { result: Processed; used: Set<string> } {
    const expansion = new Expansion(word, this.escape, this.options, env);
    try {
      const result = expansion.processStopOn(undefined, this.options.rawEscapes ?? false);
      return { result, used: expansion.used };
    } catch (e) {
      if (e instanceof LexFailure) throw new ExpansionError(e.message, word);
      if (e instanceof RangeError) {
        // The call stack or a string ran out of room (a smaller stack than MAX_NESTING assumes).
        throw new ExpansionError(
          `word too large or too deeply nested to expand (${e.message})`,
          word,
        );
      }
      throw e;
    }
  }
}
