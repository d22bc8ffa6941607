/**
 * Correctness of applyLayer: whiteouts and opaque whiteouts across layers (in both orders),
 * replacements, hard links, setuid/setgid/sticky, owners, devices, xattrs (binary
 * `security.capability`), nanosecond times, and a merged-/usr `lib -> usr/lib` symlink.
 */
import assert from "node:assert/strict";
import { getXattr, lstatNs } from "../../lib/fs/meta.ts";
import { applyLayer, type ApplyOptions } from "../../lib/rootfs/apply.ts";
import { createTarStream, type TarHeader, type TarWriteEntry } from "../../lib/tar/mod.ts";
import { captureLog } from "../_helpers.ts";

const enc = new TextEncoder();

function file(name: string, text: string, extra: Partial<TarHeader> = {}): TarWriteEntry {
  return { header: { name, type: "file", ...extra }, body: enc.encode(text) };
}
function dir(name: string, extra: Partial<TarHeader> = {}): TarWriteEntry {
  return { header: { name, type: "dir", ...extra } };
}
function symlink(name: string, linkname: string, extra: Partial<TarHeader> = {}): TarWriteEntry {
  return { header: { name, type: "symlink", linkname, ...extra } };
}
function hardlink(name: string, linkname: string): TarWriteEntry {
  return { header: { name, type: "hardlink", linkname } };
}
function wh(name: string): TarWriteEntry {
  return { header: { name, type: "file", mode: 0o600 } };
}

function apply(root: string, entries: TarWriteEntry[], options: Partial<ApplyOptions> = {}) {
  return applyLayer(root, createTarStream(entries), { what: "test layer", ...options });
}

/** The tree under `root`: path → `type` plus content or link target. */
function tree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (
      const e of [...Deno.readDirSync(rel ? `${root}/${rel}` : root)].sort((a, b) =>
        a.name < b.name ? -1 : 1
      )
    ) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      const abs = `${root}/${path}`;
      if (e.isSymlink) out[path] = `-> ${Deno.readLinkSync(abs)}`;
      else if (e.isDirectory) {
        out[path] = "dir";
        walk(path);
      } else if (e.isFile) out[path] = Deno.readTextFileSync(abs);
      else out[path] = lstatNs(abs)!.type;
    }
  };
  walk("");
  return out;
}

