/**
 * The meaning of a parsed Dockerfile for one build, as BuildKit gives it: global ARGs resolved
 * (usable in FROM only, unless re-declared), per-stage ARG scope (`--build-arg` overriding
 * defaults, an `ARG NAME` without value picking up the global value or the automatic platform
 * argument), ENV and ARG shadowing each other in order, bases and `--platform` expanded, stage
 * references checked, the target chosen, and the `--build-arg`s nothing consumes reported.
 * A stage runs first the ONBUILD triggers of the stage or the image it is built on (an image's, as
 * `DescribeOptions.baseImageOnBuild` gives them, parsed by `./onbuild.ts`).
 * Like BuildKit, the plan fails only on what BuildKit checks for every stage (FROM lines,
 * `COPY --from`, cycles) and on the steps of the stages the target needs; a step of another stage
 * that could not be prepared keeps its error (`PlannedInstruction.error`) and is reported as a
 * warning, as BuildKit never runs it.
 *
 * {@link planBuild} gives the full plan (for `--dry-run` and the build engine);
 * {@link describeBuild} the JSON of `parse` (see the command-line contract).
 * @module
 */
import type { Dockerfile, Instruction } from "./ast.ts";
import { log } from "../log.ts";
import { hostPlatform, parsePlatform } from "../oci/platform.ts";
import type { Platform } from "../oci/schemas.ts";
import {
  type ArgScopes,
  consumedArgs,
  declareArgs,
  type MetaArg,
  platformArgs,
  processEnv,
  proxyEnv,
  resolveBuildArgs,
  resolveMetaArgs,
  unusedBuildArgWarnings,
} from "./build_args.ts";
import { type ExpandContext, expandContext, expandInstruction, locatedError } from "./expand.ts";
import { dispatchProblem } from "./dispatch_checks.ts";
import { validateInstruction } from "./instruction_args.ts";
import { KanikoError } from "../errors.ts";
import { type ImageTrigger, imageTriggerError } from "./onbuild.ts";
import {
  imageTriggersOf,
  neededStages,
  type StageGraph,
  stageGraph,
  type StageHeader,
  stageHeader,
  triggersOf,
  triggerSources,
} from "./stage_graph.ts";
import {
  type DockerfileStages,
  resolveSources,
  resolveTarget,
  type SourceRef,
  splitStages,
  stageEnv,
  stagesNeeded,
  type StageSyntax,
} from "./stages.ts";

/** Options of {@link planBuild} and {@link describeBuild}. */
export interface DescribeOptions {
  /** `--build-arg` values: `K=V`, or a bare `K` taken from `env`. */
  buildArgs: string[];
  /** `--target`: the stage to build (case-insensitive); the last stage by default. */
  target?: string;
  /** The platform built for (`TARGETPLATFORM`), `os/arch[/variant]`; the host's by default. */
  platform?: string;
  /** The Dockerfile as the user named it, for `FILE:LINE:` in errors. */
  file: string;
  /** Where a bare `--build-arg K` reads K; the process environment by default. */
  env?: Record<string, string>;
  /** The platform building (`BUILDPLATFORM`); the host's by default. */
  buildPlatform?: string;
  /**
   * The `K=V` environment of an image's config, when known (the build engine knows it after
   * pulling). Without it a base image is taken to set only PATH (BuildKit's default).
   */
  baseImageEnv?: (ref: string, platform: Platform) => string[] | undefined;
  /**
   * The ONBUILD triggers of an image's config (`config.OnBuild`, e.g. `["RUN echo hi"]`), when
   * known (the build engine knows them after pulling). A stage built FROM the image runs them
   * first, in its own scope, as BuildKit does; without this option an image has none.
   */
  baseImageOnBuild?: (ref: string, platform: Platform) => string[] | undefined;
}

/** One instruction in the JSON of `parse`. */
export interface ParseInstruction {
  keyword: string;
  line: number;
  flags: string[];
  args: string[];
  expanded: string[];
}

/** One stage in the JSON of `parse`. */
export interface ParseStage {
  index: number;
  name: string | null;
  base: string;
  platform: string | null;
  instructions: ParseInstruction[];
}

/** The JSON `parse` prints (without `--raw`). */
export interface ParseOutput {
  metaArgs: { name: string; value: string | null }[];
  stages: ParseStage[];
  target: number;
}

