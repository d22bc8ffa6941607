/**
 * Interoperability with GNU tar, both ways: archives GNU tar makes (PAX and GNU formats, sparse
 * files) read by our reader, and archives our writer makes extracted and compared by GNU tar.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createTarStream, type TarWriteEntry } from "../../lib/tar/mod.ts";
import { getXattr, have, hex, isRoot, readEntries, run, setXattr, tempDir } from "./helpers.ts";

const ignore = !isRoot || !(await have("tar"));
const BIN = new Uint8Array([0xff, 0xfe, 0x80, 0xc3]);
const LONG_DIR = Array.from({ length: 11 }, (_, i) => `directory-${String(i).padStart(15, "0")}`)
  .join("/"); // 11 × 25 + 10 = 285 bytes
const LONG_PATH = `${LONG_DIR}/file-with-300.txt`; // 304 bytes
const LONG_TARGET = `/${"target/".repeat(36)}end`; // 256 bytes
const MTIME = "2023-11-14 22:13:20.123456789";
const MTIME_NS = 1700000000_123456789n;

/** Builds the fixture tree GNU tar archives. */
async function makeTree(root: string): Promise<void> {
  await Deno.mkdir(join(root, LONG_DIR), { recursive: true });
  await Deno.writeTextFile(join(root, LONG_PATH), "deep\n");
  await Deno.writeTextFile(join(root, "big-uid"), "owned\n");
  await run("chown", ["3000000:3000001", join(root, "big-uid")]);
  await Deno.writeTextFile(join(root, "xattr"), "attrs\n");
  assert.ok(setXattr(join(root, "xattr"), "user.bin", BIN), "user xattrs unsupported in TMPDIR");
  await run("touch", ["-d", MTIME, join(root, "xattr")]);
  await Deno.symlink(LONG_TARGET, join(root, "long-link"));
  await Deno.link(join(root, "big-uid"), join(root, "hard"));
  await run("mkfifo", [join(root, "fifo")]);
  await run("mknod", [join(root, "null"), "c", "1", "3"]);
}

