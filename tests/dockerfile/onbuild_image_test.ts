/**
 * ONBUILD triggers stored in a base image's config (`config.OnBuild`), as BuildKit runs them in a
 * stage built FROM that image (dockerfile2llb/convert.go `resolveStages` → `initOnBuildTriggers`):
 * each parsed on its own with the default `\` escape, exactly one instruction, located at the FROM
 * line, run first in the stage's scope (the image's ENV, the stage's build args), their
 * `COPY --from` making the target need a stage; ONBUILD/FROM/MAINTAINER refused as triggers; errors
 * read `Dockerfile:LINE (ONBUILD trigger of IMAGE): …`, and only fail the plan in a stage the target
 * needs.
 */
import assert from "node:assert/strict";
import { parseDockerfile } from "../../lib/dockerfile/parser.ts";
import { validateDockerfile } from "../../lib/dockerfile/instruction_args.ts";
import { type BuildPlan, type DescribeOptions, planBuild } from "../../lib/dockerfile/plan.ts";
import { imageTriggerError, parseImageTriggers } from "../../lib/dockerfile/onbuild.ts";
import { formatPlatform } from "../../lib/oci/platform.ts";
import type { Platform } from "../../lib/oci/schemas.ts";
import { KanikoError } from "../../lib/errors.ts";

/** Plans `text` with `onbuild` as the triggers of the images (by reference), for linux/arm64. */
function plan(
  text: string,
  onbuild: Record<string, string[]>,
  more: Partial<DescribeOptions> = {},
): BuildPlan {
  const df = parseDockerfile(text, { file: "Dockerfile" });
  validateDockerfile(df, { file: "Dockerfile" });
  return planBuild(df, {
    buildArgs: [],
    file: "Dockerfile",
    env: {},
    platform: "linux/arm64",
    buildPlatform: "linux/amd64",
    baseImageOnBuild: (ref) => onbuild[ref],
    ...more,
  });
}

/** The error message `planBuild` fails with. */
function planError(text: string, onbuild: Record<string, string[]>, more = {}): KanikoError {
  try {
    plan(text, onbuild, more);
  } catch (e) {
    if (e instanceof KanikoError) return e;
    throw e;
  }
  assert.fail("the plan did not fail");
}

const steps = (p: BuildPlan, i = p.target) =>
  p.stages[i].triggers.map((t) => [t.keyword, t.line, ...t.expanded]);

Deno.test("image triggers run first, in order, located at the FROM line", () => {
  const p = plan("# syntax\n\nFROM base:1\nRUN own\n", {
    "base:1": ["RUN echo triggered > /t", "COPY x /x", "WORKDIR /w"],
  });
  assert.deepEqual(steps(p), [
    ["RUN", 3, "echo triggered > /t"],
    ["COPY", 3, "x", "/x"],
    ["WORKDIR", 3, "/w"],
  ]);
  assert.deepEqual(p.stages[0].instructions.map((i) => i.keyword), ["RUN"]);
  assert.equal(p.stages[0].triggers[0].instruction.original, "RUN echo triggered > /t");
  assert.deepEqual(p.warnings, []);
});

Deno.test("image triggers expand in the stage's scope: the image's ENV, then their own", () => {
  const p = plan(
    "FROM base\nWORKDIR /own/$T\n",
    { base: ["ENV T=$HOME_DIR/t", "WORKDIR $T", "ENV HOME_DIR=changed"] },
    { baseImageEnv: () => ["HOME_DIR=/home/img"] },
  );
  assert.deepEqual(steps(p), [
    ["ENV", 1, "T", "/home/img/t"],
    ["WORKDIR", 1, "/home/img/t"],
    ["ENV", 1, "HOME_DIR", "changed"],
  ]);
  assert.deepEqual(p.stages[0].triggers[1].scope.T, "/home/img/t");
  assert.deepEqual(p.stages[0].instructions[0].expanded, ["/own//home/img/t"]);
});

