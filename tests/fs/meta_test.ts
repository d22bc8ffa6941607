/**
 * lib/fs/meta.ts against coreutils `stat`, `getfattr`/`getcap` and the kernel: nanosecond times,
 * every file type, big ids, mode bits surviving chown, symlink metadata, binary xattrs, errors.
 * Most tests need root (chown, mknod, trusted/security xattrs); they are skipped otherwise.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describeError, KanikoError } from "../../lib/errors.ts";
import {
  applyMetadata,
  atimeNs,
  getXattr,
  lchmod,
  lchown,
  listXattrs,
  lstatNs,
  makedev,
  mknod,
  setTimesNs,
  setXattr,
} from "../../lib/fs/mod.ts";

const isRoot = Deno.uid() === 0;
const BIN = new Uint8Array([0xff, 0xfe, 0x80, 0xc3]);
/** A VFS_CAP_REVISION_2 blob: cap_net_bind_service (bit 10) permitted + effective. */
const CAP_NET_BIND_SERVICE = new Uint8Array([
  0x01,
  0x00,
  0x00,
  0x02, // magic_etc: revision 2 | VFS_CAP_FLAGS_EFFECTIVE
  0x00,
  0x04,
  0x00,
  0x00, // permitted[0]: 1 << 10
  0x00,
  0x00,
  0x00,
  0x00, // inheritable[0]
  0x00,
  0x00,
  0x00,
  0x00, // permitted[1]
  0x00,
  0x00,
  0x00,
  0x00, // inheritable[1]
]);

/** Runs a command synchronously; returns trimmed stdout, throws with stderr on failure. */
function sh(cmd: string, ...args: string[]): string {
  const out = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).outputSync();
  const text = new TextDecoder();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")}: ${text.decode(out.stderr)}`);
  return text.decode(out.stdout).trim();
}

/** True when `cmd` runs. */
function have(cmd: string): boolean {
  try {
    new Deno.Command(cmd, { args: ["--help"], stdout: "null", stderr: "null" }).outputSync();
    return true;
  } catch {
    return false;
  }
}

/** `stat --format=%.9Y`-style seconds.nanoseconds text → ns. */
function ns(text: string): bigint {
  const neg = text.startsWith("-");
  const [s, f = ""] = (neg ? text.slice(1) : text).split(".");
  const v = BigInt(s) * 1_000_000_000n + BigInt(f.padEnd(9, "0"));
  return neg ? -v : v;
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A temporary directory (on TMPDIR, ext4 here) removed at the end of the test. */
function tempDir(): { dir: string; [Symbol.dispose](): void } {
  const dir = Deno.makeTempDirSync({ prefix: "kaniko-fs-test-" });
  return { dir, [Symbol.dispose]: () => Deno.removeSync(dir, { recursive: true }) };
}

/** Calls `fn`, which must throw a KanikoError; returns it. */
function throwsKaniko(fn: () => unknown): KanikoError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof KanikoError, `expected a KanikoError, got ${e}`);
    assert.ok(!describeError(e).includes("\n") && !e.message.includes("\n"), "one line");
    return e;
  }
  assert.fail("expected a KanikoError");
}

Deno.test("lstatNs: nanosecond mtime/ctime agree with stat(1)", () => {
  using t = tempDir();
  const f = join(t.dir, "f");
  Deno.writeTextFileSync(f, "hello\n");
  sh("touch", "-m", "-d", "2023-11-14 22:13:20.123456789 UTC", f);
  const m = lstatNs(f)!;
  assert.equal(m.mtimeNs, 1700000000_123456789n);
  assert.equal(m.mtimeNs, ns(sh("stat", "--format=%.9Y", f)));
  assert.equal(m.ctimeNs, ns(sh("stat", "--format=%.9Z", f)));
  assert.equal(sh("stat", "--format=%y", f), "2023-11-14 22:13:20.123456789 +0000");
  // The rest agrees with stat(1) and Deno.lstatSync.
  const [ino, dev, nlink, mode, uid, gid, size] = sh("stat", "--format=%i %d %h %a %u %g %s", f)
    .split(" ");
  assert.equal(m.ino, BigInt(ino));
  assert.equal(m.dev, BigInt(dev));
  assert.equal(m.nlink, Number(nlink));
  assert.equal(m.mode, parseInt(mode, 8));
  assert.equal(m.uid, Number(uid));
  assert.equal(m.gid, Number(gid));
  assert.equal(m.size, Number(size));
  assert.equal(m.type, "file");
});