Deno.test(
  { name: "GNU tar --format=pax --xattrs archives read back exactly", ignore },
  async () => {
    await using tmp = await tempDir();
    const root = join(tmp.dir, "root");
    await makeTree(root);
    const tar = join(tmp.dir, "pax.tar");
    await run("tar", ["--format=pax", "--xattrs", "--sort=name", "-cf", tar, "-C", root, "."]);
    const entries = await readEntries((await Deno.open(tar)).readable);
    const by = new Map(entries.map((e) => [e.header.name.replace(/^\.\//, ""), e]));
    assert.equal(new TextDecoder().decode(by.get(LONG_PATH)!.body), "deep\n");
    assert.equal(by.get(LONG_DIR + "/")!.header.type, "dir");
    const big = by.get("big-uid")!.header;
    assert.deepEqual([big.uid, big.gid, big.size], [3000000, 3000001, 6]);
    const xattr = by.get("xattr")!.header;
    assert.equal(xattr.mtime, MTIME_NS);
    assert.equal(hex(xattr.xattrs!["user.bin"]), "fffe80c3");
    assert.ok(typeof xattr.atime === "bigint" && typeof xattr.ctime === "bigint");
    const link = by.get("long-link")!.header;
    assert.deepEqual([link.type, link.linkname], ["symlink", LONG_TARGET]);
    const hard = by.get("hard") ?? by.get("big-uid");
    assert.ok(hard);
    const linked = entries.filter((e) => e.header.type === "hardlink");
    assert.equal(linked.length, 1);
    assert.match(linked[0].header.linkname, /^(\.\/)?(big-uid|hard)$/);
    assert.equal(by.get("fifo")!.header.type, "fifo");
    const dev = by.get("null")!.header;
    assert.deepEqual([dev.type, dev.devmajor, dev.devminor], ["char", 1, 3]);
  },
);

Deno.test(
  { name: "GNU tar --format=gnu: long names, long links, base-256 ids", ignore },
  async () => {
    await using tmp = await tempDir();
    const root = join(tmp.dir, "root");
    await makeTree(root);
    const tar = join(tmp.dir, "gnu.tar");
    await run("tar", ["--format=gnu", "--sort=name", "-cf", tar, "-C", root, "."]);
    const raw = await Deno.readFile(tar);
    assert.ok(
      new TextDecoder().decode(raw).includes("././@LongLink"),
      "GNU tar wrote no L entries",
    );
    const entries = await readEntries(ReadableStream.from([raw]));
    const by = new Map(entries.map((e) => [e.header.name.replace(/^\.\//, ""), e]));
    assert.equal(new TextDecoder().decode(by.get(LONG_PATH)!.body), "deep\n");
    assert.equal(by.get("long-link")!.header.linkname, LONG_TARGET);
    assert.equal(by.get("big-uid")!.header.uid, 3000000);
    assert.equal(by.get("xattr")!.header.mtime, 1700000000_000000000n);
  },
);

Deno.test(
  { name: "GNU incremental dumpdir (D) entries keep the reader in sync", ignore },
  async () => {
    await using tmp = await tempDir();
    const root = join(tmp.dir, "root");
    await makeTree(root);
    const tar = join(tmp.dir, "inc.tar");
    const snar = join(tmp.dir, "snar");
    await run("tar", ["--format=gnu", `--listed-incremental=${snar}`, "-cf", tar, "-C", root, "."]);
    const entries = await readEntries((await Deno.open(tar)).readable);
    const dumpdirs = entries.filter((e) => e.header.type === "dir" && e.body.length > 0);
    assert.ok(dumpdirs.length > 0, "GNU tar wrote no dumpdir entries");
    assert.ok(dumpdirs.every((e) => e.header.size === e.body.length));
    const deep = entries.find((e) => e.header.name.endsWith("file-with-300.txt"));
    assert.equal(new TextDecoder().decode(deep!.body), "deep\n");
  },
);

Deno.test({ name: "sparse files from GNU tar are flagged and do not desync", ignore }, async () => {
  await using tmp = await tempDir();
  const root = join(tmp.dir, "root");
  await Deno.mkdir(root);
  await run("truncate", ["-s", "20M", join(root, "a-sparse")]);
  const f = await Deno.open(join(root, "a-sparse"), { write: true });
  await f.seek(10_000_000, Deno.SeekMode.Start);
  await f.write(new Uint8Array([1]));
  f.close();
  await Deno.writeTextFile(join(root, "z-after"), "after\n");
  for (const format of ["gnu", "pax"]) {
    const tar = join(tmp.dir, `${format}.tar`);
    await run("tar", [
      `--format=${format}`,
      "--sparse",
      "--sort=name",
      "-cf",
      tar,
      "-C",
      root,
      ".",
    ]);
    const entries = await readEntries((await Deno.open(tar)).readable);
    const sparse = entries.find((e) => e.header.sparse);
    assert.ok(sparse, `${format}: no sparse entry flagged`);
    assert.match(sparse.header.name, /a-sparse$/);
    assert.equal(sparse.header.sparse!.realSize, 20 * 1024 * 1024);
    assert.equal(sparse.header.sparse!.format, format === "gnu" ? "gnu" : "pax-1.0");
    const after = entries.find((e) => e.header.name.endsWith("z-after"));
    assert.equal(new TextDecoder().decode(after!.body), "after\n");
  }
});

function ourEntries(): TarWriteEntry[] {
  const enc = new TextEncoder();
  const t = (name: string, type: TarWriteEntry["header"]["type"], extra = {}) => ({
    header: { name, type, mtime: MTIME_NS, ...extra },
  });
  return [
    t(`${LONG_DIR}/`, "dir", { mode: 0o755 }),
    { ...t(LONG_PATH, "file"), body: enc.encode("deep\n") },
    {
      ...t("setuid", "file", { mode: 0o4755, uid: 3000000, gid: 3000001 }),
      body: enc.encode("suid\n"),
    },
    {
      ...t("xattr", "file", { xattrs: { "user.bin": BIN, "user.text": enc.encode("v") } }),
      body: enc.encode("attrs\n"),
    },
    t("long-link", "symlink", { linkname: LONG_TARGET }),
    t("hard", "hardlink", { linkname: "setuid" }),
    t("fifo", "fifo"),
    t("null", "char", { devmajor: 1, devminor: 3, mode: 0o666 }),
    t("loop0", "block", { devmajor: 7, devminor: 0, mode: 0o660 }),
  ];
}

Deno.test({ name: "GNU tar extracts and verifies what our writer produces", ignore }, async () => {
  await using tmp = await tempDir();
  const tar = join(tmp.dir, "ours.tar");
  const out = await Deno.open(tar, { write: true, create: true });
  await createTarStream(ourEntries()).pipeTo(out.writable);
  const list = await run("tar", ["--xattrs", "-tvvf", tar]);
  assert.match(list.stdout, /x: 4 user\.bin/);
  const dest = join(tmp.dir, "dest");
  await Deno.mkdir(dest);
  await run("tar", ["--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf", tar, "-C", dest]);
  assert.equal(await Deno.readTextFile(join(dest, LONG_PATH)), "deep\n");
  const suid = await Deno.lstat(join(dest, "setuid"));
  assert.deepEqual([suid.uid, suid.gid, suid.mode! & 0o7777], [3000000, 3000001, 0o4755]);
  assert.equal(hex(getXattr(join(dest, "xattr"), "user.bin")!), "fffe80c3");
  const stamp = await run("stat", ["-c", "%.9Y", join(dest, "xattr")]);
  assert.equal(stamp.stdout.trim(), "1700000000.123456789");
  assert.equal(await Deno.readLink(join(dest, "long-link")), LONG_TARGET);
  assert.equal((await Deno.lstat(join(dest, "hard"))).ino, suid.ino);
  assert.ok((await Deno.lstat(join(dest, "fifo"))).isFifo);
  const nul = await Deno.lstat(join(dest, "null"));
  assert.ok(nul.isCharDevice);
  assert.equal(nul.rdev, (1 << 8) | 3);
  assert.ok((await Deno.lstat(join(dest, "loop0"))).isBlockDevice);
  const diff = await run("tar", ["--xattrs", "--numeric-owner", "-df", tar, "-C", dest], {
    allowFail: true,
  });
  assert.equal(diff.code, 0, `tar --compare found differences: ${diff.stdout}${diff.stderr}`);
});
