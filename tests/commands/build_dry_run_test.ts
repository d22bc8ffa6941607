/**
 * `kaniko --dry-run`: validates the Dockerfile and prints the stages and steps it would run,
 * without pulling or pushing (the images named here do not exist anywhere); without `--dry-run`
 * the build stops after validating, so Dockerfile errors still come first.
 */
import assert from "node:assert/strict";
import { runCli } from "../_fake_registry.ts";

const MULTI_STAGE = [
  "ARG GO=1.22",
  "FROM --platform=$BUILDPLATFORM registry.invalid/golang:${GO} AS build",
  "ARG TARGETARCH",
  "WORKDIR /src/$TARGETARCH",
  "RUN go build -o /out/app .",
  "FROM registry.invalid/tools:1 AS unused",
  "RUN true",
  "FROM scratch AS final",
  "COPY --from=build /out/app /app",
  'ENTRYPOINT ["/app"]',
].join("\n") + "\n";

async function withDir(
  dockerfile: string,
  fn: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kaniko-dry-run-" });
  try {
    await Deno.writeTextFile(`${dir}/Dockerfile`, dockerfile);
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function build(dir: string, ...extra: string[]) {
  return runCli(["--dry-run", "-c", dir, "-f", `${dir}/Dockerfile`, "--no-push", ...extra]);
}

Deno.test("dry run: prints each stage and step, expanded, and exits 0 without pulling", async () => {
  await withDir(MULTI_STAGE, async (dir) => {
    const r = await build(dir, "--custom-platform=linux/arm64", "--build-arg", "GO=1.23");
    assert.equal(r.code, 0, r.err);
    const lines = r.out.trimEnd().split("\n");
    assert.ok(
      lines.includes(
        `stage 0 "build" FROM registry.invalid/golang:1.23 (platform ${hostPlatform()})`,
      ),
      r.out,
    );
    assert.ok(lines.includes("  step 2/3: WORKDIR /src/arm64"), r.out);
    assert.ok(lines.includes("  step 3/3: RUN go build -o /out/app ."), r.out);
    assert.ok(
      lines.includes('stage 1 "unused" FROM registry.invalid/tools:1 (platform linux/arm64)'),
    );
    assert.ok(lines.includes('stage 2 "final" FROM scratch (platform linux/arm64)'), r.out);
    assert.ok(lines.includes("  step 1/2: COPY --from=build /out/app /app"), r.out);
    assert.ok(lines.includes('  step 2/2: ENTRYPOINT ["/app"]'), r.out);
    assert.ok(lines.includes('target stage 2 "final"'), r.out);
    assert.doesNotMatch(r.err, /error/);
  });
});

Deno.test("dry run: --skip-unused-stages and --target decide the stages built", async () => {
  await withDir(MULTI_STAGE, async (dir) => {
    const skip = await build(dir, "--skip-unused-stages");
    assert.equal(skip.code, 0, skip.err);
    assert.match(skip.out, /^stage 1 "unused" skipped: not needed by the target$/m);
    const target = await build(dir, "--target=BUILD");
    assert.equal(target.code, 0, target.err);
    assert.match(target.out, /^stage 1 "unused" skipped: after the target stage$/m);
    assert.match(target.out, /^target stage 0 "build"$/m);
  });
});

Deno.test("dry run: --log-format=json prints one JSON object per line", async () => {
  await withDir(MULTI_STAGE, async (dir) => {
    const r = await build(dir, "--log-format=json", "--custom-platform=linux/arm64");
    assert.equal(r.code, 0, r.err);
    const records = r.out.trimEnd().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(records[0], {
      stage: 0,
      name: "build",
      base: "registry.invalid/golang:1.22",
      baseStage: null,
      platform: hostPlatform(),
      built: true,
    });
    const workdir = records.find((x) => x.keyword === "WORKDIR");
    assert.deepEqual(workdir, {
      stage: 0,
      step: 2,
      keyword: "WORKDIR",
      line: 4,
      flags: [],
      expanded: ["/src/arm64"],
    });
    assert.deepEqual(records.at(-1), { dryRun: true, destinations: [], noPush: true });
  });
});

Deno.test("dry run: --platform (multi-platform) plans each platform", async () => {
  await withDir("FROM scratch\nARG TARGETARCH\nWORKDIR /$TARGETARCH\n", async (dir) => {
    const r = await build(dir, "--platform=linux/amd64,linux/arm64");
    assert.equal(r.code, 0, r.err);
    const blocks = r.out.split(/^(?=platform )/m).filter((b) => b.startsWith("platform "));
    assert.equal(blocks.length, 2, r.out);
    for (const [i, arch] of ["amd64", "arm64"].entries()) {
      const lines = blocks[i].trimEnd().split("\n");
      assert.equal(lines[0], `platform linux/${arch}`);
      assert.ok(lines.includes(`  step 2/2: WORKDIR /${arch}`), blocks[i]);
    }
  });
});

Deno.test("dry run: a --build-arg nothing consumes is a warning on stderr", async () => {
  await withDir("FROM scratch\nARG USED\n", async (dir) => {
    const r = await build(dir, "--build-arg", "USED=1", "--build-arg", "NOPE=2");
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /WARN.*--build-arg NOPE was not consumed/);
    assert.doesNotMatch(r.err, /USED was not consumed/);
  });
});

Deno.test("dry run: a bad Dockerfile is one error line naming Dockerfile:LINE", async () => {
  const cases: [string, RegExp][] = [
    ["FROM scratch AS a\nCOPY --from=b /x /y\nFROM scratch AS b\nFROM a\n", /Dockerfile:2: .*"b"/],
    ["RUN true\nFROM scratch\n", /Dockerfile:1: RUN true: RUN before the first FROM/],
    ["FROM scratch AS x\nFROM scratch AS X\n", /Dockerfile:2: .*duplicate stage name "x"/],
    ["FROM scratch\nWORKDIR ${D:?is required}\n", /Dockerfile:2: .*D: is required/],
    ["FROM --platform=nope scratch\n", /Dockerfile:1: .*failed to parse platform nope/],
  ];
  for (const [text, pattern] of cases) {
    await withDir(text, async (dir) => {
      const r = await build(dir);
      assert.equal(r.code, 1, r.out);
      const lines = r.err.trimEnd().split("\n");
      assert.equal(lines.length, 1, r.err);
      assert.match(lines[0], /^error: /);
      assert.match(lines[0], pattern);
      assert.equal(r.out, "");
    });
  }
});

Deno.test("dry run: --target naming no stage is an error", async () => {
  await withDir(MULTI_STAGE, async (dir) => {
    const r = await build(dir, "--target=nosuch");
    assert.equal(r.code, 1);
    assert.match(
      r.err,
      /^error: .*Dockerfile: target stage "nosuch" could not be found; .*build, unused, final/,
    );
  });
});

Deno.test("build without --dry-run: validates before anything runs, then builds", async () => {
  await withDir("FROM scratch\nCOPY --from=5 /a /b\n", async (dir) => {
    const r = await runCli([
      "-c",
      dir,
      "-f",
      `${dir}/Dockerfile`,
      "--no-push",
      "--isolation=chroot",
    ]);
    assert.equal(r.code, 1);
    assert.match(r.err, /^error: .*Dockerfile:2: .*invalid stage index 5/);
  });
  await withDir("FROM scratch\nCOPY Dockerfile /\n", async (dir) => {
    const r = await runCli([
      "-c",
      dir,
      "-f",
      `${dir}/Dockerfile`,
      "--no-push",
      "--isolation=chroot",
    ]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /built linux\/\S+ image sha256:[0-9a-f]{64}/);
  });
});

function hostPlatform(): string {
  const arch = ({ x86_64: "amd64", aarch64: "arm64" } as Record<string, string>)[Deno.build.arch];
  return `linux/${arch ?? Deno.build.arch}`;
}