Deno.test("setTimesNs: ns atime and mtime round-trip, also before 1970", () => {
  using t = tempDir();
  const f = join(t.dir, "f");
  Deno.writeTextFileSync(f, "x");
  setTimesNs(f, 1600000000_000000001n, 1234567890_987654321n);
  assert.equal(sh("stat", "--format=%.9X %.9Y", f), "1600000000.000000001 1234567890.987654321");
  assert.equal(lstatNs(f)!.mtimeNs, 1234567890_987654321n);
  assert.equal(atimeNs(f), 1600000000_000000001n);
  setTimesNs(f, 0n, -1_500_000_000n); // 1969-12-31 23:59:58.5
  assert.equal(sh("stat", "--format=%.9X %.9Y", f), "0.000000000 -1.500000000");
  assert.equal(lstatNs(f)!.mtimeNs, -1_500_000_000n);
  // Directories too.
  setTimesNs(t.dir, 5n, 7n);
  assert.equal(lstatNs(t.dir)!.mtimeNs, 7n);
  assert.equal(sh("stat", "--format=%.9Y", t.dir), "0.000000007");
});

Deno.test("lstatNs: file, dir, symlink, fifo, socket, hardlinks, big sparse size", () => {
  using t = tempDir();
  const f = join(t.dir, "f");
  Deno.writeTextFileSync(f, "abc");
  Deno.linkSync(f, join(t.dir, "hard"));
  Deno.symlinkSync("f", join(t.dir, "link"));
  Deno.mkdirSync(join(t.dir, "d"));
  mknod(join(t.dir, "fifo"), "fifo", 0o640);
  const sock = Deno.listen({ transport: "unix", path: join(t.dir, "sock") });
  try {
    assert.equal(lstatNs(f)!.type, "file");
    assert.equal(lstatNs(f)!.nlink, 2);
    assert.equal(lstatNs(join(t.dir, "hard"))!.ino, lstatNs(f)!.ino);
    const link = lstatNs(join(t.dir, "link"))!;
    assert.equal(link.type, "symlink");
    assert.equal(link.size, 1); // the target's length
    assert.equal(lstatNs(join(t.dir, "d"))!.type, "dir");
    assert.equal(lstatNs(join(t.dir, "d"))!.nlink, 2);
    const fifo = lstatNs(join(t.dir, "fifo"))!;
    assert.equal(fifo.type, "fifo");
    assert.equal(fifo.mode, 0o640);
    assert.equal(sh("stat", "--format=%F %a", join(t.dir, "fifo")), "fifo 640");
    assert.equal(lstatNs(join(t.dir, "sock"))!.type, "socket");
  } finally {
    sock.close();
  }
  const big = join(t.dir, "big");
  sh("truncate", "-s", "5G", big);
  assert.equal(lstatNs(big)!.size, 5 * 2 ** 30);
});

Deno.test("lstatNs: agrees with Deno.lstatSync on every entry of /usr/bin and /dev", () => {
  let n = 0;
  for (const dir of ["/usr/bin", "/dev"]) {
    for (const e of Deno.readDirSync(dir)) {
      const p = join(dir, e.name);
      const d = Deno.lstatSync(p);
      const m = lstatNs(p)!;
      assert.equal(m.ino, BigInt(d.ino!), p);
      assert.equal(m.dev, BigInt(d.dev), p);
      assert.equal(m.nlink, d.nlink, p);
      assert.equal(m.mode, d.mode! & 0o7777, p);
      assert.equal(m.uid, d.uid, p);
      assert.equal(m.gid, d.gid, p);
      assert.equal(m.size, d.size, p);
      assert.equal(m.mtimeNs / 1_000_000n, BigInt(d.mtime!.getTime()), p);
      assert.equal(m.type === "symlink", d.isSymlink, p);
      assert.equal(m.type === "dir", d.isDirectory, p);
      assert.equal(m.type === "char", d.isCharDevice, p);
      if (m.type === "char" || m.type === "block") {
        assert.equal(makedev(m.rdevMajor, m.rdevMinor), BigInt(d.rdev!), p);
      }
      n++;
    }
  }
  assert.ok(n > 100, `only ${n} entries`);
});

