/**
 * Parses a command line into an {@link Invocation}: which command, with which typed options.
 * Pure apart from reading the environment through the injected lookup: nothing is printed and
 * nothing runs, so tests can check the options every flag produces.
 * @module
 */

import { UsageError } from "../errors.ts";
import type { LogConfig } from "../log.ts";
import { parseCommandLine } from "./argv.ts";
import { buildOptionsFrom, resolveBuildArgs } from "./build_options.ts";
import { type CommandName, COMMANDS, type CommandSpec, commandSpec } from "./commands.ts";
import { type EnvLookup, FlagValues } from "./flag_spec.ts";
import { commandHelp, terminalWidth, topLevelHelp } from "./help.ts";
import { logConfigFrom } from "./log_flags.ts";
import type {
  BuildOptions,
  CopyCommandOptions,
  ManifestCommandOptions,
  ParseCommandOptions,
  TagsCommandOptions,
} from "./options.ts";
import { registryOptionsFrom } from "./registry_flags.ts";

/** What a command that runs gets besides its options. */
export interface RunSettings {
  /** Logger settings from the logging flags. */
  log: LogConfig;
  /** Warnings to log once the logger is configured (deprecated flags, ignored env values). */
  warnings: string[];
}

/** A parsed command line. */
export type Invocation =
  | { command: "help"; text: string }
  | { command: "version" }
  | RunSettings & { command: "build"; options: BuildOptions }
  | RunSettings & { command: "copy"; src: string; dst: string; options: CopyCommandOptions }
  | RunSettings & { command: "manifest" | "digest"; ref: string; options: ManifestCommandOptions }
  | RunSettings & { command: "tags"; repo: string; options: TagsCommandOptions }
  | RunSettings & { command: "parse"; options: ParseCommandOptions };

/** Options of {@link parseInvocation}. */
export interface ParseInvocationOptions {
  /** Environment lookup; `Deno.env.get` by default. */
  env?: EnvLookup;
  /** Width help text wraps to; the terminal's width (80 when stdout is no terminal) by default. */
  helpWidth?: number;
}

/**
 * Parses `argv` (without the program name). The build command is the default: no subcommand,
 * or a first word that is a flag. Throws a `UsageError` (exit code 2) for unknown commands or
 * flags, bad values and bad flag combinations.
 */
export function parseInvocation(
  argv: readonly string[],
  options: ParseInvocationOptions = {},
): Invocation {
  const env = options.env ?? ((name: string) => Deno.env.get(name));
  const width = options.helpWidth ?? terminalWidth();
  const [first, ...rest] = argv;
  if (first === undefined || first.startsWith("-")) {
    if ((first === "--help" || first === "-h") && rest.length === 0) {
      return { command: "help", text: topLevelHelp(width) };
    }
    if (first === "--version" && rest.length === 0) return { command: "version" };
    return parseCommand(commandSpec("build"), argv, { env, width });
  }
  if (first === "help") return helpFor(rest, width);
  const spec = COMMANDS.find((command) => command.name === first);
  if (!spec) {
    throw new UsageError(`unknown command '${first}'`, {
      hint: `commands: ${COMMANDS.map((c) => c.name).join(", ")}; run 'kaniko --help'`,
    });
  }
  if (rest.length === 1 && rest[0] === "help") return helpFor([first], width);
  return parseCommand(spec, rest, { env, width });
}

function helpFor(args: readonly string[], width: number): Invocation {
  if (args.length === 0 || args[0] === "help") {
    return { command: "help", text: topLevelHelp(width) };
  }
  const spec = COMMANDS.find((command) => command.name === args[0]);
  if (!spec) {
    throw new UsageError(`unknown command '${args[0]}'`, {
      hint: `commands: ${COMMANDS.map((c) => c.name).join(", ")}`,
    });
  }
  return { command: "help", text: commandHelp(spec.name, width) };
}

export { commandHelp };

function parseCommand(
  spec: CommandSpec,
  argv: readonly string[],
  context: { env: EnvLookup; width: number },
): Invocation {
  const line = parseCommandLine(spec, argv);
  if (line.help) return { command: "help", text: commandHelp(spec.name, context.width) };
  const flags = new FlagValues(line.flags);
  const settings = { log: logConfigFrom(flags), warnings: line.flags.warnings };
  return toInvocation(spec.name, { flags, args: line.args, env: context.env, settings });
}

interface Parsed {
  flags: FlagValues;
  args: string[];
  env: EnvLookup;
  settings: RunSettings;
}

function toInvocation(name: CommandName, parsed: Parsed): Invocation {
  const { flags, args, env, settings } = parsed;
  switch (name) {
    case "version":
      return { command: "version" };
    case "build":
      return {
        ...settings,
        command: "build",
        options: buildOptionsFrom(flags, { env, warnings: settings.warnings }),
      };
    case "copy":
      return {
        ...settings,
        command: "copy",
        src: args[0],
        dst: args[1],
        options: copyOptions(parsed),
      };
    case "manifest":
    case "digest":
      return {
        ...settings,
        command: name,
        ref: args[0],
        options: {
          platform: flags.optional("platform"),
          registry: registryOptionsFrom(flags, env),
        },
      };
    case "tags":
      return {
        ...settings,
        command: "tags",
        repo: args[0],
        options: { registry: registryOptionsFrom(flags, env) },
      };
    case "parse":
      return {
        ...settings,
        command: "parse",
        options: {
          dockerfile: flags.string("dockerfile"),
          buildArgs: resolveBuildArgs(flags.list("build-arg"), env),
          target: flags.optional("target"),
          platform: flags.optional("platform"),
          raw: flags.bool("raw"),
        },
      };
  }
}

function copyOptions({ flags, env }: Parsed): CopyCommandOptions {
  if (flags.bool("all") && flags.optional("platform")) {
    throw new UsageError("--all and --platform cannot be used together", {
      hint: "use --all to copy every platform, or --platform to copy one",
    });
  }
  return {
    all: flags.bool("all"),
    platform: flags.optional("platform"),
    registry: registryOptionsFrom(flags, env),
  };
}
