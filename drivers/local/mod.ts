/**
 * The `local` driver: every platform built in this process, with no emulation. A stage with
 * RUN steps can only be built for a platform this host runs natively (amd64 also runs 386), so
 * such a build fails before anything is pulled; stages without RUN (FROM, COPY, ADD, ENV,
 * LABEL, …) build for any platform by taking that platform's base image and appending layers.
 * Platforms build concurrently, a few at a time (`KANIKO_LOCAL_JOBS`, default 3).
 * @module
 */
import { LayerMemo } from "../../lib/layer/mod.ts";
import type { Isolation } from "../../lib/cli/options.ts";
import { buildImage, createdTime, type PlatformImage } from "../../lib/build/executor.ts";
import { assembleImage } from "../../lib/build/image.ts";
import { checkIsolation, defaultIsolation } from "../../lib/build/isolation.ts";
import { convertLayerType } from "../../lib/build/stage.ts";
import type { BuildPlan } from "../../lib/dockerfile/plan.ts";
import { KanikoError } from "../../lib/errors.ts";
import { log } from "../../lib/log.ts";
import { hostPlatform } from "../../lib/oci/platform.ts";
import { nativePlatforms, runSteps } from "../platforms.ts";
import type {
  ChildImage,
  Driver,
  DriverContext,
  MultiPlatformBuild,
  PlatformTarget,
} from "../types.ts";
import { pool } from "./pool.ts";

/**
 * Platforms built at once by default. A build's file-system work (unpacking, snapshots) runs
 * on this process's one JavaScript thread, so more only overlaps registry and disk waits: on
 * 2 cores, 2, 3 and 4 measured within noise of each other, 1 slower.
 */
export const DEFAULT_JOBS = 3;

/** Builds every platform in this process. */
export const localDriver: Driver = {
  name: "local",

  preflight(build: MultiPlatformBuild): Promise<void> {
    return Promise.resolve().then(() => {
      checkForeignRuns(build);
      checkTargetIsolation(build);
    });
  },

  describe(build: MultiPlatformBuild): string[] {
    return build.targets.map((t) => {
      const native = t.native ? "native" : "not native";
      const runs = runSteps(t.plan, build.opts);
      const foreign = foreignRuns(build, t);
      const where = [...new Set(runs.map((r) => r.buildFor))].join(", ");
      const how = runs.length === 0
        ? "no RUN steps: its base image with the new layers appended"
        : foreign.length
        ? `RUN steps for ${where}, which this host cannot run: would fail; ` +
          "use --driver=k8s or --driver=ci"
        : `RUN steps for ${where}, run here`;
      return `${t.platform}: local, ${native}, ${how}`;
    });
  },

  async build(build: MultiPlatformBuild, ctx: DriverContext): Promise<ChildImage[]> {
    const isolations = checkTargetIsolation(build);
    const created = createdTime(build.opts); // one for every child
    const layerMemo = new LayerMemo(); // a layer the same for several platforms is written once
    const several = build.targets.length > 1;
    const warned = new Set<string>();
    const warn = (w: string) => {
      if (!warned.has(w)) log.warn(w);
      warned.add(w);
    };
    const built = await pool(build.targets, jobs(), ctx.signal, async (target, i) => {
      try {
        const image = await buildImage(build.opts, {
          dockerfile: build.dockerfile,
          file: build.file,
          context: build.context,
          platform: target.platform,
        }, {
          format: build.format,
          created,
          session: ctx.session,
          isolation: isolations[i],
          showPlatform: several,
          warn,
          layerMemo,
          checkPlan: (plan, stages) => refuseForeignRuns(build, [{ target, plan, stages }]),
        });
        return childImage(target, image, build.format);
      } catch (e) {
        throw several ? withPlatform(e, target.platform) : e;
      }
    }, (child) => child.kind === "local" ? child.dispose() : Promise.resolve());
    const { written, reused } = layerMemo.stats;
    if (reused > 0) log.info(`${written} layers written, ${reused} shared between platforms`);
    return built;
  },
};

function jobs(): number {
  const n = Number(Deno.env.get("KANIKO_LOCAL_JOBS") ?? DEFAULT_JOBS);
  return Number.isInteger(n) && n > 0 ? n : DEFAULT_JOBS;
}

