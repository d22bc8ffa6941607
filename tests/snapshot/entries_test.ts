/**
 * Layer entries: the listing GNU tar shows, order (parents first, opaque marker and whiteouts
 * before siblings), hardlinks, xattrs, mtime clamping, byte-identical output, streamed bodies,
 * files changing under the writer, COPY's `entriesForPaths`, and a round trip: the layer applied
 * onto a copy of the old tree gives the new tree.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { lchown, lstatNs, mknod, setTimesNs, setXattr } from "../../lib/fs/meta.ts";
import { applyLayer } from "../../lib/rootfs/mod.ts";
import {
  type Change,
  diffTrees,
  entriesForPaths,
  layerEntries,
  scanTree,
  SMALL_FILE,
} from "../../lib/snapshot/mod.ts";
import { createTarStream, type TarWriteEntry } from "../../lib/tar/mod.ts";
import { captureLog } from "../_helpers.ts";
import { hex, isRoot, readAll, readEntries, run, tempDir } from "../tar/helpers.ts";
import { writeTree } from "./_tree.ts";

const sh = (root: string, script: string) => run("bash", ["-c", script], { cwd: root });
const T2000 = 946684800_000000000n; // 2000-01-01T00:00:00Z
const T2020 = 1577836800_000000000n; // 2020-01-01T00:00:00Z

/** The layer's bytes. */
function tarOf(entries: AsyncIterable<TarWriteEntry>): Promise<Uint8Array> {
  return readAll(createTarStream(entries));
}

/** Scans, runs `step`, scans again; returns the changes. */
async function changesOf(root: string, step: () => Promise<unknown>): Promise<Change[]> {
  const before = await scanTree(root);
  await step();
  return diffTrees(before, await scanTree(root), root);
}

/** `tar --numeric-owner --full-time -tvf` of the layer, one line per entry. */
async function gnuListing(tar: Uint8Array, dir: string): Promise<string[]> {
  const path = join(dir, "layer.tar");
  await Deno.writeFile(path, tar);
  const out = await run("tar", ["--numeric-owner", "--full-time", "-tvf", path]);
  return out.stdout.trimEnd().split("\n").map((l) => l.replace(/ +/g, " "));
}

Deno.test("the layer as GNU tar lists it: types, modes, owners, sizes, clamped times, links", async () => {
  await using tmp = await tempDir();
  const root = join(tmp.dir, "root");
  await writeTree(root, { "etc/keep": "k", "etc/old": "o", "var/cache/x": "x", "srv/": "" });
  const changes = await changesOf(root, async () => {
    await writeTree(root, { "etc/new.conf": "new\n", "usr/local/bin/tool": "#!/bin/sh\n" });
    if (isRoot) lchown(join(root, "usr/local/bin/tool"), 1000, 50); // before chmod: clears setuid
    await Deno.chmod(join(root, "usr/local/bin/tool"), 0o4755);
    await Deno.remove(join(root, "etc/old"));
    await Deno.symlink("../etc/new.conf", join(root, "usr/conf"));
    await Deno.link(join(root, "etc/new.conf"), join(root, "usr/local/hard"));
    mknod(join(root, "srv/pipe"), "fifo", 0o600);
    await sh(
      root,
      "mv var/cache var/c.old && mkdir var/cache && rm -rf var/c.old && echo y > var/cache/y",
    );
  });
  const tar = await tarOf(layerEntries(root, changes, { mtime: T2000 }));
  const owner = isRoot ? "1000/50" : "0/0";
  const t = "2000-01-01 00:00:00";
  assert.deepEqual(
    await gnuListing(tar, tmp.dir),
    [
      `drwxr-xr-x 0/0 0 ${t} etc/`,
      `-rw------- 0/0 0 ${t} etc/.wh.old`,
      `-rw-r--r-- 0/0 4 ${t} etc/new.conf`,
      `drwxr-xr-x 0/0 0 ${t} srv/`,
      `prw------- 0/0 0 ${t} srv/pipe`,
      `drwxr-xr-x 0/0 0 ${t} usr/`,
      `lrwxrwxrwx 0/0 0 ${t} usr/conf -> ../etc/new.conf`,
      `drwxr-xr-x 0/0 0 ${t} usr/local/`,
      `drwxr-xr-x 0/0 0 ${t} usr/local/bin/`,
      `-rwsr-xr-x ${owner} 10 ${t} usr/local/bin/tool`,
      `hrw-r--r-- 0/0 0 ${t} usr/local/hard link to etc/new.conf`,
      `drwxr-xr-x 0/0 0 ${t} var/`,
      `drwxr-xr-x 0/0 0 ${t} var/cache/`,
      `-rw------- 0/0 0 ${t} var/cache/.wh..wh..opq`,
      `-rw-r--r-- 0/0 2 ${t} var/cache/y`,
    ].map((l) => l.replace(/ +/g, " ")),
  );
});

