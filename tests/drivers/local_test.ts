/**
 * The `local` driver: the fail-fast check for RUN steps this host cannot run (before anything
 * is pulled), `describe`, the bounded pool, and real RUN-less builds for foreign platforms
 * against the test bed (children in target order, one COPY blob for all, the Docker form made
 * from the same layers, work directories removed by `dispose`).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { prepareMultiPlatform } from "../../drivers/coordinator.ts";
import { buildImage } from "../../lib/build/executor.ts";
import { localDriver } from "../../drivers/local/mod.ts";
import { pool } from "../../drivers/local/pool.ts";
import type { ChildImage } from "../../drivers/types.ts";
import type { BuildOptions } from "../../lib/cli/options.ts";
import { parseInvocation } from "../../lib/cli/invocation.ts";
import { loadDockerfile, prepareContext } from "../../lib/context/mod.ts";
import { parseDockerfile } from "../../lib/dockerfile/parser.ts";
import { KanikoError } from "../../lib/errors.ts";
import { configureLog } from "../../lib/log.ts";
import { DOCKER, OCI } from "../../lib/oci/media_types.ts";
import { formatPlatform, hostPlatform } from "../../lib/oci/platform.ts";
import { RegistrySession } from "../../lib/registry/session.ts";
import { engine, kaniko, noEngine } from "../build/_engine.ts";
import { tempDir } from "../_testbed.ts";

configureLog({ level: "warn" });

/** Build options from a command line (`--no-push` unless destinations are given). */
function options(args: string[]): BuildOptions {
  const inv = parseInvocation(["--no-push", ...args], { env: () => undefined });
  if (inv.command !== "build") throw new Error("not a build");
  return inv.options;
}

/** Prepares a multi-platform build of `dockerfile` in a fresh context directory. */
async function prepare(
  dir: string,
  dockerfile: string,
  args: string[],
  files: Record<string, string> = {},
) {
  await Deno.writeTextFile(join(dir, "Dockerfile"), dockerfile);
  for (const [name, text] of Object.entries(files)) await Deno.writeTextFile(join(dir, name), text);
  const opts = options(["-c", dir, "-f", join(dir, "Dockerfile"), "--isolation=chroot", ...args]);
  const context = await prepareContext(opts.context, { dockerfile: opts.dockerfile });
  const { text, name } = await loadDockerfile(opts.dockerfile, context);
  const df = parseDockerfile(text, { file: name });
  return {
    opts,
    context,
    ...(await prepareMultiPlatform(opts, { dockerfile: df, file: name, context })),
  };
}

const foreign = hostPlatform().architecture === "amd64" ? "linux/arm64" : "linux/amd64";
const foreign2 = "linux/s390x";
const host = formatPlatform(hostPlatform());
const session = () => new RegistrySession(options([]).registry);

Deno.test("local: RUN for platforms this host cannot run fails in preflight, naming all", async () => {
  await using tmp = await tempDir();
  const df = "FROM registry.invalid/busybox\nCOPY Dockerfile /x\nRUN echo hi\nRUN echo again\n";
  const { build } = await prepare(tmp.path, df, [
    "--multi-platform",
    `linux/${hostPlatform().architecture},${foreign},${foreign2}`,
  ]);
  await using _ctx = build.context;
  const s = session();
  const started = performance.now();
  await assert.rejects(
    localDriver.preflight(build, { session: s, signal: new AbortController().signal }),
    (e: unknown) => {
      assert.ok(e instanceof KanikoError);
      assert.equal(e.exitCode, 1);
      const text = `${e.message}; ${e.hint}`;
      assert.match(
        text,
        new RegExp(
          `${foreign}: the Dockerfile runs RUN steps \\(\\S*Dockerfile:3, \\S*Dockerfile:4\\)`,
        ),
      );
      assert.match(text, new RegExp(`${foreign2}: the Dockerfile runs RUN steps`));
      assert.match(
        text,
        /cannot run .* binaries without emulation; build them with --driver=k8s on .* nodes or --driver=ci/,
      );
      assert.doesNotMatch(text, new RegExp(`linux/${hostPlatform().architecture}:`));
      return true;
    },
  );
  assert.ok(performance.now() - started < 1000);
  s.close();
});

Deno.test("local: RUN only on the build platform, or in a stage not built, passes preflight", async () => {
  await using tmp = await tempDir();
  const df = [
    "FROM --platform=$BUILDPLATFORM registry.invalid/golang AS build",
    "RUN go build",
    "FROM registry.invalid/tools AS unused",
    "RUN true",
    "FROM scratch",
    "COPY --from=build /out /app",
  ].join("\n") + "\n";
  const { build } = await prepare(tmp.path, df, [
    "--multi-platform",
    `${foreign},${foreign2}`,
    "--skip-unused-stages",
  ]);
  await using _ctx = build.context;
  const s = session();
  await localDriver.preflight(build, { session: s, signal: new AbortController().signal });
  s.close();
  // hasRun: the build stage's RUN runs on this host, so it is no reason to fail.
  assert.deepEqual(localDriver.describe(build), [
    `${foreign}: local, not native, RUN steps for ${host}, run here`,
    `${foreign2}: local, not native, RUN steps for ${host}, run here`,
  ]);
});

