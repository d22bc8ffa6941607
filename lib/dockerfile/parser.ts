/**
 * The Dockerfile parser: text to the syntax tree of `./ast.ts`, following BuildKit's parser
 * (`frontend/dockerfile/parser`) rule for rule — parser directives at the top, comments, line
 * continuations with the escape character in force (comment and empty lines inside a continuation
 * skipped, a trailing escape at the end of the file accepted), keywords in any case, `--flags`,
 * the exec (JSON) form with fallback to the shell form, and here-documents for RUN, COPY and ADD.
 *
 * The parser only checks syntax. The per-instruction argument rules (how many arguments, which
 * flags, valid ports, signals, mounts…) are in `./instruction_args.ts` (`validateInstruction`),
 * and variable expansion and build meaning belong to `./shell_lex.ts` and `./stages.ts`.
 * Everything here runs in time linear in the input.
 * @module
 */

import type { Dockerfile, Heredoc, Instruction, ParseWarning } from "./ast.ts";
import { DirectiveError, DirectiveParser, trimContinuation } from "./directives.ts";
import {
  chompHeredoc,
  HEREDOC_INSTRUCTIONS,
  heredocsFromLine,
  type HeredocWord,
} from "./heredoc.ts";
import { KNOWN_INSTRUCTIONS, LineError, type LineNode, parseLine } from "./line_parsers.ts";
import { DockerfileError } from "./parse_error.ts";
import { trimLeftSpace, unquote } from "./words.ts";

export { DockerfileError } from "./parse_error.ts";
export { validateDockerfile, validateInstruction } from "./instruction_args.ts";

/** Options of {@link parseDockerfile}. */
export interface ParseOptions {
  /** The name errors and warnings use for the file; `Dockerfile` by default. */
  file?: string;
}

/** BuildKit reads lines with a 64 KiB buffer: a longer line is an error. */
export const MAX_LINE_BYTES = 65535;

/**
 * Parses a Dockerfile. Throws a {@link DockerfileError} (`FILE:LINE: …`, exit code 1) for a
 * syntax error; findings that are not errors are returned in `warnings`.
 */
export function parseDockerfile(text: string, options: ParseOptions = {}): Dockerfile {
  return new Parser(text, options.file ?? "Dockerfile").parse();
}

interface RawLine {
  /** The line without its `\n` (a `\r` before it is kept). */
  raw: string;
  /** Whether a `\n` ended it. */
  newline: boolean;
}

/** Reads a text line by line, counting lines and enforcing the line length limit. */
class LineScanner {
  #text: string;
  #pos = 0;
  /** The number of the line last read (1-based). */
  line = 0;

