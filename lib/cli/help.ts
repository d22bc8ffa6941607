/**
 * The top-level help: the commands, the flag syntax, then the flags of the default (build)
 * command, so that `kaniko --help` also answers what `/kaniko/executor --help` answered.
 * @module
 */

import { commanderFor, COMMANDS, commandSpec, usageOf } from "./commands.ts";
import { versionString } from "../version.ts";

/** The text printed by `kaniko --help`, `kaniko -h` and `kaniko help`. */
export function topLevelHelp(): string {
  const width = Math.max(...COMMANDS.map((command) => usageOf(command).length)) + 2;
  const lines = [
    `${versionString()}: a daemonless container image builder (Kaniko's executor flags)`,
    "",
    "Usage: kaniko [build] [flags]           build an image (the default command)",
    "       kaniko COMMAND [ARGS] [flags]",
    "",
    "Commands:",
    ...COMMANDS.map((command) => `  ${usageOf(command).padEnd(width)}${command.summary}`),
    `  ${"help [COMMAND]".padEnd(width)}Show help for a command`,
    "",
    "Flags take --flag=value or --flag value; boolean flags take --flag, --flag=true or",
    "--flag=false; repeatable flags accumulate. Run 'kaniko COMMAND --help' for a command's flags.",
    "Exit codes: 0 success, 1 failure, 2 bad usage; a failing RUN step's own code is passed through.",
    "",
    "Flags of build (the default command):",
  ];
  const build = commanderFor(commandSpec("build"), { help: () => {} }).helpInformation();
  const flags = build.slice(build.indexOf("\n\n", build.indexOf(commandSpec("build").summary)) + 2);
  return `${lines.join("\n")}\n\n${flags}`;
}
