/**
 * Stages as BuildKit resolves them: names (case-insensitive, lower-cased), references by name
 * and index, external images in `COPY --from`, `--target`, the stages a target needs, and the
 * errors (forward references, cycles, duplicates, invalid names, bases and platforms).
 */
import assert from "node:assert/strict";
import { parseDockerfile } from "../../lib/dockerfile/parser.ts";
import { type BuildPlan, type DescribeOptions, planBuild } from "../../lib/dockerfile/plan.ts";
import { STAGE_NAME_RE, stagesNeeded } from "../../lib/dockerfile/stages.ts";
import { describeError, KanikoError } from "../../lib/errors.ts";

function plan(lines: string[], options: Partial<DescribeOptions> = {}): BuildPlan {
  return planBuild(parseDockerfile(lines.join("\n") + "\n", { file: "Dockerfile" }), {
    buildArgs: [],
    file: "Dockerfile",
    env: {},
    platform: "linux/amd64",
    buildPlatform: "linux/amd64",
    ...options,
  });
}

function errorOf(lines: string[], options: Partial<DescribeOptions> = {}): KanikoError {
  try {
    plan(lines, options);
  } catch (e) {
    assert.ok(e instanceof KanikoError, `expected a KanikoError, got ${e}`);
    return e;
  }
  assert.fail("expected an error");
}

interface ErrorCase {
  name: string;
  lines: string[];
  options?: Partial<DescribeOptions>;
  /** Matches the message; `Dockerfile:LINE:` is checked separately when `line` is set. */
  error: RegExp;
  line?: number;
}

const ERRORS: ErrorCase[] = [
  {
    name: "no FROM at all",
    lines: ["ARG A=1", "ARG B=2"],
    error: /no FROM instruction/,
  },
  {
    name: "an instruction other than ARG before FROM",
    lines: ["ARG A=1", "RUN echo hi", "FROM busybox"],
    error: /RUN before the first FROM/,
    line: 2,
  },
  {
    name: "ENV before FROM",
    lines: ["ENV A=1", "FROM busybox"],
    error: /ENV before the first FROM/,
    line: 1,
  },
  {
    name: "COPY --from a stage defined later (forward reference)",
    lines: ["FROM busybox AS a", "COPY --from=b /x /y", "FROM busybox AS b", "FROM a"],
    error: /cannot read from stage "b", it needs to be defined before current stage "a"/,
    line: 2,
  },
  {
    name: "COPY --from a later stage by index",
    lines: ["FROM busybox AS first", "COPY --from=1 /x /y", "FROM busybox", "FROM first"],
    error: /cannot read from stage 1/,
    line: 2,
  },
  {
    name: "COPY --from its own stage",
    lines: ["FROM busybox AS stage0", "COPY --from=stage0 f1 /sub/"],
    error: /circular dependency detected on stage: stage0/,
    line: 2,
  },
  {
    name: "a cycle through three stages (BuildKit TestDockerfileCircularDependencies)",
    lines: [
      "FROM busybox AS stage0",
      "COPY --from=stage2 f1 /sub/",
      "FROM busybox AS stage1",
      "COPY --from=stage0 f2 /sub/",
      "FROM busybox AS stage2",
      "COPY --from=stage1 f2 /sub/",
    ],
    error: /circular dependency detected on stage: stage0/,
  },
  {
    name: "duplicate stage names, case-insensitively",
    lines: ["FROM busybox AS build", "FROM alpine AS BUILD"],
    error: /duplicate stage name "build".*line 1/,
    line: 2,
  },
  {
    name: "a stage name starting with a digit",
    lines: ["FROM busybox AS 1build"],
    error: /invalid name for build stage: "1build"/,
    line: 1,
  },
  {
    name: "a stage name with a symbol",
    lines: ["FROM busybox AS my$stage"],
    error: /invalid name for build stage/,
    line: 1,
  },
  {
    name: "an unknown --target",
    lines: ["FROM busybox AS build", "FROM busybox AS final"],
    options: { target: "nosuch" },
    error: /target stage "nosuch" could not be found.*build, final/,
  },
  {
    name: "a base that expands to nothing",
    lines: ["FROM ${BLANK} AS foo"],
    error: /base name \(\$\{BLANK\}\) should not be blank/,
    line: 1,
  },
  {
    name: "a quoted empty base",
    lines: ['FROM "" AS foo'],
    error: /should not be blank/,
    line: 1,
  },
  {
    name: "a base that is not a valid reference",
    lines: ["FROM Busybox:1"],
    error: /invalid reference "Busybox:1": repository name must be lowercase/,
    line: 1,
  },
  {
    name: "a base that becomes invalid after expansion",
    lines: ['ARG TAG="bad tag"', "FROM busybox:$TAG"],
    error: /invalid reference "busybox:bad tag"/,
    line: 2,
  },
  {
    name: "FROM naming a stage with other capitals",
    lines: ["FROM busybox AS build", "FROM Build"],
    error: /repository name must be lowercase.*write FROM build/,
    line: 2,
  },
  {
    name: "a malformed --platform",
    lines: ["FROM --platform=linux busybox"],
    error: /failed to parse platform linux.*expected os\/arch/,
    line: 1,
  },
  {
    name: "an unknown architecture in --platform",
    lines: ["FROM --platform=linux/nosuch busybox"],
    error: /failed to parse platform/,
    line: 1,
  },
  {
    name: "a --platform expanding to nothing",
    lines: ["FROM --platform=$NOPE busybox"],
    error: /empty platform value from expression \$NOPE/,
    line: 1,
  },
  {
    name: "a variable in COPY --from",
    lines: ["ARG S=build", "FROM busybox AS build", "FROM busybox", "COPY --from=$S /x /y"],
    error: /variable expansion is not supported for --from/,
    line: 4,
  },
  {
    name: "a stage index past the last stage",
    lines: ["FROM busybox", "COPY --from=5 /x /y"],
    error: /invalid stage index 5/,
    line: 2,
  },
  {
    name: "COPY --from neither a stage nor an image",
    lines: ["FROM busybox", "COPY --from=Not_An:Image! /x /y"],
    error: /neither a stage name nor a valid image reference/,
    line: 2,
  },
  {
    name: "a variable in RUN --mount from=",
    lines: ["FROM busybox", "RUN --mount=type=bind,from=$S,target=/s true"],
    error: /'from' doesn't support variable expansion/,
    line: 2,
  },
  {
    name: "RUN --mount from= a later stage",
    lines: [
      "FROM busybox AS a",
      "RUN --mount=from=b,target=/b true",
      "FROM busybox AS b",
      "FROM a",
    ],
    error: /cannot read from stage "b"/,
    line: 2,
  },
];

