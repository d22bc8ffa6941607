/**
 * The buildah comparison suite (`scripts/compare_buildah.ts`): the same Dockerfiles and contexts
 * (`tests/compare/corpus/`) built by buildah 1.28 (vfs, chroot isolation) and by our CLI (chroot
 * isolation), both pushed to the test bed's plain registry, read back with skopeo + umoci and
 * diffed file by file and config field by field; the accepted differences are the documented
 * rules of `_flatten.ts` (KNOWN_DIFFERENCES).
 *
 * The whole corpus takes several minutes (buildah's COPY is slow), so by default a representative
 * subset runs ({@link SUBSET}, one case per area); `COMPARE_CASES=all` (or a comma-separated list)
 * runs more. {@link KNOWN_BUGS} are cases that still differ because of an open bug of ours: they
 * must keep failing (so a fix is noticed and the entry removed). Skipped without root, buildah,
 * skopeo or umoci. The flattening and the rules themselves are unit-tested first, without buildah.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  compareImages,
  type FlatEntry,
  type FlatImage,
  type FlatTree,
  formatDifference,
  normaliseConfig,
  walkTree,
} from "./_flatten.ts";
import {
  type CaseResult,
  compareCorpus,
  CORPUS_DIR,
  formatResult,
  listCases,
} from "../../scripts/compare_buildah.ts";
import { testbed } from "../_testbed.ts";

/** One case per area; together about a minute and a half on an idle 2-core machine. */
const SUBSET = [
  "run-create-delete", // RUN adds, changes, deletes (also base files)
  "run-links", // symlinks, hardlinks (a link count change alone is no change)
  "rm-rf-recreate", // whiteouts and re-created directories
  "run-setuid", // setuid/setgid/sticky
  "copy-chown-chmod", // COPY --chown by name/id, --chmod, special bits
  "dockerignore",
  "add-archives", // ADD of local archives
  "multistage-scratch", // COPY --from into FROM scratch
  "metadata", // config fields
  "healthcheck-shell-onbuild",
  "heredoc-copy",
  "heredoc-run",
  "run-mounts",
];

/** Cases that differ because of a bug of ours that is not fixed yet: case → bug. */
const KNOWN_BUGS: Record<string, string> = {};

