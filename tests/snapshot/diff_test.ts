/**
 * Diffs of two scans: additions, changes and deletions across types; metadata-only changes
 * (chmod, chown, xattr, times restored); same-size rewrites within one second; symlink
 * retargeting; type changes; re-created directories (opaque) versus emptied ones (whiteouts);
 * hardlinks (a link count that moved alone is no change); ignored paths.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { lchown, lstatNs, mknod, setTimesNs, setXattr } from "../../lib/fs/meta.ts";
import {
  type Change,
  diffStates,
  diffTrees,
  scanTree,
  type TreeState,
} from "../../lib/snapshot/mod.ts";
import { F_BTIME_LO, F_MODE, FLAG_BTIME, STRIDE } from "../../lib/snapshot/scan.ts";
import { isRoot, run, tempDir } from "../tar/helpers.ts";
import { writeTree } from "./_tree.ts";

/** Scans, runs `step`, scans again and returns the diff. */
async function changesOf(
  root: string,
  step: () => Promise<unknown> | void,
  ignore?: (path: string) => boolean,
): Promise<Change[]> {
  const before = await scanTree(root, { ignore });
  await step();
  const after = await scanTree(root, { ignore });
  return diffTrees(before, after, root);
}

/** Changes as compact strings: `+path`, `~path`, `-path`, `~path (opaque)`. */
function show(changes: Change[]): string[] {
  const sign = { added: "+", changed: "~", deleted: "-" };
  return changes.map((c) => `${sign[c.kind]}${c.path}${c.opaque ? " (opaque)" : ""}`);
}

const sh = (root: string, script: string) => run("bash", ["-c", script], { cwd: root });

Deno.test("no change, no diff (and the diff of a state with itself is empty)", async () => {
  await using tmp = await tempDir();
  await writeTree(tmp.dir, { "a/b/c": "c", "d": "d", "e/": "" });
  await Deno.symlink("a", join(tmp.dir, "l"));
  const state: TreeState = await scanTree(tmp.dir);
  assert.deepEqual(await diffTrees(state, state, tmp.dir), []);
  assert.deepEqual(await changesOf(tmp.dir, () => {}), []);
  // Reading files and listing directories changes nothing that matters.
  assert.deepEqual(
    await changesOf(tmp.dir, async () => {
      await Deno.readTextFile(join(tmp.dir, "a/b/c"));
      for await (const _ of Deno.readDir(join(tmp.dir, "a"))) { /* list */ }
    }),
    [],
  );
});

Deno.test("adds, changes and deletes across types", async () => {
  await using tmp = await tempDir();
  const root = tmp.dir;
  await writeTree(root, {
    "keep/file": "same",
    "mod/file": "old",
    "gone/file": "x",
    "gone/sub/deeper": "y",
    "lone": "z",
  });
  await Deno.symlink("keep/file", join(root, "link"));
  mknod(join(root, "fifo"), "fifo", 0o644);
  const changes = await changesOf(root, async () => {
    await Deno.writeTextFile(join(root, "mod/file"), "newer content");
    await Deno.remove(join(root, "gone"), { recursive: true });
    await Deno.remove(join(root, "lone"));
    await Deno.remove(join(root, "fifo"));
    await writeTree(root, { "new/dir/file": "n", "new/other": "o", "mod/added": "a" });
    await Deno.symlink("../keep", join(root, "new/link"));
    mknod(join(root, "new/fifo"), "fifo", 0o600);
  });
  assert.deepEqual(show(changes), [
    "-fifo",
    "-gone",
    "-lone",
    "~mod",
    "+mod/added",
    "~mod/file",
    "+new",
    "+new/dir",
    "+new/dir/file",
    "+new/fifo",
    "+new/link",
    "+new/other",
  ]);
});

