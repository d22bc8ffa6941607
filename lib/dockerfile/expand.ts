/**
 * Which words of which instruction BuildKit expands, and how: ADD/COPY sources, destination,
 * `--chown`, `--chmod` (and ADD `--checksum`), ENV and LABEL keys and values (against the
 * variables in force before the instruction), EXPOSE (split into words), STOPSIGNAL, USER,
 * VOLUME, WORKDIR, the fields of RUN `--mount`, and the bodies of expanding COPY/ADD heredocs.
 * RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK, MAINTAINER and ONBUILD are left as written (a
 * shell, or the child build, expands them). ARG values are resolved by the planner.
 *
 * Also: located errors (`FILE:LINE: …`) and the raw key/value words of ENV, LABEL and ARG
 * (quotes kept, as BuildKit's parser keeps them for the lexer to remove).
 * @module
 */
import type { Instruction } from "./ast.ts";
import { KanikoError } from "../errors.ts";
import { type EnvLookup, ShellLex } from "./shell_lex.ts";

/** Where expansion happens: the Dockerfile's name (for errors) and its lexers. */
export interface ExpandContext {
  /** The Dockerfile as the user named it, for `FILE:LINE:` prefixes. */
  file: string;
  /** The lexer with the Dockerfile's escape character. */
  lex: ShellLex;
  /** The lexer for heredoc bodies (escape `\`); see {@link expandHeredoc}. */
  rawLex: ShellLex;
  /** The escape character in force. */
  escape: "\\" | "`";
}

/** Makes an {@link ExpandContext} for a Dockerfile whose escape character is `escape`. */
export function expandContext(file: string, escape: string): ExpandContext {
  const esc = escape === "`" ? "`" : "\\";
  return {
    file,
    escape: esc,
    lex: new ShellLex(esc),
    rawLex: new ShellLex("\\"),
  };
}

/** A short one-line form of an instruction for messages (at most 60 characters). */
export function summarize(inst: Instruction): string {
  const text = (inst.original || `${inst.keyword} ${inst.args.join(" ")}`)
    .replace(/\s+/g, " ")
    .trim();
  return text.length > 60 ? `${text.slice(0, 59)}…` : text;
}

/** A one-line {@link KanikoError} `FILE:LINE: INSTRUCTION: message`. */
export function locatedError(
  file: string,
  inst: Instruction | undefined,
  message: string,
  options: { hint?: string; cause?: unknown } = {},
): KanikoError {
  const where = inst ? `${file}:${inst.line}: ${summarize(inst)}: ` : `${file}: `;
  return new KanikoError(where + message, options);
}

/** Runs `fn`, turning a KanikoError it throws (e.g. an ExpansionError) into a located one. */
export function located<T>(ctx: ExpandContext, inst: Instruction, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof KanikoError && !e.message.startsWith(`${ctx.file}:`)) {
      throw locatedError(ctx.file, inst, e.message, { hint: e.hint, cause: e });
    }
    throw e;
  }
}

/** Expands one word of `inst` (errors located at `inst`). */
export function expandWord(
  ctx: ExpandContext,
  inst: Instruction,
  word: string,
  env: EnvLookup,
): string {
  return located(ctx, inst, () => ctx.lex.processWord(word, env));
}

/** A flag split into its name and value (`--from=x` → `from`, `x`; `--link` → `link`). */
export interface ParsedFlag {
  name: string;
  value?: string;
}

/** Splits `--name[=value]` (the leading dashes removed, the name lower-cased as BuildKit does). */
export function parseFlag(flag: string): ParsedFlag {
  const body = flag.replace(/^--?/, "");
  const eq = body.indexOf("=");
  return eq < 0
    ? { name: body.toLowerCase() }
    : { name: body.slice(0, eq).toLowerCase(), value: body.slice(eq + 1) };
}

/** The value of the last `--name=value` flag of `inst`, if any. */
export function flagValue(inst: Instruction, name: string): string | undefined {
  let value: string | undefined;
  for (const flag of inst.flags) {
    const parsed = parseFlag(flag);
    if (parsed.name === name) value = parsed.value ?? "";
  }
  return value;
}

/** The values of every `--name=value` flag of `inst`, in order. */
export function flagValues(inst: Instruction, name: string): string[] {
  return inst.flags.map(parseFlag).filter((f) => f.name === name).map((f) => f.value ?? "");
}

/** The result of expanding one instruction. */
export interface ExpandedInstruction {
  /** `args` after expansion (same shape, except EXPOSE, whose words may split). */
  expanded: string[];
  /** `flags` after expansion (only the flags BuildKit expands change). */
  flags: string[];
  /** Heredoc bodies after expansion (COPY/ADD heredocs without a quoted delimiter). */
  heredocs: { name: string; content: string }[];
}

