/**
 * Each instruction's argument rules, as BuildKit checks them when it turns the syntax tree into
 * instructions (`frontend/dockerfile/instructions/parse.go`) plus the value checks it makes when
 * it runs them, for values without variables: argument counts, flags, ENV/LABEL/ARG names,
 * `FROM … AS name`, ONBUILD triggers, HEALTHCHECK options and `NONE`, EXPOSE ports, STOPSIGNAL,
 * SHELL's JSON form, ADD/COPY flags and `RUN --mount/--network/--security`. The parser
 * (`./parser.ts`) does not call these: `parse --raw` prints any syntactically valid file, while a
 * build (and `parse` without `--raw`) runs {@link validateDockerfile} first.
 * @module
 */

import type { Dockerfile, Instruction } from "./ast.ts";
import { FlagError, type FlagSpec, type FlagValues, parseFlags } from "./flags.ts";
import { parseHeredocWord } from "./heredoc.ts";
import { KNOWN_INSTRUCTIONS } from "./line_parsers.ts";
import { DockerfileError } from "./parse_error.ts";
import {
  checkRunNetwork,
  checkRunSecurity,
  parseRunMount,
  RunFlagError,
  type RunMount,
} from "./run_flags.ts";
import { unquote } from "./words.ts";
import {
  checkChecksum,
  checkChmod,
  checkPortSpec,
  checkSignal,
  parseGoDuration,
  STAGE_NAME,
} from "./value_rules.ts";

/** Options of {@link validateInstruction}. */
export interface ValidateOptions {
  /** The file name for messages; `Dockerfile` by default. */
  file?: string;
  /** The escape character of the file (for quote checks); `\` by default. */
  escape?: string;
}

/** What validation learned about an instruction. */
export interface ValidatedInstruction {
  /** The flags, parsed. */
  flags: FlagValues;
  /** RUN: the parsed `--mount` values (values holding variables are checked once expanded). */
  mounts?: RunMount[];
}

/** An argument rule broken; the caller adds file, line and keyword. */
class RuleError extends Error {}

const HEALTHCHECK_FLAGS: FlagSpec = {
  interval: "string",
  timeout: "string",
  "start-period": "string",
  "start-interval": "string",
  retries: "string",
};

/** The flags each instruction accepts. */
export const INSTRUCTION_FLAGS: Readonly<Record<string, FlagSpec>> = {
  ADD: {
    chown: "string",
    chmod: "string",
    link: "bool",
    "keep-git-dir": "bool",
    checksum: "string",
    exclude: "strings",
    unpack: "bool",
  },
  COPY: {
    chown: "string",
    chmod: "string",
    from: "string",
    link: "bool",
    parents: "bool",
    exclude: "strings",
  },
  FROM: { platform: "string" },
  RUN: { mount: "strings", network: "string", security: "string" },
  HEALTHCHECK: HEALTHCHECK_FLAGS,
};

type Rule = (ins: Instruction, flags: FlagValues, escape: string) => void;

const RULES: Record<string, Rule> = {
  ADD: (ins, flags) => checkSourcesAndDest(ins, flags),
  ARG: checkArg,
  CMD: () => {},
  COPY: (ins, flags) => checkSourcesAndDest(ins, flags),
  ENTRYPOINT: () => {},
  ENV: (ins, _flags, escape) => checkKeyValues(ins, escape),
  EXPOSE: checkExpose,
  FROM: checkFrom,
  HEALTHCHECK: checkHealthcheck,
  LABEL: (ins, _flags, escape) => checkKeyValues(ins, escape),
  MAINTAINER: (ins) => exactlyOne(ins),
  ONBUILD: checkOnbuild,
  RUN: () => {},
  SHELL: checkShell,
  STOPSIGNAL: checkStopSignal,
  USER: (ins) => exactlyOne(ins),
  VOLUME: checkVolume,
  WORKDIR: (ins) => exactlyOne(ins),
};

/**
 * Checks one instruction against its rules; throws a {@link DockerfileError}
 * (`FILE:LINE: KEYWORD: what`) for the first rule it breaks.
 */