/** An instruction with everything the build needs to run it. */
export interface PlannedInstruction extends ParseInstruction {
  /** The syntax tree node. */
  instruction: Instruction;
  /** `flags` after expansion (`--chown`, `--chmod`, `--checksum`, `--mount` fields). */
  expandedFlags: string[];
  /** COPY/ADD heredoc bodies after expansion. */
  heredocs: { name: string; content: string }[];
  /** The variables (ENV and ARG values) in force before the instruction. */
  scope: Record<string, string>;
  /** The stages or images read by `COPY --from` / `RUN --mount from=`. */
  sources: SourceRef[];
  /** For ARG: each name and the value it resolved to (null: declared without value). */
  argValues?: { name: string; value: string | null }[];
  /**
   * Set on a step of a stage the target does not need when preparing it failed (an expansion
   * error, a bad port, a forward `COPY --from`…). BuildKit never runs such a step, so the plan
   * does not fail; `expanded` and `expandedFlags` are then the step as written, and a build that
   * runs the step anyway must fail with this error.
   */
  error?: KanikoError;
}

/** A stage with everything the build needs. */
export interface PlannedStage extends Omit<ParseStage, "instructions"> {
  from: Instruction;
  /** The stage this one is built on, or null for an image or `scratch`. */
  baseStage: number | null;
  /** The image to pull (the expanded base), or null for a stage or `scratch`. */
  baseImage: string | null;
  /** The platform the stage is built for (its `--platform`, its base stage's, or the target). */
  buildFor: Platform;
  /** Stages read by `COPY --from` and `RUN --mount from=`. */
  deps: number[];
  /**
   * The ONBUILD triggers of the base stage or base image, run first, in order (BuildKit runs
   * them); an image's triggers are located at the FROM line.
   */
  triggers: PlannedInstruction[];
  instructions: PlannedInstruction[];
  /** Names declared by ARG in the stage (triggers included). */
  declaredArgs: string[];
  /** Global ARGs the FROM line read. */
  usedMetaArgs: string[];
}

/** The full plan of a build. */
export interface BuildPlan {
  file: string;
  metaArgs: MetaArg[];
  stages: PlannedStage[];
  target: number;
  /** Warning lines (not consumed build args, FROM naming a later stage, reserved names). */
  warnings: string[];
  /** The `--build-arg` values in force. */
  buildArgs: Map<string, string>;
  /** Proxy settings given to RUN without being declared (never persisted). */
  proxyEnv: Map<string, string>;
  /** The global scope after the meta ARGs: automatic platform arguments and global ARGs. */
  globalArgs: Map<string, string>;
  targetPlatform: Platform;
  buildPlatform: Platform;
}

/** The state of the walk over the stages. */
interface Walk {
  ctx: ExpandContext;
  options: DescribeOptions;
  scopes: ArgScopes;
  syntax: DockerfileStages;
  graph: StageGraph;
  /** The stages the target needs: only their steps may fail the plan. */
  needed: ReadonlySet<number>;
  stages: PlannedStage[];
  envs: Map<string, string>[];
  warnings: string[];
  targetPlatform: Platform;
}

/**
 * Plans the build of `df`: throws a one-line KanikoError (`FILE:LINE: …`) for a Dockerfile that
 * cannot be built (no FROM, instructions before FROM, bad stage names or references, invalid
 * bases or platforms, unknown `--target`, and — in the stages the target needs — failed
 * `${v:?…}` expansions and the values BuildKit rejects when it runs a step, see
 * `./dispatch_checks.ts`).
 */