Deno.test("chmod-only and chown-only changes are detected", async () => {
  await using tmp = await tempDir();
  await writeTree(tmp.dir, { "a": "a", "b": "b", "d/": "", "c": "c" });
  assert.deepEqual(
    show(await changesOf(tmp.dir, () => Deno.chmod(join(tmp.dir, "a"), 0o4755))),
    ["~a"],
  );
  assert.deepEqual(
    show(await changesOf(tmp.dir, () => Deno.chmod(join(tmp.dir, "d"), 0o700))),
    ["~d"],
  );
  if (isRoot) {
    assert.deepEqual(show(await changesOf(tmp.dir, () => lchown(join(tmp.dir, "b"), 1, 2))), [
      "~b",
    ]);
    // chown to the same owner still changes ctime: included, as Docker would copy it up.
    assert.deepEqual(show(await changesOf(tmp.dir, () => lchown(join(tmp.dir, "c"), 0, 0))), [
      "~c",
    ]);
  }
});

Deno.test("an xattr-only change is detected (ctime)", async () => {
  await using tmp = await tempDir();
  await writeTree(tmp.dir, { "f": "f" });
  const changes = await changesOf(tmp.dir, () => {
    setXattr(join(tmp.dir, "f"), "user.test", new Uint8Array([1, 2, 3]));
  });
  assert.deepEqual(show(changes), ["~f"]);
});

Deno.test("a same-size rewrite within one second is detected, even with the mtime restored", async () => {
  await using tmp = await tempDir();
  const f = join(tmp.dir, "f");
  // Start early in a second, so both writes fall in the same one.
  const ms = Date.now() % 1000;
  if (ms > 500) await new Promise((r) => setTimeout(r, 1000 - ms + 10));
  await Deno.writeTextFile(f, "aaaa");
  const old = lstatNs(f)!;
  const changes = await changesOf(tmp.dir, () => Deno.writeTextFile(f, "bbbb"));
  assert.deepEqual(show(changes), ["~f"]);
  const now = lstatNs(f)!;
  assert.equal(now.size, old.size);
  assert.ok(now.mtimeNs - old.mtimeNs < 1_000_000_000n, "within one second");
  // Content changed, then mtime put back exactly: only the ctime tells.
  const restored = await changesOf(tmp.dir, async () => {
    const before = lstatNs(f)!;
    await Deno.writeTextFile(f, "cccc");
    setTimesNs(f, before.mtimeNs, before.mtimeNs);
  });
  assert.deepEqual(show(restored), ["~f"]);
});

Deno.test("a retargeted symlink is a change", async () => {
  await using tmp = await tempDir();
  await writeTree(tmp.dir, { "a": "a", "b": "b" });
  await Deno.symlink("a", join(tmp.dir, "l"));
  const changes = await changesOf(tmp.dir, async () => {
    await Deno.remove(join(tmp.dir, "l"));
    await Deno.symlink("b", join(tmp.dir, "l"));
  });
  assert.deepEqual(show(changes), ["~l"]);
  const state = await scanTree(tmp.dir);
  assert.equal(state.get("l")!.linkTarget, "b");
});

Deno.test("type changes: a file becomes a directory, a directory a file or symlink", async () => {
  await using tmp = await tempDir();
  await writeTree(tmp.dir, { "f": "f", "d/x": "x", "d/y/z": "z", "s/": "" });
  const changes = await changesOf(tmp.dir, async () => {
    await Deno.remove(join(tmp.dir, "f"));
    await writeTree(tmp.dir, { "f/inner": "i" });
    await Deno.remove(join(tmp.dir, "d"), { recursive: true });
    await Deno.writeTextFile(join(tmp.dir, "d"), "now a file");
    await Deno.remove(join(tmp.dir, "s"));
    await Deno.symlink("d", join(tmp.dir, "s"));
  });
  // The old directory's children need no whiteouts: the new entry replaces the directory.
  assert.deepEqual(show(changes), ["~d", "~f", "+f/inner", "~s"]);
});

