/**
 * COPY with BuildKit's semantics: a table of cases, each a context, a stage root, one COPY and
 * the resulting tree (types, modes, owners, contents, link targets) and touched paths. Most
 * expectations were checked against buildah 1.28 (`copy_buildah_test.ts` keeps a few of them
 * running); where BuildKit and buildah differ the case says which one it follows.
 */
import assert from "node:assert/strict";
import { lstatNs } from "../../lib/fs/meta.ts";
import { copyStep } from "../../lib/build/copy.ts";
import { captureLog, rejects } from "../_helpers.ts";
import { bed, describe, listTree, type Node } from "./copy_helpers.ts";

const CTX: Record<string, Node> = {
  "a.txt": "A",
  "b.txt": { content: "B", mode: 0o755 },
  "c.md": "C",
  "dir": { dir: true, mode: 0o700 },
  "dir/x": "X",
  "dir/sub": { dir: true, mode: 0o750, mtime: "2001-02-03T04:05:06.000Z" },
  "dir/sub/y": { content: "Y", mtime: "2001-02-03T04:05:06.000Z" },
  "dir/link": { symlink: "x" },
  "dir/abs": { symlink: "/etc/passwd" },
  "link": { symlink: "a.txt" },
  "dirlink": { symlink: "dir" },
};

interface Case {
  name: string;
  patterns: string[];
  dest: string;
  workdir?: string;
  chown?: string;
  chmod?: string;
  exclude?: string[];
  parents?: boolean;
  root?: Record<string, Node>;
  ctx?: Record<string, Node>;
  /** Expected descriptions of these paths (others may exist). */
  want: Record<string, string>;
  /** Paths that must not exist. */
  absent?: string[];
  touched?: string[];
}

const f = (mode: string, owner: string, content: string) =>
  `file ${mode} ${owner} ${JSON.stringify(content)}`;
const d = (mode: string, owner = "0:0") => `dir ${mode} ${owner}`;

const PASSWD = {
  "etc": { dir: true } as Node,
  "etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n",
  "etc/group": "root:x:0:\napp:x:1001:\nstaff:x:50:app\n",
};