Deno.test("order: parents first, then opaque marker, whiteouts, other siblings by bytes", async () => {
  const dir = "d";
  await using tmp = await tempDir();
  const root = tmp.dir;
  await writeTree(root, { "d/-a": "", "d/Z": "", "d/~": "", "d/x/y": "", "a-b": "", "a/b": "" });
  const changes: Change[] = [
    { path: "d/~", kind: "deleted" },
    { path: "d/x/y", kind: "changed" },
    { path: "d/-a", kind: "added" },
    { path: "d", kind: "changed", opaque: true },
    { path: "d/Z", kind: "added" },
    { path: "d/gone", kind: "deleted" },
    { path: "a-b", kind: "added" },
    { path: "a/b", kind: "added" },
    { path: "zz", kind: "deleted" },
  ];
  const entries = await readEntries(createTarStream(layerEntries(root, changes)));
  assert.deepEqual(
    entries.map((e) => e.header.name),
    [
      "a/",
      "a/b",
      "a-b",
      `${dir}/`,
      `${dir}/.wh..wh..opq`,
      `${dir}/-a`,
      `${dir}/Z`,
      `${dir}/x/`,
      `${dir}/x/y`,
      ".wh.zz",
    ].sort(layerOrder),
  );
  // Deletions under an opaque directory need no whiteouts; a top-level whiteout goes first.
  assert.equal(entries[0].header.name, ".wh.zz");
});

/** The order the layer promises, for checking: by components, whiteouts first. */
function layerOrder(x: string, y: string): number {
  const a = x.replace(/\/$/, "").split("/");
  const b = y.replace(/\/$/, "").split("/");
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] === b[i]) continue;
    const rank = (s: string) => s === ".wh..wh..opq" ? 0 : s.startsWith(".wh.") ? 1 : 2;
    if (rank(a[i]) !== rank(b[i])) return rank(a[i]) - rank(b[i]);
    return Buffer.compare(Buffer.from(a[i]), Buffer.from(b[i]));
  }
  return a.length - b.length;
}

Deno.test("whiteouts: only the topmost deleted path; none for a path written again", async () => {
  await using tmp = await tempDir();
  await writeTree(tmp.dir, { "keep/": "", "again": "a" });
  const entries = await readEntries(createTarStream(layerEntries(tmp.dir, [
    { path: "gone", kind: "deleted" },
    { path: "gone/child", kind: "deleted" },
    { path: "gone/child/deeper", kind: "deleted" },
    { path: "keep/x", kind: "deleted" },
    { path: "again", kind: "deleted" },
    { path: "again", kind: "added" },
  ])));
  assert.deepEqual(entries.map((e) => e.header.name), [".wh.gone", "again", "keep/", "keep/.wh.x"]);
  // A whiteout below a path that is now a file is dropped: the file replaced the directory.
  const below = await readEntries(createTarStream(layerEntries(tmp.dir, [
    { path: "again", kind: "changed" },
    { path: "again/old", kind: "deleted" },
  ])));
  assert.deepEqual(below.map((e) => e.header.name), ["again"]);
  const keep = lstatNs(join(tmp.dir, "keep"))!;
  assert.equal(entries[3].header.mtime, keep.mtimeNs, "a whiteout has its directory's mtime");
  assert.equal(entries[3].header.mode, 0o600);
});

