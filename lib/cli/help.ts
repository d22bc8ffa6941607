/**
 * Help texts: the top-level help (the commands, the flag syntax, then the flags of the default
 * build command, so that `kaniko --help` also answers what `/kaniko/executor --help` answered)
 * and each command's help (usage, arguments, every flag with its default, by group). Long
 * descriptions wrap to the terminal's width (80 columns when stdout is no terminal).
 * @module
 */

import { type CommandName, COMMANDS, commandSpec, usageOf } from "./commands.ts";
import { describeFlag, flagTerm } from "./flag_spec.ts";
import { versionString } from "../version.ts";

/** Width help wraps to when stdout is not a terminal. */
export const DEFAULT_HELP_WIDTH = 80;
/** Descriptions are not wrapped into columns narrower than this. */
const MIN_WRAP_WIDTH = 40;

/** The width to wrap help to: the terminal's when stdout is one, else {@link DEFAULT_HELP_WIDTH}. */
export function terminalWidth(): number {
  try {
    return Deno.stdout.isTerminal() ? Deno.consoleSize().columns : DEFAULT_HELP_WIDTH;
  } catch {
    return DEFAULT_HELP_WIDTH;
  }
}

/** The text printed by `kaniko --help`, `kaniko -h` and `kaniko help`. */
export function topLevelHelp(width: number = DEFAULT_HELP_WIDTH): string {
  const column = Math.max(...COMMANDS.map((command) => usageOf(command).length)) + 2;
  const lines = [
    `${versionString()}: a daemonless container image builder (Kaniko's executor flags)`,
    "",
    "Usage: kaniko [build] [flags]           build an image (the default command)",
    "       kaniko COMMAND [ARGS] [flags]",
    "",
    "Commands:",
    ...COMMANDS.map((command) => `  ${usageOf(command).padEnd(column)}${command.summary}`),
    `  ${"help [COMMAND]".padEnd(column)}Show help for a command`,
    "",
    "Flags take --flag=value or --flag value; boolean flags take --flag, --flag=true or",
    "--flag=false; repeatable flags accumulate. Run 'kaniko COMMAND --help' for a command's flags.",
    "Exit codes: 0 success, 1 failure, 2 bad usage; a failing RUN step's own code is passed through.",
    "",
    "Flags of build (the default command):",
  ];
  const build = commandHelp("build", width);
  const flags = build.slice(build.indexOf("\n\n", build.indexOf(commandSpec("build").summary)) + 2);
  return `${lines.join("\n")}\n\n${flags}`;
}

/**
 * The help of one command: `Usage:`, its summary, `Arguments:`, then its visible flags by group
 * and `-h, --help` under `Options:`; each section ends with an empty line.
 */
export function commandHelp(name: CommandName, width: number = DEFAULT_HELP_WIDTH): string {
  const spec = commandSpec(name);
  const usage = usageOf(spec).slice(spec.name.length + 1) || "[options]";
  const sections: [string, [string, string][]][] = [
    ["Arguments:", spec.args.map((arg): [string, string] => [arg.name, arg.help])],
  ];
  const groups = new Map<string, [string, string][]>();
  for (const flag of spec.flags) {
    const items = groups.get(`${flag.group}:`) ?? [];
    groups.set(`${flag.group}:`, items);
    if (!flag.hidden) items.push([flagTerm(flag), describeFlag(flag)]);
  }
  const helpItem: [string, string] = ["-h, --help", "Show help for this command"];
  groups.set("Options:", [...groups.get("Options:") ?? [], helpItem]);
  sections.push(...groups);
  const termWidth = Math.max(
    ...sections.flatMap(([, items]) => items.map(([term]) => term.length)),
  );
  const lines = [`Usage: kaniko ${spec.name} ${usage}`, "", wrap(spec.summary, width), ""];
  for (const [heading, items] of sections) {
    if (items.length === 0) continue;
    lines.push(heading, ...items.map((item) => formatItem(item, termWidth, width)), "");
  }
  return lines.join("\n");
}

/** `  TERM  description`, the term padded to `termWidth` and the description wrapped beside it. */
function formatItem([term, description]: [string, string], termWidth: number, width: number) {
  if (!description) return `  ${term}`;
  const remaining = width - termWidth - 4;
  const text = remaining < MIN_WRAP_WIDTH
    ? description
    : wrap(description, remaining).replace(/\n/g, `\n${" ".repeat(termWidth + 2)}`);
  return `  ${term.padEnd(termWidth)}  ${text.replace(/\n/g, "\n  ")}`;
}

/** Wraps `text` at whitespace to lines of at most `width` (a longer word stays whole). */
function wrap(text: string, width: number): string {
  if (width < MIN_WRAP_WIDTH) return text;
  const lines: string[] = [];
  for (const line of text.split(/\r\n|\n/)) {
    const chunks = line.match(/\s*\S+/g);
    if (chunks === null) {
      lines.push("");
      continue;
    }
    let current = chunks[0];
    for (const chunk of chunks.slice(1)) {
      if (current.length + chunk.length <= width) {
        current += chunk;
      } else {
        lines.push(current);
        current = chunk.trimStart();
      }
    }
    lines.push(current);
  }
  return lines.join("\n");
}
