/**
 * The ONBUILD triggers a base image brings (its config's `OnBuild`, e.g. `["RUN echo hi"]`), read
 * as BuildKit's `initOnBuildTriggers` reads them when a stage is built FROM that image: each
 * trigger is parsed on its own as a Dockerfile (so with the default `\` escape) that must hold
 * exactly one instruction, checked like any instruction (`instructions.ParseCommand`), and
 * located at the stage's FROM line; the stage runs them before its own steps. As in Docker,
 * ONBUILD, FROM and MAINTAINER cannot be triggers. Errors read
 * `Dockerfile:LINE (ONBUILD trigger of IMAGE): …`, LINE being the FROM line.
 * @module
 */
import type { Instruction } from "./ast.ts";
import { KanikoError } from "../errors.ts";
import { validateInstruction } from "./instruction_args.ts";
import { DockerfileError } from "./parse_error.ts";
import { parseDockerfile } from "./parser.ts";

/** One trigger of a base image, as a stage built on that image runs it. */
export interface ImageTrigger {
  /** The trigger as the image config stores it (`RUN echo hi`). */
  text: string;
  /** The base image (the stage's expanded FROM). */
  image: string;
  /**
   * The instruction, located at the FROM line. When the trigger is no valid instruction, a
   * stand-in (its first word as keyword, the rest as one argument) and `error` is set.
   */
  instruction: Instruction;
  /** Why the trigger cannot be run (already located, see {@link imageTriggerError}). */
  error?: KanikoError;
}

/** Keywords Docker refuses as triggers (`ONBUILD ONBUILD` chains, FROM, MAINTAINER). */
const NOT_TRIGGERS = new Set(["ONBUILD", "FROM", "MAINTAINER"]);

/**
 * Parses the triggers `texts` of `image`, the base of the stage whose FROM instruction is `from`,
 * in order. A trigger that cannot be parsed or breaks an instruction rule does not throw: its
 * {@link ImageTrigger.error} is set (BuildKit only fails when it runs a stage).
 */
export function parseImageTriggers(
  file: string,
  from: Instruction,
  image: string,
  texts: readonly string[],
): ImageTrigger[] {
  return texts.map((text) => {
    try {
      return { text, image, instruction: parseTrigger(file, from, text) };
    } catch (e) {
      if (!(e instanceof KanikoError)) throw e;
      const trigger: ImageTrigger = { text, image, instruction: standIn(from, text) };
      const hint = `the trigger is ${JSON.stringify(text)}`;
      trigger.error = imageTriggerError(file, trigger, e, { hint });
      return trigger;
    }
  });
}

function parseTrigger(file: string, from: Instruction, text: string): Instruction {
  const df = parseDockerfile(text, { file });
  if (df.instructions.length !== 1) {
    throw new KanikoError("onbuild trigger should be a single expression", {
      hint: `the trigger ${JSON.stringify(text)} holds ${df.instructions.length} instructions`,
    });
  }
  const inst = df.instructions[0];
  inst.line = from.line;
  inst.endLine = from.endLine;
  if (inst.onbuild) inst.onbuild.line = inst.onbuild.endLine = from.line;
  if (NOT_TRIGGERS.has(inst.keyword)) {
    throw new KanikoError(`${inst.keyword} isn't allowed as an ONBUILD trigger`, {
      hint: inst.keyword === "ONBUILD"
        ? "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
        : `the trigger is ${JSON.stringify(text)}`,
    });
  }
  validateInstruction(inst, { file, escape: df.escape });
  return inst;
}

/** An instruction standing for a trigger that is none, so a plan can still show and fail it. */
function standIn(from: Instruction, text: string): Instruction {
  const flat = text.replace(/\s+/g, " ").trim();
  const space = flat.indexOf(" ");
  const keyword = (space < 0 ? flat : flat.slice(0, space)).toUpperCase() || "ONBUILD";
  return {
    keyword,
    line: from.line,
    endLine: from.endLine,
    flags: [],
    args: space < 0 ? [] : [flat.slice(space + 1)],
    json: false,
    heredocs: [],
    onbuild: null,
    original: flat,
  };
}

/** `FILE:LINE (ONBUILD trigger of IMAGE)`: where an error of a base image's trigger is. */
export function imageTriggerLocation(file: string, trigger: ImageTrigger): string {
  return `${file}:${trigger.instruction.line} (ONBUILD trigger of ${trigger.image})`;
}

/**
 * `e`, an error about `trigger`, located as `FILE:LINE (ONBUILD trigger of IMAGE): …` instead of
 * `FILE:LINE: …` (an error located so already is returned as it is). `hint` is used when `e` has
 * none.
 */
export function imageTriggerError(
  file: string,
  trigger: ImageTrigger,
  e: KanikoError,
  options: { hint?: string } = {},
): KanikoError {
  const where = imageTriggerLocation(file, trigger);
  if (e.message.startsWith(`${where}: `)) return e;
  const plain = `${file}:${trigger.instruction.line}: `;
  const what = e instanceof DockerfileError
    ? (e.keyword ? `${e.keyword}: ${e.detail}` : e.detail)
    : e.message.startsWith(plain)
    ? e.message.slice(plain.length)
    : e.message;
  return new KanikoError(`${where}: ${what}`, {
    exitCode: e.exitCode,
    hint: e.hint ?? options.hint,
    code: e.code,
    cause: e,
  });
}