Deno.test("a directory removed and made again is opaque; an emptied one gets whiteouts", async () => {
  await using tmp = await tempDir();
  const root = tmp.dir;
  await writeTree(root, {
    "re/old1": "1",
    "re/old2": "2",
    "re/keep": "k",
    "re/sub/deep": "d",
    "empty/a": "a",
    "empty/b/c": "c",
  });
  const changes = await changesOf(root, async () => {
    await sh(root, "mv re re.old && mkdir re && rm -rf re.old && echo k > re/keep && mkdir re/sub");
    await sh(root, "rm -rf empty/* && touch empty/new");
  });
  assert.deepEqual(show(changes), [
    "~empty",
    "-empty/a",
    "-empty/b",
    "+empty/new",
    "~re (opaque)",
    "+re/keep",
    "+re/sub",
  ]);
  // `mv` of another directory into place is a re-creation too (another inode).
  await writeTree(root, { "other/x": "x" });
  const moved = await changesOf(root, () => sh(root, "rm -rf re && mv other re"));
  assert.deepEqual(show(moved), ["-other", "~re (opaque)", "+re/x"]);
});

Deno.test("a re-created directory above an ignored path gets per-file whiteouts", async () => {
  await using tmp = await tempDir();
  const root = tmp.dir;
  await writeTree(root, { "var/run/pid": "1", "var/a": "a", "var/b": "b" });
  const ignore = (p: string) => p === "var/run";
  const changes = await changesOf(
    root,
    () => sh(root, "rm -rf var && mkdir -p var/run && echo b > var/b"),
    ignore,
  );
  assert.deepEqual(show(changes), ["~var", "-var/a", "~var/b"]);
});

Deno.test("hardlinks: new names are changes, a link count that moved alone is not (BuildKit)", async () => {
  await using tmp = await tempDir();
  await writeTree(tmp.dir, { "a": "a", "b": "b", "c": "c" });
  await Deno.link(join(tmp.dir, "c"), join(tmp.dir, "c2"));
  const changes = await changesOf(tmp.dir, async () => {
    await Deno.link(join(tmp.dir, "a"), join(tmp.dir, "a2"));
    await Deno.remove(join(tmp.dir, "b"));
    await Deno.link(join(tmp.dir, "a"), join(tmp.dir, "b"));
    await Deno.remove(join(tmp.dir, "c2"));
  });
  // `a` and `c` only lost or gained a link (nlink and ctime): unchanged, as BuildKit, buildah
  // and Kaniko see them; `b` is another inode now.
  assert.deepEqual(show(changes), ["+a2", "~b", "-c2"]);
  // Without the root (no way to check xattrs) the link count still counts as a change.
  const before = await scanTree(tmp.dir);
  await Deno.link(join(tmp.dir, "c"), join(tmp.dir, "c3"));
  const after = await scanTree(tmp.dir);
  assert.deepEqual(show(diffStates(before, after)), ["~c", "+c3"]);
  assert.deepEqual(show(await diffTrees(before, after, tmp.dir)), ["+c3"]);
});

Deno.test("hardlinks: a new link to a file with xattrs keeps the file changed", async () => {
  await using tmp = await tempDir();
  await writeTree(tmp.dir, { "a": "a" });
  setXattr(join(tmp.dir, "a"), "user.test", new Uint8Array([1]));
  const changes = await changesOf(tmp.dir, async () => {
    // An xattr change and a new link: the ctime cannot tell them apart.
    setXattr(join(tmp.dir, "a"), "user.test", new Uint8Array([2]));
    await Deno.link(join(tmp.dir, "a"), join(tmp.dir, "a2"));
  });
  assert.deepEqual(show(changes), ["~a", "+a2"]);
});

Deno.test("hardlinks: a link plus a content, mode or owner change is a change", async () => {
  await using tmp = await tempDir();
  await writeTree(tmp.dir, { "m": "m", "w": "w" });
  const changes = await changesOf(tmp.dir, async () => {
    await Deno.link(join(tmp.dir, "m"), join(tmp.dir, "m2"));
    await Deno.chmod(join(tmp.dir, "m"), 0o600);
    await Deno.link(join(tmp.dir, "w"), join(tmp.dir, "w2"));
    await Deno.writeTextFile(join(tmp.dir, "w2"), "ww");
  });
  assert.deepEqual(show(changes), ["~m", "+m2", "~w", "+w2"]);
});