/** The image of one platform as the coordinator takes it. */
export function childImage(
  target: PlatformTarget,
  built: PlatformImage,
  format: "oci" | "docker",
): ChildImage {
  return {
    kind: "local",
    target,
    image: built.image,
    reassemble(to: "oci" | "docker"): ChildImage {
      if (to === format) return this;
      const name = built.image.name;
      const layers = built.layers.map((l) => ({
        ...l,
        descriptor: {
          ...l.descriptor,
          mediaType: convertLayerType(l.descriptor.mediaType, to, name),
        },
      }));
      const image = assembleImage(built.config, layers, { format: to, name });
      return childImage(target, { ...built, image, layers }, to);
    },
    dispose: built.dispose,
  };
}

/** The RUN steps of `target` whose stage is built for a platform this host does not run. */
function foreignRuns(
  build: MultiPlatformBuild,
  target: PlatformTarget,
  plan: BuildPlan = target.plan,
  stages?: number[],
) {
  const native = nativePlatforms();
  return runSteps(plan, build.opts, stages).filter((r) => !native.includes(r.buildFor));
}

function checkForeignRuns(build: MultiPlatformBuild): void {
  refuseForeignRuns(build, build.targets.map((target) => ({ target, plan: target.plan })));
}

/**
 * Throws one error naming every platform whose RUN steps this host cannot run, with the first
 * such step of each and what to do.
 */
function refuseForeignRuns(
  build: MultiPlatformBuild,
  plans: { target: PlatformTarget; plan: BuildPlan; stages?: number[] }[],
): void {
  const bad = plans.flatMap(({ target, plan, stages }) => {
    const runs = foreignRuns(build, target, plan, stages);
    return runs.length ? [{ target, runs }] : [];
  });
  if (bad.length === 0) return;
  const host = hostPlatform().architecture;
  const where = bad.map(({ target, runs }) => {
    const lines = [...new Set(runs.map((r) => `${build.file}:${r.line}`))];
    const foreign = runs[0].buildFor === target.platform ? "" : ` for ${runs[0].buildFor}`;
    return `${target.platform}: the Dockerfile runs RUN steps${foreign} (${lines.join(", ")})`;
  });
  const platforms = [...new Set(bad.flatMap(({ runs }) => runs.map((r) => r.buildFor)))];
  const archs = [...new Set(platforms.map((p) => p.split("/")[1]))];
  throw new KanikoError(
    `${where.join("; ")}, and this ${host} host cannot run ${platforms.join(" or ")} ` +
      `binaries without emulation`,
    {
      hint: `build ${bad.length > 1 ? "them" : "it"} with --driver=k8s on ` +
        `${archs.join(" and ")} nodes or --driver=ci`,
      code: "PLATFORM_NOT_NATIVE",
    },
  );
}

/**
 * The isolation of each target: the build's, except that with `none` (which builds in `/`)
 * RUN-less platforms get private roots (they run nothing, so need no namespaces) and at most
 * one platform may run RUN steps. Checks what the RUN steps need (root, namespaces).
 */
function checkTargetIsolation(build: MultiPlatformBuild): Isolation[] {
  const chosen: Isolation = build.opts.isolation ?? defaultIsolation();
  const several = build.targets.length > 1;
  const withRun = build.targets.filter((t) => t.hasRun);
  if (chosen === "none" && several && withRun.length > 1) {
    throw new KanikoError(
      `--isolation=none builds in /, so only one platform with RUN steps can be built at a ` +
        `time; ${withRun.map((t) => t.platform).join(", ")} have RUN steps`,
      { exitCode: 2, hint: "use --isolation=chroot, or build them one by one" },
    );
  }
  if (withRun.length > 0 || chosen === "none") {
    checkIsolation({ isolation: chosen, force: build.opts.force });
  }
  return build.targets.map((t) => chosen === "none" && several && !t.hasRun ? "chroot" : chosen);
}

/** Prefixes an error with the platform it happened on (several platforms build at once). */
function withPlatform(e: unknown, platform: string): unknown {
  if (!(e instanceof KanikoError) || e.message.startsWith(`${platform}:`)) return e;
  return new KanikoError(`${platform}: ${e.message}`, {
    exitCode: e.exitCode,
    hint: e.hint,
    code: e.code,
    cause: e,
  });
}