export function validateInstruction(
  ins: Instruction,
  options: ValidateOptions = {},
): ValidatedInstruction {
  const file = options.file ?? "Dockerfile";
  const escape = options.escape ?? "\\";
  const fail = (message: string, keyword: string | undefined = ins.keyword) =>
    new DockerfileError({ file, line: ins.line, keyword }, message);
  const rule = RULES[ins.keyword];
  if (!rule) throw new DockerfileError({ file, line: ins.line }, unknownInstruction(ins.keyword));
  try {
    const flags = ignoresFlags(ins)
      ? {}
      : parseFlags(ins.flags, INSTRUCTION_FLAGS[ins.keyword] ?? {});
    rule(ins, flags, escape);
    if (ins.keyword === "RUN") return { flags, mounts: checkRunFlags(flags) };
    return { flags };
  } catch (err) {
    if (err instanceof RuleError || err instanceof FlagError || err instanceof RunFlagError) {
      throw fail(err.message);
    }
    throw err;
  }
}

/**
 * BuildKit never parses the flags of ARG and STOPSIGNAL (`instructions/parse.go`: `parseArg` and
 * `parseStopSignal` do not call `req.flags.Parse()`), nor those of HEALTHCHECK NONE: any flag
 * there is accepted and ignored.
 */
function ignoresFlags(ins: Instruction): boolean {
  if (ins.keyword === "ARG" || ins.keyword === "STOPSIGNAL") return true;
  return ins.keyword === "HEALTHCHECK" && ins.args[0]?.toUpperCase() === "NONE";
}

/** Checks every instruction of a parsed Dockerfile ({@link validateInstruction}). */
export function validateDockerfile(df: Dockerfile, options: ValidateOptions = {}): void {
  for (const ins of df.instructions) validateInstruction(ins, { escape: df.escape, ...options });
}

function unknownInstruction(keyword: string): string {
  const upper = keyword.toUpperCase();
  const known = KNOWN_INSTRUCTIONS.map((k) => k.toUpperCase());
  const close = known.find((k) => editDistance(k, upper) <= Math.min(2, k.length - 2));
  return `unknown instruction: ${keyword}${close ? ` (did you mean ${close}?)` : ""}`;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length];
}

function exactlyOne(ins: Instruction): void {
  if (ins.args.length !== 1) throw new RuleError("requires exactly one argument");
}

function atLeastOne(ins: Instruction): void {
  if (ins.args.length === 0) throw new RuleError("requires at least one argument");
}

/**
 * True when the lexer would change `value` (a variable, quotes or an escape): its value is only
 * known after expansion, where the planner checks it as BuildKit does when it runs the step.
 */
function hasVariable(value: string): boolean {
  return /[$'"\\`]/.test(value);
}

/** ENV, LABEL: at least one pair, no blank name, quotes closed. */
function checkKeyValues(ins: Instruction, escape: string): void {
  atLeastOne(ins);
  const raw = ins.rawArgs ?? ins.args;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i] === "") throw new RuleError("names can not be blank");
    checkQuotes(raw[i], escape);
    checkQuotes(raw[i + 1] ?? "", escape);
  }
}

function checkQuotes(word: string, escape: string): void {
  const { unterminated } = unquote(word, escape);
  if (unterminated) {
    throw new RuleError(
      `unexpected end of statement while looking for matching ${unterminated}-quote`,
    );
  }
}

function checkArg(ins: Instruction, _flags: FlagValues, escape: string): void {
  atLeastOne(ins);
  for (const word of ins.rawArgs ?? []) {
    if (word.startsWith("=")) throw new RuleError("names can not be blank");
    checkQuotes(word, escape);
  }
}