Deno.test("local: the pool bounds concurrency, keeps order, stops and releases on failure", async () => {
  let running = 0;
  let peak = 0;
  const results = await pool([1, 2, 3, 4, 5], 2, undefined, async (n) => {
    running++;
    peak = Math.max(peak, running);
    await new Promise((r) => setTimeout(r, 10 * (6 - n)));
    running--;
    return n * 10;
  }, () => Promise.resolve());
  assert.deepEqual(results, [10, 20, 30, 40, 50]);
  assert.equal(peak, 2);
  const started: number[] = [];
  const released: number[] = [];
  await assert.rejects(
    pool([1, 2, 3, 4], 1, undefined, (n) => {
      started.push(n);
      return n === 2 ? Promise.reject(new Error("boom")) : Promise.resolve(n);
    }, (r) => {
      released.push(r);
      return Promise.resolve();
    }),
    /boom/,
  );
  assert.deepEqual(started, [1, 2]);
  assert.deepEqual(released, [1]);
});

Deno.test({
  name: "local: RUN-less builds for foreign platforms: right configs, one COPY blob, Docker form",
  ignore: noEngine,
  async fn() {
    const e = await engine();
    await using tmp = await tempDir();
    const df = `FROM ${e.base}\nCOPY hello.txt /hello.txt\nENV A=1\n`;
    const { build, driver } = await prepare(tmp.path, df, [
      ...e.flags,
      "--multi-platform",
      "linux/s390x,linux/arm/v7",
    ], { "hello.txt": "hello\n" });
    await using _ctx = build.context;
    const s = new RegistrySession(build.opts.registry);
    const ctx = { session: s, signal: new AbortController().signal };
    let children: ChildImage[] = [];
    try {
      await driver.preflight(build, ctx);
      children = await driver.build(build, ctx);
      assert.deepEqual(children.map((c) => c.target.platform), ["linux/s390x", "linux/arm/v7"]);
      const images = children.map((c) => {
        assert.equal(c.kind, "local");
        return (c as ChildImage & { kind: "local" }).image as any;
      });
      const configs = images.map((i) => JSON.parse(new TextDecoder().decode(i.config)));
      assert.deepEqual(configs.map((c) => [c.os, c.architecture, c.variant]), [
        ["linux", "s390x", undefined],
        ["linux", "arm", "v7"],
      ]);
      assert.equal(configs[0].created, configs[1].created);
      const copyLayers = images.map((i) => i.layers.at(-1).descriptor);
      assert.equal(copyLayers[0].digest, copyLayers[1].digest);
      assert.equal(copyLayers[0].mediaType, OCI.layerGzip);
      // The Docker form: the same layer and config bytes, Docker media types, new manifests.
      const local = children[1] as ChildImage & { kind: "local" };
      const docker = local.reassemble!("docker") as ChildImage & { kind: "local" };
      const m = JSON.parse(new TextDecoder().decode(docker.image.manifest.bytes));
      assert.equal(m.mediaType, DOCKER.manifest);
      assert.equal(m.config.mediaType, DOCKER.config);
      assert.equal(m.config.digest, images[1].configDescriptor.digest);
      assert.deepEqual(m.layers.map((l: any) => l.mediaType), m.layers.map(() => DOCKER.layerGzip));
      assert.deepEqual(
        m.layers.map((l: any) => l.digest),
        images[1].layers.map((l: any) => l.descriptor.digest),
      );
      assert.notEqual(docker.image.manifest.digest, local.image.manifest.digest);
      // dispose removes the blobs the builds wrote (the shared COPY blob lives in the directory
      // of the build that wrote it first: it is gone once every child is disposed).
      for (const c of children) await (c as ChildImage & { kind: "local" }).dispose();
      await assert.rejects(images[0].openBlob(copyLayers[0]));
      await assert.rejects(images[1].openBlob(copyLayers[1]));
    } finally {
      await Promise.all(children.map((c) => c.kind === "local" ? c.dispose() : undefined));
      s.close();
    }
  },
});

