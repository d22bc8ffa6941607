/**
 * Parsers for flag values. Each takes the raw text and the flag it came from (`--push-retry`),
 * and throws a {@link UsageError} naming the flag and the expected form when the text is bad.
 * @module
 */

import { UsageError } from "../errors.ts";

/** Go's `strconv.ParseBool` spellings (what Kaniko's pflag accepts). */
const TRUE_WORDS = new Set(["1", "t", "T", "TRUE", "true", "True"]);
const FALSE_WORDS = new Set(["0", "f", "F", "FALSE", "false", "False"]);

/** True when `text` is one of the spellings of a boolean that Kaniko accepts. */
export function isBoolWord(text: string): boolean {
  return TRUE_WORDS.has(text) || FALSE_WORDS.has(text);
}

/** Parses `true`/`false` (and Go's other spellings: `1`, `t`, `TRUE`, `0`, `f`, …). */
export function parseBool(text: string, flag: string): boolean {
  if (TRUE_WORDS.has(text)) return true;
  if (FALSE_WORDS.has(text)) return false;
  throw new UsageError(
    `invalid value ${quote(text)} for ${flag}: expected ${flag}, ${flag}=true or ${flag}=false`,
  );
}

/** Parses a whole decimal number, at least `min` (default 0). */
export function parseInteger(text: string, flag: string, options: { min?: number } = {}): number {
  const min = options.min ?? 0;
  const value = /^[+-]?\d+$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isSafeInteger(value) || value < min) {
    const range = min === 0 ? "a whole number, 0 or more" : `a whole number, ${min} or more`;
    throw new UsageError(`invalid value ${quote(text)} for ${flag}: expected ${range}`, {
      hint: `for example ${flag}=${Math.max(min, 3)}`,
    });
  }
  return value;
}

/** Parses one of `choices` (case-insensitive); returns the canonical spelling. */
export function parseChoice<T extends string>(
  text: string,
  flag: string,
  options: { choices: readonly T[] },
): T {
  const { choices } = options;
  const found = choices.find((choice) => choice.toLowerCase() === text.trim().toLowerCase());
  if (found === undefined) {
    throw new UsageError(
      `invalid value ${quote(text)} for ${flag}: expected one of ${choices.join(", ")}`,
    );
  }
  return found;
}

/** Splits `K=V` at the first `=` (the value keeps any further `=`). `form` names the syntax. */
export function parseKeyValue(
  text: string,
  flag: string,
  options: { form?: string } = {},
): [string, string] {
  const form = options.form ?? "KEY=VALUE";
  const at = text.indexOf("=");
  if (at <= 0) {
    throw new UsageError(`invalid value ${quote(text)} for ${flag}: expected ${form}`);
  }
  return [text.slice(0, at), text.slice(at + 1)];
}

/**
 * Splits a comma list of `k=v` pairs. A piece without `=` is taken as the continuation of the
 * previous value (so `desc=a, b` stays one pair).
 */
export function parseKeyValueList(
  text: string,
  flag: string,
  options: { form?: string } = {},
): [string, string][] {
  const form = options.form ?? "KEY=VALUE[,KEY=VALUE…]";
  const pairs: [string, string][] = [];
  for (const piece of text.split(",")) {
    if (piece.includes("=") && piece.indexOf("=") > 0) {
      pairs.push(parseKeyValue(piece.trim(), flag, { form }));
    } else if (pairs.length > 0) {
      pairs[pairs.length - 1][1] += `,${piece}`;
    } else if (piece.trim() !== "") {
      throw new UsageError(`invalid value ${quote(text)} for ${flag}: expected ${form}`);
    }
  }
  return pairs;
}

const PLATFORM = /^[a-z0-9_]+\/[a-z0-9_]+(\/[a-z0-9_.]+)?$/;

/** Validates an `os/arch[/variant]` platform such as `linux/arm64` or `linux/arm/v7`. */
export function parsePlatform(text: string, flag: string): string {
  const value = text.trim().toLowerCase();
  if (!PLATFORM.test(value)) {
    throw new UsageError(
      `invalid platform ${quote(text)} for ${flag}: expected os/arch[/variant], e.g. linux/amd64`,
    );
  }
  return value;
}

/** Parses a comma list of platforms, rejecting empty lists. */
export function parsePlatformList(text: string, flag: string): string[] {
  const items = text.split(",").map((item) => item.trim()).filter((item) => item !== "");
  if (items.length === 0) {
    throw new UsageError(
      `invalid value ${quote(text)} for ${flag}: expected os/arch[/variant][,os/arch…]`,
    );
  }
  return items.map((item) => parsePlatform(item, flag));
}

const DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Parses a Go duration (`336h`, `1h30m`, `90s`, `1.5h`, `0`) into milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const value = text.trim();
  if (value === "0") return 0;
  const pattern = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let end = 0;
  for (const match of value.matchAll(pattern)) {
    total += Number(match[1]) * DURATION_UNITS[match[2]];
    end = (match.index ?? 0) + match[0].length;
  }
  if (value === "" || end !== value.length) {
    throw new UsageError(
      `invalid duration ${
        quote(text)
      } for ${flag}: expected a number with a unit (ns, us, ms, s, m, h), e.g. 336h or 1h30m`,
    );
  }
  return Math.round(total);
}

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1000,
  kb: 1000,
  kib: 1024,
  m: 1000 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1000 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
};

/** Parses a byte count: `5242880`, `5MiB`, `8MB`, `512k`. */
export function parseByteSize(text: string, flag: string): number {
  const match = /^(\d+)\s*([a-z]*)$/i.exec(text.trim());
  const unit = match ? SIZE_UNITS[match[2].toLowerCase()] : undefined;
  if (!match || unit === undefined) {
    throw new UsageError(
      `invalid size ${
        quote(text)
      } for ${flag}: expected a number of bytes, optionally with KiB, MiB or GiB (e.g. 5MiB); 0 means one monolithic upload`,
    );
  }
  return Number(match[1]) * unit;
}

/** Quotes a value for an error message, shortening very long ones. */
export function quote(text: string): string {
  const short = text.length > 80 ? `${text.slice(0, 77)}...` : text;
  return `'${short}'`;
}
