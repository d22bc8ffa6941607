/**
 * The build command: prepares the context, reads and validates the Dockerfile (syntax, stages,
 * build arguments, expansion) before anything is pulled, then either prints the plan
 * (`--dry-run`: nothing pulled, built or pushed) or runs the build: one platform through the
 * engine (`lib/build/executor.ts`); `--multi-platform`, `--publish-index` or another `--driver`
 * through the coordinator (`drivers/coordinator.ts`).
 * @module
 */
import type { BuildOptions } from "../cli/options.ts";
import { log, logConfig } from "../log.ts";
import { parseDockerfile } from "../dockerfile/parser.ts";
import { validateDockerfile } from "../dockerfile/instruction_args.ts";
import { planBuild } from "../dockerfile/plan.ts";
import { loadDockerfile, prepareContext } from "../context/mod.ts";
import { describePlan } from "../build/describe.ts";
import { runBuild } from "../build/executor.ts";
import {
  prepareMultiPlatform,
  requestedPlatforms,
  runMultiPlatform,
  usesCoordinator,
} from "../../drivers/coordinator.ts";
import type { Driver, MultiPlatformBuild } from "../../drivers/types.ts";

/** Runs the build command; resolves to the exit code. */
export async function buildCommand(opts: BuildOptions): Promise<number> {
  await using context = await prepareContext(opts.context, {
    subPath: opts.contextSubPath,
    dockerfile: opts.dockerfile,
    gitOptions: opts.git,
    registry: opts.registry, // an oci:// context is pulled with the build's registry settings
  });
  const { text, name: file } = await loadDockerfile(opts.dockerfile, context);
  const dockerfile = parseDockerfile(text, { file });
  validateDockerfile(dockerfile, { file });
  for (const w of dockerfile.warnings) log.warn(`${file}:${w.line}: ${w.message}`);
  if (usesCoordinator(opts)) {
    // Multi-platform (or one --multi-platform platform, --publish-index, another driver).
    if (opts.dryRun) {
      const { build, driver } = await prepareMultiPlatform(opts, { dockerfile, file, context });
      printMultiPlatformPlan(opts, build, driver);
      return 0;
    }
    await runMultiPlatform(opts, { dockerfile, file, context });
    return 0;
  }
  const platforms = buildPlatforms(opts);
  const plans = platforms.map((platform) =>
    planBuild(dockerfile, { buildArgs: opts.buildArgs, target: opts.target, platform, file })
  );
  if (opts.dryRun) {
    for (const warning of new Set(plans.flatMap((p) => p.warnings))) log.warn(warning);
    const json = logConfig().format === "json";
    for (const plan of plans) {
      writeStdout(
        describePlan(plan, opts, { json, showPlatform: plans.length > 1 }).join("\n") + "\n",
      );
    }
    writeStdout(json ? JSON.stringify(pushSummary(opts)) + "\n" : `${pushLine(opts)}\n`);
    return 0;
  }
  await runBuild(opts, { dockerfile, file, context, platform: platforms[0] });
  return 0;
}

/**
 * The dry run of a multi-platform build: each platform's plan, then per platform how its driver
 * would build it (native or not, RUN steps or not), then what would be pushed.
 */
function printMultiPlatformPlan(opts: BuildOptions, build: MultiPlatformBuild, driver: Driver) {
  for (const w of new Set(build.targets.flatMap((t) => t.plan.warnings))) log.warn(w);
  const json = logConfig().format === "json";
  const showPlatform = build.targets.length > 1 || opts.publishIndex;
  for (const target of build.targets) {
    writeStdout(describePlan(target.plan, opts, { json, showPlatform }).join("\n") + "\n");
  }
  const lines = driver.describe(build);
  build.targets.forEach((t, i) => {
    const record = {
      driver: driver.name,
      platform: t.platform,
      native: t.native,
      hasRun: t.hasRun,
    };
    writeStdout((json ? JSON.stringify({ ...record, plan: lines[i] }) : lines[i]) + "\n");
  });
  writeStdout(
    json ? JSON.stringify(pushSummary(opts)) + "\n" : `${multiPlatformPushLine(opts, build)}\n`,
  );
}

/** What a multi-platform build would push: the index, or each platform under its own tag. */
function multiPlatformPushLine(opts: BuildOptions, build: MultiPlatformBuild): string {
  const n = build.targets.length;
  if (opts.noPush || opts.destinations.length === 0 || (n === 1 && !opts.publishIndex)) {
    return pushLine(opts);
  }
  const to = opts.destinations.join(", ");
  if (opts.publishIndex) {
    const what = build.format === "docker"
      ? "a Docker manifest list"
      : opts.ociMode === "auto"
      ? "an OCI image index (a Docker manifest list if the registry refuses OCI types)"
      : "an OCI image index";
    return `dry run: nothing was pulled, built or pushed; would push ${what} of ${n} platforms ` +
      `to ${to}`;
  }
  const slugs = build.targets.map((t) => `TAG-${t.slug}`).join(", ");
  return `dry run: nothing was pulled, built or pushed; would push ${n} platform images to ${to} ` +
    `as ${slugs} (no index without --publish-index)`;
}

/** The platforms to plan: `--multi-platform` (`--platform`), else `--custom-platform` or the host's. */
export function buildPlatforms(opts: Pick<BuildOptions, "multiPlatform" | "customPlatform">) {
  return requestedPlatforms(opts);
}

const encoder = new TextEncoder();

function writeStdout(text: string): void {
  const bytes = encoder.encode(text);
  let offset = 0;
  while (offset < bytes.length) offset += Deno.stdout.writeSync(bytes.subarray(offset));
}

function pushSummary(opts: BuildOptions): Record<string, unknown> {
  return { dryRun: true, destinations: opts.noPush ? [] : opts.destinations, noPush: opts.noPush };
}

function pushLine(opts: BuildOptions): string {
  if (opts.noPush || opts.destinations.length === 0) {
    return "dry run: nothing was pulled, built or pushed (--no-push)";
  }
  return `dry run: nothing was pulled, built or pushed; would push ${opts.destinations.join(", ")}`;
}
