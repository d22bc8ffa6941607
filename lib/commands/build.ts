/**
 * The build command: prepares the context, reads and validates the Dockerfile (syntax, stages,
 * build arguments, expansion) before anything is pulled, then either prints the plan
 * (`--dry-run`: nothing pulled, built or pushed) or runs the build (`lib/build/executor.ts`).
 * @module
 */
import type { BuildOptions } from "../cli/options.ts";
import { KanikoError } from "../errors.ts";
import { log, logConfig } from "../log.ts";
import { formatPlatform, hostPlatform } from "../oci/platform.ts";
import { parseDockerfile } from "../dockerfile/parser.ts";
import { validateDockerfile } from "../dockerfile/instruction_args.ts";
import { planBuild } from "../dockerfile/plan.ts";
import { loadDockerfile, prepareContext } from "../context/mod.ts";
import { describePlan } from "../build/describe.ts";
import { runBuild } from "../build/executor.ts";

/** Runs the build command; resolves to the exit code. */
export async function buildCommand(opts: BuildOptions): Promise<number> {
  await using context = await prepareContext(opts.context, {
    subPath: opts.contextSubPath,
    dockerfile: opts.dockerfile,
    gitOptions: opts.git,
  });
  const { text, name: file } = await loadDockerfile(opts.dockerfile, context);
  const dockerfile = parseDockerfile(text, { file });
  validateDockerfile(dockerfile, { file });
  for (const w of dockerfile.warnings) log.warn(`${file}:${w.line}: ${w.message}`);
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
  if (platforms.length > 1) {
    throw new KanikoError("multi-platform builds are not available yet in this version", {
      hint: "build one platform at a time with --custom-platform",
    });
  }
  await runBuild(opts, { dockerfile, file, context, platform: platforms[0] });
  return 0;
}

/** The platforms to plan: `--multi-platform` (`--platform`), else `--custom-platform` or the host's. */
export function buildPlatforms(opts: Pick<BuildOptions, "multiPlatform" | "customPlatform">) {
  if (opts.multiPlatform.length > 0) return [...opts.multiPlatform];
  return [opts.customPlatform || formatPlatform(hostPlatform())];
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
