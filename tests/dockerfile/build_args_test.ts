/**
 * ARG scoping and build arguments, modelled on BuildKit's own cases (dockerfile_args_test.go,
 * convert.go): global ARGs in FROM, re-declaration, `--build-arg` overrides, ENV/ARG shadowing,
 * the automatic platform arguments, proxies, and the "not consumed" warning.
 */
import assert from "node:assert/strict";
import { parseDockerfile } from "../../lib/dockerfile/parser.ts";
import { type BuildPlan, type DescribeOptions, planBuild } from "../../lib/dockerfile/plan.ts";
import {
  platformArgs,
  proxyEnv,
  resolveBuildArgs,
  unusedBuildArgWarnings,
} from "../../lib/dockerfile/build_args.ts";
import { KanikoError, UsageError } from "../../lib/errors.ts";
import { parsePlatform } from "../../lib/oci/platform.ts";

const HOST = { platform: "linux/amd64", buildPlatform: "linux/amd64" };

function plan(lines: string[], options: Partial<DescribeOptions> = {}): BuildPlan {
  const text = lines.join("\n") + "\n";
  return planBuild(parseDockerfile(text, { file: "Dockerfile" }), {
    buildArgs: [],
    file: "Dockerfile",
    env: {},
    ...HOST,
    ...options,
  });
}

/** The expanded arguments of the last instruction of the target stage. */
function last(p: BuildPlan): string[] {
  const insts = p.stages[p.target].instructions;
  return insts[insts.length - 1].expanded;
}

function fails(lines: string[], options: Partial<DescribeOptions>, pattern: RegExp): KanikoError {
  try {
    plan(lines, options);
  } catch (e) {
    assert.ok(e instanceof KanikoError, `expected a KanikoError, got ${e}`);
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes("\n"), "one line");
    return e;
  }
  assert.fail(`expected an error matching ${pattern}`);
}

interface Case {
  name: string;
  lines: string[];
  options?: Partial<DescribeOptions>;
  /** The expanded arguments of the target stage's last instruction. */
  expect: string[];
}

