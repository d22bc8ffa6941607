/**
 * The build: stages in order, each in its own root, then the target's image assembled and
 * written to every output. Base images are resolved first, so the plan is redone with their
 * environment (ENV values a base image sets are visible to the Dockerfile's expansion).
 * @module
 */
import { join } from "node:path";
import type { BuildOptions, Isolation } from "../cli/options.ts";
import type { BuildContext } from "../context/mod.ts";
import type { Dockerfile } from "../dockerfile/ast.ts";
import { type BuildPlan, planBuild } from "../dockerfile/plan.ts";
import { stagesNeeded } from "../dockerfile/stages.ts";
import { KanikoError } from "../errors.ts";
import { log } from "../log.ts";
import { compressionLevel } from "../layer/mod.ts";
import { formatPlatform } from "../oci/platform.ts";
import { RegistrySession } from "../registry/session.ts";
import { ignorePaths } from "../snapshot/mod.ts";
import { BaseImages } from "./base.ts";
import type { BuildEnv } from "./build_env.ts";
import { assembleImage, FileBlobSource } from "./image.ts";
import { checkIsolation, defaultIsolation } from "./isolation.ts";
import { secretSources } from "./mounts.ts";
import { type OutputSummary, writeOutputs } from "./outputs.ts";
import { Progress } from "./progress.ts";
import { StageBuild, type StageResult } from "./stage.ts";

/** What {@link runBuild} needs besides the options. */
export interface BuildInput {
  dockerfile: Dockerfile;
  file: string;
  context: BuildContext;
  /** The target platform (`os/arch[/variant]`). */
  platform: string;
}