const CASES: Case[] = [
  {
    name: "file to file",
    patterns: ["a.txt"],
    dest: "/f",
    want: { f: f("0644", "0:0", "A") },
    touched: ["f"],
  },
  {
    name: "file to dir/ (created 0755 root)",
    patterns: ["b.txt"],
    dest: "/d/",
    want: { d: d("0755"), "d/b.txt": f("0755", "0:0", "B") },
    touched: ["d", "d/b.txt"],
  },
  {
    name: "file into an existing directory named without a slash",
    patterns: ["a.txt"],
    dest: "/existing",
    root: { existing: { dir: true, mode: 0o700, uid: 5 } },
    want: { existing: d("0700", "5:5"), "existing/a.txt": f("0644", "0:0", "A") },
    touched: ["existing/a.txt"],
  },
  {
    name: "dir copies its contents; the new destination is 0755, subdirectories keep modes",
    patterns: ["dir"],
    dest: "/x",
    want: {
      x: d("0755"),
      "x/x": f("0644", "0:0", "X"),
      "x/sub": d("0750"),
      "x/sub/y": f("0644", "0:0", "Y"),
      "x/link": "symlink 0777 0:0 -> x",
      "x/abs": "symlink 0777 0:0 -> /etc/passwd",
    },
    absent: ["x/dir"],
    touched: ["x", "x/abs", "x/link", "x/sub", "x/sub/y", "x/x"],
  },
  {
    name: "multiple files to dir/",
    patterns: ["a.txt", "b.txt"],
    dest: "/m/",
    want: { m: d("0755"), "m/a.txt": f("0644", "0:0", "A"), "m/b.txt": f("0755", "0:0", "B") },
  },
  {
    name:
      "multiple files to a name without a slash make a directory (buildah; BuildKit overwrites)",
    patterns: ["a.txt", "b.txt"],
    dest: "/m2",
    want: { m2: d("0755"), "m2/a.txt": f("0644", "0:0", "A") },
  },
  {
    name: "missing parent directories are created 0755 root:root",
    patterns: ["a.txt"],
    dest: "/p/q/r",
    want: { p: d("0755"), "p/q": d("0755"), "p/q/r": f("0644", "0:0", "A") },
    touched: ["p", "p/q", "p/q/r"],
  },
  {
    name: "relative destination under WORKDIR; . is the WORKDIR itself",
    patterns: ["a.txt"],
    dest: ".",
    workdir: "/app/srv",
    want: { app: d("0755"), "app/srv/a.txt": f("0644", "0:0", "A") },
  },
  {
    name: "wildcards per path segment",
    patterns: ["*.txt", "d?r/[xy]"],
    dest: "/w/",
    want: {
      "w/a.txt": f("0644", "0:0", "A"),
      "w/b.txt": f("0755", "0:0", "B"),
      "w/x": f("0644", "0:0", "X"),
    },
    absent: ["w/c.md", "w/sub"],
  },
  {
    name: "a single wildcard match to a name without slash is a file",
    patterns: ["a.*"],
    dest: "/single",
    want: { single: f("0644", "0:0", "A") },
  },
  {
    name: "--chown by name from the root's /etc/passwd and /etc/group, created parents too",
    patterns: ["dir/x", "a.txt"],
    dest: "/etc/app/conf/",
    chown: "app:staff",
    root: PASSWD,
    want: {
      etc: d("0755"),
      "etc/app": d("0755", "1000:50"),
      "etc/app/conf": d("0755", "1000:50"),
      "etc/app/conf/x": f("0644", "1000:50", "X"),
      "etc/app/conf/a.txt": f("0644", "1000:50", "A"),
    },
  },
  {
    name: "--chown=user takes the user's primary group",
    patterns: ["a.txt"],
    dest: "/o",
    chown: "app",
    root: PASSWD,
    want: { o: f("0644", "1000:1001", "A") },
  },
  {
    name: "--chown=1000 is 1000:1000",
    patterns: ["dir"],
    dest: "/n/",
    chown: "1000",
    want: { n: d("0755", "1000:1000"), "n/sub/y": f("0644", "1000:1000", "Y") },
  },
  {
    name: "--chown=1000:1000 on a symlink and a directory",
    patterns: ["dir"],
    dest: "/n2",
    chown: "1000:1000",
    want: { "n2/link": "symlink 0777 1000:1000 -> x", "n2/sub": d("0750", "1000:1000") },
  },
  {
    name: "--chmod=0755 applies to files and copied directories, not created parents",
    patterns: ["dir"],
    dest: "/cm/deep/",
    chmod: "0600",
    want: {
      cm: d("0755"),
      "cm/deep": d("0755"),
      "cm/deep/x": f("0600", "0:0", "X"),
      "cm/deep/sub": d("0600"),
      "cm/deep/link": "symlink 0777 0:0 -> x",
    },
  },
  {
    name: "--chmod=u+x",
    patterns: ["a.txt", "b.txt"],
    dest: "/ux/",
    chmod: "u+x",
    want: { "ux/a.txt": f("0744", "0:0", "A"), "ux/b.txt": f("0755", "0:0", "B") },
  },
  {
    name: "--chmod=go-rwx,a+X: X only for directories and executables",
    patterns: ["dir", "b.txt"],
    dest: "/sx/",
    chmod: "go-rwx,a+X",
    want: {
      "sx/x": f("0600", "0:0", "X"),
      "sx/b.txt": f("0711", "0:0", "B"),
      "sx/sub": d("0711"),
    },
  },
  {
    name: "inside copied directories symlinks stay links (and replace an earlier file)",
    patterns: ["l*", "dir"],
    dest: "/sl/",
    want: { "sl/x": f("0644", "0:0", "X"), "sl/link": "symlink 0777 0:0 -> x" },
  },
  {
    name: "a wildcard match that is a symlink is followed",
    patterns: ["l*"],
    dest: "/sl2/",
    want: { "sl2/link": f("0644", "0:0", "A") },
  },
  {
    name: "a symlink to a directory as the source copies the directory's contents",
    patterns: ["dirlink"],
    dest: "/dl",
    want: { dl: d("0755"), "dl/sub/y": f("0644", "0:0", "Y"), "dl/link": "symlink 0777 0:0 -> x" },
  },
  {
    name: "--exclude on paths inside a copied directory and on wildcard matches",
    patterns: [".", "*.md"],
    dest: "/ex/",
    exclude: ["*.md", "dir/sub", "b.*"],
    want: { "ex/a.txt": f("0644", "0:0", "A"), "ex/dir/x": f("0644", "0:0", "X") },
    absent: ["ex/c.md", "ex/dir/sub", "ex/b.txt"],
  },
  {
    name: "--exclude with an exception re-includes inside an excluded directory",
    patterns: ["dir"],
    dest: "/ex2/",
    exclude: ["sub", "!sub/y", "x"],
    want: { "ex2/sub": d("0750"), "ex2/sub/y": f("0644", "0:0", "Y") },
    absent: ["ex2/x"],
  },
  {
    name: "--parents keeps the directories of the source path (and a /./ pivot)",
    patterns: ["dir/sub/y", "dir/./sub", "*.md"],
    dest: "/pa/",
    parents: true,
    want: {
      pa: d("0755"),
      "pa/dir": d("0700"),
      "pa/dir/sub": d("0750"),
      "pa/dir/sub/y": f("0644", "0:0", "Y"),
      "pa/sub/y": f("0644", "0:0", "Y"),
      "pa/c.md": f("0644", "0:0", "C"),
    },
    absent: ["pa/dir/x", "pa/a.txt", "pa/x"],
  },
  {
    name: "--parents with a wildcard in a directory",
    patterns: ["d*/s*/*"],
    dest: "/pw",
    parents: true,
    want: { "pw/dir": d("0700"), "pw/dir/sub/y": f("0644", "0:0", "Y") },
    absent: ["pw/dir/x"],
  },
  {
    name: "an existing file or symlink at the target is replaced, not followed",
    patterns: ["a.txt"],
    dest: "/etc/",
    root: { "etc": { dir: true }, "etc/a.txt": { symlink: "/outside-target" } },
    want: { "etc/a.txt": f("0644", "0:0", "A") },
  },
  {
    name: "the destination path follows symlinks inside the root",
    patterns: ["a.txt"],
    dest: "/lnk/",
    root: { "real": { dir: true }, "lnk": { symlink: "/real" } },
    want: { lnk: "symlink 0777 0:0 -> /real", "real/a.txt": f("0644", "0:0", "A") },
    touched: ["real/a.txt"],
  },
  {
    name: "hard links inside a copied directory stay hard links",
    patterns: ["hl"],
    dest: "/hl",
    ctx: { "hl/one": "1", "hl/two": { hardlink: "hl/one" } },
    want: { "hl/one": f("0644", "0:0", "1"), "hl/two": f("0644", "0:0", "1") },
  },
];

