/**
 * The platforms of a multi-platform build: the user's list normalised as buildx does
 * (`arm64/v8` → `arm64`, `arm` → `arm/v7`, `amd64/v1` → `amd64`) and validated (unknown os,
 * architecture or variant, malformed, duplicates after normalisation: one usage error), the
 * file-name form (`linux-arm-v7`), what this host runs natively, and each platform's plan.
 * @module
 */
import type { BuildOptions } from "../lib/cli/options.ts";
import type { Dockerfile } from "../lib/dockerfile/ast.ts";
import { type BuildPlan, planBuild } from "../lib/dockerfile/plan.ts";
import { stagesToBuild } from "../lib/build/executor.ts";
import { KanikoError, UsageError } from "../lib/errors.ts";
import { formatPlatform, hostPlatform, parsePlatform } from "../lib/oci/platform.ts";
import type { Platform } from "../lib/oci/schemas.ts";
import type { PlatformTarget } from "./types.ts";

/** A validated platform of the list. */
export interface PlatformSpec {
  /** Normalised `os/arch[/variant]`. */
  platform: string;
  parsed: Platform;
  /** `linux-arm-v7`. */
  slug: string;
}

const FORM = "expected os/arch[/variant], e.g. linux/amd64, linux/arm64 or linux/arm/v7";

/** Variants we know, per architecture (others take none we could check). */
const VARIANTS: Record<string, RegExp> = {
  amd64: /^v[1-4]$/,
  arm: /^v[5-8]$/,
  arm64: /^v(8|9)(\.[0-9])?$/,
};

/**
 * Normalises and validates the platforms given to `flag`, keeping their order. Throws one
 * {@link UsageError} (exit code 2) naming the bad value and the expected form.
 */
export function normalizePlatforms(list: string[], flag = "--multi-platform"): PlatformSpec[] {
  if (list.length === 0) throw new UsageError(`${flag}: no platform given; ${FORM}`);
  const seen = new Map<string, string>();
  const out: PlatformSpec[] = [];
  for (const text of list) {
    let parsed: Platform;
    try {
      parsed = parsePlatform(text);
    } catch (e) {
      if (!(e instanceof KanikoError)) throw e;
      throw new UsageError(`${flag}: ${e.message}`, { hint: e.hint ?? FORM });
    }
    const rule = VARIANTS[parsed.architecture];
    if (parsed.variant !== undefined && rule && !rule.test(parsed.variant)) {
      throw new UsageError(
        `${flag}: invalid platform "${text}": unknown variant "${parsed.variant}" for ` +
          `${parsed.architecture}`,
        { hint: FORM },
      );
    }
    const platform = formatPlatform(parsed);
    const earlier = seen.get(platform);
    if (earlier !== undefined) {
      const same = earlier === text ? "" : ` (${earlier} and ${text} are the same platform)`;
      throw new UsageError(`${flag} lists ${platform} twice${same}`, {
        hint: "give each platform once",
      });
    }
    seen.set(platform, text);
    out.push({ platform, parsed, slug: platformSlug(parsed) });
  }
  return out;
}

/** The file-name form of a platform: `linux-amd64`, `linux-arm-v7`. */
export function platformSlug(p: Platform): string {
  return formatPlatform(p).replaceAll("/", "-");
}

/** Flags of `/proc/cpuinfo` an amd64 micro-architecture level needs (as Go's GOAMD64 checks). */
const AMD64_LEVELS: [string, string[]][] = [
  ["v2", ["cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"]],
  ["v3", ["avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"]],
  ["v4", ["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"]],
];

/**
 * The platforms this host runs natively, normalised: its own; on amd64 also 386 and the amd64
 * levels its CPU has (`linux/amd64/v2`…). An arm64 host is not assumed to run 32-bit arm (many
 * arm64 CPUs cannot), nor is anything emulated.
 */
export function nativePlatforms(
  host: Platform = hostPlatform(),
  cpuFlags: ReadonlySet<string> = readCpuFlags(),
): string[] {
  const own = formatPlatform(host);
  if (host.architecture !== "amd64") return [own];
  const out = [own, `${host.os}/386`];
  let all = true;
  for (const [level, flags] of AMD64_LEVELS) {
    all &&= flags.every((f) => cpuFlags.has(f));
    if (all) out.push(`${host.os}/amd64/${level}`);
  }
  return out;
}

function readCpuFlags(): Set<string> {
  try {
    const text = Deno.readTextFileSync("/proc/cpuinfo");
    const line = text.split("\n").find((l) => /^flags\s*:/.test(l)) ?? "";
    return new Set(line.replace(/^flags\s*:/, "").trim().split(/\s+/));
  } catch {
    return new Set();
  }
}

/** A RUN step of a plan: where it is and the platform its stage is built for. */
export interface RunStep {
  line: number;
  stage: number;
  buildFor: string;
}

/** The RUN steps (ONBUILD triggers included) of the stages `opts` builds, in order. */
export function runSteps(
  plan: BuildPlan,
  opts: Pick<BuildOptions, "skipUnusedStages">,
  stages: number[] = stagesToBuild(plan, opts),
): RunStep[] {
  return stages.flatMap((index) => {
    const stage = plan.stages[index];
    return [...stage.triggers, ...stage.instructions]
      .filter((step) => step.keyword === "RUN")
      .map((step) => ({ line: step.line, stage: index, buildFor: formatPlatform(stage.buildFor) }));
  });
}

/** Each platform's plan (its TARGET* arguments applied), RUN steps and nativeness, in order. */
export function planTargets(
  dockerfile: Dockerfile,
  opts: Pick<BuildOptions, "buildArgs" | "target" | "skipUnusedStages">,
  file: string,
  specs: PlatformSpec[],
  native: readonly string[] = nativePlatforms(),
): PlatformTarget[] {
  return specs.map((spec) => {
    const plan = planBuild(dockerfile, {
      buildArgs: opts.buildArgs,
      target: opts.target,
      platform: spec.platform,
      file,
    });
    return {
      ...spec,
      native: native.includes(spec.platform),
      plan,
      hasRun: runSteps(plan, opts).length > 0,
    };
  });
}
