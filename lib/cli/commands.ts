/**
 * The command table (names, arguments, flag tables) and the one-line {@link UsageError}s for
 * command lines that do not fit it.
 * @module
 */

import { oneLine, UsageError } from "../errors.ts";
import { BUILD_FLAGS } from "./build_flags.ts";
import { type FlagSpec, flagTerm } from "./flag_spec.ts";
import { LOG_FLAGS } from "./log_flags.ts";
import { REGISTRY_FLAGS, RETRY_FLAGS, TRANSFER_FLAGS } from "./registry_flags.ts";
import { parsePlatform } from "./values.ts";

/** Every command name. */
export const COMMAND_NAMES = [
  "build",
  "copy",
  "manifest",
  "digest",
  "tags",
  "parse",
  "version",
] as const;
/** One of {@link COMMAND_NAMES}. */
export type CommandName = typeof COMMAND_NAMES[number];

/** A positional argument. */
export interface ArgumentSpec {
  /** Upper-case name shown in usage (`SRC`). */
  name: string;
  /** One-line description. */
  help: string;
}

/** One command: its arguments and flags. */
export interface CommandSpec {
  /** The command name. */
  name: CommandName;
  /** One-line description for the command list. */
  summary: string;
  /** Positional arguments, all required. */
  args: readonly ArgumentSpec[];
  /** Every flag the command accepts. */
  flags: readonly FlagSpec[];
}

const platformFlag = (help: string): FlagSpec => ({
  name: "platform",
  kind: "string",
  value: "os/arch[/variant]",
  help,
  group: "Command",
  parse: parsePlatform,
});

const REMOTE_FLAGS = [...REGISTRY_FLAGS, ...RETRY_FLAGS, ...LOG_FLAGS];
const REF = {
  name: "REF",
  help: "image reference (registry/repo:tag or @digest) or oci:DIR[:TAG]",
};

/** The commands, in the order help lists them. */
export const COMMANDS: readonly CommandSpec[] = [
  {
    name: "build",
    summary: "Build an image from a Dockerfile and push it (the default command)",
    args: [],
    flags: [...BUILD_FLAGS, ...REMOTE_FLAGS],
  },
  {
    name: "copy",
    summary: "Copy an image or index between registries and OCI layouts (oci:DIR[:TAG])",
    args: [{ name: "SRC", help: "source image" }, { name: "DST", help: "destination image" }],
    flags: [
      {
        name: "all",
        kind: "bool",
        help: "Copy every platform of an index",
        group: "Command",
        default: false,
      },
      platformFlag("Copy only this platform's image from an index"),
      ...TRANSFER_FLAGS,
      ...REMOTE_FLAGS,
    ],
  },
  {
    name: "manifest",
    summary: "Print the raw manifest or index bytes exactly as served",
    args: [REF],
    flags: [platformFlag("Print this platform's manifest from an index"), ...REMOTE_FLAGS],
  },
  {
    name: "digest",
    summary: "Print the sha256 digest of a manifest",
    args: [REF],
    flags: [platformFlag("Print the digest of this platform's manifest"), ...REMOTE_FLAGS],
  },
  {
    name: "tags",
    summary: "List the tags of a repository, following pagination",
    args: [{ name: "REPO", help: "repository (registry/repo)" }],
    flags: REMOTE_FLAGS,
  },
  {
    name: "parse",
    summary: "Print a Dockerfile parsed as JSON",
    args: [],
    flags: [
      {
        name: "dockerfile",
        short: "f",
        kind: "string",
        value: "path",
        help: "Dockerfile to parse",
        group: "Command",
        default: "Dockerfile",
      },
      { ...BUILD_FLAGS.find((flag) => flag.name === "build-arg")!, group: "Command" },
      {
        name: "target",
        kind: "string",
        value: "stage",
        help: "Target build stage",
        group: "Command",
      },
      platformFlag("Target platform for TARGETPLATFORM and related args"),
      {
        name: "raw",
        kind: "bool",
        help: "Print the syntax tree only, without build meaning",
        group: "Command",
        default: false,
      },
      ...LOG_FLAGS,
    ],
  },
  { name: "version", summary: "Print the version", args: [], flags: [] },
];

/** The spec of a command. */
export function commandSpec(name: CommandName): CommandSpec {
  return COMMANDS.find((command) => command.name === name)!;
}

/** Usage line of a command, without the program name (`copy SRC DST [flags]`). */
export function usageOf(spec: CommandSpec): string {
  const flags = spec.flags.length > 0 ? ["[flags]"] : [];
  return [spec.name, ...spec.args.map((arg) => arg.name), ...flags].join(" ");
}

function helpHint(spec: CommandSpec): string {
  return `run 'kaniko ${spec.name} --help' for the flags of ${spec.name}`;
}

/**
 * `unknown flag --x for build`, with the nearest flag as a suggestion. Only the flag's name is
 * shown, never a value written with `=` (it may be a secret).
 */
export function unknownFlagError(word: string, spec: CommandSpec): UsageError {
  const flag = word.replace(/\s+/g, " ").split("'")[0].replace(/=[\s\S]*$/, "");
  const suggestion = closestFlag(flag, spec.flags);
  const help = helpHint(spec);
  return new UsageError(`unknown flag ${flag} for ${spec.name}`, {
    hint: suggestion ? `did you mean ${suggestion}? ${help}` : help,
  });
}

/** A value flag that ends the command line: `option '--target <stage>' argument missing`. */
export function missingValueError(flag: FlagSpec, spec: CommandSpec): UsageError {
  return new UsageError(oneLine(`option '${flagTerm(flag)}' argument missing`), {
    hint: helpHint(spec),
  });
}

/** `copy is missing argument 'DST'`. */
export function missingArgumentError(arg: ArgumentSpec, spec: CommandSpec): UsageError {
  return new UsageError(`${spec.name} is missing argument '${arg.name}'`, {
    hint: `usage: kaniko ${usageOf(spec)}`,
  });
}

/**
 * `unexpected argument 'x' for build`; when a surplus word of build is a command name, the hint
 * says to put the command first (`kaniko -v debug copy …`).
 */
export function tooManyArgumentsError(args: readonly string[], spec: CommandSpec): UsageError {
  const extra = args.slice(spec.args.length);
  const command = extra.find((arg) => (COMMAND_NAMES as readonly string[]).includes(arg));
  const hint = command && spec.name === "build"
    ? `put the command first: kaniko ${command} … [flags]`
    : `usage: kaniko ${usageOf(spec)}`;
  const list = extra.map((arg) => `'${arg}'`).join(", ");
  return new UsageError(`unexpected argument ${list} for ${spec.name}`, { hint });
}

/** The visible flag nearest to a misspelt `--flag` (edit distance within a third of its length). */
export function closestFlag(flag: string, flags: readonly FlagSpec[]): string | undefined {
  const name = flag.replace(/^-+/, "");
  let best: { flag: string; distance: number } | undefined;
  for (const candidate of flags) {
    if (candidate.hidden) continue;
    const distance = editDistance(name, candidate.name);
    if (distance <= Math.max(1, Math.floor(name.length / 3)) && distance < (best?.distance ?? 99)) {
      best = { flag: `--${candidate.name}`, distance };
    }
  }
  return best?.flag;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost);
    }
    previous = current;
  }
  return previous[b.length];
}
