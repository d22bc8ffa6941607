/**
 * The build: stages in order, each in its own root, then the target's image assembled and
 * written to every output. Base images are resolved first, so the plan is redone with their
 * environment (ENV values a base image sets are visible to the Dockerfile's expansion).
 *
 * {@link buildImage} builds one platform's image and hands it back unwritten (the
 * multi-platform coordinator assembles several into an index); {@link runBuild} is the
 * single-platform build: {@link buildImage}, then every output.
 * @module
 */
import type { BuildOptions, Isolation } from "../cli/options.ts";
import type { BuildContext } from "../context/mod.ts";
import type { Dockerfile } from "../dockerfile/ast.ts";
import { type BuildPlan, planBuild } from "../dockerfile/plan.ts";
import { stagesNeeded } from "../dockerfile/stages.ts";
import { log } from "../log.ts";
import type { LayerMemo } from "../layer/mod.ts";
import { formatPlatform } from "../oci/platform.ts";
import type { ImageConfig, Platform } from "../oci/schemas.ts";
import { RegistrySession } from "../registry/session.ts";
import { BaseImages } from "./base.ts";
import {
  buildEnv,
  createdTime,
  outputFormat,
  reproducibleEpoch,
  stageRoot,
  workDirectory,
} from "./build_setup.ts";
import { assembleImage, type BuiltImage, type LayerRef } from "./image.ts";
import { checkIsolation, defaultIsolation } from "./isolation.ts";
import { type OutputSummary, writeOutputs } from "./outputs.ts";
import { Progress } from "./progress.ts";
import { StageBuild, type StageResult } from "./stage.ts";

export { createdTime, outputFormat, reproducibleEpoch } from "./build_setup.ts";

/** What {@link runBuild} needs besides the options. */
export interface BuildInput {
  dockerfile: Dockerfile;
  file: string;
  context: BuildContext;
  /** The target platform (`os/arch[/variant]`). */
  platform: string;
}

/** Options of {@link buildImage}: what one platform's build shares with the others. */
export interface PlatformBuildOptions {
  /** Manifest and layer media types. */
  format: "oci" | "docker";
  /**
   * `created` of the config and history (RFC 3339). Builds of several platforms share one, so
   * that their configs differ only where the platforms do.
   */
  created?: string;
  /** The registry session (shared by concurrent builds); a private one when absent. */
  session?: RegistrySession;
  /** The isolation, when the caller decided it (`--isolation` or its default otherwise). */
  isolation?: Isolation;
  /** Start progress lines with the platform (several platforms building at once). */
  showPlatform?: boolean;
  /**
   * Called with the final plan (base images' ENV and ONBUILD triggers applied) and the stages
   * to build, before any stage is: throws to refuse the build (e.g. RUN for a foreign platform).
   */
  checkPlan?: (plan: BuildPlan, stages: number[]) => void;
  /** Reports a plan warning (default: logged); builds of several platforms log each once. */
  warn?: (warning: string) => void;
  /** Shared by the builds of several platforms: identical layers are written once. */
  layerMemo?: LayerMemo;
}

/** One platform's built image, not yet written anywhere. */
export interface PlatformImage {
  image: BuiltImage;
  plan: BuildPlan;
  /** The target stage's config and layers (to assemble the image again in another format). */
  config: ImageConfig;
  layers: LayerRef[];
  /** Removes the build's work directory (its layer blobs): call after every output is written. */
  dispose(): Promise<void>;
}

/** Builds the image and writes it to the outputs; returns the summary. */
export async function runBuild(opts: BuildOptions, input: BuildInput): Promise<OutputSummary> {
  const isolation: Isolation = opts.isolation ?? defaultIsolation();
  checkIsolation({ isolation, force: opts.force });
  const format = outputFormat(opts); // a usage error before anything is pulled
  reproducibleEpoch(opts);
  warnUnsupported(opts);
  const session = new RegistrySession(opts.registry);
  try {
    const built = await buildImage(opts, input, { format, session, isolation });
    try {
      const summary = await writeOutputs(built.image, opts, session);
      log.info(`built ${formatPlatform(built.plan.targetPlatform)} image ${summary.digest}`);
      return summary;
    } finally {
      await built.dispose();
    }
  } finally {
    session.close();
  }
}

/**
 * Builds the image of `input.platform` and returns it without writing any output. The caller
 * checks isolation and usage first, and calls `dispose` when done with the image.
 */