Deno.test("lstatNs: absent paths give undefined (ENOENT, ENOTDIR)", () => {
  using t = tempDir();
  Deno.writeTextFileSync(join(t.dir, "f"), "");
  assert.equal(lstatNs(join(t.dir, "missing")), undefined);
  assert.equal(lstatNs(join(t.dir, "missing", "deeper")), undefined);
  assert.equal(lstatNs(join(t.dir, "f", "under-a-file")), undefined);
  Deno.symlinkSync("missing", join(t.dir, "dangling"));
  assert.equal(lstatNs(join(t.dir, "dangling"))!.type, "symlink");
  assert.equal(lstatNs(""), undefined); // ENOENT, as lstat("") is
});

Deno.test({
  name: "mknod: char and block devices with small and large numbers agree with stat(1)",
  ignore: !isRoot,
  fn() {
    using t = tempDir();
    const cases: [string, "char" | "block", number, number][] = [
      ["null", "char", 1, 3],
      ["loop", "block", 7, 0],
      ["sda1", "block", 8, 1],
      ["big", "char", 4095, 255],
      ["huge", "block", 4095, 0xfffff], // the kernel's limits: 12-bit major, 20-bit minor
    ];
    for (const [name, type, major, minor] of cases) {
      const p = join(t.dir, name);
      mknod(p, type, 0o620, major, minor);
      const m = lstatNs(p)!;
      assert.equal(m.type, type, name);
      assert.equal([m.rdevMajor, m.rdevMinor].join(","), `${major},${minor}`, name);
      assert.equal(m.mode, 0o620, name);
      const want = `${type === "char" ? "character" : "block"} special file ` +
        `${major.toString(16)} ${minor.toString(16)}`;
      assert.equal(sh("stat", "--format=%F %t %T", p), want, name);
      // And the other way: coreutils' mknod read by lstatNs.
      const q = join(t.dir, `${name}-coreutils`);
      sh("mknod", q, type === "char" ? "c" : "b", String(major), String(minor));
      const n = lstatNs(q)!;
      assert.equal([n.type, n.rdevMajor, n.rdevMinor].join(","), `${type},${major},${minor}`);
    }
    // /dev/null is 1,3 and the node we made behaves like it.
    Deno.writeTextFileSync(join(t.dir, "null"), "discarded");
    assert.equal(Deno.readTextFileSync(join(t.dir, "null")), "");
  },
});

Deno.test("mknod: the mode is exact despite the umask; an existing path is EEXIST", () => {
  using t = tempDir();
  const old = Deno.umask(0o077);
  try {
    mknod(join(t.dir, "fifo"), "fifo", 0o666);
  } finally {
    Deno.umask(old);
  }
  assert.equal(lstatNs(join(t.dir, "fifo"))!.mode, 0o666);
  const e = throwsKaniko(() => mknod(join(t.dir, "fifo"), "fifo", 0o644));
  assert.equal(e.code, "EEXIST");
  assert.match(e.message, /^cannot mknod fifo .*\/fifo: EEXIST \(File exists\)$/);
});

Deno.test({
  name: "lchown: uid/gid above 65535 (and 2^32-2)",
  ignore: !isRoot,
  fn() {
    using t = tempDir();
    const f = join(t.dir, "f");
    Deno.writeTextFileSync(f, "");
    lchown(f, 3000000, 3000001);
    assert.equal(sh("stat", "--format=%u %g", f), "3000000 3000001");
    assert.deepEqual([lstatNs(f)!.uid, lstatNs(f)!.gid], [3000000, 3000001]);
    lchown(f, 0xfffffffe, 65536);
    assert.equal(sh("stat", "--format=%u %g", f), "4294967294 65536");
    assert.equal(throwsKaniko(() => lchown(f, -1, 0)).code, "EINVAL");
    assert.equal(throwsKaniko(() => lchown(f, 1.5, 0)).code, "EINVAL");
  },
});

