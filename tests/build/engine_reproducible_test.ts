/**
 * Reproducible builds: `--reproducible` and `SOURCE_DATE_EPOCH` give byte-identical manifests
 * (same digest) for two builds of the same Dockerfile and context content — the context written
 * afresh (other mtimes) and the RUN's files created at other times — with the base image's layer
 * reused as it is (not re-tarred), and timestamps pinned to the epoch.
 */
import assert from "node:assert/strict";
import {
  assertBuilt,
  build,
  destination,
  type Engine,
  engine,
  inspect,
  noEngine,
  readImage,
  writeContext,
} from "./_engine.ts";

const opts = { ignore: noEngine, sanitizeResources: false, sanitizeOps: false };
const EPOCH = 1_700_000_000;

/** Writes the context anew and builds it; returns the pushed manifest (raw) and the destination. */
async function buildOnce(e: Engine, args: string[], env: Record<string, string> = {}) {
  await using ctx = await writeContext({
    Dockerfile: `FROM ${e.base}
COPY src/ /src/
RUN mkdir -p /made/deep && echo fixed > /made/deep/f && rm /src/drop && echo x > /made/x
RUN echo "$(cat /made/x)y" > /made/xy
WORKDIR /work
ENV K=v
`,
    "src/a": "a\n",
    "src/sub/b": "b\n",
    "src/drop": "dropped\n",
  });
  const dest = destination(e, "repro");
  const b = await build(e, ctx.path, { destinations: [dest], args, env });
  assertBuilt(b);
  return { dest, raw: (await inspect(e, dest)).raw };
}

Deno.test(
  "--reproducible: two builds give the same manifest bytes; base layer reused",
  opts,
  async () => {
    const e = await engine();
    const first = await buildOnce(e, ["--reproducible"]);
    const second = await buildOnce(e, ["--reproducible"]);
    assert.equal(second.raw, first.raw);
    const img = await readImage(e, `docker://${first.dest}`);
    const amd64 = e.env.busybox.arches.find((a) => a.tag === "amd64")!;
    assert.equal(img.manifest.layers[0].digest, amd64.layer, "the base layer was re-tarred");
    assert.equal(img.config.created, "1970-01-01T00:00:00Z");
    for (const h of img.config.history.slice(1)) assert.equal(h.created, "1970-01-01T00:00:00Z");
    for (const p of ["src/a", "made/xy", "work"]) assert.equal(img.tree.get(p)?.mtime, 0, p);
    assert.equal(img.tree.get("src/drop"), undefined);
  },
);

Deno.test(
  "SOURCE_DATE_EPOCH: two builds give the same manifest; times are the epoch",
  opts,
  async () => {
    const e = await engine();
    const env = { SOURCE_DATE_EPOCH: String(EPOCH) };
    const first = await buildOnce(e, [], env);
    const second = await buildOnce(e, [], env);
    assert.equal(second.raw, first.raw);
    const img = await readImage(e, `docker://${first.dest}`);
    const created = new Date(EPOCH * 1000).toISOString().replace(".000Z", "Z");
    assert.equal(img.config.created, created);
    for (const h of img.config.history.slice(1)) assert.equal(h.created, created);
    for (const p of ["src/a", "src/sub/b", "made/deep", "made/xy", "work"]) {
      assert.equal(img.tree.get(p)?.mtime, EPOCH, p);
    }
  },
);
