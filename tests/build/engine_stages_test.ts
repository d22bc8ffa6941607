/**
 * Stages and snapshots through real builds, read back with skopeo and umoci: FROM scratch, FROM
 * an image, FROM an earlier stage (its layers and history kept), COPY --from between stages,
 * each stage in its own root; `--target`; Kaniko builds every stage up to the target unless
 * `--skip-unused-stages`; files deleted in a later RUN become whiteouts (absent after unpacking),
 * a directory removed and made again becomes an opaque directory; `--single-snapshot` makes one
 * layer for the stage's own steps.
 */
import assert from "node:assert/strict";
import {
  assertBuilt,
  build,
  type BuildResult,
  engine,
  noEngine,
  type ReadImage,
  readImage,
  writeContext,
} from "./_engine.ts";

function dockerfile(base: string): string {
  return `FROM ${base} AS unused
RUN exit 3

FROM ${base} AS base
RUN mkdir -p /d/keep && echo old > /d/old && echo k > /d/keep/k && echo gone > /gone && echo b > /base-file
RUN rm /gone /bin/ls
# the new /d is made while the old one exists, so it surely has another inode
RUN mv /d /d.old && mkdir /d && rm -rf /d.old && echo new > /d/new

FROM scratch AS scratchy
COPY f.txt /f.txt
COPY --from=base /d/new /from-base

FROM base AS final
COPY --from=scratchy /f.txt /f-from-scratch
RUN echo more > /more

FROM ${base} AS after
RUN exit 4
`;
}

const builds = new Map<string, Promise<BuildResult & { img?: ReadImage }>>();

/** Builds the Dockerfile with `args` once and reads the image back when it succeeded. */
function variant(args: string[]): Promise<BuildResult & { img?: ReadImage }> {
  const key = args.join(" ");
  let p = builds.get(key);
  if (!p) {
    p = (async () => {
      const e = await engine();
      await using ctx = await writeContext({ Dockerfile: dockerfile(e.base), "f.txt": "f\n" });
      const b = await build(e, ctx.path, { args });
      if (b.code !== 0) return b;
      return { ...b, img: await readImage(e, `docker://${b.destination}`) };
    })();
    builds.set(key, p);
  }
  return p;
}

async function image(args: string[]): Promise<ReadImage> {
  const b = await variant(args);
  assertBuilt(b);
  return b.img!;
}

const FINAL = ["--target", "final", "--skip-unused-stages"];
const opts = { ignore: noEngine, sanitizeResources: false, sanitizeOps: false };

Deno.test(
  "without --skip-unused-stages every stage up to the target is built (Kaniko)",
  opts,
  async () => {
    const b = await variant(["--target", "final"]);
    assert.equal(b.code, 3, b.stderr);
    assert.match(b.stderr, /^error: Dockerfile:2: RUN exit 3: .*non-zero code: 3$/m);
  },
);

Deno.test(
  "--skip-unused-stages builds only what the target needs; later stages never",
  opts,
  async () => {
    const img = await image(FINAL);
    assert.equal(img.text("more"), "more\n");
    assert.doesNotMatch(JSON.stringify(img.config.history), /exit [34]/);
  },
);

Deno.test("a deleted file is a whiteout and absent after unpacking", opts, async () => {
  const img = await image(FINAL);
  assert.equal(img.tree.get("gone"), undefined);
  assert.equal(img.tree.get("bin/ls"), undefined);
  assert.equal(img.tree.get("bin/cat")?.type, "symlink", "the rest of /bin is kept");
  const layer = img.layers.find((l) => l.names.includes(".wh.gone"));
  assert.ok(layer, "no layer with .wh.gone");
  assert.ok(layer.names.includes("bin/.wh.ls"), layer.names.join(" "));
});

Deno.test(
  "a directory removed and made again is opaque: only its new entries remain",
  opts,
  async () => {
    const img = await image(FINAL);
    assert.equal(img.text("d/new"), "new\n");
    for (const p of ["d/old", "d/keep", "d/keep/k"]) assert.equal(img.tree.get(p), undefined, p);
    const layer = img.layers.find((l) => l.names.includes("d/new"));
    assert.ok(layer?.names.includes("d/.wh..wh..opq"), layer?.names.join(" "));
  },
);

Deno.test(
  "FROM an earlier stage keeps its layers and history; COPY --from between stages",
  opts,
  async () => {
    const [base, final] = await Promise.all([
      image(["--target", "base", "--skip-unused-stages"]),
      image(FINAL),
    ]);
    assert.equal(final.text("base-file"), "b\n");
    assert.equal(final.text("f-from-scratch"), "f\n");
    // The busybox layer is the same blob; the stage's own layers follow, then the final's two.
    assert.equal(final.manifest.layers[0].digest, base.manifest.layers[0].digest);
    assert.equal(final.manifest.layers.length, base.manifest.layers.length + 2);
    const steps = (img: ReadImage) =>
      img.config.history.map((h: { created_by: string }) => h.created_by);
    assert.deepEqual(steps(final).slice(0, steps(base).length), steps(base));
  },
);

Deno.test("FROM scratch: only the stage's own files and a default PATH", opts, async () => {
  const img = await image(["--target", "scratchy", "--skip-unused-stages"]);
  assert.deepEqual([...img.tree.keys()].sort(), ["f.txt", "from-base"]);
  assert.equal(img.text("from-base"), "new\n");
  assert.equal(img.manifest.layers.length, 2);
  assert.deepEqual(img.config.config.Env, [
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  ]);
  assert.equal(img.config.architecture, "amd64");
  assert.equal(img.config.os, "linux");
});

Deno.test("--single-snapshot: one layer for the stage's steps, same files", opts, async () => {
  const [single, layered] = await Promise.all([
    image(["--target", "base", "--skip-unused-stages", "--single-snapshot"]),
    image(["--target", "base", "--skip-unused-stages"]),
  ]);
  assert.equal(single.manifest.layers.length, 2);
  assert.equal(layered.manifest.layers.length, 4);
  assert.equal(single.manifest.layers[0].digest, layered.manifest.layers[0].digest);
  const history: Array<{ created_by: string; empty_layer?: boolean }> = single.config.history;
  assert.equal(history.filter((h) => !h.empty_layer).length, 2);
  assert.ok(history.filter((h) => h.created_by.startsWith("RUN ")).every((h) => h.empty_layer));
  const shape = (img: ReadImage) =>
    [...img.tree].map(([p, t]) => `${p} ${t.type} ${t.mode} ${t.sha256 ?? t.link ?? ""}`).sort();
  assert.deepEqual(shape(single), shape(layered));
  assert.equal(single.tree.get("d/old"), undefined);
  assert.ok(single.layers[1].names.includes("bin/.wh.ls"), single.layers[1].names.join(" "));
});
