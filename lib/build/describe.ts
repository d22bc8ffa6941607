/**
 * The plan of a build as lines: what `--dry-run` prints, and the one-line form of a step that
 * progress lines use.
 * @module
 */
import type { BuildOptions } from "../cli/options.ts";
import type { BuildPlan, PlannedInstruction } from "../dockerfile/plan.ts";
import { stagesNeeded } from "../dockerfile/stages.ts";
import { formatPlatform } from "../oci/platform.ts";

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
/** Arguments shown as written (BuildKit's history does not quote them). */
const RAW = new Set(["RUN", "CMD", "ENTRYPOINT", "SHELL", "HEALTHCHECK", "MAINTAINER"]);

/** The trigger of an ONBUILD step as written (`RUN make`), on one line: what the config stores. */
export function onbuildTrigger(step: PlannedInstruction): string {
  const text = step.instruction.original.replace(/^\s*onbuild\s+/i, "");
  return text.replace(/\s*\n\s*/g, " ").trim();
}

/**
 * A step as one line: the keyword, its expanded flags and its expanded arguments (ONBUILD: its
 * trigger as written, as BuildKit's history has it).
 */
export function formatStep(step: PlannedInstruction): string {
  if (step.keyword === "ONBUILD") return `ONBUILD ${onbuildTrigger(step)}`;
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
  } else if (RAW.has(step.keyword)) {
    parts.push(...args);
  } else {
    parts.push(...args.map(quoteWord));
  }
  return parts.join(" ").replace(/\s*\n\s*/g, " ");
}

function quoteWord(word: string): string {
  return word === "" || /[\s"'\\$]/.test(word) ? JSON.stringify(word) : word;
}
