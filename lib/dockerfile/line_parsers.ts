/**
 * One logical Dockerfile line (continuations already joined) to one node, the way BuildKit's
 * parser does it: the keyword, the `--flags`, and the arguments as each instruction's line parser
 * produces them (JSON arrays decoded, shell form kept as one string, ENV/LABEL split into keys and
 * values, whitespace-separated words for FROM, EXPOSE, ADD, COPY and VOLUME).
 * @module
 */

import {
  isSpace,
  parseWords,
  splitAsciiBlank,
  splitAsciiBlankOnce,
  trimLeftSpace,
  trimSpace,
} from "./words.ts";

/** A syntax error inside one instruction; the parser adds the file and line. */
export class LineError extends Error {
  constructor(readonly keyword: string, message: string) {
    super(message);
  }
}

/** One parsed line, before it becomes an {@link import("./ast.ts").Instruction}. */
export interface LineNode {
  /** The keyword as written. */
  word: string;
  /** Lower-case keyword, the dispatch key. */
  cmd: string;
  flags: string[];
  /** BuildKit's argument nodes (ENV/LABEL: key, value pairs; ARG: the `k[=v]` words). */
  values: string[];
  /** True for the exec (JSON) form. */
  json: boolean;
  /** For ENV and LABEL: true for the legacy `KEY value` form. */
  legacyKeyValue?: boolean;
  /** For ONBUILD: the nested instruction. */
  child: LineNode | null;
  /** True for an instruction BuildKit does not know (its arguments are ignored). */
  unknown: boolean;
  /** The line as given. */
  original: string;
}

const ARG_PARSERS: Record<string, (rest: string, escape: string) => Parsed> = {
  add: parseMaybeJSONToList,
  arg: (rest, escape) => ({ values: parseWords(rest, escape), json: false }),
  cmd: parseMaybeJSON,
  copy: parseMaybeJSONToList,
  entrypoint: parseMaybeJSON,
  env: (rest, escape) => parseNameVal(rest, "ENV", escape),
  expose: parseWhitespaceDelimited,
  from: parseWhitespaceDelimited,
  healthcheck: parseHealthConfig,
  label: (rest, escape) => parseNameVal(rest, "LABEL", escape),
  maintainer: parseString,
  run: parseMaybeJSON,
  shell: parseMaybeJSON,
  stopsignal: parseString,
  user: parseString,
  volume: parseMaybeJSONToList,
  workdir: parseString,
};

/** The instructions BuildKit's parser knows (ONBUILD included). */
export const KNOWN_INSTRUCTIONS: readonly string[] = [...Object.keys(ARG_PARSERS), "onbuild"];

interface Parsed {
  values: string[];
  json: boolean;
  legacyKeyValue?: boolean;
}

/**
 * How deep ONBUILD may nest here. BuildKit's parser takes any depth, but no nested ONBUILD can be
 * built (`ONBUILD ONBUILD` is an error); the limit keeps absurd inputs from exhausting the stack.
 */
export const MAX_ONBUILD_DEPTH = 100;

/** Parses one logical line into a node; throws {@link LineError} for a syntax error. */
export function parseLine(line: string, escape: string, depth = 0): LineNode {
  const { word, flags, rest } = splitCommand(line);
  const cmd = word.toLowerCase();
  const node: LineNode = {
    word,
    cmd,
    flags,
    values: [],
    json: false,
    child: null,
    unknown: false,
    original: line,
  };
  if (cmd === "onbuild") {
    if (depth >= MAX_ONBUILD_DEPTH) {
      throw new LineError("ONBUILD", `triggers nested more than ${MAX_ONBUILD_DEPTH} levels deep`);
    }
    if (rest !== "") node.child = parseLine(rest, escape, depth + 1);
    return node;
  }
  const parser = ARG_PARSERS[cmd];
  if (!parser) {
    node.unknown = true;
    node.values = rest === "" ? [] : splitAsciiBlank(rest);
    return node;
  }
  try {
    Object.assign(node, parser(rest, escape));
  } catch (err) {
    if (err instanceof ArgError) throw new LineError(word.toUpperCase(), err.message);
    throw err;
  }
  return node;
}

class ArgError extends Error {}

/** Splits a line into keyword, flags and the (trimmed) rest, like BuildKit's `splitCommand`. */
export function splitCommand(line: string): { word: string; flags: string[]; rest: string } {
  const parts = splitAsciiBlankOnce(trimSpace(line));
  if (parts.length < 2) return { word: parts[0], flags: [], rest: "" };
  const { rest, flags } = extractBuilderFlags(parts[1]);
  return { word: parts[0], flags, rest: trimSpace(rest) };
}

/**
 * Takes the leading `--flag[=value]` words off the arguments (quotes removed, `\` escapes
 * applied; a lone `--` ends the flags and is dropped). Returns the flags and the rest.
 */