const SCOPING: Case[] = [
  {
    name: "a global ARG is not visible in a stage without ARG NAME",
    lines: ["ARG V=1", "FROM busybox", "WORKDIR /v$V"],
    expect: ["/v"],
  },
  {
    name: "ARG NAME without value picks the global default",
    lines: ["ARG V=1", "FROM busybox", "ARG V", "WORKDIR /v$V"],
    expect: ["/v1"],
  },
  {
    name: "ARG NAME without value picks the --build-arg override of the global",
    lines: ["ARG V=1", "FROM busybox", "ARG V", "WORKDIR /v$V"],
    options: { buildArgs: ["V=2"] },
    expect: ["/v2"],
  },
  {
    name: "a stage default replaces the global default",
    lines: ["ARG V=1", "FROM busybox", "ARG V=3", "WORKDIR /v$V"],
    expect: ["/v3"],
  },
  {
    name: "--build-arg overrides a stage default",
    lines: ["FROM busybox", "ARG V=3", "WORKDIR /v$V"],
    options: { buildArgs: ["V=2"] },
    expect: ["/v2"],
  },
  {
    name: "a --build-arg without ARG is not visible",
    lines: ["FROM busybox", "WORKDIR /v$V"],
    options: { buildArgs: ["V=2"] },
    expect: ["/v"],
  },
  {
    name: "ARG without value and without --build-arg stays unset",
    lines: ["FROM busybox", "ARG X", "WORKDIR /${X-unset}"],
    expect: ["/unset"],
  },
  {
    name: "ARG with an empty default is set",
    lines: ["FROM busybox", "ARG BAR=", "WORKDIR /${BAR-unset}${BAR:-empty}"],
    expect: ["/empty"],
  },
  {
    name: "an empty --build-arg sets the ARG to the empty string",
    lines: ["FROM busybox", "ARG X=def", "WORKDIR /${X-unset}${X:-empty}"],
    options: { buildArgs: ["X="] },
    expect: ["/empty"],
  },
  {
    name: "a bare --build-arg takes the environment's value",
    lines: ["FROM busybox", "ARG K=def", "WORKDIR /$K"],
    options: { buildArgs: ["K"], env: { K: "fromenv" } },
    expect: ["/fromenv"],
  },
  {
    name: "a bare --build-arg unset in the environment is dropped",
    lines: ["FROM busybox", "ARG K=def", "WORKDIR /$K"],
    options: { buildArgs: ["K"], env: {} },
    expect: ["/def"],
  },
  {
    name: "the last --build-arg of a name wins",
    lines: ["FROM busybox", "ARG K", "WORKDIR /$K"],
    options: { buildArgs: ["K=1", "K=2"] },
    expect: ["/2"],
  },
  {
    name: "ENV after ARG shadows it",
    lines: ["FROM busybox", "ARG X=1", "ENV X=2", "WORKDIR /$X"],
    expect: ["/2"],
  },
  {
    name: "ARG with a value after ENV wins (BuildKit: the later definition)",
    lines: ["FROM busybox", "ENV X=2", "ARG X=1", "WORKDIR /$X"],
    expect: ["/1"],
  },
  {
    name: "ARG without value after ENV keeps the ENV value",
    lines: ["FROM busybox", "ENV X=2", "ARG X", "WORKDIR /$X"],
    expect: ["/2"],
  },
  {
    name: "ARG without value after ENV takes a --build-arg",
    lines: ["FROM busybox", "ENV X=2", "ARG X", "WORKDIR /$X"],
    options: { buildArgs: ["X=3"] },
    expect: ["/3"],
  },
  {
    name: "ENV expands every word with the values before the instruction",
    lines: ["FROM busybox", "ENV A=1", "ENV A=2 B=$A"],
    expect: ["A", "2", "B", "1"],
  },
  {
    name: "ARG declarations in one instruction see the earlier ones",
    lines: ["FROM busybox", "ARG A=1 B=$A", "WORKDIR /$B"],
    expect: ["/1"],
  },
  {
    name: "an ARG default reads the stage's ENV",
    lines: ["FROM busybox", "ENV E=env", "ARG A=$E-x", "WORKDIR /$A"],
    expect: ["/env-x"],
  },
  {
    name: "BuildKit testMultiArgs",
    lines: [
      'ARG a1="foo bar" a2=box',
      'ARG a3="$a2-foo"',
      "FROM busy$a2 AS build",
      'ARG a3 a4="123 456" a1',
      'ENV out="$a1:$a3:$a4"',
    ],
    expect: ["out", "foo bar:box-foo:123 456"],
  },
  {
    name: "BuildKit testQuotedMetaArgs",
    lines: [
      'ARG a1="box"',
      'ARG a2="$a1-foo"',
      "FROM busy$a1 AS build",
      "ARG a2",
      'ARG a3="bar-$a2"',
      "ENV out=$a3",
    ],
    expect: ["out", "bar-box-foo"],
  },
  {
    name: "BuildKit testDefaultEnvWithArgs (no value)",
    lines: [
      "ARG image=idlebox",
      "FROM busy${image#idle} AS build",
      "ARG my_arg",
      'ENV my_arg "my_arg=${my_arg:-def_val}"',
      'ENV my_trimmed_arg "${my_arg%%e*}"',
    ],
    expect: ["my_trimmed_arg", "my_arg=d"],
  },
  {
    name: "BuildKit testDefaultEnvWithArgs (override)",
    lines: [
      "ARG image=idlebox",
      "FROM busy${image#idle} AS build",
      "ARG my_arg",
      'ENV my_arg "my_arg=${my_arg:-def_val}"',
      'ENV my_trimmed_arg "${my_arg%%e*}"',
    ],
    options: { buildArgs: ["my_arg=override"] },
    expect: ["my_trimmed_arg", "my_arg=ov"],
  },
  {
    name: "a global ARG default reads earlier globals and the platform arguments",
    lines: ["ARG OS=$TARGETOS", "ARG P=$OS-x", "FROM busybox", "ARG P", "WORKDIR /$P"],
    options: { platform: "linux/arm64" },
    expect: ["/linux-x"],
  },
  {
    name: "a --build-arg for a global ARG is not expanded",
    lines: ["ARG G=x", "FROM busybox", "ARG G", "WORKDIR /$G"],
    options: { buildArgs: ["G=$HOME"] },
    expect: ["/$HOME"],
  },
  {
    name: "a stage inherits the variables (ENV and ARG) of the stage it is built on",
    lines: ["FROM busybox AS a", "ENV A=1", "ARG B=2", "FROM a", "WORKDIR /$A$B"],
    expect: ["/12"],
  },
  {
    name: "a stage does not see the variables of an unrelated stage",
    lines: ["FROM busybox AS a", "ENV A=1", "FROM busybox", "WORKDIR /x$A"],
    expect: ["/x"],
  },
];