async function withRoot(fn: (root: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "rootfs-apply-" });
  try {
    await fn(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("applyLayer: whiteouts and opaque whiteouts across three layers", async () => {
  await withRoot(async (root) => {
    await apply(root, [
      dir("a/"),
      file("a/1", "a1"),
      file("a/2", "a2"),
      dir("b/"),
      file("b/x", "bx"),
      dir("b/y/"),
      file("b/y/z", "byz"),
      file("c", "c"),
      dir("d/"),
      dir("d/sub/"),
      file("d/sub/old", "old"),
      file("d/keep-not", "gone"),
      dir("e/"),
      file("e/deep/er", "er"),
    ]);
    // Layer 2: whiteouts first (as the spec recommends), opaque b before its new entries.
    await apply(root, [
      wh("a/.wh.1"),
      wh(".wh.c"),
      wh("b/.wh..wh..opq"),
      dir("b/"),
      file("b/new", "bnew"),
      wh("e/.wh.deep"),
      file("f", "f2"),
    ]);
    assert.deepEqual(tree(root), {
      "a": "dir",
      "a/2": "a2",
      "b": "dir",
      "b/new": "bnew",
      "d": "dir",
      "d/keep-not": "gone",
      "d/sub": "dir",
      "d/sub/old": "old",
      "e": "dir",
      "f": "f2",
    });
    // Layer 3: opaque markers after the layer's own entries; a whiteout after the same layer's
    // entry keeps it (whiteouts hide lower layers only); whiteout of a layer-2 file.
    await apply(root, [
      dir("d/"),
      dir("d/sub/"),
      file("d/sub/new3", "n3"),
      file("d/top3", "t3"),
      wh("d/.wh..wh..opq"),
      file("g", "g3"),
      wh(".wh.g"),
      wh(".wh.f"),
      file("b/new", "bnew3"),
      wh("b/.wh..wh..opq"),
      wh("a/.wh.missing"),
    ]);
    assert.deepEqual(tree(root), {
      "a": "dir",
      "a/2": "a2",
      "b": "dir",
      "b/new": "bnew3",
      "d": "dir",
      "d/sub": "dir",
      "d/sub/new3": "n3",
      "d/top3": "t3",
      "e": "dir",
      "g": "g3",
    });
  });
});

Deno.test("applyLayer: opaque directory keeps implicit parents of the layer's entries", async () => {
  await withRoot(async (root) => {
    await apply(root, [file("o/lower/a", "a"), file("o/lower/b", "b"), file("o/other", "x")]);
    await apply(root, [file("o/lower/c", "c"), wh("o/.wh..wh..opq")]);
    assert.deepEqual(tree(root), { "o": "dir", "o/lower": "dir", "o/lower/c": "c" });
  });
});

Deno.test("applyLayer: a whiteout in a missing directory creates it, as Docker does", async () => {
  // Docker's UnpackLayer and containerd's mkparent create the parents of every entry, whiteouts
  // included (umoci does not).
  await withRoot(async (root) => {
    await apply(root, [wh("ghost/dir/.wh.nothing"), wh("ghost2/.wh..wh..opq")]);
    assert.deepEqual(tree(root), { "ghost": "dir", "ghost/dir": "dir", "ghost2": "dir" });
  });
});

Deno.test("applyLayer: replacements between types", async () => {
  await withRoot(async (root) => {
    await apply(root, [
      dir("d2f/"),
      file("d2f/inner", "i"),
      file("f2d", "f"),
      symlink("l2d", "elsewhere"),
      dir("keep/", { mode: 0o700, uid: 1, gid: 2 }),
      file("keep/child", "c"),
      file("f2l", "f"),
    ]);
    await apply(root, [
      file("d2f", "now a file"),
      dir("f2d/"),
      dir("l2d/"),
      dir("keep/", { mode: 0o751, uid: 3, gid: 4, mtime: 1_600_000_000_000_000_000n }),
      symlink("f2l", "d2f"),
    ]);
    assert.deepEqual(tree(root), {
      "d2f": "now a file",
      "f2d": "dir",
      "f2l": "-> d2f",
      "keep": "dir",
      "keep/child": "c",
      "l2d": "dir",
    });
    const keep = lstatNs(`${root}/keep`)!;
    assert.deepEqual([keep.mode, keep.uid, keep.gid], [0o751, 3, 4]);
    assert.equal(keep.mtimeNs, 1_600_000_000_000_000_000n);
  });
});

Deno.test("applyLayer: hard links", async () => {
  await withRoot(async (root) => {
    await apply(root, [dir("bin/"), file("bin/busybox", "bb", { mode: 0o755 })]);
    await apply(root, [
      hardlink("bin/ls", "bin/busybox"),
      hardlink("bin/cat", "./bin/busybox"),
      hardlink("/bin/sh", "/bin/busybox"),
      symlink("lnk", "bin/busybox"),
      hardlink("lnk2", "lnk"),
      file("new", "n"),
      hardlink("sub/new-link", "new"),
      hardlink("new", "new"),
    ]);
    const ino = lstatNs(`${root}/bin/busybox`)!.ino;
    for (const p of ["bin/ls", "bin/cat", "bin/sh"]) {
      assert.equal(lstatNs(`${root}/${p}`)!.ino, ino);
    }
    assert.equal(lstatNs(`${root}/bin/busybox`)!.nlink, 4);
    assert.equal(lstatNs(`${root}/lnk2`)!.type, "symlink");
    assert.equal(lstatNs(`${root}/lnk2`)!.ino, lstatNs(`${root}/lnk`)!.ino);
    assert.equal(lstatNs(`${root}/sub/new-link`)!.ino, lstatNs(`${root}/new`)!.ino);
  });
});

Deno.test("applyLayer: owners, setuid/setgid/sticky modes, nanosecond times", async () => {
  await withRoot(async (root) => {
    const t = 1_700_000_000_123_456_789n;
    await apply(root, [
      dir("tmp/", { mode: 0o1777, mtime: t + 1n }),
      dir("grp/", { mode: 0o2775, uid: 0, gid: 50, mtime: t + 2n }),
      file("grp/file", "x", { mode: 0o640, uid: 1000, gid: 50, mtime: t + 3n }),
      file("usr/bin/su", "su", { mode: 0o4755, uid: 0, gid: 0, mtime: t + 4n }),
      file("usr/bin/sgid", "sg", { mode: 0o6711, uid: 1000, gid: 1000, mtime: t + 5n }),
      symlink("usr/bin/link", "su", { uid: 7, gid: 8, mtime: t + 6n }),
      file("old", "o", { mtime: -1_000_000_001n }),
      file("big-ids", "b", { uid: 3_000_000, gid: 4_000_000 }),
    ]);
    const m = (p: string) => lstatNs(`${root}/${p}`)!;
    assert.equal(m("tmp").mode, 0o1777);
    assert.equal(m("tmp").mtimeNs, t + 1n);
    assert.deepEqual([m("grp").mode, m("grp").gid, m("grp").mtimeNs], [0o2775, 50, t + 2n]);
    assert.deepEqual(
      [m("grp/file").mode, m("grp/file").uid, m("grp/file").gid, m("grp/file").mtimeNs],
      [0o640, 1000, 50, t + 3n],
    );
    assert.deepEqual([m("usr/bin/su").mode, m("usr/bin/su").mtimeNs], [0o4755, t + 4n]);
    assert.deepEqual(
      [m("usr/bin/sgid").mode, m("usr/bin/sgid").uid, m("usr/bin/sgid").gid],
      [0o6711, 1000, 1000],
    );
    assert.deepEqual(
      [m("usr/bin/link").uid, m("usr/bin/link").gid, m("usr/bin/link").mtimeNs],
      [7, 8, t + 6n],
    );
    assert.equal(m("old").mtimeNs, -1_000_000_001n);
    assert.deepEqual([m("big-ids").uid, m("big-ids").gid], [3_000_000, 4_000_000]);
    // implicit parents: 0755, root-owned
    assert.deepEqual([m("usr").mode, m("usr").uid, m("usr/bin").mode], [0o755, 0, 0o755]);
  });
});

Deno.test("applyLayer: directory times are set after the directory is filled", async () => {
  await withRoot(async (root) => {
    const t = 1_500_000_000_987_654_321n;
    await apply(root, [
      dir("d/", { mtime: t, mode: 0o555 }),
      dir("d/e/", { mtime: t + 1n }),
      file("d/e/f", "f", { mtime: t + 2n }),
      file("d/g", "g"),
      wh("d/.wh.nothing"),
      symlink("d/h", "g"),
    ]);
    assert.equal(lstatNs(`${root}/d`)!.mtimeNs, t);
    assert.equal(lstatNs(`${root}/d`)!.mode, 0o555);
    assert.equal(lstatNs(`${root}/d/e`)!.mtimeNs, t + 1n);
    assert.equal(lstatNs(`${root}/d/e/f`)!.mtimeNs, t + 2n);
  });
});

Deno.test("applyLayer: devices and FIFOs as root; skipped with one warning otherwise", async () => {
  await withRoot(async (root) => {
    const devices: TarWriteEntry[] = [
      { header: { name: "dev/null", type: "char", mode: 0o666, devmajor: 1, devminor: 3 } },
      {
        header: { name: "dev/loop0", type: "block", mode: 0o660, gid: 6, devmajor: 7, devminor: 0 },
      },
      { header: { name: "run/fifo", type: "fifo", mode: 0o620 } },
    ];
    const log = captureLog();
    try {
      await apply(root, devices);
      assert.equal(log.lines.filter((l) => /skipping device and FIFO entries/.test(l)).length, 1);
      assert.match(
        log.lines.join("\n"),
        /test layer: skipping device and FIFO entries \(first: "dev\/null"\)/,
      );
    } finally {
      log.restore();
    }
    assert.equal(lstatNs(`${root}/dev/null`), undefined);
    if (Deno.uid() !== 0) return;
    await apply(root, devices, { devices: true });
    const n = lstatNs(`${root}/dev/null`)!;
    assert.deepEqual([n.type, n.mode, n.rdevMajor, n.rdevMinor], ["char", 0o666, 1, 3]);
    const b = lstatNs(`${root}/dev/loop0`)!;
    assert.deepEqual([b.type, b.mode, b.gid, b.rdevMajor, b.rdevMinor], ["block", 0o660, 6, 7, 0]);
    const f = lstatNs(`${root}/run/fifo`)!;
    assert.deepEqual([f.type, f.mode], ["fifo", 0o620]);
  });
});

Deno.test("applyLayer: xattrs, security.capability binary-exact, after chown", async () => {
  if (Deno.uid() !== 0) return; // security.* and trusted.* need root
  await withRoot(async (root) => {
    // VFS_CAP_REVISION_2 | effective, permitted = CAP_NET_BIND_SERVICE (bit 10)
    const cap = Uint8Array.from([
      0x01,
      0x00,
      0x00,
      0x02,
      0x00,
      0x04,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
    ]);
    const binary = Uint8Array.from([0, 255, 1, 0, 128, 10, 13, 0]);
    await apply(root, [
      file("bin/ping", "ping", {
        mode: 0o755,
        uid: 1000,
        gid: 1000,
        xattrs: { "security.capability": cap, "user.bin": binary },
      }),
      dir("d/", { xattrs: { "trusted.x": enc.encode("dir value") } }),
    ]);
    assert.deepEqual(getXattr(`${root}/bin/ping`, "security.capability"), cap);
    assert.deepEqual(getXattr(`${root}/bin/ping`, "user.bin"), binary);
    assert.deepEqual(getXattr(`${root}/d`, "trusted.x"), enc.encode("dir value"));
    assert.equal(lstatNs(`${root}/bin/ping`)!.uid, 1000);
    // user.* is not allowed on symlinks: one warning, the layer goes on
    const log = captureLog();
    try {
      await apply(root, [
        symlink("l1", "x", { xattrs: { "user.a": enc.encode("1") } }),
        symlink("l2", "x", { xattrs: { "user.b": enc.encode("2") } }),
        file("after", "ok"),
      ]);
      assert.equal(log.lines.filter((l) => /extended attributes not kept/.test(l)).length, 1);
    } finally {
      log.restore();
    }
    assert.equal(await Deno.readTextFile(`${root}/after`), "ok");
  });
});

Deno.test("applyLayer: a merged-/usr lib -> usr/lib symlink is followed inside the root", async () => {
  await withRoot(async (root) => {
    await apply(root, [
      dir("usr/"),
      dir("usr/lib/"),
      dir("usr/bin/"),
      symlink("lib", "usr/lib"),
      symlink("bin", "/usr/bin"),
      file("usr/lib/old.so", "old"),
    ]);
    await apply(root, [
      dir("lib/x86_64-linux-gnu/", { mode: 0o750 }),
      file("lib/x86_64-linux-gnu/libc.so.6", "libc"),
      file("bin/sh", "sh", { mode: 0o755 }),
      hardlink("bin/dash", "bin/sh"),
      wh("lib/.wh.old.so"),
    ]);
    assert.deepEqual(tree(root), {
      "bin": "-> /usr/bin",
      "lib": "-> usr/lib",
      "usr": "dir",
      "usr/bin": "dir",
      "usr/bin/dash": "sh",
      "usr/bin/sh": "sh",
      "usr/lib": "dir",
      "usr/lib/x86_64-linux-gnu": "dir",
      "usr/lib/x86_64-linux-gnu/libc.so.6": "libc",
    });
    assert.equal(lstatNs(`${root}/usr/lib/x86_64-linux-gnu`)!.mode, 0o750);
    // Docker and containerd replace a symlink with a directory entry of the same name.
    await apply(root, [dir("lib/")]);
    assert.equal(lstatNs(`${root}/lib`)!.type, "dir");
    assert.equal(lstatNs(`${root}/usr/lib/x86_64-linux-gnu/libc.so.6`)!.type, "file");
  });
});

Deno.test("applyLayer: large files stream through; an empty layer is fine", async () => {
  await withRoot(async (root) => {
    const size = 8 * 1024 * 1024 + 17;
    const chunk = new Uint8Array(1 << 20).fill(7);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        const n = Math.min(chunk.length, size - sent);
        c.enqueue(chunk.slice(0, n));
        sent += n;
        if (sent === size) c.close();
      },
    });
    await apply(root, [{ header: { name: "big", type: "file", size }, body }]);
    assert.equal(lstatNs(`${root}/big`)!.size, size);
    await apply(root, []);
    await applyLayer(root, ReadableStream.from<Uint8Array>([]), { what: "empty" });
  });
});