export async function buildImage(
  opts: BuildOptions,
  input: BuildInput,
  options: PlatformBuildOptions,
): Promise<PlatformImage> {
  const isolation: Isolation = options.isolation ?? opts.isolation ?? defaultIsolation();
  const session = options.session ?? new RegistrySession(opts.registry);
  const work = await workDirectory(opts, isolation);
  const roots: string[] = [];
  let removingRoots: Promise<unknown> | undefined;
  const dispose = async () => {
    await removingRoots;
    if (isolation !== "none" || opts.cleanup) {
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  };
  try {
    const bases = new BaseImages(session);
    const plan = await planWithBases(opts, input, bases, options.warn);
    const order = stagesToBuild(plan, opts);
    options.checkPlan?.(plan, order);
    const env = await buildEnv(opts, {
      plan,
      context: input.context,
      session,
      bases,
      isolation,
      work,
      format: options.format,
      created: options.created ?? createdTime(opts),
      layerMemo: options.layerMemo,
    });
    env.progress = new Progress(order, options.showPlatform ? input.platform : undefined);
    for (const index of order) {
      const root = isolation === "none" ? "/" : await stageRoot(work, index);
      if (root !== "/") roots.push(root);
      const result: StageResult = await new StageBuild(plan.stages[index], root, env).build();
      env.stages.set(index, result);
    }
    const target = env.stages.get(plan.target)!;
    fillVariant(target.state.config, plan.stages[plan.target].buildFor);
    const image = assembleImage(target.state.config, target.layers, {
      format: options.format,
      name: `the built ${formatPlatform(plan.targetPlatform)} image`,
    });
    // The stage roots are done with (the image reads its layers from blob files): remove them
    // while the outputs are written or other platforms build.
    removingRoots = Promise.all(
      roots.map((r) => Deno.remove(r, { recursive: true }).catch(() => {})),
    );
    return { image, plan, config: target.state.config, layers: target.layers, dispose };
  } catch (e) {
    await dispose();
    throw e;
  } finally {
    if (!options.session) session.close();
  }
}

/**
 * Plans, resolves every base image of a built stage, and plans again with their ENV and ONBUILD
 * triggers.
 */
async function planWithBases(
  opts: BuildOptions,
  input: BuildInput,
  bases: BaseImages,
  warn: (warning: string) => void = (w) => log.warn(w),
): Promise<BuildPlan> {
  const options = {
    buildArgs: opts.buildArgs,
    target: opts.target,
    platform: input.platform,
    file: input.file,
  };
  const first = planBuild(input.dockerfile, options);
  const envs = new Map<string, string[]>();
  const onBuilds = new Map<string, string[]>();
  for (const index of stagesToBuild(first, opts)) {
    const stage = first.stages[index];
    if (stage.baseImage === null) continue;
    const base = await bases.resolve(stage.baseImage, stage.buildFor);
    envs.set(`${stage.baseImage}|${formatPlatform(stage.buildFor)}`, base.config.config?.Env ?? []);
    onBuilds.set(
      `${stage.baseImage}|${formatPlatform(stage.buildFor)}`,
      base.config.config?.OnBuild ?? [],
    );
  }
  const plan = planBuild(input.dockerfile, {
    ...options,
    baseImageEnv: (ref, platform) => envs.get(`${ref}|${formatPlatform(platform)}`),
    baseImageOnBuild: (ref, platform) => onBuilds.get(`${ref}|${formatPlatform(platform)}`),
  });
  for (const warning of new Set(plan.warnings)) warn(warning);
  return plan;
}

/** The stages to build, in order: all up to the target (Kaniko), or only those it needs. */
export function stagesToBuild(plan: BuildPlan, opts: Pick<BuildOptions, "skipUnusedStages">) {
  if (opts.skipUnusedStages) return [...stagesNeeded(plan, plan.target)].sort((a, b) => a - b);
  return plan.stages.filter((s) => s.index <= plan.target).map((s) => s.index);
}

/**
 * A base image of the right os and architecture whose config lacks the variant (`arm` without
 * `v7`) gets the variant the stage was built for, so that the child's config names it.
 */
function fillVariant(config: ImageConfig, platform: Platform): void {
  if (!platform.variant || config.variant) return;
  if (config.os === platform.os && config.architecture === platform.architecture) {
    config.variant = platform.variant;
  }
}

/** Warns about the flags that are accepted but do nothing yet. */
export function warnUnsupported(opts: BuildOptions): void {
  if (opts.cache) log.warn("--cache: the layer cache is not implemented yet; building without it");
  if (opts.signImages) log.warn("--sign-images is not implemented yet; the image is not signed");
}
