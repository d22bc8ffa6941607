/**
 * The glob patterns of `${v#p}`, `${v##p}`, `${v%p}`, `${v%%p}`, `${v/p/r}` and `${v//p/r}`, with
 * BuildKit's semantics: BuildKit turns the pattern into a Go regular expression (`*` becomes
 * `.*` or `.*?`, `?` becomes `.`, everything else is literal — bracket expressions included) and
 * uses Go's leftmost-first matching, in which `.` never matches a newline.
 *
 * Instead of JavaScript regular expressions (whose backtracking can take exponential time on
 * patterns such as `*a*a*a*b`), patterns compile to a tiny program run by a Pike VM: linear in
 * the value's length for a given pattern, with the same leftmost-first preferences as Go.
 * @module
 */

/** A pattern BuildKit refuses, e.g. an escape of an ordinary character (`\x`). */
export class PatternError extends Error {}

/** One instruction of a compiled pattern (a Pike VM program). */
export type Inst =
  | { op: "char"; ch: string }
  | { op: "any" }
  | { op: "split"; first: number; second: number }
  | { op: "jmp"; to: number }
  | { op: "match" };

type Token = { kind: "lit"; ch: string } | { kind: "any" } | { kind: "star" };

/** A compiled pattern. */
export interface Pattern {
  /** The program: one instruction per literal or `?`, three per `*`, then `match`. */
  readonly prog: readonly Inst[];
}

/** A match: code-point offsets `[start, end)` in the searched value. */
export interface Match {
  /** First matched code point. */
  start: number;
  /** One past the last matched code point. */
  end: number;
}

/**
 * Splits a pattern into tokens as BuildKit does: `*`, `?`, `\*`, `\?`, `\\` and `\}` / `\/`
 * (the escape only there to get past the `${…}` syntax). Any other escape is an error.
 */
function tokenize(pattern: string[]): Token[] {
  const tokens: Token[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === "*") tokens.push({ kind: "star" });
    else if (ch === "?") tokens.push({ kind: "any" });
    else if (ch === "\\") {
      const next = pattern[i + 1];
      if (next === "}" || next === "/") continue;
      i++;
      if (next !== "*" && next !== "?" && next !== "\\") {
        throw new PatternError(
          next === undefined
            ? "invalid escape '\\' at end of pattern"
            : `invalid escape '\\${next}'`,
        );
      }
      tokens.push({ kind: "lit", ch: next });
    } else tokens.push({ kind: "lit", ch });
  }
  return tokens;
}

/** Compiles a pattern (as code points); `greedy` makes every `*` prefer the longest run. */
export function compilePattern(pattern: string[], greedy: boolean): Pattern {
  const prog: Inst[] = [];
  for (const token of tokenize(pattern)) {
    if (token.kind === "lit") prog.push({ op: "char", ch: token.ch });
    else if (token.kind === "any") prog.push({ op: "any" });
    else {
      const at = prog.length;
      const loop = at + 1, after = at + 3;
      prog.push(
        greedy
          ? { op: "split", first: loop, second: after }
          : { op: "split", first: after, second: loop },
      );
      prog.push({ op: "any" }, { op: "jmp", to: at });
    }
  }
  prog.push({ op: "match" });
  return { prog };
}

/** A thread list of the Pike VM: program counters in priority order, with their match start. */
class ThreadList {
  readonly pcs: number[] = [];
  readonly starts: number[] = [];
  private readonly seen: Int32Array;
  private generation = 0;

  constructor(size: number) {
    this.seen = new Int32Array(size).fill(-1);
  }

  clear(generation: number): void {
    this.pcs.length = 0;
    this.starts.length = 0;
    this.generation = generation;
  }

  /** Adds `pc` and everything reachable from it without consuming input, in priority order. */
  add(prog: readonly Inst[], pc: number, start: number): void {
    const stack = [pc];
    while (stack.length > 0) {
      const at = stack.pop()!;
      if (this.seen[at] === this.generation) continue;
      this.seen[at] = this.generation;
      const inst = prog[at];
      if (inst.op === "jmp") stack.push(inst.to);
      else if (inst.op === "split") stack.push(inst.second, inst.first);
      else {
        this.pcs.push(at);
        this.starts.push(start);
      }
    }
  }
}

/** Whether instruction `inst` consumes character `ch`. */
function consumes(inst: Inst, ch: string | undefined): boolean {
  if (ch === undefined) return false;
  if (inst.op === "char") return inst.ch === ch;
  return inst.op === "any" && ch !== "\n";
}

/**
 * Finds the leftmost-first match of `pattern` in `value` starting at or after `from` (exactly at
 * `from` when `anchored`), as Go's regexp does.
 */