for (const c of ERRORS) {
  Deno.test(`error: ${c.name}`, () => {
    const err = errorOf(c.lines, c.options);
    const line = describeError(err);
    assert.match(line, c.error);
    assert.ok(!line.includes("\n"), "one line");
    assert.ok(err.message.startsWith("Dockerfile"), `names the file: ${err.message}`);
    if (c.line !== undefined) {
      assert.ok(err.message.startsWith(`Dockerfile:${c.line}: `), err.message);
    }
  });
}

Deno.test("stage names are lower-cased; --target and COPY --from match any case", () => {
  const p = plan(
    ["FROM busybox AS Build", "RUN true", "FROM busybox AS Final", "COPY --from=BUILD /a /b"],
    { target: "FINAL" },
  );
  assert.deepEqual(p.stages.map((s) => s.name), ["build", "final"]);
  assert.equal(p.target, 1);
  assert.deepEqual(p.stages[1].deps, [0]);
  assert.deepEqual(p.stages[1].instructions[0].sources, [
    { kind: "stage", index: 0, flag: "--from=BUILD" },
  ]);
});

Deno.test("FROM a stage by its (lower-case) name builds on it", () => {
  const p = plan(["FROM busybox AS BASE", "FROM base AS next", "FROM scratch"]);
  assert.equal(p.stages[1].baseStage, 0);
  assert.equal(p.stages[1].baseImage, null);
  assert.equal(p.stages[0].baseImage, "busybox");
  assert.equal(p.stages[2].baseImage, null, "scratch is no image");
  assert.equal(p.stages[2].baseStage, null);
});

