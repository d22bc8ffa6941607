/**
 * The stage structure of a Dockerfile, as BuildKit reads it: the ARGs before the first FROM
 * (meta arguments), then one stage per FROM with its instructions; stage names (lower-cased,
 * BuildKit's `^[a-z][a-z0-9-_.]*$`), lookup by name (case-insensitive) or index, `--target`,
 * and the stages a target needs (`--skip-unused-stages`).
 * @module
 */
import type { Dockerfile, Instruction } from "./ast.ts";
import { KanikoError } from "../errors.ts";
import {
  type ExpandContext,
  flagValue,
  flagValues,
  located,
  locatedError,
  mountFields,
  parseFlag,
} from "./expand.ts";
import { parseReference } from "../registry/reference.ts";
import type { Platform } from "../oci/schemas.ts";

/** A stage before expansion: its FROM line and its instructions. */
export interface StageSyntax {
  /** 0-based position in the Dockerfile. */
  index: number;
  /** The `AS` name, lower-cased (BuildKit lower-cases stage names), or null. */
  name: string | null;
  /** The FROM instruction. */
  from: Instruction;
  /** The base as written (`busybox:$V`, `build`, `scratch`). */
  base: string;
  /** The `--platform` value as written, if any. */
  platform?: string;
  /** The instructions after FROM, up to the next FROM. */
  instructions: Instruction[];
}

/** A Dockerfile split into meta ARGs and stages. */
export interface DockerfileStages {
  /** The ARG instructions before the first FROM. */
  metaArgs: Instruction[];
  stages: StageSyntax[];
}

/** BuildKit's rule for stage names (after lower-casing). */
export const STAGE_NAME_RE = /^[a-z][a-z0-9\-_.]*$/;
/** Names BuildKit warns about: they mean something else in `FROM` and `COPY --from`. */
const RESERVED_NAMES = new Set(["context", "scratch"]);

/**
 * Splits `df` into meta ARGs and stages, checking what BuildKit checks: a FROM exists, nothing
 * but ARG comes before the first FROM, FROM has one or three arguments (`IMAGE [AS NAME]`) and
 * only `--platform`, names are valid and (unlike BuildKit, which only warns) unique. Reserved
 * names (`context`, `scratch`) are reported in `warnings`.
 */
export function splitStages(df: Dockerfile, file: string, warnings: string[]): DockerfileStages {
  const metaArgs: Instruction[] = [];
  const stages: StageSyntax[] = [];
  for (const inst of df.instructions) {
    if (inst.keyword === "FROM") {
      stages.push(stageOf(inst, stages, file, warnings));
    } else if (stages.length > 0) {
      stages[stages.length - 1].instructions.push(inst);
    } else if (inst.keyword === "ARG") {
      metaArgs.push(inst);
    } else {
      throw locatedError(file, inst, `${inst.keyword} before the first FROM`, {
        hint: "only ARG may come before the first FROM (no build stage in current context)",
      });
    }
  }
  if (stages.length === 0) {
    throw new KanikoError(`${file}: the Dockerfile has no FROM instruction`, {
      hint: "a Dockerfile needs at least one FROM to start a build stage",
    });
  }
  return { metaArgs, stages };
}

function stageOf(
  from: Instruction,
  earlier: readonly StageSyntax[],
  file: string,
  warnings: string[],
): StageSyntax {
  const args = from.args;
  if (!(args.length === 1 || (args.length === 3 && args[1].toLowerCase() === "as"))) {
    throw locatedError(file, from, "FROM requires either one or three arguments", {
      hint: "use FROM [--platform=PLATFORM] IMAGE [AS NAME]",
    });
  }
  const name = args.length === 3 ? checkName(args[2], from, earlier, file, warnings) : null;
  let platform: string | undefined;
  for (const flag of from.flags) {
    const { name: flagName, value } = parseFlag(flag);
    if (flagName !== "platform") {
      throw locatedError(file, from, `unknown flag: ${flag.replace(/=.*/s, "")}`, {
        hint: "FROM accepts only --platform=PLATFORM",
      });
    }
    if (value === undefined) {
      throw locatedError(file, from, "missing a value on flag: --platform", {
        hint: "use --platform=os/arch[/variant]",
      });
    }
    // An empty --platform= is no platform (convert.go: `if v := st.Platform; v != ""`).
    platform = value === "" ? undefined : value;
  }
  return { index: earlier.length, name, from, base: args[0], platform, instructions: [] };
}

