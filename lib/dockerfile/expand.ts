/**
 * Which words of which instruction BuildKit expands, and how: ADD/COPY sources, destination,
 * `--chown`, `--chmod` (and ADD `--checksum`), ENV and LABEL keys and values (against the
 * variables in force before the instruction), EXPOSE (split into words), STOPSIGNAL, USER,
 * VOLUME, WORKDIR, the fields of RUN `--mount`, and the bodies of expanding COPY/ADD heredocs.
 * RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK, MAINTAINER and ONBUILD are left as written (a
 * shell, or the child build, expands them). ARG values are resolved by the planner.
 *
 * Also: located errors (`FILE:LINE: …`) and the key/value words of ENV, LABEL and ARG as the
 * parser keeps them (`Instruction.rawArgs`: quotes kept for the lexer to remove).
 * @module
 */
import type { Instruction } from "./ast.ts";
import { KanikoError } from "../errors.ts";
import { parseHeredocWord } from "./heredoc.ts";
import { type EnvLookup, ShellLex } from "./shell_lex.ts";
import { trimSpace } from "./words.ts";

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
/** BuildKit's `parseVolume` trims each path (Go `strings.TrimSpace`) before expansion. */
const TRIMMED = new Set(["VOLUME"]);
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
        const words = TRIMMED.has(inst.keyword) ? inst.args.map(trimSpace) : inst.args;
        return { ...same, expanded: words.map((a) => expandWord(ctx, inst, a, env)) };
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
  return rawPairs(inst).map(([k, v]) => [
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

/** True for a `<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF` word naming one of the instruction's heredocs. */
export function isHeredocMarker(word: string, names: ReadonlySet<string>): boolean {
  const heredoc = parseHeredocWord(word);
  return heredoc !== null && names.has(heredoc.name);
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
 * ENV/LABEL `[key, value]` pairs with the quoting as written (BuildKit's `parseNameVal`: the
 * legacy `ENV key value…` form, or `key=value` words), from the parser's `rawArgs`; the parser's
 * `args` when an instruction has none.
 */
export function rawPairs(inst: Instruction): [string, string][] {
  const words = inst.rawArgs ?? inst.args;
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < words.length; i += 2) pairs.push([words[i], words[i + 1]]);
  return pairs;
}

/** One `ARG` declaration: the name and, when given, the default as written (quotes kept). */
export interface ArgDeclaration {
  key: string;
  value?: string;
}

/**
 * The declarations of an ARG instruction (BuildKit's `parseNameOrNameVal` words, split at the
 * first `=` as `instructions.parseArg` does), from the parser's `rawArgs`.
 */
export function argDeclarations(inst: Instruction): ArgDeclaration[] {
  return (inst.rawArgs ?? []).map((w) => {
    const eq = w.indexOf("=");
    return eq < 0 ? { key: w } : { key: w.slice(0, eq), value: w.slice(eq + 1) };
  });
}