  constructor(text: string, readonly file: string) {
    this.#text = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  }

  next(): RawLine | null {
    const text = this.#text;
    if (this.#pos >= text.length) return null;
    const nl = text.indexOf("\n", this.#pos);
    const end = nl < 0 ? text.length : nl;
    const raw = text.slice(this.#pos, end);
    this.#pos = nl < 0 ? text.length : nl + 1;
    this.line++;
    if (raw.length > MAX_LINE_BYTES / 3 && utf8Length(raw) > MAX_LINE_BYTES) {
      throw new DockerfileError(
        { file: this.file, line: this.line },
        `line is longer than the maximum of ${MAX_LINE_BYTES} bytes`,
      );
    }
    return { raw, newline: nl >= 0 };
  }
}

function utf8Length(s: string): number {
  let bytes = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      bytes += 4;
      i++;
    } else bytes += 3;
    if (bytes > MAX_LINE_BYTES) break;
  }
  return bytes;
}

/** `bytes.TrimRight(line, "\r\n")` for a line that no longer holds its `\n`. */
function trimNewline(raw: string): string {
  let end = raw.length;
  while (end > 0 && raw.charCodeAt(end - 1) === 0x0d) end--;
  return end === raw.length ? raw : raw.slice(0, end);
}

function isComment(line: string): boolean {
  return trimLeftSpace(line).startsWith("#");
}

class Parser {
  #scanner: LineScanner;
  #directives = new DirectiveParser();
  #escape = "\\";
  #instructions: Instruction[] = [];
  #warnings: ParseWarning[] = [];

  constructor(text: string, readonly file: string) {
    this.#scanner = new LineScanner(text, file);
  }

  parse(): Dockerfile {
    for (let raw = this.#scanner.next(); raw; raw = this.#scanner.next()) {
      this.#parseFrom(raw);
    }
    if (this.#instructions.length === 0) {
      throw new DockerfileError(
        { file: this.file, line: Math.max(1, this.#scanner.line) },
        "file with no instructions",
      );
    }
    const directives: Record<string, string> = {};
    for (const d of this.#directives.found) directives[d.name] = d.value;
    return {
      escape: this.#escape,
      directives,
      instructions: this.#instructions,
      warnings: this.#warnings,
    };
  }

  /** Handles the line `first` and whatever continuation and here-document lines follow it. */
  #parseFrom(first: RawLine): void {
    const token = trimLeftSpace(trimNewline(first.raw));
    const startLine = this.#scanner.line;
    this.#lookForDirective(token, startLine);
    let { text, continues } = trimContinuation(isComment(token) ? "" : token, this.#escape);
    if (!continues && text === "") return;
    let emptyLine = 0;
    while (continues) {
      const next = this.#scanner.next();
      if (!next) break;
      const line = trimNewline(next.raw);
      if (isComment(line)) continue;
      if (trimLeftSpace(line) === "") {
        emptyLine ||= this.#scanner.line;
        continue;
      }
      const part = trimContinuation(line, this.#escape);
      text += part.text;
      continues = part.continues;
    }
    const instruction = this.#instruction(text, startLine);
    if (emptyLine) {
      this.#warn(
        emptyLine,
        `empty continuation line in the ${instruction.keyword} instruction of line ${startLine}; ` +
          "empty continuation lines will become errors in a future release",
      );
    }
    this.#instructions.push(instruction);
    instruction.endLine = this.#scanner.line;
    if (instruction.onbuild) instruction.onbuild.endLine = instruction.endLine;
  }

  #lookForDirective(token: string, line: number): void {
    try {
      const directive = this.#directives.parseLine(token);
      if (directive?.name === "escape") this.#escape = directive.value;
    } catch (err) {
      if (!(err instanceof DirectiveError)) throw err;
      throw new DockerfileError({ file: this.file, line }, err.message);
    }
  }

  /** Builds the instruction of one logical line and reads the here-documents it announces. */
  #instruction(text: string, line: number): Instruction {
    let node: LineNode;
    try {
      node = parseLine(text, this.#escape);
    } catch (err) {
      if (!(err instanceof LineError)) throw err;
      throw new DockerfileError({ file: this.file, line, keyword: err.keyword }, err.message);
    }
    const instruction = toInstruction(node, line, this.#escape);
    this.#checkDeprecations(instruction);
    const target = heredocTarget(instruction);
    if (target && text.includes("<<")) {
      for (const word of heredocsFromLine(text)) {
        target.heredocs.push(this.#readHeredoc(word, line));
      }
    }
    return instruction;
  }

  #readHeredoc(word: HeredocWord, line: number): Heredoc {
    let content = "";
    for (let next = this.#scanner.next(); next; next = this.#scanner.next()) {
      let candidate = trimNewline(next.raw);
      if (word.chomp) candidate = candidate.replace(/^\t+/, "");
      if (candidate === word.name) {
        const heredoc: Heredoc = {
          name: word.name,
          content: word.chomp ? chompHeredoc(content) : content,
          expand: word.expand,
          chomp: word.chomp,
        };
        if (word.fd !== undefined) heredoc.fd = word.fd;
        return heredoc;
      }
      content += next.newline ? `${next.raw}\n` : next.raw;
    }
    throw new DockerfileError(
      { file: this.file, line },
      `unterminated heredoc: no line "${word.name}" closes the here-document before the end of the file`,
    );
  }

  #checkDeprecations(instruction: Instruction): void {
    if (instruction.keyword === "MAINTAINER") {
      this.#warn(instruction.line, 'MAINTAINER is deprecated; use LABEL maintainer="…" instead');
    }
    if (instruction.legacyKeyValue) {
      const k = instruction.keyword;
      this.#warn(
        instruction.line,
        `legacy "${k} key value" form; use "${k} key=value" (the legacy form sets one variable to the rest of the line)`,
      );
    }
  }

  #warn(line: number, message: string): void {
    this.#warnings.push({ line, message });
  }
}

/** The instruction that receives the here-documents of a line: RUN, COPY, ADD (also under ONBUILD). */
function heredocTarget(instruction: Instruction): Instruction | null {
  const target = instruction.onbuild ?? instruction;
  if (!HEREDOC_INSTRUCTIONS.includes(target.keyword.toLowerCase()) || target.json) return null;
  return target;
}

/** Turns a parsed line into the contract's instruction form. */
function toInstruction(node: LineNode, line: number, escape: string): Instruction {
  const nested = node.child ? toInstruction(node.child, line, escape) : null;
  const instruction: Instruction = {
    keyword: node.word.toUpperCase(),
    line,
    endLine: line,
    flags: node.flags,
    args: nested ? [nested.keyword, ...nested.args] : argsOf(node, escape),
    json: node.json,
    heredocs: [],
    onbuild: nested,
    original: node.original,
  };
  if (node.cmd === "env" || node.cmd === "label" || node.cmd === "arg") {
    instruction.rawArgs = node.values;
  }
  if (node.legacyKeyValue !== undefined) instruction.legacyKeyValue = node.legacyKeyValue;
  return instruction;
}

/** The contract's `args`: quotes removed for ENV, LABEL and ARG keys and values. */
function argsOf(node: LineNode, escape: string): string[] {
  if (node.cmd === "env" || node.cmd === "label") {
    return node.values.map((value) => unquote(value, escape).value);
  }
  if (node.cmd !== "arg") return node.values;
  const args: string[] = [];
  for (const word of node.values) {
    const eq = word.indexOf("=");
    const key = eq < 0 ? word : word.slice(0, eq);
    const value = eq < 0 ? "" : word.slice(eq + 1);
    args.push(unquote(key, escape).value, unquote(value, escape).value);
  }
  return args;
}

/** True for the keywords BuildKit's parser knows. */
export function isKnownInstruction(keyword: string): boolean {
  return KNOWN_INSTRUCTIONS.includes(keyword.toLowerCase());
}