for (const c of SCOPING) {
  Deno.test(`scoping: ${c.name}`, () => {
    assert.deepEqual(last(plan(c.lines, c.options)), c.expect);
  });
}

const PLATFORM: Case[] = [
  {
    name: "TARGETARCH is set in a stage declaring ARG TARGETARCH",
    lines: ["FROM busybox", "ARG TARGETARCH", "WORKDIR /$TARGETARCH"],
    options: { platform: "linux/arm64" },
    expect: ["/arm64"],
  },
  {
    name: "TARGETARCH is unset in a stage without ARG TARGETARCH",
    lines: ["FROM busybox", "WORKDIR /x$TARGETARCH"],
    options: { platform: "linux/arm64" },
    expect: ["/x"],
  },
  {
    name: "TARGETPLATFORM and TARGETVARIANT for linux/arm/v7",
    lines: [
      "FROM busybox",
      "ARG TARGETPLATFORM TARGETVARIANT",
      "ENV P=$TARGETPLATFORM V=$TARGETVARIANT",
    ],
    options: { platform: "linux/arm/v7" },
    expect: ["P", "linux/arm/v7", "V", "v7"],
  },
  {
    name: "TARGETVARIANT is empty (not unset) for linux/amd64",
    lines: ["FROM busybox", "ARG TARGETVARIANT", "WORKDIR /${TARGETVARIANT-unset}"],
    expect: ["/"],
  },
  {
    name: "BUILDPLATFORM and BUILDARCH come from the building platform",
    lines: ["FROM busybox", "ARG BUILDPLATFORM BUILDARCH", "ENV B=$BUILDPLATFORM A=$BUILDARCH"],
    options: { platform: "linux/arm64", buildPlatform: "linux/amd64" },
    expect: ["B", "linux/amd64", "A", "amd64"],
  },
  {
    name: "a --build-arg overrides an automatic platform argument",
    lines: ["FROM busybox", "ARG TARGETARCH", "WORKDIR /$TARGETARCH"],
    options: { buildArgs: ["TARGETARCH=riscv64"] },
    expect: ["/riscv64"],
  },
  {
    name: "TARGETSTAGE is the --target name",
    lines: ["FROM busybox AS base", "ARG TARGETSTAGE", "WORKDIR /$TARGETSTAGE", "FROM base AS foo"],
    options: { target: "base" },
    expect: ["/base"],
  },
  {
    name: "a stage-based stage runs on its base stage's platform",
    lines: [
      "FROM --platform=linux/s390x busybox AS a",
      "FROM a",
      "ARG TARGETARCH",
      "WORKDIR /$TARGETARCH",
    ],
    options: { platform: "linux/arm64" },
    expect: ["/arm64"],
  },
];

for (const c of PLATFORM) {
  Deno.test(`platform args: ${c.name}`, () => {
    assert.deepEqual(last(plan(c.lines, c.options)), c.expect);
  });
}

