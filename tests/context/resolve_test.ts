/**
 * COPY/ADD source resolution inside a context: clamping, globs, symlinks (followed inside,
 * refused outside), .dockerignore visibility and exceptions, and the sorted walk.
 */
import assert from "node:assert/strict";
import {
  type BuildContext,
  prepareContext,
  realPath,
  resolveSources,
  walkContext,
} from "../../lib/context/mod.ts";
import { rejects } from "../_helpers.ts";

interface Fixture {
  base: string;
  dir: string;
  outside: string;
}

/** A context directory with files, directories and symlinks, next to an "outside" directory. */
async function fixture(ignore?: string): Promise<Fixture> {
  const base = await Deno.realPath(await Deno.makeTempDir({ prefix: "ctx-resolve-" }));
  const dir = `${base}/ctx`;
  const outside = `${base}/outside`;
  const files: Record<string, string> = {
    "Dockerfile": "FROM scratch\n",
    "a.txt": "a",
    "b.txt": "b",
    "c.md": "c",
    "README.md": "readme",
    "src/main.go": "package main",
    "src/util/u.go": "package util",
    "src/util/u_test.go": "package util",
    "docs/guide.md": "guide",
    "build/out.o": "obj",
    "build/keep/important.txt": "keep",
    "build/other/x": "x",
    "weird/a*b": "star",
    "weird/[x]": "bracket",
  };
  for (const [name, text] of Object.entries(files)) {
    await Deno.mkdir(`${dir}/${name}`.replace(/\/[^/]*$/, ""), { recursive: true });
    await Deno.writeTextFile(`${dir}/${name}`, text);
  }
  await Deno.mkdir(outside);
  await Deno.writeTextFile(`${outside}/secret`, "secret");
  await Deno.symlink("src", `${dir}/linkdir`);
  await Deno.symlink("a.txt", `${dir}/link.txt`);
  await Deno.symlink(`${dir}/b.txt`, `${dir}/abslink-inside.txt`);
  await Deno.symlink(`${outside}/secret`, `${dir}/escape-abs`);
  await Deno.symlink("../outside", `${dir}/escape-rel`);
  await Deno.symlink("src/../../outside/secret", `${dir}/escape-sneaky`);
  await Deno.symlink("loop2", `${dir}/loop1`);
  await Deno.symlink("loop1", `${dir}/loop2`);
  await Deno.symlink("missing-target", `${dir}/dangling`);
  if (ignore !== undefined) await Deno.writeTextFile(`${dir}/.dockerignore`, ignore);
  return { base, dir, outside };
}

async function withContext(
  ignore: string | undefined,
  fn: (ctx: BuildContext, f: Fixture) => Promise<void>,
): Promise<void> {
  const f = await fixture(ignore);
  try {
    await using ctx = await prepareContext(f.dir);
    await fn(ctx, f);
  } finally {
    await Deno.remove(f.base, { recursive: true });
  }
}

Deno.test("resolveSources: literal paths are cleaned and clamped to the root", async () => {
  await withContext(undefined, async (ctx) => {
    assert.deepEqual(await resolveSources(ctx, "a.txt"), ["a.txt"]);
    assert.deepEqual(await resolveSources(ctx, "./src/../a.txt"), ["a.txt"]);
    assert.deepEqual(await resolveSources(ctx, "../../../a.txt"), ["a.txt"]);
    assert.deepEqual(await resolveSources(ctx, "/a.txt"), ["a.txt"]);
    assert.deepEqual(await resolveSources(ctx, "."), ["."]);
    assert.deepEqual(await resolveSources(ctx, "/"), ["."]);
    assert.deepEqual(await resolveSources(ctx, "src/"), ["src"]);
    // As in BuildKit, an escaped wildcard makes the path literal, backslash included.
    assert.equal((await rejects(resolveSources(ctx, "weird/a\\*b"))).code, "SOURCE_NOT_FOUND");
  });
});