function have(cmd: string): boolean {
  try {
    return new Deno.Command(cmd, { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

const canCompare = Deno.uid() === 0 && ["buildah", "skopeo", "umoci"].every(have);

function selectedCases(): string[] {
  const all = listCases(CORPUS_DIR);
  const env = Deno.env.get("COMPARE_CASES");
  if (!env) return SUBSET;
  if (env === "all") return all;
  const cases = env.split(",").map((c) => c.trim()).filter((c) => c !== "");
  for (const c of cases) assert.ok(all.includes(c), `COMPARE_CASES: no case ${c}`);
  return cases;
}

Deno.test("the corpus: at least 25 cases, each with a Dockerfile starting ARG BASE / FROM", () => {
  const cases = listCases(CORPUS_DIR);
  assert.ok(cases.length >= 25, `${cases.length} cases`);
  for (const c of [...SUBSET, ...Object.keys(KNOWN_BUGS)]) assert.ok(cases.includes(c), c);
  for (const c of cases) {
    assert.match(c, /^[a-z0-9]+(-[a-z0-9]+)*$/, "case names are repository-name safe");
    const df = Deno.readTextFileSync(join(CORPUS_DIR, c, "Dockerfile"));
    assert.match(df, /^ARG BASE$/m, `${c}: ARG BASE`);
    assert.match(df, /^FROM \$BASE\b/m, `${c}: FROM $BASE`);
  }
});

// --- flattening and rules, without buildah ------------------------------------------------------

Deno.test("walkTree: types, modes incl. special bits, owners, content, links, hardlink groups, xattrs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flatten-test-" });
  try {
    Deno.mkdirSync(join(dir, "d"));
    Deno.chmodSync(join(dir, "d"), 0o2750);
    Deno.writeTextFileSync(join(dir, "d/f"), "hello");
    Deno.chmodSync(join(dir, "d/f"), 0o4755);
    Deno.linkSync(join(dir, "d/f"), join(dir, "h"));
    Deno.symlinkSync("d/f", join(dir, "l"));
    Deno.writeTextFileSync(join(dir, "x"), "");
    const setfattr = new Deno.Command("setfattr", {
      args: ["-n", "user.k", "-v", "0x00ff", join(dir, "x")],
      stdout: "null",
      stderr: "null",
    });
    const xattrs = have("setfattr") && (await setfattr.output()).success;
    const tree = await walkTree(dir);
    assert.deepEqual([...tree.keys()], [".", "d", "d/f", "h", "l", "x"]);
    assert.equal(tree.get("d")!.type, "dir");
    assert.equal(tree.get("d")!.mode, 0o2750);
    assert.equal(tree.get("d")!.size, undefined, "no directory sizes");
    const f = tree.get("d/f")!;
    assert.equal(f.mode, 0o4755);
    assert.equal(f.size, 5);
    assert.equal(f.sha256, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
    assert.equal(f.hardlink, "d/f");
    assert.equal(tree.get("h")!.hardlink, "d/f");
    assert.equal(tree.get("l")!.target, "d/f");
    assert.equal(tree.get("x")!.hardlink, undefined);
    if (xattrs) assert.deepEqual(tree.get("x")!.xattrs, { "user.k": "00ff" });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("normaliseConfig: the Dockerfile's fields; empty means unset; healthcheck zeros dropped", () => {
  const c = normaliseConfig({
    architecture: "amd64",
    os: "linux",
    created: "2026-01-01T00:00:00Z",
    history: [{ created_by: "x" }],
    config: {
      Hostname: "abc",
      Env: ["A=1"],
      Cmd: null,
      Entrypoint: [],
      Volumes: {},
      Labels: { a: "b" },
      User: "",
      Healthcheck: { Test: ["NONE"], Interval: 0, Retries: 0 },
      ArgsEscaped: true,
    },
  });
  assert.deepEqual(c, {
    architecture: "amd64",
    os: "linux",
    Env: ["A=1"],
    Labels: { a: "b" },
    Healthcheck: { Test: ["NONE"] },
  });
});

const dir = (mode = 0o755, uid = 0, gid = 0): FlatEntry => ({ type: "dir", mode, uid, gid });
const file = (content: string, mode = 0o644, uid = 0, gid = 0): FlatEntry => ({
  type: "file",
  mode,
  uid,
  gid,
  size: content.length,
  sha256: content,
});
const image = (
  tree: Record<string, FlatEntry>,
  config: Record<string, unknown> = {},
): FlatImage => ({
  tree: new Map(Object.entries(tree)) as FlatTree,
  config,
  rawConfig: {},
});

Deno.test("compareImages: identical images; a missing, an extra and a changed path; config", () => {
  const base = { ".": dir(), "a": file("a"), "d": dir() };
  assert.deepEqual(compareImages({ buildah: image(base), ours: image(base), dockerfile: "" }), {
    differences: [],
    explained: [],
  });
  const r = compareImages({
    buildah: image({ ...base, "gone": file("g") }, { User: "1" }),
    ours: image({ ...base, "a": file("a", 0o600), "new": dir() }, { User: "2" }),
    dockerfile: "",
  });
  assert.deepEqual(r.differences.map(formatDifference), [
    "~ a mode: buildah 0644, ours 0600",
    "- gone: only in buildah's image: file 0644 0:0 size=1 sha256=g",
    "+ new: only in ours: dir 0755 0:0",
    '~ config.User: buildah "1", ours "2"',
  ]);
});

Deno.test("rules: buildah's mount stubs go only when empty, absent from ours and not named", () => {
  const buildah = {
    ".": dir(),
    "dev": dir(),
    "proc": dir(),
    "run": dir(),
    "run/x": file("x"),
    "etc": dir(),
    "etc/hosts": file(""),
    "etc/hostname": file("h"),
    "sys": dir(),
  };
  const ours = { ".": dir(), "etc": dir(), "sys": dir(0o700) };
  const r = compareImages({
    buildah: image(buildah),
    ours: image(ours),
    dockerfile: "RUN mkdir /proc && cat /dev/null",
  });
  assert.deepEqual(r.differences.map((d) => `${d.what} ${d.path}`), [
    "missing etc/hostname", // not empty
    "missing proc", // named by the Dockerfile
    "missing run", // not empty
    "missing run/x",
    "mode sys", // ours has it
  ]);
  assert.deepEqual(r.explained, [
    "buildah-mount-stubs: dropped buildah's mount stub /dev",
    "buildah-mount-stubs: dropped buildah's mount stub /etc/hosts",
  ]);
});

Deno.test("rules: config quirks of buildah (label, Env order, shell-form CMD, EXPOSE ranges)", () => {
  const r = compareImages({
    buildah: image({}, {
      Labels: { "io.buildah.version": "1.28.2" },
      Env: ["B=2", "A=1"],
      Shell: ["/bin/bash", "-c"],
      Cmd: ["/bin/sh", "-c", "run it"],
      ExposedPorts: { "7-8/udp": {}, "80/tcp": {} },
    }),
    ours: image({}, {
      Env: ["A=1", "B=2"],
      Shell: ["/bin/bash", "-c"],
      Cmd: ["/bin/bash", "-c", "run it"],
      ExposedPorts: { "7/udp": {}, "8/udp": {}, "80/tcp": {} },
    }),
    dockerfile: "",
  });
  assert.deepEqual(r.differences, []);
  assert.equal(r.explained.length, 4);
  // Another value is not an order: reported.
  const env = compareImages({
    buildah: image({}, { Env: ["A=1", "B=3"] }),
    ours: image({}, { Env: ["B=2", "A=1"] }),
    dockerfile: "",
  });
  assert.deepEqual(env.differences.map((d) => d.path), ["config.Env"]);
});

Deno.test("rules: VOLUME directories and RUN changes below a volume; other paths still compared", () => {
  const vols = { Volumes: { "/data": {}, "/a/b": {} } };
  const r = compareImages({
    buildah: image({
      ".": dir(),
      "a": dir(),
      "a/b": dir(),
      "data": dir(),
      "data/x": file("old"),
      "other": file("1"),
    }, vols),
    ours: image({
      ".": dir(),
      "data": dir(),
      "data/x": file("new"),
      "data/y": file("y"),
      "other": file("22"),
    }, vols),
    dockerfile: "",
  });
  assert.deepEqual(r.differences.map((d) => `${d.what} ${d.path}`), [
    "size other",
    "sha256 other",
  ]);
  assert.deepEqual(r.explained.map((e) => e.split(":")[0]), [
    "buildah-volume-dirs",
    "buildah-volume-dirs",
    "buildah-volume-discards-run",
    "buildah-volume-discards-run",
  ]);
});

Deno.test("rules: RUN --mount stubs, COPY onto a dangling symlink, --chown and special bits", () => {
  const r = compareImages({
    buildah: image({
      ".": dir(),
      "var": dir(),
      "var/cache": dir(),
      "l": { type: "symlink", mode: 0o777, uid: 0, gid: 0, target: "/t" },
      "t": dir(),
      "t/f.txt": file("f"),
      "s": file("s", 0o755),
    }),
    ours: image({
      ".": dir(),
      "opt": dir(),
      "opt/m": dir(),
      "l": { type: "symlink", mode: 0o777, uid: 0, gid: 0, target: "/t" },
      "t": file("f"),
      "s": file("s", 0o4755),
    }),
    dockerfile: "RUN --mount=type=cache,target=/var/cache/app true\n" +
      "RUN --mount=type=tmpfs,target=/opt/m true\nCOPY f.txt /l\nCOPY --chown=1 s /s\n",
  });
  assert.deepEqual(r.differences.map((d) => `${d.what} ${d.path}`), ["extra opt"]);
  // ADD --chown of an archive: buildah keeps the archive's owners below the destination.
  const tar = compareImages({
    buildah: image({ "x": dir(), "x/a": file("a", 0o644, 1234, 5), "y": file("y", 0o644, 1, 1) }),
    ours: image({ "x": dir(), "x/a": file("a", 0o644, 3, 4), "y": file("y", 0o644, 3, 4) }),
    dockerfile: "ADD --chown=3:4 a.tgz /x/\n",
  });
  assert.deepEqual(tar.differences.map((d) => `${d.what} ${d.path}`), ["uid y", "gid y"]);
  // Without --chown in the Dockerfile, lost special bits are a difference.
  const bits = compareImages({
    buildah: image({ "s": file("s", 0o755) }),
    ours: image({ "s": file("s", 0o4755) }),
    dockerfile: "COPY s /s",
  });
  assert.deepEqual(bits.differences.map((d) => `${d.what} ${d.path}`), ["mode s"]);
});

// --- the comparison itself ------------------------------------------------------------------------

Deno.test({
  name: "buildah and we build the same images from the corpus",
  ignore: !canCompare,
  sanitizeResources: false,
  sanitizeOps: false,
}, async (t) => {
  const env = await testbed();
  const cases = selectedCases();
  const t0 = performance.now();
  const results = await compareCorpus({
    registry: env.registries.plain.host,
    cases,
    jobs: 2,
    tag: `test-${Deno.pid}`, // apart from a concurrent run of the script or another test run
  });
  const byName = new Map<string, CaseResult>(results.map((r) => [r.name, r]));
  console.log(
    `compared ${results.length} cases in ${((performance.now() - t0) / 1000).toFixed(1)}s`,
  );
  for (const name of cases) {
    const r = byName.get(name)!;
    await t.step(name, () => {
      const report = formatResult(r);
      if (name in KNOWN_BUGS) {
        assert.notEqual(
          r.status,
          "same",
          `${name} now matches buildah: remove it from KNOWN_BUGS (${KNOWN_BUGS[name]})`,
        );
        console.log(`known bug, still open: ${KNOWN_BUGS[name]}\n${report}`);
        return;
      }
      assert.equal(r.status, "same", report);
    });
  }
});