Deno.test("platform args: TARGETARCH in FROM without declaration (global scope)", () => {
  const p = plan(["FROM busybox:$TARGETARCH"], { platform: "linux/arm64" });
  assert.equal(p.stages[0].base, "busybox:arm64");
});

Deno.test("platform args: FROM --platform=$BUILDPLATFORM", () => {
  const p = plan(["FROM --platform=$BUILDPLATFORM golang AS build", "FROM busybox"], {
    platform: "linux/arm64",
    buildPlatform: "linux/amd64",
  });
  assert.equal(p.stages[0].platform, "linux/amd64");
  assert.equal(p.stages[0].buildFor.architecture, "amd64");
  assert.equal(p.stages[1].platform, null);
  assert.equal(p.stages[1].buildFor.architecture, "arm64");
});

Deno.test("platform args: TARGETSTAGE is 'default' for an unnamed last stage, else its name", () => {
  const lines = ["FROM busybox AS base", "ARG TARGETSTAGE", "WORKDIR /$TARGETSTAGE", "FROM base"];
  assert.deepEqual(plan(lines).stages[0].instructions[1].expanded, ["/default"]);
  const named = plan([...lines.slice(0, 3), "FROM base AS final"]);
  assert.deepEqual(named.stages[0].instructions[1].expanded, ["/final"]);
});

Deno.test("global ARG in FROM; --build-arg overrides it (BuildKit testGlobalArg)", () => {
  assert.equal(
    plan(["ARG tag=nosuchtag", "FROM busybox:${tag}"]).stages[0].base,
    "busybox:nosuchtag",
  );
  const p = plan(["ARG tag=nosuchtag", "FROM busybox:${tag}"], { buildArgs: ["tag=latest"] });
  assert.equal(p.stages[0].base, "busybox:latest");
  assert.deepEqual(p.metaArgs, [{ name: "tag", value: "latest" }]);
});

Deno.test("metaArgs: values resolved in order; null without a value", () => {
  const p = plan(["ARG A=1", "ARG B", "ARG C=$A-$B", "ARG TARGETOS", "FROM busybox"], {
    platform: "linux/arm64",
  });
  assert.deepEqual(p.metaArgs, [
    { name: "A", value: "1" },
    { name: "B", value: null },
    { name: "C", value: "1-" },
    { name: "TARGETOS", value: "linux" },
  ]);
});

Deno.test("${v:?msg} in a global ARG fails with FILE:LINE unless the build arg is given", () => {
  const lines = ['ARG FOO=${FOO:?"custom error"}', "FROM busybox"];
  fails(lines, {}, /^Dockerfile:1: .*FOO: custom error/);
  assert.equal(plan(lines, { buildArgs: ["FOO=bar"] }).metaArgs[0].value, "bar");
});

Deno.test("${v:?msg} in a stage ARG default fails unless either build arg is given", () => {
  const lines = ["FROM scratch", "ARG FOO", 'ARG BAR=${FOO:?"foo missing"}'];
  fails(lines, {}, /^Dockerfile:3: .*FOO: foo missing/);
  const withFoo = plan(lines, { buildArgs: ["FOO=123"] }).stages[0].instructions[1];
  assert.deepEqual(withFoo.argValues, [{ name: "BAR", value: "123" }]);
  const withBar = plan(lines, { buildArgs: ["BAR=456"] }).stages[0].instructions[1];
  assert.deepEqual(withBar.argValues, [{ name: "BAR", value: "456" }]);
});

Deno.test("proxy args: usable by RUN without ARG, never expanded by the builder unless declared", () => {
  const lines = ["FROM busybox", "RUN echo $HTTP_PROXY", "WORKDIR /x$HTTP_PROXY"];
  const p = plan(lines, { buildArgs: ["HTTP_PROXY=hp", "no_proxy=np"] });
  assert.deepEqual([...p.proxyEnv], [["HTTP_PROXY", "hp"], ["no_proxy", "np"]]);
  assert.deepEqual(last(p), ["/x"]);
  assert.deepEqual(p.warnings, [], "proxy args are never reported as unused");
  const declared = plan(["FROM busybox", "ARG HTTP_PROXY", "WORKDIR /x$HTTP_PROXY"], {
    buildArgs: ["HTTP_PROXY=hp"],
  });
  assert.deepEqual(last(declared), ["/xhp"]);
});