Deno.test("resolveSources: globs match per segment with Go semantics, sorted", async () => {
  await withContext(undefined, async (ctx) => {
    assert.deepEqual(await resolveSources(ctx, "*.txt"), [
      "a.txt",
      "abslink-inside.txt",
      "b.txt",
      "link.txt",
    ]);
    assert.deepEqual(await resolveSources(ctx, "[ab].txt"), ["a.txt", "b.txt"]);
    assert.deepEqual(await resolveSources(ctx, "[^a].txt"), ["b.txt"]);
    assert.deepEqual(await resolveSources(ctx, "?.md"), ["c.md"]);
    assert.deepEqual(await resolveSources(ctx, "src/*/*.go"), [
      "src/util/u.go",
      "src/util/u_test.go",
    ]);
    assert.deepEqual(await resolveSources(ctx, "*/util"), ["src/util"]);
    assert.deepEqual(await resolveSources(ctx, "/../src/*.go"), ["src/main.go"]);
    assert.deepEqual(await resolveSources(ctx, "weird/*"), ["weird/[x]", "weird/a*b"]);
    assert.deepEqual(await resolveSources(ctx, "weird/[[]x]"), ["weird/[x]"]);
    assert.deepEqual(await resolveSources(ctx, "weird/a[*]b"), ["weird/a*b"]);
    assert.deepEqual(await resolveSources(ctx, "nothing*"), []); // an empty wildcard is allowed
    // The directories before the first wildcard may be symlinks inside the root: real paths.
    assert.deepEqual(await resolveSources(ctx, "linkdir/*.go"), ["src/main.go"]);
    // Below the wildcard nothing is followed (as filepath.Walk): linkdir is not a directory there.
    assert.deepEqual(await resolveSources(ctx, "l*/main.go"), []);
  });
});

Deno.test("resolveSources: a bad pattern is one clear error", async () => {
  await withContext(undefined, async (ctx) => {
    const err = await rejects(resolveSources(ctx, "src/[a-"));
    assert.match(err.message, /invalid source pattern "src\/\[a-": syntax error in pattern/);
  });
});

Deno.test("resolveSources: missing sources are SOURCE_NOT_FOUND", async () => {
  await withContext(undefined, async (ctx, f) => {
    const err = await rejects(resolveSources(ctx, "nope.txt"));
    assert.equal(err.code, "SOURCE_NOT_FOUND");
    assert.equal(err.message, `"nope.txt": not found in the build context ${f.dir}`);
    assert.equal((await rejects(resolveSources(ctx, "dangling"))).code, "SOURCE_NOT_FOUND");
    assert.equal((await rejects(resolveSources(ctx, "a.txt/x"))).code, "SOURCE_NOT_FOUND");
  });
});

Deno.test("symlinks: followed inside the root, escapes refused, loops stopped", async () => {
  await withContext(undefined, async (ctx, f) => {
    assert.deepEqual(await resolveSources(ctx, "link.txt"), ["link.txt"]);
    assert.equal(realPath(ctx, "link.txt"), `${f.dir}/a.txt`);
    assert.equal(realPath(ctx, "abslink-inside.txt"), `${f.dir}/b.txt`);
    assert.equal(realPath(ctx, "linkdir/util/u.go"), `${f.dir}/src/util/u.go`);
    for (
      const [path, link] of [
        ["escape-abs", "escape-abs"],
        ["escape-rel/secret", "escape-rel"],
        ["escape-sneaky", "escape-sneaky"],
      ]
    ) {
      const err = await rejects(resolveSources(ctx, path));
      assert.equal(err.code, "SOURCE_ESCAPES_CONTEXT", path);
      assert.match(
        err.message,
        new RegExp(`leads outside the build context .*the symlink "${link}"`),
      );
      assert.match(err.hint ?? "", /only read files inside the context/);
    }
    assert.throws(() => realPath(ctx, "escape-abs"), /leads outside the build context/);
    const loop = await rejects(resolveSources(ctx, "loop1"));
    assert.match(loop.message, /too many levels of symbolic links/);
    // A glob lists escaping links without following them; reading one is refused.
    assert.deepEqual(await resolveSources(ctx, "escape-*"), [
      "escape-abs",
      "escape-rel",
      "escape-sneaky",
    ]);
  });
});

Deno.test("symlinks: an absolute target through another name of the root is inside", async () => {
  const f = await fixture();
  try {
    await Deno.symlink(f.dir, `${f.base}/alias`);
    await Deno.symlink(`${f.base}/alias/a.txt`, `${f.dir}/via-alias`);
    await using ctx = await prepareContext(`${f.base}/alias`);
    assert.equal(ctx.root, f.dir);
    assert.equal(realPath(ctx, "via-alias"), `${f.dir}/a.txt`);
    assert.throws(() => realPath(ctx, "escape-abs"), /leads outside/);
  } finally {
    await Deno.remove(f.base, { recursive: true });
  }
});