Deno.test("hardlinks: the second name in the layer links to the first", async () => {
  await using tmp = await tempDir();
  const root = tmp.dir;
  await writeTree(root, { "outside": "o" });
  const changes = await changesOf(root, async () => {
    await writeTree(root, { "b/file": "content" });
    await Deno.link(join(root, "b/file"), join(root, "a-link"));
    await Deno.link(join(root, "b/file"), join(root, "c"));
    await Deno.link(join(root, "outside"), join(root, "new-name"));
  });
  const entries = await readEntries(createTarStream(layerEntries(root, changes)));
  const byName = new Map(entries.map((e) => [e.header.name, e]));
  assert.equal(byName.get("a-link")!.header.type, "file");
  assert.equal(new TextDecoder().decode(byName.get("a-link")!.body), "content");
  assert.equal(byName.get("b/file")!.header.type, "hardlink");
  assert.equal(byName.get("b/file")!.header.linkname, "a-link");
  assert.equal(byName.get("c")!.header.linkname, "a-link");
  // Only the link count (and ctime) of `outside` moved: unchanged, so not in the layer (as in
  // BuildKit), and the new name to it is a plain file with the content.
  assert.equal(byName.get("new-name")!.header.type, "file");
  assert.equal(new TextDecoder().decode(byName.get("new-name")!.body), "o");
  assert.equal(byName.has("outside"), false);
  // Written alone, a multiply linked file is a plain file.
  const alone = await readEntries(createTarStream(entriesForPaths(root, ["c"])));
  assert.equal(alone[0].header.type, "file");
});

Deno.test("xattrs go into the layer byte for byte", async () => {
  await using tmp = await tempDir();
  await writeTree(tmp.dir, { "f": "f", "d/": "" });
  const bin = new Uint8Array([0xff, 0xfe, 0x80, 0xc3, 0]);
  setXattr(join(tmp.dir, "f"), "user.bin", bin);
  setXattr(join(tmp.dir, "d"), "user.dir", new Uint8Array([1]));
  if (isRoot) {
    // cap_net_bind_service+ep (a VFS_CAP_REVISION_2 value).
    const cap = new Uint8Array(20);
    cap.set([0x01, 0x00, 0x00, 0x02, 0x00, 0x04]);
    setXattr(join(tmp.dir, "f"), "security.capability", cap);
  }
  const entries = await readEntries(createTarStream(entriesForPaths(tmp.dir, ["f", "d"])));
  const f = entries.find((e) => e.header.name === "f")!;
  assert.equal(hex(f.header.xattrs!["user.bin"]), "fffe80c300");
  if (isRoot) assert.ok(f.header.xattrs!["security.capability"]);
  assert.deepEqual(entries.find((e) => e.header.name === "d/")!.header.xattrs, {
    "user.dir": new Uint8Array([1]),
  });
});

Deno.test("mtime clamping: newer times become the epoch, older ones stay; ns kept", async () => {
  await using tmp = await tempDir();
  await writeTree(tmp.dir, { "d/old": "o", "d/new": "n" });
  const oldTime = T2000 + 123_456_789n;
  setTimesNs(join(tmp.dir, "d/old"), oldTime, oldTime);
  const newTime = lstatNs(join(tmp.dir, "d/new"))!.mtimeNs;
  const read = async (mtime?: bigint) =>
    new Map(
      (await readEntries(createTarStream(
        layerEntries(tmp.dir, [{ path: "d/old", kind: "changed" }, {
          path: "d/new",
          kind: "added",
        }, { path: "d/gone", kind: "deleted" }], { mtime }),
      ))).map((e) => [e.header.name, e.header]),
    );
  const clamped = await read(T2020);
  assert.equal(clamped.get("d/old")!.mtime, oldTime);
  assert.equal(clamped.get("d/new")!.mtime, T2020);
  assert.equal(clamped.get("d/")!.mtime, T2020);
  assert.equal(clamped.get("d/.wh.gone")!.mtime, T2020);
  const seconds = new Map(
    (await readEntries(createTarStream(
      layerEntries(tmp.dir, [{ path: "d/old", kind: "changed" }], { mtimeResolution: "s" }),
    ))).map((e) => [e.header.name, e.header]),
  );
  assert.equal(seconds.get("d/old")!.mtime, T2000, "whole seconds");
  const real = await read();
  assert.equal(real.get("d/new")!.mtime, newTime);
  assert.equal(real.get("d/new")!.atime, undefined);
  assert.equal(real.get("d/new")!.ctime, undefined);
  assert.equal(real.get("d/new")!.uname, "");
});