export function planBuild(df: Dockerfile, options: DescribeOptions): BuildPlan {
  const ctx = expandContext(options.file, df.escape);
  const warnings: string[] = [];
  const syntax = splitStages(df, options.file, warnings);
  const target = resolveTarget(syntax.stages, options.target, options.file);
  const env = options.env;
  const buildArgs = resolveBuildArgs(options.buildArgs, env ? (k) => env[k] : processEnv);
  const targetPlatform = options.platform ? parsePlatform(options.platform) : hostPlatform();
  const buildPlatform = options.buildPlatform
    ? parsePlatform(options.buildPlatform)
    : hostPlatform();
  const stageName = options.target || syntax.stages[syntax.stages.length - 1].name || "";
  const global = platformArgs(targetPlatform, buildPlatform, stageName, buildArgs);
  const scopes: ArgScopes = { buildArgs, global, metaDeps: new Map() };
  const metaArgs = resolveMetaArgs(ctx, syntax.metaArgs, scopes);
  const headers = syntax.stages.map((s) => stageHeader(ctx, global, s));
  const sources = resolveSources(ctx, syntax.stages);
  const onBuild = options.baseImageOnBuild;
  const graph = stageGraph(
    ctx,
    syntax.stages,
    headers,
    sources,
    warnings,
    onBuild && ((i, image) => onBuild(image, headers[i].platform ?? targetPlatform)),
  );
  const walk: Walk = {
    ctx,
    options,
    scopes,
    syntax,
    graph,
    needed: neededStages(graph, target),
    stages: [],
    envs: [],
    warnings,
    targetPlatform,
  };
  for (const [i, s] of syntax.stages.entries()) walk.stages.push(planStage(walk, s, headers[i]));
  const built = stagesNeeded({ stages: walk.stages }, target).map((i) => walk.stages[i]);
  warnings.push(...unusedBuildArgWarnings(buildArgs, consumedArgs(built, scopes.metaDeps)));
  return {
    file: options.file,
    metaArgs,
    stages: walk.stages,
    target,
    warnings,
    buildArgs,
    proxyEnv: proxyEnv(buildArgs),
    globalArgs: global,
    targetPlatform,
    buildPlatform,
  };
}

function planStage(walk: Walk, s: StageSyntax, header: StageHeader): PlannedStage {
  const base = walk.graph.bases[s.index];
  const parent = base.stage === null ? undefined : walk.stages[base.stage];
  const buildFor = parent?.buildFor ?? header.platform ?? walk.targetPlatform;
  const env = parent
    ? new Map(walk.envs[parent.index])
    : stageEnv(base.image, buildFor, walk.options.baseImageEnv);
  const stage: PlannedStage = {
    index: s.index,
    name: s.name,
    base: header.base,
    platform: header.platformText,
    from: s.from,
    baseStage: base.stage,
    baseImage: base.image,
    buildFor,
    deps: [],
    triggers: [],
    instructions: [],
    declaredArgs: [],
    usedMetaArgs: header.usedMetaArgs,
  };
  for (const inst of triggersOf(walk.graph, s.index)) {
    stage.triggers.push(planStep(walk, stage, env, inst, true));
  }
  for (const trigger of imageTriggersOf(walk.graph, s.index)) {
    stage.triggers.push(planStep(walk, stage, env, trigger.instruction, trigger));
  }
  for (const inst of s.instructions) stage.instructions.push(planStep(walk, stage, env, inst));
  walk.envs[s.index] = env;
  return stage;
}

/**
 * One step of `stage`: its own, a trigger of its base stage (`trigger` true) or one of its base
 * image (`trigger` that trigger; its errors are located as `FILE:LINE (ONBUILD trigger of
 * IMAGE)`). In a stage the target needs, a step that cannot be prepared fails the plan; in
 * another one (BuildKit never runs it) the error is kept on the step and reported as a warning.
 */
function planStep(
  walk: Walk,
  stage: PlannedStage,
  env: Map<string, string>,
  inst: Instruction,
  trigger: boolean | ImageTrigger = false,
): PlannedInstruction {
  const image = typeof trigger === "object" ? trigger : undefined;
  try {
    // BuildKit parses a trigger (instructions.ParseCommand) only when a stage runs it; an
    // image's triggers were parsed with the graph (stage_graph.ts imageTriggersOf).
    if (trigger === true) {
      validateInstruction(inst, { file: walk.ctx.file, escape: walk.ctx.escape });
    }
    const sources = trigger
      ? triggerSources(walk.graph, inst, image)
      : walk.graph.sources.get(inst);
    return planInstruction(walk, stage, env, inst, sources ?? []);
  } catch (caught) {
    const e = image && caught instanceof KanikoError
      ? imageTriggerError(walk.ctx.file, image, caught)
      : caught;
    if (walk.needed.has(stage.index) || !(e instanceof KanikoError)) throw e;
    const what = stage.name ? `"${stage.name}"` : `${stage.index}`;
    walk.warnings.push(`${e.message} (ignored: stage ${what} is not needed by the target)`);
    return {
      keyword: inst.keyword,
      line: inst.line,
      flags: inst.flags,
      args: inst.args,
      expanded: [...inst.args],
      instruction: inst,
      scope: Object.fromEntries(env),
      sources: [],
      expandedFlags: inst.flags,
      heredocs: [],
      error: e,
    };
  }
}

