/**
 * How the stages of a build hang together, as BuildKit's `dockerfile2llb` works it out before
 * running anything: each FROM line expanded with the global scope (`buildDispatchStates`), the
 * stage or image it builds on (`addState`, `resolveBaseImage`), the ONBUILD triggers a stage
 * inherits from the stage or the image it builds on (`initOnBuildTriggers`), and the stages the
 * target needs (`allReachableStages`) — BuildKit only runs those, so only their instructions (and
 * triggers) can fail a build.
 * @module
 */
import type { Instruction } from "./ast.ts";
import { type ExpandContext, located, locatedError } from "./expand.ts";
import { KanikoError } from "../errors.ts";
import { type ImageTrigger, imageTriggerError, parseImageTriggers } from "./onbuild.ts";
import { parsePlatform } from "../oci/platform.ts";
import type { Platform } from "../oci/schemas.ts";
import {
  checkBase,
  instructionSources,
  type SourceRef,
  type StageBase,
  type StageSyntax,
} from "./stages.ts";

/** A stage's FROM line expanded with the global scope. */
export interface StageHeader {
  base: string;
  platformText: string | null;
  platform?: Platform;
  usedMetaArgs: string[];
}

/** BuildKit's FROM handling: base and `--platform` expanded with the global ARGs and checked. */
export function stageHeader(
  ctx: ExpandContext,
  global: ReadonlyMap<string, string>,
  s: StageSyntax,
): StageHeader {
  const expand = (word: string) =>
    located(ctx, s.from, () => ctx.lex.processWordWithUsage(word, global));
  const base = expand(s.base);
  const used = new Set([...base.used].filter((n) => global.has(n)));
  if (base.value === "") {
    throw locatedError(ctx.file, s.from, `base name (${s.base}) should not be blank`, {
      hint: "set the ARG it uses, globally or with --build-arg",
    });
  }
  if (s.platform === undefined) {
    return { base: base.value, platformText: null, usedMetaArgs: [...used] };
  }
  const platform = expand(s.platform);
  platform.used.forEach((n) => global.has(n) && used.add(n));
  if (platform.value === "") {
    throw locatedError(ctx.file, s.from, `empty platform value from expression ${s.platform}`);
  }
  try {
    const parsed = parsePlatform(platform.value);
    return {
      base: base.value,
      platformText: platform.value,
      platform: parsed,
      usedMetaArgs: [...used],
    };
  } catch (e) {
    throw locatedError(ctx.file, s.from, `failed to parse platform ${s.platform}`, {
      hint: e instanceof Error ? e.message : String(e),
    });
  }
}

/** The stage structure of a build: what each stage is built on and what it reads. */
export interface StageGraph {
  ctx: ExpandContext;
  stages: readonly StageSyntax[];
  /** The base of each stage (an earlier stage, an image or `scratch`). */
  bases: StageBase[];
  /** The sources of the COPY/RUN instructions and of the triggers resolved so far. */
  sources: Map<Instruction, SourceRef[]>;
  /** The `OnBuild` list of the image stage `index` is built on, when known. */
  baseOnBuild?: (index: number, image: string) => readonly string[] | undefined;
  /** The triggers of the base images parsed so far, by stage (see {@link imageTriggersOf}). */
  imageTriggers: Map<number, ImageTrigger[]>;
}

/**
 * The graph of `stages`, with their expanded bases; warnings go to `warnings`. `baseOnBuild`
 * gives the ONBUILD triggers of the image a stage is built on (none when it is not given).
 */
export function stageGraph(
  ctx: ExpandContext,
  stages: readonly StageSyntax[],
  headers: readonly StageHeader[],
  sources: Map<Instruction, SourceRef[]>,
  warnings: string[],
  baseOnBuild?: (index: number, image: string) => readonly string[] | undefined,
): StageGraph {
  const bases = stages.map((s, i) => checkBase(ctx.file, stages, s, headers[i].base, warnings));
  return { ctx, stages, bases, sources, baseOnBuild, imageTriggers: new Map() };
}

/** The ONBUILD triggers stage `index` runs first: those of the stage it is built on. */
export function triggersOf(graph: StageGraph, index: number): Instruction[] {
  const parent = graph.bases[index].stage;
  if (parent === null) return [];
  return graph.stages[parent].instructions.flatMap((i) => i.onbuild ? [i.onbuild] : []);
}

/**
 * The ONBUILD triggers of the image stage `index` is built on (none for a stage base or
 * `scratch`), parsed when first asked for (BuildKit parses them only for the stages it runs); a
 * trigger that cannot be parsed carries its error. They run after {@link triggersOf}'s.
 */
export function imageTriggersOf(graph: StageGraph, index: number): ImageTrigger[] {
  let triggers = graph.imageTriggers.get(index);
  if (!triggers) {
    const image = graph.bases[index].image;
    const texts = image === null ? undefined : graph.baseOnBuild?.(index, image);
    const from = graph.stages[index].from;
    triggers = image !== null && texts?.length
      ? parseImageTriggers(graph.ctx.file, from, image, texts)
      : [];
    graph.imageTriggers.set(index, triggers);
  }
  return triggers;
}

/**
 * The sources of a trigger (`ONBUILD COPY --from=…`), resolved when a stage runs it, as
 * BuildKit's `initOnBuildTriggers` does; kept in `graph.sources`. For a base image's trigger
 * (`image`), errors are located as that trigger's, and a trigger that could not be parsed throws
 * its error.
 */
export function triggerSources(
  graph: StageGraph,
  trigger: Instruction,
  image?: ImageTrigger,
): SourceRef[] {
  if (image?.error) throw image.error;
  let refs = graph.sources.get(trigger);
  if (!refs) {
    try {
      refs = instructionSources(graph.ctx, graph.stages, trigger);
    } catch (e) {
      if (!image || !(e instanceof KanikoError)) throw e;
      throw imageTriggerError(graph.ctx.file, image, e);
    }
    graph.sources.set(trigger, refs);
  }
  return refs;
}

/**
 * The stages BuildKit runs for `target`: the target, the stage each needed stage is built on, and
 * the stages their COPY/RUN instructions and inherited triggers read. Throws the error of a
 * needed stage's base-image trigger that cannot be parsed or resolved (BuildKit's
 * `resolveStages` fails on those).
 */
export function neededStages(graph: StageGraph, target: number): Set<number> {
  const needed = new Set<number>();
  const visit = (index: number) => {
    if (needed.has(index)) return;
    needed.add(index);
    const refs = graph.stages[index].instructions.flatMap((i) => graph.sources.get(i) ?? []);
    refs.push(...triggersOf(graph, index).flatMap((t) => triggerSources(graph, t)));
    for (const t of imageTriggersOf(graph, index)) {
      refs.push(...triggerSources(graph, t.instruction, t));
    }
    const base = graph.bases[index].stage;
    if (base !== null) visit(base);
    for (const ref of refs) if (ref.kind === "stage") visit(ref.index);
  };
  visit(target);
  return needed;
}
