/**
 * The build command. For now: loads and validates the Dockerfile (syntax, stages, build
 * arguments, expansion) and, with `--dry-run`, prints the stages and steps the build would run,
 * without pulling, building or pushing anything. Without `--dry-run` it stops after validating:
 * the build engine comes next.
 * @module
 */
import type { BuildOptions } from "../cli/options.ts";
import { KanikoError } from "../errors.ts";
import { log, logConfig } from "../log.ts";
import { formatPlatform, hostPlatform } from "../oci/platform.ts";
import { parseDockerfile } from "../dockerfile/parser.ts";
import { validateDockerfile } from "../dockerfile/instruction_args.ts";
import { type BuildPlan, planBuild, type PlannedInstruction } from "../dockerfile/plan.ts";
import { stagesNeeded } from "../dockerfile/stages.ts";
import { loadDockerfile, prepareContext } from "../context/mod.ts";

/** Runs the build command; resolves to the exit code. */
export async function buildCommand(opts: BuildOptions): Promise<number> {
  const { text, file } = await loadDockerfileText(opts);
  const dockerfile = parseDockerfile(text, { file });
  validateDockerfile(dockerfile, { file });
  for (const w of dockerfile.warnings) log.warn(`${file}:${w.line}: ${w.message}`);
  const plans = buildPlatforms(opts).map((platform) =>
    planBuild(dockerfile, { buildArgs: opts.buildArgs, target: opts.target, platform, file })
  );
  for (const warning of new Set(plans.flatMap((p) => p.warnings))) log.warn(warning);
  if (!opts.dryRun) {
    throw new KanikoError(
      "building images is not available yet in this version (the build engine comes next)",
      { hint: "use --dry-run to see the plan" },
    );
  }
  const json = logConfig().format === "json";
  for (const plan of plans) {
    writeStdout(
      describePlan(plan, opts, { json, showPlatform: plans.length > 1 }).join("\n") + "\n",
    );
  }
  writeStdout(json ? JSON.stringify(pushSummary(opts)) + "\n" : `${pushLine(opts)}\n`);
  return 0;
}

/** The platforms to plan: `--multi-platform` (`--platform`), else `--custom-platform` or the host's. */
export function buildPlatforms(opts: Pick<BuildOptions, "multiPlatform" | "customPlatform">) {
  if (opts.multiPlatform.length > 0) return [...opts.multiPlatform];
  return [opts.customPlatform || formatPlatform(hostPlatform())];
}

/** Options of {@link describePlan}. */
export interface DescribeOptions {
  /** One JSON object per line instead of text. */
  json: boolean;
  /** Start with a line naming the target platform (multi-platform builds). */
  showPlatform: boolean;
}

/**
 * The dry-run description of a plan: a line per stage (`stage 0 "build" FROM busybox:1.36
 * (platform linux/amd64)`), a line per step with its expanded form, and the stages skipped.
 * Kaniko builds every stage up to the target; with `--skip-unused-stages` only those it needs.
 */
export function describePlan(
  plan: BuildPlan,
  opts: Pick<BuildOptions, "skipUnusedStages">,
  options: DescribeOptions,
): string[] {
  const needed = new Set(stagesNeeded(plan, plan.target));
  const lines: string[] = [];
  const emit = (text: string, record: Record<string, unknown>) =>
    lines.push(options.json ? JSON.stringify(record) : text);
  const platform = formatPlatform(plan.targetPlatform);
  if (options.showPlatform) emit(`platform ${platform}`, { platform });
  for (const stage of plan.stages) {
    const built = opts.skipUnusedStages ? needed.has(stage.index) : stage.index <= plan.target;
    const label = `stage ${stage.index}${stage.name ? ` ${JSON.stringify(stage.name)}` : ""}`;
    const from = stage.baseStage === null ? stage.base : `${stage.base} (stage ${stage.baseStage})`;
    const stagePlatform = formatPlatform(stage.buildFor);
    const record = {
      stage: stage.index,
      name: stage.name,
      base: stage.base,
      baseStage: stage.baseStage,
      platform: stagePlatform,
      built,
    };
    if (!built) {
      const why = stage.index > plan.target ? "after the target stage" : "not needed by the target";
      emit(`${label} skipped: ${why}`, { ...record, reason: why });
      continue;
    }
    emit(`${label} FROM ${from} (platform ${stagePlatform})`, record);
    const steps = [...stage.triggers, ...stage.instructions];
    steps.forEach((step, i) => {
      const trigger = i < stage.triggers.length;
      const text = `  step ${i + 1}/${steps.length}: ${trigger ? "(ONBUILD) " : ""}${
        formatStep(step)
      }`;
      emit(text, {
        stage: stage.index,
        step: i + 1,
        ...(trigger ? { onbuild: true } : {}),
        keyword: step.keyword,
        line: step.line,
        flags: step.expandedFlags,
        expanded: step.expanded,
      });
    });
  }
  const target = plan.stages[plan.target];
  emit(`target stage ${plan.target}${target.name ? ` ${JSON.stringify(target.name)}` : ""}`, {
    target: plan.target,
    name: target.name,
  });
  return lines;
}

const PAIRS = new Set(["ENV", "LABEL"]);
const SHELL_FORM = new Set(["RUN", "CMD", "ENTRYPOINT", "SHELL", "HEALTHCHECK"]);

/** A step as one line: the keyword, its expanded flags and its expanded arguments. */
export function formatStep(step: PlannedInstruction): string {
  const parts = [step.keyword, ...step.expandedFlags];
  const args = step.expanded;
  if (step.argValues) {
    parts.push(
      ...step.argValues.map((a) => a.value === null ? a.name : `${a.name}=${quoteWord(a.value)}`),
    );
  } else if (PAIRS.has(step.keyword)) {
    for (let i = 0; i + 1 < args.length; i += 2) parts.push(`${args[i]}=${quoteWord(args[i + 1])}`);
  } else if (step.instruction.json) {
    parts.push(JSON.stringify(args));
  } else if (SHELL_FORM.has(step.keyword)) {
    parts.push(...args);
  } else {
    parts.push(...args.map(quoteWord));
  }
  return parts.join(" ").replace(/\s*\n\s*/g, " ");
}

function quoteWord(word: string): string {
  return word === "" || /[\s"'\\$]/.test(word) ? JSON.stringify(word) : word;
}

/**
 * Prepares the build context (`--context`, `--context-sub-path`) and reads the Dockerfile from
 * it (or from the path or URL `--dockerfile` gives); the name is what errors call the file.
 */
async function loadDockerfileText(opts: BuildOptions): Promise<{ text: string; file: string }> {
  await using context = await prepareContext(opts.context, {
    subPath: opts.contextSubPath,
    dockerfile: opts.dockerfile,
    gitOptions: opts.git,
  });
  const { text, name } = await loadDockerfile(opts.dockerfile, context);
  return { text, file: name };
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