Deno.test({
  name: "local: a platform that fails names itself; the others' work is removed",
  ignore: noEngine,
  async fn() {
    const e = await engine();
    await using tmp = await tempDir();
    const { build, driver } = await prepare(tmp.path, `FROM ${e.base}\nENV A=1\n`, [
      ...e.flags,
      "--multi-platform",
      "linux/arm64,linux/riscv64",
    ]);
    await using _ctx = build.context;
    // Work directories go to a private TMPDIR, so other processes' builds do not count.
    await using work = await tempDir();
    const saved = Deno.env.get("TMPDIR");
    Deno.env.set("TMPDIR", work.path);
    const s = new RegistrySession(build.opts.registry);
    try {
      await assert.rejects(
        driver.build(build, { session: s, signal: new AbortController().signal }),
        (err: unknown) => {
          assert.ok(err instanceof KanikoError);
          assert.match(err.message, /^linux\/riscv64: no image for platform linux\/riscv64/);
          return true;
        },
      );
    } finally {
      if (saved === undefined) Deno.env.delete("TMPDIR");
      else Deno.env.set("TMPDIR", saved);
      s.close();
    }
    assert.deepEqual([...Deno.readDirSync(work.path)].map((d) => d.name), []);
  },
});

Deno.test("local: --isolation=none builds in /, so two platforms with RUN are refused", async () => {
  await using tmp = await tempDir();
  const df = "FROM registry.invalid/busybox\nRUN echo hi\n";
  const { build } = await prepare(tmp.path, df, [
    "--multi-platform",
    "linux/amd64,linux/386",
    "--isolation=none",
    "--force",
  ]);
  await using _ctx = build.context;
  const s = session();
  await assert.rejects(
    localDriver.preflight(build, { session: s, signal: new AbortController().signal }),
    (e: unknown) => {
      assert.ok(e instanceof KanikoError);
      assert.equal(e.exitCode, 2);
      assert.match(e.message, /only one platform with RUN steps.*linux\/amd64, linux\/386/);
      return true;
    },
  );
  s.close();
});

Deno.test({
  name: "local: a RUN a foreign base image's ONBUILD adds is refused before any stage is built",
  ignore: noEngine || Deno.build.arch !== "x86_64",
  async fn() {
    const e = await engine();
    // A linux/arm64 base whose config carries `ONBUILD RUN …` (recording it runs nothing).
    await using baseCtx = await tempDir();
    const base = `${e.host}/local/onbuild-${crypto.randomUUID().slice(0, 8)}:1`;
    await Deno.writeTextFile(
      join(baseCtx.path, "Dockerfile"),
      `FROM ${e.base}\nONBUILD RUN echo hi\n`,
    );
    const made = await kaniko(e, [
      "-c",
      baseCtx.path,
      "--isolation=chroot",
      ...e.flags,
      "--multi-platform",
      "linux/arm64",
      "--destination",
      base,
    ]);
    assert.equal(made.code, 0, made.stderr);
    // The Dockerfile has no RUN: preflight passes; the base's trigger is found once its config
    // is read, and the build stops there.
    await using tmp = await tempDir();
    const { build, driver } = await prepare(tmp.path, `FROM ${base}\nENV A=1\n`, [
      ...e.flags,
      "--multi-platform",
      "linux/arm64",
    ]);
    await using _ctx = build.context;
    const s = new RegistrySession(build.opts.registry);
    const ctx = { session: s, signal: new AbortController().signal };
    try {
      await driver.preflight(build, ctx);
      await assert.rejects(driver.build(build, ctx), (err: unknown) => {
        assert.ok(err instanceof KanikoError);
        assert.match(
          err.message,
          /linux\/arm64: the Dockerfile runs RUN steps \(\S*Dockerfile:1\)/,
        );
        assert.match(err.hint ?? "", /--driver=k8s on arm64 nodes or --driver=ci/);
        return true;
      });
    } finally {
      s.close();
    }
  },
});

Deno.test({
  name: "local: with one shared created time, a COPY creating directories is the same blob later",
  ignore: noEngine,
  async fn() {
    const e = await engine();
    await using tmp = await tempDir();
    const df = `FROM ${e.base}\nWORKDIR /srv/w\nCOPY hello.txt /opt/new/dir/\n`;
    const { build } = await prepare(tmp.path, df, [...e.flags, "--multi-platform", "linux/arm64"], {
      "hello.txt": "hello\n",
    });
    await using _ctx = build.context;
    const s = new RegistrySession(build.opts.registry);
    const input = {
      dockerfile: build.dockerfile,
      file: build.file,
      context: build.context,
      platform: "linux/arm64",
    };
    const created = "2026-01-02T03:04:05Z";
    const options = { format: "oci" as const, created, session: s };
    const first = await buildImage(build.opts, input, options);
    try {
      await new Promise((r) => setTimeout(r, 1100)); // another second on the clock
      const second = await buildImage(build.opts, { ...input, platform: "linux/s390x" }, options);
      try {
        const tail = (i: typeof first) => i.layers.slice(-2).map((l) => l.descriptor.digest);
        assert.deepEqual(tail(second), tail(first)); // the WORKDIR and COPY layers
      } finally {
        await second.dispose();
      }
    } finally {
      await first.dispose();
      s.close();
    }
  },
});