const SINGLE_WORD = new Set(["STOPSIGNAL", "USER", "WORKDIR", "VOLUME"]);
const FLAG_EXPANDED: Record<string, string[]> = {
  COPY: ["chown", "chmod"],
  ADD: ["chown", "chmod", "checksum"],
};

/**
 * Expands `inst` as BuildKit does against `env` (the variables in force before it). ARG is not
 * handled here (see the planner); ENV and LABEL come back as expanded key/value pairs.
 */
export function expandInstruction(
  ctx: ExpandContext,
  inst: Instruction,
  env: EnvLookup,
): ExpandedInstruction {
  const same = { expanded: [...inst.args], flags: [...inst.flags], heredocs: [] };
  switch (inst.keyword) {
    case "ENV":
    case "LABEL":
      return { ...same, expanded: expandPairs(ctx, inst, env).flat() };
    case "EXPOSE":
      return {
        ...same,
        expanded: inst.args.flatMap((a) => located(ctx, inst, () => ctx.lex.processWords(a, env))),
      };
    case "COPY":
    case "ADD":
      return expandCopy(ctx, inst, env);
    case "RUN":
      return { ...same, flags: inst.flags.map((f) => expandMountFlag(ctx, inst, f, env)) };
    default:
      if (SINGLE_WORD.has(inst.keyword)) {
        return { ...same, expanded: inst.args.map((a) => expandWord(ctx, inst, a, env)) };
      }
      return same;
  }
}

/** ENV/LABEL: the expanded `[key, value]` pairs (keys expanded too, as BuildKit does). */
export function expandPairs(
  ctx: ExpandContext,
  inst: Instruction,
  env: EnvLookup,
): [string, string][] {
  return rawPairs(ctx, inst).map(([k, v]) => [
    expandWord(ctx, inst, k, env),
    expandWord(ctx, inst, v, env),
  ]);
}

function expandCopy(ctx: ExpandContext, inst: Instruction, env: EnvLookup): ExpandedInstruction {
  const expandable = FLAG_EXPANDED[inst.keyword];
  const flags = inst.flags.map((flag) => {
    const parsed = parseFlag(flag);
    if (!expandable.includes(parsed.name) || parsed.value === undefined) return flag;
    return `--${parsed.name}=${expandWord(ctx, inst, parsed.value, env)}`;
  });
  const markers = new Set(inst.heredocs.map((h) => h.name));
  const expanded = inst.args.map((arg) =>
    isHeredocMarker(arg, markers) ? arg : expandWord(ctx, inst, arg, env)
  );
  const heredocs = inst.heredocs.map((h) => ({
    name: h.name,
    content: h.expand ? expandHeredoc(ctx, inst, h.content, env) : h.content,
  }));
  return { expanded, flags, heredocs };
}

/**
 * A heredoc body as BuildKit's raw expansion (`SkipProcessQuotes`): `$` expansions and `\`
 * escapes, but quotes are ordinary characters (so `'$V'` expands). Quotes are escaped before
 * the lexer sees them to get that.
 */
export function expandHeredoc(
  ctx: ExpandContext,
  inst: Instruction,
  content: string,
  env: EnvLookup,
): string {
  let guarded = "";
  for (let i = 0; i < content.length; i++) {
    const ch = content[i];
    if (ch === "\\" && i + 1 < content.length) guarded += ch + content[++i];
    else guarded += ch === "'" || ch === '"' ? `\\${ch}` : ch;
  }
  return located(ctx, inst, () => ctx.rawLex.processWord(guarded, env));
}

/** True for a `<<EOF`, `<<-EOF`, `<<"EOF"` word naming one of the instruction's heredocs. */
export function isHeredocMarker(word: string, names: ReadonlySet<string>): boolean {
  const m = /^<<-?\s*(["']?)([^"'<]+)\1$/.exec(word);
  return m !== null && names.has(m[2]);
}

/**
 * RUN `--mount=…`: each `key=value` field's value expanded (BuildKit refuses a variable in
 * `from`, see the planner); other flags unchanged.
 */
function expandMountFlag(
  ctx: ExpandContext,
  inst: Instruction,
  flag: string,
  env: EnvLookup,
): string {
  const parsed = parseFlag(flag);
  if (parsed.name !== "mount" || parsed.value === undefined) return flag;
  const fields = splitCsv(parsed.value).map((field) => {
    const eq = field.indexOf("=");
    if (eq < 0) return field;
    return field.slice(0, eq + 1) + expandWord(ctx, inst, field.slice(eq + 1), env);
  });
  return `--mount=${fields.map(quoteCsv).join(",")}`;
}

/** The `key=value` fields of a RUN `--mount` value, lower-case keys (Go `encoding/csv`). */
export function mountFields(value: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const field of splitCsv(value)) {
    const eq = field.indexOf("=");
    if (eq < 0) out.set(field.toLowerCase(), "");
    else out.set(field.slice(0, eq).toLowerCase(), field.slice(eq + 1));
  }
  return out;
}

/** Splits one CSV record: commas separate fields, `"…"` quotes a field, `""` is a quote. */
export function splitCsv(text: string): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = "";
    if (text[i] === '"') {
      i++;
      while (i < text.length) {
        if (text[i] === '"' && text[i + 1] === '"') (field += '"'), (i += 2);
        else if (text[i] === '"') break;
        else field += text[i++];
      }
      i++;
      while (i < text.length && text[i] !== ",") field += text[i++];
    } else {
      while (i < text.length && text[i] !== ",") field += text[i++];
    }
    fields.push(field);
    if (i >= text.length) return fields;
    i++;
  }
}