Deno.test({
  name: "applyMetadata: setuid/setgid/sticky survive the chown",
  ignore: !isRoot,
  fn() {
    using t = tempDir();
    const f = join(t.dir, "suid");
    Deno.writeTextFileSync(f, "#!/bin/sh\n");
    Deno.chmodSync(f, 0o6755);
    // What applyMetadata protects against: chown alone clears setuid/setgid.
    lchown(f, 1000, 1000);
    assert.equal(lstatNs(f)!.mode, 0o755);
    applyMetadata(f, { type: "file", mode: 0o6755, uid: 2000, gid: 3000, mtimeNs: 10n });
    assert.equal(sh("stat", "--format=%a %u %g %.9Y", f), "6755 2000 3000 0.000000010");
    const d = join(t.dir, "tmp");
    Deno.mkdirSync(d);
    applyMetadata(d, { type: "dir", mode: 0o1777, uid: 70000, gid: 70001, mtimeNs: 1n });
    assert.equal(sh("stat", "--format=%a %u %g", d), "1777 70000 70001");
    const g = join(t.dir, "shared");
    Deno.mkdirSync(g);
    applyMetadata(g, { type: "dir", mode: 0o2775, uid: 1, gid: 50, mtimeNs: 1n });
    assert.equal(lstatNs(g)!.mode, 0o2775);
    mknod(join(t.dir, "null"), "char", 0o600, 1, 3);
    applyMetadata(join(t.dir, "null"), {
      type: "char",
      mode: 0o666,
      uid: 5,
      gid: 6,
      mtimeNs: 99n,
    });
    assert.equal(sh("stat", "--format=%a %u %g %.9Y", join(t.dir, "null")), "666 5 6 0.000000099");
  },
});

Deno.test({
  name: "applyMetadata: a symlink gets owner and times itself; the target is untouched",
  ignore: !isRoot,
  fn() {
    using t = tempDir();
    const target = join(t.dir, "target");
    Deno.writeTextFileSync(target, "");
    Deno.chmodSync(target, 0o600);
    setTimesNs(target, 1n, 1_000_000_000n);
    const link = join(t.dir, "link");
    Deno.symlinkSync("target", link);
    applyMetadata(link, {
      type: "symlink",
      mode: 0o777,
      uid: 123456,
      gid: 654321,
      mtimeNs: 1700000000_000000042n,
    });
    assert.equal(sh("stat", "--format=%u %g %.9Y", link), "123456 654321 1700000000.000000042");
    assert.equal(sh("stat", "--format=%u %g %a %.9Y", target), "0 0 600 1.000000000");
    assert.equal(sh("stat", "-L", "--format=%u %g", link), "0 0");
    const m = lstatNs(link)!;
    assert.deepEqual([m.type, m.uid, m.gid, m.mtimeNs], [
      "symlink",
      123456,
      654321,
      1700000000_000000042n,
    ]);
    // A symlink where the caller expects a file: refused before any chmod reaches the target.
    const e = throwsKaniko(() =>
      applyMetadata(link, { type: "file", mode: 0o4777, uid: 0, gid: 0, mtimeNs: 0n })
    );
    assert.equal(e.code, "ELOOP");
    assert.equal(sh("stat", "--format=%a", target), "600");
    assert.equal(throwsKaniko(() => lchmod(link, 0o777)).code, "ELOOP");
  },
});