export function extractBuilderFlags(line: string): { rest: string; flags: string[] } {
  const flags: string[] = [];
  const n = line.length;
  let phase: "spaces" | "word" | "quote" = "spaces";
  let word = "";
  let quote = "";
  let blankOK = false;
  for (let pos = 0; pos <= n; pos++) {
    const ch = pos < n ? line[pos] : "";
    if (phase === "spaces") {
      if (pos === n) break;
      if (isSpace(ch.charCodeAt(0))) continue;
      if (ch !== "-" || pos + 1 === n || line[pos + 1] !== "-") {
        return { rest: line.slice(pos), flags };
      }
      phase = "word";
    }
    if (pos === n) {
      if (word !== "--" && (blankOK || word.length > 0)) flags.push(word);
      break;
    }
    if (phase === "word") {
      if (isSpace(ch.charCodeAt(0))) {
        phase = "spaces";
        if (word === "--") return { rest: line.slice(pos), flags };
        if (blankOK || word.length > 0) flags.push(word);
        word = "";
        blankOK = false;
      } else if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = "quote";
      } else if (ch === "\\") {
        if (pos + 1 < n) word += line[++pos];
      } else word += ch;
      continue;
    }
    if (ch === quote) phase = "word";
    else if (ch === "\\") {
      if (pos + 1 === n) phase = "word";
      else word += line[++pos];
    } else word += ch;
  }
  return { rest: "", flags };
}

/** Thrown when a JSON array holds something other than strings. */
const NOT_STRING_ARRAY = "when using JSON array syntax, arrays must be comprised of strings only";

/** Go's `encoding/json` nesting limit; deeper input is invalid JSON there. */
const MAX_JSON_DEPTH = 10000;

/**
 * Decodes `rest` as a JSON array of strings, as Go's `encoding/json` would: null when it is not
 * a (valid) JSON array, the strings otherwise. Throws for a valid array with a non-string in it.
 */
export function parseJSONArray(rest: string): string[] | null {
  const text = trimLeftSpace(rest);
  if (!text.startsWith("[")) return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (!Array.isArray(value)) return null;
  const out: string[] = [];
  for (const item of value) {
    if (typeof item !== "string") {
      if (jsonDepth(text) > MAX_JSON_DEPTH) return null;
      throw new ArgError(NOT_STRING_ARRAY);
    }
    // Go turns an unpaired surrogate escape into U+FFFD.
    out.push(item.toWellFormed());
  }
  return out;
}

function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === "\\") i++;
    } else if (c === "[" || c === "{") max = Math.max(max, ++depth);
    else if (c === "]" || c === "}") depth--;
  }
  return max;
}

function parseMaybeJSON(rest: string): Parsed {
  if (rest === "") return { values: [], json: false };
  const decoded = parseJSONArray(rest);
  if (decoded) return { values: decoded, json: true };
  return { values: [rest], json: false };
}

function parseMaybeJSONToList(rest: string): Parsed {
  const decoded = parseJSONArray(rest);
  if (decoded) return { values: decoded, json: true };
  return parseWhitespaceDelimited(rest);
}

function parseWhitespaceDelimited(rest: string): Parsed {
  return { values: rest === "" ? [] : splitAsciiBlank(rest), json: false };
}

function parseString(rest: string): Parsed {
  return { values: rest === "" ? [] : [rest], json: false };
}

/** HEALTHCHECK: the type word (`CMD`, `NONE`, …), then the command as for CMD. */
function parseHealthConfig(rest: string): Parsed {
  let sep = 0;
  while (sep < rest.length && !isSpace(rest.charCodeAt(sep))) sep++;
  if (sep === 0) return { values: [], json: false };
  let next = sep;
  while (next < rest.length && isSpace(rest.charCodeAt(next))) next++;
  const command = parseMaybeJSON(rest.slice(next));
  return { values: [rest.slice(0, sep), ...command.values], json: command.json };
}

/**
 * ENV and LABEL: `k=v` words, or the legacy `KEY value…` form when the first word has no `=`
 * (the value is then the rest of the line as written).
 */
function parseNameVal(rest: string, keyword: string, escape: string): Parsed {
  const words = parseWords(rest, escape);
  if (words.length === 0) return { values: [], json: false };
  if (!words[0].includes("=")) {
    const parts = splitAsciiBlankOnce(rest);
    if (parts.length < 2) {
      throw new ArgError(
        `must have two arguments: ${keyword} name=value (or the legacy ${keyword} name value)`,
      );
    }
    return { values: parts, json: false, legacyKeyValue: true };
  }
  const values: string[] = [];
  for (const word of words) {
    const eq = word.indexOf("=");
    if (eq < 0) {
      throw new ArgError(
        `can't find = in ${JSON.stringify(word)}; must be of the form name=value`,
      );
    }
    values.push(word.slice(0, eq), word.slice(eq + 1));
  }
  return { values, json: false, legacyKeyValue: false };
}
