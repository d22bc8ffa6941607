/**
 * Flag tables: one {@link FlagSpec} per flag describes its name, form, default and help. This
 * module converts a flag's values, renders its help term and description, and normalises
 * Kaniko's flag syntax: booleans as `--flag`, `--flag=true`, `--flag=false` (Go's spellings too),
 * `-c=value` short forms.
 * @module
 */

import { UsageError } from "../errors.ts";
import { isBoolWord, parseBool, parseChoice, parseInteger } from "./values.ts";

/** The shape of a flag's value. */
export type FlagKind = "bool" | "string" | "int" | "choice" | "list";

/** One command-line flag. */
export interface FlagSpec {
  /** Long name without dashes, exactly as Kaniko spells it (`snapshot-mode`, `tarPath`). */
  name: string;
  /** One-letter short name (`c` for `-c`). */
  short?: string;
  /** Value shape; `list` flags are repeatable and accumulate. */
  kind: FlagKind;
  /** Placeholder for the value in help (`ref`, `HOST=PATH`). */
  value?: string;
  /** One-line description. */
  help: string;
  /** Help section. */
  group: string;
  /** Value when the flag is absent (already parsed: a number for `int`, ms for durations). */
  default?: unknown;
  /** How the default is shown in help when it differs from the value (`336h`, `host`). */
  defaultHelp?: string;
  /** Allowed values of a `choice` flag. */
  choices?: readonly string[];
  /** Lower bound of an `int` flag (default 0). */
  min?: number;
  /**
   * Converts and validates one value. For `list` flags it returns the items this occurrence adds
   * (a comma list may add several).
   */
  parse?: (value: string, flag: string) => unknown;
  /** Environment variable mentioned in help (read by the options mapper). */
  env?: string;
  /** Another flag this one feeds (`platform` → `multi-platform`). */
  aliasOf?: string;
  /** With `aliasOf`: warn that this spelling is deprecated. */
  deprecated?: boolean;
  /** Left out of help. */
  hidden?: boolean;
}

/** Reads an environment variable (injectable for tests). */
export type EnvLookup = (name: string) => string | undefined;

/** Flags of one command after parsing, keyed by long name. */
export interface ParsedFlags {
  /** Values, defaults applied; aliases folded into the flag they feed. */
  values: Record<string, unknown>;
  /** Names of the flags given on the command line (aliases count for their target). */
  given: Set<string>;
  /** Deprecation warnings to log once logging is configured. */
  warnings: string[];
}

/** The flag as help lists it: `-d, --destination <ref>`, or `--cache` for a boolean. */
export function flagTerm(spec: FlagSpec): string {
  const short = spec.short ? `-${spec.short}, ` : "";
  const form = spec.kind === "bool" ? "" : ` <${spec.value ?? "value"}>`;
  return `${short}--${spec.name}${form}`;
}

/**
 * The flag's help description: its text, `(repeatable)`, `(env: …)`, then its choices and default
 * in parentheses (`(choices: "gzip", "zstd", default: "gzip")`).
 */
export function describeFlag(spec: FlagSpec): string {
  let text = spec.help;
  if (spec.kind === "list") text += " (repeatable)";
  if (spec.env) text += ` (env: ${spec.env})`;
  const extra: string[] = [];
  if (spec.choices) {
    extra.push(`choices: ${spec.choices.map((choice) => JSON.stringify(choice)).join(", ")}`);
  }
  if (spec.default !== undefined) {
    extra.push(`default: ${spec.defaultHelp || JSON.stringify(spec.default)}`);
  }
  return extra.length > 0 ? `${text} (${extra.join(", ")})` : text;
}

/**
 * Converts one value of a flag. `previous` is the flag's value so far: a `list` flag returns it
 * with this occurrence's items appended; any other flag returns the new value alone.
 */
export function parseFlagValue(spec: FlagSpec, value: string, previous: unknown): unknown {
  const flag = `--${spec.name}`;
  switch (spec.kind) {
    case "bool":
      return parseBool(value, flag);
    case "int":
      return spec.parse
        ? spec.parse(value, flag)
        : parseInteger(value, flag, { min: spec.min ?? 0 });
    case "choice":
      return spec.parse
        ? spec.parse(value, flag)
        : parseChoice(value, flag, { choices: spec.choices ?? [] });
    case "list": {
      const items = spec.parse ? spec.parse(value, flag) as unknown[] : [value];
      return [...(Array.isArray(previous) ? previous : []), ...items];
    }
    default:
      return spec.parse ? spec.parse(value, flag) : value;
  }
}

/**
 * Rewrites `argv` so that every boolean reads `--flag=true|false` (it then never takes the next
 * word as the flag's value), and `-c=value` reads `-c value`. Throws a {@link UsageError} for
 * a bad boolean spelling, and for `--flag false` written with a space, which Kaniko would have
 * silently read as `--flag` plus a stray word.
 */