Deno.test("applyLayer: skipFile leaves files out; directories and symlinks as a full apply", async () => {
  const layers: TarWriteEntry[][] = [
    [
      dir("etc/", { mode: 0o755 }),
      file("etc/passwd", "root:x:0:0::/root:/bin/sh\n"),
      dir("usr/"),
      dir("usr/lib/", { mode: 0o750, uid: 7, gid: 8, mtime: 1_500_000_000_123_000_000n }),
      symlink("lib", "usr/lib"),
      file("usr/lib/libc.so", "libc", { mode: 0o755 }),
      dir("bin/"),
      file("bin/busybox", "bb", { mode: 0o4755 }),
      hardlink("bin/sh", "bin/busybox"),
      dir("was-dir/"),
      file("was-dir/inner", "i"),
      file("was-file", "f"),
      dir("opq/"),
      dir("opq/old/"),
      file("opq/old/x", "x"),
    ],
    [
      file("lib/libm.so", "libm"), // through the symlink: usr/lib/libm.so
      file("was-dir", "now a file"), // replaces a directory
      dir("was-file/"), // replaces a (skipped) file
      wh("bin/.wh.sh"),
      hardlink("bin/ls", "bin/busybox"),
      wh("opq/.wh..wh..opq"),
      dir("opq/new/"),
      file("etc/group", "root:x:0:\n"),
      dir("srv/", { mtime: 1_400_000_000_000_000_000n }),
      file("srv/data", "d"),
    ],
  ];
  const full = await Deno.makeTempDir({ prefix: "rootfs-full-" });
  const sparse = await Deno.makeTempDir({ prefix: "rootfs-sparse-" });
  try {
    const skipped: string[] = [];
    const skipFile = (path: string) => {
      const skip = !path.startsWith("etc/");
      if (skip) skipped.push(path);
      return skip;
    };
    for (const entries of layers) {
      await apply(full, entries);
      await apply(sparse, entries, { skipFile });
    }
    const fullTree = tree(full);
    const expected = Object.fromEntries(
      Object.entries(fullTree).filter(([path, what]) =>
        what === "dir" || what.startsWith("-> ") || path.startsWith("etc/")
      ),
    );
    assert.deepEqual(tree(sparse), expected);
    assert.equal(fullTree["was-dir"], "now a file"); // in the full tree; absent from the sparse one
    assert.equal(tree(sparse)["was-dir"], undefined);
    assert.deepEqual(skipped.sort(), [
      "bin/busybox",
      "bin/ls",
      "bin/sh",
      "opq/old/x",
      "srv/data",
      "usr/lib/libc.so",
      "usr/lib/libm.so",
      "was-dir",
      "was-dir/inner",
      "was-file",
    ]);
    for (const path of Object.keys(expected).filter((p) => expected[p] !== "file")) {
      const [a, b] = [lstatNs(`${full}/${path}`)!, lstatNs(`${sparse}/${path}`)!];
      // (Directory times differ where the full apply wrote into a directory a later layer did
      // not declare: it then has the time of the apply, which no layer carries anyway.)
      assert.deepEqual([b.type, b.mode, b.uid, b.gid], [a.type, a.mode, a.uid, a.gid], path);
    }
    const srv = (root: string) => lstatNs(`${root}/srv`)!.mtimeNs;
    assert.equal(srv(sparse), 1_400_000_000_000_000_000n);
    assert.equal(srv(full), srv(sparse));
  } finally {
    await Deno.remove(full, { recursive: true });
    await Deno.remove(sparse, { recursive: true });
  }
});