function checkName(
  written: string,
  from: Instruction,
  earlier: readonly StageSyntax[],
  file: string,
  warnings: string[],
): string {
  const name = written.toLowerCase();
  if (!STAGE_NAME_RE.test(name)) {
    throw locatedError(
      file,
      from,
      `invalid name for build stage: "${written}", name can't start with a number or contain symbols`,
      { hint: "a stage name is a letter followed by letters, digits, '-', '_' or '.'" },
    );
  }
  const twin = earlier.find((s) => s.name === name);
  if (twin) {
    throw locatedError(file, from, `duplicate stage name "${name}"`, {
      hint: `line ${twin.from.line} already names a stage "${twin.name}" ` +
        "(stage names are case-insensitive); rename one of them",
    });
  }
  if (RESERVED_NAMES.has(name)) {
    warnings.push(
      `${file}:${from.line}: stage name "${name}" is reserved and should not be used ` +
        `as a stage name (FROM ${name} and COPY --from=${name} mean something else)`,
    );
  }
  return name;
}

/** The index of the stage named `name` (case-insensitive), if any. */
export function findStage(stages: readonly { name: string | null }[], name: string) {
  const wanted = name.toLowerCase();
  const index = stages.findIndex((s) => s.name === wanted);
  return index < 0 ? undefined : index;
}

/**
 * The index of the stage `--target` names (case-insensitive), or of the last stage. Throws a
 * KanikoError naming the stages there are when it names none.
 */
export function resolveTarget(
  stages: readonly { name: string | null }[],
  target: string | undefined,
  file: string,
): number {
  if (target === undefined || target === "") return stages.length - 1;
  const index = findStage(stages, target);
  if (index !== undefined) return index;
  const names = stages.flatMap((s) => s.name ? [s.name] : []);
  throw new KanikoError(`${file}: target stage "${target}" could not be found`, {
    hint: names.length
      ? `the named stages are: ${names.join(", ")}`
      : "no stage has a name: name one with FROM IMAGE AS NAME",
  });
}

/** What {@link stagesNeeded} reads of a stage: the stages it builds on and copies from. */
export interface StageLinks {
  /** The stage this one is built FROM, when it is a stage. */
  baseStage: number | null;
  /** Stages read by `COPY --from`, `RUN --mount=from=` or ONBUILD triggers. */
  deps: readonly number[];
}

/**
 * The target and every stage it depends on, through FROM and `COPY --from` / `RUN --mount
 * from=`, in ascending order: the stages `--skip-unused-stages` builds.
 */
export function stagesNeeded(plan: { stages: readonly StageLinks[] }, target: number): number[] {
  const seen = new Set<number>();
  const visit = (index: number) => {
    if (seen.has(index) || index < 0 || index >= plan.stages.length) return;
    seen.add(index);
    const stage = plan.stages[index];
    if (stage.baseStage !== null) visit(stage.baseStage);
    for (const dep of stage.deps) visit(dep);
  };
  visit(target);
  return [...seen].sort((a, b) => a - b);
}

/** What a `COPY --from` or `RUN --mount from=` reads: a stage, or an image to pull. */
export type SourceRef =
  | { kind: "stage"; index: number; flag: string }
  | { kind: "image"; ref: string; flag: string };

const NO_VARS = { get: () => undefined };

/**
 * The sources of every `COPY --from` and `RUN --mount ... from=` in `stages`, by instruction,
 * resolved as BuildKit resolves them before building (`toCommand` in `dockerfile2llb/convert.go`,
 * for every stage): a number is a stage index, a name is a stage (case-insensitive; `RUN --mount`
 * by name only), anything else an image. Variables are refused there (BuildKit's "variable
 * expansion is not supported for --from"), an index past the last stage is an error, and so is a
 * circular dependency. ONBUILD triggers are left out: BuildKit resolves a trigger only when a stage
 * it builds runs it (see {@link instructionSources}).
 */
export function resolveSources(
  ctx: ExpandContext,
  stages: readonly StageSyntax[],
): Map<Instruction, SourceRef[]> {
  const out = new Map<Instruction, SourceRef[]>();
  for (const stage of stages) {
    for (const inst of stage.instructions) {
      const refs = instructionSources(ctx, stages, inst);
      if (refs.length) out.set(inst, refs);
    }
  }
  checkCycles(ctx.file, stages, out);
  return out;
}

/** The stages or images one COPY or RUN reads (`--from`, `--mount from=`); see {@link resolveSources}. */
export function instructionSources(
  ctx: ExpandContext,
  stages: readonly StageSyntax[],
  inst: Instruction,
): SourceRef[] {
  if (inst.keyword === "COPY") {
    const from = flagValue(inst, "from");
    return from === undefined || from === "" ? [] : [copySource(ctx, stages, inst, from)];
  }
  if (inst.keyword !== "RUN") return [];
  return flagValues(inst, "mount").flatMap((value) => {
    const from = mountFields(value).get("from");
    if (from === undefined || from === "") return [];
    if (/\$./.test(from)) {
      throw locatedError(ctx.file, inst, "'from' doesn't support variable expansion", {
        hint: "define an alias stage instead: FROM image:$VERSION AS alias, then from=alias",
      });
    }
    const flag = `--mount from=${from}`;
    const index = findStage(stages, from);
    return [
      index === undefined ? imageSource(ctx, inst, from, flag) : { kind: "stage", index, flag },
    ];
  });
}