export function normalizeArgs(argv: readonly string[], specs: readonly FlagSpec[]): string[] {
  const byLong = new Map(specs.map((spec) => [spec.name, spec]));
  const byShort = new Map(specs.filter((s) => s.short).map((spec) => [spec.short!, spec]));
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i];
    if (token === "--") {
      out.push(...argv.slice(i));
      break;
    }
    const long = /^--([^=]+)(?:=([\s\S]*))?$/.exec(token);
    const spec = long ? byLong.get(long[1]) : shortSpec(token, byShort);
    if (!spec) {
      out.push(token);
      continue;
    }
    const inline = long ? long[2] : token.length > 2 ? token.slice(2).replace(/^=/, "") : undefined;
    const name = long ? `--${spec.name}` : `-${spec.short}`;
    if (spec.kind === "bool") {
      if (inline === undefined && i + 1 < argv.length && isBoolWord(argv[i + 1])) {
        throw new UsageError(
          `${name} takes its value after '=': write ${name}=${argv[i + 1]} (a separate '${
            argv[i + 1]
          }' would be a stray argument)`,
        );
      }
      out.push(`--${spec.name}=${inline === undefined ? "true" : parseBool(inline, name)}`);
    } else if (inline !== undefined) {
      out.push(long ? token : name, ...(long ? [] : [inline]));
    } else {
      out.push(token);
      if (i + 1 < argv.length) out.push(argv[++i]);
    }
  }
  return out;
}

function shortSpec(token: string, byShort: Map<string, FlagSpec>): FlagSpec | undefined {
  return /^-[A-Za-z]/.test(token) ? byShort.get(token[1]) : undefined;
}

/**
 * Collects the parsed option values into {@link ParsedFlags}: applies `[]` for absent lists, folds
 * aliases and deprecated spellings into their target flag, and records deprecation warnings.
 * `read.source(name)` is `"cli"` for a flag given on the command line.
 */
export function collectFlags(
  specs: readonly FlagSpec[],
  read: { value(name: string): unknown; source(name: string): string | undefined },
): ParsedFlags {
  const values: Record<string, unknown> = {};
  const given = new Set<string>();
  for (const spec of specs) {
    const value = read.value(spec.name);
    values[spec.name] = value === undefined && spec.kind === "list" ? [] : value;
    if (read.source(spec.name) === "cli") given.add(spec.name);
  }
  const warnings: string[] = [];
  for (const spec of specs) {
    if (!spec.aliasOf || !given.has(spec.name)) continue;
    const target = spec.aliasOf;
    values[target] = spec.kind === "list"
      ? [...(values[target] as unknown[]), ...(values[spec.name] as unknown[])]
      : values[spec.name];
    given.add(target);
    if (spec.deprecated) warnings.push(`Flag --${spec.name} is deprecated. Use: --${target}`);
  }
  return { values, given, warnings };
}

/** Typed access to {@link ParsedFlags}. */
export class FlagValues {
  readonly #parsed: ParsedFlags;

  constructor(parsed: ParsedFlags) {
    this.#parsed = parsed;
  }

  /** Whether the command defines the flag. */
  has(name: string): boolean {
    return name in this.#parsed.values;
  }

  /** Whether the flag was on the command line. */
  given(name: string): boolean {
    return this.#parsed.given.has(name);
  }

  /** A string flag; `""` when absent without default. */
  string(name: string): string {
    const value = this.#parsed.values[name];
    return value === undefined || value === null ? "" : String(value);
  }

  /** A string flag, or `undefined` when absent or empty. */
  optional(name: string): string | undefined {
    return this.string(name) || undefined;
  }

  /** A boolean flag. */
  bool(name: string): boolean {
    return this.#parsed.values[name] === true;
  }

  /** A number flag (int, duration, size). */
  number(name: string): number {
    return Number(this.#parsed.values[name] ?? 0);
  }

  /** A `choice` flag's value. */
  choice<T extends string>(name: string): T {
    return this.string(name) as T;
  }

  /** A repeatable flag's accumulated items. */
  list<T = string>(name: string): T[] {
    const value = this.#parsed.values[name];
    return Array.isArray(value) ? value as T[] : [];
  }
}

/** Throws unless every flag name in the table is unique (guards the tables in tests). */
export function assertUniqueFlags(specs: readonly FlagSpec[]): void {
  const seen = new Set<string>();
  for (const spec of specs) {
    for (const key of [`--${spec.name}`, spec.short ? `-${spec.short}` : undefined]) {
      if (key && seen.has(key)) throw new Error(`duplicate flag ${key}`);
      if (key) seen.add(key);
    }
  }
}
