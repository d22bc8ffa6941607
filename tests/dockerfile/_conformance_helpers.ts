/** Shared by the conformance tests: a plan with fixed platforms, and the case shape. */
import { parseDockerfile } from "../../lib/dockerfile/parser.ts";
import { validateDockerfile } from "../../lib/dockerfile/instruction_args.ts";
import { type BuildPlan, planBuild, type PlannedStage } from "../../lib/dockerfile/plan.ts";

/** One conformance case. */
export interface Case {
  name: string;
  /** The BuildKit source (file/function or test) that decides the outcome. */
  ref: string;
  text: string;
  buildArgs?: string[];
  target?: string;
  /** `expanded` of the last step of the target stage. */
  expanded?: string[];
  /** The error the plan must fail with (one line), and its `Dockerfile:LINE`. */
  error?: RegExp;
  line?: number;
  check?: (plan: BuildPlan) => void;
}

/**
 * Parses, validates and plans `text` as `parse` does, for linux/arm64 built on linux/amd64 (so
 * that TARGET* and BUILD* differ), with HOME=/home/me as the environment of bare build args.
 */
export function plan(text: string, buildArgs: string[] = [], target?: string): BuildPlan {
  const df = parseDockerfile(text, { file: "Dockerfile" });
  validateDockerfile(df, { file: "Dockerfile" });
  return planBuild(df, {
    buildArgs,
    target,
    file: "Dockerfile",
    env: { HOME: "/home/me" },
    platform: "linux/arm64",
    buildPlatform: "linux/amd64",
  });
}

/** The last step of a stage. */
export const lastStep = (s: PlannedStage) => s.instructions[s.instructions.length - 1];
/** A stage, the target by default. */
export const stage = (p: BuildPlan, i = p.target) => p.stages[i];

/** A valid sha256 digest. */
export const DIGEST = `sha256:${"ab".repeat(32)}`;