/** Builds the image and writes it to the outputs; returns the summary. */
export async function runBuild(opts: BuildOptions, input: BuildInput): Promise<OutputSummary> {
  const isolation: Isolation = opts.isolation ?? defaultIsolation();
  checkIsolation({ isolation, force: opts.force });
  outputFormat(opts); // a usage error before anything is pulled
  reproducibleEpoch(opts);
  warnUnsupported(opts);
  const session = new RegistrySession(opts.registry);
  const work = await workDirectory(opts, isolation);
  try {
    const bases = new BaseImages(session);
    const plan = await planWithBases(opts, input, bases);
    const env = await buildEnv(opts, input, { plan, session, bases, isolation, work });
    const order = stagesToBuild(plan, opts);
    env.progress = new Progress(order);
    for (const index of order) {
      const root = isolation === "none" ? "/" : await stageRoot(work, index);
      const result: StageResult = await new StageBuild(plan.stages[index], root, env).build();
      env.stages.set(index, result);
    }
    const target = env.stages.get(plan.target)!;
    const image = assembleImage(target.state.config, target.layers, {
      format: env.format,
      name: "the built image",
    });
    const summary = await writeOutputs(image, opts, session);
    log.info(`built ${formatPlatform(plan.targetPlatform)} image ${summary.digest}`);
    return summary;
  } finally {
    session.close();
    if (isolation !== "none" || opts.cleanup) {
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
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
  for (const warning of new Set(plan.warnings)) log.warn(warning);
  return plan;
}

/** The stages to build, in order: all up to the target (Kaniko), or only those it needs. */
export function stagesToBuild(plan: BuildPlan, opts: Pick<BuildOptions, "skipUnusedStages">) {
  if (opts.skipUnusedStages) return [...stagesNeeded(plan, plan.target)].sort((a, b) => a - b);
  return plan.stages.filter((s) => s.index <= plan.target).map((s) => s.index);
}

async function workDirectory(opts: BuildOptions, isolation: Isolation): Promise<string> {
  if (isolation === "none") {
    await Deno.mkdir(opts.kanikoDir, { recursive: true });
    return await Deno.makeTempDir({ dir: opts.kanikoDir, prefix: "build-" });
  }
  return await Deno.makeTempDir({ prefix: "kaniko-build-" });
}

async function buildEnv(
  opts: BuildOptions,
  input: BuildInput,
  parts: {
    plan: BuildPlan;
    session: RegistrySession;
    bases: BaseImages;
    isolation: Isolation;
    work: string;
  },
): Promise<BuildEnv> {
  const dirs = { layers: join(parts.work, "layers"), tmp: join(parts.work, "tmp") };
  await Deno.mkdir(dirs.layers, { recursive: true });
  await Deno.mkdir(dirs.tmp, { recursive: true });
  const format = outputFormat(opts);
  const epoch = reproducibleEpoch(opts);
  return {
    opts,
    plan: parts.plan,
    context: input.context,
    session: parts.session,
    bases: parts.bases,
    stages: new Map(),
    isolation: parts.isolation,
    layersDir: dirs.layers,
    tmpDir: dirs.tmp,
    cacheDir: join(opts.kanikoDir, "cache", "run"),
    ignore: ignoreList(opts, parts.isolation, parts.work),
    compression: opts.compression,
    compressionLevel: opts.compressionLevel > 0 ? opts.compressionLevel : undefined,
    format,
    mtime: epoch === undefined ? undefined : BigInt(epoch) * 1_000_000_000n,
    created: new Date((epoch ?? Date.now() / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z"),
    blobs: new FileBlobSource(),
    secrets: secretSources(opts.secrets),
    progress: new Progress([]),
  };
}

/**
 * The media types of the output: Docker's with `--oci-mode=docker`, else OCI; zstd needs OCI.
 * Also checks `--compression-level` against the algorithm, so that a bad value is a usage error
 * before anything is pulled or built.
 */
function outputFormat(opts: BuildOptions): "oci" | "docker" {
  const format = opts.ociMode === "docker" || opts.legacyManifestList ? "docker" : "oci";
  if (format === "docker" && opts.compression === "zstd") {
    throw new KanikoError("--compression=zstd needs OCI media types", {
      exitCode: 2,
      hint: "use --oci-mode=oci (or auto), or --compression=gzip",
    });
  }
  if (opts.compressionLevel > 0) {
    try {
      compressionLevel(opts.compression, opts.compressionLevel);
    } catch (e) {
      if (!(e instanceof KanikoError)) throw e;
      throw new KanikoError(`--compression-level: ${e.message}`, { exitCode: 2, hint: e.hint });
    }
  }
  return format;
}

/** Seconds since the epoch for timestamps: 0 with --reproducible, else SOURCE_DATE_EPOCH. */
function reproducibleEpoch(opts: BuildOptions): number | undefined {
  const sde = Deno.env.get("SOURCE_DATE_EPOCH");
  if (sde !== undefined && sde !== "") {
    const n = Number(sde);
    if (!Number.isInteger(n) || n < 0) {
      throw new KanikoError(`SOURCE_DATE_EPOCH="${sde}" is not a number of seconds`, {
        exitCode: 2,
      });
    }
    return n;
  }
  return opts.reproducible ? 0 : undefined;
}

/** The paths never snapshotted: Kaniko's ignore list in `none` mode, little in `chroot`. */
function ignoreList(opts: BuildOptions, isolation: Isolation, work: string) {
  const paths = opts.ignorePaths.map((p) => p.replace(/^\/+|\/+$/g, ""));
  if (isolation === "none") {
    paths.push(
      opts.kanikoDir.replace(/^\/+/, ""),
      work.replace(/^\/+/, ""),
      "etc/mtab",
      "proc",
      "sys",
      "dev",
    );
    if (opts.ignoreVarRun) paths.push("var/run");
    paths.push(...mountPoints());
  }
  return ignorePaths(paths.filter(Boolean));
}

/** Every mount point of this process's mount namespace except `/`. */
function mountPoints(): string[] {
  try {
    return Deno.readTextFileSync("/proc/self/mountinfo").split("\n")
      .map((line) => line.split(" ")[4])
      .filter((p) => p && p !== "/")
      .map((p) => p.replace(/\\(\d{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8))))
      .map((p) => p.replace(/^\/+/, ""));
  } catch {
    return [];
  }
}

function warnUnsupported(opts: BuildOptions): void {
  if (opts.cache) log.warn("--cache: the layer cache is not implemented yet; building without it");
  if (opts.signImages) log.warn("--sign-images is not implemented yet; the image is not signed");
}

/** A private root for a stage: 0755 like any `/`. */
async function stageRoot(work: string, index: number): Promise<string> {
  const root = await Deno.makeTempDir({ dir: work, prefix: `stage-${index}-` });
  await Deno.chmod(root, 0o755);
  return root;
}
