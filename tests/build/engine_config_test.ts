/**
 * Image config semantics through real builds, read back with `skopeo inspect --raw --config`:
 * ENV (replaced in place), ARG (not persisted), LABEL and `--label`, EXPOSE (ranges, protocols),
 * VOLUME, USER, STOPSIGNAL, HEALTHCHECK (and NONE), ONBUILD stored — and run, then cleared, by a
 * stage built on it — CMD/ENTRYPOINT (shell form wrapped; ENTRYPOINT resets an inherited CMD but
 * keeps one set in the stage), MAINTAINER, WORKDIR; metadata-only steps add no layer;
 * `--custom-platform` picks the base image's platform and is recorded in the config.
 */
import assert from "node:assert/strict";
import {
  assertBuilt,
  build,
  engine,
  noEngine,
  type ReadImage,
  readImage,
  writeContext,
} from "./_engine.ts";

function dockerfile(base: string): string {
  return `FROM ${base} AS meta
ENV A=1 B="two words"
ENV A=3
ARG BA=argval
LABEL l1=v1 "l 2"="v 2"
EXPOSE 80 53/udp 8000-8001
VOLUME /data
VOLUME ["/vol2", "/vol3"]
USER 1000:1000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=2s --retries=3 CMD wget -q http://localhost/
ONBUILD RUN echo triggered > /tmp/onbuild
ONBUILD ENV FROMTRIGGER=yes
MAINTAINER Some One <some@one>
ENTRYPOINT echo ep
WORKDIR /w

FROM meta AS child
USER root
RUN test -f /tmp/onbuild && echo "$FROMTRIGGER" > /trigger-env
HEALTHCHECK NONE
CMD ["x"]
ENTRYPOINT ["/bin/echo"]
LABEL l1=overridden
`;
}

const images = new Map<string, Promise<ReadImage>>();

/** Builds `--target target` of the Dockerfile once (with `--label extra=1`) and reads it back. */
function target(target: "meta" | "child"): Promise<ReadImage> {
  let p = images.get(target);
  if (!p) {
    p = (async () => {
      const e = await engine();
      await using ctx = await writeContext({ Dockerfile: dockerfile(e.base) });
      const b = await build(e, ctx.path, { args: ["--target", target, "--label", "extra=1"] });
      assertBuilt(b);
      return await readImage(e, `docker://${b.destination}`);
    })();
    images.set(target, p);
  }
  return p;
}

const opts = { ignore: noEngine, sanitizeResources: false, sanitizeOps: false };

Deno.test("ENV replaces in place; ARG is not persisted; LABEL and --label", opts, async () => {
  const { config } = await target("meta");
  assert.deepEqual(config.config.Env, [
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "A=3",
    "B=two words",
  ]);
  assert.deepEqual(config.config.Labels, { l1: "v1", "l 2": "v 2", extra: "1" });
  assert.equal(config.os, "linux");
  assert.equal(config.architecture, "amd64");
});

Deno.test("EXPOSE, VOLUME, USER, STOPSIGNAL, HEALTHCHECK, MAINTAINER, WORKDIR", opts, async () => {
  const { config } = await target("meta");
  const c = config.config;
  assert.deepEqual(c.ExposedPorts, {
    "80/tcp": {},
    "53/udp": {},
    "8000/tcp": {},
    "8001/tcp": {},
  });
  assert.deepEqual(c.Volumes, { "/data": {}, "/vol2": {}, "/vol3": {} });
  assert.equal(c.User, "1000:1000");
  assert.equal(c.StopSignal, "SIGTERM");
  assert.deepEqual(c.Healthcheck, {
    Test: ["CMD-SHELL", "wget -q http://localhost/"],
    Interval: 5_000_000_000,
    Timeout: 2_000_000_000,
    Retries: 3,
  });
  assert.equal(config.author, "Some One <some@one>");
  assert.equal(c.WorkingDir, "/w");
});

