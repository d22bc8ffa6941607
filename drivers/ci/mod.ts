/**
 * The `ci` driver: aggregation only, for a CI matrix in which one job per platform builds and
 * pushes its image (`--digest-file=DIR/linux-arm-v7.digest`) and a last job publishes the index.
 * `--digests-from=DIR` holds the per-platform digest files; each manifest must exist in the first
 * destination's repository (or the one its file names), be one image, and carry a config of the
 * file's platform. Every problem is reported at once, in one error listing each platform.
 * @module
 */
import { KanikoError } from "../../lib/errors.ts";
import type { ChildImage, Driver, DriverContext, MultiPlatformBuild } from "../types.ts";
import {
  digestFilePath,
  type DigestRef,
  digestsDir,
  isProblem,
  type Problem,
  readDigestFiles,
} from "./digest_files.ts";
import { verifyChild } from "./verify.ts";

export { parseDigestText } from "./digest_files.ts";

/** The `ci` driver. */
export const ciDriver: Driver = {
  name: "ci",

  async preflight(build: MultiPlatformBuild, _ctx: DriverContext): Promise<void> {
    await readChecked(build);
  },

  describe(build: MultiPlatformBuild): string[] {
    const dir = build.opts.digestsFrom;
    return build.targets.map((t) =>
      dir
        ? `${t.platform}: ci (digest from ${digestFilePath(dir, t)})`
        : `${t.platform}: ci (needs --digests-from=DIR with ${t.slug}.digest)`
    );
  },

  async build(build: MultiPlatformBuild, ctx: DriverContext): Promise<ChildImage[]> {
    const refs = await readChecked(build);
    const results = await Promise.all(refs.map((ref) => verifyChild(build, ctx, ref)));
    const problems = results.filter(isProblem);
    if (problems.length) {
      throw aggregateError(build, problems, "push each platform's image before aggregating");
    }
    return results as ChildImage[];
  },
};

/** Reads every digest file; throws one error listing every platform whose file is wrong. */
async function readChecked(build: MultiPlatformBuild): Promise<DigestRef[]> {
  const dir = await digestsDir(build);
  const entries = await readDigestFiles(build, dir);
  const problems = entries.filter(isProblem);
  if (problems.length) {
    throw aggregateError(
      build,
      problems,
      `each per-platform job writes its image's digest with --digest-file=${dir}/<slug>.digest ` +
        `(${build.targets.map((t) => `${t.slug}.digest`).join(", ")})`,
    );
  }
  return entries as DigestRef[];
}

/** One error, one line: how many platforms failed and, for each, what is wrong. */
function aggregateError(build: MultiPlatformBuild, problems: Problem[], hint: string): KanikoError {
  const list = problems.map((p) => `${p.target.platform}: ${p.problem}`).join("; ");
  const n = build.targets.length;
  return new KanikoError(
    `ci driver: ${problems.length} of ${n} platform${
      n === 1 ? "" : "s"
    } cannot be aggregated: ${list}`,
    { hint, code: "CI_AGGREGATION" },
  );
}