Deno.test("xattrs: binary user.* values round-trip, agree with getfattr, list is sorted", () => {
  using t = tempDir();
  const f = join(t.dir, "f");
  Deno.writeTextFileSync(f, "");
  assert.deepEqual(listXattrs(f), []);
  assert.equal(getXattr(f, "user.bin"), undefined);
  setXattr(f, "user.bin", BIN);
  setXattr(f, "user.empty", new Uint8Array());
  setXattr(f, "user.a", new TextEncoder().encode("text"));
  const big = new Uint8Array(4000).map((_, i) => i & 0xff);
  setXattr(f, "user.big", big.subarray(10, 3010)); // a view with an offset
  assert.deepEqual(listXattrs(f), ["user.a", "user.big", "user.bin", "user.empty"]);
  assert.equal(hex(getXattr(f, "user.bin")!), "fffe80c3");
  assert.equal(getXattr(f, "user.empty")!.length, 0);
  assert.deepEqual(getXattr(f, "user.big"), big.slice(10, 3010));
  if (have("getfattr")) {
    assert.match(sh("getfattr", "-e", "hex", "-n", "user.bin", f), /user\.bin=0xfffe80c3/);
  }
  // Replacing a value, and values written by setfattr read back.
  setXattr(f, "user.bin", new Uint8Array([0]));
  assert.equal(hex(getXattr(f, "user.bin")!), "00");
  if (have("setfattr")) {
    sh("setfattr", "-n", "user.from-tool", "-v", "0x00ff10", f);
    assert.equal(hex(getXattr(f, "user.from-tool")!), "00ff10");
  }
  // Returned values are copies, not views of a shared buffer.
  const a = getXattr(f, "user.a")!;
  getXattr(f, "user.big");
  assert.equal(new TextDecoder().decode(a), "text");
});

Deno.test({
  name: "xattrs: security.capability and trusted.* via applyMetadata survive the chown",
  ignore: !isRoot,
  fn() {
    using t = tempDir();
    const f = join(t.dir, "ping");
    Deno.writeTextFileSync(f, "\x7fELF");
    applyMetadata(f, {
      type: "file",
      mode: 0o755,
      uid: 0,
      gid: 0,
      mtimeNs: 1700000000_000000005n,
      xattrs: {
        "user.bin": BIN,
        "security.capability": CAP_NET_BIND_SERVICE,
        "trusted.overlay.opaque": new TextEncoder().encode("y"),
      },
    });
    assert.deepEqual(getXattr(f, "security.capability"), CAP_NET_BIND_SERVICE);
    assert.equal(hex(getXattr(f, "user.bin")!), "fffe80c3");
    assert.deepEqual(listXattrs(f), ["security.capability", "trusted.overlay.opaque", "user.bin"]);
    if (have("getcap")) assert.equal(sh("getcap", f), `${f} cap_net_bind_service=ep`);
    if (have("getfattr")) {
      assert.match(
        sh("getfattr", "-e", "hex", "-n", "security.capability", f),
        /security\.capability=0x0100000200040000000000000000000000000000/,
      );
    }
    assert.equal(sh("stat", "--format=%.9Y", f), "1700000000.000000005");
    // Why the order matters: a chown drops the capability.
    lchown(f, 1, 1);
    assert.equal(getXattr(f, "security.capability"), undefined);
  },
});

Deno.test({
  name: "xattrs: on a symlink itself (trusted.*), user.* refused with EPERM",
  ignore: !isRoot,
  fn() {
    using t = tempDir();
    Deno.writeTextFileSync(join(t.dir, "target"), "");
    const link = join(t.dir, "link");
    Deno.symlinkSync("target", link);
    setXattr(link, "trusted.x", BIN);
    assert.equal(hex(getXattr(link, "trusted.x")!), "fffe80c3");
    assert.deepEqual(listXattrs(link), ["trusted.x"]);
    assert.deepEqual(listXattrs(join(t.dir, "target")), []);
    const e = throwsKaniko(() => setXattr(link, "user.x", BIN));
    assert.equal(e.code, "EPERM");
    assert.match(
      e.message,
      /^cannot set xattr user\.x of .*\/link: EPERM \(Operation not permitted\)$/,
    );
  },
});

Deno.test("xattrs: a filesystem without support: list [] and get undefined, set ENOTSUP", () => {
  const p = "/proc/self/status"; // procfs has no user xattrs
  assert.deepEqual(listXattrs(p), []);
  assert.equal(getXattr(p, "user.x"), undefined);
  const e = throwsKaniko(() => setXattr(p, "user.x", BIN));
  assert.equal(e.code, "ENOTSUP");
  assert.match(describeError(e), /^cannot set xattr user\.x of \/proc\/self\/status: ENOTSUP /);
  assert.match(describeError(e), /does not support user\.\* xattrs/);
});