Deno.test("the same tree gives byte-identical layers", async () => {
  await using tmp = await tempDir();
  const root = tmp.dir;
  const names = ["b", "a", "é", "\u{1f600}", "\uff5e", "Z", "a-b", "a.b"];
  const changes = await changesOf(root, async () => {
    for (const n of names) await writeTree(root, { [`dir/${n}`]: n, [`dir/sub-${n}/x`]: n });
  });
  const shuffled = [...changes].reverse();
  const one = await tarOf(layerEntries(root, changes, { mtime: T2020 }));
  const two = await tarOf(layerEntries(root, shuffled, { mtime: T2020 }));
  assert.deepEqual(one, two);
  const three = await tarOf(layerEntries(root, changes));
  const four = await tarOf(layerEntries(root, changes));
  assert.deepEqual(three, four);
  const listed = (await readEntries(createTarStream(layerEntries(root, changes))))
    .map((e) => e.header.name);
  assert.deepEqual(listed, [...listed].sort(layerOrder));
});

Deno.test("a big file is streamed from disk with its exact content", async () => {
  await using tmp = await tempDir();
  const big = new Uint8Array(SMALL_FILE * 5 + 12345);
  for (let i = 0; i < big.length; i += 65536) crypto.getRandomValues(big.subarray(i, i + 65536));
  await Deno.writeFile(join(tmp.dir, "big"), big);
  const it = entriesForPaths(tmp.dir, ["big"])[Symbol.asyncIterator]();
  const { value } = await it.next();
  assert.ok(value!.body instanceof ReadableStream, "streamed, not read whole");
  const entries = await readEntries(createTarStream(entriesForPaths(tmp.dir, ["big"])));
  const digest = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
  assert.equal(digest(entries[0].body), digest(big));
  await (value!.body as ReadableStream).cancel();
});

Deno.test("a file that changes size under the writer fails the layer with one line", async () => {
  await using tmp = await tempDir();
  const path = join(tmp.dir, "big");
  await Deno.writeFile(path, new Uint8Array(SMALL_FILE * 2));
  const shrink = (async function* () {
    for await (const e of entriesForPaths(tmp.dir, ["big"])) {
      await Deno.truncate(path, 10);
      yield e;
    }
  })();
  await assert.rejects(readAll(createTarStream(shrink)), /big changed while its layer was written/);
  await Deno.writeFile(path, new Uint8Array(SMALL_FILE * 2));
  const grow = (async function* () {
    for await (const e of entriesForPaths(tmp.dir, ["big"])) {
      await Deno.writeFile(path, new Uint8Array(5), { append: true });
      yield e;
    }
  })();
  await assert.rejects(readAll(createTarStream(grow)), /big changed while its layer was written/);
  await assert.rejects(
    readAll(createTarStream(entriesForPaths(tmp.dir, ["missing"]))),
    /missing disappeared while its layer was written/,
  );
});