Deno.test("COPY behaves as BuildKit", async (t) => {
  for (const c of CASES) {
    await t.step(c.name, async () => {
      await using b = await bed(c.ctx ?? CTX, c.root ?? {});
      const touched = await b.copy(c.patterns, c.dest, {
        workdir: c.workdir ?? "/",
        chown: c.chown,
        chmod: c.chmod,
        exclude: c.exclude,
        parents: c.parents,
      });
      const tree = listTree(b.root);
      for (const [path, want] of Object.entries(c.want)) {
        assert.equal(tree[path] ?? "missing", want, `${path} in ${JSON.stringify(tree, null, 1)}`);
      }
      for (const path of c.absent ?? []) assert.equal(tree[path], undefined, path);
      if (c.touched) assert.deepEqual(touched, c.touched);
      for (const path of touched) assert.ok(tree[path] !== undefined, `touched ${path} exists`);
    });
  }
});

Deno.test("COPY keeps times (ns) and hard links; touched is sorted", async () => {
  await using b = await bed(CTX);
  const src = lstatNs(`${b.ctxDir}/dir/sub/y`)!;
  const touched = await b.copy(["dir"], "/t/");
  assert.equal(lstatNs(`${b.root}/t/sub/y`)!.mtimeNs, src.mtimeNs);
  assert.equal(lstatNs(`${b.root}/t/sub`)!.mtimeNs, lstatNs(`${b.ctxDir}/dir/sub`)!.mtimeNs);
  assert.deepEqual(touched, [...touched].sort());
});

Deno.test("COPY with a reproducible mtime sets every written path's time", async () => {
  await using b = await bed(CTX);
  const epoch = 1_700_000_000_000_000_000n;
  const touched = await b.copy(["dir", "a.txt"], "/r/e/", { reproducibleMtime: epoch });
  for (const p of touched) assert.equal(lstatNs(`${b.root}/${p}`)!.mtimeNs, epoch, p);
});