Deno.test(
  "ONBUILD is stored (history as written); shell-form ENTRYPOINT is wrapped and resets the base's CMD",
  opts,
  async () => {
    const { config } = await target("meta");
    const c = config.config;
    assert.deepEqual(c.OnBuild, ["RUN echo triggered > /tmp/onbuild", "ENV FROMTRIGGER=yes"]);
    assert.deepEqual(c.Entrypoint, ["/bin/sh", "-c", "echo ep"]);
    const steps = config.history.map((h: { created_by: string }) => h.created_by);
    assert.ok(steps.includes("ONBUILD RUN echo triggered > /tmp/onbuild"), steps.join("\n"));
    assert.ok(steps.includes("ONBUILD ENV FROMTRIGGER=yes"), steps.join("\n"));
    assert.ok(steps.includes("MAINTAINER Some One <some@one>"), steps.join("\n"));
    assert.ok(
      c.Cmd === undefined || c.Cmd === null,
      `busybox's CMD kept: ${JSON.stringify(c.Cmd)}`,
    );
  },
);

Deno.test(
  "metadata-only steps add no layer (history empty_layer); WORKDIR /w adds one",
  opts,
  async () => {
    const img = await target("meta");
    const history: Array<{ created_by: string; empty_layer?: boolean }> = img.config.history;
    const own = history.slice(1);
    assert.equal(own.length, 15);
    for (const h of own) {
      assert.equal(!!h.empty_layer, !h.created_by.startsWith("WORKDIR"), h.created_by);
    }
    assert.equal(img.manifest.layers.length, 2);
    assert.deepEqual(img.layers[1].names, ["w/"]);
  },
);

Deno.test(
  "a stage built on a stage with ONBUILD runs its triggers first, then clears them",
  opts,
  async () => {
    const img = await target("child");
    assert.equal(img.text("tmp/onbuild"), "triggered\n");
    assert.equal(img.text("trigger-env"), "yes\n");
    const c = img.config.config;
    assert.ok(!c.OnBuild?.length, `triggers inherited: ${JSON.stringify(c.OnBuild)}`);
    assert.ok(c.Env.includes("FROMTRIGGER=yes"));
  },
);

Deno.test(
  "a stage built on a stage keeps its layers and history; CMD set in the stage survives ENTRYPOINT",
  opts,
  async () => {
    const [meta, child] = await Promise.all([target("meta"), target("child")]);
    const c = child.config.config;
    assert.deepEqual(c.Cmd, ["x"]);
    assert.deepEqual(c.Entrypoint, ["/bin/echo"]);
    assert.deepEqual(c.Healthcheck, { Test: ["NONE"] });
    assert.equal(c.User, "root");
    assert.equal(c.Labels.l1, "overridden");
    // The base layer is shared; the WORKDIR layer is rebuilt in the second build (new mtimes).
    assert.equal(child.manifest.layers[0].digest, meta.manifest.layers[0].digest);
    assert.deepEqual(child.layers[1].names, ["w/"]);
    const metaSteps = meta.config.history.map((h: { created_by: string }) => h.created_by);
    const childSteps = child.config.history.map((h: { created_by: string }) => h.created_by);
    assert.deepEqual(childSteps.slice(0, metaSteps.length), metaSteps);
  },
);

Deno.test(
  "--custom-platform linux/arm64: the base's arm64 image and an arm64/v8 config",
  opts,
  async () => {
    const e = await engine();
    await using ctx = await writeContext({
      Dockerfile: `FROM ${e.base}\nCOPY f /f\nENV A=1\n`,
      f: "f\n",
    });
    const b = await build(e, ctx.path, { args: ["--custom-platform", "linux/arm64"] });
    assertBuilt(b);
    const img = await readImage(e, `docker://${b.destination}`);
    const arm64 = e.env.busybox.arches.find((a) => a.tag === "arm64")!;
    assert.equal(img.manifest.layers[0].digest, arm64.layer);
    assert.deepEqual(
      [img.config.os, img.config.architecture, img.config.variant],
      ["linux", "arm64", "v8"],
    );
    assert.equal(img.text("f"), "f\n");
  },
);