Deno.test("devices and fifos: a new device number is a change", { ignore: !isRoot }, async () => {
  await using tmp = await tempDir();
  mknod(join(tmp.dir, "dev"), "char", 0o666, 1, 3);
  mknod(join(tmp.dir, "p"), "fifo", 0o644);
  const changes = await changesOf(tmp.dir, async () => {
    await Deno.remove(join(tmp.dir, "dev"));
    mknod(join(tmp.dir, "dev"), "char", 0o666, 1, 5);
  });
  assert.deepEqual(show(changes), ["~dev"]);
});

Deno.test("ignored paths never show as changes", async () => {
  await using tmp = await tempDir();
  await writeTree(tmp.dir, { "proc/1": "x", "tmp/a": "a" });
  const ignore = (p: string) => p === "proc" || p === "tmp/cache";
  const changes = await changesOf(tmp.dir, async () => {
    await writeTree(tmp.dir, { "proc/2": "y", "tmp/cache/z": "z" });
    await Deno.remove(join(tmp.dir, "proc/1"));
  }, ignore);
  assert.deepEqual(show(changes), ["~tmp"]);
});

/** Creates `dirs` directories of `files` empty files each under `root/top`. */
async function makeFiles(root: string, top: string, dirs: number, files: number): Promise<void> {
  for (let d = 1; d <= dirs; d++) {
    await Deno.mkdir(join(root, top, `d${d}`), { recursive: true });
    for (let f = 1; f <= files; f++) {
      await Deno.writeFile(join(root, top, `d${d}`, `f${f}`), new Uint8Array());
    }
  }
}

Deno.test("a large tree: 10,000 new files, one change and one deletion in the old part", async () => {
  await using tmp = await tempDir();
  const root = tmp.dir;
  await makeFiles(root, "base", 20, 50);
  const changes = await changesOf(root, async () => {
    await makeFiles(root, "new", 100, 100);
    await sh(root, "echo x > base/d3/f7 && rm base/d4/f9");
  });
  assert.equal(changes.filter((c) => c.kind === "added").length, 10_101);
  assert.deepEqual(show(changes.filter((c) => !c.path.startsWith("new"))), [
    "~base/d3/f7",
    "~base/d4",
    "-base/d4/f9",
  ]);
  assert.equal(changes.length, 10_104);
});

Deno.test("without birth times, a directory whose old entries are all gone is opaque", async () => {
  await using tmp = await tempDir();
  const root = tmp.dir;
  await writeTree(root, { "emptied/a": "a", "emptied/b": "b", "kept/a": "a", "kept/b": "b" });
  const before = await scanTree(root);
  await sh(root, "rm -rf emptied/* && touch emptied/c && rm kept/a");
  const after = await scanTree(root);
  for (const s of [before, after]) {
    for (let i = 0; i < s.count; i++) s.rec[i * STRIDE + F_MODE] &= ~FLAG_BTIME;
  }
  assert.deepEqual(show(await diffTrees(before, after, root)), [
    "~emptied (opaque)",
    "+emptied/c",
    "~kept",
    "-kept/a",
  ]);
});

Deno.test("a new birth time with old entries still in place is not a re-creation (overlayfs copy-up)", async () => {
  await using tmp = await tempDir();
  const root = tmp.dir;
  await writeTree(root, { "etc/a": "a", "etc/b": "b" });
  const before = await scanTree(root);
  await writeTree(root, { "etc/c": "c" });
  const after = await scanTree(root);
  // What a copy-up looks like through overlayfs: the directory's birth time is the upper one's.
  after.rec[after.indexOf("etc") * STRIDE + F_BTIME_LO] ^= 1;
  assert.deepEqual(show(await diffTrees(before, after, root)), ["~etc", "+etc/c"]);
  // An empty directory made again needs no opaque marker: nothing to hide.
  await sh(root, "mkdir e");
  const b2 = await scanTree(root);
  await sh(root, "rmdir e && mkdir e && touch e/x");
  assert.deepEqual(show(await diffTrees(b2, await scanTree(root), root)), ["~e", "+e/x"]);
});
