/**
 * `kaniko parse --dockerfile F` (without `--raw`): the exact JSON of the command-line contract
 * (metaArgs, stages with index/name/base/platform/instructions, target), with `--build-arg`,
 * `--target` and `--platform` applied; one `error:` line naming `Dockerfile:LINE` otherwise.
 */
import assert from "node:assert/strict";
import { runCli } from "../_fake_registry.ts";

async function parse(dockerfile: string, ...flags: string[]) {
  const dir = await Deno.makeTempDir({ prefix: "kaniko-parse-" });
  try {
    await Deno.writeTextFile(`${dir}/Dockerfile`, dockerfile);
    return await runCli(["parse", "--dockerfile", `${dir}/Dockerfile`, ...flags]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const DOCKERFILE = [
  "# syntax=docker/dockerfile:1",
  "ARG V=1.36",
  "ARG BASE=busybox:${V}",
  "FROM --platform=$BUILDPLATFORM ${BASE} AS Build",
  "ARG V",
  "ARG TARGETARCH",
  "ENV DIR=/out/$TARGETARCH",
  "RUN echo $V > $DIR/v",
  "FROM scratch",
  "COPY --from=build --chown=1:1 /out/ /",
].join("\n") + "\n";

Deno.test("parse: the contract's JSON, exactly", async () => {
  const r = await parse(DOCKERFILE, "--platform", "linux/arm64", "--build-arg", "V=1.37");
  assert.equal(r.code, 0, r.err);
  const json = JSON.parse(r.out);
  assert.deepEqual(Object.keys(json), ["metaArgs", "stages", "target"]);
  assert.deepEqual(json.metaArgs, [
    { name: "V", value: "1.37" },
    { name: "BASE", value: "busybox:1.37" },
  ]);
  assert.equal(json.target, 1);
  assert.equal(json.stages.length, 2);
  const [build, final] = json.stages;
  assert.deepEqual(Object.keys(build), ["index", "name", "base", "platform", "instructions"]);
  assert.deepEqual(
    { ...build, instructions: undefined },
    {
      index: 0,
      name: "build",
      base: "busybox:1.37",
      platform: hostPlatform(),
      instructions: undefined,
    },
  );
  for (const inst of [...build.instructions, ...final.instructions]) {
    assert.deepEqual(Object.keys(inst), ["keyword", "line", "flags", "args", "expanded"]);
  }
  const env = build.instructions.find((i: { keyword: string }) => i.keyword === "ENV");
  assert.deepEqual(env, {
    keyword: "ENV",
    line: 7,
    flags: [],
    args: ["DIR", "/out/$TARGETARCH"],
    expanded: ["DIR", "/out/arm64"],
  });
  const run = build.instructions.find((i: { keyword: string }) => i.keyword === "RUN");
  assert.deepEqual(run, {
    keyword: "RUN",
    line: 8,
    flags: [],
    args: ["echo $V > $DIR/v"],
    expanded: ["echo $V > $DIR/v"],
  });
  assert.deepEqual(final, {
    index: 1,
    name: null,
    base: "scratch",
    platform: null,
    instructions: [{
      keyword: "COPY",
      line: 10,
      flags: ["--from=build", "--chown=1:1"],
      args: ["/out/", "/"],
      expanded: ["/out/", "/"],
    }],
  });
});

Deno.test("parse: --target selects the stage (case-insensitive)", async () => {
  const r = await parse(DOCKERFILE, "--target", "BUILD");
  assert.equal(r.code, 0, r.err);
  assert.equal(JSON.parse(r.out).target, 0);
});

Deno.test("parse: global ARGs need re-declaring inside a stage", async () => {
  const r = await parse("ARG A=x\nFROM busybox:$A\nWORKDIR /a$A\nARG A\nWORKDIR /b$A\n");
  assert.equal(r.code, 0, r.err);
  const [w1, , w2] = JSON.parse(r.out).stages[0].instructions;
  assert.deepEqual([w1.expanded, w2.expanded], [["/a"], ["/bx"]]);
});

Deno.test("parse: a Dockerfile that cannot be built is one error: line with Dockerfile:LINE", async () => {
  const cases: [string, string[], RegExp][] = [
    [
      "FROM busybox AS a\nCOPY --from=later /x /y\nFROM busybox AS later\nFROM a\n",
      [],
      /Dockerfile:2: /,
    ],
    ["ARG X\n", [], /Dockerfile: the Dockerfile has no FROM instruction/],
    ["FROM busybox\n", ["--target", "nope"], /target stage "nope" could not be found/],
    ["FROM busybox AS 9lives\n", [], /Dockerfile:1: .*invalid name for build stage/],
    ["ARG T=${T:?needed}\nFROM busybox:$T\n", [], /Dockerfile:1: .*T: needed/],
  ];
  for (const [text, flags, pattern] of cases) {
    const r = await parse(text, ...flags);
    assert.equal(r.code, 1, `${text}: ${r.out}`);
    const lines = r.err.trimEnd().split("\n");
    assert.equal(lines.length, 1, r.err);
    assert.match(lines[0], /^error: /);
    assert.match(lines[0], pattern);
  }
});

Deno.test("parse: --raw still prints a Dockerfile without FROM", async () => {
  const r = await parse("ARG X\n", "--raw");
  assert.equal(r.code, 0, r.err);
  assert.equal(JSON.parse(r.out).instructions[0].keyword, "ARG");
});

function hostPlatform(): string {
  const arch = ({ x86_64: "amd64", aarch64: "arm64" } as Record<string, string>)[Deno.build.arch];
  return `linux/${arch ?? Deno.build.arch}`;
}