Deno.test("COPY --from by index and by name; external image in COPY --from", () => {
  const p = plan([
    "FROM busybox AS one",
    "FROM busybox",
    "COPY --from=0 /a /a",
    "COPY --from=one /b /b",
    "COPY --from=busybox:1.36 /bin/sh /sh",
  ]);
  const insts = p.stages[1].instructions;
  assert.deepEqual(insts[0].sources, [{ kind: "stage", index: 0, flag: "--from=0" }]);
  assert.deepEqual(insts[1].sources, [{ kind: "stage", index: 0, flag: "--from=one" }]);
  assert.deepEqual(insts[2].sources, [{
    kind: "image",
    ref: "busybox:1.36",
    flag: "--from=busybox:1.36",
  }]);
  assert.deepEqual(p.stages[1].deps, [0]);
});

Deno.test("RUN --mount from= a stage or an image", () => {
  const p = plan([
    "FROM busybox AS tools",
    "FROM busybox",
    "RUN --mount=type=bind,from=tools,target=/t --mount=type=cache,target=/c true",
    "RUN --mount=from=alpine:3,target=/a true",
  ]);
  assert.deepEqual(p.stages[1].deps, [0]);
  assert.equal(p.stages[1].instructions[1].sources[0].kind, "image");
});

Deno.test("--target: the last stage by default, by name otherwise", () => {
  const lines = ["FROM busybox AS a", "FROM busybox AS b", "FROM busybox"];
  assert.equal(plan(lines).target, 2);
  assert.equal(plan(lines, { target: "a" }).target, 0);
  assert.equal(plan(lines, { target: "B" }).target, 1);
});

Deno.test("stagesNeeded: the target and what it builds on or copies from, transitively", () => {
  const p = plan([
    "FROM busybox AS base", //       0
    "FROM base AS deps", //          1 (FROM 0)
    "FROM busybox AS unused", //     2
    "FROM busybox AS tools", //      3
    "FROM deps AS build", //         4 (FROM 1)
    "RUN --mount=from=tools,target=/t true", // mounts 3
    "FROM scratch AS final", //      5
    "COPY --from=build /out /out", // copies 4
  ]);
  assert.deepEqual(stagesNeeded(p, 5), [0, 1, 3, 4, 5]);
  assert.deepEqual(stagesNeeded(p, 2), [2]);
  assert.deepEqual(stagesNeeded(p, 1), [0, 1]);
});

Deno.test("FROM naming a later stage (or its own) is an image, with a warning", () => {
  const p = plan(["FROM later AS first", "FROM busybox AS later", "FROM self AS self"]);
  assert.equal(p.stages[0].baseImage, "later");
  assert.equal(p.stages[0].baseStage, null);
  assert.equal(p.stages[2].baseImage, "self");
  assert.equal(p.warnings.length, 2);
  assert.match(
    p.warnings[0],
    /^Dockerfile:1: FROM later names the image later, not the stage "later"/,
  );
});

Deno.test("a reserved stage name is a warning", () => {
  const p = plan(["FROM busybox AS context", "RUN true"]);
  assert.match(p.warnings[0], /stage name "context" is reserved/);
});

Deno.test("a stage's platform: --platform, else its base stage's, else the target's", () => {
  const p = plan([
    "FROM --platform=linux/arm64 busybox AS a",
    "FROM a AS b",
    "FROM --platform=linux/s390x a AS c",
    "FROM busybox",
  ], { platform: "linux/ppc64le" });
  assert.deepEqual(p.stages.map((s) => s.buildFor.architecture), [
    "arm64",
    "arm64",
    "arm64",
    "ppc64le",
  ]);
  assert.deepEqual(p.stages.map((s) => s.platform), ["linux/arm64", null, "linux/s390x", null]);
});

Deno.test("ONBUILD triggers of a parent stage run first in the child stage", () => {
  const p = plan([
    "FROM busybox AS parent",
    "ONBUILD RUN echo trigger",
    "FROM parent",
    "RUN echo child",
  ]);
  assert.equal(p.stages[0].triggers.length, 0);
  assert.equal(p.stages[1].triggers.length, 1);
  assert.equal(p.stages[1].triggers[0].keyword, "RUN");
});

Deno.test("STAGE_NAME_RE is BuildKit's", () => {
  for (const ok of ["a", "build", "a-b_c.d", "x1"]) assert.ok(STAGE_NAME_RE.test(ok), ok);
  for (const bad of ["", "1a", "-a", "a b", "a/b", "a:b", "_a"]) {
    assert.ok(!STAGE_NAME_RE.test(bad), bad);
  }
});