Deno.test("COPY errors name the source or destination", async (t) => {
  await t.step("a missing source", async () => {
    await using b = await bed(CTX);
    const e = await rejects(b.copy(["nope.txt"], "/x"));
    assert.equal(e.code, "SOURCE_NOT_FOUND");
    assert.match(e.message, /"nope\.txt": not found in the build context/);
  });
  await t.step("a wildcard under a missing directory", async () => {
    await using b = await bed(CTX);
    const e = await rejects(b.copy(["nodir/*.txt"], "/x/"));
    assert.match(e.message, /nodir\/\*\.txt/);
  });
  await t.step(
    "a wildcard matching nothing copies nothing (BuildKit), with a warning",
    async () => {
      await using b = await bed(CTX);
      const log = captureLog();
      try {
        assert.deepEqual(await b.copy(["*.none"], "/x/"), []);
      } finally {
        log.restore();
      }
      assert.match(log.lines.join("\n"), /\*\.none: no file in the build context .* matches/);
      assert.deepEqual(listTree(b.root), {});
    },
  );
  await t.step("a malformed pattern", async () => {
    await using b = await bed(CTX);
    assert.match((await rejects(b.copy(["[a-"], "/x/"))).message, /\[a-/);
  });
  await t.step("an unknown --chown user", async () => {
    await using b = await bed(CTX, PASSWD);
    const e = await rejects(b.copy(["a.txt"], "/x", { chown: "nobody" }));
    assert.match(e.message, /--chown=nobody: unable to find user nobody/);
  });
  await t.step("an unknown --chown group", async () => {
    await using b = await bed(CTX, PASSWD);
    const e = await rejects(b.copy(["a.txt"], "/x", { chown: "app:nogroup" }));
    assert.match(e.message, /--chown=app:nogroup: unable to find group nogroup/);
  });
  await t.step("an invalid --chmod", async () => {
    await using b = await bed(CTX);
    assert.match((await rejects(b.copy(["a.txt"], "/x", { chmod: "u+q" }))).message, /u\+q/);
  });
  await t.step("a directory onto a file", async () => {
    await using b = await bed(CTX, { file: "F" });
    assert.match((await rejects(b.copy(["dir"], "/file"))).message, /it is a file/);
  });
  await t.step("a file onto a directory inside a copied tree", async () => {
    await using b = await bed(CTX, { "t/x": { dir: true } });
    assert.match((await rejects(b.copy(["dir"], "/t"))).message, /cannot replace the directory/);
  });
  await t.step("a copied directory onto a symlink inside the destination", async () => {
    await using b = await bed(CTX, { "t": { dir: true }, "t/sub": { symlink: "/tmp" } });
    assert.match((await rejects(b.copy(["dir"], "/t"))).message, /not a directory/);
  });
  await t.step("a path through a file", async () => {
    await using b = await bed(CTX, { file: "F" });
    assert.match((await rejects(b.copy(["a.txt"], "/file/x/y"))).message, /not a directory/);
  });
});

Deno.test(".dockerignore'd files are invisible to COPY", async () => {
  await using b = await bed({
    ...CTX,
    ".dockerignore": "*.md\ndir/sub\n!dir/sub/y\ndir/x\n",
  });
  await b.copy(["."], "/all/");
  const tree = listTree(b.root);
  assert.equal(tree["all/c.md"], undefined);
  assert.equal(tree["all/dir/x"], undefined);
  assert.equal(tree["all/dir/sub/y"], f("0644", "0:0", "Y"));
  assert.equal(tree["all/a.txt"], f("0644", "0:0", "A"));
  assert.equal((await rejects(b.copy(["c.md"], "/c"))).code, "SOURCE_NOT_FOUND");
  assert.deepEqual(await b.copy(["*.md"], "/md/"), []);
});

Deno.test("COPY --from a stage keeps owners; --chown overrides them", async () => {
  await using b = await bed({}, {});
  const stage = `${b.base}/stage`;
  Deno.mkdirSync(`${stage}/app/bin`, { recursive: true });
  Deno.writeTextFileSync(`${stage}/app/bin/tool`, "T");
  Deno.chownSync(`${stage}/app/bin/tool`, 1234, 4321);
  Deno.chownSync(`${stage}/app/bin`, 99, 98);
  Deno.symlinkSync("/app/bin/tool", `${stage}/tool-link`);
  Deno.symlinkSync("../../../../../../etc", `${stage}/up`);
  const from = { from: "stage" as const, root: stage, name: '"build"' };
  const run = (patterns: string[], dest: string, chown?: string) =>
    copyStep({ root: b.root, kind: "COPY", sources: [from], patterns, dest, workdir: "/", chown });
  await run(["/app"], "/app");
  await run(["/tool-link"], "/t");
  await run(["/app/bin/tool"], "/c", "7:8");
  const tree = listTree(b.root);
  assert.equal(tree["app/bin"], d("0755", "99:98"));
  assert.equal(tree["app/bin/tool"], f("0644", "1234:4321", "T"));
  assert.equal(tree["t"], f("0644", "1234:4321", "T"), "absolute link resolved in the stage");
  assert.equal(tree["c"], f("0644", "7:8", "T"));
  // "up" climbs above the stage root: clamped to it (a chroot), never the host's /etc.
  const e = await rejects(run(["/up/passwd"], "/p"));
  assert.match(e.message, /not found in stage "build"/);
  assert.match((await rejects(run(["/nope/*"], "/p/"))).message, /not found in stage/);
});

Deno.test("heredoc files are written 0644 root:root (or --chmod/--chown)", async () => {
  await using b = await bed();
  const heredoc = (name: string, content: string) => ({ heredoc: { name, content } });
  const r = await copyStep({
    root: b.root,
    kind: "COPY",
    sources: [heredoc("hello.sh", "echo hi\n")],
    patterns: [],
    dest: "/usr/local/bin/",
    workdir: "/",
  });
  assert.deepEqual(r.touched, ["usr", "usr/local", "usr/local/bin", "usr/local/bin/hello.sh"]);
  await copyStep({
    root: b.root,
    kind: "COPY",
    sources: [heredoc("EOF", "a\n"), heredoc("TWO", "b\n")],
    patterns: [],
    dest: "/h",
    workdir: "/",
    chmod: "755",
    chown: "5:6",
  });
  await copyStep({
    root: b.root,
    kind: "COPY",
    sources: [heredoc("EOF", "single\n")],
    patterns: [],
    dest: "/conf",
    workdir: "/",
  });
  const tree = listTree(b.root);
  assert.equal(tree["usr/local/bin/hello.sh"], f("0644", "0:0", "echo hi\n"));
  assert.equal(tree["h/EOF"], f("0755", "5:6", "a\n"));
  assert.equal(tree["h/TWO"], f("0755", "5:6", "b\n"));
  assert.equal(tree["conf"], f("0644", "0:0", "single\n"));
});

Deno.test("symlinks in the destination cannot redirect writes outside the root", async () => {
  await using b = await bed(CTX);
  const outside = `${b.base}/outside`;
  Deno.mkdirSync(outside);
  Deno.writeTextFileSync(`${outside}/victim`, "keep");
  const before = JSON.stringify(listTree(outside));
  Deno.mkdirSync(`${b.root}/etc`);
  Deno.symlinkSync(outside, `${b.root}/abs`);
  Deno.symlinkSync(`../../../../../../../../..${outside}`, `${b.root}/rel`);
  Deno.symlinkSync(`${outside}/victim`, `${b.root}/etc/victim`);
  Deno.symlinkSync(`/../../../..${outside}`, `${b.root}/mixed`);
  await b.copy(["a.txt"], "/abs/victim");
  await b.copy(["a.txt"], "/rel/victim");
  await b.copy(["dir"], "/mixed/new/");
  await b.copy(["a.txt"], "/etc/victim");
  await b.copy(["a.txt"], "/abs/");
  assert.equal(JSON.stringify(listTree(outside)), before);
  assert.equal(Deno.readTextFileSync(`${outside}/victim`), "keep");
  const inside = `${b.root}${outside}`;
  assert.equal(describe(`${inside}/victim`), f("0644", "0:0", "A"));
  assert.equal(describe(`${inside}/a.txt`), f("0644", "0:0", "A"));
  assert.equal(describe(`${inside}/new/x`), f("0644", "0:0", "X"));
  // The destination itself is a symlink: followed, but inside the root (BuildKit's RootPath).
  assert.equal(describe(`${b.root}/etc/victim`), `symlink 0777 0:0 -> ${outside}/victim`);
});

Deno.test("COPY refuses remote sources and --checksum", async () => {
  await using b = await bed(CTX);
  const base = { root: b.root, patterns: [], dest: "/x", workdir: "/" };
  const url = await rejects(
    copyStep({ ...base, kind: "COPY", sources: [{ url: "http://127.0.0.1:1/x" }] }),
  );
  assert.match(url.message, /COPY cannot read a URL/);
  assert.match(url.hint ?? "", /use ADD/);
  const sum = await rejects(copyStep({
    ...base,
    kind: "COPY",
    sources: [{ from: "context", context: await b.context() }],
    patterns: ["a.txt"],
    checksum: "sha256:" + "0".repeat(64),
  }));
  assert.match(sum.message, /--checksum can't be specified for COPY/);
});
