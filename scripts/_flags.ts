/**
 * The command-line flags of the stand-alone scripts (fault proxy, token server), read with
 * `node:util`'s `parseArgs`: `--name value` or `--name=value` (a value may start with `-`, e.g.
 * `--ttl -57`), repeatable flags, defaults, required flags, and `-h`/`--help`, which prints the
 * options. No positional arguments.
 *
 * Not for lib/ or the CLI: `node:util` loaded into a process makes its streamed registry uploads
 * use more memory (see lib/cli/argv.ts); the scripts load this module only when run as commands.
 * @module
 */
import { parseArgs } from "node:util";

/** One flag `--NAME <value>`. */
export interface FlagDef {
  /** Placeholder of the value in the help, e.g. `url` for `--target <url>`. */
  value: string;
  /** One line of help. */
  help: string;
  /** Value when the flag is absent (an array for a `multiple` flag). */
  default?: string | string[];
  /** The flag may be given several times; its value is the list, in order. */
  multiple?: boolean;
  /** The flag must be given. */
  required?: boolean;
}

/** A script's command line. */
export interface CommandDef {
  /** Name in the usage line. */
  name: string;
  /** A line under the usage line. */
  description?: string;
  /** The flags by name (without `--`). */
  flags: Record<string, FlagDef>;
}

/** Flag values by name: a string, a list (`multiple`), or undefined when absent. */
export type FlagValues = Record<string, string | string[] | undefined>;

/**
 * Reads `args` against `command`. Returns the values, or `undefined` after printing the help to
 * stdout for `-h`/`--help`; throws an `Error` with a one-line message for a bad command line.
 */
export function parseFlags(command: CommandDef, args: string[]): FlagValues | undefined {
  const options: Record<
    string,
    { type: "string" | "boolean"; multiple?: boolean; short?: string }
  > = { help: { type: "boolean", short: "h" } };
  for (const [name, def] of Object.entries(command.flags)) {
    options[name] = { type: "string", multiple: def.multiple ?? false };
  }
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({
      args: joinValues(command, args),
      options,
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    if (!String((e as { code?: unknown }).code).startsWith("ERR_PARSE_ARGS_")) throw e;
    throw new Error((e as Error).message.replace(/\s+/g, " ").trim());
  }
  if (values.help) {
    console.log(flagHelp(command));
    return undefined;
  }
  const out: FlagValues = {};
  for (const [name, def] of Object.entries(command.flags)) {
    const value = (values[name] ?? def.default) as string | string[] | undefined;
    if (def.required && value === undefined) {
      throw new Error(`required option '--${name} <${def.value}>' not specified`);
    }
    out[name] = Array.isArray(value) ? [...value] : value;
  }
  return out;
}

/** `--name value` → `--name=value` for the flags of `command`, so a value may start with `-`. */
function joinValues(command: CommandDef, args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") {
      out.push(...args.slice(i));
      break;
    }
    const name = a.startsWith("--") ? a.slice(2) : undefined;
    if (name && Object.hasOwn(command.flags, name) && i + 1 < args.length) {
      out.push(`${a}=${args[++i]}`);
    } else {
      out.push(a);
    }
  }
  return out;
}

/** The help: usage line, description, and one line per flag (with its default). */
export function flagHelp(command: CommandDef): string {
  const rows = Object.entries(command.flags).map(([name, def]) => {
    const shown = def.default === undefined ? "" : ` (default: ${JSON.stringify(def.default)})`;
    return [`--${name} <${def.value}>`, def.help + shown];
  });
  rows.push(["-h, --help", "display help for command"]);
  const width = Math.max(...rows.map(([term]) => term.length)) + 2;
  const lines = [`Usage: ${command.name} [options]`, ""];
  if (command.description) lines.push(command.description, "");
  lines.push("Options:", ...rows.map(([term, help]) => `  ${term.padEnd(width)}${help}`));
  return lines.join("\n");
}
