/**
 * Sparse roots (`sparseRoot` in lib/build/stage.ts): a stage that runs nothing and that no other
 * stage reads is built on its base's directories and symlinks only (plus /etc), and gives exactly
 * the image the full root gives.
 */
import assert from "node:assert/strict";
import { parseDockerfile } from "../../lib/dockerfile/parser.ts";
import { planBuild } from "../../lib/dockerfile/plan.ts";
import { sparseRoot } from "../../lib/build/stage.ts";
import type { BuildOptions } from "../../lib/cli/options.ts";
import {
  assertBuilt,
  build,
  destination,
  engine,
  inspect,
  noEngine,
  readImage,
  writeContext,
} from "./_engine.ts";

function sparse(
  lines: string[],
  { isolation = "chroot", singleSnapshot = false } = {},
): boolean[] {
  const plan = planBuild(parseDockerfile(lines.join("\n") + "\n", { file: "Dockerfile" }), {
    buildArgs: [],
    file: "Dockerfile",
    env: {},
    platform: "linux/amd64",
    buildPlatform: "linux/amd64",
  });
  const opts = { singleSnapshot } as BuildOptions;
  return plan.stages.map((stage) =>
    sparseRoot(stage, { isolation: isolation as "chroot" | "none", opts, plan })
  );
}

Deno.test("sparseRoot: only stages that run nothing and that nothing reads", () => {
  assert.deepEqual(sparse(["FROM busybox", "COPY a /a", "WORKDIR /w", "ENV X=1"]), [true]);
  assert.deepEqual(sparse(["FROM busybox", "COPY a /a", "RUN true"]), [false]);
  assert.deepEqual(sparse(["FROM busybox", "COPY a /a"], { isolation: "none" }), [false]);
  assert.deepEqual(sparse(["FROM busybox", "COPY a /a"], { singleSnapshot: true }), [false]);
  assert.deepEqual(
    sparse(["FROM busybox AS a", "COPY x /x", "FROM busybox", "COPY --from=a /x /y"]),
    [false, true],
  );
  assert.deepEqual(sparse(["FROM busybox AS a", "COPY x /x", "FROM a", "COPY y /y"]), [
    false,
    true,
  ]);
  assert.deepEqual(
    sparse(["FROM busybox AS a", "COPY x /x", "FROM busybox", "RUN --mount=from=a,target=/m true"]),
    [false, false],
  );
  assert.deepEqual(sparse(["FROM busybox", "ONBUILD RUN true", "COPY a /a"]), [true]);
});

const opts = { ignore: noEngine, sanitizeResources: false, sanitizeOps: false };

Deno.test(
  "a sparse root gives the image a full root gives: same layers, same config",
  opts,
  async () => {
    const e = await engine();
    const steps = `COPY --chown=nobody:nobody app/ /bin/app/
COPY one /bin/
COPY one /usr/local/share/one
WORKDIR /etc/conf.d
COPY --chmod=600 one ./
`;
    const files = { "app/a": "a\n", "app/sub/b": "b\n", one: "1\n" };
    // Stage 0 alone: sparse. The same stage with a later stage reading it: a full root.
    await using sparseCtx = await writeContext({
      Dockerfile: `FROM ${e.base}\n${steps}`,
      ...files,
    });
    await using fullCtx = await writeContext({
      Dockerfile: `FROM ${e.base} AS img\n${steps}\nFROM scratch\nCOPY --from=img /bin/one /\n`,
      ...files,
    });
    const sparseDest = destination(e, "sparse");
    const fullDest = destination(e, "full");
    const args = ["--reproducible"];
    assertBuilt(await build(e, sparseCtx.path, { destinations: [sparseDest], args }));
    assertBuilt(
      await build(e, fullCtx.path, { destinations: [fullDest], args: [...args, "--target=img"] }),
    );
    const [a, b] = [await inspect(e, sparseDest), await inspect(e, fullDest)];
    assert.deepEqual(
      a.manifest.layers.map((l: { digest: string }) => l.digest),
      b.manifest.layers.map((l: { digest: string }) => l.digest),
    );
    assert.equal(a.raw, b.raw);
    const img = await readImage(e, `docker://${sparseDest}`);
    assert.equal(img.tree.get("bin/app/sub/b")?.uid, 65534);
    assert.equal(img.tree.get("bin/busybox")?.type, "file"); // the base layer, untouched
    assert.equal(img.tree.get("etc/conf.d/one")?.mode, 0o600);
  },
);