function planInstruction(
  walk: Walk,
  stage: PlannedStage,
  env: Map<string, string>,
  inst: Instruction,
  sources: SourceRef[],
): PlannedInstruction {
  const scope = Object.fromEntries(env);
  for (const src of sources) checkSourceOrder(walk, stage, inst, src);
  const planned = {
    keyword: inst.keyword,
    line: inst.line,
    flags: inst.flags,
    args: inst.args,
    instruction: inst,
    scope,
    sources,
  };
  if (inst.keyword === "ARG") {
    const resolved = declareArgs(walk.ctx, inst, walk.scopes, env, stage.declaredArgs);
    const expanded = argExpanded(inst, resolved);
    const argValues = resolved.map(([name, value]) => ({ name, value: value ?? null }));
    return { ...planned, expanded, expandedFlags: inst.flags, heredocs: [], argValues };
  }
  const result = expandInstruction(walk.ctx, inst, env);
  const problem = dispatchProblem(inst, result);
  if (problem) throw locatedError(walk.ctx.file, inst, problem);
  if (inst.keyword === "ENV") {
    for (let i = 0; i + 1 < result.expanded.length; i += 2) {
      env.set(result.expanded[i], result.expanded[i + 1]);
    }
  }
  const { expanded, flags: expandedFlags, heredocs } = result;
  return { ...planned, expanded, expandedFlags, heredocs };
}

/** ARG's `expanded`, in the shape of its `args`: pairs, or `K=V`/`K` words. */
function argExpanded(inst: Instruction, resolved: [string, string | undefined][]): string[] {
  if (inst.args.length === resolved.length * 2) return resolved.flatMap(([k, v]) => [k, v ?? ""]);
  return resolved.map(([k, v]) => v === undefined ? k : `${k}=${v}`);
}

/** A COPY --from / RUN --mount from= must name an earlier stage (BuildKit builds in order). */
function checkSourceOrder(walk: Walk, stage: PlannedStage, inst: Instruction, src: SourceRef) {
  if (src.kind !== "stage") return;
  if (src.index >= stage.index) {
    const other = walk.syntax.stages[src.index];
    const what = other.name ? `"${other.name}"` : `${src.index}`;
    const here = stage.name ? `"${stage.name}"` : `${stage.index}`;
    const message = src.index === stage.index
      ? `${src.flag}: circular dependency detected on stage: ${
        stage.name ?? `stage-${stage.index}`
      }`
      : `${src.flag}: cannot read from stage ${what}, it needs to be defined before current stage ${here}`;
    throw locatedError(walk.ctx.file, inst, message, {
      hint: src.index === stage.index
        ? "a stage cannot copy from itself"
        : `stage ${what} starts on line ${other.from.line}; move it above this stage`,
    });
  }
  if (!stage.deps.includes(src.index)) stage.deps.push(src.index);
}

/** The JSON of `parse` for a plan. */
export function toParseOutput(plan: BuildPlan): ParseOutput {
  return {
    metaArgs: plan.metaArgs.map((a) => ({ name: a.name, value: a.value })),
    stages: plan.stages.map((s) => ({
      index: s.index,
      name: s.name,
      base: s.base,
      platform: s.platform,
      instructions: s.instructions.map((i) => ({
        keyword: i.keyword,
        line: i.line,
        flags: [...i.flags],
        args: [...i.args],
        expanded: [...i.expanded],
      })),
    })),
    target: plan.target,
  };
}

/**
 * The JSON object `parse` prints: {@link planBuild}'s plan in the contract's shape. Its warnings
 * (build args nothing consumes, …) are logged, one line each.
 */
export function describeBuild(df: Dockerfile, options: DescribeOptions): ParseOutput {
  const plan = planBuild(df, options);
  for (const warning of plan.warnings) log.warn(warning);
  return toParseOutput(plan);
}