export function findMatch(
  pattern: Pattern,
  value: string[],
  from: number,
  anchored: boolean,
): Match | null {
  const { prog } = pattern;
  let clist = new ThreadList(prog.length), nlist = new ThreadList(prog.length);
  let generation = 0;
  clist.clear(generation++);
  let found: Match | null = null;
  for (let pos = from; pos <= value.length; pos++) {
    if (found === null && (!anchored || pos === from)) clist.add(prog, 0, pos);
    if (clist.pcs.length === 0) break;
    nlist.clear(generation++);
    const ch = value[pos];
    for (let i = 0; i < clist.pcs.length; i++) {
      const inst = prog[clist.pcs[i]];
      if (inst.op === "match") {
        found = { start: clist.starts[i], end: pos };
        break; // lower-priority threads lose to this match
      }
      if (consumes(inst, ch)) nlist.add(prog, clist.pcs[i] + 1, clist.starts[i]);
    }
    [clist, nlist] = [nlist, clist];
  }
  return found;
}

/** Reverses a pattern's code points, keeping each `\x` escape pair in order (BuildKit's way). */
function reversePattern(pattern: string[]): string[] {
  const out = new Array<string>(pattern.length);
  const last = pattern.length - 1;
  for (let i = 0; i <= last;) {
    const at = last - i;
    if (pattern[i] === "\\" && i !== last) {
      out[at - 1] = "\\";
      out[at] = pattern[i + 1];
      i += 2;
    } else {
      out[at] = pattern[i];
      i++;
    }
  }
  return out;
}

/** `${v#p}` / `${v##p}`: removes the shortest (longest when `greedy`) prefix matching `pattern`. */
export function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  return trimPrefixChars([...pattern], [...value], greedy).join("");
}

function trimPrefixChars(pattern: string[], value: string[], greedy: boolean): string[] {
  const match = findMatch(compilePattern(pattern, greedy), value, 0, true);
  return match ? value.slice(match.end) : value;
}

/**
 * `${v%p}` / `${v%%p}`: removes the shortest (longest when `greedy`) suffix matching `pattern`,
 * by matching the reversed pattern against the reversed value as BuildKit does.
 */
export function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  const reversed = trimPrefixChars(reversePattern([...pattern]), [...value].reverse(), greedy);
  return reversed.reverse().join("");
}

/** `${v/p/r}`: replaces the leftmost (greedy) match of `pattern` with `replacement`, verbatim. */
export function replaceFirst(pattern: string, value: string, replacement: string): string {
  const chars = [...value];
  const match = findMatch(compilePattern([...pattern], true), chars, 0, false);
  if (!match) return value;
  return chars.slice(0, match.start).join("") + replacement + chars.slice(match.end).join("");
}

/**
 * `${v//p/r}`: replaces every match as Go's `Regexp.ReplaceAllString` does: an empty match right
 * after a previous match is skipped, and `replacement` is a Go template (`$0` / `${0}` is the
 * match, `$$` a dollar, other names empty).
 */
export function replaceAll(pattern: string, value: string, replacement: string): string {
  const chars = [...value];
  const compiled = compilePattern([...pattern], true);
  let out = "";
  let lastEnd = 0, searchPos = 0;
  while (searchPos <= chars.length) {
    const match = findMatch(compiled, chars, searchPos, false);
    if (!match) break;
    out += chars.slice(lastEnd, match.start).join("");
    if (match.end > lastEnd || match.start === 0) {
      out += expandTemplate(replacement, chars.slice(match.start, match.end).join(""));
    }
    lastEnd = match.end;
    searchPos = searchPos + 1 > match.end ? searchPos + 1 : match.end;
  }
  return out + chars.slice(lastEnd).join("");
}

const NAME_CHAR = /^[\p{L}\p{Nd}_]$/u;

/** Reads a Go template reference after `$`: `name` or `{name}`; null when malformed. */
function templateRef(chars: string[], at: number): { name: string; next: number } | null {
  const brace = chars[at] === "{";
  let i = brace ? at + 1 : at;
  const begin = i;
  while (i < chars.length && NAME_CHAR.test(chars[i])) i++;
  if (i === begin) return null;
  const name = chars.slice(begin, i).join("");
  if (brace) {
    if (chars[i] !== "}") return null;
    i++;
  }
  return { name, next: i };
}

/** Expands a Go replacement template for a pattern without groups: only group 0 exists. */
function expandTemplate(template: string, match: string): string {
  if (!template.includes("$")) return template;
  const chars = [...template];
  let out = "";
  for (let i = 0; i < chars.length; i++) {
    if (chars[i] !== "$") {
      out += chars[i];
      continue;
    }
    if (chars[i + 1] === "$") {
      out += "$";
      i++;
      continue;
    }
    const ref = templateRef(chars, i + 1);
    if (ref === null) {
      out += "$";
      continue;
    }
    if (ref.name === "0") out += match;
    i = ref.next - 1;
  }
  return out;
}