Deno.test("an image trigger ARG is the stage's: build args and global ARGs, consumed", () => {
  const p = plan(
    "ARG G=global\nFROM base\nARG G\nRUN x\n",
    { base: ["ARG V=dflt", "WORKDIR /$V", "ARG G", "WORKDIR /$G"] },
    { buildArgs: ["V=given"] },
  );
  assert.deepEqual(steps(p), [
    ["ARG", 2, "V", "given"],
    ["WORKDIR", 2, "/given"],
    ["ARG", 2, "G", "global"],
    ["WORKDIR", 2, "/global"],
  ]);
  assert.deepEqual(p.stages[0].declaredArgs, ["V", "G"]);
  assert.deepEqual(p.warnings, [], "V is consumed by the trigger's ARG");
});

Deno.test("image triggers are parsed with the default escape, expanded with the file's", () => {
  // A `\` continuation joins the trigger's lines even in a file whose escape is the backtick.
  const p = plan("# escape=`\nFROM base\n", { base: ["RUN echo a \\\n  b", "WORKDIR /a`$X"] });
  assert.deepEqual(steps(p), [["RUN", 2, "echo a   b"], ["WORKDIR", 2, "/a$X"]]);
});

Deno.test("an image trigger with a heredoc keeps it", () => {
  const p = plan("FROM base\n", { base: ["RUN <<EOF\necho hi\nEOF"] });
  assert.equal(p.stages[0].triggers[0].instruction.heredocs[0].content, "echo hi\n");
});

Deno.test("baseImageOnBuild is asked with the expanded base and the stage's platform", () => {
  const asked: string[] = [];
  const onBuild = (ref: string, platform: Platform) => {
    asked.push(`${ref} ${formatPlatform(platform)}`);
    return ["RUN x"];
  };
  const p = plan(
    "ARG V=3\nFROM base:$V AS a\nFROM --platform=linux/amd64 other AS b\nFROM scratch\nFROM a\n",
    {},
    { baseImageOnBuild: onBuild },
  );
  assert.deepEqual(asked.sort(), ["base:3 linux/arm64", "other linux/amd64"]);
  assert.deepEqual([0, 1, 2, 3].map((i) => p.stages[i].triggers.length), [1, 1, 0, 0]);
});

Deno.test("a stage built on a stage runs that stage's ONBUILD, not the image's again", () => {
  const p = plan("FROM base AS a\nONBUILD RUN from-a\nFROM a\n", { base: ["RUN from-image"] });
  assert.deepEqual(steps(p, 0), [["RUN", 1, "from-image"]]);
  assert.deepEqual(steps(p, 1), [["RUN", 2, "from-a"]]);
});

Deno.test("without baseImageOnBuild, or with an empty list, a stage has no image triggers", () => {
  assert.deepEqual(steps(plan("FROM base\n", {}, { baseImageOnBuild: undefined })), []);
  assert.deepEqual(steps(plan("FROM base\n", { base: [] })), []);
});

Deno.test("an image trigger's COPY --from makes the target need that stage", () => {
  const p = plan("FROM busybox AS a\nFROM busybox AS b\nFROM base\n", {
    base: ["COPY --from=b /x /y"],
  });
  assert.deepEqual(p.stages[2].deps, [1]);
  assert.deepEqual(p.stages[2].triggers[0].sources, [{
    kind: "stage",
    index: 1,
    flag: "--from=b",
  }]);
  // An image (no stage by that name) is pulled, as for any COPY --from.
  const q = plan("FROM base\n", { base: ["COPY --from=alpine:3 /x /y"] });
  assert.deepEqual(q.stages[0].triggers[0].sources, [
    { kind: "image", ref: "alpine:3", flag: "--from=alpine:3" },
  ]);
});

interface ErrorCase {
  name: string;
  /** The Dockerfile: the trigger's stage is the target, on line `line` (2 by default). */
  text?: string;
  target?: string;
  triggers: string[];
  error: RegExp;
  line?: number;
}