Deno.test("xattrs: tmpfs (/dev/shm) round-trips user.* or reports ENOTSUP (kernels < 6.6)", () => {
  let dir: string;
  try {
    dir = Deno.makeTempDirSync({ dir: "/dev/shm", prefix: "kaniko-fs-test-" });
  } catch {
    return; // no /dev/shm here
  }
  try {
    const f = join(dir, "f");
    Deno.writeTextFileSync(f, "");
    try {
      setXattr(f, "user.bin", BIN);
      assert.equal(hex(getXattr(f, "user.bin")!), "fffe80c3");
    } catch (e) {
      assert.ok(e instanceof KanikoError && e.code === "ENOTSUP", String(e));
      assert.deepEqual(listXattrs(f), []);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("errors: one line with the path, the errno name and code", () => {
  using t = tempDir();
  Deno.symlinkSync("loop", join(t.dir, "loop"));
  let e = throwsKaniko(() => lstatNs(join(t.dir, "loop", "x")));
  assert.equal(e.code, "ELOOP");
  assert.equal(
    e.message,
    `cannot lstat ${t.dir}/loop/x: ELOOP (Too many levels of symbolic links)`,
  );
  e = throwsKaniko(() => lstatNs(join(t.dir, "n".repeat(300))));
  assert.equal(e.code, "ENAMETOOLONG");
  e = throwsKaniko(() => lchown(join(t.dir, "missing"), 0, 0));
  assert.equal(e.code, "ENOENT");
  e = throwsKaniko(() => setTimesNs(join(t.dir, "missing"), 0n, 0n));
  assert.equal(e.code, "ENOENT");
  e = throwsKaniko(() => listXattrs(join(t.dir, "missing")));
  assert.equal(e.code, "ENOENT");
  e = throwsKaniko(() => getXattr(join(t.dir, "missing"), "user.x"));
  assert.equal(e.code, "ENOENT");
  e = throwsKaniko(() => lstatNs("a\0b"));
  assert.equal(e.code, "EINVAL");
  assert.equal(e.message, 'cannot lstat "a\\u0000b": the path contains a NUL character');
  e = throwsKaniko(() => setXattr(join(t.dir, "new\nline"), "user.x", BIN));
  assert.equal(e.code, "ENOENT");
  assert.ok(e.message.includes('new\\nline"'), e.message);
  e = throwsKaniko(() => setXattr(t.dir, "", BIN));
  assert.equal(e.code, "EINVAL");
});

Deno.test({
  name: "errors: without root, devices and chown fail with EPERM and a hint",
  ignore: !isRoot,
  fn() {
    using t = tempDir();
    Deno.chmodSync(t.dir, 0o777);
    const script = join(t.dir, "probe.ts");
    const mod = new URL("../../lib/fs/mod.ts", import.meta.url).href;
    Deno.writeTextFileSync(
      script,
      `import { lchown, mknod } from ${JSON.stringify(mod)};
import { describeError } from ${
        JSON.stringify(new URL("../../lib/errors.ts", import.meta.url).href)
      };
for (const f of [() => mknod(${JSON.stringify(join(t.dir, "null"))}, "char", 0o666, 1, 3),
                 () => lchown(${JSON.stringify(script)}, 0, 0)]) {
  try { f(); console.log("ok"); } catch (e) { console.log(e.code + " " + describeError(e)); }
}`,
    );
    Deno.chmodSync(script, 0o644);
    const out = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-check", "--no-config", script],
      uid: 65534,
      gid: 65534,
      env: { DENO_DIR: join(t.dir, "deno-dir"), HOME: t.dir },
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    const text = new TextDecoder().decode(out.stdout).trim().split("\n");
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.match(text[0], /^EPERM cannot mknod char .*\/null: EPERM \(Operation not permitted\); /);
    assert.match(text[0], /needs root/);
    assert.match(text[1], /^EPERM cannot chown .*probe\.ts: EPERM/);
  },
});
