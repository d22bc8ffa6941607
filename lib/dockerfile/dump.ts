/**
 * The syntax tree in BuildKit's test notation (`Node.Dump()`, the `result` files of its parser
 * tests): one line per instruction, `(keyword ["--flag" …] "arg" …)`, strings quoted as Go's
 * `strconv.Quote` does, ONBUILD as `(onbuild (run "…"))`. Used to check the parser against
 * BuildKit's own corpus and handy for debugging.
 * @module
 */

import type { Dockerfile, Instruction } from "./ast.ts";
import { KNOWN_INSTRUCTIONS } from "./line_parsers.ts";

/** Options of {@link dumpDockerfile}. */
export interface DumpOptions {
  /**
   * Current BuildKit writes the separator after each ENV/LABEL pair (`"="`, or `""` for the
   * legacy `KEY value` form) as a third value; older results (and this default) do not.
   */
  keyValueSeparators?: boolean;
}

/** The whole file in BuildKit's notation, one line per instruction, each ended by `\n`. */
export function dumpDockerfile(df: Dockerfile, options: DumpOptions = {}): string {
  return df.instructions.map((ins) => `(${dumpInstruction(ins, options)})\n`).join("");
}

/** One instruction in BuildKit's notation, without the outer parentheses. */
export function dumpInstruction(ins: Instruction, options: DumpOptions = {}): string {
  let out = ins.keyword.toLowerCase();
  if (ins.flags.length > 0) out += ` [${ins.flags.map(goQuote).join(" ")}]`;
  const cmd = ins.keyword.toLowerCase();
  if (cmd === "onbuild") {
    return ins.onbuild ? `${out} (${dumpInstruction(ins.onbuild, options)})` : out;
  }
  if (!KNOWN_INSTRUCTIONS.includes(cmd)) return `${out} ""`;
  for (const value of nodeValues(ins, options)) out += ` ${goQuote(value)}`;
  return out;
}

function nodeValues(ins: Instruction, options: DumpOptions): string[] {
  const raw = ins.rawArgs ?? ins.args;
  const cmd = ins.keyword.toLowerCase();
  if (!options.keyValueSeparators || (cmd !== "env" && cmd !== "label")) return raw;
  const separator = ins.legacyKeyValue ? "" : "=";
  const values: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) values.push(raw[i], raw[i + 1], separator);
  return values;
}

/** Go's `strconv.Quote`. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    out += quoteRune(ch, cp);
  }
  return `${out}"`;
}

const SIMPLE_ESCAPES: Record<string, string> = {
  "\x07": "\\a",
  "\b": "\\b",
  "\f": "\\f",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
  "\v": "\\v",
  '"': '\\"',
  "\\": "\\\\",
};

const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;

function quoteRune(ch: string, cp: number): string {
  const simple = SIMPLE_ESCAPES[ch];
  if (simple) return simple;
  if (cp >= 0xd800 && cp <= 0xdfff) return "\\ufffd";
  if (PRINTABLE.test(ch)) return ch;
  if (cp < 0x20 || cp === 0x7f) return `\\x${cp.toString(16).padStart(2, "0")}`;
  if (cp < 0x10000) return `\\u${cp.toString(16).padStart(4, "0")}`;
  return `\\U${cp.toString(16).padStart(8, "0")}`;
}