const ERRORS: ErrorCase[] = [
  {
    name: "FROM",
    triggers: ["FROM alpine"],
    error: /: FROM isn't allowed as an ONBUILD trigger$/,
  },
  {
    name: "MAINTAINER",
    triggers: ["RUN ok", "maintainer me"],
    error: /: MAINTAINER isn't allowed as an ONBUILD trigger$/,
  },
  {
    name: "ONBUILD ONBUILD",
    triggers: ["ONBUILD RUN x"],
    error: /: ONBUILD isn't allowed as an ONBUILD trigger$/,
  },
  {
    name: "two instructions",
    triggers: ["RUN a\nRUN b"],
    error: /: onbuild trigger should be a single expression$/,
  },
  { name: "an unknown instruction", triggers: ["FOO a"], error: /: unknown instruction: FOO/ },
  { name: "an unknown flag", triggers: ["COPY --foo a b"], error: /: COPY: unknown flag: --foo/ },
  {
    name: "a bad argument count",
    triggers: ["USER"],
    error: /: USER: requires exactly one argument$/,
  },
  {
    name: "--from with a variable",
    triggers: ["COPY --from=$X a b"],
    error: /: COPY --from=\$X a b: variable expansion is not supported for --from$/,
  },
  {
    name: "a failed expansion",
    text: "FROM busybox\nFROM base\n",
    triggers: ["WORKDIR ${X:?unset}"],
    error: /: WORKDIR \$\{X:\?unset\}: .*unset/,
    line: 2,
  },
  {
    name: "a value BuildKit rejects when it runs the step",
    triggers: ["ARG P=nope", "EXPOSE $P"],
    error: /: EXPOSE \$P: invalid port "nope"/,
  },
  {
    name: "a COPY --from a later stage",
    text: "FROM base AS t\nFROM busybox AS later\n",
    target: "t",
    triggers: ["COPY --from=later /a /b"],
    error:
      /--from=later: cannot read from stage "later", it needs to be defined before current stage "t"$/,
    line: 1,
  },
];

for (const c of ERRORS) {
  Deno.test(`an image trigger that fails the plan: ${c.name}`, () => {
    const text = c.text ?? "FROM busybox AS x\nFROM base\n";
    const e = planError(text, { base: c.triggers }, { target: c.target });
    const line = c.line ?? 2;
    assert.ok(
      e.message.startsWith(`Dockerfile:${line} (ONBUILD trigger of base): `),
      e.message,
    );
    assert.match(e.message, c.error);
    assert.ok(!e.message.includes("\n"), "one line");
  });
}

Deno.test("an image trigger error in a stage the target does not need is a warning", () => {
  const p = plan("FROM base AS a\nFROM busybox\n", { base: ["FROM x", "WORKDIR ${X:?unset}"] });
  assert.equal(p.warnings.length, 2);
  assert.match(
    p.warnings[0],
    /^Dockerfile:1 \(ONBUILD trigger of base\): FROM isn't allowed .*\(ignored: stage "a"/,
  );
  assert.match(p.warnings[1], /^Dockerfile:1 \(ONBUILD trigger of base\): WORKDIR .*unset/);
  const [bad, failed] = p.stages[0].triggers;
  assert.equal(bad.keyword, "FROM");
  assert.match(bad.error?.message ?? "", /FROM isn't allowed as an ONBUILD trigger/);
  assert.match(failed.error?.message ?? "", /^Dockerfile:1 \(ONBUILD trigger of base\): /);
  // The same triggers fail the plan when the target needs the stage.
  assert.throws(
    () => plan("FROM base AS a\nFROM busybox\n", { base: ["FROM x"] }, { target: "a" }),
    /^KanikoError: Dockerfile:1 \(ONBUILD trigger of base\): FROM isn't allowed/,
  );
});

Deno.test("parseImageTriggers: located instructions, errors kept per trigger", () => {
  const from = parseDockerfile("\n\nFROM img\n").instructions[0];
  const [ok, bad, empty] = parseImageTriggers("Dockerfile", from, "img", [
    'ENV A="x y"',
    "COPY",
    "",
  ]);
  assert.deepEqual([ok.instruction.keyword, ok.instruction.line, ok.instruction.args], [
    "ENV",
    3,
    ["A", "x y"],
  ]);
  assert.equal(ok.error, undefined);
  assert.match(bad.error?.message ?? "", /^Dockerfile:3 \(ONBUILD trigger of img\): COPY: /);
  assert.equal(bad.error?.hint, 'the trigger is "COPY"');
  assert.match(empty.error?.message ?? "", /^Dockerfile:3 \(ONBUILD trigger of img\): /);
  // Relocating an error twice leaves it as it is.
  assert.equal(imageTriggerError("Dockerfile", bad, bad.error!), bad.error);
});