function quoteCsv(field: string): string {
  return /[",\n]/.test(field) ? `"${field.replaceAll('"', '""')}"` : field;
}

/**
 * The text after the keyword and flags of an instruction, as BuildKit's parser sees it (line
 * continuations removed).
 */
export function instructionRest(inst: Instruction, escape: string): string {
  let text = (inst.original ?? "").replace(/^\s*\S+/, "");
  const continuation = new RegExp(`${escape === "`" ? "`" : "\\\\"}[ \\t]*\\r?\\n`, "g");
  text = text.replace(continuation, "").trim();
  for (let n = 0; n < inst.flags.length && text.startsWith("--"); n++) {
    const words = splitWords(text, escape);
    if (words.length === 0) break;
    text = text.slice(words[0].end).trim();
    if (words[0].text === "--") break;
  }
  return text;
}

/** A word of {@link splitWords} and where it ends in the text. */
interface Word {
  text: string;
  end: number;
}

/**
 * BuildKit's `parseWords`: whitespace-separated words, quotes and escapes kept in the word but
 * respected (a quoted space does not split; `''` and `""` make a word even when empty).
 */
export function splitWords(rest: string, escape: string): Word[] {
  const words: Word[] = [];
  let word = "", inWord = false, quote = "", blankOk = false, i = 0;
  const next = () => {
    const ch = String.fromCodePoint(rest.codePointAt(i)!);
    i += ch.length;
    return ch;
  };
  const flush = (end: number) => {
    if (blankOk || word.length > 0) words.push({ text: word, end });
    word = "", inWord = false, blankOk = false;
  };
  while (i < rest.length) {
    const start = i;
    const ch = next();
    if (quote) {
      if (ch === quote) quote = "";
      else if (ch === escape && quote !== "'") {
        if (i < rest.length) word += ch + next();
        continue;
      }
      word += ch;
    } else if (/\s/.test(ch)) {
      if (inWord) flush(start);
    } else {
      inWord = true;
      if (ch === "'" || ch === '"') (quote = ch), (blankOk = true);
      if (ch === escape) {
        if (i < rest.length) word += ch + next();
        continue;
      }
      word += ch;
    }
  }
  if (inWord) flush(i);
  return words;
}

/**
 * ENV/LABEL `[key, value]` pairs with the quoting as written (BuildKit's `parseNameVal`: the
 * legacy `ENV key value…` form, or `key=value` words). Falls back to the parser's `args` when the
 * text cannot be re-read.
 */
export function rawPairs(ctx: { escape: string }, inst: Instruction): [string, string][] {
  const fromArgs = () => {
    const pairs: [string, string][] = [];
    for (let i = 0; i + 1 < inst.args.length; i += 2) pairs.push([inst.args[i], inst.args[i + 1]]);
    return pairs;
  };
  const rest = instructionRest(inst, ctx.escape);
  const words = splitWords(rest, ctx.escape).map((w) => w.text);
  let pairs: [string, string][];
  if (words.length > 0 && !words[0].includes("=")) {
    const m = /^(\S+)\s+([\s\S]*)$/.exec(rest);
    pairs = m ? [[m[1], m[2]]] : [];
  } else if (words.every((w) => w.includes("="))) {
    pairs = words.map((w) => [w.slice(0, w.indexOf("=")), w.slice(w.indexOf("=") + 1)]);
  } else {
    return fromArgs();
  }
  return pairs.length * 2 === inst.args.length ? pairs : fromArgs();
}

/** One `ARG` declaration: the name and, when given, the default as written (quotes kept). */
export interface ArgDeclaration {
  key: string;
  value?: string;
}

/** The declarations of an ARG instruction (BuildKit's `parseNameOrNameVal`). */
export function argDeclarations(ctx: { escape: string }, inst: Instruction): ArgDeclaration[] {
  const words = splitWords(instructionRest(inst, ctx.escape), ctx.escape).map((w) => w.text);
  return words.map((w) => {
    const eq = w.indexOf("=");
    return eq < 0 ? { key: w } : { key: w.slice(0, eq), value: w.slice(eq + 1) };
  });
}
