/** cleanPath and resolveDir: lexical cleaning and chroot-style resolution inside a root. */
import assert from "node:assert/strict";
import {
  childPath,
  cleanPath,
  isWithin,
  joinRoot,
  MAX_SYMLINKS,
  resolveDir,
  ResolveError,
  splitPath,
} from "../../lib/rootfs/safe_path.ts";

Deno.test("cleanPath: layer names (absolute stripped, .. resolved unless it escapes)", () => {
  const cases: [string, string | undefined, string?][] = [
    ["a/b", "a/b"],
    ["./a//b/", "a/b"],
    ["/etc/passwd", "etc/passwd"],
    ["//etc/../x", "x"],
    [".", ""],
    ["./", ""],
    ["/", ""],
    ["", ""],
    ["a/..", ""],
    ["a/../b/./c/..", "b"],
    ["..", undefined, "escape"],
    ["../x", undefined, "escape"],
    ["a/../../x", undefined, "escape"],
    ["/../etc", undefined, "escape"],
    ["a\0b", undefined, "nul"],
    ["...", "..."],
    [".wh...", ".wh..."],
  ];
  for (const [name, path, problem] of cases) {
    const r = cleanPath(name);
    assert.equal(r.path, path, name);
    assert.equal(r.problem, problem, name);
  }
});

Deno.test("cleanPath: context rules (absolute and any .. refused)", () => {
  const strict = { absolute: "refuse", dotdot: "refuse" } as const;
  assert.equal(cleanPath("/x", strict).problem, "absolute");
  assert.equal(cleanPath("a/../b", strict).problem, "dotdot");
  assert.equal(cleanPath("./a/b/", strict).path, "a/b");
  assert.equal(cleanPath("x\0", strict).problem, "nul");
});

Deno.test("path helpers", () => {
  assert.equal(joinRoot("/r", ""), "/r");
  assert.equal(joinRoot("/r", "a/b"), "/r/a/b");
  assert.equal(joinRoot("/", "etc"), "/etc");
  assert.deepEqual(splitPath("a/b/c"), { parent: "a/b", base: "c" });
  assert.deepEqual(splitPath("a"), { parent: "", base: "a" });
  assert.equal(childPath("", "a"), "a");
  assert.equal(childPath("a", "b"), "a/b");
  assert.ok(isWithin("a/b", "a") && isWithin("a", "a") && isWithin("x", ""));
  assert.ok(!isWithin("ab", "a"));
});

Deno.test("resolveDir: symlinks are followed inside the root, never out of it", async () => {
  const root = await Deno.makeTempDir({ prefix: "safe-path-" });
  try {
    await Deno.mkdir(`${root}/usr/lib`, { recursive: true });
    await Deno.writeTextFile(`${root}/file`, "f");
    Deno.symlinkSync("usr/lib", `${root}/lib`);
    Deno.symlinkSync("/usr/lib", `${root}/lib-abs`);
    Deno.symlinkSync("../../../../..", `${root}/usr/up`);
    Deno.symlinkSync("/", `${root}/slash`);
    Deno.symlinkSync("/etc", `${root}/etc-host`);
    Deno.symlinkSync("loop2", `${root}/loop1`);
    Deno.symlinkSync("loop1", `${root}/loop2`);
    Deno.symlinkSync("file", `${root}/to-file`);
    Deno.symlinkSync("missing/../usr", `${root}/via-missing`);

    assert.deepEqual(resolveDir(root, ""), { path: "", existing: 0 });
    assert.deepEqual(resolveDir(root, "lib/x86_64"), { path: "usr/lib/x86_64", existing: 2 });
    assert.deepEqual(resolveDir(root, "lib-abs"), { path: "usr/lib", existing: 2 });
    assert.deepEqual(resolveDir(root, "usr/up/usr"), { path: "usr", existing: 1 });
    assert.deepEqual(resolveDir(root, "slash/slash/lib"), { path: "usr/lib", existing: 2 });
    assert.deepEqual(resolveDir(root, "etc-host/ssl"), { path: "etc/ssl", existing: 0 });
    assert.deepEqual(resolveDir(root, "new/a/../b"), { path: "new/b", existing: 0 });
    assert.deepEqual(resolveDir(root, "via-missing"), { path: "usr", existing: 1 });
    const known = new Set(["usr", "usr/lib"]);
    assert.deepEqual(resolveDir(root, "usr/lib/z", { knownDirs: known }), {
      path: "usr/lib/z",
      existing: 2,
    });

    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        assert.ok(e instanceof ResolveError);
        return e;
      }
      assert.fail("expected a ResolveError");
    };
    assert.equal(err(() => resolveDir(root, "loop1/x")).reason, "loop");
    assert.match(err(() => resolveDir(root, "loop1")).message, /too many levels/);
    assert.deepEqual(
      [err(() => resolveDir(root, "file/x")).reason, err(() => resolveDir(root, "file/x")).at],
      ["notdir", "file"],
    );
    assert.equal(err(() => resolveDir(root, "to-file/x")).reason, "notdir");
    assert.equal(err(() => resolveDir(root, "lib", { symlinks: "refuse" })).reason, "symlink");
    assert.equal(MAX_SYMLINKS, 40);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
