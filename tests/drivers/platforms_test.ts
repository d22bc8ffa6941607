/**
 * Platforms of a multi-platform build: normalisation as buildx does it, one usage error for a
 * bad or duplicate value, slugs, the host's native set, and each platform's plan.
 */
import assert from "node:assert/strict";
import {
  nativePlatforms,
  normalizePlatforms,
  planTargets,
  platformSlug,
  runSteps,
} from "../../drivers/platforms.ts";
import { parseDockerfile } from "../../lib/dockerfile/parser.ts";
import { KanikoError } from "../../lib/errors.ts";
import { formatPlatform, hostPlatform } from "../../lib/oci/platform.ts";

const names = (list: string[]) => normalizePlatforms(list).map((p) => p.platform);

Deno.test("platforms: normalised as buildx does, order kept", () => {
  assert.deepEqual(
    names(["linux/arm64/v8", "linux/arm", "linux/amd64/v1", "linux/amd64/v3", "linux/arm/v6"]),
    ["linux/arm64", "linux/arm/v7", "linux/amd64", "linux/amd64/v3", "linux/arm/v6"],
  );
  const [arm] = normalizePlatforms(["linux/arm/v7"]);
  assert.deepEqual(arm.parsed, { os: "linux", architecture: "arm", variant: "v7" });
  assert.equal(arm.slug, "linux-arm-v7");
  assert.equal(platformSlug({ os: "linux", architecture: "arm64", variant: "v8" }), "linux-arm64");
});

function usage(list: string[], pattern: RegExp): void {
  assert.throws(() => normalizePlatforms(list), (e: unknown) => {
    assert.ok(e instanceof KanikoError, String(e));
    assert.equal(e.exitCode, 2);
    const text = e.hint ? `${e.message}; ${e.hint}` : e.message;
    assert.match(text, pattern);
    assert.doesNotMatch(text, /\n/);
    return true;
  });
}

Deno.test("platforms: duplicates after normalisation are one usage error naming both", () => {
  usage(["linux/arm64", "linux/amd64", "linux/arm64/v8"], /lists linux\/arm64 twice.*arm64\/v8/);
  usage(["linux/arm", "linux/arm/v7"], /lists linux\/arm\/v7 twice/);
  usage(["linux/amd64", "linux/amd64"], /lists linux\/amd64 twice/);
});

Deno.test("platforms: unknown os, architecture or variant and malformed values are refused", () => {
  usage(["linux/amd64", "plan10/amd64"], /"plan10\/amd64".*unknown os.*use one of/);
  usage(["linux/amd65"], /"linux\/amd65".*unknown architecture/);
  usage(["linux/arm/v9"], /"linux\/arm\/v9".*unknown variant "v9" for arm.*os\/arch\[\/variant\]/);
  usage(["linux/amd64/v7"], /unknown variant "v7" for amd64/);
  usage(["linux"], /"linux".*expected os\/arch/);
  usage(["linux/arm64/v8/x"], /expected os\/arch/);
  usage([], /no platform given/);
});

Deno.test("platforms: the host runs its own platform, and amd64 also 386 and its levels", () => {
  const v3 = new Set(
    "cx16 lahf_lm popcnt sse4_1 sse4_2 ssse3 avx avx2 bmi1 bmi2 f16c fma abm movbe xsave"
      .split(" "),
  );
  assert.deepEqual(nativePlatforms({ os: "linux", architecture: "amd64" }, v3), [
    "linux/amd64",
    "linux/386",
    "linux/amd64/v2",
    "linux/amd64/v3",
  ]);
  assert.deepEqual(nativePlatforms({ os: "linux", architecture: "amd64" }, new Set()), [
    "linux/amd64",
    "linux/386",
  ]);
  // arm64 is not assumed to run 32-bit arm; nothing is emulated.
  assert.deepEqual(nativePlatforms({ os: "linux", architecture: "arm64" }, v3), ["linux/arm64"]);
  assert.deepEqual(nativePlatforms({ os: "linux", architecture: "s390x" }), ["linux/s390x"]);
});

const DOCKERFILE = [
  "FROM --platform=$BUILDPLATFORM busybox AS build",
  "ARG TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT BUILDARCH",
  "RUN echo $TARGETARCH",
  "FROM busybox AS unused",
  "RUN echo unused",
  "FROM busybox",
  "ARG TARGETPLATFORM TARGETVARIANT",
  "ENV P=$TARGETPLATFORM V=$TARGETVARIANT",
  "COPY --from=build /out /out",
].join("\n") + "\n";

Deno.test("platforms: each platform is planned with its TARGET* args; RUN steps found", () => {
  const df = parseDockerfile(DOCKERFILE, { file: "Dockerfile" });
  const specs = normalizePlatforms(["linux/arm/v7", "linux/amd64"]);
  const opts = { buildArgs: [], skipUnusedStages: false };
  const [arm, amd] = planTargets(df, opts, "Dockerfile", specs, ["linux/amd64", "linux/386"]);
  assert.equal(arm.platform, "linux/arm/v7");
  assert.equal(arm.native, false);
  assert.equal(amd.native, true);
  const env = arm.plan.stages[2].instructions.find((i) => i.keyword === "ENV")!;
  assert.deepEqual(env.expanded, ["P", "linux/arm/v7", "V", "v7"]);
  // The build stage runs on the build platform (this host), the others on the target.
  const host = formatPlatform(hostPlatform());
  assert.equal(formatPlatform(arm.plan.stages[0].buildFor), host);
  assert.equal(arm.hasRun, true);
  const runs = runSteps(arm.plan, opts);
  assert.deepEqual(runs.map((r) => r.line), [3, 5]);
  assert.deepEqual(runs.map((r) => r.buildFor), [host, "linux/arm/v7"]);
  // --skip-unused-stages leaves the unused stage's RUN out.
  const skip = runSteps(arm.plan, { skipUnusedStages: true });
  assert.deepEqual(skip.map((r) => r.line), [3]);
  // --target picks the stages built.
  const [target] = planTargets(
    df,
    { ...opts, target: "unused", skipUnusedStages: true },
    "Dockerfile",
    specs,
  );
  assert.deepEqual(runSteps(target.plan, { skipUnusedStages: true }).map((r) => r.line), [5]);
});

Deno.test("platforms: a RUN-less Dockerfile has no RUN for any platform", () => {
  const df = parseDockerfile("FROM busybox\nCOPY a /a\nENV X=1\n", { file: "Dockerfile" });
  const targets = planTargets(
    df,
    { buildArgs: [], skipUnusedStages: false },
    "Dockerfile",
    normalizePlatforms(["linux/s390x", "linux/arm64"]),
  );
  assert.deepEqual(targets.map((t) => [t.slug, t.hasRun]), [["linux-s390x", false], [
    "linux-arm64",
    false,
  ]]);
});
