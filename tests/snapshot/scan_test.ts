/**
 * Tree scans: what is recorded per path (against lstat with ns times), order, lookups, the
 * ignore list, mount points, names beyond the BMP, memory per path, and the clock settling.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { lchown, lstatNs, mknod } from "../../lib/fs/meta.ts";
import { ignorePaths, scanTree, scanTreeNoSettle } from "../../lib/snapshot/mod.ts";
import { F_MODE, FLAG_SKIPPED, STRIDE } from "../../lib/snapshot/scan.ts";
import { captureLog } from "../_helpers.ts";
import { isRoot, run, tempDir } from "../tar/helpers.ts";
import { writeTree } from "./_tree.ts";

Deno.test("scan records every type with the metadata lstat gives, ns times included", async () => {
  await using tmp = await tempDir();
  const root = tmp.dir;
  await writeTree(root, { "dir/file": "hello\n", "dir/sub/": "", "empty": "" });
  await Deno.symlink("dir/file", join(root, "link"));
  await Deno.link(join(root, "dir/file"), join(root, "hard"));
  mknod(join(root, "fifo"), "fifo", 0o640);
  if (isRoot) {
    mknod(join(root, "null"), "char", 0o666, 1, 3);
    lchown(join(root, "empty"), 1234, 5678);
  }
  await Deno.chmod(join(root, "dir/sub"), 0o2750);
  const state = await scanTree(root);
  const expected = ["dir", "dir/file", "dir/sub", "empty", "fifo", "hard", "link"];
  if (isRoot) expected.push("null");
  assert.deepEqual([...state.paths()], expected.sort());
  assert.equal(state.size, expected.length);
  for (const path of expected) {
    const got = state.get(path)!;
    const want = lstatNs(join(root, path))!;
    const { linkTarget: _l, btime: _b, ...meta } = got;
    assert.deepEqual(meta, want, path);
  }
  assert.equal(state.get("link")!.linkTarget, "dir/file");
  assert.equal(state.get("dir/sub")!.mode, 0o2750);
  assert.equal(state.get("hard")!.nlink, 2);
  assert.equal(state.get("fifo")!.type, "fifo");
  if (isRoot) {
    assert.deepEqual([state.get("null")!.rdevMajor, state.get("null")!.rdevMinor], [1, 3]);
    assert.deepEqual([state.get("empty")!.uid, state.get("empty")!.gid], [1234, 5678]);
  }
  assert.equal(state.get("missing"), undefined);
  assert.equal(state.get("dir/file/below"), undefined);
  assert.equal(state.get("")!.type, "dir");
});

Deno.test("scan: siblings in UTF-8 byte order, names beyond the BMP and long names", async () => {
  await using tmp = await tempDir();
  const names = ["b", "a-b", "a", "A", "\u{1f600}", "\uff5e", "é", "_", "~", "x".repeat(255)];
  for (const n of names) await Deno.writeTextFile(join(tmp.dir, n), n);
  await Deno.mkdir(join(tmp.dir, "a/b"), { recursive: true, mode: 0o755 }).catch(() => {});
  const state = scanTreeNoSettle(tmp.dir);
  const bytes = (s: string) => new TextEncoder().encode(s);
  const byBytes = [...names].sort((x, y) => {
    const a = bytes(x);
    const b = bytes(y);
    for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
    return a.length - b.length;
  });
  const top = [...state.paths()].filter((p) => !p.includes("/"));
  assert.deepEqual(top, byBytes);
  for (const n of names) assert.equal(state.get(n)?.size, bytes(n).length, n);
});

Deno.test("scan skips ignored paths with everything below them", async () => {
  await using tmp = await tempDir();
  await writeTree(tmp.dir, {
    "kaniko/secret": "s",
    "kaniko/deep/x": "x",
    "etc/mtab": "m",
    "etc/hosts": "h",
    "var/run/pid": "1",
    "var/lib/x": "x",
  });
  const seen: string[] = [];
  const ignore = ignorePaths(["/kaniko", "etc/mtab", "/var/run/"]);
  const state = await scanTree(tmp.dir, {
    ignore: (p) => {
      seen.push(p);
      return ignore(p);
    },
  });
  assert.deepEqual([...state.paths()], ["etc", "etc/hosts", "var", "var/lib", "var/lib/x"]);
  assert.ok(!seen.some((p) => p.startsWith("kaniko/")), "nothing below an ignored dir is visited");
  assert.ok(ignore("kaniko/a/b") && ignore("kaniko") && !ignore("kanikox") && !ignore("var"));
});

Deno.test({
  name: "scan does not cross into a mount point",
  ignore: !isRoot,
  async fn() {
    await using tmp = await tempDir();
    await writeTree(tmp.dir, { "mnt/": "", "keep": "k" });
    const mounted = await run("mount", ["-t", "tmpfs", "tmpfs", join(tmp.dir, "mnt")], {
      allowFail: true,
    });
    if (mounted.code !== 0) return; // no CAP_SYS_ADMIN here
    try {
      await Deno.writeTextFile(join(tmp.dir, "mnt/inside"), "x");
      const state = await scanTree(tmp.dir);
      assert.deepEqual([...state.paths()], ["keep"]);
    } finally {
      await run("umount", [join(tmp.dir, "mnt")]);
    }
  },
});

Deno.test("scan of a missing root or a file fails with one line", async () => {
  await using tmp = await tempDir();
  await Deno.writeTextFile(join(tmp.dir, "f"), "");
  await assert.rejects(scanTree(join(tmp.dir, "nope")), /cannot scan .*nope: ENOENT/);
  await assert.rejects(scanTree(join(tmp.dir, "f")), /not a directory/);
});

Deno.test("scan keeps about 100 bytes a path", async () => {
  await using tmp = await tempDir();
  for (let d = 0; d < 20; d++) {
    await Deno.mkdir(join(tmp.dir, `dir-${d}`));
    for (let f = 0; f < 250; f++) {
      await Deno.writeFile(join(tmp.dir, `dir-${d}`, `file-${f}.txt`), new Uint8Array());
    }
  }
  const state = scanTreeNoSettle(tmp.dir);
  assert.equal(state.size, 20 * 251);
  const perPath = state.byteLength / state.size;
  assert.ok(perPath < 110, `${perPath.toFixed(1)} bytes a path`);
});

Deno.test("scan returns only once the timestamp clock has moved past the newest ctime", async () => {
  await using tmp = await tempDir();
  const file = join(tmp.dir, "f");
  for (let i = 0; i < 20; i++) {
    await Deno.writeTextFile(file, "aaaa");
    const state = await scanTree(tmp.dir);
    await Deno.writeTextFile(file, "bbbb"); // same size, right after the scan
    const after = lstatNs(file)!;
    assert.notEqual(after.ctimeNs, state.get("f")!.ctimeNs, `round ${i}`);
  }
});

Deno.test("a name that is not UTF-8 is skipped with a warning, and blocks opaque", async () => {
  await using tmp = await tempDir();
  await writeTree(tmp.dir, { "d/ok": "" });
  await run("bash", ["-c", "touch $'d/bad\\xff'"], { cwd: tmp.dir });
  const log = captureLog();
  try {
    const state = await scanTree(tmp.dir);
    assert.deepEqual([...state.paths()], ["d", "d/ok"]);
    assert.match(log.lines.join("\n"), /skipping "d\/bad\ufffd": its name is not valid UTF-8/);
    const r = state.indexOf("d") * STRIDE + F_MODE;
    assert.ok(state.rec[r] & FLAG_SKIPPED, "the directory knows something below it is missing");
  } finally {
    log.restore();
  }
});
