/**
 * Reads one command's part of the command line into flag values and positional arguments.
 *
 * The grammar is Kaniko's (and, word for word, what this CLI accepted while it used commander):
 * flags and arguments mix in any order; `--flag value` takes the next word whatever it looks like;
 * a negative number such as `-5` is an argument; after `--` every word is an argument; the first
 * unknown flag is the one reported, and `-h`/`--help` anywhere (outside a value) asks for help.
 *
 * Deliberately without commander and without `node:util`'s `parseArgs`: loading CommonJS (such
 * as commander) or `node:util` (and `node:process`, `node:events`, `node:fs`, `node:assert`) into
 * a Deno 2.9 process makes streamed registry uploads use about 30 MB more memory for the rest of
 * the process (copying a 277 MiB blob: peak RSS about 150 MB instead of about 122 MB).
 * `tests/cli/no_cjs_test.ts` guards the module graph.
 * @module
 */

import {
  type CommandSpec,
  missingArgumentError,
  missingValueError,
  tooManyArgumentsError,
  unknownFlagError,
} from "./commands.ts";
import {
  collectFlags,
  type FlagSpec,
  normalizeArgs,
  type ParsedFlags,
  parseFlagValue,
} from "./flag_spec.ts";

/** One value given for a known flag. */
export interface FlagWord {
  /** The flag it was given for (a short or alias form counts as that flag). */
  spec: FlagSpec;
  /** The value as written. */
  value: string;
}

/** A command line split into flags, arguments and what went wrong. */
export interface SplitArgs {
  /** Every value given for a known flag, in order. */
  flags: FlagWord[];
  /** Positional arguments, in order. */
  operands: string[];
  /** The first unknown flag, as written. */
  unknown?: string;
  /** Whether `-h` or `--help` was given. */
  help: boolean;
  /** A flag that ends the line without the value it needs. */
  missingValue?: FlagSpec;
}

/** The result of {@link parseCommandLine}. */
export type CommandLine =
  | { help: true }
  | { help: false; flags: ParsedFlags; args: string[] };

/**
 * Parses one command's words (after {@link normalizeArgs}'s checks). Throws a `UsageError`, in
 * this order: for the first bad value, a flag without its value, then (unless help is asked for)
 * an unknown flag, a missing argument, a surplus argument.
 */
export function parseCommandLine(spec: CommandSpec, argv: readonly string[]): CommandLine {
  const split = splitArgs(normalizeArgs(argv, spec.flags), spec.flags);
  const { values, given } = readFlags(split.flags, spec.flags);
  if (split.missingValue) throw missingValueError(split.missingValue, spec);
  if (split.help) return { help: true };
  if (split.unknown !== undefined) throw unknownFlagError(split.unknown, spec);
  const missing = spec.args[split.operands.length];
  if (missing) throw missingArgumentError(missing, spec);
  if (split.operands.length > spec.args.length) throw tooManyArgumentsError(split.operands, spec);
  const flags = collectFlags(spec.flags, {
    value: (name) => values.get(name),
    source: (name) => given.has(name) ? "cli" : undefined,
  });
  return { help: false, flags, args: split.operands };
}

/**
 * Splits normalised words: a known value flag takes the next word, whatever it is; `--` ends the
 * flags; a word starting with `-` that is no known flag (nor a negative number) is unknown, and
 * from the first unknown flag on, the remaining words count as unknown too (so `-h` there still
 * asks for help, while a stray word is not reported as an argument).
 */
export function splitArgs(words: readonly string[], specs: readonly FlagSpec[]): SplitArgs {
  const known = new Map<string, FlagSpec>();
  for (const spec of specs) {
    known.set(`--${spec.name}`, spec);
    if (spec.short) known.set(`-${spec.short}`, spec);
  }
  const split: SplitArgs = { flags: [], operands: [], help: false };
  const unknown: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i];
    const rest = unknown.length > 0 ? unknown : split.operands;
    if (word === "--") {
      rest.push(...(rest === unknown ? words.slice(i) : words.slice(i + 1)));
      break;
    }
    const inline = /^--[^=]+=/.test(word) ? word.indexOf("=") : -1;
    const spec = known.get(inline < 0 ? word : word.slice(0, inline));
    if (spec && inline >= 0) {
      split.flags.push({ spec, value: word.slice(inline + 1) });
    } else if (spec && spec.kind === "bool") {
      split.flags.push({ spec, value: "true" }); // (normalizeArgs already wrote booleans with `=`)
    } else if (spec && i + 1 < words.length) {
      split.flags.push({ spec, value: words[++i] });
    } else if (spec) {
      split.missingValue = spec;
      break;
    } else if (rest === split.operands && isFlagLike(word)) {
      unknown.push(word);
    } else {
      rest.push(word);
    }
  }
  split.unknown = unknown[0];
  split.help = unknown.some((word) => word === "-h" || word === "--help");
  return split;
}

function isFlagLike(word: string): boolean {
  return word.length > 1 && word.startsWith("-") && !/^-(\d+|\d*\.\d+)(e[+-]?\d+)?$/.test(word);
}

/** Converts each flag value in order (a bad value throws at once), starting from the defaults. */
function readFlags(words: readonly FlagWord[], specs: readonly FlagSpec[]) {
  const values = new Map<string, unknown>();
  for (const spec of specs) if (spec.default !== undefined) values.set(spec.name, spec.default);
  const given = new Set<string>();
  for (const { spec, value } of words) {
    values.set(spec.name, parseFlagValue(spec, value, values.get(spec.name)));
    given.add(spec.name);
  }
  return { values, given };
}