Deno.test(".dockerignore: excluded sources are invisible, exceptions re-include", async () => {
  const ignore = "*.md\n!README.md\nbuild\n!build/keep\nlink.txt\nsrc/util\n";
  await withContext(ignore, async (ctx) => {
    assert.deepEqual(await resolveSources(ctx, "*.md"), ["README.md"]);
    const err = await rejects(resolveSources(ctx, "c.md"));
    assert.equal(err.code, "SOURCE_NOT_FOUND");
    assert.match(err.hint ?? "", /\.dockerignore/);
    // build is excluded but holds build/keep: it exists (only with what is re-included).
    assert.deepEqual(await resolveSources(ctx, "build"), ["build"]);
    assert.deepEqual(await resolveSources(ctx, "build/*"), ["build/keep"]);
    assert.equal((await rejects(resolveSources(ctx, "build/out.o"))).code, "SOURCE_NOT_FOUND");
    // An excluded symlink cannot be followed, and what it points to through it is excluded too.
    assert.equal((await rejects(resolveSources(ctx, "link.txt"))).code, "SOURCE_NOT_FOUND");
    assert.equal(
      (await rejects(resolveSources(ctx, "linkdir/util/u.go"))).code,
      "SOURCE_NOT_FOUND",
    );
    assert.deepEqual(await resolveSources(ctx, "linkdir/*"), ["src/main.go"]);
    // The Dockerfile is not excluded here, so COPY sees it (as in BuildKit).
    assert.deepEqual(await resolveSources(ctx, "Dockerfile"), ["Dockerfile"]);
  });
});

Deno.test(".dockerignore: Dockerfile and .dockerignore are hidden from COPY only when listed", async () => {
  await withContext("Dockerfile\n.dockerignore\n", async (ctx) => {
    assert.equal((await rejects(resolveSources(ctx, "Dockerfile"))).code, "SOURCE_NOT_FOUND");
    assert.equal((await rejects(resolveSources(ctx, ".dockerignore"))).code, "SOURCE_NOT_FOUND");
    const names = [];
    for await (const e of walkContext(ctx, ".")) names.push(e.path);
    assert.ok(!names.includes("Dockerfile") && !names.includes(".dockerignore"));
  });
  await withContext("*.md\n", async (ctx) => {
    assert.deepEqual(await resolveSources(ctx, ".dockerignore"), [".dockerignore"]);
  });
});

Deno.test("walkContext: sorted, parents first, ignored entries skipped, links not followed", async () => {
  const ignore = "*.md\n!README.md\nbuild\n!build/keep/important.txt\nweird\nloop*\n";
  await withContext(ignore, async (ctx, f) => {
    const entries = [];
    for await (const e of walkContext(ctx, ".")) entries.push(e);
    const paths = entries.map((e) => e.path);
    assert.deepEqual(paths, [
      ".dockerignore",
      "Dockerfile",
      "README.md",
      "a.txt",
      "abslink-inside.txt",
      "b.txt",
      "build",
      "build/keep",
      "build/keep/important.txt",
      "dangling",
      "docs",
      "docs/guide.md",
      "escape-abs",
      "escape-rel",
      "escape-sneaky",
      "link.txt",
      "linkdir",
      "src",
      "src/main.go",
      "src/util",
      "src/util/u.go",
      "src/util/u_test.go",
    ]);
    const byPath = new Map(entries.map((e) => [e.path, e]));
    assert.equal(byPath.get("linkdir")!.info.isSymlink, true);
    assert.equal(byPath.get("escape-abs")!.info.isSymlink, true);
    assert.equal(byPath.get("build")!.info.isDirectory, true);
    assert.equal(byPath.get("src/main.go")!.absolute, `${f.dir}/src/main.go`);
    assert.equal(byPath.get("src/main.go")!.relative, "src/main.go");
  });
});

Deno.test("walkContext: a sub-directory, through a symlink, with relative paths", async () => {
  await withContext("src/util/*_test.go\n", async (ctx) => {
    const entries = [];
    for await (const e of walkContext(ctx, "linkdir")) entries.push([e.path, e.relative]);
    assert.deepEqual(entries, [
      ["src/main.go", "main.go"],
      ["src/util", "util"],
      ["src/util/u.go", "util/u.go"],
    ]);
    const err = await rejects((async () => {
      for await (const _ of walkContext(ctx, "a.txt")) { /* not a directory */ }
    })());
    assert.match(err.message, /"a\.txt" is not a directory in the build context/);
    const escape = await rejects((async () => {
      for await (const _ of walkContext(ctx, "escape-rel")) { /* refused */ }
    })());
    assert.equal(escape.code, "SOURCE_ESCAPES_CONTEXT");
  });
});

Deno.test("walkContext: an excluded directory without exceptions is not entered", async () => {
  await withContext("docs\n", async (ctx, f) => {
    await Deno.chmod(`${f.dir}/docs`, 0o000); // unreadable: entering it would fail for non-root
    try {
      const paths = [];
      for await (const e of walkContext(ctx, ".")) paths.push(e.path);
      assert.ok(!paths.some((p) => p.startsWith("docs")));
    } finally {
      await Deno.chmod(`${f.dir}/docs`, 0o755);
    }
  });
});