function checkSourcesAndDest(ins: Instruction, flags: FlagValues): void {
  if (ins.args.length < 2) {
    throw new RuleError(
      "requires at least two arguments, but only one was provided. Destination could not be determined",
    );
  }
  if (parseHeredocWord(ins.args[ins.args.length - 1])) {
    throw new RuleError("cannot accept a heredoc as a destination");
  }
  const chmod = flags.chmod;
  if (typeof chmod === "string" && chmod !== "" && !hasVariable(chmod)) {
    const problem = checkChmod(chmod);
    if (problem) throw new RuleError(`--chmod: ${problem}`);
  }
  const checksum = flags.checksum;
  // An empty --checksum= is no checksum (convert_copy.go: `if cfg.checksum != ""`).
  if (typeof checksum === "string" && checksum !== "" && !hasVariable(checksum)) {
    const problem = checkChecksum(checksum);
    if (problem) throw new RuleError(`--checksum: ${problem}`);
  }
}

function checkFrom(ins: Instruction): void {
  const args = ins.args;
  if (args.length === 3 && args[1].toLowerCase() === "as") {
    if (!STAGE_NAME.test(args[2].toLowerCase())) {
      throw new RuleError(
        `invalid name for build stage: ${
          JSON.stringify(args[2])
        }, name can't start with a number or contain symbols`,
      );
    }
  } else if (args.length !== 1) {
    throw new RuleError("requires either one or three arguments (FROM image [AS name])");
  }
}

function checkOnbuild(ins: Instruction): void {
  if (!ins.onbuild) throw new RuleError("requires at least one argument");
  const trigger = ins.onbuild.keyword;
  if (trigger === "ONBUILD") {
    throw new RuleError("chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
  }
  if (trigger === "MAINTAINER" || trigger === "FROM") {
    throw new RuleError(`${trigger} isn't allowed as an ONBUILD trigger`);
  }
}

function checkHealthcheck(ins: Instruction, flags: FlagValues): void {
  atLeastOne(ins);
  const type = ins.args[0].toUpperCase();
  if (type === "NONE") {
    if (ins.args.length !== 1) throw new RuleError("HEALTHCHECK NONE takes no arguments");
    return;
  }
  if (type !== "CMD") throw new RuleError(`unknown type ${JSON.stringify(type)} (try CMD or NONE)`);
  if (ins.args.length < 2) throw new RuleError("missing command after HEALTHCHECK CMD");
  for (const name of ["interval", "timeout", "start-period", "start-interval"]) {
    const value = flags[name];
    if (typeof value !== "string" || value === "") continue;
    const ns = parseGoDuration(value);
    if (ns === null) {
      throw new RuleError(`--${name}: invalid duration "${value}" (e.g. 30s, 1m30s)`);
    }
    if (ns !== 0 && ns < 1e6) throw new RuleError(`--${name} cannot be less than 1ms`);
  }
  const retries = flags.retries;
  if (typeof retries === "string" && retries !== "") {
    const n = /^[+-]?[0-9]+$/.test(retries) ? Number(retries) : NaN;
    if (!Number.isInteger(n) || n > 2147483647 || n < -2147483648) {
      throw new RuleError(`--retries: invalid number "${retries}"`);
    }
    if (n < 0) throw new RuleError(`--retries cannot be negative (${n})`);
  }
}

function checkExpose(ins: Instruction): void {
  atLeastOne(ins);
  for (const port of ins.args) {
    if (hasVariable(port)) continue;
    const problem = checkPortSpec(port);
    if (problem) throw new RuleError(problem);
  }
}

function checkStopSignal(ins: Instruction): void {
  exactlyOne(ins);
  if (hasVariable(ins.args[0])) return;
  const problem = checkSignal(ins.args[0]);
  if (problem) throw new RuleError(problem);
}

function checkVolume(ins: Instruction): void {
  atLeastOne(ins);
  if (ins.args.some((v) => v.trim() === "")) {
    throw new RuleError("VOLUME specified can not be an empty string");
  }
}

function checkShell(ins: Instruction): void {
  if (!ins.json) {
    throw new RuleError('requires the arguments to be in JSON form, e.g. SHELL ["/bin/sh", "-c"]');
  }
  atLeastOne(ins);
}

function checkRunFlags(flags: FlagValues): RunMount[] {
  if (typeof flags.network === "string") checkRunNetwork(flags.network);
  if (typeof flags.security === "string") checkRunSecurity(flags.security);
  const mounts = Array.isArray(flags.mount) ? flags.mount : [];
  return mounts.map((value) => parseRunMount(value));
}
