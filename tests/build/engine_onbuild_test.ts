/**
 * ONBUILD end to end: a base image built with `ONBUILD RUN …` and `ONBUILD COPY …` and pushed to
 * the test bed's plain registry, then a build FROM it. The child's build runs the triggers first
 * (in its own context), and the child image does not carry the base's triggers on (BuildKit and
 * Kaniko consume them: the child's `OnBuild` holds only its own ONBUILD instructions). The built
 * images are read back with skopeo (to an OCI layout) and umoci. Real builds need root and Linux
 * namespaces (skipped otherwise); the config rule is also checked without them.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startState } from "../../lib/build/config.ts";
import type { ImageConfig } from "../../lib/oci/schemas.ts";
import { skopeo, tempDir, testbed, type TestbedEnv } from "../_testbed.ts";

const CLI = new URL("../../cli.ts", import.meta.url).pathname;
const noEngine = Deno.uid() !== 0 || Deno.build.os !== "linux";

Deno.test("startState: a stage does not inherit its base's ONBUILD triggers", () => {
  const base: ImageConfig = {
    architecture: "amd64",
    os: "linux",
    config: { Env: ["PATH=/bin"], OnBuild: ["RUN echo hi", "COPY . /app"], User: "u" },
    rootfs: { type: "layers", diff_ids: [] },
  };
  const state = startState(base);
  assert.equal(state.config.config?.OnBuild, undefined);
  assert.equal(state.config.config?.User, "u");
  assert.deepEqual(base.config?.OnBuild, ["RUN echo hi", "COPY . /app"], "the base is untouched");
});

/** Builds `dir` (its Dockerfile) with our CLI in chroot isolation and pushes it to `dest`. */
async function build(env: TestbedEnv, dir: string, dest: string): Promise<string> {
  const host = env.registries.plain.host;
  await using kanikoDir = await tempDir("kaniko-onbuild-dir-");
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      CLI,
      "--isolation",
      "chroot",
      "-c",
      dir,
      "-d",
      dest,
      "--insecure-registry",
      host,
      "--kaniko-dir",
      kanikoDir.path,
    ],
    env: { NO_COLOR: "1", DOCKER_CONFIG: env.dockerConfigDir },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(`building ${dest} failed (exit ${out.code}):\n${text}`);
  return text;
}

/** An image of the plain registry, copied to an OCI layout and unpacked by umoci. */
interface Pulled {
  config: ImageConfig;
  /** Reads a file of the unpacked root filesystem, or undefined when it is not there. */
  read(path: string): Promise<string | undefined>;
}

async function pull(env: TestbedEnv, ref: string, dir: string): Promise<Pulled> {
  await Deno.mkdir(dir, { recursive: true });
  const layout = join(dir, "oci");
  const copied = await skopeo(["copy", `docker://${ref}`, `oci:${layout}:img`], {
    env,
    src: "plain",
  });
  if (copied.code !== 0) throw new Error(`skopeo copy ${ref}: ${copied.stderr}`);
  const blob = (digest: string) => join(layout, "blobs", ...digest.split(":"));
  const index = JSON.parse(await Deno.readTextFile(join(layout, "index.json")));
  const manifest = JSON.parse(await Deno.readTextFile(blob(index.manifests[0].digest)));
  const config = JSON.parse(await Deno.readTextFile(blob(manifest.config.digest)));
  const bundle = join(dir, "bundle");
  const unpack = await new Deno.Command("umoci", {
    args: ["unpack", "--image", `${layout}:img`, bundle],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!unpack.success) {
    throw new Error(`umoci unpack ${ref}: ${new TextDecoder().decode(unpack.stderr)}`);
  }
  return {
    config,
    read: (path) => Deno.readTextFile(join(bundle, "rootfs", path)).catch(() => undefined),
  };
}

Deno.test({
  name: "a base image's ONBUILD triggers run first in a build FROM it, and are consumed",
  ignore: noEngine,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const env = await testbed();
    const host = env.registries.plain.host;
    await using tmp = await tempDir("kaniko-onbuild-");
    const baseRef = `${host}/onbuild/base:1`;
    const childRef = `${host}/onbuild/child-${crypto.randomUUID().slice(0, 8)}:1`;

    const baseDir = join(tmp.path, "base");
    await Deno.mkdir(baseDir);
    await Deno.writeTextFile(
      join(baseDir, "Dockerfile"),
      `FROM ${host}/library/busybox:latest\n` +
        "ONBUILD RUN echo triggered > /t\n" +
        "ONBUILD COPY x /x\n" +
        "RUN echo base > /base\n",
    );
    await build(env, baseDir, baseRef);
    const base = await pull(env, baseRef, join(tmp.path, "base-image"));
    assert.deepEqual(base.config.config?.OnBuild, ["RUN echo triggered > /t", "COPY x /x"]);
    assert.equal(await base.read("t"), undefined, "the base itself does not run its triggers");

    const childDir = join(tmp.path, "child");
    await Deno.mkdir(childDir);
    await Deno.writeTextFile(join(childDir, "x"), "from the child's context\n");
    // The child's own first step sees what the triggers made.
    await Deno.writeTextFile(
      join(childDir, "Dockerfile"),
      `FROM ${baseRef}\nRUN cat /t /x > /seen\n`,
    );
    await build(env, childDir, childRef);
    const child = await pull(env, childRef, join(tmp.path, "child-image"));
    assert.equal(await child.read("t"), "triggered\n");
    assert.equal(await child.read("x"), "from the child's context\n");
    assert.equal(await child.read("seen"), "triggered\nfrom the child's context\n");
    assert.equal(await child.read("base"), "base\n");
    const onBuild = child.config.config?.OnBuild;
    assert.ok(onBuild === undefined || onBuild === null || onBuild.length === 0, `${onBuild}`);
    const history = (child.config.history ?? []).map((h) => h.created_by ?? "");
    const trigger = history.findIndex((h) => h.includes("echo triggered > /t"));
    const own = history.findIndex((h) => h.includes("cat /t /x > /seen"));
    assert.ok(trigger >= 0 && own > trigger, history.join("\n"));
  },
});