Deno.test("entriesForPaths: exactly the paths and their parents; bad paths refused", async () => {
  await using tmp = await tempDir();
  await writeTree(tmp.dir, { "app/src/main.ts": "m", "app/src/other.ts": "o", "app/README": "r" });
  const entries = await readEntries(
    createTarStream(entriesForPaths(tmp.dir, ["app/src/main.ts", "app/README"])),
  );
  assert.deepEqual(entries.map((e) => e.header.name), [
    "app/",
    "app/README",
    "app/src/",
    "app/src/main.ts",
  ]);
  for (const bad of ["/abs", "a/../b", "./a", "a//b", "a/", ""]) {
    assert.throws(() => entriesForPaths(tmp.dir, [bad]), /bad path/, bad);
  }
  await Deno.writeTextFile(join(tmp.dir, "file"), "");
  await assert.rejects(
    readAll(createTarStream(entriesForPaths(tmp.dir, ["file/below"]))),
    /disappeared|not a directory/,
  );
});

Deno.test("sockets and names that would read as whiteouts are left out", async () => {
  await using tmp = await tempDir();
  const sock = Deno.listen({ transport: "unix", path: join(tmp.dir, "sock") });
  const log = captureLog();
  try {
    await Deno.writeTextFile(join(tmp.dir, ".wh.trap"), "");
    await Deno.writeTextFile(join(tmp.dir, "ok"), "");
    const entries = await readEntries(
      createTarStream(entriesForPaths(tmp.dir, ["sock", ".wh.trap", "ok"])),
    );
    assert.deepEqual(entries.map((e) => e.header.name), ["ok"]);
    assert.match(log.lines.join("\n"), /leaving out \.wh\.trap/);
  } finally {
    log.restore();
    sock.close();
  }
});

/** path → type, mode, owner, size, link target and content digest of a tree. */
async function flatten(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const state = await scanTree(root);
  for (const path of state.paths()) {
    const m = state.get(path)!;
    let content = "";
    if (m.type === "file") {
      content = createHash("sha256").update(await Deno.readFile(join(root, path))).digest("hex");
    }
    out.set(
      path,
      [m.type, m.mode.toString(8), m.uid, m.gid, m.size, m.linkTarget ?? "", content].join(" "),
    );
  }
  return out;
}

Deno.test("round trip: the layer applied onto the old tree gives the new tree", async () => {
  await using tmp = await tempDir();
  const root = join(tmp.dir, "root");
  const copy = join(tmp.dir, "copy");
  await writeTree(root, {
    "etc/passwd": "root:x:0:0\n",
    "etc/gone": "g",
    "opt/app/lib/a.so": "a",
    "opt/app/lib/b.so": "b",
    "opt/app/bin/run": "r",
    "var/lib/dpkg/status": "s",
    "var/cache/apt/a.bin": "x",
    "home/user/": "",
  });
  await Deno.symlink("/etc/passwd", join(root, "home/user/link"));
  await run("cp", ["-a", root, copy]);
  const changes = await changesOf(root, async () => {
    await sh(
      root,
      [
        "echo 'root:x:0:0:new' > etc/passwd",
        "rm etc/gone",
        // Re-created while the old one still exists, so that it surely gets another inode: a
        // directory removed and made again within one clock tick may reuse the inode number
        // and birth time, and is then (correctly, indistinguishably) diffed entry by entry.
        "mv opt/app opt/app.old && mkdir -p opt/app/lib && rm -rf opt/app.old",
        "echo A > opt/app/lib/a.so",
        "rm -rf var/cache/apt/*",
        "chmod 700 home/user",
        "ln -sf /etc/shadow home/user/link",
        "mkdir -p usr/bin && for i in $(seq 1 50); do echo $i > usr/bin/tool$i; done",
        "ln usr/bin/tool1 usr/bin/alias1",
        "echo big > var/lib/dpkg/status",
      ].join(" && "),
    );
    if (isRoot) lchown(join(root, "usr/bin/tool2"), 42, 43);
  });
  const layer = createTarStream(layerEntries(root, changes));
  await applyLayer(copy, layer, { what: "test layer", devices: isRoot });
  assert.deepEqual(await flatten(copy), await flatten(root));
  assert.ok(changes.some((c) => c.opaque), "the re-created directory went in as opaque");
});