function copySource(
  ctx: ExpandContext,
  stages: readonly StageSyntax[],
  inst: Instruction,
  from: string,
): SourceRef {
  const flag = `--from=${from}`;
  if (located(ctx, inst, () => ctx.lex.processWord(from, NO_VARS)) !== from) {
    throw locatedError(ctx.file, inst, "variable expansion is not supported for --from", {
      hint: "define a new stage with FROM using ARG from global scope as a workaround",
    });
  }
  if (/^[+-]?\d+$/.test(from)) {
    const index = Number(from);
    if (index < 0 || index >= stages.length) {
      throw locatedError(ctx.file, inst, `invalid stage index ${index}`, {
        hint: `the Dockerfile has stages 0 to ${stages.length - 1}`,
      });
    }
    return { kind: "stage", index, flag };
  }
  const index = findStage(stages, from);
  return index === undefined ? imageSource(ctx, inst, from, flag) : { kind: "stage", index, flag };
}

function imageSource(ctx: ExpandContext, inst: Instruction, ref: string, flag: string): SourceRef {
  try {
    parseReference(ref);
  } catch (e) {
    throw locatedError(
      ctx.file,
      inst,
      `${flag}: "${ref}" is neither a stage name nor a valid image reference`,
      { hint: e instanceof KanikoError ? e.message : undefined },
    );
  }
  return { kind: "image", ref, flag };
}

/** BuildKit's "circular dependency detected on stage" check over the sources. */
function checkCycles(
  file: string,
  stages: readonly StageSyntax[],
  sources: ReadonlyMap<Instruction, SourceRef[]>,
): void {
  const deps = stages.map((s) =>
    s.instructions.flatMap((inst) =>
      (sources.get(inst) ?? []).flatMap((r) => r.kind === "stage" ? [{ index: r.index, inst }] : [])
    )
  );
  const visited = new Set<number>();
  const path = new Set<number>();
  const visit = (i: number): Instruction | undefined => {
    if (visited.has(i)) return undefined;
    visited.add(i), path.add(i);
    for (const dep of deps[i]) {
      if (path.has(dep.index)) return dep.inst;
      const closing = visit(dep.index);
      if (closing) return closing;
    }
    path.delete(i);
    return undefined;
  };
  for (const stage of stages) {
    const closing = visit(stage.index);
    if (closing) {
      const name = stage.name ?? `stage-${stage.index}`;
      throw locatedError(file, closing, `circular dependency detected on stage: ${name}`, {
        hint: "a stage cannot copy from itself or from a stage that copies from it",
      });
    }
  }
}

/** What a stage is built on: an earlier stage, an image, or neither (`scratch`). */
export interface StageBase {
  stage: number | null;
  image: string | null;
}

/**
 * Resolves a stage's expanded base as BuildKit does: the exact (lower-case) name of an earlier
 * stage, `scratch`, or else an image reference, which must be valid. A base naming this stage or
 * a later one is an image (with a warning): a stage builds only on the stages above it.
 */
export function checkBase(
  file: string,
  stages: readonly StageSyntax[],
  stage: StageSyntax,
  base: string,
  warnings: string[],
): StageBase {
  const earlier = stages.slice(0, stage.index).findIndex((s) => s.name === base);
  if (earlier >= 0) return { stage: earlier, image: null };
  if (base === "scratch") return { stage: null, image: null };
  const namesake = findStage(stages, base);
  try {
    parseReference(base);
  } catch (e) {
    const hint = namesake !== undefined && namesake < stage.index
      ? `stage names are lower case: write FROM ${stages[namesake].name}`
      : e instanceof KanikoError
      ? e.hint
      : undefined;
    throw locatedError(file, stage.from, e instanceof Error ? e.message : String(e), { hint });
  }
  if (namesake !== undefined && namesake >= stage.index) {
    warnings.push(
      `${file}:${stage.from.line}: FROM ${base} names the image ${base}, not the stage ` +
        `"${stages[namesake].name}" (line ${stages[namesake].from.line}): ` +
        "a stage can only build on a stage above it",
    );
  }
  return { stage: null, image: base };
}

/** PATH as BuildKit sets it when an image has none (not on Windows). */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * The variables a stage starts with when its base is an image or `scratch`: the image config's
 * environment when `imageEnv` knows it, and PATH (BuildKit's default) when that has none.
 */
export function stageEnv(
  image: string | null,
  platform: Platform,
  imageEnv?: (ref: string, platform: Platform) => string[] | undefined,
): Map<string, string> {
  const env = new Map<string, string>();
  for (const entry of (image !== null && imageEnv?.(image, platform)) || []) {
    const eq = entry.indexOf("=");
    env.set(eq < 0 ? entry : entry.slice(0, eq), eq < 0 ? "" : entry.slice(eq + 1));
  }
  if (!env.has("PATH") && platform.os !== "windows") env.set("PATH", DEFAULT_PATH);
  return env;
}