Deno.test("unused --build-arg: one warning line each, sorted", () => {
  const p = plan(["FROM busybox", "ARG USED", "RUN true"], {
    buildArgs: ["ZED=1", "USED=1", "ABC=2"],
  });
  assert.equal(p.warnings.length, 2);
  assert.match(p.warnings[0], /--build-arg ABC was not consumed/);
  assert.match(p.warnings[1], /--build-arg ZED was not consumed/);
});

Deno.test("unused --build-arg: a global ARG read by FROM consumes it", () => {
  assert.deepEqual(plan(["ARG V", "FROM busybox:$V"], { buildArgs: ["V=1"] }).warnings, []);
});

Deno.test("unused --build-arg: a global ARG that nothing reads does not consume it", () => {
  const p = plan(["ARG V", "FROM busybox"], { buildArgs: ["V=1"] });
  assert.equal(p.warnings.length, 1);
});

Deno.test("unused --build-arg: global ARGs a used global ARG depends on are consumed", () => {
  const p = plan(["ARG A", "ARG B=x$A", "FROM busybox:$B"], { buildArgs: ["A=1"] });
  assert.deepEqual(p.warnings, []);
  assert.equal(p.stages[0].base, "busybox:x1");
});

Deno.test("unused --build-arg: an ARG in a stage the target does not need does not consume it", () => {
  const lines = ["FROM busybox AS a", "ARG A", "FROM busybox AS b", "RUN true"];
  assert.equal(plan(lines, { buildArgs: ["A=1"], target: "b" }).warnings.length, 1);
  assert.equal(plan(lines, { buildArgs: ["A=1"], target: "a" }).warnings.length, 0);
  const copy = plan([...lines, "COPY --from=a /x /y"], { buildArgs: ["A=1"] });
  assert.equal(copy.warnings.length, 0, "a stage copied from is built");
});

Deno.test("resolveBuildArgs: K=V, bare K from the environment, empty names refused", () => {
  const env = (k: string) => ({ HOME: "/root" } as Record<string, string>)[k];
  assert.deepEqual(
    [...resolveBuildArgs(["A=1", "B==2", "HOME", "NOPE", "C="], env)],
    [["A", "1"], ["B", "=2"], ["HOME", "/root"], ["C", ""]],
  );
  assert.throws(() => resolveBuildArgs(["=v"], env), UsageError);
});

Deno.test("platformArgs: BuildKit's names and values, overridable", () => {
  const args = platformArgs(parsePlatform("linux/arm/v7"), parsePlatform("linux/amd64"), "");
  assert.equal(args.get("TARGETPLATFORM"), "linux/arm/v7");
  assert.equal(args.get("TARGETARCH"), "arm");
  assert.equal(args.get("TARGETVARIANT"), "v7");
  assert.equal(args.get("BUILDPLATFORM"), "linux/amd64");
  assert.equal(args.get("BUILDVARIANT"), "");
  assert.equal(args.get("TARGETSTAGE"), "default");
  const over = platformArgs(
    parsePlatform("linux/amd64"),
    parsePlatform("linux/amd64"),
    "x",
    new Map([["TARGETOS", "plan9"]]),
  );
  assert.equal(over.get("TARGETOS"), "plan9");
  assert.equal(over.get("TARGETSTAGE"), "x");
});

Deno.test("proxyEnv and unusedBuildArgWarnings: helpers", () => {
  const args = new Map([["Https_Proxy", "h"], ["FOO", "1"], ["BUILDKIT_INLINE_CACHE", "1"]]);
  assert.deepEqual([...proxyEnv(args)], [["Https_Proxy", "h"]]);
  assert.equal(unusedBuildArgWarnings(args, new Set()).length, 1);
});
