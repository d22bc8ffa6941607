/**
 * Parser directives (`# syntax=…`, `# escape=…`, `# check=…`) and the line-continuation rule of
 * the escape character in force, as BuildKit applies them: directives are looked for only in the
 * leading comment lines, names are case-insensitive, each may appear once, and the first line
 * that is not a known directive (an instruction, an empty line, any other comment) ends them.
 * @module
 */

import { trimLeftSpace } from "./words.ts";

/** The directives BuildKit knows. Other `# key=value` comments are plain comments. */
export const KNOWN_DIRECTIVES: readonly string[] = ["syntax", "escape", "check"];

/** A recognised directive line. */
export interface DirectiveMatch {
  /** Lower-case name. */
  name: string;
  /** The value, surrounding blanks removed. */
  value: string;
}

/** A directive-looking line that must fail the parse. */
export class DirectiveError extends Error {}

/** Go's `\s` in BuildKit's directive expression: `[\t\n\f\r ]`. */
function isReSpace(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0c || code === 0x0d;
}

function isAlpha(code: number): boolean {
  return (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a);
}

function isAlnum(code: number): boolean {
  return isAlpha(code) || (code >= 0x30 && code <= 0x39);
}

/**
 * Matches `^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` (Go semantics: the value keeps at least one
 * character, so a value of blanks only becomes its last blank), in linear time.
 */
export function matchDirective(text: string): { key: string; value: string } | null {
  const n = text.length;
  if (n === 0 || !isAlpha(text.charCodeAt(0))) return null;
  let i = 1;
  while (i < n && isAlnum(text.charCodeAt(i))) i++;
  const key = text.slice(0, i);
  while (i < n && isReSpace(text.charCodeAt(i))) i++;
  if (i >= n || text[i] !== "=") return null;
  i++;
  const afterEq = i;
  while (i < n && isReSpace(text.charCodeAt(i))) i++;
  let end = n;
  while (end > i && isReSpace(text.charCodeAt(end - 1))) end--;
  if (end > i) return { key, value: text.slice(i, end) };
  // Only blanks after `=`: the lazy group takes the last of them.
  if (n > afterEq) return { key, value: text[n - 1] };
  return null;
}

/** The state of directive detection over the first lines of a Dockerfile. */
export class DirectiveParser {
  #done = false;
  #seen = new Set<string>();
  /** Directives found, in order. */
  readonly found: DirectiveMatch[] = [];

  /** True once the leading directive block has ended. */
  get done(): boolean {
    return this.#done;
  }

  /**
   * Looks at one line (newline removed; leading blanks removed for an instruction's first line).
   * Returns the directive it holds, or null. Throws {@link DirectiveError} for a repeated
   * directive or an invalid escape character.
   */
  parseLine(line: string): DirectiveMatch | null {
    if (this.#done) return null;
    if (!line.startsWith("#")) {
      this.#done = true;
      return null;
    }
    const match = matchDirective(trimLeftSpace(line.slice(1)));
    const name = match?.key.toLowerCase();
    if (!match || !name || !KNOWN_DIRECTIVES.includes(name)) {
      this.#done = true;
      return null;
    }
    if (this.#seen.has(name)) {
      throw new DirectiveError(`only one ${name} parser directive can be used`);
    }
    this.#seen.add(name);
    if (name === "escape") checkEscape(match.value);
    const directive = { name, value: match.value };
    this.found.push(directive);
    return directive;
  }
}

/** Fails unless `value` is a valid escape character: `\` or `` ` ``. */
export function checkEscape(value: string): void {
  if (value !== "\\" && value !== "`") {
    throw new DirectiveError(`invalid escape token '${value}' does not match \` or \\`);
  }
}

/**
 * BuildKit's line-continuation rule: a line continues when its last character other than
 * trailing spaces and tabs is the escape character and that one is not itself escaped
 * (`([^E])E[ \t]*$|^E[ \t]*$`). Returns the line without the escape (and the blanks after it).
 */
export function trimContinuation(
  line: string,
  escape: string,
): { text: string; continues: boolean } {
  let end = line.length;
  while (end > 0) {
    const c = line.charCodeAt(end - 1);
    if (c !== 0x20 && c !== 0x09) break;
    end--;
  }
  if (end === 0 || line[end - 1] !== escape) return { text: line, continues: false };
  if (end >= 2 && line[end - 2] === escape) return { text: line, continues: false };
  return { text: line.slice(0, end - 1), continues: true };
}
