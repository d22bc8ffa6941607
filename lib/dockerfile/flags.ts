/**
 * Instruction flags (`COPY --from=build`, `RUN --mount=…`, `ADD --link`) checked against what each
 * instruction accepts, with BuildKit's rules (`instructions/bflag.go`): a boolean flag may stand
 * alone or take `true`/`false`, a string flag needs `=value`, a repeatable flag collects every
 * value, any other flag is unknown, and a non-repeatable flag may not be given twice.
 * @module
 */

/** How a flag takes its value. */
export type FlagKind = "bool" | "string" | "strings";

/** The flags an instruction accepts, by name (without `--`). */
export type FlagSpec = Readonly<Record<string, FlagKind>>;

/** Parsed flag values: booleans, strings, and string arrays for repeatable flags. */
export type FlagValues = Record<string, boolean | string | string[]>;

/** A flag the instruction does not accept, or a malformed one. */
export class FlagError extends Error {}

/** Parses `flags` (as the parser returns them) against `spec`. Only given flags are set. */
export function parseFlags(flags: readonly string[], spec: FlagSpec): FlagValues {
  const values: FlagValues = {};
  const used = new Set<string>();
  for (const flag of flags) {
    if (!flag.startsWith("--")) throw new FlagError(`flag should start with -- : ${flag}`);
    if (flag === "--") break;
    const eq = flag.indexOf("=");
    const name = eq < 0 ? flag.slice(2) : flag.slice(2, eq);
    const value = eq < 0 ? undefined : flag.slice(eq + 1);
    const kind = Object.hasOwn(spec, name) ? spec[name] : undefined;
    if (!kind) throw new FlagError(unknownFlag(name, spec));
    if (used.has(name) && kind !== "strings") {
      throw new FlagError(`duplicate flag specified: --${name}`);
    }
    used.add(name);
    values[name] = flagValue(name, kind, value, values[name]);
  }
  return values;
}

function flagValue(
  name: string,
  kind: FlagKind,
  value: string | undefined,
  previous: FlagValues[string] | undefined,
): boolean | string | string[] {
  if (kind === "bool") {
    if (value === undefined) return true;
    const lower = value.toLowerCase();
    if (lower === "") throw new FlagError(`missing a value on flag: --${name}`);
    if (lower !== "true" && lower !== "false") {
      throw new FlagError(`expecting boolean value for flag --${name}, not: ${value}`);
    }
    return lower === "true";
  }
  if (value === undefined) throw new FlagError(`missing a value on flag: --${name}`);
  if (kind === "string") return value;
  return [...(Array.isArray(previous) ? previous : []), value];
}

function unknownFlag(name: string, spec: FlagSpec): string {
  const known = Object.keys(spec);
  const accepted = known.length === 0
    ? "this instruction takes no flags"
    : `accepted: ${known.map((k) => `--${k}`).join(", ")}`;
  return `unknown flag: --${name} (${accepted})`;
}
